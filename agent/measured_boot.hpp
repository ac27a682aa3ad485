// Measured boot as the agent sees it. The PCR 11 values a release's UKI produces are predicted at
// publish time and signed in its manifest (repository::MeasuredBoot); staging hands them to the
// state directory (<state>/measured-boot/<version>.json), and after the trial boot into that
// release a required health check, "measured-boot", compares PCR 11 with them.
//
// Which phase: systemd-stub measures the UKI's sections, then systemd-pcrphase extends the boot
// phases (enter-initrd, leave-initrd, sysinit, ready). The agent checks after multi-user.target,
// after systemd-pcrphase.service's `ready`; but every published value identifies the same UKI
// bytes and differs only in how many phase words followed, so PCR 11 matches when it equals the
// value of any published phase (an image without systemd-pcrphase stays at ""), and the verdict
// names that phase. Any other value is a mismatch: another UKI, command line or initrd booted.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "agent/api.hpp"
#include "agent/health.hpp"
#include "boot/boot_control.hpp"
#include "boot/efivars.hpp"
#include "boot/tpm.hpp"
#include "common/result.hpp"
#include "repository/manifest.hpp"

namespace ballast::agent {

// Records (or, with nullopt, forgets) what `version` must measure; written atomically.
Status save_expected_pcr11(const std::string& state_dir, const std::string& version,
                           const std::optional<repository::MeasuredBoot>& expected);
// nullopt when nothing was recorded for `version`.
Result<std::optional<repository::MeasuredBoot>> load_expected_pcr11(const std::string& state_dir,
                                                                    const std::string& version);

struct MeasuredBootVerdict {
  std::string state = "unavailable";  // "match", "mismatch" or "unavailable" (no TPM, or nothing expected)
  std::string phase;                  // match: the phase whose value PCR 11 holds
  std::string pcr11;                  // the value read, when a TPM was there
  std::string reason;                 // unavailable or mismatch: why
};

MeasuredBootVerdict verify_measured_boot(boot::Tpm& tpm, const std::optional<repository::MeasuredBoot>& expected);

// The required health check of a verdict: a mismatch fails with "health.measured-boot-mismatch",
// a match or an unavailable check passes (the output says which).
HealthCheckResult measured_boot_check(const MeasuredBootVerdict& verdict);

// Adds the "measured-boot" check of the booted release `booted` to `report` (the daemon's health
// checker and `ballast health`, which ballast-health.service runs before the boot is blessed).
Status add_measured_boot_check(HealthReport& report, boot::Tpm& tpm, const std::string& state_dir,
                               const Version& booted);

struct BootSecurityInputs {
  boot::EfiVariables& efi;
  boot::BootControl& boot;
  boot::Tpm& tpm;
  std::string esp_path;
  std::string state_dir;
};

// Best effort: what cannot be read stays at its default (status must not fail over it).
BootSecurity read_boot_security(const BootSecurityInputs& in);

// The line `ballast status` prints.
std::string boot_security_text(const BootSecurity& b);

}  // namespace ballast::agent
