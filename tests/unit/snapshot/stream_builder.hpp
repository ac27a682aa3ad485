// Builds Btrfs send streams by hand, byte for byte, so tests can make well-formed and hostile
// streams the kernel would never emit. Shared by unit, integration and fuzz-seed code.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>

#include "common/byte_source.hpp"
#include "common/crc32c.hpp"
#include "snapshot/send_stream.hpp"

namespace ballast::testing {

class StreamBuilder {
 public:
  using Cmd = snapshot::stream::Cmd;
  using Attr = snapshot::stream::Attr;

  explicit StreamBuilder(uint32_t version = 1) : version_(version) {
    out_.append("btrfs-stream", 12);
    out_.push_back('\0');
    put32(out_, version);
  }

  // Starts a command; attributes follow; finished by the next begin() or by str().
  StreamBuilder& begin(Cmd c) {
    flush();
    cmd_ = static_cast<uint16_t>(c);
    open_ = true;
    body_.clear();
    return *this;
  }
  StreamBuilder& raw_attr(uint16_t type, std::string_view v) {
    put16(body_, type);
    put16(body_, static_cast<uint16_t>(v.size()));
    body_.append(v);
    return *this;
  }
  StreamBuilder& bytes(Attr a, std::string_view v) { return raw_attr(static_cast<uint16_t>(a), v); }
  StreamBuilder& str(Attr a, std::string_view v) { return bytes(a, v); }
  StreamBuilder& u64(Attr a, uint64_t v) {
    std::string s;
    put64(s, v);
    return bytes(a, s);
  }
  StreamBuilder& u32(Attr a, uint32_t v) {
    std::string s;
    put32(s, v);
    return bytes(a, s);
  }
  StreamBuilder& uuid(Attr a, uint8_t fill) { return bytes(a, std::string(16, static_cast<char>(fill))); }
  StreamBuilder& time(Attr a, uint64_t sec, uint32_t nsec) {
    std::string s;
    put64(s, sec);
    put32(s, nsec);
    return bytes(a, s);
  }
  // DATA as the given version encodes it (v2: no length, runs to the end of the command).
  StreamBuilder& data(std::string_view v) {
    if (version_ >= 2) {
      put16(body_, static_cast<uint16_t>(Attr::data));
      body_.append(v);
      return *this;
    }
    return bytes(Attr::data, v);
  }

  // Common commands.
  StreamBuilder& subvol(std::string_view name, uint8_t uuid_fill = 0x11, uint64_t ctransid = 7) {
    return begin(Cmd::subvol).str(Attr::path, name).uuid(Attr::uuid, uuid_fill).u64(Attr::ctransid, ctransid);
  }
  StreamBuilder& path_cmd(Cmd c, std::string_view path) { return begin(c).str(Attr::path, path); }
  StreamBuilder& write(std::string_view path, uint64_t off, std::string_view d) {
    return begin(Cmd::write).str(Attr::path, path).u64(Attr::file_offset, off).data(d);
  }
  StreamBuilder& end() { return begin(Cmd::end); }

  // The stream so far; `corrupt_crc` flips a bit of the last command's checksum.
  std::string str(bool corrupt_crc = false) {
    flush(corrupt_crc);
    return out_;
  }

  static void put16(std::string& s, uint16_t v) {
    s.push_back(static_cast<char>(v & 0xff));
    s.push_back(static_cast<char>(v >> 8));
  }
  static void put32(std::string& s, uint32_t v) {
    for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  static void put64(std::string& s, uint64_t v) {
    for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }

 private:
  void flush(bool corrupt = false) {
    if (!open_) return;
    std::string cmd;
    put32(cmd, static_cast<uint32_t>(body_.size()));
    put16(cmd, cmd_);
    put32(cmd, 0);
    cmd += body_;
    uint32_t crc = ballast::crc32c_update(0, cmd.data(), cmd.size());
    if (corrupt) crc ^= 1;
    for (int i = 0; i < 4; ++i) cmd[6 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
    out_ += cmd;
    open_ = false;
  }

  uint32_t version_;
  std::string out_, body_;
  uint16_t cmd_ = 0;
  bool open_ = false;
};

// Hands out at most `step` bytes per read, like a pipe or a chunk pipeline would, and counts
// what it handed out.
class TrickleSource final : public ByteSource {
 public:
  TrickleSource(std::string d, size_t step) : data_(std::move(d)), step_(step) {}
  Result<size_t> read(void* buf, size_t len) override {
    size_t n = std::min({len, step_, data_.size() - pos_});
    std::memcpy(buf, data_.data() + pos_, n);
    pos_ += n;
    return n;
  }
  size_t consumed() const { return pos_; }

 private:
  std::string data_;
  size_t step_, pos_ = 0;
};

}  // namespace ballast::testing
