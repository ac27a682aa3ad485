// The sender: a Btrfs send stream of a read-only subvolume through BTRFS_IOC_SEND, full or
// incremental (parent), with clone sources, protocol 1 or 2, optionally with compressed extents.
#pragma once

#include <string>
#include <vector>

#include "common/result.hpp"

namespace ballast::snapshot {

struct SendOptions {
  std::string subvolume;                   // read-only subvolume to send
  std::string parent;                      // empty: a full stream
  std::vector<std::string> clone_sources;  // read-only subvolumes whose extents may be shared
  int protocol = 0;                        // 0 = kernel default, else 1 or 2
  bool compressed_data = false;            // ENCODED_WRITE of compressed extents (protocol 2)
};

// Writes the stream to out_fd (a file or a pipe), which the caller keeps owning.
Status send(const SendOptions& opts, int out_fd);

}  // namespace ballast::snapshot
