// Content-defined chunking of a send stream (FastCDC: a gear rolling hash with normalised
// chunking between a minimum, an average and a maximum size). Boundaries depend on the bytes
// around them, not on their offset, so an insertion or deletion early in a stream shifts only
// the chunks it touches: the full streams of consecutive releases, and a delta beside the full
// stream it leads to, cut file data that did not change into the same chunks, which the
// repository then stores once. Fixed-size chunks would misalign after the first size change.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "common/byte_source.hpp"
#include "common/result.hpp"

namespace ballast::repository {

struct ChunkerParams {
  size_t min_size = 512u << 10;
  size_t avg_size = 2u << 20;  // rounded down to a power of two
  size_t max_size = 8u << 20;
};

// Checks min <= avg <= max, avg >= 64 KiB, max <= kMaxChunkBytes.
Status validate(const ChunkerParams& p);

class Chunker {
 public:
  explicit Chunker(const ChunkerParams& p);
  // Length of the first chunk of data[0, len). When `at_end` is false and no boundary lies
  // below max_size within len, returns 0: feed more bytes first.
  size_t cut(const uint8_t* data, size_t len, bool at_end) const;

 private:
  ChunkerParams p_;
  uint64_t mask_small_, mask_large_;
};

// Reads `in` to its end and calls `on_chunk` with each chunk in order (never an empty one).
Status chunk_stream(ByteSource& in, const ChunkerParams& p, const std::function<Status(std::string&&)>& on_chunk);

}  // namespace ballast::repository
