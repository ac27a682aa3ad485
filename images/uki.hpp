// Unified kernel images (UKI) on the build side: systemd's EFI stub with the kernel, initrd,
// os-release and a command line added as PE sections (objcopy), optionally signed for Secure Boot
// (sbsign). A release carries its UKI at kUkiPath and, when signed, the signed systemd-boot at
// kSignedLoaderPath: the TUF manifest covers them like every other byte of the release.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "common/result.hpp"
#include "common/version.hpp"

namespace ballast::images {

inline constexpr const char* kUkiPath = "/usr/lib/ballast/uki.efi";
inline constexpr const char* kSignedLoaderPath = "/usr/lib/ballast/systemd-bootx64.efi.signed";
inline constexpr const char* kDefaultStub = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";
inline constexpr const char* kDefaultSystemdBoot = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";
inline constexpr const char* kSystemdMeasure = "/usr/lib/systemd/systemd-measure";

// Secure Boot signing material: an unencrypted PEM private key and its X.509 certificate (PEM).
struct SigningKey {
  std::string key;
  std::string cert;
};

struct UkiParts {
  std::string linux_path;
  std::string initrd_path;   // may be empty
  std::string osrel;         // the contents of the .osrel section
  std::string cmdline;       // the contents of the .cmdline section
  int64_t timestamp = 0;     // the PE time stamp (SOURCE_DATE_EPOCH): same inputs, same bytes
};

// The command line sealed into a release's UKI. It holds no value of one host, so every host
// installed from the release boots the same bytes: the root filesystem is found by its GPT partition
// type on the disk the loader booted from (root=/dev/gpt-auto-root, docs/boot.md), the deployment by its
// subvolume. `extra` is the image's own command line ([kernel] cmdline).
std::string uki_cmdline(const Version& version, const std::string& extra);

// Writes the UKI to `output` (replacing it): .osrel .cmdline .linux .initrd, in that order, each
// at a page-aligned address after the stub's last section.
Status assemble_uki(const std::string& stub, const UkiParts& parts, const std::string& output);

// The boot phases systemd-pcrphase extends into PCR 11 after systemd-stub measured the UKI, as
// systemd-measure names them; "" is the UKI's sections alone (no phase extended yet).
inline constexpr const char* kPcr11Phases[] = {"", "enter-initrd", "enter-initrd:leave-initrd",
                                               "enter-initrd:leave-initrd:sysinit",
                                               "enter-initrd:leave-initrd:sysinit:ready"};

// The sha256 PCR 11 value the UKI at `uki` produces at each of kPcr11Phases (lowercase hex by
// phase): its measured sections (.linux .osrel .cmdline .initrd .splash .dtb .pcrpkey, read with
// pe_file) handed to `systemd-measure calculate`. "image.measure" when the tool fails.
Result<std::map<std::string, std::string>> predict_pcr11(const std::string& uki,
                                                          const std::string& measure_tool = kSystemdMeasure);

// Signs an EFI binary for Secure Boot into `output` and checks the signature with the certificate.
Status sign_efi(const SigningKey& key, const std::string& input, const std::string& output);

// "image.unsigned" when `path` carries no signature that `cert` verifies.
Status verify_signature(const std::string& cert, const std::string& path);

}  // namespace ballast::images
