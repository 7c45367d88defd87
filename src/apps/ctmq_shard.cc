// ctmq-shard: raw data set -> checksummed shards + manifest
// (docs/shard-format.md). One process converts everything and merges; a job
// array runs --array-index I --array-count N per task, then --merge once.
#include <iostream>
#include <sstream>

#include "apps/app_options.h"
#include "ctmq/common/atomic_file.h"
#include "ctmq/common/error.h"
#include "ctmq/data/shard_builder.h"

namespace {

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}

void parse_image_size(const std::string& text, int64_t& height, int64_t& width) {
  if (text.empty()) return;
  size_t x = text.find('x');
  CTMQ_CHECK(x != std::string::npos,
             "--image-size '" << text << "' must be HEIGHTxWIDTH, e.g. 224x224");
  try {
    height = std::stoll(text.substr(0, x));
    width = std::stoll(text.substr(x + 1));
  } catch (const std::exception&) {
    CTMQ_FAIL("--image-size '" << text << "' must be HEIGHTxWIDTH, e.g. 224x224");
  }
  CTMQ_CHECK(height > 0 && width > 0, "--image-size '" << text << "' must be positive");
}

int run(int argc, char** argv) {
  namespace po = ctmq::apps::po;
  using namespace ctmq::data;
  ctmq::apps::AppInfo info{"ctmq-shard",
                           "convert a data set (IDX, CIFAR binary, PNG folders) into ctmq shards",
                           {"shard"},
                           {"ctmq-shard --format idx --input train-images-idx3-ubyte.gz "
                            "--input train-labels-idx1-ubyte.gz --output shards/train",
                            "ctmq-shard --format image-folder --input photos/ --channels 3 "
                            "--image-size 224x224 --record encoded --output shards/photos",
                            "ctmq-shard --check shards/train/manifest.json"},
                           {{0, "written (with --check: every checksum valid)"}}};
  // Each option bound to its ShardBuildOptions field, with the struct's default.
  ShardBuildOptions build;
  SourceOptions& source = build.source;
  std::string class_names, image_size;
  using ctmq::apps::bound;
  using ctmq::apps::enum_value;
  po::options_description options("ctmq-shard");
  // clang-format off
  options.add_options()
    ("format", enum_value(&source.kind, kSourceKindNames, "--format")->value_name("KIND"),
     "input kind: idx | cifar10 | cifar100 | image-folder")
    ("input", po::value(&source.inputs)->value_name("PATH")->composing(),
     "input file or directory (repeat): idx: images and labels files (.gz or not); "
     "cifar*: the binary batches in order; image-folder: ROOT holding CLASS/*.png, *.jpg, *.jpeg")
    ("output", po::value(&build.output_dir)->value_name("DIR"), "output directory (must not hold a manifest yet)")
    ("class-names", bound(&class_names)->value_name("NAMES"),
     "comma-separated class names (default: from the input, or 0..K-1)")
    ("channels", bound(&source.channels)->value_name("N"),
     "image-folder: 1 (gray) or 3 (RGB); alpha is dropped")
    ("image-size", bound(&image_size)->value_name("HxW"),
     "image-folder: HEIGHTxWIDTH of the records (default: the first image's size)")
    ("size-mismatch", enum_value(&source.size_policy, kSizePolicyNames, "--size-mismatch")->value_name("MODE"),
     "image-folder: an image of another size is an error (reject) or is resized (resize)")
    ("records-per-shard", bound(&build.records_per_shard)->value_name("N"),
     "records per shard file (0 = about 256 MiB per shard; encoded: 2048 records)")
    ("record", enum_value(&source.record, kRecordKindNames, "--record", "fixed: raw pixels; encoded: JPEG/PNG")->value_name("KIND"),
     "record type: fixed (raw pixels, version 1) | encoded (JPEG/PNG bytes, version 2; "
     "image-folder, needs --image-size = the size the reader delivers)")
    ("max-side", bound(&source.encoding.max_side)->value_name("PX"),
     "encoded: an image whose shorter side is larger is resized to it and stored as JPEG; "
     "0 = keep every file's bytes")
    ("jpeg-quality", bound(&source.encoding.jpeg_quality)->value_name("Q"),
     "encoded: quality (1..100) of the JPEGs written for resized images")
    ("array-index", po::value(&build.array_index)->value_name("I"), "convert only slice I (a job-array task); no manifest")
    ("array-count", bound(&build.array_count)->value_name("N"), "number of slices (job-array tasks)")
    ("merge", po::bool_switch(), "only check that every slice is complete and write the manifest")
    ("check", po::value<std::string>()->value_name("MANIFEST"),
     "verify every record and shard checksum of MANIFEST, then exit (0 = valid)");
  // clang-format on
  po::variables_map vm;
  if (!ctmq::apps::parse_options(argc, argv, info, options, vm)) return 0;

  if (vm.count("check")) {
    const std::string manifest = vm["check"].as<std::string>();
    verify_data_set(manifest);
    std::cout << "ctmq-shard: " << manifest << " is valid\n";
    return 0;
  }

  source.class_names = split_commas(class_names);
  parse_image_size(image_size, source.height, source.width);
  CTMQ_CHECK(vm.count("output"), "--output is required; see ctmq-shard --help");
  const bool merge_only = vm["merge"].as<bool>();
  CTMQ_CHECK(!(merge_only && vm.count("array-index")),
             "--merge and --array-index exclude each other: run the slices, then --merge once");
  if (merge_only) {
    build.step = BuildStep::kMerge;
  } else if (vm.count("array-index")) {
    build.step = BuildStep::kSlice;
  } else {
    CTMQ_CHECK(build.array_count == 1,
               "--array-count " << build.array_count << " needs --array-index (or --merge)");
  }
  Manifest manifest = build_shards(build);
  if (build.step == BuildStep::kSlice) {
    std::cout << "ctmq-shard: slice " << build.array_index << " of " << build.array_count
              << " complete in " << build.output_dir << "\n";
    return 0;
  }
  // The resolved options next to the data (repeated --input as repeated keys).
  std::string config = ctmq::apps::resolved_config_ini(info, options, vm);
  std::string inputs;
  for (const auto& input : build.source.inputs) inputs += "input = " + input + "\n";
  const std::string unprintable = "input = (unprintable)\n";
  if (auto at = config.find(unprintable); at != std::string::npos) {
    config.replace(at, unprintable.size(), inputs);
  }
  ctmq::write_file_atomically(build.output_dir + "/config.ini", "[shard]\n" + config);
  std::cout << "ctmq-shard: " << manifest.count << " records in " << manifest.shards.size()
            << " shards, manifest " << build.output_dir << "/manifest.json\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ctmq::apps::run_main("ctmq-shard", [&] { return run(argc, argv); });
}
