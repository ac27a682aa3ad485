// The TPM's platform configuration registers, read-only: what measured boot left in them. The
// kernel exposes each PCR of the sha256 bank as a hex file, /sys/class/tpm/tpm0/pcr-sha256/<n>
// (Linux 5.12+); a directory laid out the same way works in tests. FakeTpm holds values in memory.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/result.hpp"

namespace ballast::boot {

inline constexpr const char* kDefaultTpmPath = "/sys/class/tpm/tpm0";

class Tpm {
 public:
  virtual ~Tpm() = default;
  // Whether the machine has a TPM whose sha256 bank can be read.
  virtual bool present() = 0;
  // PCR `index` of the sha256 bank in lowercase hex; "tpm.unavailable" when there is no TPM.
  virtual Result<std::string> pcr_sha256(int index) = 0;
};

// The TPM device directory of sysfs (kDefaultTpmPath); no such directory means no TPM.
std::unique_ptr<Tpm> make_sysfs_tpm(const std::string& device_dir);

class FakeTpm final : public Tpm {
 public:
  bool present() override { return has_tpm; }
  Result<std::string> pcr_sha256(int index) override;
  bool has_tpm = true;
  std::map<int, std::string> pcrs;  // a missing PCR reads as 64 zeros, as after a reset
};

}  // namespace ballast::boot
