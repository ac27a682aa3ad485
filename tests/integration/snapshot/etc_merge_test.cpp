#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>

#include "common/file.hpp"
#include "snapshot/etc_merge.hpp"
#include "tests/integration/support/loop_btrfs.hpp"

using namespace ballast;
using ballast::testing::LoopBtrfs;

namespace {

struct EtcTrees {
  std::unique_ptr<LoopBtrfs> fs;
  std::string old_image, live, target, new_image;

  EtcTrees() {
    auto f = LoopBtrfs::create();
    REQUIRE(f);
    fs = std::move(*f);
    old_image = fs->mount_point() + "/old-image-etc";
    live = fs->mount_point() + "/live-etc";
    new_image = fs->mount_point() + "/new-image-etc";
    target = fs->mount_point() + "/target-etc";
    for (auto* d : {&old_image, &live, &new_image}) REQUIRE(make_dirs(*d));
  }
  // Writes the same file into the old image and the live /etc (as installing the image would).
  void both(const std::string& rel, const std::string& content) {
    put(old_image, rel, content);
    put(live, rel, content);
  }
  static void put(const std::string& root, const std::string& rel, const std::string& content, mode_t mode = 0644) {
    std::string path = root + "/" + rel;
    REQUIRE(make_dirs(path.substr(0, path.rfind('/'))));
    REQUIRE(write_file_atomic(path, content, mode));
  }
  // The new deployment's /etc starts as a copy of the new image's /etc.
  Result<snapshot::EtcMergeReport> merge() {
    REQUIRE(run_cp(new_image, target));
    return snapshot::merge_etc(old_image, live, target);
  }
  static bool run_cp(const std::string& from, const std::string& to) {
    return std::system(("cp -a --reflink=auto '" + from + "' '" + to + "'").c_str()) == 0;
  }
  std::string in_target(const std::string& rel) {
    auto r = read_file(target + "/" + rel);
    return r ? *r : "<missing>";
  }
};

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

struct stat lstat_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st;
}

bool extents_shared(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  ::fsync(fd);
  alignas(struct fiemap) char buf[sizeof(struct fiemap) + 8 * sizeof(struct fiemap_extent)] = {};
  auto* fm = reinterpret_cast<struct fiemap*>(buf);
  fm->fm_length = ~0ull;
  fm->fm_flags = FIEMAP_FLAG_SYNC;
  fm->fm_extent_count = 8;
  bool ok = ::ioctl(fd, FS_IOC_FIEMAP, fm) == 0;
  ::close(fd);
  REQUIRE(ok);
  REQUIRE(fm->fm_mapped_extents > 0);
  return fm->fm_extents[0].fe_flags & FIEMAP_EXTENT_SHARED;
}

}  // namespace

TEST_CASE("the /etc merge keeps local changes and takes everything else from the new image") {
  EtcTrees t;
  // unchanged locally, changed in the image → the new image's version
  t.both("hosts", "127.0.0.1 localhost\n");
  EtcTrees::put(t.new_image, "hosts", "127.0.0.1 localhost new\n");
  // changed locally, unchanged in the image → the local version
  t.both("motd", "welcome\n");
  EtcTrees::put(t.live, "motd", "welcome to prod\n");
  EtcTrees::put(t.new_image, "motd", "welcome\n");
  // changed in both → the local version, whole
  t.both("ssh/sshd_config", "PermitRootLogin no\n");
  EtcTrees::put(t.live, "ssh/sshd_config", "PermitRootLogin no\nPort 2222\n");
  EtcTrees::put(t.new_image, "ssh/sshd_config", "PermitRootLogin no\nUsePAM yes\n");
  // added locally → carried
  EtcTrees::put(t.live, "myapp/app.conf", "threads = 8\n");
  // deleted locally → stays deleted, even though the new image changed it
  t.both("cron.d/cleanup", "0 * * * * root cleanup\n");
  REQUIRE(::unlink((t.live + "/cron.d/cleanup").c_str()) == 0);
  EtcTrees::put(t.new_image, "cron.d/cleanup", "30 * * * * root cleanup\n");
  // new in the image only → appears
  EtcTrees::put(t.new_image, "new-in-v2.conf", "fresh\n");
  // unchanged everywhere → stays
  t.both("os-hint", "same\n");
  EtcTrees::put(t.new_image, "os-hint", "same\n");

  auto report = t.merge();
  REQUIRE(report);
  CHECK(t.in_target("hosts") == "127.0.0.1 localhost new\n");
  CHECK(t.in_target("motd") == "welcome to prod\n");
  CHECK(t.in_target("ssh/sshd_config") == "PermitRootLogin no\nPort 2222\n");
  CHECK(t.in_target("myapp/app.conf") == "threads = 8\n");
  CHECK(t.in_target("cron.d/cleanup") == "<missing>");
  CHECK(t.in_target("new-in-v2.conf") == "fresh\n");
  CHECK(t.in_target("os-hint") == "same\n");
  CHECK(has(report->carried, "motd"));
  CHECK(has(report->carried, "ssh/sshd_config"));
  CHECK(has(report->carried, "myapp"));
  CHECK(has(report->deleted, "cron.d/cleanup"));
  CHECK_FALSE(has(report->carried, "hosts"));
  CHECK_FALSE(has(report->carried, "os-hint"));
}

