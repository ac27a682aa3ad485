// Fixed VHD (Virtual Hard Disk format specification, Microsoft, 2006): the raw disk followed by a
// 512-byte footer. This is the only disk format Azure takes for uploaded images; Azure also wants
// the raw part to be a whole number of MiB.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "common/result.hpp"

namespace ballast::images {

inline constexpr uint64_t kVhdFooterSize = 512;
inline constexpr uint64_t kVhdAlignment = 1ull << 20;  // Azure: the virtual size is a whole MiB

using VhdFooter = std::array<uint8_t, kVhdFooterSize>;
using VhdUniqueId = std::array<uint8_t, 16>;

struct ChsGeometry {
  uint16_t cylinders = 0;
  uint8_t heads = 0;
  uint8_t sectors_per_track = 0;
  bool operator==(const ChsGeometry&) const = default;
};

// The specification's CHS algorithm (appendix "CHS Calculation") for a disk of `total_sectors`.
ChsGeometry vhd_geometry(uint64_t total_sectors);

// One's complement of the byte sum of the footer, the checksum field itself left out.
uint32_t vhd_checksum(const VhdFooter& footer);

// The footer of a fixed disk of `disk_size` bytes (a multiple of 512). `timestamp` counts
// seconds since 2000-01-01 00:00:00 UTC, as the format does.
VhdFooter vhd_footer(uint64_t disk_size, const VhdUniqueId& unique_id, uint32_t timestamp);
// The same with a fresh random unique id and the current time.
VhdFooter new_vhd_footer(uint64_t disk_size);

// The disk size a footer describes, if `footer` is a valid fixed-disk footer (cookie, type, checksum).
std::optional<uint64_t> fixed_vhd_size(const VhdFooter& footer);

// `size` rounded up to a whole MiB.
uint64_t vhd_disk_size(uint64_t size);

// The disk size of the fixed VHD `path`, or nothing when the file does not end in a valid footer
// that describes the bytes before it.
Result<std::optional<uint64_t>> read_fixed_vhd(const std::string& path);

// Makes the raw image file `path` a fixed VHD in place: grows it (sparsely) to a whole MiB and
// appends the footer. On failure the file is cut back to its old size.
Status append_vhd_footer(const std::string& path);

// Writes a fixed VHD of the raw image `raw` to `output` (which must not exist); holes stay holes.
// Written under a temporary name and renamed, so `output` is either complete or absent.
Status convert_to_vhd(const std::string& raw, const std::string& output);

}  // namespace ballast::images
