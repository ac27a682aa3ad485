#include "snapshot/stream_rewrite.hpp"

#include <btrfsutil.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/crc32c.hpp"

namespace ballast::snapshot {

namespace {

using stream::Attr;
using stream::Cmd;
using stream::le16;
using stream::le32;
using stream::le64;

void put_le32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void put_le64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// The send-stream checksum: crc32c over the command with its crc field taken as zero.
uint32_t command_crc(const std::string& cmd) {
  static const char zero[4] = {0, 0, 0, 0};
  uint32_t c = crc32c_update(0, cmd.data(), 6);
  c = crc32c_update(c, zero, 4);
  return crc32c_update(c, cmd.data() + stream::kCommandHeaderLen, cmd.size() - stream::kCommandHeaderLen);
}

bool is_zero(const uint8_t* u) {
  return std::all_of(u, u + 16, [](uint8_t b) { return b == 0; });
}

}  // namespace

Result<StreamIdentity> stream_identity(const std::string& path) {
  struct btrfs_util_subvolume_info info;
  auto e = btrfs_util_subvolume_info(path.c_str(), 0, &info);
  if (e != BTRFS_UTIL_OK)
    return fail_errno("send.not-subvolume", errno, path + " is not a Btrfs subvolume: " + btrfs_util_strerror(e));
  // A subvolume's ctransid still moves at the first commit after it was received (even when
  // read-only), and the kernel commits before it sends; commit now so we read what it will write.
  e = btrfs_util_sync(path.c_str());
  if (e == BTRFS_UTIL_OK) e = btrfs_util_subvolume_info(path.c_str(), 0, &info);
  if (e != BTRFS_UTIL_OK)
    return fail_errno("send.sync", errno, "cannot commit the filesystem of " + path + ": " + btrfs_util_strerror(e));
  StreamIdentity id;
  id.received = !is_zero(info.received_uuid);
  const uint8_t* named = id.received ? info.received_uuid : info.uuid;
  std::copy(named, named + 16, id.uuid.begin());
  id.ctransid = info.ctransid;
  id.stransid = id.received ? info.stransid : 0;
  return id;
}

std::optional<TransidRewrite> transid_rewrite(const StreamIdentity& s) {
  if (!s.received) return std::nullopt;
  return TransidRewrite{s.uuid, s.ctransid, s.stransid};
}

TransidRewriteSource::TransidRewriteSource(ByteSource& in, std::vector<TransidRewrite> rewrites)
    : in_(in), rewrites_(std::move(rewrites)) {}

Result<size_t> TransidRewriteSource::read_exact(std::string& out, size_t n) {
  size_t start = out.size();
  out.resize(start + n);
  size_t got = 0;
  while (got < n) {
    auto r = in_.read(out.data() + start + got, n - got);
    if (!r) {
      out.resize(start + got);
      return tl::unexpected(r.error());
    }
    if (*r == 0) break;
    got += *r;
  }
  out.resize(start + got);
  offset_ += got;
  return got;
}

Result<bool> TransidRewriteSource::advance() {
  pending_.clear();
  pending_pos_ = 0;
  if (version_ == 0) {
    auto got = BALLAST_TRY(read_exact(pending_, stream::kStreamHeaderLen));
    if (got == 0) return fail("send.bad-stream", "the send stream is empty");
    if (got < stream::kStreamHeaderLen) return fail("send.bad-stream", "the send stream ends inside its header");
    if (std::memcmp(pending_.data(), stream::kMagic, stream::kMagicLen) != 0)
      return fail("send.bad-stream", "not a Btrfs send stream (bad magic)");
    uint32_t v = le32(pending_.data() + stream::kMagicLen);
    if (v == 0 || v > stream::kMaxVersion)
      return fail("send.bad-stream", "send stream version " + std::to_string(v) + " is not supported");
    version_ = v;
    return true;
  }
  auto got = BALLAST_TRY(read_exact(pending_, stream::kCommandHeaderLen));
  if (got == 0) return false;
  if (got < stream::kCommandHeaderLen)
    return fail("send.bad-stream", "the send stream ends inside a command header" + stream::at_byte(offset_));
  uint32_t len = le32(pending_.data());
  auto cmd = static_cast<Cmd>(le16(pending_.data() + 4));
  if (cmd != Cmd::subvol && cmd != Cmd::snapshot && cmd != Cmd::clone) {
    passthrough_ = len;
    return true;
  }
  if (len > stream::kDefaultMaxCommand)
    return fail("send.bad-stream", std::string(stream::cmd_name(cmd)) + " command of " + std::to_string(len) +
                                       " bytes exceeds the limit" + stream::at_byte(offset_));
  got = BALLAST_TRY(read_exact(pending_, len));
  if (got < len) return fail("send.bad-stream", "the send stream ends inside a command" + stream::at_byte(offset_));
  BALLAST_CHECK(
      with_context(rewrite_command(pending_, cmd), [&] {
        return std::string(stream::cmd_name(cmd)) + " command" + stream::at_byte(offset_);
      }));
  return true;
}

Result<bool> TransidRewriteSource::rewrite_pair(std::string& cmd, size_t uuid_at, size_t ctransid_at) const {
  uint64_t ctransid = le64(cmd.data() + ctransid_at);
  for (const auto& r : rewrites_) {
    if (std::memcmp(cmd.data() + uuid_at, r.uuid.data(), 16) != 0 || ctransid == r.to_ctransid) continue;
    // Any other transid means the subvolume changed after its identity was read; passing it
    // through would publish a stream that no host's copy matches.
    if (ctransid != r.from_ctransid)
      return fail("send.transid-changed", "subvolume " + stream::format_uuid(r.uuid) + " is named with transid " +
                                              std::to_string(ctransid) + ", not " + std::to_string(r.from_ctransid) +
                                              ": it changed while it was sent");
    put_le64(cmd.data() + ctransid_at, r.to_ctransid);
    return true;
  }
  return false;
}

Status TransidRewriteSource::rewrite_command(std::string& cmd, Cmd type) {
  if (command_crc(cmd) != le32(cmd.data() + 6)) return fail("send.bad-crc", "command checksum mismatch");
  const uint16_t max_attr = version_ >= 2 ? stream::kMaxAttrV2 : stream::kMaxAttrV1;
  // Where the values of the attributes that name subvolumes start in cmd; 0: absent.
  size_t at[4] = {0, 0, 0, 0};  // uuid, ctransid, clone_uuid, clone_ctransid
  auto slot_of = [](uint16_t t) -> int {
    switch (static_cast<Attr>(t)) {
      case Attr::uuid: return 0;
      case Attr::ctransid: return 1;
      case Attr::clone_uuid: return 2;
      case Attr::clone_ctransid: return 3;
      default: return -1;
    }
  };
  size_t p = stream::kCommandHeaderLen;
  while (p < cmd.size()) {
    if (cmd.size() - p < 2) return fail("send.bad-stream", "attribute header cut short");
    uint16_t t = le16(cmd.data() + p);
    if (t == 0 || t > max_attr) return fail("send.bad-stream", "unknown attribute " + std::to_string(t));
    const std::string name = stream::attr_name(static_cast<Attr>(t));
    size_t alen;
    // From version 2 DATA carries no length: it runs to the command's end.
    if (version_ >= 2 && t == static_cast<uint16_t>(Attr::data)) {
      p += 2;
      alen = cmd.size() - p;
    } else {
      if (cmd.size() - p < 4) return fail("send.bad-stream", "attribute header cut short");
      alen = le16(cmd.data() + p + 2);
      p += 4;
      if (alen > cmd.size() - p) return fail("send.bad-stream", name + " runs past the end of its command");
    }
    if (int slot = slot_of(t); slot >= 0) {
      if (at[slot] != 0) return fail("send.bad-stream", "duplicate " + name);
      if (alen != (slot % 2 == 0 ? 16u : 8u)) return fail("send.bad-stream", name + " has the wrong size");
      at[slot] = p;
    }
    p += alen;
  }
  const bool names_itself = type != Cmd::clone, names_source = type != Cmd::subvol;
  if ((names_itself && (at[0] == 0 || at[1] == 0)) || (names_source && (at[2] == 0 || at[3] == 0)))
    return fail("send.bad-stream", "the command lacks the uuid or transid of a subvolume it names");
  bool changed = false;
  if (names_itself) changed |= BALLAST_TRY(rewrite_pair(cmd, at[0], at[1]));
  if (names_source) changed |= BALLAST_TRY(rewrite_pair(cmd, at[2], at[3]));
  if (changed) {
    put_le32(cmd.data() + 6, command_crc(cmd));
    ++rewritten_;
  }
  return ok();
}

Result<size_t> TransidRewriteSource::read(void* buf, size_t len) {
  if (failed_) return tl::unexpected(error_);
  if (len == 0) return size_t{0};
  for (;;) {
    if (pending_pos_ < pending_.size()) {
      size_t n = std::min(len, pending_.size() - pending_pos_);
      std::memcpy(buf, pending_.data() + pending_pos_, n);
      pending_pos_ += n;
      return n;
    }
    if (passthrough_ > 0) {
      auto r = in_.read(buf, static_cast<size_t>(std::min<uint64_t>(len, passthrough_)));
      if (r && *r == 0) r = fail("send.bad-stream", "the send stream ends inside a command" + stream::at_byte(offset_));
      if (!r) {
        failed_ = true;
        error_ = r.error();
        return r;
      }
      passthrough_ -= *r;
      offset_ += *r;
      return r;
    }
    auto more = advance();
    if (!more) {
      failed_ = true;
      error_ = more.error();
      return tl::unexpected(error_);
    }
    if (!*more) return size_t{0};
  }
}

}  // namespace ballast::snapshot
