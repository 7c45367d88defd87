// Preemption: SIGUSR1 (Slurm's --signal=B:USR1@T) and SIGTERM set a flag; the
// trainer polls it after every step, all ranks agree through
// Communicator::any(), write a checkpoint and exit with ExitCode::kPreempted.
#pragma once

#include <string>

namespace ctmq::train {

// Installs the handlers (idempotent). The previous handlers are replaced for
// the life of the process.
void install_preemption_handlers();
// True once SIGUSR1 or SIGTERM has arrived (async-signal-safe flag).
bool preemption_requested();
// Number of the signal that requested preemption (0 if none).
int preemption_signal();
// Clears the flag (tests).
void reset_preemption_request();

// Under Slurm (SLURM_JOB_ID set) runs `scontrol requeue <id>` so the job is
// queued again; returns false (with a warning) when that fails or when not
// under Slurm.
bool requeue_slurm_job();

}  // namespace ctmq::train
