// The native send-stream receiver: applies a Btrfs send stream (v1/v2) into a new subvolume,
// confined to it, streaming from any ByteSource, and leaving nothing behind when it fails.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "common/byte_source.hpp"
#include "common/result.hpp"
#include "snapshot/send_stream.hpp"

namespace ballast::snapshot {

struct ReceiveOptions {
  std::string dest_dir;                    // the subvolume named in the stream is created here
  std::string partial_dir;                 // built here before the final rename; empty = dest_dir
                                           // (under a hidden temporary name)
  std::string name;                        // the new subvolume's name; empty = as named in the stream
  std::vector<std::string> clone_sources;  // extra subvolumes CLONE may read from (besides the new
                                           // one and its parent)
  std::function<void(uint64_t bytes_consumed)> progress;  // optional
  std::function<bool()> cancelled;  // optional; checked between commands, true stops the receive
                                    // ("receive.cancelled") and removes the partial subvolume
  uint32_t max_command = stream::kDefaultMaxCommand;      // larger commands are rejected
  bool decompress_encoded = false;  // write ENCODED_WRITE data decompressed instead of as-is
                                    // (what happens anyway when the kernel refuses the encoding)
  bool exact_atime = false;  // also apply an incremental stream's utimes on an inode whose mtime
                             // it leaves as it is (only its access time would change), as
                             // btrfs receive does; by default such an inode keeps the parent's atime
};

struct ReceivedSubvolume {
  std::string path;           // dest_dir/name
  std::string name;           // as named in the stream
  std::string received_uuid;  // the stream's uuid, as set on the new subvolume
  uint64_t ctransid = 0;      // the stream's ctransid (stored as the subvolume's stransid)
  std::string parent_path;    // the local parent of an incremental stream; empty for a full one
  uint32_t version = 0;       // send-stream protocol version
  uint64_t bytes = 0;         // stream bytes consumed
  uint64_t commands = 0;
  uint64_t atime_only_skipped = 0;  // utimes left unapplied: they changed only an access time
  uint64_t atime_only_by_ctime = 0;  // of those, known by their ctime alone (no lookup): older
                                     // than the parent's newest, recorded as its stime
};

Result<ReceivedSubvolume> receive(ByteSource& in, const ReceiveOptions& opts);

// The hidden name a subvolume is received under until it is complete.
inline constexpr const char* kReceivePrefix = ".ballast-receive-";

// Deletes the hidden subvolumes a killed receive left in `dir` (kReceivePrefix), nothing else;
// returns their names. Only for a caller that knows no receive into `dir` is running.
Result<std::vector<std::string>> remove_receive_debris(const std::string& dir);

// Prints every command, one per line, without applying anything (`ballast receive --dump`).
// Concatenated streams are dumped one after the other.
Status dump(ByteSource& in, std::ostream& out);

}  // namespace ballast::snapshot
