// MPI_CHECK(call): runs an MPI call and throws ctmq::Error with MPI's own
// description of the failure and the call's text. Private to src/ctmq/dist
// (MPI stays behind the dist layer's public headers).
#pragma once

#include <mpi.h>

#include <string>

#include "ctmq/common/error.h"

namespace ctmq::dist::internal {

inline std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS)
    return "MPI error " + std::to_string(code);
  return std::string(text, static_cast<size_t>(length));
}

}  // namespace ctmq::dist::internal

#define MPI_CHECK(call)                                                                           \
  do {                                                                                            \
    int ctmq_mpi_rc_ = (call);                                                                    \
    CTMQ_CHECK(ctmq_mpi_rc_ == MPI_SUCCESS,                                                       \
               "MPI call " << #call                                                               \
                           << " failed: " << ::ctmq::dist::internal::mpi_error_text(ctmq_mpi_rc_) \
                           << "; check the launcher (mpirun/srun) and that all ranks run"         \
                              " the same command");                                               \
  } while (0)
