#include "ctmq/dist/text_collectives.h"

#include <torch/torch.h>

#include <cstring>

#include "ctmq/common/error.h"

namespace ctmq::dist {

std::vector<std::string> all_gather_text(Communicator& comm, const std::string& text) {
  const int n = comm.size();
  if (n == 1) return {text};
  std::vector<torch::Tensor> lengths{torch::zeros({n}, torch::kInt64)};
  lengths[0][comm.rank()] = static_cast<int64_t>(text.size());
  comm.allreduce_sum(lengths);
  std::vector<int64_t> offset(n + 1, 0);
  for (int r = 0; r < n; ++r) offset[r + 1] = offset[r] + lengths[0][r].item<int64_t>();
  // int32: a dtype every communicator sums; one contributor per element.
  std::vector<torch::Tensor> bytes{torch::zeros({std::max<int64_t>(offset[n], 1)}, torch::kInt32)};
  auto own = bytes[0].accessor<int32_t, 1>();
  for (size_t i = 0; i < text.size(); ++i)
    own[offset[comm.rank()] + static_cast<int64_t>(i)] = static_cast<unsigned char>(text[i]);
  comm.allreduce_sum(bytes);
  auto all = bytes[0].accessor<int32_t, 1>();
  std::vector<std::string> texts(n);
  for (int r = 0; r < n; ++r) {
    texts[r].reserve(static_cast<size_t>(offset[r + 1] - offset[r]));
    for (int64_t i = offset[r]; i < offset[r + 1]; ++i)
      texts[r].push_back(static_cast<char>(all[i]));
  }
  return texts;
}

void broadcast_bytes(Communicator& comm, std::string& bytes, int root) {
  if (comm.size() == 1) return;
  std::vector<torch::Tensor> size{
      torch::full({1}, static_cast<int64_t>(bytes.size()), torch::kInt64)};
  comm.broadcast(size, root);
  const int64_t n = size[0].item<int64_t>();
  std::vector<torch::Tensor> data{torch::empty({std::max<int64_t>(n, 1)}, torch::kUInt8)};
  if (comm.rank() == root && n > 0) std::memcpy(data[0].data_ptr(), bytes.data(), bytes.size());
  comm.broadcast(data, root);
  if (comm.rank() != root) bytes.assign(static_cast<const char*>(data[0].data_ptr()), n);
}

void run_on_root(Communicator& comm, const std::function<void()>& work) {
  std::string failure;
  if (comm.rank() == 0) {
    try {
      work();
    } catch (const std::exception& e) {
      failure = e.what();
      if (failure.empty()) failure = "rank 0 failed";
      if (comm.size() == 1) throw;
    }
  }
  if (comm.size() == 1) return;
  broadcast_bytes(comm, failure, 0);
  if (!failure.empty()) throw Error(failure);
}

}  // namespace ctmq::dist
