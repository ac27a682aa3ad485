// The identity (uuid, ctransid) a send stream gives a subvolume, and the publisher's fix-up for
// subvolumes that were themselves received.
//
// The kernel names a subvolume in a stream (the sent one in SUBVOL/SNAPSHOT, the parent in
// SNAPSHOT, a clone source in CLONE) by its received_uuid when it has one, else by its uuid,
// but always together with its *local* ctransid. For a received subvolume that pair describes
// nothing a host has: a host's copy of the same version carries received_uuid = that uuid and
// stransid = the original's ctransid, which is the subvolume's stransid, not its ctransid.
// TransidRewriteSource replaces that ctransid by the stransid, so the stream names exactly the
// subvolume a host holds and a strict receiver can check it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/byte_source.hpp"
#include "common/result.hpp"
#include "snapshot/send_stream.hpp"

namespace ballast::snapshot {

// A subvolume as the kernel's send streams name it.
struct StreamIdentity {
  stream::Uuid uuid{};    // received_uuid if set, else uuid
  bool received = false;  // the subvolume has a received_uuid
  uint64_t ctransid = 0;  // its local ctransid: what the kernel writes beside the uuid
  uint64_t stransid = 0;  // received only: the ctransid of the subvolume it was received from
};

// Reads a subvolume's identity ("send.not-subvolume" when it is not one), committing its
// filesystem first so that the ctransid read is the one a send will write.
Result<StreamIdentity> stream_identity(const std::string& path);

// A (uuid, ctransid) pair equal to (uuid, from_ctransid) becomes (uuid, to_ctransid); the
// uuid with any third transid is an error.
struct TransidRewrite {
  stream::Uuid uuid{};
  uint64_t from_ctransid = 0;
  uint64_t to_ctransid = 0;
};

// The rewrite streams naming `s` need: none when `s` was not received (the kernel's pair is
// then the subvolume's own, which is what a host's received copy of it records).
std::optional<TransidRewrite> transid_rewrite(const StreamIdentity& s);

// Passes a send stream through, applying the rewrites to the pairs (uuid, ctransid) of SUBVOL
// and SNAPSHOT and (clone_uuid, clone_ctransid) of SNAPSHOT and CLONE, recomputing the crc32c
// of each changed command. Only those three commands are buffered (after their own crc is
// checked, so a corrupt command is never given a valid checksum); every other command's header
// is parsed and its payload copied through in pieces, so memory stays bounded whatever the
// stream's size, and a stream with nothing to rewrite comes out byte-identical. Errors:
// "send.bad-stream" (bad magic or version, truncation, malformed attributes), "send.bad-crc",
// "send.transid-changed" (a rewritten uuid named with neither from_ctransid nor to_ctransid).
class TransidRewriteSource final : public ByteSource {
 public:
  TransidRewriteSource(ByteSource& in, std::vector<TransidRewrite> rewrites);
  Result<size_t> read(void* buf, size_t len) override;
  uint64_t commands_rewritten() const { return rewritten_; }

 private:
  // Reads exactly n bytes into out (appending); fewer only at end of input.
  Result<size_t> read_exact(std::string& out, size_t n);
  // Prepares the next piece of output in pending_ (or a payload to copy through); false at a
  // clean end of the stream.
  Result<bool> advance();
  Status rewrite_command(std::string& cmd, stream::Cmd type);
  // Rewrites the ctransid at cmd[ctransid_at] when (cmd[uuid_at], it) matches a rewrite.
  Result<bool> rewrite_pair(std::string& cmd, size_t uuid_at, size_t ctransid_at) const;

  ByteSource& in_;
  std::vector<TransidRewrite> rewrites_;
  uint32_t version_ = 0;  // 0 until the stream header was read
  uint64_t offset_ = 0;   // of the next input byte, for error messages
  std::string pending_;   // output not handed out yet
  size_t pending_pos_ = 0;
  uint64_t passthrough_ = 0;  // payload bytes to copy straight from the input
  bool failed_ = false;
  Error error_;
  uint64_t rewritten_ = 0;
};

}  // namespace ballast::snapshot
