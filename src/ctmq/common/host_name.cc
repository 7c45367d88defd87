#include "ctmq/common/host_name.h"

#include <unistd.h>

#include <climits>

namespace ctmq {

std::string host_name() {
  char name[HOST_NAME_MAX + 1] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "unknown-host";
  return name;
}

}  // namespace ctmq
