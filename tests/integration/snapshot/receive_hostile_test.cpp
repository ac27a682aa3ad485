// Hand-made hostile streams: each is rejected with a clear error, nothing outside the partial
// subvolume changes, and the partial subvolume is gone afterwards.
#include <btrfsutil.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

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

std::vector<std::string> subvolumes(const std::string& top) {
  std::vector<std::string> out;
  btrfs_util_subvolume_iterator* it = nullptr;
  REQUIRE(btrfs_util_create_subvolume_iterator(top.c_str(), 5, 0, &it) == BTRFS_UTIL_OK);
  char* p = nullptr;
  while (btrfs_util_subvolume_iterator_next(it, &p, nullptr) == BTRFS_UTIL_OK) {
    out.push_back(p);
    std::free(p);
  }
  btrfs_util_destroy_subvolume_iterator(it);
  return out;
}

struct Env {
  std::unique_ptr<LoopBtrfs> fs;
  std::string top, dest, outside, partial;
  std::vector<std::string> baseline;
  snapshot::stream::Uuid other_uuid{};
  uint64_t other_ctransid = 0;

};

Env make_env() {
  Env e;
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  e.fs = std::move(*fs);
  e.top = e.fs->mount_point();
  e.dest = e.top + "/dest";
  e.partial = e.top + "/partial";
  e.outside = e.top + "/outside";
  REQUIRE(make_dirs(e.dest));
  REQUIRE(make_dirs(e.partial));
  REQUIRE(make_dirs(e.outside));
  REQUIRE(write_file_atomic(e.outside + "/secret", "precious"));
  // A read-only subvolume that is neither parent nor allowed clone source of the streams below.
  REQUIRE(run_checked({"btrfs", "subvolume", "create", e.top + "/other-rw"}));
  REQUIRE(write_file_atomic(e.top + "/other-rw/data", std::string(8192, 'Q')));
  REQUIRE(run_checked({"btrfs", "subvolume", "snapshot", "-r", e.top + "/other-rw", e.top + "/other"}));
  struct btrfs_util_subvolume_info i {};
  REQUIRE(btrfs_util_subvolume_info((e.top + "/other").c_str(), 0, &i) == BTRFS_UTIL_OK);
  std::memcpy(e.other_uuid.data(), i.uuid, 16);
  e.other_ctransid = i.ctransid;
  e.baseline = subvolumes(e.top);
  return e;
}

std::string uuid_bytes(const snapshot::stream::Uuid& u) { return std::string(reinterpret_cast<const char*>(u.data()), 16); }

Result<snapshot::ReceivedSubvolume> receive_string(const Env& e, const std::string& s,
                                                     std::vector<std::string> clone_sources = {}) {
  MemoryByteSource src(s);
  snapshot::ReceiveOptions o;
  o.dest_dir = e.dest;
  o.partial_dir = e.partial;
  o.clone_sources = std::move(clone_sources);
  return snapshot::receive(src, o);
}

// The stream fails with `code` and leaves the filesystem as it was.
void expect_rejected(const Env& e, const std::string& s, const std::string& code) {
  auto r = receive_string(e, s);
  REQUIRE_FALSE(r);
  INFO(r.error().describe());
  CHECK(r.error().code == code);
  CHECK(r.error().describe().find('\n') == std::string::npos);
  CHECK(list_dir(e.dest)->empty());
  CHECK(list_dir(e.partial)->empty());
  CHECK(*list_dir(e.outside) == std::vector<std::string>{"secret"});
  CHECK(*read_file(e.outside + "/secret") == "precious");
  CHECK(subvolumes(e.top) == e.baseline);
  char buf[8];
  CHECK(::lgetxattr((e.outside + "/secret").c_str(), "user.evil", buf, sizeof(buf)) < 0);
}

StreamBuilder started(uint32_t version = 1) {
  StreamBuilder b(version);
  b.subvol("evil", 0x42, 10);
  b.begin(Cmd::mkfile).str(Attr::path, "ok-file").u64(Attr::ino, 257);
  b.write("ok-file", 0, "fine so far");
  return b;
}

}  // namespace

