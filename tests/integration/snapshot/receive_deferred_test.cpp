// The receiver holds each new inode back by one command and makes it at the name the next
// command renames it to, and sets mode, owner and times through the file it has open. These
// hand-made streams take the paths btrfs send rarely or never does (a rename onto an existing
// name, a creation followed by something other than its rename, a creation that must fail) and
// check the result against `btrfs receive` of the same stream.
#include <btrfsutil.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>

#include "common/byte_source.hpp"
#include "common/file.hpp"
#include "common/process.hpp"
#include "snapshot/receive.hpp"
#include "tests/integration/support/loop_btrfs.hpp"
#include "tests/integration/support/tree_compare.hpp"
#include "tests/unit/snapshot/stream_builder.hpp"

using namespace ballast;
using namespace ballast::testing;
using Cmd = snapshot::stream::Cmd;
using Attr = snapshot::stream::Attr;

namespace {

std::unique_ptr<LoopBtrfs> fresh_btrfs() {
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  return std::move(*fs);
}

std::string made_dir(const std::string& path) {
  REQUIRE(make_dirs(path));
  return path;
}

void run_ok(const std::vector<std::string>& argv) {
  auto r = run_checked(argv);
  INFO((r ? std::string() : r.error().describe()));
  REQUIRE(r);
}

Result<snapshot::ReceivedSubvolume> receive_string(const std::string& s, const std::string& dest) {
  MemoryByteSource src(s);
  snapshot::ReceiveOptions o;
  o.dest_dir = dest;
  return snapshot::receive(src, o);
}

struct stat lstat_of(const std::string& p) {
  struct stat st {};
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st;
}

void rename_cmd(StreamBuilder& b, std::string_view from, std::string_view to) {
  b.begin(Cmd::rename).str(Attr::path, from).str(Attr::path_to, to);
}
void chown_cmd(StreamBuilder& b, std::string_view path, uint64_t uid, uint64_t gid) {
  b.begin(Cmd::chown).str(Attr::path, path).u64(Attr::uid, uid).u64(Attr::gid, gid);
}
void chmod_cmd(StreamBuilder& b, std::string_view path, uint64_t mode) {
  b.begin(Cmd::chmod).str(Attr::path, path).u64(Attr::mode, mode);
}
void utimes_cmd(StreamBuilder& b, std::string_view path, uint64_t sec) {
  b.begin(Cmd::utimes).str(Attr::path, path).time(Attr::atime, sec, 111).time(Attr::mtime, sec + 1, 222)
      .time(Attr::ctime, sec + 2, 333);
}

}  // namespace

