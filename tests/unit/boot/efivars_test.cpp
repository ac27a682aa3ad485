#include <catch2/catch.hpp>

#include "boot/efivars.hpp"
#include "common/file.hpp"

using namespace ballast;
using namespace ballast::boot;

TEST_CASE("an EFI string variable is a 0x7 attribute word and NUL-terminated UTF-16LE", "[boot][efivars]") {
  auto dir = make_temp_dir("efivars");
  REQUIRE(dir);
  auto efi = make_efivarfs(*dir);
  REQUIRE(efi->write_string("LoaderEntryOneShot", "ballast-2+3-0.conf"));
  auto raw = read_file(path_join(*dir, "LoaderEntryOneShot-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"));
  REQUIRE(raw);
  REQUIRE(raw->size() == 4 + 2 * 18 + 2);
  CHECK(raw->substr(0, 4) == std::string("\x07\0\0\0", 4));
  CHECK(raw->substr(4, 4) == std::string("b\0a\0", 4));
  CHECK(raw->substr(raw->size() - 2) == std::string("\0\0", 2));
  auto back = efi->read_string("LoaderEntryOneShot");
  REQUIRE(back);
  CHECK(back->value() == "ballast-2+3-0.conf");
  REQUIRE(efi->remove("LoaderEntryOneShot"));
  CHECK(!efi->read_string("LoaderEntryOneShot")->has_value());
  CHECK(efi->remove("LoaderEntryOneShot"));  // deleting a missing variable is fine
  (void)remove_tree(*dir);
}

TEST_CASE("EFI variable lists, 64-bit words and non-ASCII strings decode", "[boot][efivars]") {
  auto dir = make_temp_dir("efivars");
  REQUIRE(dir);
  std::string list = std::string("\x07\0\0\0", 4) + encode_utf16le("a.conf") + std::string(2, '\0') +
                     encode_utf16le("auto-reboot") + std::string(2, '\0');
  REQUIRE(write_file_atomic(path_join(*dir, efivar_file_name("LoaderEntries")), list));
  std::string features = std::string("\x06\0\0\0", 4) + std::string("\x3f\x01\0\0\0\0\0\x80", 8);
  REQUIRE(write_file_atomic(path_join(*dir, efivar_file_name("LoaderFeatures")), features));
  auto efi = make_efivarfs(*dir);
  auto entries = efi->read_string_list("LoaderEntries");
  REQUIRE(entries);
  CHECK(*entries == std::vector<std::string>{"a.conf", "auto-reboot"});
  auto f = efi->read_u64("LoaderFeatures");
  REQUIRE(f);
  CHECK(f->value() == 0x800000000000013fULL);
  REQUIRE(efi->write_string("LoaderEntryDefault", "Grüße 😀"));
  CHECK(efi->read_string("LoaderEntryDefault")->value() == "Grüße 😀");
  (void)remove_tree(*dir);
}

TEST_CASE("truncated or odd-length EFI variables are errors, missing ones are empty", "[boot][efivars]") {
  auto dir = make_temp_dir("efivars");
  REQUIRE(dir);
  REQUIRE(write_file_atomic(path_join(*dir, efivar_file_name("LoaderEntrySelected")), std::string("\x07\0", 2)));
  REQUIRE(write_file_atomic(path_join(*dir, efivar_file_name("LoaderBootCountPath")), std::string("\x07\0\0\0a", 5)));
  auto efi = make_efivarfs(*dir);
  CHECK(efi->read_string("LoaderEntrySelected").error().code == "boot.efivar");
  CHECK(efi->read_string("LoaderBootCountPath").error().code == "boot.efivar");
  CHECK(!efi->read_string("LoaderEntryDefault")->has_value());
  CHECK(!make_efivarfs(path_join(*dir, "missing"))->read_string("LoaderEntryDefault")->has_value());
  (void)remove_tree(*dir);
}

TEST_CASE("Secure Boot is enabled when the global SecureBoot variable holds 1, and off when it is 0 or absent",
          "[boot][efivars]") {
  auto dir = make_temp_dir("efivars");
  REQUIRE(dir);
  auto efi = make_efivarfs(*dir);
  CHECK_FALSE(*secure_boot_enabled(*efi));  // no variable: no UEFI Secure Boot
  const std::string path = path_join(*dir, std::string("SecureBoot-") + kGlobalVariableGuid);
  REQUIRE(write_file_atomic(path, std::string("\x06\0\0\0\x01", 5)));
  CHECK(*secure_boot_enabled(*efi));
  REQUIRE(write_file_atomic(path, std::string("\x06\0\0\0\x00", 5)));
  CHECK_FALSE(*secure_boot_enabled(*efi));
  // The loader's vendor GUID is another variable: it does not count.
  REQUIRE(remove_if_exists(path));
  REQUIRE(write_file_atomic(path_join(*dir, efivar_file_name("SecureBoot")), std::string("\x06\0\0\0\x01", 5)));
  CHECK_FALSE(*secure_boot_enabled(*efi));
  REQUIRE(write_file_atomic(path, std::string("\x06\0\0\0\x01\x01", 6)));
  CHECK(secure_boot_enabled(*efi).error().code == "boot.efivar");
  (void)remove_tree(*dir);
}
