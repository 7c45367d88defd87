// Text and bytes between ranks, on the tensor collectives of Communicator:
// how ranks tell each other where they run (dist/placement.h), what went
// wrong on one of them, and how rank 0 hands a file it read to the others.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "ctmq/dist/communicator.h"

namespace ctmq::dist {

// Returns the `text` of every rank, indexed by rank. Collective; meant for a
// few kilobytes at start-up (two sums over ranks: the lengths, then the bytes,
// each rank filling its own slice of zeros, so the sums are exact).
std::vector<std::string> all_gather_text(Communicator& comm, const std::string& text);

// `root`'s `bytes` on every rank (any content, any size; one broadcast of the
// size, one of the bytes). Collective.
void broadcast_bytes(Communicator& comm, std::string& bytes, int root = 0);

// Runs `work` on rank 0 alone (reading a file once for every rank, say). If
// it throws, every rank throws ctmq::Error with rank 0's message, so no rank
// waits in a later collective for a rank 0 that gave up. Collective.
void run_on_root(Communicator& comm, const std::function<void()>& work);

}  // namespace ctmq::dist
