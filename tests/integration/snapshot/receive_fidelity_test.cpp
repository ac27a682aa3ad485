// Streams from the real `btrfs send` received by `btrfs receive` and by ballast must give the same
// trees, full and incremental, for every kind of inode and change a stream can carry.
#include <btrfsutil.h>
#include <fcntl.h>
#include <linux/btrfs.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <random>
#include <set>
#include <sstream>

#include "common/byte_source.hpp"
#include "common/file.hpp"
#include "common/process.hpp"
#include "snapshot/receive.hpp"
#include "snapshot/send.hpp"
#include "tests/integration/snapshot/tree_builders.hpp"
#include "tests/integration/support/loop_btrfs.hpp"
#include "tests/integration/support/tree_compare.hpp"

using namespace ballast;
using namespace ballast::testing;

namespace {

std::string join_diffs(const std::vector<std::string>& d) {
  std::string s;
  for (size_t i = 0; i < d.size() && i < 30; ++i) s += d[i] + "\n";
  return s;
}

void btrfs(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"btrfs"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = run_checked(argv);
  INFO((r ? std::string() : r.error().describe()));
  REQUIRE(r);
}

// Exactly as btrfs receive, access times included, unless `exact_atime` is false (the default of
// ballast receive).
snapshot::ReceivedSubvolume ours(const std::string& stream, const std::string& dest, bool decompress = false,
                                 bool exact_atime = true) {
  auto src = open_file_source(stream);
  REQUIRE(src);
  snapshot::ReceiveOptions o;
  o.dest_dir = dest;
  o.decompress_encoded = decompress;
  o.exact_atime = exact_atime;
  auto r = snapshot::receive(**src, o);
  INFO((r ? std::string() : r.error().describe()));
  REQUIRE(r);
  return *r;
}

struct btrfs_util_subvolume_info info_of(const std::string& path) {
  struct btrfs_util_subvolume_info i {};
  REQUIRE(btrfs_util_subvolume_info(path.c_str(), 0, &i) == BTRFS_UTIL_OK);
  return i;
}

// Protocol 1 cannot express a punched hole in an incremental stream (it sends zeros), so only
// the two receivers, not the source, must then agree on holes.
void check_same_subvol(const std::string& source, const std::string& reference, const std::string& mine,
                       bool source_holes = true) {
  auto d = compare_trees(reference, mine);
  INFO("btrfs receive vs ballast receive:\n" << join_diffs(d));
  CHECK(d.empty());
  TreeCompareOptions so;
  so.compare_holes = source_holes;
  d = compare_trees(source, mine, so);
  INFO("source vs ballast receive:\n" << join_diffs(d));
  CHECK(d.empty());
  auto ir = info_of(reference), im = info_of(mine), is = info_of(source);
  CHECK(std::memcmp(im.received_uuid, is.uuid, 16) == 0);
  CHECK(std::memcmp(im.received_uuid, ir.received_uuid, 16) == 0);
  CHECK(im.stransid == ir.stransid);
  CHECK(im.stransid == is.ctransid);
  CHECK((im.flags & 1) == 1);  // read-only
  bool ro = false;
  REQUIRE(btrfs_util_get_subvolume_read_only(mine.c_str(), &ro) == BTRFS_UTIL_OK);
  CHECK(ro);
}

struct Variant {
  const char* name;
  std::vector<std::string> send_flags;
  bool decompress;
};

}  // namespace