TEST_CASE("new inodes renamed onto existing names, left unrenamed or renamed into subdirectories match btrfs receive") {
  auto fs = fresh_btrfs();
  const std::string top = fs->mount_point();
  run_ok({"btrfs", "subvolume", "create", top + "/src"});
  REQUIRE(write_file_atomic(top + "/src/a", "old a"));
  REQUIRE(write_file_atomic(top + "/src/b", "old b"));
  REQUIRE(write_file_atomic(top + "/src/keep", "kept"));
  REQUIRE(make_dirs(top + "/src/empty"));
  REQUIRE(make_dirs(top + "/src/d"));
  REQUIRE(write_file_atomic(top + "/src/d/x", "x"));
  run_ok({"btrfs", "subvolume", "snapshot", "-r", top + "/src", top + "/parent"});
  struct btrfs_util_subvolume_info pi {};
  REQUIRE(btrfs_util_subvolume_info((top + "/parent").c_str(), 0, &pi) == BTRFS_UTIL_OK);

  StreamBuilder b;
  b.begin(Cmd::snapshot).str(Attr::path, "child").uuid(Attr::uuid, 0x61).u64(Attr::ctransid, 9)
      .bytes(Attr::clone_uuid, std::string(reinterpret_cast<const char*>(pi.uuid), 16))
      .u64(Attr::clone_ctransid, pi.ctransid);
  // Renamed onto existing entries: a file over a file, a directory over an empty directory,
  // a symlink over a file.
  b.begin(Cmd::mkfile).str(Attr::path, "o300-1-0").u64(Attr::ino, 300);
  rename_cmd(b, "o300-1-0", "a");
  b.write("a", 0, "new a");
  chown_cmd(b, "a", 1234, 5678);
  chmod_cmd(b, "a", 04755);
  utimes_cmd(b, "a", 1000);
  b.begin(Cmd::mkdir).str(Attr::path, "o301-1-0").u64(Attr::ino, 301);
  rename_cmd(b, "o301-1-0", "empty");
  chmod_cmd(b, "empty", 0750);
  b.begin(Cmd::symlink).str(Attr::path, "o302-1-0").u64(Attr::ino, 302).str(Attr::path_link, "a");
  rename_cmd(b, "o302-1-0", "b");
  chown_cmd(b, "b", 42, 43);
  // Into a subdirectory; a setuid/setgid mode that the following chown clears, as it does for
  // btrfs receive; a read-only file written after its chmod.
  b.begin(Cmd::mkfifo).str(Attr::path, "o303-1-0").u64(Attr::ino, 303);
  rename_cmd(b, "o303-1-0", "d/fifo");
  b.begin(Cmd::mkfile).str(Attr::path, "o304-1-0").u64(Attr::ino, 304);
  rename_cmd(b, "o304-1-0", "d/new");
  chmod_cmd(b, "d/new", 06755);
  chown_cmd(b, "d/new", 7, 8);
  b.write("d/new", 0, "read-only");
  chmod_cmd(b, "d/new", 0444);
  b.write("d/new", 9, " but written");
  utimes_cmd(b, "d/new", 2000);
  b.begin(Cmd::mksock).str(Attr::path, "o306-1-0").u64(Attr::ino, 306);
  rename_cmd(b, "o306-1-0", "sock");
  b.begin(Cmd::mknod).str(Attr::path, "o307-1-0").u64(Attr::ino, 307).u64(Attr::mode, S_IFCHR | 0600)
      .u64(Attr::rdev, makedev(1, 3));
  rename_cmd(b, "o307-1-0", "null");
  // Not renamed: its data comes next, or another creation, or a rename of something else.
  b.begin(Cmd::mkfile).str(Attr::path, "straight").u64(Attr::ino, 308);
  b.write("straight", 0, "direct");
  b.begin(Cmd::mkdir).str(Attr::path, "newdir").u64(Attr::ino, 309);
  b.begin(Cmd::mkfile).str(Attr::path, "newdir/f").u64(Attr::ino, 310);
  b.write("newdir/f", 0, "in a new directory");
  b.begin(Cmd::symlink).str(Attr::path, "o311-1-0").u64(Attr::ino, 311).str(Attr::path_link, "dangling");
  rename_cmd(b, "keep", "kept");
  // The second "c2" exists when its rename comes (made by the first): the rename replaces it.
  b.begin(Cmd::mkfile).str(Attr::path, "c1").u64(Attr::ino, 312);
  b.write("c1", 0, "first");
  rename_cmd(b, "c1", "c2");
  b.begin(Cmd::mkfile).str(Attr::path, "c1").u64(Attr::ino, 313);
  rename_cmd(b, "c1", "c2");
  b.write("c2", 0, "second");
  chmod_cmd(b, "null", 0640);
  uint64_t t = 5000;
  for (const char* p : {"empty", "b", "d/fifo", "sock", "null", "straight", "newdir/f", "newdir", "o311-1-0", "kept",
                        "c2", "d/x", "d", ""})
    utimes_cmd(b, p, t += 10);
  std::string s = b.end().str();

  REQUIRE(make_dirs(top + "/ref"));
  REQUIRE(make_dirs(top + "/ours"));
  REQUIRE(write_file_atomic(top + "/child.stream", s));
  run_ok({"btrfs", "receive", "-q", "-f", top + "/child.stream", top + "/ref"});
  auto r = receive_string(s, top + "/ours");
  INFO((r ? std::string() : r.error().describe()));
  REQUIRE(r);
  CHECK(r->parent_path == top + "/parent");

  auto d = compare_trees(top + "/ref/child", top + "/ours/child");
  std::string diffs;
  for (const auto& line : d) diffs += line + "\n";
  INFO("btrfs receive vs ballast receive:\n" << diffs);
  CHECK(d.empty());

  // The same, spelled out, so that a comparison that saw nothing would not pass.
  const std::string c = top + "/ours/child/";
  CHECK(*read_file(c + "a") == "new a");
  CHECK(lstat_of(c + "a").st_mode == (S_IFREG | 04755));
  CHECK(lstat_of(c + "a").st_uid == 1234);
  CHECK(lstat_of(c + "a").st_mtim.tv_sec == 1001);
  CHECK(lstat_of(c + "a").st_mtim.tv_nsec == 222);
  CHECK(S_ISDIR(lstat_of(c + "empty").st_mode));
  CHECK((lstat_of(c + "empty").st_mode & 07777) == 0750);
  CHECK(S_ISLNK(lstat_of(c + "b").st_mode));
  CHECK(lstat_of(c + "b").st_uid == 42);
  CHECK(S_ISFIFO(lstat_of(c + "d/fifo").st_mode));
  CHECK(*read_file(c + "d/new") == "read-only but written");
  CHECK(lstat_of(c + "d/new").st_mode == (S_IFREG | 0444));
  CHECK(lstat_of(c + "d/new").st_gid == 8);
  CHECK(lstat_of(c + "d/new").st_atim.tv_sec == 2000);
  CHECK(S_ISSOCK(lstat_of(c + "sock").st_mode));
  CHECK(lstat_of(c + "null").st_rdev == makedev(1, 3));
  CHECK(*read_file(c + "straight") == "direct");
  CHECK(*read_file(c + "newdir/f") == "in a new directory");
  CHECK(S_ISLNK(lstat_of(c + "o311-1-0").st_mode));
  CHECK(*read_file(c + "kept") == "kept");
  CHECK(*read_file(c + "c2") == "second");
  CHECK(::access((c + "c1").c_str(), F_OK) != 0);
  CHECK((lstat_of(c + "null").st_mode & 07777) == 0640);
  CHECK(lstat_of(c + "d").st_mtim.tv_sec == 5131);
  CHECK(lstat_of(top + "/ours/child").st_mtim.tv_sec == 5141);
}