TEST_CASE("hostile send streams are rejected and leave nothing behind") {
  Env e = make_env();

  SECTION("a path with '..'") {
    auto b = started();
    b.begin(Cmd::mkfile).str(Attr::path, "../outside/evil").u64(Attr::ino, 258);
    expect_rejected(e, b.end().str(), "receive.bad-path");
    auto r = started();
    r.begin(Cmd::rename).str(Attr::path, "ok-file").str(Attr::path_to, "a/../../outside/secret");
    expect_rejected(e, r.end().str(), "receive.bad-path");
  }
  SECTION("an absolute path") {
    auto b = started();
    b.begin(Cmd::mkfile).str(Attr::path, e.outside + "/evil").u64(Attr::ino, 258);
    expect_rejected(e, b.end().str(), "receive.bad-path");
    auto l = started();
    l.begin(Cmd::link).str(Attr::path, "hl").str(Attr::path_link, e.outside + "/secret");
    expect_rejected(e, l.end().str(), "receive.bad-path");
  }
  SECTION("a subvolume name that is not one plain component") {
    for (const char* name : {"..", "a/b", ""}) {
      StreamBuilder b(1);
      b.subvol(name);
      expect_rejected(e, b.end().str(), "receive.bad-path");
    }
  }
  SECTION("a symlink the stream made, used to reach outside") {
    auto b = started();
    b.begin(Cmd::symlink).str(Attr::path, "esc").str(Attr::path_link, e.outside).u64(Attr::ino, 258);
    b.begin(Cmd::mkfile).str(Attr::path, "esc/evil").u64(Attr::ino, 259);
    expect_rejected(e, b.end().str(), "io.open");

    auto w = started();
    w.begin(Cmd::symlink).str(Attr::path, "esc").str(Attr::path_link, e.outside + "/secret").u64(Attr::ino, 258);
    w.write("esc", 0, "overwritten");
    expect_rejected(e, w.end().str(), "receive.not-a-file");

    auto t = started();
    t.begin(Cmd::symlink).str(Attr::path, "esc").str(Attr::path_link, e.outside + "/secret").u64(Attr::ino, 258);
    t.begin(Cmd::truncate).str(Attr::path, "esc").u64(Attr::size, 0);
    expect_rejected(e, t.end().str(), "receive.not-a-file");

    auto x = started();
    x.begin(Cmd::symlink).str(Attr::path, "esc").str(Attr::path_link, e.outside + "/secret").u64(Attr::ino, 258);
    x.begin(Cmd::set_xattr).str(Attr::path, "esc").str(Attr::xattr_name, "user.evil").bytes(Attr::xattr_data, "x");
    expect_rejected(e, x.end().str(), "receive.io");

    // chmod through a symlink must not change its target: it is skipped, the stream succeeds.
    auto c = started();
    c.begin(Cmd::symlink).str(Attr::path, "esc").str(Attr::path_link, e.outside + "/secret").u64(Attr::ino, 258);
    c.begin(Cmd::chmod).str(Attr::path, "esc").u64(Attr::mode, 04777);
    c.begin(Cmd::utimes).str(Attr::path, "esc").time(Attr::atime, 1, 0).time(Attr::mtime, 1, 0).time(Attr::ctime, 1, 0);
    c.begin(Cmd::chown).str(Attr::path, "esc").u64(Attr::uid, 999).u64(Attr::gid, 999);
    struct stat before;
    REQUIRE(::stat((e.outside + "/secret").c_str(), &before) == 0);
    auto r = receive_string(e, c.end().str());
    INFO((r ? "" : r.error().describe()));
    REQUIRE(r);
    struct stat after;
    REQUIRE(::stat((e.outside + "/secret").c_str(), &after) == 0);
    CHECK(after.st_mode == before.st_mode);
    CHECK(after.st_uid == before.st_uid);
    CHECK(after.st_mtim.tv_sec == before.st_mtim.tv_sec);
  }
  SECTION("a directory the receiver holds open, moved away and its name made a symlink to outside") {
    // The receiver keeps the descriptors of recently used parent directories (and of the file
    // it writes); once "d" is renamed or removed, its old name must be resolved afresh, and
    // through the symlink that now stands there, which is refused.
    for (auto away : {Cmd::rename, Cmd::rmdir}) {
      auto b = started();
      b.begin(Cmd::mkdir).str(Attr::path, "d").u64(Attr::ino, 258);
      b.begin(Cmd::mkfile).str(Attr::path, "d/f").u64(Attr::ino, 259);
      b.write("d/f", 0, "inside");
      b.begin(Cmd::utimes).str(Attr::path, "d/f").time(Attr::atime, 1, 0).time(Attr::mtime, 1, 0).time(Attr::ctime, 1, 0);
      if (away == Cmd::rename) {
        b.begin(Cmd::rename).str(Attr::path, "d").str(Attr::path_to, "moved");
      } else {
        b.path_cmd(Cmd::unlink, "d/f");
        b.path_cmd(Cmd::rmdir, "d");
      }
      b.begin(Cmd::symlink).str(Attr::path, "d").str(Attr::path_link, e.outside).u64(Attr::ino, 260);
      StreamBuilder write_through = b, create_through = b;
      write_through.write("d/secret", 0, "overwritten");
      expect_rejected(e, write_through.end().str(), "io.open");
      create_through.begin(Cmd::mkfile).str(Attr::path, "d/evil").u64(Attr::ino, 261);
      expect_rejected(e, create_through.end().str(), "io.open");
    }
  }
  SECTION("a device node the stream made, written to") {
    auto b = started();
    b.begin(Cmd::mknod).str(Attr::path, "disk").u64(Attr::mode, S_IFBLK | 0600)
        .u64(Attr::rdev, makedev(7, 0)).u64(Attr::ino, 258);
    b.write("disk", 0, "boom");
    expect_rejected(e, b.end().str(), "receive.not-a-file");
    auto f = started();
    f.begin(Cmd::mkfifo).str(Attr::path, "pipe").u64(Attr::ino, 258);
    f.write("pipe", 0, "would block");
    expect_rejected(e, f.end().str(), "receive.not-a-file");
  }
  SECTION("a clone from a subvolume that is not allowed") {
    auto b = started();
    b.begin(Cmd::clone).str(Attr::path, "ok-file").u64(Attr::file_offset, 0).u64(Attr::clone_len, 4096)
        .bytes(Attr::clone_uuid, uuid_bytes(e.other_uuid)).u64(Attr::clone_ctransid, e.other_ctransid)
        .str(Attr::clone_path, "data").u64(Attr::clone_offset, 0);
    std::string s = b.end().str();
    expect_rejected(e, s, "receive.clone-source");
    // Allowed explicitly, the same stream clones the data.
    auto r = receive_string(e, s, {e.top + "/other"});
    INFO((r ? "" : r.error().describe()));
    REQUIRE(r);
    CHECK(read_file(e.dest + "/evil/ok-file")->substr(0, 4096) == std::string(4096, 'Q'));
  }
  SECTION("huge lengths, offsets and sizes") {
    auto b = started();
    std::string s = b.str();
    std::string cmd;
    StreamBuilder::put32(cmd, 0x7fffffff);
    StreamBuilder::put16(cmd, static_cast<uint16_t>(Cmd::write));
    StreamBuilder::put32(cmd, 0);
    expect_rejected(e, s + cmd + std::string(100, 'z'), "receive.command-too-large");
    auto o = started();
    o.write("ok-file", ~0ull - 10, "x");
    expect_rejected(e, o.end().str(), "receive.bad-attribute");
    auto t = started();
    t.begin(Cmd::truncate).str(Attr::path, "ok-file").u64(Attr::size, 1ull << 63);
    expect_rejected(e, t.end().str(), "receive.bad-attribute");
    auto enc = started(2);
    enc.begin(Cmd::encoded_write).str(Attr::path, "ok-file").u64(Attr::file_offset, 0)
        .u64(Attr::unencoded_file_len, 1ull << 40).u64(Attr::unencoded_len, 1ull << 40)
        .u64(Attr::unencoded_offset, 0).u32(Attr::compression, 2).data("junk");
    expect_rejected(e, enc.end().str(), "receive.bad-attribute");
  }
  SECTION("a bad checksum after some commands were applied") {
    auto b = started();
    b.write("ok-file", 100, "more");
    expect_rejected(e, b.str(true), "receive.bad-crc");
  }
  SECTION("a stream cut in the middle of a command, or before its end command") {
    auto b = started();
    b.write("ok-file", 100, std::string(5000, 'm'));
    std::string s = b.end().str();
    expect_rejected(e, s.substr(0, s.size() - 2000), "receive.truncated");
    expect_rejected(e, s.substr(0, s.size() - 10), "receive.truncated");
  }
  SECTION("a stream whose commands fail on the filesystem") {
    auto b = started();
    b.path_cmd(Cmd::unlink, "no-such-file");
    expect_rejected(e, b.end().str(), "receive.io");
    auto c = started();
    c.path_cmd(Cmd::write, "ok-file");  // no offset, no data
    expect_rejected(e, c.end().str(), "receive.missing-attribute");
  }
  SECTION("a parent whose ctransid differs from the stream's") {
    auto snap = [&](uint64_t ctransid) {
      StreamBuilder b(1);
      b.begin(Cmd::snapshot).str(Attr::path, "child").uuid(Attr::uuid, 0x77).u64(Attr::ctransid, 99)
          .bytes(Attr::clone_uuid, uuid_bytes(e.other_uuid)).u64(Attr::clone_ctransid, ctransid);
      b.write("data", 0, "changed");
      return b.end().str();
    };
    expect_rejected(e, snap(e.other_ctransid + 1), "receive.parent-changed");
    StreamBuilder unknown(1);
    unknown.begin(Cmd::snapshot).str(Attr::path, "child").uuid(Attr::uuid, 0x77).u64(Attr::ctransid, 99)
        .uuid(Attr::clone_uuid, 0x99).u64(Attr::clone_ctransid, 5);
    expect_rejected(e, unknown.end().str(), "receive.no-parent");
    // With the right ctransid the same stream applies on a snapshot of the parent.
    auto r = receive_string(e, snap(e.other_ctransid));
    INFO((r ? "" : r.error().describe()));
    REQUIRE(r);
    CHECK(r->parent_path == e.top + "/other");
    std::string data = *read_file(e.dest + "/child/data");
    CHECK(data == "changed" + std::string(8192 - 7, 'Q'));
  }
  SECTION("a stream that would replace an existing subvolume") {
    REQUIRE(make_dirs(e.dest + "/evil"));
    REQUIRE(write_file_atomic(e.dest + "/evil/keep", "mine"));
    auto r = receive_string(e, started().end().str());
    REQUIRE_FALSE(r);
    CHECK(r.error().code == "receive.exists");
    CHECK(*read_file(e.dest + "/evil/keep") == "mine");
    CHECK(list_dir(e.partial)->empty());
  }
  SECTION("a receive cancelled part-way") {
    auto b = started();
    for (int i = 0; i < 20; ++i) b.write("ok-file", static_cast<uint64_t>(i) * 10, "0123456789");
    MemoryByteSource src(b.end().str());
    snapshot::ReceiveOptions o;
    o.dest_dir = e.dest;
    int calls = 0;
    o.cancelled = [&] { return ++calls == 10; };
    auto r = snapshot::receive(src, o);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == "receive.cancelled");
    CHECK(calls == 10);
    CHECK(list_dir(e.dest)->empty());
    CHECK(subvolumes(e.top) == e.baseline);
  }
  SECTION("trailing bytes after the end command") {
    expect_rejected(e, started().end().str() + "junk", "receive.trailing-data");
  }
}

