// Runs a program and collects its output: how ctmq-status asks squeue and
// sacct (slurm_jobs.h). No shell is involved: arguments are passed as given.
#pragma once

#include <string>
#include <vector>

namespace ctmq::status {

struct CommandOutput {
  bool started = false;  // false: the program was not found or could not be executed
  int exit_code = -1;    // the exit status; 128 + N when killed by signal N
  std::string out;       // everything it wrote on stdout
  std::string err;       // everything it wrote on stderr
};

// Runs argv[0] (looked up on PATH) with argv[1..] and waits for it. Never
// throws for the program's failure; REQUIRES: argv is not empty.
CommandOutput run_command(const std::vector<std::string>& argv);

// The program to run for `name` ("squeue"): the value of environment variable
// `variable` (e.g. CTMQ_SQUEUE, for tests and unusual installs) when set and
// not empty, else `name`.
std::string program_from_env(const char* variable, const std::string& name);

}  // namespace ctmq::status
