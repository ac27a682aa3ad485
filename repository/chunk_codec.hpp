// The bytes of one chunk: sha256 naming, zstd compression, and bounded decompression.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace ballast::repository {

std::string sha256_hex(std::string_view data);

// One zstd frame with the content size recorded; `level` 1..22 (ZSTD_maxCLevel).
Result<std::string> compress_chunk(std::string_view data, int level);

// Decompresses one chunk whose hash has already matched. The result must be exactly `usize`
// bytes: a frame claiming more, producing more or fewer, or trailing data is "chunk.bad-data".
Result<std::string> decompress_chunk(std::string_view compressed, uint64_t usize);

}  // namespace ballast::repository