TEST_CASE("a received subvolume from a hand-made stream is complete, read-only and carries its uuid") {
  Env e = make_env();
  std::string s = started().end().str();
  MemoryByteSource src(s);
  snapshot::ReceiveOptions o;
  o.dest_dir = e.dest;
  o.partial_dir = e.partial;
  std::vector<uint64_t> progress;
  o.progress = [&](uint64_t n) { progress.push_back(n); };
  auto r = snapshot::receive(src, o);
  REQUIRE(r);
  REQUIRE_FALSE(progress.empty());
  CHECK(progress.back() == s.size());
  CHECK(r->bytes == s.size());
  CHECK(r->path == e.dest + "/evil");
  CHECK(r->received_uuid == "42424242-4242-4242-4242-424242424242");
  CHECK(*read_file(e.dest + "/evil/ok-file") == "fine so far");
  struct btrfs_util_subvolume_info i {};
  REQUIRE(btrfs_util_subvolume_info((e.dest + "/evil").c_str(), 0, &i) == BTRFS_UTIL_OK);
  CHECK(i.stransid == 10);
  CHECK(i.received_uuid[0] == 0x42);
  CHECK((i.flags & 1) == 1);
  CHECK(list_dir(e.partial)->empty());
}

TEST_CASE("ballast receive and ballast receive --dump exit 0 on good streams and 1 with one line on bad ones") {
  Env e = make_env();
  const std::string ballast = std::string(BALLAST_BUILD_ROOT) + "/agent/ballast";
  REQUIRE(write_file_atomic(e.top + "/good.bs", started().end().str()));
  REQUIRE(write_file_atomic(e.top + "/bad.bs", started().str(true)));
  auto d = run_process({ballast, "receive", "--dump", "-f", e.top + "/good.bs"});
  REQUIRE(d);
  CHECK(d->exit_code == 0);
  CHECK(d->out.find("subvol          ./evil uuid=42424242") == 0);
  auto bad = run_process({ballast, "receive", "-f", e.top + "/bad.bs", e.dest});
  REQUIRE(bad);
  CHECK(bad->exit_code == 1);
  CHECK(bad->err.find("ballast: ") == 0);
  CHECK(bad->err.find("receive.bad-crc") != std::string::npos);
  CHECK(std::count(bad->err.begin(), bad->err.end(), '\n') == 1);
  CHECK(list_dir(e.dest)->empty());
  auto good = run_process({ballast, "receive", "-f", e.top + "/good.bs", e.dest}, SpawnOptions{});
  REQUIRE(good);
  CHECK(good->exit_code == 0);
  CHECK(*read_file(e.dest + "/evil/ok-file") == "fine so far");
  auto usage = run_process({ballast, "receive"});
  REQUIRE(usage);
  CHECK(usage->exit_code == 2);
}

