#include "ctmq/model/network_description.h"

#include <sstream>

#include "ctmq/common/error.h"

namespace ctmq::model {

NetworkDescription describe_network(const ModelOptions& options) {
  return {options.architecture, options.num_classes, options.in_channels, options.width};
}

std::string to_string(const NetworkDescription& n) {
  std::ostringstream s;
  s << architecture_name(n.architecture) << ", " << n.num_classes << " classes, " << n.in_channels
    << " input channel" << (n.in_channels == 1 ? "" : "s");
  if (n.architecture != Architecture::kResNet18) s << ", width " << n.width;
  return s.str();
}

bool same_network(const NetworkDescription& a, const NetworkDescription& b) {
  return a.architecture == b.architecture && a.num_classes == b.num_classes &&
         a.in_channels == b.in_channels &&
         (a.architecture == Architecture::kResNet18 || a.width == b.width);
}

void check_same_network(const NetworkDescription& found, const NetworkDescription& expected,
                        const std::string& source, const std::string& remedy) {
  CTMQ_CHECK(same_network(found, expected), source << ": architecture " << to_string(found)
                                                   << "; this stage builds " << to_string(expected)
                                                   << (remedy.empty() ? "" : "; ") << remedy);
}

std::vector<std::pair<std::string, c10::IValue>> network_metadata(const NetworkDescription& n) {
  return {{"architecture", c10::IValue(architecture_name(n.architecture))},
          {"num_classes", c10::IValue(n.num_classes)},
          {"in_channels", c10::IValue(n.in_channels)},
          {"width", c10::IValue(n.width)}};
}

NetworkDescription network_from_metadata(
    const std::function<c10::IValue(const std::string& key)>& read) {
  NetworkDescription n;
  n.architecture = parse_architecture(read("architecture").toStringRef());
  n.num_classes = read("num_classes").toInt();
  n.in_channels = read("in_channels").toInt();
  n.width = read("width").toInt();
  return n;
}

}  // namespace ctmq::model