TEST_CASE("a held-back creation that cannot be made fails as its own command, naming its path") {
  auto fs = fresh_btrfs();
  const std::string dest = made_dir(fs->mount_point() + "/dest");
  StreamBuilder b;
  b.subvol("held", 0x62, 4);
  b.begin(Cmd::mkfile).str(Attr::path, "f").u64(Attr::ino, 257);
  b.write("f", 0, "here");
  b.begin(Cmd::mkdir).str(Attr::path, "dir").u64(Attr::ino, 258);
  b.begin(Cmd::chmod).str(Attr::path, "dir").u64(Attr::mode, 0755);

  auto rejected = [&](StreamBuilder s, const std::string& code, const std::vector<std::string>& words) {
    auto r = receive_string(s.end().str(), dest);
    REQUIRE_FALSE(r);
    std::string msg = r.error().describe();
    INFO(msg);
    CHECK(r.error().code == code);
    for (const auto& w : words) CHECK(msg.find(w) != std::string::npos);
    CHECK(list_dir(dest)->empty());
  };
  SECTION("an existing name, even when the next command would rename it to a free one") {
    auto s = b;
    s.begin(Cmd::mkfile).str(Attr::path, "f").u64(Attr::ino, 259);
    rename_cmd(s, "f", "g");
    rejected(s, "receive.io", {"mkfile at byte", "cannot create f"});
    auto t = b;
    t.begin(Cmd::symlink).str(Attr::path, "dir").u64(Attr::ino, 259).str(Attr::path_link, "x");
    rename_cmd(t, "dir", "dir2");
    rejected(t, "receive.io", {"symlink at byte", "cannot create symlink dir"});
  }
  SECTION("a name under a missing directory") {
    auto s = b;
    s.begin(Cmd::mkdir).str(Attr::path, "missing/sub").u64(Attr::ino, 259);
    rename_cmd(s, "missing/sub", "sub");
    rejected(s, "io.open", {"mkdir at byte", "missing"});
  }
  SECTION("a rename to a place that does not exist, after a creation that succeeded") {
    auto s = b;
    s.begin(Cmd::mkfile).str(Attr::path, "o1").u64(Attr::ino, 259);
    rename_cmd(s, "o1", "nodir/o1");
    rejected(s, "io.open", {"rename at byte", "nodir"});
  }
  SECTION("a creation held back until the end of the stream is made") {
    auto s = b;
    s.begin(Cmd::symlink).str(Attr::path, "dir/last").u64(Attr::ino, 259).str(Attr::path_link, "f");
    auto r = receive_string(s.end().str(), dest);
    INFO((r ? std::string() : r.error().describe()));
    REQUIRE(r);
    char target[8] = {};
    CHECK(::readlink((dest + "/held/dir/last").c_str(), target, sizeof(target) - 1) == 1);
    CHECK(std::string(target) == "f");
  }
  SECTION("a creation held back until the end of the stream that cannot be made") {
    auto s = b;
    s.begin(Cmd::mkfile).str(Attr::path, "dir").u64(Attr::ino, 259);
    rejected(s, "receive.io", {"mkfile at byte", "cannot create dir"});
  }
}

