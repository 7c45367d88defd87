// MetricsLog on resume: records past the resume step and damaged lines are
// dropped; a global_step that is no integer in range is damage, never cast
// (the cast was undefined behaviour; common/json_integer.h).
#include "ctmq/train/metrics_log.h"

#include <gtest/gtest.h>

#include "ctmq/common/atomic_file.h"
#include "test_support.h"

namespace ctmq::train {
namespace {

TEST(MetricsLog, ResumeKeepsOnlyWholeRecordsUpToItsStep) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/metrics.jsonl";
  write_file_atomically(path,
                        "{\"kind\":\"train\",\"global_step\":2}\n"
                        "{\"kind\":\"train\",\"global_step\":1e300}\n"
                        "{\"kind\":\"train\",\"global_step\":3.5}\n"
                        "{\"kind\":\"train\",\"global_step\":\"4\"}\n"
                        "[4]\n"
                        "{\"kind\":\"eval\",\"global_step\":4}\n"
                        "{\"kind\":\"train\",\"global_step\":8}\n"
                        "{\"kind\":\"train\",\"glo");
  { MetricsLog log(path, 5); }
  EXPECT_EQ(read_file(path),
            "{\"kind\":\"train\",\"global_step\":2}\n"
            "{\"kind\":\"eval\",\"global_step\":4}\n");
}

}  // namespace
}  // namespace ctmq::train
