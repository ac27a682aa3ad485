#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <string>

#include "snapshot/send_stream.hpp"
#include "snapshot/stream_rewrite.hpp"
#include "tests/unit/snapshot/stream_builder.hpp"

using namespace ballast;
using namespace ballast::snapshot;
using namespace ballast::snapshot::stream;
using ballast::testing::StreamBuilder;
using ballast::testing::TrickleSource;

namespace {

constexpr uint8_t kParent = 0xaa;  // the received parent's received_uuid (filled with this byte)
constexpr uint8_t kNew = 0x22;     // the sent subvolume's uuid
constexpr uint8_t kOther = 0x5c;   // some other clone source

Uuid filled(uint8_t b) {
  Uuid u;
  u.fill(b);
  return u;
}


Result<std::string> rewrite_all(const std::string& in, std::vector<TransidRewrite> rw, size_t in_step = 7,
                                size_t out_step = 5, uint64_t* rewritten = nullptr) {
  TrickleSource src(in, in_step);
  TransidRewriteSource r(src, std::move(rw));
  std::string out;
  char buf[64];
  for (;;) {
    auto n = BALLAST_TRY(r.read(buf, std::min(out_step, sizeof(buf))));
    if (n == 0) break;
    out.append(buf, n);
  }
  if (rewritten) *rewritten = r.commands_rewritten();
  return out;
}

StreamBuilder& snapshot_cmd(StreamBuilder& b, uint64_t parent_transid, uint8_t parent = kParent) {
  return b.begin(Cmd::snapshot)
      .str(Attr::path, "v2")
      .uuid(Attr::uuid, kNew)
      .u64(Attr::ctransid, 9)
      .uuid(Attr::clone_uuid, parent)
      .u64(Attr::clone_ctransid, parent_transid);
}

StreamBuilder& clone_cmd(StreamBuilder& b, uint8_t source, uint64_t source_transid) {
  return b.begin(Cmd::clone)
      .str(Attr::path, "copy")
      .u64(Attr::file_offset, 0)
      .u64(Attr::clone_len, 4096)
      .uuid(Attr::clone_uuid, source)
      .u64(Attr::clone_ctransid, source_transid)
      .str(Attr::clone_path, "big")
      .u64(Attr::clone_offset, 0);
}

// An incremental stream against the parent sent with `parent_transid`, with clones from the
// parent, from the new subvolume itself and from another subvolume at the same transid.
std::string incremental(uint32_t version, uint64_t parent_transid) {
  StreamBuilder b(version);
  snapshot_cmd(b, parent_transid);
  b.begin(Cmd::mkfile).str(Attr::path, "o257-1-0").u64(Attr::ino, 257);
  b.begin(Cmd::rename).str(Attr::path, "o257-1-0").str(Attr::path_to, "copy");
  b.write("copy", 0, std::string(5000, 'x'));
  clone_cmd(b, kParent, parent_transid);
  clone_cmd(b, kNew, 9);
  clone_cmd(b, kOther, 150);
  b.end();
  return b.str();
}

std::string error_code(const Result<std::string>& r) { return r ? std::string("(none)") : r.error().code; }

}  // namespace

TEST_CASE("snapshot and clone commands naming a received parent get its stransid with a valid checksum") {
  for (uint32_t version : {1u, 2u}) {
    INFO("version " << version);
    uint64_t n = 0;
    auto out = rewrite_all(incremental(version, 150), {{filled(kParent), 150, 153}}, 7, 5, &n);
    REQUIRE(out);
    // Exactly what the kernel would have sent had it named the parent with 153: the snapshot
    // and the clone from the parent change; the clones from the new subvolume itself and from
    // another subvolume do not.
    StreamBuilder expected(version);
    snapshot_cmd(expected, 153);
    expected.begin(Cmd::mkfile).str(Attr::path, "o257-1-0").u64(Attr::ino, 257);
    expected.begin(Cmd::rename).str(Attr::path, "o257-1-0").str(Attr::path_to, "copy");
    expected.write("copy", 0, std::string(5000, 'x'));
    clone_cmd(expected, kParent, 153);
    clone_cmd(expected, kNew, 9);
    clone_cmd(expected, kOther, 150);
    expected.end();
    CHECK(*out == expected.str());
    CHECK(n == 2);

    // The receiver's own parser (which checks every crc) reads the result.
    MemoryByteSource src(*out);
    StreamReader reader(src);
    REQUIRE(reader.read_header() == version);
    Command c;
    REQUIRE(reader.next(c) == true);
    CHECK(c.cmd == Cmd::snapshot);
    CHECK(*c.u64(Attr::clone_ctransid) == 153);
    CHECK(*c.u64(Attr::ctransid) == 9);
    int commands = 1;
    for (;;) {
      auto more = reader.next(c);
      REQUIRE(more);
      if (!*more) break;
      ++commands;
    }
    CHECK(commands == 8);
  }
}

TEST_CASE("the sent subvolume's own transid is rewritten when it was received itself") {
  StreamBuilder b(1);
  b.subvol("v1", kNew, 40);
  b.begin(Cmd::mkfile).str(Attr::path, "o257-1-0").u64(Attr::ino, 257);
  clone_cmd(b, kNew, 40);
  b.end();
  auto out = rewrite_all(b.str(), {{filled(kNew), 40, 12}});
  REQUIRE(out);
  StreamBuilder expected(1);
  expected.subvol("v1", kNew, 12);
  expected.begin(Cmd::mkfile).str(Attr::path, "o257-1-0").u64(Attr::ino, 257);
  clone_cmd(expected, kNew, 12);
  expected.end();
  CHECK(*out == expected.str());
}

