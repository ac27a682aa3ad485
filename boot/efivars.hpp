// EFI variables of the Boot Loader Interface (vendor GUID 4a67b082-0a4c-41cf-b6c7-440b29bb8c4f),
// through efivarfs: each variable is a file "<Name>-<guid>" holding a 4-byte attribute word and
// the value. Strings are UTF-16LE, NUL-terminated. A plain directory works the same in tests.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace ballast::boot {

inline constexpr const char* kLoaderVendorGuid = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";
// EFI_GLOBAL_VARIABLE: the firmware's own variables (SecureBoot, SetupMode, BootOrder...).
inline constexpr const char* kGlobalVariableGuid = "8be4df61-93ca-11d2-aa0d-00e098032b8c";

class EfiVariables {
 public:
  virtual ~EfiVariables() = default;
  // nullopt when the variable does not exist.
  virtual Result<std::optional<std::string>> read_string(const std::string& name) = 0;
  virtual Status write_string(const std::string& name, const std::string& value) = 0;
  virtual Status remove(const std::string& name) = 0;
  // LoaderEntries: a sequence of NUL-terminated UTF-16 strings.
  virtual Result<std::vector<std::string>> read_string_list(const std::string& name) = 0;
  // LoaderFeatures: a little-endian 64-bit word.
  virtual Result<std::optional<uint64_t>> read_u64(const std::string& name) = 0;
  // The raw value (no attribute word) of a variable of any vendor GUID; nullopt when it does not exist.
  virtual Result<std::optional<std::string>> read_bytes(const std::string& name, const std::string& guid) = 0;
};

// The firmware enforces Secure Boot: the global SecureBoot variable is one byte, 1. A missing
// variable (no UEFI, or firmware without Secure Boot) is false; a malformed one is "boot.efivar".
Result<bool> secure_boot_enabled(EfiVariables& efi);

// efivarfs (or any directory) at `path`. On efivarfs a variable is written with one write() and
// its immutable flag cleared first; on a plain directory it is replaced atomically.
std::unique_ptr<EfiVariables> make_efivarfs(const std::string& path);

// Encoding shared with tests and the boot simulator.
std::string encode_utf16le(const std::string& utf8);               // no terminator
Result<std::string> decode_utf16le(std::string_view bytes);          // stops at the first NUL
std::string efivar_file_name(const std::string& name, const std::string& guid = kLoaderVendorGuid);  // "<name>-<guid>"

}  // namespace ballast::boot