TEST_CASE("the commands btrfs send rarely emits are applied from a hand-made version 2 stream") {
  Env e = make_env();
  std::string plain(8192, '\0');
  for (size_t i = 0; i < plain.size(); ++i) plain[i] = static_cast<char>('a' + i % 26);
  // zlib, as Btrfs stores it in a compressed extent
  uLongf zlen = compressBound(plain.size());
  std::string z(zlen, '\0');
  REQUIRE(compress2(reinterpret_cast<Bytef*>(z.data()), &zlen, reinterpret_cast<const Bytef*>(plain.data()),
                    plain.size(), 6) == Z_OK);
  z.resize(zlen);
  std::string zs(ZSTD_compressBound(plain.size()), '\0');
  size_t zslen = ZSTD_compress(zs.data(), zs.size(), plain.data(), plain.size(), 3);
  REQUIRE_FALSE(ZSTD_isError(zslen));
  zs.resize(zslen);

  StreamBuilder b(2);
  b.subvol("v2", 0x55, 3);
  for (const char* f : {"enc-zlib", "enc-zstd", "alloc", "attr", "frozen"})
    b.begin(Cmd::mkfile).str(Attr::path, f).u64(Attr::ino, 300);
  auto encoded = [&](const char* f, uint32_t comp, const std::string& data) {
    // the file keeps bytes 100..(100+5000) of the extent, placed at offset 4096
    b.begin(Cmd::encoded_write).str(Attr::path, f).u64(Attr::file_offset, 4096)
        .u64(Attr::unencoded_file_len, 5000).u64(Attr::unencoded_len, plain.size())
        .u64(Attr::unencoded_offset, 100).u32(Attr::compression, comp).u32(Attr::encryption, 0).data(data);
  };
  encoded("enc-zlib", 1, z);
  encoded("enc-zstd", 2, zs);
  b.begin(Cmd::fallocate).str(Attr::path, "alloc").u32(Attr::fallocate_mode, 0).u64(Attr::file_offset, 0)
      .u64(Attr::size, 65536);
  b.write("alloc", 0, std::string(65536, 'F'));
  b.begin(Cmd::fallocate).str(Attr::path, "alloc").u32(Attr::fallocate_mode, 2).u64(Attr::file_offset, 4096)
      .u64(Attr::size, 8192);
  b.begin(Cmd::update_extent).str(Attr::path, "alloc").u64(Attr::file_offset, 0).u64(Attr::size, 4096);
  b.begin(Cmd::fileattr).str(Attr::path, "attr").u64(Attr::fileattr, 1u << 1);  // NODATACOW
  b.begin(Cmd::fileattr).str(Attr::path, "frozen").u64(Attr::fileattr, 1u << 6);  // IMMUTABLE
  b.write("frozen", 0, "written after the immutable flag arrived");
  std::string s = b.end().str();

  for (bool decompress : {false, true}) {
    INFO("decompress in user space: " << decompress);
    MemoryByteSource src(s);
    snapshot::ReceiveOptions o;
    o.dest_dir = e.dest + (decompress ? "/user" : "/kernel");
    REQUIRE(make_dirs(o.dest_dir));
    o.decompress_encoded = decompress;
    auto r = snapshot::receive(src, o);
    INFO((r ? "" : r.error().describe()));
    REQUIRE(r);
    CHECK(r->version == 2);
    std::string root = o.dest_dir + "/v2/";
    std::string want = std::string(4096, '\0') + plain.substr(100, 5000);
    CHECK(*read_file(root + "enc-zlib") == want);
    CHECK(*read_file(root + "enc-zstd") == want);
    UniqueFd alloc(::open((root + "alloc").c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(alloc);
    CHECK(data_ranges(alloc.get()) == std::vector<std::pair<long long, long long>>{{0, 4096}, {12288, 65536}});
    auto flags_of = [](const std::string& p) {
      UniqueFd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
      long f = 0;
      REQUIRE(::ioctl(fd.get(), FS_IOC_GETFLAGS, &f) == 0);
      return f;
    };
    CHECK((flags_of(root + "attr") & FS_NOCOW_FL) != 0);
    CHECK((flags_of(root + "frozen") & FS_IMMUTABLE_FL) != 0);
    CHECK(*read_file(root + "frozen") == "written after the immutable flag arrived");
  }
}
