// The check that every rank sees one shared directory: the run directory a
// multi-node job reads checkpoints from and writes results to must be on
// shared storage (NFS, Lustre, GPFS), not on each node's local scratch.
#pragma once

#include <string>

#include "ctmq/dist/communicator.h"

namespace ctmq::dist {

// Rank 0 writes a file with a fresh token into `directory` (or, when it does
// not exist yet, into its nearest existing ancestor: nothing is created);
// every rank reads the file back from that path as it sees it (retrying for about 2 s, for
// network file systems' caches); rank 0 removes it. Collective. When any rank
// cannot read the token, throws ctmq::Error on every rank naming `what`
// (e.g. "--run-dir"), the directory, and the ranks and hosts that do not see
// rank 0's copy. A no-op on one rank.
void check_shared_directory(Communicator& comm, const std::string& directory,
                            const std::string& what);

}  // namespace ctmq::dist
