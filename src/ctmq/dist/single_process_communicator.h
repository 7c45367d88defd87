// A Communicator of exactly one rank that needs no MPI: every collective is
// the identity. For unit tests and for library callers that never launch MPI.
#pragma once

#include <cstdlib>
#include <iostream>

#include "ctmq/dist/communicator.h"

namespace ctmq::dist {

class SingleProcessCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 1; }
  void allreduce_sum(std::vector<torch::Tensor>&) override {}
  void broadcast(std::vector<torch::Tensor>&, int) override {}
  bool any(bool flag) override { return flag; }
  void barrier() override {}
  [[noreturn]] void abort(const std::string& message, int exit_code) override {
    std::cerr << message << std::endl;
    std::exit(exit_code);
  }
};

}  // namespace ctmq::dist