TEST_CASE("directories renamed, removed or replaced after their entries were written are followed to their new places") {
  auto fs = fresh_btrfs();
  const std::string dest = made_dir(fs->mount_point() + "/dest");
  StreamBuilder b;
  b.subvol("dirs", 0x63, 5);
  auto mkdir = [&](const char* p) { b.begin(Cmd::mkdir).str(Attr::path, p).u64(Attr::ino, 400); };
  auto file = [&](const char* p, const char* data) {
    b.begin(Cmd::mkfile).str(Attr::path, p).u64(Attr::ino, 401);
    b.write(p, 0, data);
  };
  for (const char* d : {"a", "a/b", "a/b/c", "x", "e"}) mkdir(d);
  // Each directory is opened (and remembered) for the file made in it.
  file("a/b/c/f1", "1");
  file("a/b/f2", "2");
  file("x/f3", "3");
  file("e/q", "q");
  b.path_cmd(Cmd::unlink, "e/q");
  rename_cmd(b, "a", "z");
  mkdir("a");
  mkdir("a/b");
  file("a/b/g", "in the new a/b");
  file("z/b/c/f4", "in the moved c");
  b.path_cmd(Cmd::unlink, "x/f3");
  b.path_cmd(Cmd::rmdir, "x");
  mkdir("x");
  file("x/h", "in the new x");
  rename_cmd(b, "z/b", "y");
  file("y/c/k", "in c moved twice");
  // A new directory renamed over the empty "e" replaces it.
  mkdir("o9");
  rename_cmd(b, "o9", "e");
  file("e/r", "in the new e");
  auto r = receive_string(b.end().str(), dest);
  INFO((r ? std::string() : r.error().describe()));
  REQUIRE(r);
  const std::string root = dest + "/dirs/";
  CHECK(*list_dir(root) == std::vector<std::string>{"a", "e", "x", "y", "z"});
  CHECK(*list_dir(root + "a") == std::vector<std::string>{"b"});
  CHECK(*list_dir(root + "a/b") == std::vector<std::string>{"g"});
  CHECK(*read_file(root + "a/b/g") == "in the new a/b");
  CHECK(list_dir(root + "z")->empty());
  CHECK(*list_dir(root + "y") == std::vector<std::string>{"c", "f2"});
  CHECK(*list_dir(root + "y/c") == std::vector<std::string>{"f1", "f4", "k"});
  CHECK(*read_file(root + "y/c/k") == "in c moved twice");
  CHECK(*list_dir(root + "x") == std::vector<std::string>{"h"});
  CHECK(*list_dir(root + "e") == std::vector<std::string>{"r"});
}

TEST_CASE("a delta's utimes with a zero ctime still sets the mtime on a parent that records its newest ctime") {
  auto fs = fresh_btrfs();
  const std::string top = fs->mount_point();
  const std::string dest = made_dir(top + "/recv");
  StreamBuilder full;
  full.subvol("base", 0x71, 5);
  full.begin(Cmd::mkfile).str(Attr::path, "f").u64(Attr::ino, 257);
  full.write("f", 0, "contents");
  utimes_cmd(full, "f", 1000);  // atime 1000, mtime 1001, ctime 1002
  auto base = receive_string(full.end().str(), dest);
  INFO((base ? std::string() : base.error().describe()));
  REQUIRE(base);
  struct btrfs_util_subvolume_info bi {};
  REQUIRE(btrfs_util_subvolume_info((dest + "/base").c_str(), 0, &bi) == BTRFS_UTIL_OK);
  REQUIRE(bi.stime.tv_sec == 1002);  // so a ctime before it would count as "unchanged since"

  StreamBuilder delta;
  delta.begin(Cmd::snapshot).str(Attr::path, "next").uuid(Attr::uuid, 0x72).u64(Attr::ctransid, 6)
      .uuid(Attr::clone_uuid, 0x71).u64(Attr::clone_ctransid, 5);
  delta.begin(Cmd::utimes).str(Attr::path, "f").time(Attr::atime, 3000, 0).time(Attr::mtime, 3001, 7)
      .time(Attr::ctime, 0, 0);
  auto next = receive_string(delta.end().str(), dest);
  INFO((next ? std::string() : next.error().describe()));
  REQUIRE(next);
  CHECK(next->atime_only_by_ctime == 0);
  auto st = lstat_of(dest + "/next/f");
  CHECK(st.st_mtim.tv_sec == 3001);
  CHECK(st.st_mtim.tv_nsec == 7);
  struct btrfs_util_subvolume_info ni {};
  REQUIRE(btrfs_util_subvolume_info((dest + "/next").c_str(), 0, &ni) == BTRFS_UTIL_OK);
  CHECK(ni.stime.tv_sec == 1002);  // the parent's newest ctime carries over to the delta
}
