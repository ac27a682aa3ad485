#include "snapshot/send_stream.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "common/crc32c.hpp"

namespace ballast::snapshot::stream {

namespace {


std::string attr_label(Attr a) { return attr_name(a); }

}  // namespace

std::string at_byte(uint64_t offset) { return " at byte " + std::to_string(offset); }

const char* cmd_name(Cmd c) {
  switch (c) {
    case Cmd::unspec: return "unspec";
    case Cmd::subvol: return "subvol";
    case Cmd::snapshot: return "snapshot";
    case Cmd::mkfile: return "mkfile";
    case Cmd::mkdir: return "mkdir";
    case Cmd::mknod: return "mknod";
    case Cmd::mkfifo: return "mkfifo";
    case Cmd::mksock: return "mksock";
    case Cmd::symlink: return "symlink";
    case Cmd::rename: return "rename";
    case Cmd::link: return "link";
    case Cmd::unlink: return "unlink";
    case Cmd::rmdir: return "rmdir";
    case Cmd::set_xattr: return "set_xattr";
    case Cmd::remove_xattr: return "remove_xattr";
    case Cmd::write: return "write";
    case Cmd::clone: return "clone";
    case Cmd::truncate: return "truncate";
    case Cmd::chmod: return "chmod";
    case Cmd::chown: return "chown";
    case Cmd::utimes: return "utimes";
    case Cmd::end: return "end";
    case Cmd::update_extent: return "update_extent";
    case Cmd::fallocate: return "fallocate";
    case Cmd::fileattr: return "fileattr";
    case Cmd::encoded_write: return "encoded_write";
  }
  return "unknown";
}

const char* attr_name(Attr a) {
  static const char* const names[] = {
      "unspec", "uuid", "ctransid", "ino", "size", "mode", "uid", "gid", "rdev", "ctime", "mtime",
      "atime", "otime", "xattr_name", "xattr_data", "path", "path_to", "path_link", "file_offset",
      "data", "clone_uuid", "clone_ctransid", "clone_path", "clone_offset", "clone_len",
      "fallocate_mode", "fileattr", "unencoded_file_len", "unencoded_len", "unencoded_offset",
      "compression", "encryption"};
  auto i = static_cast<size_t>(a);
  return i < std::size(names) ? names[i] : "unknown";
}

std::string format_uuid(const Uuid& u) {
  char out[37];
  std::snprintf(out, sizeof(out), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
                u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
  return out;
}

Status validate_path(std::string_view p) {
  if (p.empty()) return ok();
  if (p.find('\0') != std::string_view::npos) return fail("receive.bad-path", "path contains a NUL byte");
  if (p.front() == '/') return fail("receive.bad-path", "absolute path in stream: " + std::string(p));
  size_t start = 0;
  while (start <= p.size()) {
    size_t slash = p.find('/', start);
    if (slash == std::string_view::npos) slash = p.size();
    auto comp = p.substr(start, slash - start);
    if (comp.empty() || comp == "." || comp == "..")
      return fail("receive.bad-path", "path with an empty, '.' or '..' component: " + std::string(p));
    if (comp.size() > 255) return fail("receive.bad-path", "path component longer than 255 bytes");
    start = slash + 1;
  }
  return ok();
}

Result<std::string_view> Command::bytes(Attr a) const {
  if (!has(a))
    return fail("receive.missing-attribute",
                std::string(cmd_name(cmd)) + " command lacks its " + attr_label(a) + " attribute");
  return values_[static_cast<size_t>(a)];
}

Result<uint64_t> Command::u64(Attr a) const {
  auto v = BALLAST_TRY(bytes(a));
  if (v.size() != 8) return fail("receive.bad-attribute", attr_label(a) + " is not 8 bytes");
  return le64(v.data());
}

Result<uint32_t> Command::u32(Attr a) const {
  auto v = BALLAST_TRY(bytes(a));
  if (v.size() != 4) return fail("receive.bad-attribute", attr_label(a) + " is not 4 bytes");
  return le32(v.data());
}

Result<Uuid> Command::uuid(Attr a) const {
  auto v = BALLAST_TRY(bytes(a));
  if (v.size() != 16) return fail("receive.bad-attribute", attr_label(a) + " is not 16 bytes");
  Uuid u;
  std::memcpy(u.data(), v.data(), 16);
  return u;
}

Result<Timespec> Command::timespec(Attr a) const {
  auto v = BALLAST_TRY(bytes(a));
  if (v.size() != 12) return fail("receive.bad-attribute", attr_label(a) + " is not 12 bytes");
  Timespec t{le64(v.data()), le32(v.data() + 8)};
  if (t.nsec >= 1000000000u) return fail("receive.bad-attribute", attr_label(a) + " has nanoseconds out of range");
  return t;
}

Result<std::string_view> Command::string(Attr a) const {
  auto v = BALLAST_TRY(bytes(a));
  if (v.find('\0') != std::string_view::npos)
    return fail("receive.bad-attribute", attr_label(a) + " contains a NUL byte");
  return v;
}

Result<std::string_view> Command::path(Attr a) const {
  auto v = BALLAST_TRY(bytes(a));
  BALLAST_CHECK(with_context(validate_path(v), [&] { return std::string(cmd_name(cmd)) + " " + attr_label(a); }));
  return v;
}

StreamReader::StreamReader(ByteSource& in, uint32_t max_command, size_t read_chunk)
    : in_(in), max_command_(max_command), read_chunk_(std::max<size_t>(read_chunk, kStreamHeaderLen)) {}

Result<size_t> StreamReader::fill(size_t n) {
  if (end_ - pos_ >= n) return n;
  if (buf_.size() - pos_ < n) {
    std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
    // Start small (short inputs stay cheap), double towards read_chunk_ on long streams, and
    // never beyond what the largest command seen needs.
    size_t want = buf_.size() < read_chunk_ ? std::min(read_chunk_, buf_.size() * 2) : buf_.size();
    want = std::max(want, n);
    if (want > buf_.size()) buf_.resize(want);
  }
  while (end_ - pos_ < n) {
    auto got = BALLAST_TRY(in_.read(buf_.data() + end_, buf_.size() - end_));
    if (got == 0) break;
    end_ += got;
  }
  return std::min(n, end_ - pos_);
}

Result<bool> StreamReader::at_eof() {
  auto n = BALLAST_TRY(fill(1));
  return n == 0;
}

Result<uint32_t> StreamReader::read_header() {
  if (buf_.empty()) buf_.resize(std::min<size_t>(read_chunk_, 64u << 10));
  auto got = BALLAST_TRY(fill(kStreamHeaderLen));
  if (got < kStreamHeaderLen) {
    if (got == 0) return fail("receive.empty", "the stream is empty");
    return fail("receive.truncated", "the stream ends inside its header");
  }
  const char* p = buf_.data() + pos_;
  if (std::memcmp(p, kMagic, kMagicLen) != 0) return fail("receive.bad-magic", "not a Btrfs send stream (bad magic)");
  uint32_t v = le32(p + kMagicLen);
  if (v == 0 || v > kMaxVersion)
    return fail("receive.unsupported-version",
                "send stream version " + std::to_string(v) + " is not supported (only 1 and 2)");
  pos_ += kStreamHeaderLen;
  consumed_ += kStreamHeaderLen;
  version_ = v;
  return v;
}

Result<bool> StreamReader::next(Command& out) {
  if (version_ == 0) return fail("receive.internal", "read_header() must come first");
  auto got = BALLAST_TRY(fill(kCommandHeaderLen));
  if (got == 0) return false;
  if (got < kCommandHeaderLen)
    return fail("receive.truncated", "the stream ends inside a command header" + at_byte(consumed_));
  const char* h = buf_.data() + pos_;
  uint32_t len = le32(h);
  uint16_t cmd = le16(h + 4);
  uint32_t crc = le32(h + 6);
  if (len > max_command_)
    return fail("receive.command-too-large", "command of " + std::to_string(len) + " bytes exceeds the limit of " +
                                                 std::to_string(max_command_) + at_byte(consumed_));
  got = BALLAST_TRY(fill(kCommandHeaderLen + len));
  if (got < kCommandHeaderLen + len)
    return fail("receive.truncated", "the stream ends inside a command" + at_byte(consumed_));
  h = buf_.data() + pos_;
  static const char zero_crc[4] = {0, 0, 0, 0};
  uint32_t c = crc32c_update(0, h, 6);
  c = crc32c_update(c, zero_crc, 4);
  c = crc32c_update(c, h + kCommandHeaderLen, len);
  if (c != crc) return fail("receive.bad-crc", "command checksum mismatch" + at_byte(consumed_));

  uint16_t max_cmd = version_ >= 2 ? kMaxCmdV2 : kMaxCmdV1;
  if (cmd == 0 || cmd > max_cmd)
    return fail("receive.unknown-command", "unknown command " + std::to_string(cmd) + " in a version " +
                                               std::to_string(version_) + " stream" + at_byte(consumed_));
  out.cmd = static_cast<Cmd>(cmd);
  out.length = len;
  out.present_ = 0;
  const uint16_t max_attr = version_ >= 2 ? kMaxAttrV2 : kMaxAttrV1;
  const char* p = h + kCommandHeaderLen;
  const char* e = p + len;
  while (p < e) {
    if (e - p < 2) return fail("receive.bad-attribute", "attribute header cut short" + at_byte(consumed_));
    uint16_t type = le16(p);
    if (type == 0 || type > max_attr)
      return fail("receive.bad-attribute", "unknown attribute " + std::to_string(type) + at_byte(consumed_));
    size_t alen;
    // From version 2 DATA carries no length: it is the last attribute and runs to the command's end.
    if (version_ >= 2 && type == static_cast<uint16_t>(Attr::data)) {
      p += 2;
      alen = static_cast<size_t>(e - p);
    } else {
      if (e - p < 4) return fail("receive.bad-attribute", "attribute header cut short" + at_byte(consumed_));
      alen = le16(p + 2);
      p += 4;
      if (alen > static_cast<size_t>(e - p))
        return fail("receive.bad-attribute", std::string(attr_name(static_cast<Attr>(type))) +
                                                 " runs past the end of its command" + at_byte(consumed_));
    }
    if (out.present_ & (1ull << type))
      return fail("receive.bad-attribute",
                  "duplicate " + std::string(attr_name(static_cast<Attr>(type))) + at_byte(consumed_));
    out.present_ |= 1ull << type;
    out.values_[type] = std::string_view(p, alen);
    p += alen;
  }
  pos_ += kCommandHeaderLen + len;
  consumed_ += kCommandHeaderLen + len;
  return true;
}

namespace {

std::string escape(std::string_view s) {
  std::string out;
  for (unsigned char ch : s) {
    if (ch == '\\' || ch == ' ' || ch < 0x20 || ch >= 0x7f) {
      char b[5];
      std::snprintf(b, sizeof(b), "\\%03o", ch);
      out += b;
    } else {
      out += static_cast<char>(ch);
    }
  }
  return out;
}

std::string fmt_time(const Timespec& t) {
  char b[40];
  std::snprintf(b, sizeof(b), "%llu.%09u", static_cast<unsigned long long>(t.sec), t.nsec);
  return b;
}

}  // namespace

std::string describe(const Command& c) {
  std::string line = cmd_name(c.cmd);
  if (line.size() < 16) line.resize(16, ' ');
  auto p = c.bytes(Attr::path);
  line += "./" + escape(p ? *p : "");
  auto add = [&](const char* k, const std::string& v) { line += std::string(" ") + k + "=" + v; };
  auto num = [&](const char* k, Attr a) {
    if (auto v = c.u64(a)) add(k, std::to_string(*v));
  };
  auto num32 = [&](const char* k, Attr a) {
    if (auto v = c.u32(a)) add(k, std::to_string(*v));
  };
  auto str = [&](const char* k, Attr a) {
    if (auto v = c.bytes(a)) add(k, escape(*v));
  };
  auto uid = [&](const char* k, Attr a) {
    if (auto v = c.uuid(a)) add(k, format_uuid(*v));
  };
  auto tm = [&](const char* k, Attr a) {
    if (auto v = c.timespec(a)) add(k, fmt_time(*v));
  };
  switch (c.cmd) {
    case Cmd::subvol: uid("uuid", Attr::uuid); num("transid", Attr::ctransid); break;
    case Cmd::snapshot:
      uid("uuid", Attr::uuid); num("transid", Attr::ctransid);
      uid("parent_uuid", Attr::clone_uuid); num("parent_transid", Attr::clone_ctransid);
      break;
    case Cmd::mkfile: case Cmd::mkdir: case Cmd::mkfifo: case Cmd::mksock: num("ino", Attr::ino); break;
    case Cmd::mknod: num("ino", Attr::ino); num("mode", Attr::mode); num("rdev", Attr::rdev); break;
    case Cmd::symlink: num("ino", Attr::ino); str("dest", Attr::path_link); break;
    case Cmd::rename: str("dest", Attr::path_to); break;
    case Cmd::link: str("dest", Attr::path_link); break;
    case Cmd::set_xattr:
      str("name", Attr::xattr_name);
      if (auto d = c.bytes(Attr::xattr_data)) add("len", std::to_string(d->size()));
      break;
    case Cmd::remove_xattr: str("name", Attr::xattr_name); break;
    case Cmd::write:
      num("offset", Attr::file_offset);
      if (auto d = c.bytes(Attr::data)) add("len", std::to_string(d->size()));
      break;
    case Cmd::clone:
      num("offset", Attr::file_offset); num("len", Attr::clone_len);
      uid("from", Attr::clone_uuid); num("from_transid", Attr::clone_ctransid);
      str("from_path", Attr::clone_path); num("clone_offset", Attr::clone_offset);
      break;
    case Cmd::truncate: num("size", Attr::size); break;
    case Cmd::chmod: {
      if (auto v = c.u64(Attr::mode)) {
        char b[24];
        std::snprintf(b, sizeof(b), "%llo", static_cast<unsigned long long>(*v));
        add("mode", b);
      }
      break;
    }
    case Cmd::chown: num("gid", Attr::gid); num("uid", Attr::uid); break;
    case Cmd::utimes: tm("atime", Attr::atime); tm("mtime", Attr::mtime); tm("ctime", Attr::ctime); break;
    case Cmd::update_extent: num("offset", Attr::file_offset); num("len", Attr::size); break;
    case Cmd::fallocate: num32("mode", Attr::fallocate_mode); num("offset", Attr::file_offset); num("len", Attr::size); break;
    case Cmd::fileattr: num("fileattr", Attr::fileattr); break;
    case Cmd::encoded_write:
      num("offset", Attr::file_offset); num("unencoded_file_len", Attr::unencoded_file_len);
      num("unencoded_len", Attr::unencoded_len); num("unencoded_offset", Attr::unencoded_offset);
      num32("compression", Attr::compression); num32("encryption", Attr::encryption);
      if (auto d = c.bytes(Attr::data)) add("len", std::to_string(d->size()));
      break;
    case Cmd::end: case Cmd::unlink: case Cmd::rmdir: case Cmd::unspec: break;
  }
  return line;
}

}  // namespace ballast::snapshot::stream
