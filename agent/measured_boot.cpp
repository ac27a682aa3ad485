#include "agent/measured_boot.hpp"

#include "common/file.hpp"
#include "common/pe_file.hpp"

namespace ballast::agent {
namespace {

constexpr int kPcrUki = 11;

std::string expected_path(const std::string& state_dir, const std::string& version) {
  return path_join(path_join(state_dir, "measured-boot"), version + ".json");
}

}  // namespace

Status save_expected_pcr11(const std::string& state_dir, const std::string& version,
                           const std::optional<repository::MeasuredBoot>& expected) {
  const std::string path = expected_path(state_dir, version);
  if (!expected) return remove_if_exists(path);
  BALLAST_CHECK(make_dirs(path_join(state_dir, "measured-boot"), 0700));
  return with_context(write_file_atomic(path, repository::measured_boot_json(*expected).dump()), "recording the expected PCR 11 of " + version);
}

Result<std::optional<repository::MeasuredBoot>> load_expected_pcr11(const std::string& state_dir,
                                                                    const std::string& version) {
  const std::string path = expected_path(state_dir, version);
  auto text = read_file(path, 1 << 20);
  if (!text) {
    if (text.error().code == "io.not-found") return std::optional<repository::MeasuredBoot>();
    return tl::unexpected(text.error());
  }
  auto j = nlohmann::json::parse(*text, nullptr, false);
  return std::optional<repository::MeasuredBoot>(BALLAST_TRY(repository::parse_measured_boot(j, path)));
}

MeasuredBootVerdict verify_measured_boot(boot::Tpm& tpm, const std::optional<repository::MeasuredBoot>& expected) {
  MeasuredBootVerdict v;
  if (!tpm.present()) {
    v.reason = "no TPM";
    return v;
  }
  auto pcr = tpm.pcr_sha256(kPcrUki);
  if (!pcr) {
    v.reason = pcr.error().describe();
    return v;
  }
  v.pcr11 = *pcr;
  if (!expected || expected->pcr11_sha256.empty()) {
    v.reason = "the booted release published no expected PCR 11 value";
    return v;
  }
  for (const auto& [phase, value] : expected->pcr11_sha256) {
    if (value != v.pcr11) continue;
    v.state = "match";
    v.phase = phase;
    return v;
  }
  v.state = "mismatch";
  v.reason = "PCR 11 is " + v.pcr11 + ", which no boot phase of the published UKI produces";
  return v;
}

HealthCheckResult measured_boot_check(const MeasuredBootVerdict& v) {
  HealthCheckResult r;
  r.name = "measured-boot";
  r.required = true;
  r.passed = v.state != "mismatch";
  if (v.state == "match") r.output = "PCR 11 matches the published value (phase \"" + v.phase + "\")";
  else if (v.state == "unavailable") r.output = "skipped: " + v.reason;
  else r.output = v.reason;
  if (!r.passed) {
    r.exit_code = 1;
    r.code = "health.measured-boot-mismatch";
  }
  return r;
}

Status add_measured_boot_check(HealthReport& report, boot::Tpm& tpm, const std::string& state_dir,
                               const Version& booted) {
  auto expected = BALLAST_TRY(load_expected_pcr11(state_dir, booted.str()));
  report.checks.push_back(measured_boot_check(verify_measured_boot(tpm, expected)));
  report.healthy = report.healthy && report.checks.back().passed;
  return ok();
}

BootSecurity read_boot_security(const BootSecurityInputs& in) {
  BootSecurity b;
  if (auto sb = boot::secure_boot_enabled(in.efi)) b.secure_boot = *sb;
  b.tpm = in.tpm.present();
  auto booted = in.boot.booted_version();
  if (!booted) return b;
  if (auto entries = in.boot.entries()) {
    for (const auto& e : *entries) {
      if (e.version != *booted) continue;
      b.entry_type = e.uki ? "uki" : "type1";
      if (e.uki) {
        auto is_signed = pe::has_authenticode_signature_of_file(path_join(path_join(in.esp_path, "EFI/Linux"), e.id));
        b.uki_signed = is_signed && *is_signed;
      }
    }
  }
  auto expected = load_expected_pcr11(in.state_dir, booted->str());
  b.measured_boot = verify_measured_boot(in.tpm, expected ? *expected : std::nullopt).state;
  return b;
}

std::string boot_security_text(const BootSecurity& b) {
  std::string entry = b.entry_type == "uki" ? (b.uki_signed ? "signed UKI" : "unsigned UKI")
                      : b.entry_type.empty() ? "unknown entry" : "Type #1 entry";
  return "boot:    " + entry + ", Secure Boot " + (b.secure_boot ? "on" : "off") + ", TPM " +
         (b.tpm ? "present" : "absent") + ", measured boot " + b.measured_boot + "\n";
}

}  // namespace ballast::agent
