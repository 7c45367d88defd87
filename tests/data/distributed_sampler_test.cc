#include "ctmq/data/distributed_sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "ctmq/common/error.h"

namespace ctmq::data {
namespace {

SamplerOptions options(int64_t size, int64_t batch, int world, int rank, uint64_t seed = 7) {
  SamplerOptions o;
  o.dataset_size = size;
  o.global_batch = batch;
  o.world_size = world;
  o.rank = rank;
  o.seed = seed;
  return o;
}

TEST(EpochPermutation, IsAPermutationThatDependsOnSeedAndEpoch) {
  auto p = epoch_permutation(1000, 3, 0);
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[i], i);
  EXPECT_EQ(p, epoch_permutation(1000, 3, 0));
  EXPECT_NE(p, epoch_permutation(1000, 3, 1));
  EXPECT_NE(p, epoch_permutation(1000, 4, 0));
  // Not the identity, and roughly uniform: position of element 0 over epochs.
  int64_t fixed_points = 0;
  for (int64_t i = 0; i < 1000; ++i) fixed_points += p[i] == i;
  EXPECT_LT(fixed_points, 10);
  std::vector<int> first_half(2, 0);
  for (int e = 0; e < 400; ++e) ++first_half[epoch_permutation(10, 1, e)[0] < 5 ? 0 : 1];
  EXPECT_GT(first_half[0], 150);
  EXPECT_GT(first_half[1], 150);
}

TEST(DistributedSampler, RanksAreDisjointAndTheirUnionIsTheOneRankOrder) {
  const int64_t size = 1003, batch = 64;
  DistributedSampler single(options(size, batch, 1, 0));
  for (int world : {2, 4}) {
    std::vector<DistributedSampler> ranks;
    for (int r = 0; r < world; ++r) ranks.emplace_back(options(size, batch, world, r));
    for (int64_t epoch : {0, 5}) {
      std::set<int64_t> seen;
      for (int64_t step = 0; step < single.steps_per_epoch(); ++step) {
        std::vector<int64_t> joined;
        for (int r = 0; r < world; ++r) {
          ASSERT_EQ(ranks[r].steps_per_epoch(), single.steps_per_epoch());
          auto part = ranks[r].indices(epoch, step);
          ASSERT_EQ(static_cast<int64_t>(part.size()), batch / world);
          joined.insert(joined.end(), part.begin(), part.end());
          for (int64_t i : part) EXPECT_TRUE(seen.insert(i).second) << "index " << i << " twice";
        }
        EXPECT_EQ(joined, single.indices(epoch, step));
      }
      EXPECT_EQ(static_cast<int64_t>(seen.size()), single.steps_per_epoch() * batch);
    }
  }
}

TEST(DistributedSampler, EqualStepsPerRankDropTheLastPartialBatch) {
  DistributedSampler a(options(1003, 64, 4, 0)), b(options(1003, 64, 4, 3));
  EXPECT_EQ(a.steps_per_epoch(), 1003 / 64);
  EXPECT_EQ(a.steps_per_epoch(), b.steps_per_epoch());
  EXPECT_THROW(a.indices(0, a.steps_per_epoch()), ctmq::Error);
}

TEST(DistributedSampler, DeterministicBySeedAndEpochAndResumable) {
  DistributedSampler first(options(500, 20, 2, 1, 11));
  // A sampler created later (a resumed job) gives the same indices at any
  // (epoch, step) cursor, in any call order.
  std::vector<std::vector<int64_t>> run;
  for (int64_t step = 0; step < first.steps_per_epoch(); ++step)
    run.push_back(first.indices(2, step));
  DistributedSampler resumed(options(500, 20, 2, 1, 11));
  EXPECT_EQ(resumed.indices(2, 13), run[13]);
  EXPECT_EQ(resumed.indices(0, 0), first.indices(0, 0));
  EXPECT_EQ(resumed.indices(2, 14), run[14]);
  EXPECT_NE(resumed.indices(3, 13), run[13]);
  DistributedSampler other_seed(options(500, 20, 2, 1, 12));
  EXPECT_NE(other_seed.indices(2, 13), run[13]);
}

TEST(DistributedSampler, NoShuffleReadsInOrder) {
  SamplerOptions o = options(100, 10, 2, 1);
  o.shuffle = false;
  DistributedSampler s(o);
  EXPECT_EQ(s.indices(4, 3), (std::vector<int64_t>{35, 36, 37, 38, 39}));
}

TEST(DistributedSampler, RefusesOptionsThatCannotWork) {
  EXPECT_THROW(DistributedSampler(options(100, 10, 3, 0)), ctmq::Error);   // 10 % 3
  EXPECT_THROW(DistributedSampler(options(100, 200, 2, 0)), ctmq::Error);  // batch > size
  EXPECT_THROW(DistributedSampler(options(1, 2, 2, 0)), ctmq::Error);      // ranks > size
  EXPECT_THROW(DistributedSampler(options(100, 10, 2, 2)), ctmq::Error);   // rank >= world
}

}  // namespace
}  // namespace ctmq::data
