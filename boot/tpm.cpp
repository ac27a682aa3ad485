#include "boot/tpm.hpp"

#include <cctype>

#include "common/file.hpp"

namespace ballast::boot {
namespace {

class SysfsTpm final : public Tpm {
 public:
  explicit SysfsTpm(std::string dir) : dir_(std::move(dir)) {}

  bool present() override { return path_exists(bank_dir()); }

  Result<std::string> pcr_sha256(int index) override {
    if (!present()) return fail("tpm.unavailable", "no TPM sha256 bank at " + bank_dir());
    std::string path = path_join(bank_dir(), std::to_string(index));
    auto text = BALLAST_TRY(with_context(read_file(path, 4096), "reading PCR " + std::to_string(index)));
    std::string hex;
    for (char c : text) {
      if (std::isspace(static_cast<unsigned char>(c))) continue;
      if (!std::isxdigit(static_cast<unsigned char>(c))) return fail("tpm.malformed", path + " is not hexadecimal");
      hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (hex.size() != 64) return fail("tpm.malformed", path + " does not hold a sha256 value");
    return hex;
  }

 private:
  std::string bank_dir() const { return path_join(dir_, "pcr-sha256"); }
  std::string dir_;
};

}  // namespace

std::unique_ptr<Tpm> make_sysfs_tpm(const std::string& device_dir) { return std::make_unique<SysfsTpm>(device_dir); }

Result<std::string> FakeTpm::pcr_sha256(int index) {
  if (!has_tpm) return fail("tpm.unavailable", "no TPM");
  auto it = pcrs.find(index);
  return it == pcrs.end() ? std::string(64, '0') : it->second;
}

}  // namespace ballast::boot