TEST_CASE("a stream naming no rewritten subvolume passes through byte-identical") {
  for (uint32_t version : {1u, 2u}) {
    INFO("version " << version);
    auto in = incremental(version, 150);
    for (size_t step : {1u, 3u, 4096u}) {
      uint64_t n = 99;
      auto other_uuid = rewrite_all(in, {{filled(0x77), 150, 153}}, step, step, &n);
      REQUIRE(other_uuid);
      CHECK(*other_uuid == in);
      CHECK(n == 0);
      // A stream that already names the parent with the transid hosts know is left alone.
      auto settled_in = incremental(version, 153);
      auto settled = rewrite_all(settled_in, {{filled(kParent), 150, 153}}, step, step, &n);
      REQUIRE(settled);
      CHECK(*settled == settled_in);
      CHECK(n == 0);
      auto none = rewrite_all(in, {}, step, step);
      REQUIRE(none);
      CHECK(*none == in);
    }
  }
}

TEST_CASE("a write's data is handed on as it arrives instead of being buffered") {
  StreamBuilder b(1);
  b.subvol("v1", kNew, 40);
  b.write("f", 0, std::string(60000, 'd'));
  b.end();
  const std::string in = b.str();
  TrickleSource src(in, 1000);
  TransidRewriteSource r(src, {{filled(kParent), 150, 153}});
  std::string out;
  char buf[1000];
  while (out.size() < 20000) {
    auto n = r.read(buf, sizeof(buf));
    REQUIRE(n);
    REQUIRE(*n > 0);
    out.append(buf, *n);
    // Never more read ahead than one input step plus a command header.
    CHECK(src.consumed() <= out.size() + 1000 + kCommandHeaderLen);
  }
  CHECK(src.consumed() < in.size() / 2);
  CHECK(out == in.substr(0, out.size()));
}

TEST_CASE("a rewritten subvolume named with a third transid is refused as changed while sent") {
  auto out = rewrite_all(incremental(1, 150), {{filled(kParent), 151, 153}});
  REQUIRE_FALSE(out);
  CHECK(out.error().code == "send.transid-changed");
  CHECK(out.error().message.find("150") != std::string::npos);
}

TEST_CASE("a malformed stream is refused with a clear error code") {
  const std::vector<TransidRewrite> rw = {{filled(kParent), 150, 153}};
  const std::string good = incremental(1, 150);
  CHECK(error_code(rewrite_all("", rw)) == "send.bad-stream");
  CHECK(error_code(rewrite_all("btrfs-str", rw)) == "send.bad-stream");
  std::string bad_magic = good;
  bad_magic[0] = 'B';
  CHECK(error_code(rewrite_all(bad_magic, rw)) == "send.bad-stream");
  std::string v3 = good;
  v3[kMagicLen] = 3;
  CHECK(error_code(rewrite_all(v3, rw)) == "send.bad-stream");
  // Cut inside a command header, inside the snapshot command, inside a write's data.
  CHECK(error_code(rewrite_all(good.substr(0, kStreamHeaderLen + 4), rw)) == "send.bad-stream");
  CHECK(error_code(rewrite_all(good.substr(0, kStreamHeaderLen + 30), rw)) == "send.bad-stream");
  const auto write_at = good.find(std::string(100, 'x'));
  REQUIRE(write_at != std::string::npos);
  CHECK(error_code(rewrite_all(good.substr(0, write_at + 100), rw)) == "send.bad-stream");

  // A corrupt snapshot command is not given a fresh, valid checksum.
  StreamBuilder corrupt(1);
  snapshot_cmd(corrupt, 150);
  CHECK(error_code(rewrite_all(corrupt.str(true), rw)) == "send.bad-crc");

  StreamBuilder no_transid(1);
  no_transid.begin(Cmd::snapshot).str(Attr::path, "v2").uuid(Attr::uuid, kNew).u64(Attr::ctransid, 9).uuid(
      Attr::clone_uuid, kParent);
  CHECK(error_code(rewrite_all(no_transid.str(), rw)) == "send.bad-stream");

  StreamBuilder short_uuid(1);
  short_uuid.begin(Cmd::clone).bytes(Attr::clone_uuid, "short").u64(Attr::clone_ctransid, 150);
  CHECK(error_code(rewrite_all(short_uuid.str(), rw)) == "send.bad-stream");

  StreamBuilder overrun(1);
  overrun.begin(Cmd::clone).raw_attr(static_cast<uint16_t>(Attr::clone_uuid), std::string(16, '\xaa'));
  std::string bytes = overrun.str();
  // Claim a longer attribute than the command holds, and fix the crc so only the layout is wrong.
  bytes[kStreamHeaderLen + kCommandHeaderLen + 2] = 40;
  std::string cmd = bytes.substr(kStreamHeaderLen);
  std::memset(cmd.data() + 6, 0, 4);
  uint32_t crc = crc32c_update(0, cmd.data(), cmd.size());
  for (int i = 0; i < 4; ++i) bytes[kStreamHeaderLen + 6 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  CHECK(error_code(rewrite_all(bytes, rw)) == "send.bad-stream");

  // The error stays: a reader that tries again gets it again, not the rest of the stream.
  MemoryByteSource src(good.substr(0, kStreamHeaderLen + 30));
  TransidRewriteSource r(src, rw);
  char buf[64];
  auto first = r.read(buf, sizeof(buf));
  REQUIRE(first);  // the stream header
  CHECK_FALSE(r.read(buf, sizeof(buf)));
  auto again = r.read(buf, sizeof(buf));
  REQUIRE_FALSE(again);
  CHECK(again.error().code == "send.bad-stream");
}
