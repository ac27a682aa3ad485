// Subvolume operations on a real loop-mounted Btrfs.
#include <btrfsutil.h>

#include <catch2/catch.hpp>

#include <cstdlib>

#include "common/file.hpp"
#include "common/process.hpp"
#include "snapshot/subvolume.hpp"
#include "tests/integration/support/loop_btrfs.hpp"

using namespace ballast;
using namespace ballast::testing;

namespace {
size_t deleted_not_cleaned(const std::string& path) {
  uint64_t* ids = nullptr;
  size_t n = 0;
  REQUIRE(btrfs_util_deleted_subvolumes(path.c_str(), &ids, &n) == BTRFS_UTIL_OK);
  free(ids);
  return n;
}
}  // namespace

TEST_CASE("after a subvolume is deleted, waiting for the cleaner leaves no deleted subvolume uncleaned",
          "[snapshot][subvolume]") {
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  const std::string top = (*fs)->mount_point();
  for (const char* name : {"a", "b"}) {
    const std::string sv = top + "/" + name;
    REQUIRE(snapshot::create_subvolume(sv));
    // Enough files that the cleaner has work to do.
    for (int i = 0; i < 200; ++i) REQUIRE(write_file_atomic(sv + "/f" + std::to_string(i), std::string(64 << 10, 'x')));
  }
  REQUIRE(run_checked({"sync"}));
  REQUIRE(snapshot::delete_subvolume(top + "/a"));
  REQUIRE(snapshot::delete_subvolume(top + "/b"));
  auto waited = snapshot::wait_for_cleaned_subvolumes(top);
  REQUIRE(waited);
  CHECK(*waited <= 2);
  CHECK(deleted_not_cleaned(top) == 0);
  // Nothing deleted: returns at once with nothing waited for.
  auto again = snapshot::wait_for_cleaned_subvolumes(top);
  REQUIRE(again);
  CHECK(*again == 0);
}