TEST_CASE("a change of mode, owner or xattrs alone makes a file a local change carried whole") {
  EtcTrees t;
  for (const char* f : {"mode", "owner", "xattr"}) {
    t.both(f, "v1\n");
    EtcTrees::put(t.new_image, f, "v2\n");
  }
  REQUIRE(::chmod((t.live + "/mode").c_str(), 0600) == 0);
  REQUIRE(::chown((t.live + "/owner").c_str(), 1234, 5678) == 0);
  // vfs_cap_data revision 2, effective, permitted = CAP_NET_RAW.
  const std::string cap("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20);
  REQUIRE(::setxattr((t.live + "/xattr").c_str(), "user.ballast-test", "on", 2, 0) == 0);
  REQUIRE(::setxattr((t.live + "/xattr").c_str(), "security.capability", cap.data(), cap.size(), 0) == 0);

  auto report = t.merge();
  REQUIRE(report);
  CHECK(t.in_target("mode") == "v1\n");
  CHECK((lstat_of(t.target + "/mode").st_mode & 07777) == 0600);
  CHECK(t.in_target("owner") == "v1\n");
  CHECK(lstat_of(t.target + "/owner").st_uid == 1234);
  CHECK(lstat_of(t.target + "/owner").st_gid == 5678);
  CHECK(t.in_target("xattr") == "v1\n");
  char value[8] = {};
  CHECK(::getxattr((t.target + "/xattr").c_str(), "user.ballast-test", value, sizeof(value)) == 2);
  CHECK(std::string(value, 2) == "on");
  std::string got(64, '\0');
  auto n = ::getxattr((t.target + "/xattr").c_str(), "security.capability", got.data(), got.size());
  REQUIRE(n > 0);
  CHECK(got.substr(0, static_cast<size_t>(n)) == cap);
}

TEST_CASE("a retargeted symlink is carried as a link and never followed") {
  EtcTrees t;
  REQUIRE(::symlink("/usr/share/zoneinfo/UTC", (t.old_image + "/localtime").c_str()) == 0);
  REQUIRE(::symlink("/usr/share/zoneinfo/Europe/Paris", (t.live + "/localtime").c_str()) == 0);
  REQUIRE(::symlink("/usr/share/zoneinfo/UTC", (t.new_image + "/localtime").c_str()) == 0);
  // A local symlink pointing outside /etc is copied as a symlink: its target is not read.
  REQUIRE(::symlink("../../../../etc/shadow", (t.live + "/escape").c_str()) == 0);

  auto report = t.merge();
  REQUIRE(report);
  char buf[256] = {};
  REQUIRE(::readlink((t.target + "/localtime").c_str(), buf, sizeof(buf) - 1) > 0);
  CHECK(std::string(buf) == "/usr/share/zoneinfo/Europe/Paris");
  CHECK(S_ISLNK(lstat_of(t.target + "/escape").st_mode));
}

TEST_CASE("a directory whose mode changed keeps the new image's files under the admin's mode") {
  EtcTrees t;
  t.both("sudoers.d/base", "root ALL=(ALL) ALL\n");
  EtcTrees::put(t.new_image, "sudoers.d/base", "root ALL=(ALL:ALL) ALL\n");
  REQUIRE(::chmod((t.live + "/sudoers.d").c_str(), 0750) == 0);

  auto report = t.merge();
  REQUIRE(report);
  CHECK((lstat_of(t.target + "/sudoers.d").st_mode & 07777) == 0750);
  CHECK(t.in_target("sudoers.d/base") == "root ALL=(ALL:ALL) ALL\n");
  CHECK(has(report->metadata, "sudoers.d"));
}

TEST_CASE("a locally changed directory the new image dropped is carried; an untouched one is not") {
  EtcTrees t;
  t.both("dropped-touched/a", "1\n");
  EtcTrees::put(t.live, "dropped-touched/b", "local\n");
  t.both("dropped-untouched/a", "1\n");
  auto report = t.merge();
  REQUIRE(report);
  CHECK(t.in_target("dropped-touched/b") == "local\n");
  CHECK(t.in_target("dropped-touched/a") == "1\n");
  CHECK(t.in_target("dropped-untouched/a") == "<missing>");
}

TEST_CASE("carried files are reflinked on Btrfs, sharing extents with the live /etc") {
  EtcTrees t;
  std::string big(256 * 1024, 'x');
  t.both("big.conf", big);
  EtcTrees::put(t.live, "big.conf", big + "local\n");
  auto report = t.merge();
  REQUIRE(report);
  CHECK(t.in_target("big.conf") == big + "local\n");
  CHECK(extents_shared(t.target + "/big.conf"));
}

TEST_CASE("merging with a missing live /etc fails and names the path") {
  EtcTrees t;
  REQUIRE(make_dirs(t.target));
  auto report = snapshot::merge_etc(t.old_image, t.fs->mount_point() + "/nope", t.target);
  REQUIRE_FALSE(report);
  CHECK_THAT(report.error().describe(), Catch::Contains("/nope"));
}
