// Preemption: SIGUSR1 (Slurm's --signal=B:USR1@T) and SIGTERM set a flag; the
// trainer polls it before the first step and after every step, all ranks
// agree through Communicator::any(), write a checkpoint (when a step has run
// since the last one) and exit with ExitCode::kPreempted (75). ctmq-eval polls
// it between its phases and exits 75 without writing its result.
//
// The launcher in front of ctmq-train and ctmq-eval
// (src/launcher/signal_launcher.c) blocks both signals while LibTorch loads;
// install_preemption_handlers() then installs the handlers and unblocks them,
// so a signal that arrived during the load is delivered to the handler.
#pragma once

#include <string>

namespace ctmq {

// Installs the handlers and unblocks SIGUSR1/SIGTERM (idempotent). The
// previous handlers are replaced for the life of the process. Call it first
// in main().
void install_preemption_handlers();
// True once SIGUSR1 or SIGTERM has arrived (async-signal-safe flag).
bool preemption_requested();
// Number of the signal that requested preemption (0 if none).
int preemption_signal();
// Clears the flag (tests).
void reset_preemption_request();

// Fault injection for tests: when the environment variable
// CTMQ_TEST_SIGNAL_AT equals `point` (e.g. "checkpoint-write"), sends SIGUSR1
// to this process, as a scheduler would at that moment. A no-op otherwise.
// Points: main, mpi-init, setup, weights-loaded, checkpoint-write,
// final-write, evaluation.
void signal_at_test_point(const char* point);

}  // namespace ctmq