TEST_CASE("btrfs send streams, full and incremental, are received exactly like btrfs receive does") {
  LoopBtrfs::Options fo;
  fo.mount_options = "compress-force=zstd";
  auto fs = LoopBtrfs::create(fo);
  REQUIRE(fs);
  const std::string top = (*fs)->mount_point();
  btrfs({"subvolume", "create", top + "/src"});
  build_tree_v1(top + "/src");
  btrfs({"subvolume", "snapshot", "-r", top + "/src", top + "/snap1"});
  change_tree_v2(top + "/src");
  btrfs({"subvolume", "snapshot", "-r", top + "/src", top + "/snap2"});
  change_tree_v3(top + "/src");
  btrfs({"subvolume", "snapshot", "-r", top + "/src", top + "/snap3"});

  std::vector<Variant> variants{
      {"proto1", {"--proto", "1"}, false},
      {"proto2", {"--proto", "2"}, false},
      {"proto2-compressed", {"--proto", "2", "--compressed-data"}, false},
      {"proto2-compressed-decompressed-in-user-space", {"--proto", "2", "--compressed-data"}, true},
  };
  for (const auto& v : variants) {
    SECTION(v.name) {
      const std::string dir = top + "/" + v.name;
      REQUIRE(make_dirs(dir + "/streams"));
      REQUIRE(make_dirs(dir + "/ref"));
      REQUIRE(make_dirs(dir + "/ours"));
      auto send = [&](const std::string& parent, const std::string& snap) {
        std::string out = dir + "/streams/" + snap;
        std::vector<std::string> a{"send", "-q"};
        a.insert(a.end(), v.send_flags.begin(), v.send_flags.end());
        if (!parent.empty()) a.insert(a.end(), {"-p", top + "/" + parent});
        a.insert(a.end(), {"-f", out, top + "/" + snap});
        btrfs(a);
        return out;
      };
      auto s1 = send("", "snap1");
      auto s2 = send("snap1", "snap2");
      auto s3 = send("snap2", "snap3");
      for (const auto& s : {s1, s2, s3}) btrfs({"receive", "-q", "-f", s, dir + "/ref"});
      // The trees above make btrfs send use every command a kernel stream carries.
      std::set<std::string> seen;
      for (const auto& s : {s1, s2, s3}) {
        auto src = open_file_source(s);
        REQUIRE(src);
        std::ostringstream out;
        REQUIRE(snapshot::dump(**src, out));
        std::istringstream lines(out.str());
        std::string word, rest;
        while (lines >> word && std::getline(lines, rest)) seen.insert(word);
      }
      std::string all;
      for (const auto& w : seen) all += w + " ";
      INFO("commands seen: " << all);
      for (const char* want : {"subvol", "snapshot", "mkfile", "mkdir", "mknod", "mkfifo", "mksock", "symlink",
                               "rename", "link", "unlink", "rmdir", "set_xattr", "remove_xattr", "write", "clone",
                               "truncate", "chmod", "chown", "utimes", "end"})
        CHECK(seen.count(want) == 1);
      if (v.send_flags.size() > 2) CHECK(seen.count("encoded_write") == 1);
      auto r1 = ours(s1, dir + "/ours", v.decompress);
      CHECK(r1.parent_path.empty());
      CHECK(r1.name == "snap1");
      auto r2 = ours(s2, dir + "/ours", v.decompress);
      CHECK(r2.parent_path == dir + "/ours/snap1");
      auto r3 = ours(s3, dir + "/ours", v.decompress);
      CHECK(r3.parent_path == dir + "/ours/snap2");
      for (const char* snap : {"snap1", "snap2", "snap3"}) {
        INFO(snap);
        check_same_subvol(top + "/" + snap, dir + "/ref/" + snap, dir + "/ours/" + snap,
                          std::string(v.name) != "proto1");
      }
      // Nothing but the three subvolumes was left in the destination.
      CHECK(*list_dir(dir + "/ours") == std::vector<std::string>{"snap1", "snap2", "snap3"});
    }
  }
}

