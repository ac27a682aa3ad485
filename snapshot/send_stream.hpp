// The Btrfs send-stream wire format (versions 1 and 2): a streaming, bounded-memory parser that
// checks every command's crc32c and attribute layout before anything acts on it.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/byte_source.hpp"
#include "common/result.hpp"

namespace ballast::snapshot::stream {

inline constexpr char kMagic[] = "btrfs-stream";  // followed by its NUL on the wire
inline constexpr size_t kMagicLen = sizeof(kMagic);   // 13, NUL included
inline constexpr size_t kStreamHeaderLen = kMagicLen + 4;
inline constexpr size_t kCommandHeaderLen = 10;       // le32 len, le16 cmd, le32 crc
inline constexpr uint32_t kMaxVersion = 2;
// The kernel never emits a v1 command over 64 KiB or a v2 one over 16 KiB + 128 KiB of
// compressed data; anything far larger is hostile or corrupt, and must not size our buffers.
inline constexpr uint32_t kDefaultMaxCommand = 4u << 20;

enum class Cmd : uint16_t {
  unspec = 0,
  subvol = 1,
  snapshot = 2,
  mkfile = 3,
  mkdir = 4,
  mknod = 5,
  mkfifo = 6,
  mksock = 7,
  symlink = 8,
  rename = 9,
  link = 10,
  unlink = 11,
  rmdir = 12,
  set_xattr = 13,
  remove_xattr = 14,
  write = 15,
  clone = 16,
  truncate = 17,
  chmod = 18,
  chown = 19,
  utimes = 20,
  end = 21,
  update_extent = 22,
  // version 2
  fallocate = 23,
  fileattr = 24,
  encoded_write = 25,
};
inline constexpr uint16_t kMaxCmdV1 = 22;
inline constexpr uint16_t kMaxCmdV2 = 25;

enum class Attr : uint16_t {
  unspec = 0,
  uuid = 1,
  ctransid = 2,
  ino = 3,
  size = 4,
  mode = 5,
  uid = 6,
  gid = 7,
  rdev = 8,
  ctime = 9,
  mtime = 10,
  atime = 11,
  otime = 12,
  xattr_name = 13,
  xattr_data = 14,
  path = 15,
  path_to = 16,
  path_link = 17,
  file_offset = 18,
  data = 19,
  clone_uuid = 20,
  clone_ctransid = 21,
  clone_path = 22,
  clone_offset = 23,
  clone_len = 24,
  // version 2
  fallocate_mode = 25,
  fileattr = 26,
  unencoded_file_len = 27,
  unencoded_len = 28,
  unencoded_offset = 29,
  compression = 30,
  encryption = 31,
};
inline constexpr uint16_t kMaxAttrV1 = 24;
inline constexpr uint16_t kMaxAttrV2 = 31;

// FALLOCATE mode bits.
inline constexpr uint32_t kFallocateKeepSize = 1;
inline constexpr uint32_t kFallocatePunchHole = 2;

const char* cmd_name(Cmd c);
// " at byte N": where in a stream an error is, appended to its message.
std::string at_byte(uint64_t offset);
const char* attr_name(Attr a);

// The stream's integers are little-endian, at any alignment.
inline uint16_t le16(const char* p) {
  auto u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>(u[0] | (u[1] << 8));
}
inline uint32_t le32(const char* p) {
  auto u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint32_t>(u[0]) | (static_cast<uint32_t>(u[1]) << 8) | (static_cast<uint32_t>(u[2]) << 16) |
         (static_cast<uint32_t>(u[3]) << 24);
}
inline uint64_t le64(const char* p) { return le32(p) | (static_cast<uint64_t>(le32(p + 4)) << 32); }

struct Timespec {
  uint64_t sec = 0;
  uint32_t nsec = 0;
};

using Uuid = std::array<uint8_t, 16>;
std::string format_uuid(const Uuid& u);

// One parsed command. Views point into the reader's buffer and stay valid until the next call
// to StreamReader::next().
class Command {
 public:
  Cmd cmd = Cmd::unspec;
  uint32_t length = 0;  // payload bytes

  bool has(Attr a) const { return (present_ >> static_cast<unsigned>(a)) & 1; }
  // Typed accessors: each checks presence and exact width, so a malformed attribute is an
  // error, never a misread.
  Result<uint64_t> u64(Attr a) const;
  Result<uint32_t> u32(Attr a) const;
  Result<Uuid> uuid(Attr a) const;
  Result<Timespec> timespec(Attr a) const;
  Result<std::string_view> bytes(Attr a) const;
  // A path inside the subvolume: relative, no empty/"."/".." components, no NUL. An empty
  // string names the subvolume's root.
  Result<std::string_view> path(Attr a) const;
  // Any NUL-free string (symlink targets, xattr names).
  Result<std::string_view> string(Attr a) const;

 private:
  friend class StreamReader;
  uint64_t present_ = 0;
  std::array<std::string_view, 32> values_{};
};

// Checks that `p` is a safe relative path as Command::path() does.
Status validate_path(std::string_view p);

class StreamReader {
 public:
  // `read_chunk`: how much to ask the source for at once (large for throughput, small for tests).
  explicit StreamReader(ByteSource& in, uint32_t max_command = kDefaultMaxCommand, size_t read_chunk = 1u << 20);

  // Reads the stream header; returns the version (1 or 2). Anything else is an error.
  Result<uint32_t> read_header();
  // Reads the next command into `out`; false at a clean end of input between commands.
  Result<bool> next(Command& out);
  uint32_t version() const { return version_; }
  uint64_t bytes_consumed() const { return consumed_; }
  // True when no more bytes can be read (used to find a following stream after END).
  Result<bool> at_eof();

 private:
  // Makes `n` bytes available at buf_[pos_]; fewer than n only at end of input.
  Result<size_t> fill(size_t n);

  ByteSource& in_;
  uint32_t max_command_;
  size_t read_chunk_;
  uint32_t version_ = 0;
  std::vector<char> buf_;
  size_t pos_ = 0, end_ = 0;
  uint64_t consumed_ = 0;
};

// Writes one line for `c` in the style of `btrfs receive --dump`.
std::string describe(const Command& c);

}  // namespace ballast::snapshot::stream
