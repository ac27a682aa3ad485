#include <catch2/catch.hpp>
#include <string>

#include "common/file.hpp"
#include "common/pe_file.hpp"

using namespace ballast;

namespace {

void put(std::string& b, size_t at, uint32_t v, size_t width) {
  for (size_t i = 0; i < width; ++i) b[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// A PE32+ image with the given sections, their contents laid out one after the other at 0x400.
std::string pe_image(const std::vector<std::pair<std::string, std::string>>& sections, uint32_t alignment = 0x1000) {
  std::string b(0x400, '\0');
  b[0] = 'M', b[1] = 'Z';
  put(b, 0x3c, 0x40, 4);
  b.replace(0x40, 4, std::string("PE\0\0", 4));
  const size_t coff = 0x44, optional_size = 0xf0, table = coff + 20 + optional_size;
  put(b, coff + 2, static_cast<uint32_t>(sections.size()), 2);
  put(b, coff + 16, optional_size, 2);
  put(b, coff + 20, 0x20b, 2);                // PE32+ magic
  put(b, coff + 20 + 32, alignment, 4);       // SectionAlignment
  uint32_t address = 0x1000;
  for (size_t i = 0; i < sections.size(); ++i) {
    const auto& [name, data] = sections[i];
    const size_t at = table + i * 40;
    b.replace(at, name.size(), name);
    const uint32_t raw_size = static_cast<uint32_t>((data.size() + 0x1ff) / 0x200 * 0x200);
    put(b, at + 8, static_cast<uint32_t>(data.size()), 4);
    put(b, at + 12, address, 4);
    put(b, at + 16, raw_size, 4);
    put(b, at + 20, static_cast<uint32_t>(b.size()), 4);
    b += data + std::string(raw_size - data.size(), '\0');
    address += 0x1000;
  }
  return b;
}

}  // namespace

TEST_CASE("a PE image's sections are read in table order with their unpadded contents") {
  const std::string bytes = pe_image({{".text", "code"}, {".cmdline", "ro quiet"}});
  auto img = pe::read_image(bytes);
  REQUIRE(img);
  REQUIRE(img->sections.size() == 2);
  CHECK(img->sections[0].name == ".text");
  CHECK(img->sections[1].name == ".cmdline");
  CHECK(pe::contents(bytes, *img->find(".cmdline")) == "ro quiet");
  CHECK(img->find(".linux") == nullptr);
  CHECK(*pe::section_contents(bytes, ".text") == std::optional<std::string>("code"));
  CHECK(!pe::section_contents(bytes, ".osrel")->has_value());
}

TEST_CASE("the end of a PE image's sections is rounded up to its section alignment") {
  auto img = pe::read_image(pe_image({{".a", "x"}, {".b", std::string(0x300, 'y')}}, 0x1000));
  REQUIRE(img);
  // .b starts at 0x2000 and its raw size is 0x400: the next free aligned address is 0x3000.
  CHECK(img->end_of_sections() == 0x3000);
}

TEST_CASE("bytes that are not a PE image, or whose sections lie past the file's end, are refused") {
  CHECK(pe::read_image("not an image at all, certainly not").error().code == "pe.malformed");
  std::string bytes = pe_image({{".linux", std::string(0x200, 'k')}});
  bytes.resize(bytes.size() - 0x100);
  CHECK(pe::read_image(bytes).error().code == "pe.malformed");
}

TEST_CASE("setting a PE image's time stamp keeps its checksum valid, as the tools that wrote it compute it") {
  // objcopy wrote this stub's checksum: rewriting its own time stamp must reproduce the bytes exactly.
  auto stub = read_file("/usr/lib/systemd/boot/efi/linuxx64.efi.stub");
  REQUIRE(stub);
  std::string copy = *stub;
  const uint32_t stamp = static_cast<uint32_t>(static_cast<unsigned char>(copy[0x88])) |
                         static_cast<uint32_t>(static_cast<unsigned char>(copy[0x89])) << 8 |
                         static_cast<uint32_t>(static_cast<unsigned char>(copy[0x8a])) << 16 |
                         static_cast<uint32_t>(static_cast<unsigned char>(copy[0x8b])) << 24;
  REQUIRE(pe::set_timestamp(copy, stamp));
  CHECK(copy == *stub);
  REQUIRE(pe::set_timestamp(copy, 1700000000));
  CHECK(copy != *stub);
  std::string again = *stub;
  REQUIRE(pe::set_timestamp(again, 1700000000));
  CHECK(again == copy);
}