TEST_CASE("a delta that moves only an inode's access time leaves it the parent's atime, and applies every other "
          "time change") {
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  const std::string top = (*fs)->mount_point();
  btrfs({"subvolume", "create", top + "/src"});
  build_tree_v1(top + "/src");
  for (const char* d : {"/src/read", "/src/grown"}) REQUIRE(make_dirs(top + d));
  REQUIRE(write_file_atomic(top + "/src/read/file", "unchanged"));
  REQUIRE(write_file_atomic(top + "/src/grown/old", "old"));
  REQUIRE(write_file_atomic(top + "/src/touched", "same content"));
  auto set_times = [&](const std::string& path, long atime, long mtime) {
    struct timespec ts[2] = {{atime, 0}, {mtime, 0}};
    if (atime < 0) ts[0] = {0, UTIME_OMIT};
    if (mtime < 0) ts[1] = {0, UTIME_OMIT};
    REQUIRE(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW) == 0);
  };
  for (const char* p : {"/src/read", "/src/read/file", "/src/grown", "/src/touched"})
    set_times(top + p, 1'000'000, 1'000'000);
  // The parent's newest ctime, which a later ctime must be older than to be told apart from it
  // without a lookup, comes a clock tick after those.
  ::usleep(20'000);
  REQUIRE(write_file_atomic(top + "/src/last", "last"));
  btrfs({"subvolume", "snapshot", "-r", top + "/src", top + "/snap1"});
  // What the build machine did between the releases: it read a directory and a file (their atime
  // moved alone: relatime, as the atimes are old), added an entry to a directory, and touched a
  // file's mtime only.
  REQUIRE(list_dir(top + "/src/read"));
  REQUIRE(read_file(top + "/src/read/file"));
  REQUIRE(write_file_atomic(top + "/src/grown/new", "new"));
  set_times(top + "/src/grown", 3'000'000, 3'000'000);
  set_times(top + "/src/touched", 4'000'000, 4'000'000);
  btrfs({"subvolume", "snapshot", "-r", top + "/src", top + "/snap2"});
  for (const char* d : {"/streams", "/default", "/exact"}) REQUIRE(make_dirs(top + d));
  btrfs({"send", "-q", "-f", top + "/streams/full", top + "/snap1"});
  btrfs({"send", "-q", "-p", top + "/snap1", "-f", top + "/streams/incr", top + "/snap2"});
  auto atime_of = [](const std::string& path) {
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    return st.st_atim.tv_sec;
  };

  ours(top + "/streams/full", top + "/default", false, false);
  auto r = ours(top + "/streams/incr", top + "/default", false, false);
  // Everything but those access times is as sent: contents, entries, owners, modes, mtimes.
  auto d = compare_trees(top + "/snap2", top + "/default/snap2", TreeCompareOptions{.compare_atime = false});
  INFO(join_diffs(d));
  CHECK(d.empty());
  REQUIRE(atime_of(top + "/snap2/read") > 1'000'000);
  REQUIRE(atime_of(top + "/snap2/read/file") > 1'000'000);
  CHECK(atime_of(top + "/default/snap2/read") == 1'000'000);
  CHECK(atime_of(top + "/default/snap2/read/file") == 1'000'000);
  CHECK(r.atime_only_skipped >= 2);
  // Their ctimes, older than anything in the parent, said so without a lookup.
  CHECK(r.atime_only_by_ctime >= 2);
  // A time change that moves the mtime is applied whole, its atime with it.
  CHECK(atime_of(top + "/default/snap2/grown") == 3'000'000);
  CHECK(atime_of(top + "/default/snap2/touched") == 4'000'000);
  // A full stream's inodes are all new: each gets its times as sent.
  d = compare_trees(top + "/snap1", top + "/default/snap1");
  INFO(join_diffs(d));
  CHECK(d.empty());

  // With exact_atime the same stream gives btrfs receive's result, access times included.
  ours(top + "/streams/full", top + "/exact");
  auto exact = ours(top + "/streams/incr", top + "/exact");
  CHECK(exact.atime_only_skipped == 0);
  d = compare_trees(top + "/snap2", top + "/exact/snap2");
  INFO(join_diffs(d));
  CHECK(d.empty());
  CHECK(atime_of(top + "/exact/snap2/read") == atime_of(top + "/snap2/read"));
}

// The newest ctime of every inode under `root` (the subvolume included).
struct timespec newest_ctime(const std::string& root) {
  struct timespec newest {};
  auto visit = [&](const std::string& path) {
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    if (st.st_ctim.tv_sec > newest.tv_sec ||
        (st.st_ctim.tv_sec == newest.tv_sec && st.st_ctim.tv_nsec > newest.tv_nsec))
      newest = st.st_ctim;
  };
  visit(root);
  auto r = run_checked({"find", root, "-mindepth", "1", "-print0"});
  REQUIRE(r);
  std::string all = r->out;
  for (size_t b = 0, e; (e = all.find('\0', b)) != std::string::npos; b = e + 1) visit(all.substr(b, e - b));
  return newest;
}

