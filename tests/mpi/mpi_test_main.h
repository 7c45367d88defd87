// The MPI context of an MPI test executable (see mpi_test_main.cc).
#pragma once

#include <string>

#include "ctmq/dist/mpi_context.h"

namespace ctmq::testing {

// Valid for the whole run of RUN_ALL_TESTS().
dist::MpiContext& mpi_context();

// A path under the temporary directory, the same on every rank (rank 0's pid
// makes it unique): "ctmq-mpi-NAME-PID". Nothing is created. Collective.
std::string shared_dir(dist::Communicator& comm, const std::string& name);

}  // namespace ctmq::testing
