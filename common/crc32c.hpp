// CRC-32C (Castagnoli). Debian 12 has no libcrc32c-dev, so it lives here.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ballast {

// The bare register update: no initial or final inversion. Btrfs send streams use
// crc32c_update(0, …) over the command with its crc field zeroed.
uint32_t crc32c_update(uint32_t crc, const void* data, size_t len);

// The standard CRC-32C (RFC 3720): inverted in and out. crc32c("123456789") == 0xE3069283.
inline uint32_t crc32c(const void* data, size_t len) { return ~crc32c_update(~0u, data, len); }

}  // namespace ballast
