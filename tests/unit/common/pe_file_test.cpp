#include <catch2/catch.hpp>
#include <string>

#include "common/file.hpp"
#include "common/pe_file.hpp"
#include "tests/temp_dir.hpp"
#include "tests/unit/support/pe_image.hpp"

using namespace ballast;
using ballast::testing::TempDir;

using ballast::pe_testing::pe_image;

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

TEST_CASE("an image with a PKCS#7 WIN_CERTIFICATE in its certificate table is signed, one without is not") {
  std::string bytes = pe_image({{".text", "code"}});
  CHECK_FALSE(*pe::has_authenticode_signature(bytes));  // no data directories at all

  // What sbsign does: the certificate table (data directory 4 of PE32+, at optional header + 112
  // + 4 * 8) points at a WIN_CERTIFICATE appended to the file.
  const size_t optional = 0x44 + 20, directories = optional + 112;
  pe_testing::put_le(bytes, directories - 4, 16, 4);  // NumberOfRvaAndSizes
  CHECK_FALSE(*pe::has_authenticode_signature(bytes));  // the table is empty
  const size_t cert_at = bytes.size();
  std::string cert(8, '\0');
  pe_testing::put_le(cert, 0, 16, 4);       // dwLength
  pe_testing::put_le(cert, 4, 0x0200, 2);   // WIN_CERT_REVISION_2_0
  pe_testing::put_le(cert, 6, 0x0002, 2);   // WIN_CERT_TYPE_PKCS_SIGNED_DATA
  bytes += cert + "pkcs7...";
  pe_testing::put_le(bytes, directories + 32, static_cast<uint32_t>(cert_at), 4);
  pe_testing::put_le(bytes, directories + 36, 16, 4);
  CHECK(*pe::has_authenticode_signature(bytes));
  TempDir dir;
  const std::string file = path_join(dir.path, "signed.efi");
  REQUIRE(write_file_atomic(file, bytes));
  CHECK(*pe::has_authenticode_signature_of_file(file));  // the same answer from the headers and 8 bytes

  pe_testing::put_le(bytes, cert_at + 6, 0x0001, 2);  // an X.509 certificate is no Authenticode signature
  CHECK_FALSE(*pe::has_authenticode_signature(bytes));
  pe_testing::put_le(bytes, directories + 36, 0x10000, 4);  // a table past the end of the file
  CHECK(pe::has_authenticode_signature(bytes).error().code == "pe.malformed");
  REQUIRE(write_file_atomic(file, bytes));
  CHECK(pe::has_authenticode_signature_of_file(file).error().code == "pe.malformed");
}
