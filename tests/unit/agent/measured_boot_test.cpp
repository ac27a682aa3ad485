#include <catch2/catch.hpp>

#include "agent/measured_boot.hpp"
#include "common/file.hpp"

using namespace ballast;
using namespace ballast::agent;

namespace {

const std::string kReady(64, 'b');
const std::string kNoPhase(64, 'a');

repository::MeasuredBoot published() {
  return repository::MeasuredBoot{{{"", kNoPhase}, {"enter-initrd:leave-initrd:sysinit:ready", kReady}}};
}

}  // namespace

TEST_CASE("PCR 11 matches when it holds the published value of a boot phase, and names that phase",
          "[agent][measured-boot]") {
  boot::FakeTpm tpm;
  tpm.pcrs[11] = kReady;
  auto v = verify_measured_boot(tpm, published());
  CHECK(v.state == "match");
  CHECK(v.phase == "enter-initrd:leave-initrd:sysinit:ready");
  auto check = measured_boot_check(v);
  CHECK(check.passed);
  CHECK(check.required);
  CHECK(check.code.empty());
  tpm.pcrs[11] = kNoPhase;
  CHECK(verify_measured_boot(tpm, published()).phase == "");
}

TEST_CASE("any other PCR 11 value is a mismatch that fails the required check with its code", "[agent][measured-boot]") {
  boot::FakeTpm tpm;
  tpm.pcrs[11] = std::string(64, 'c');
  auto v = verify_measured_boot(tpm, published());
  CHECK(v.state == "mismatch");
  auto check = measured_boot_check(v);
  CHECK_FALSE(check.passed);
  CHECK(check.required);
  CHECK(check.code == "health.measured-boot-mismatch");
  HealthReport r;
  r.checks.push_back(check);
  CHECK(r.failures() == std::vector<std::string>{"measured-boot (health.measured-boot-mismatch)"});
}

TEST_CASE("without a TPM or a published value the check is unavailable and passes", "[agent][measured-boot]") {
  boot::FakeTpm none;
  none.has_tpm = false;
  auto v = verify_measured_boot(none, published());
  CHECK(v.state == "unavailable");
  CHECK(measured_boot_check(v).passed);
  boot::FakeTpm tpm;
  CHECK(verify_measured_boot(tpm, std::nullopt).state == "unavailable");
}

TEST_CASE("the sysfs TPM reads a PCR as lowercase hex and is absent without its sha256 bank", "[agent][measured-boot]") {
  auto dir = make_temp_dir("tpm");
  REQUIRE(dir);
  auto tpm = boot::make_sysfs_tpm(*dir + "/tpm0");
  CHECK_FALSE(tpm->present());
  CHECK(tpm->pcr_sha256(11).error().code == "tpm.unavailable");
  CHECK(verify_measured_boot(*tpm, published()).state == "unavailable");
  REQUIRE(make_dirs(*dir + "/tpm0/pcr-sha256"));
  REQUIRE(write_file_atomic(*dir + "/tpm0/pcr-sha256/11", std::string(64, 'B') + "\n"));
  CHECK(tpm->present());
  CHECK(tpm->pcr_sha256(11).value() == kReady);
  REQUIRE(write_file_atomic(*dir + "/tpm0/pcr-sha256/11", "xyz\n"));
  CHECK(tpm->pcr_sha256(11).error().code == "tpm.malformed");
  (void)remove_tree(*dir);
}

TEST_CASE("the expected values of a staged release are recorded in the state directory and forgotten with nullopt",
          "[agent][measured-boot]") {
  auto dir = make_temp_dir("state");
  REQUIRE(dir);
  CHECK_FALSE(load_expected_pcr11(*dir, "2.0").value());
  REQUIRE(save_expected_pcr11(*dir, "2.0", published()));
  CHECK(load_expected_pcr11(*dir, "2.0").value() == published());
  CHECK_FALSE(load_expected_pcr11(*dir, "3.0").value());
  REQUIRE(save_expected_pcr11(*dir, "2.0", std::nullopt));
  CHECK_FALSE(load_expected_pcr11(*dir, "2.0").value());
  (void)remove_tree(*dir);
}
