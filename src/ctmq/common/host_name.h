// This machine's host name, as log lines, locks and placement lines name it.
#pragma once

#include <string>

namespace ctmq {

// gethostname(); "unknown-host" when it fails.
std::string host_name();

}  // namespace ctmq
