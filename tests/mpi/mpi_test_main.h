// The MPI context of an MPI test executable (see mpi_test_main.cc).
#pragma once

#include "ctmq/dist/mpi_context.h"

namespace ctmq::testing {

// Valid for the whole run of RUN_ALL_TESTS().
dist::MpiContext& mpi_context();

}  // namespace ctmq::testing
