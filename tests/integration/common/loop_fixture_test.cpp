#include <btrfsutil.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>

#include "common/file.hpp"
#include "common/process.hpp"
#include "tests/integration/support/loop_btrfs.hpp"

using namespace ballast;
using ballast::testing::LoopBtrfs;

namespace {

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

bool is_mounted(const std::string& mount_point) { return contains(testing::live_fixture_mounts(), mount_point); }

bool is_attached(const std::string& device) { return contains(testing::live_fixture_loop_devices(), device); }

// Runs one hidden test of this executable in a child; it writes its fixture's device, mount
// point and image path to `report` before misbehaving.
struct ChildRun {
  ProcessResult result;
  std::string device, mount_point, image;
};

ChildRun run_hidden_test(const std::string& name) {
  auto dir = make_temp_dir("ballast-child");
  REQUIRE(dir);
  std::string report = path_join(*dir, "report");
  auto r = run_process({"/proc/self/exe", name}, SpawnOptions{.extra_env = {"BALLAST_FIXTURE_REPORT=" + report}});
  REQUIRE(r);
  ChildRun out{*r, {}, {}, {}};
  std::ifstream in(report);
  std::getline(in, out.device);
  std::getline(in, out.mount_point);
  std::getline(in, out.image);
  (void)remove_tree(*dir);
  return out;
}

void write_report(const LoopBtrfs& fs) {
  const char* path = std::getenv("BALLAST_FIXTURE_REPORT");
  REQUIRE(path);
  std::ofstream(path) << fs.device() << "\n" << fs.mount_point() << "\n" << fs.image() << "\n";
}

}  // namespace

TEST_CASE("the loop fixture gives a mounted, empty Btrfs top level") {
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  CHECK(is_mounted((*fs)->mount_point()));
  CHECK(is_attached((*fs)->device()));
  uint64_t id = 0;
  REQUIRE(btrfs_util_subvolume_id((*fs)->mount_point().c_str(), &id) == BTRFS_UTIL_OK);
  CHECK(id == 5);
  auto names = list_dir((*fs)->mount_point());
  REQUIRE(names);
  CHECK(names->empty());
}

TEST_CASE("subvolumes are created, snapshotted, made read-only and deleted through libbtrfsutil") {
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  const std::string top = (*fs)->mount_point();
  const std::string sub = top + "/base", snap = top + "/snap";

  REQUIRE(btrfs_util_create_subvolume(sub.c_str(), 0, nullptr, nullptr) == BTRFS_UTIL_OK);
  REQUIRE(btrfs_util_is_subvolume(sub.c_str()) == BTRFS_UTIL_OK);
  REQUIRE(write_file_atomic(sub + "/hello", "world"));

  REQUIRE(btrfs_util_create_snapshot(sub.c_str(), snap.c_str(), 0, nullptr, nullptr) == BTRFS_UTIL_OK);
  auto copied = read_file(snap + "/hello");
  REQUIRE(copied);
  CHECK(*copied == "world");

  REQUIRE(btrfs_util_set_subvolume_read_only(snap.c_str(), true) == BTRFS_UTIL_OK);
  bool ro = false;
  REQUIRE(btrfs_util_get_subvolume_read_only(snap.c_str(), &ro) == BTRFS_UTIL_OK);
  CHECK(ro);
  CHECK_FALSE(write_file_atomic(snap + "/other", "x"));

  REQUIRE(btrfs_util_set_subvolume_read_only(snap.c_str(), false) == BTRFS_UTIL_OK);
  REQUIRE(btrfs_util_delete_subvolume(snap.c_str(), 0) == BTRFS_UTIL_OK);
  REQUIRE(btrfs_util_delete_subvolume(sub.c_str(), 0) == BTRFS_UTIL_OK);
  CHECK_FALSE(path_exists(sub));
  CHECK_FALSE(path_exists(snap));
}

TEST_CASE("a fixture torn down leaves no mount, loop device or image behind") {
  std::string device, mount_point, image;
  {
    auto fs = LoopBtrfs::create();
    REQUIRE(fs);
    device = (*fs)->device();
    mount_point = (*fs)->mount_point();
    image = (*fs)->image();
  }
  CHECK_FALSE(is_mounted(mount_point));
  CHECK_FALSE(is_attached(device));
  CHECK_FALSE(path_exists(image));
}

// Hidden ([.]) helpers that misbehave on purpose; the tests below run them in a child process.
TEST_CASE("deliberately failing test holding a loop fixture", "[.][deliberately-failing]") {
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  write_report(**fs);
  REQUIRE(1 == 2);  // fails on purpose
}

TEST_CASE("deliberately terminated test holding a loop fixture", "[.][deliberately-terminated]") {
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  write_report(**fs);
  ::raise(SIGTERM);
}

TEST_CASE("deliberately killed test holding a loop fixture", "[.][deliberately-killed]") {
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  write_report(**fs);
  ::raise(SIGKILL);
}

TEST_CASE("a failing test leaves no loop device or mount behind") {
  auto child = run_hidden_test("deliberately failing test holding a loop fixture");
  CHECK_FALSE(child.result.success());
  REQUIRE_FALSE(child.device.empty());
  CHECK_FALSE(is_mounted(child.mount_point));
  CHECK_FALSE(is_attached(child.device));
  CHECK_FALSE(path_exists(child.image));
}

TEST_CASE("a test stopped by SIGTERM leaves no loop device or mount behind") {
  auto child = run_hidden_test("deliberately terminated test holding a loop fixture");
  CHECK(child.result.signal == SIGTERM);
  REQUIRE_FALSE(child.device.empty());
  CHECK_FALSE(is_mounted(child.mount_point));
  CHECK_FALSE(is_attached(child.device));
  CHECK_FALSE(path_exists(child.image));
}

TEST_CASE("what a SIGKILLed test left behind is removed by the sweep") {
  auto child = run_hidden_test("deliberately killed test holding a loop fixture");
  CHECK(child.result.signal == SIGKILL);
  REQUIRE_FALSE(child.device.empty());
  // Nothing can run in a killed process: the fixture is still there until swept.
  CHECK(is_mounted(child.mount_point));
  CHECK(is_attached(child.device));
  CHECK(testing::sweep_stale_loop_fixtures() >= 1);
  CHECK_FALSE(is_mounted(child.mount_point));
  CHECK_FALSE(is_attached(child.device));
  CHECK_FALSE(path_exists(child.image));
}

// tests/run calls this after the integration suite: `integration-tests "[sweep]"`.
TEST_CASE("sweep what killed runs left behind", "[.][sweep]") {
  testing::sweep_stale_loop_fixtures();
  SUCCEED();
}
