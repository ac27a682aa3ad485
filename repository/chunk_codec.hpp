// The bytes of one chunk: sha256 naming, zstd compression, and bounded decompression.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace ballast::repository {

std::string sha256_hex(std::string_view data);

// "chunk.level" unless 1 <= level <= 22 (ZSTD_maxCLevel).
Status validate_zstd_level(int level);

// One zstd frame with the content size recorded; `level` 1..22 (ZSTD_maxCLevel). A non-empty
// `history` (the stream bytes just before this chunk) is referenced as a raw-content prefix, so
// matches reach back across the chunk boundary as they would in one whole-stream frame; the
// same history must then be given to decompress_chunk.
Result<std::string> compress_chunk(std::string_view data, int level, std::string_view history = {});

// Decompresses one chunk whose hash has already matched into `out`, which has room for exactly
// `usize` bytes. The result must be exactly `usize` bytes: a frame claiming more, producing more
// or fewer, or trailing data is "chunk.bad-data".
Status decompress_chunk_into(std::string_view compressed, uint64_t usize, std::string_view history, char* out);
// The same, into a new string.
Result<std::string> decompress_chunk(std::string_view compressed, uint64_t usize, std::string_view history = {});

// zstd's window when chunks are compressed against their history (2^23 = 8 MiB, as zstd -19).
inline constexpr int kHistoryWindowLog = 23;

}  // namespace ballast::repository
