#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <vector>
#include <sstream>
#include <string>

#include "snapshot/receive.hpp"
#include "snapshot/send_stream.hpp"
#include "tests/unit/snapshot/stream_builder.hpp"

using namespace ballast;
using namespace ballast::snapshot::stream;
using ballast::testing::StreamBuilder;
using ballast::testing::TrickleSource;

namespace {


std::vector<Cmd> parse_all(const std::string& s, size_t step = 1 << 20) {
  TrickleSource src(s, step);
  StreamReader r(src);
  auto v = r.read_header();
  REQUIRE(v);
  std::vector<Cmd> out;
  Command c;
  for (;;) {
    auto more = r.next(c);
    REQUIRE(more);
    if (!*more) break;
    out.push_back(c.cmd);
  }
  return out;
}

std::string error_code_of(const std::string& s, uint32_t max_command = kDefaultMaxCommand) {
  MemoryByteSource src(s);
  StreamReader r(src, max_command);
  auto v = r.read_header();
  if (!v) return v.error().code;
  Command c;
  for (;;) {
    auto more = r.next(c);
    if (!more) return more.error().code;
    if (!*more) return "";
  }
}

}  // namespace

TEST_CASE("a version 1 stream is parsed command by command with typed attributes") {
  StreamBuilder b(1);
  b.subvol("vol", 0xab, 42);
  b.begin(Cmd::mkfile).str(Attr::path, "o257-1-0").u64(Attr::ino, 257);
  b.write("o257-1-0", 4096, "hello");
  b.begin(Cmd::utimes).str(Attr::path, "").time(Attr::atime, 1, 2).time(Attr::mtime, 3, 4).time(Attr::ctime, 5, 6);
  b.end();
  MemoryByteSource src(b.str());
  StreamReader r(src);
  REQUIRE(r.read_header() == 1u);
  Command c;
  REQUIRE(r.next(c) == true);
  CHECK(c.cmd == Cmd::subvol);
  CHECK(*c.path(Attr::path) == "vol");
  CHECK(*c.u64(Attr::ctransid) == 42);
  CHECK(format_uuid(*c.uuid(Attr::uuid)) == "abababab-abab-abab-abab-abababababab");
  REQUIRE(r.next(c) == true);
  CHECK(c.cmd == Cmd::mkfile);
  CHECK(*c.u64(Attr::ino) == 257);
  REQUIRE(r.next(c) == true);
  CHECK(c.cmd == Cmd::write);
  CHECK(*c.u64(Attr::file_offset) == 4096);
  CHECK(*c.bytes(Attr::data) == "hello");
  REQUIRE(r.next(c) == true);
  CHECK(c.timespec(Attr::mtime)->sec == 3);
  CHECK(c.timespec(Attr::mtime)->nsec == 4);
  CHECK(*c.path(Attr::path) == "");
  REQUIRE(r.next(c) == true);
  CHECK(c.cmd == Cmd::end);
  CHECK(r.next(c) == false);
  CHECK(r.bytes_consumed() == b.str().size());
}

TEST_CASE("a missing or wrongly sized attribute is an error, not a misread") {
  StreamBuilder b(1);
  b.begin(Cmd::truncate).str(Attr::path, "f").u32(Attr::size, 5);
  MemoryByteSource src(b.str());
  StreamReader r(src);
  REQUIRE(r.read_header());
  Command c;
  REQUIRE(r.next(c) == true);
  CHECK(c.u64(Attr::size).error().code == "receive.bad-attribute");
  CHECK(c.u64(Attr::mode).error().code == "receive.missing-attribute");
}

TEST_CASE("in a version 2 stream DATA has no length and runs to the end of the command") {
  std::string payload(70000, 'x');  // over 64 KiB: only expressible without a 16-bit length
  StreamBuilder b(2);
  b.subvol("v");
  b.write("f", 0, payload);
  b.end();
  MemoryByteSource src(b.str());
  StreamReader r(src);
  REQUIRE(r.read_header() == 2u);
  Command c;
  REQUIRE(r.next(c) == true);
  REQUIRE(r.next(c) == true);
  REQUIRE(c.cmd == Cmd::write);
  CHECK(c.bytes(Attr::data)->size() == payload.size());
  CHECK(*c.path(Attr::path) == "f");
}

TEST_CASE("version 2 commands are refused in a version 1 stream and accepted in a version 2 one") {
  for (uint32_t v : {1u, 2u}) {
    StreamBuilder b(v);
    b.subvol("v");
    b.begin(Cmd::fallocate).str(Attr::path, "f").u32(Attr::fallocate_mode, 1).u64(Attr::file_offset, 0).u64(Attr::size, 9);
    b.end();
    CHECK(error_code_of(b.str()) == (v == 1 ? "receive.unknown-command" : ""));
  }
}

TEST_CASE("a version 3 stream, an unknown command or a bad magic is refused clearly") {
  std::string s = StreamBuilder(1).subvol("v").end().str();
  std::string v3 = s;
  v3[13] = 3;
  CHECK(error_code_of(v3) == "receive.unsupported-version");
  std::string bad = s;
  bad[0] = 'X';
  CHECK(error_code_of(bad) == "receive.bad-magic");
  StreamBuilder b(2);
  b.subvol("v");
  b.begin(static_cast<Cmd>(26)).str(Attr::path, "f");  // ENABLE_VERITY, protocol 3
  CHECK(error_code_of(b.str()) == "receive.unknown-command");
  CHECK(error_code_of("") == "receive.empty");
}