TEST_CASE("a received subvolume records the newest ctime of its tree as its stime, and a delta applied on it "
          "applies every mtime it changes even when the sender's clock went back") {
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  const std::string top = (*fs)->mount_point();
  btrfs({"subvolume", "create", top + "/src"});
  build_tree_v1(top + "/src");
  // An inode older than c, so that the delta removes it (at its inode number) before it moves c.
  REQUIRE(write_file_atomic(top + "/src/early", "v1"));
  for (const char* d : {"/src/a", "/src/b", "/src/c/inner", "/src/d"}) REQUIRE(make_dirs(top + d));
  for (const char* f : {"/src/a/f", "/src/c/inner/x", "/src/d/y"}) REQUIRE(write_file_atomic(top + f, "v1"));
  REQUIRE(::rename((top + "/src/early").c_str(), (top + "/src/c/inner/early").c_str()) == 0);
  struct timespec old[2] = {{1'000'000, 0}, {1'000'000, 0}};
  REQUIRE(::utimensat(AT_FDCWD, (top + "/src/d").c_str(), old, 0) == 0);
  // d's ctime must be older than the parent's newest, not within its clock tick.
  ::usleep(20'000);
  REQUIRE(write_file_atomic(top + "/src/last", "last"));
  btrfs({"subvolume", "snapshot", "-r", top + "/src", top + "/snap1"});
  // Written in place, a new entry, an entry removed from a directory that then moves (the stream
  // removes it under the old path), a directory read.
  {
    UniqueFd fd(::open((top + "/src/a/f").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
    REQUIRE(fd);
    REQUIRE(::write(fd.get(), "+v2", 3) == 3);
  }
  REQUIRE(write_file_atomic(top + "/src/b/new", "new"));
  REQUIRE(::unlink((top + "/src/c/inner/early").c_str()) == 0);
  REQUIRE(::rename((top + "/src/c").c_str(), (top + "/src/c2").c_str()) == 0);
  REQUIRE(list_dir(top + "/src/d"));
  btrfs({"subvolume", "snapshot", "-r", top + "/src", top + "/snap2"});
  for (const char* d : {"/streams", "/recv"}) REQUIRE(make_dirs(top + d));
  btrfs({"send", "-q", "-f", top + "/streams/full", top + "/snap1"});
  btrfs({"send", "-q", "-p", top + "/snap1", "-f", top + "/streams/incr", top + "/snap2"});

  ours(top + "/streams/full", top + "/recv", false, false);
  auto stime = info_of(top + "/recv/snap1").stime;
  auto want = newest_ctime(top + "/snap1");
  CHECK(stime.tv_sec == want.tv_sec);
  CHECK(stime.tv_nsec == want.tv_nsec);

  SECTION("the delta's stime is the newest ctime of the whole new tree") {
    auto r = ours(top + "/streams/incr", top + "/recv", false, false);
    CHECK(r.atime_only_by_ctime >= 1);  // d
    auto stime2 = info_of(top + "/recv/snap2").stime;
    auto want2 = newest_ctime(top + "/snap2");
    CHECK(stime2.tv_sec == want2.tv_sec);
    CHECK(stime2.tv_nsec == want2.tv_nsec);
    auto d = compare_trees(top + "/snap2", top + "/recv/snap2", TreeCompareOptions{.compare_atime = false});
    INFO(join_diffs(d));
    CHECK(d.empty());
  }
  SECTION("a parent whose sender clock was years ahead") {
    // As if release 1 was built on a machine whose clock ran years ahead of release 2's: every
    // ctime of the delta is then older than the parent's newest.
    auto info = info_of(top + "/recv/snap1");
    REQUIRE(btrfs_util_set_subvolume_read_only((top + "/recv/snap1").c_str(), false) == BTRFS_UTIL_OK);
    {
      UniqueFd fd(::open((top + "/recv/snap1").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      REQUIRE(fd);
      btrfs_ioctl_received_subvol_args rs{};
      std::memcpy(rs.uuid, info.received_uuid, 16);
      rs.stransid = info.stransid;
      rs.stime.sec = static_cast<uint64_t>(::time(nullptr)) + 10ull * 365 * 86400;
      REQUIRE(::ioctl(fd.get(), BTRFS_IOC_SET_RECEIVED_SUBVOL, &rs) == 0);
    }
    REQUIRE(btrfs_util_set_subvolume_read_only((top + "/recv/snap1").c_str(), true) == BTRFS_UTIL_OK);
    auto r = ours(top + "/streams/incr", top + "/recv", false, false);
    // The unchanged inodes and the read directory are told by their ctime; what this receive
    // wrote, created or renamed into is looked up, and gets the stream's mtime.
    CHECK(r.atime_only_by_ctime >= 1);
    auto d = compare_trees(top + "/snap2", top + "/recv/snap2", TreeCompareOptions{.compare_atime = false});
    INFO(join_diffs(d));
    CHECK(d.empty());
    struct stat st {};
    REQUIRE(::lstat((top + "/recv/snap2/d").c_str(), &st) == 0);
    CHECK(st.st_atim.tv_sec == 1'000'000);
  }
}

TEST_CASE("ballast send streams are received by btrfs receive, and the other way round, identically") {
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  const std::string top = (*fs)->mount_point();
  btrfs({"subvolume", "create", top + "/src"});
  build_tree_v1(top + "/src");
  btrfs({"subvolume", "snapshot", "-r", top + "/src", top + "/snap1"});
  change_tree_v2(top + "/src");
  btrfs({"subvolume", "snapshot", "-r", top + "/src", top + "/snap2"});
  for (const auto& d : {"/streams", "/by-btrfs", "/by-ballast", "/btrfs-streams"}) REQUIRE(make_dirs(top + d));

  auto send_ours = [&](const snapshot::SendOptions& o, const std::string& out) {
    UniqueFd fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    REQUIRE(fd);
    auto st = snapshot::send(o, fd.get());
    INFO((st ? std::string() : st.error().describe()));
    REQUIRE(st);
  };
  for (int proto : {1, 2}) {
    SECTION("protocol " + std::to_string(proto)) {
      send_ours({top + "/snap1", "", {}, proto, false}, top + "/streams/full");
      send_ours({top + "/snap2", top + "/snap1", {}, proto, false}, top + "/streams/incr");
      btrfs({"receive", "-q", "-f", top + "/streams/full", top + "/by-btrfs"});
      btrfs({"receive", "-q", "-f", top + "/streams/incr", top + "/by-btrfs"});
      // ballast receive of the same ballast streams
      ours(top + "/streams/full", top + "/by-ballast");
      ours(top + "/streams/incr", top + "/by-ballast");
      for (const char* snap : {"snap1", "snap2"})
        check_same_subvol(top + "/" + snap, top + "/by-btrfs/" + snap, top + "/by-ballast/" + snap, proto != 1);
      // The stream header carries the requested version.
      auto head = read_file(top + "/streams/full", 64 << 20);
      REQUIRE(head);
      CHECK(static_cast<int>((*head)[13]) == proto);
    }
  }
  SECTION("a stream with clone sources and compressed data") {
    send_ours({top + "/snap2", top + "/snap1", {top + "/snap1"}, 0, true}, top + "/streams/incr-c");
    send_ours({top + "/snap1", "", {}, 2, true}, top + "/streams/full-c");
    btrfs({"receive", "-q", "-f", top + "/streams/full-c", top + "/by-btrfs"});
    btrfs({"receive", "-q", "-f", top + "/streams/incr-c", top + "/by-btrfs"});
    ours(top + "/streams/full-c", top + "/by-ballast");
    ours(top + "/streams/incr-c", top + "/by-ballast");
    for (const char* snap : {"snap1", "snap2"})
      check_same_subvol(top + "/" + snap, top + "/by-btrfs/" + snap, top + "/by-ballast/" + snap);
  }
  SECTION("sending a writable subvolume or a bad protocol is refused") {
    UniqueFd fd(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    auto st = snapshot::send({top + "/src", "", {}, 0, false}, fd.get());
    REQUIRE_FALSE(st);
    CHECK(st.error().code == "send.not-read-only");
    st = snapshot::send({top + "/snap1", "", {}, 3, false}, fd.get());
    REQUIRE_FALSE(st);
    CHECK(st.error().code == "send.bad-protocol");
    st = snapshot::send({top + "/snap1", "", {}, 1, true}, fd.get());
    REQUIRE_FALSE(st);
    CHECK(st.error().code == "send.bad-protocol");
  }
}

TEST_CASE("ballast send writes streams btrfs receive accepts and leaves no file behind when it fails") {
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  const std::string top = (*fs)->mount_point();
  const std::string ballast = std::string(BALLAST_BUILD_ROOT) + "/agent/ballast";
  btrfs({"subvolume", "create", top + "/src"});
  build_tree_v1(top + "/src");
  btrfs({"subvolume", "snapshot", "-r", top + "/src", top + "/snap1"});
  change_tree_v2(top + "/src");
  btrfs({"subvolume", "snapshot", "-r", top + "/src", top + "/snap2"});
  REQUIRE(make_dirs(top + "/recv"));
  auto full = run_process({ballast, "send", "--proto", "2", "-f", top + "/full", top + "/snap1"});
  REQUIRE(full);
  CHECK(full->exit_code == 0);
  auto incr = run_process({ballast, "send", "-p", top + "/snap1", "-c", top + "/snap1", "--compressed-data", "-f",
                           top + "/incr", top + "/snap2"});
  REQUIRE(incr);
  CHECK(incr->exit_code == 0);
  btrfs({"receive", "-q", "-f", top + "/full", top + "/recv"});
  btrfs({"receive", "-q", "-f", top + "/incr", top + "/recv"});
  for (const char* snap : {"snap1", "snap2"}) {
    auto d = compare_trees(top + "/" + snap, top + "/recv/" + snap);
    INFO(join_diffs(d));
    CHECK(d.empty());
  }
  auto bad = run_process({ballast, "send", "-f", top + "/bad", top + "/src"});  // writable: refused
  REQUIRE(bad);
  CHECK(bad->exit_code == 1);
  CHECK(bad->err.find("send.not-read-only") != std::string::npos);
  CHECK_FALSE(path_exists(top + "/bad"));
  auto usage = run_process({ballast, "send", "--proto", "7", top + "/snap1"});
  REQUIRE(usage);
  CHECK(usage->exit_code == 2);
}
