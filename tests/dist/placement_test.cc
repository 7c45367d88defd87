// Which GPU each rank takes (dist::assign_gpus) under the bindings Slurm and
// mpirun make, and the refusal of two ranks on one GPU. The GPUs are UUIDs as
// CUDA reports them; no GPU is needed.
#include "ctmq/dist/placement.h"

#include <gtest/gtest.h>

#include "test_support.h"

namespace ctmq::dist {
namespace {

RankPlace place(const std::string& host, int local_rank, const std::string& visible,
                std::vector<std::string> gpus) {
  RankPlace p;
  p.host = host;
  p.local_rank = local_rank;
  p.local_size = 2;
  p.visible_devices = visible;
  p.visible_devices_set = !visible.empty();
  p.gpus = std::move(gpus);
  return p;
}

const std::string A = "GPU-aaaaaaaa-0000-0000-0000-000000000000";
const std::string B = "GPU-bbbbbbbb-0000-0000-0000-000000000000";
const std::string C = "GPU-cccccccc-0000-0000-0000-000000000000";
const std::string D = "GPU-dddddddd-0000-0000-0000-000000000000";

TEST(AssignGpus, NoBindingRanksOfANodeTakeItsGpusInRankOrder) {
  // 2 nodes x 2 ranks, every rank of a node sees both of its GPUs.
  const std::vector<RankPlace> places{place("n1", 0, "", {A, B}), place("n1", 1, "", {A, B}),
                                      place("n2", 0, "", {C, D}), place("n2", 1, "", {C, D})};
  EXPECT_EQ(assign_gpus(places), (std::vector<int>{0, 1, 0, 1}));
}

TEST(AssignGpus, OneGpuPerTaskEachRankTakesItsOwn) {
  // --gpus-per-task=1 with cgroup-constrained devices: every rank sees "0",
  // a different GPU each. Launcher variables would all say local rank 0.
  const std::vector<RankPlace> places{place("n1", 0, "0", {A}), place("n1", 1, "0", {B}),
                                      place("n2", 0, "0", {C}), place("n2", 1, "0", {D})};
  EXPECT_EQ(assign_gpus(places), (std::vector<int>{0, 0, 0, 0}));
}

TEST(AssignGpus, RanksSharingAListOfSeveralGpusSplitIt) {
  // --gpu-bind=closest on a node of 4 GPUs: ranks 0-1 see A,B and 2-3 C,D;
  // local rank % device count would put ranks 2 and 3 on C and D's indices
  // 0 and 1 by chance, but ranks 0 and 2 of a 3-rank socket would collide.
  const std::vector<RankPlace> places{place("n1", 0, "0,1", {A, B}), place("n1", 1, "0,1", {A, B}),
                                      place("n1", 2, "2,3", {C, D}), place("n1", 3, "2,3", {C, D})};
  EXPECT_EQ(assign_gpus(places), (std::vector<int>{0, 1, 0, 1}));
}

TEST(AssignGpus, TwoRanksOnOneGpuAreRefusedNamingBoth) {
  const std::vector<RankPlace> places{place("n1", 0, "0", {A}), place("n1", 1, "0", {A})};
  const std::string e = ctmq::testing::error_of([&] { assign_gpus(places); });
  EXPECT_NE(e.find("rank 0 (host n1"), std::string::npos) << e;
  EXPECT_NE(e.find("rank 1 (host n1"), std::string::npos) << e;
  EXPECT_NE(e.find(A), std::string::npos) << e;
  EXPECT_NE(e.find("2 ranks share a list of 1 GPU(s)"), std::string::npos) << e;
  EXPECT_EQ(assign_gpus(places, /*allow_shared=*/true), (std::vector<int>{0, 0}));
}

TEST(AssignGpus, OverlappingListsAreRefused) {
  // Rank 0 sees A,B and takes A; rank 1 sees B,A (another order) and takes B;
  // rank 2 sees A alone: A is rank 0's.
  const std::vector<RankPlace> places{place("n1", 0, "0,1", {A, B}), place("n1", 1, "1,0", {B, A}),
                                      place("n1", 2, "0", {A})};
  const std::string e = ctmq::testing::error_of([&] { assign_gpus(places); });
  EXPECT_NE(e.find("their GPU lists overlap"), std::string::npos) << e;
  EXPECT_NE(e.find("rank 2"), std::string::npos) << e;
}

TEST(AssignGpus, CpuRanksTakeNoGpu) {
  const std::vector<RankPlace> places{place("n1", 0, "", {}), place("n1", 1, "", {})};
  EXPECT_EQ(assign_gpus(places), (std::vector<int>{-1, -1}));
}

TEST(Placement, EncodesAndDecodesEveryField) {
  RankPlace p = place("node-7", 1, "2,3", {A, B});
  p.slurm_node = "n7";
  const RankPlace q = decode_place(encode_place(p));
  EXPECT_EQ(q.host, "node-7");
  EXPECT_EQ(q.slurm_node, "n7");
  EXPECT_EQ(q.local_rank, 1);
  EXPECT_EQ(q.local_size, 2);
  EXPECT_TRUE(q.visible_devices_set);
  EXPECT_EQ(q.visible_devices, "2,3");
  EXPECT_EQ(q.gpus, (std::vector<std::string>{A, B}));
  const RankPlace empty = decode_place(encode_place(RankPlace{}));
  EXPECT_FALSE(empty.visible_devices_set);
  EXPECT_TRUE(empty.gpus.empty());
}

TEST(Placement, LineNamesHostNodeDeviceAndVisibleDevices) {
  RankPlace p = place("h", 1, "", {});
  p.slurm_node = "n2";
  const std::string line = describe_placement(3, 4, p, "cpu", "");
  EXPECT_EQ(line.rfind("placement: rank 3 of 4 on host h (Slurm node n2), node rank 1 of 2, "
                       "device cpu, CUDA_VISIBLE_DEVICES=(unset)",
                       0),
            0u)
      << line;
  EXPECT_NE(describe_placement(0, 1, place("h", 0, "1", {B}), "cuda:0", B)
                .find("device cuda:0 (" + B + "), CUDA_VISIBLE_DEVICES=1"),
            std::string::npos);
}

}  // namespace
}  // namespace ctmq::dist
