// `ballast repo add` of a release whose send stream mostly repeats the previous release's takes
// those chunks from the repository's store (through its build-side reuse index) instead of
// compressing them again, and the release still arrives identical to its source.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <random>

#include "common/file.hpp"
#include "tests/integration/snapshot/tree_builders.hpp"
#include "tests/integration/support/ballast_cli.hpp"
#include "tests/integration/support/loop_btrfs.hpp"
#include "tests/integration/support/tree_compare.hpp"

using namespace ballast;
using namespace ballast::testing;

namespace {

// Compressible but not repetitive, so every chunk compresses differently against another history.
std::string words(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s;
  while (s.size() < n) s += "word" + std::to_string(rng() % 20000) + (rng() % 11 ? " " : "\n");
  return s;
}

}  // namespace

TEST_CASE("repo add reuses the stored chunks of an unchanged stream region and the release fetches identically",
          "[repository][publish-reuse]") {
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  const std::string top = (*fs)->mount_point(), src = top + "/src", dst = top + "/dst";
  const std::string repo = (*fs)->base_dir() + "/repo", keys = (*fs)->base_dir() + "/keys",
                    state = (*fs)->base_dir() + "/state";
  REQUIRE(make_dirs(src));
  REQUIRE(make_dirs(dst));
  run_tool_ok({"btrfs", "-q", "subvolume", "create", src + "/work"});
  // 32 MiB of data first (low inode numbers: early in the stream), then the release's os-release,
  // the only file that differs between the two releases.
  REQUIRE(make_dirs(src + "/work/data"));
  for (int i = 0; i < 16; ++i) REQUIRE(write_file_atomic(src + "/work/data/f" + std::to_string(i), words(2u << 20, i)));
  write_image_version(src + "/work", "1");
  run_tool_ok({"btrfs", "-q", "subvolume", "snapshot", "-r", src + "/work", src + "/1"});
  write_image_version(src + "/work", "2");
  run_tool_ok({"btrfs", "-q", "subvolume", "snapshot", "-r", src + "/work", src + "/2"});

  REQUIRE(run_ballast({"repo", "init", repo, "--keys", keys}).success());
  auto add1 = run_ballast({"--json", "repo", "add", repo, "--keys", keys, "--version", "1", "--subvolume", src + "/1",
                           "--zstd-level", "3"});
  REQUIRE(add1.success());
  CHECK(nlohmann::json::parse(add1.out)["reused_chunks"] == 0);
  auto add2 = run_ballast({"--json", "repo", "add", repo, "--keys", keys, "--version", "2", "--subvolume", src + "/2",
                           "--delta-from", "1", "--zstd-level", "3"});
  REQUIRE(add2.success());
  auto j = nlohmann::json::parse(add2.out);
  const uint64_t full_chunks = j["artifacts"][0]["chunks"];
  const uint64_t reused = j["reused_chunks"];
  // The stream's first chunk names the new subvolume, and the chunks whose 8 MiB history reaches
  // back to it compress differently; the rest of the 32 MiB is release 1's.
  INFO("full stream chunks " << full_chunks << ", reused " << reused);
  CHECK(reused * 2 >= full_chunks);
  CHECK(reused < full_chunks);
  // The index is the publisher's own: nothing under what is uploaded or fetched.
  CHECK(path_exists(repo + "/build/reuse-index"));

  auto fetched = run_ballast({"--json", "--state-dir", state, "fetch", "--repo", "file://" + repo, "--root",
                              repo + "/metadata/1.root.json", "--version", "2", dst});
  INFO(fetched.err);
  REQUIRE(fetched.success());
  CHECK(nlohmann::json::parse(fetched.out)["artifact"] == "full");
  auto diffs = compare_trees(src + "/2", dst + "/2", TreeCompareOptions{.compare_atime = false});
  INFO((diffs.empty() ? std::string() : diffs.front()));
  CHECK(diffs.empty());
}