TEST_CASE("a command whose checksum does not match is rejected") {
  auto make = [](bool corrupt) { return StreamBuilder(1).subvol("v").write("f", 0, "data").str(corrupt); };
  CHECK(error_code_of(make(false)) == "");
  CHECK(error_code_of(make(true)) == "receive.bad-crc");
  StreamBuilder b(1);
  b.subvol("v").write("f", 0, "data");
  // A flipped payload byte too, not only the stored checksum.
  std::string s = b.str();
  s[s.size() - 1] ^= 0x40;
  CHECK(error_code_of(s) == "receive.bad-crc");
}

TEST_CASE("a stream cut anywhere inside a command is reported as truncated") {
  std::string s = StreamBuilder(1).subvol("v").write("f", 0, "payload").end().str();
  size_t header = kStreamHeaderLen;
  size_t first = header + kCommandHeaderLen + 4 + 1 + 4 + 16 + 4 + 8;  // subvol command
  for (size_t cut = first + 1; cut < s.size() - kCommandHeaderLen; ++cut)
    CHECK(error_code_of(s.substr(0, cut)) == "receive.truncated");
  CHECK(error_code_of(s.substr(0, 10)) == "receive.truncated");
}

TEST_CASE("a huge command length is refused before anything is read or allocated for it") {
  std::string s = StreamBuilder(1).subvol("v").str();
  std::string cmd;
  StreamBuilder::put32(cmd, 0xfffffff0u);
  StreamBuilder::put16(cmd, static_cast<uint16_t>(Cmd::write));
  StreamBuilder::put32(cmd, 0);
  CHECK(error_code_of(s + cmd) == "receive.command-too-large");
  // The limit is configurable and exact.
  std::string w = StreamBuilder(1).subvol("v").write("f", 0, std::string(1000, 'a')).end().str();
  CHECK(error_code_of(w, 2000) == "");
  CHECK(error_code_of(w, 500) == "receive.command-too-large");
}

TEST_CASE("attributes that overrun their command, repeat, or are unknown are rejected") {
  StreamBuilder over(1);
  over.subvol("v");
  over.begin(Cmd::mkfile).raw_attr(static_cast<uint16_t>(Attr::path), "abc");
  std::string s = over.str();
  // Claim a longer attribute than the command holds, then fix the checksum so only layout is wrong.
  std::string cmds = s.substr(kStreamHeaderLen);
  size_t last = s.size() - (kCommandHeaderLen + 4 + 3);
  s[last + kCommandHeaderLen + 2] = 9;
  std::string body = s.substr(last + kCommandHeaderLen);
  std::string hdr = s.substr(last, 6) + std::string(4, '\0');
  uint32_t crc = crc32c_update(crc32c_update(0, hdr.data(), hdr.size()), body.data(), body.size());
  for (int i = 0; i < 4; ++i) s[last + 6 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  CHECK(error_code_of(s) == "receive.bad-attribute");

  StreamBuilder dup(1);
  dup.subvol("v").begin(Cmd::mkfile).str(Attr::path, "a").str(Attr::path, "b");
  CHECK(error_code_of(dup.str()) == "receive.bad-attribute");

  StreamBuilder unknown(1);
  unknown.subvol("v").begin(Cmd::mkfile).raw_attr(25, "x");  // a v2 attribute in a v1 stream
  CHECK(error_code_of(unknown.str()) == "receive.bad-attribute");
}

TEST_CASE("stream paths must be relative and free of '.', '..' and empty components") {
  CHECK(validate_path(""));
  CHECK(validate_path("a"));
  CHECK(validate_path("a/b/c.d/..e"));
  for (const std::string& bad : std::vector<std::string>{"/etc/passwd", "..", "a/../../b", "a/./b", "a//b", "a/", std::string("a\0b", 3),
                          std::string(256, 'n')})
    CHECK(validate_path(bad).error().code == "receive.bad-path");
}

TEST_CASE("the parser gives the same commands however the input is split") {
  StreamBuilder b(2);
  b.subvol("v");
  for (int i = 0; i < 50; ++i) b.write("f", static_cast<uint64_t>(i) * 100, std::string(100 + i, 'a' + i % 26));
  b.begin(Cmd::chmod).str(Attr::path, "f").u64(Attr::mode, 0644);
  b.end();
  std::string s = b.str();
  auto whole = parse_all(s);
  CHECK(whole.size() == 53);
  for (size_t step : {1u, 3u, 10u, 4096u}) CHECK(parse_all(s, step) == whole);
}

TEST_CASE("dump prints one line per command, with paths and values") {
  StreamBuilder b(1);
  b.subvol("vol", 0x01, 9);
  b.begin(Cmd::mkdir).str(Attr::path, "o257-1-0").u64(Attr::ino, 257);
  b.begin(Cmd::rename).str(Attr::path, "o257-1-0").str(Attr::path_to, "my dir");
  b.begin(Cmd::chmod).str(Attr::path, "my dir").u64(Attr::mode, 0755);
  b.end();
  MemoryByteSource src(b.str());
  std::ostringstream out;
  REQUIRE(snapshot::dump(src, out));
  std::string text = out.str();
  CHECK(std::count(text.begin(), text.end(), '\n') == 5);
  CHECK(text.find("subvol          ./vol uuid=01010101-0101-0101-0101-010101010101 transid=9\n") == 0);
  CHECK(text.find("rename          ./o257-1-0 dest=my\\040dir\n") != std::string::npos);
  CHECK(text.find("chmod           ./my\\040dir mode=755\n") != std::string::npos);
  CHECK(text.find("end") != std::string::npos);
}

TEST_CASE("dump stops with an error on a corrupt stream") {
  StreamBuilder b(1);
  b.subvol("v");
  b.write("f", 0, "x");
  MemoryByteSource src(b.str(true));
  std::ostringstream out;
  auto st = snapshot::dump(src, out);
  REQUIRE_FALSE(st);
  CHECK(st.error().code == "receive.bad-crc");
}
