// Errors and checks.
//
// ctmq::Error is for errors a user can cause (bad input, bad options, missing
// files). Its message says what was expected, what was found, and what to do,
// and names the file, record, option or stage. CTMQ_ASSERT is for programmer
// bugs. Neither aborts: main() catches, prints one line, and exits non-zero,
// so an MPI job can tear down all ranks with the reason.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace ctmq {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Exit codes shared by every executable and by the pipeline scripts.
enum class ExitCode : int {
  kOk = 0,
  kError = 1,      // a ctmq::Error: bad input, options, files
  kUsage = 2,      // unknown or malformed command-line option
  kBug = 3,        // an internal assertion failed
  kPeerLost = 69,  // a collective did not complete within [train] collective-timeout, or
                   // NCCL reported an error: another rank died, hung or is unreachable
  kPreempted = 75  // stopped by SIGUSR1/SIGTERM after a checkpoint; rerun to continue
};

}  // namespace ctmq

// CTMQ_CHECK(cond, stream-expression): throws ctmq::Error when cond is false.
//   CTMQ_CHECK(n > 0, "manifest " << path << ": record count is 0; re-run ctmq-shard");
#define CTMQ_CHECK(cond, ...)                         \
  do {                                                \
    if (!(cond)) {                                    \
      std::ostringstream ctmq_check_message_;         \
      ctmq_check_message_ << __VA_ARGS__;             \
      throw ::ctmq::Error(ctmq_check_message_.str()); \
    }                                                 \
  } while (0)

// CTMQ_FAIL(stream-expression): throws ctmq::Error unconditionally.
#define CTMQ_FAIL(...) CTMQ_CHECK(false, __VA_ARGS__)

// CTMQ_ASSERT(cond): a programmer bug if false; throws std::logic_error.
#define CTMQ_ASSERT(cond)                                                                         \
  do {                                                                                            \
    if (!(cond)) {                                                                                \
      throw std::logic_error(std::string("internal error: ") + #cond + " failed at " + __FILE__ + \
                             ":" + std::to_string(__LINE__));                                     \
    }                                                                                             \
  } while (0)
