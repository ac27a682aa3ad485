// Builds small PE32+ images in memory for tests: a UKI needs no more than a section table and
// its .cmdline for the boot code that reads it.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ballast::pe_testing {

inline void put_le(std::string& b, size_t at, uint32_t v, size_t width) {
  for (size_t i = 0; i < width; ++i) b[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// The sections' contents are laid out one after the other from 0x400, each padded to 0x200.
inline std::string pe_image(const std::vector<std::pair<std::string, std::string>>& sections, uint32_t alignment = 0x1000) {
  std::string b(0x400, '\0');
  b[0] = 'M', b[1] = 'Z';
  put_le(b, 0x3c, 0x40, 4);
  b.replace(0x40, 4, std::string("PE\0\0", 4));
  const size_t coff = 0x44, optional_size = 0xf0, table = coff + 20 + optional_size;
  put_le(b, coff + 2, static_cast<uint32_t>(sections.size()), 2);
  put_le(b, coff + 16, optional_size, 2);
  put_le(b, coff + 20, 0x20b, 2);           // PE32+ magic
  put_le(b, coff + 20 + 32, alignment, 4);  // SectionAlignment
  uint32_t address = 0x1000;
  for (size_t i = 0; i < sections.size(); ++i) {
    const auto& [name, data] = sections[i];
    const size_t at = table + i * 40;
    b.replace(at, name.size(), name);
    const uint32_t raw_size = static_cast<uint32_t>((data.size() + 0x1ff) / 0x200 * 0x200);
    put_le(b, at + 8, static_cast<uint32_t>(data.size()), 4);
    put_le(b, at + 12, address, 4);
    put_le(b, at + 16, raw_size, 4);
    put_le(b, at + 20, static_cast<uint32_t>(b.size()), 4);
    b += data + std::string(raw_size - data.size(), '\0');
    address += 0x1000;
  }
  return b;
}

// A stand-in UKI: .osrel, .cmdline and .linux as the image builder lays them out.
inline std::string uki_image(const std::string& version, const std::string& cmdline) {
  return pe_image({{".text", "stub"},
                   {".osrel", "ID=ballast\nIMAGE_VERSION=" + version + "\n"},
                   {".cmdline", cmdline},
                   {".linux", "kernel " + version}});
}

}  // namespace ballast::pe_testing
