#include <catch2/catch.hpp>

#include "common/file.hpp"
#include "tests/integration/support/loop_btrfs.hpp"

using namespace ballast;

TEST_CASE("remove_tree never deletes through a filesystem mounted below it") {
  auto fs = testing::LoopBtrfs::create();
  REQUIRE(fs);
  REQUIRE(write_file_atomic((*fs)->mount_point() + "/precious", "data"));
  // base_dir holds the mount point: removing it must fail rather than empty the mounted filesystem.
  CHECK_FALSE(remove_tree((*fs)->base_dir()));
  CHECK(*read_file((*fs)->mount_point() + "/precious") == "data");
}
