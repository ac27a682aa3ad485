// `ballast boot update-loader` on a tmpfs ESP, with a directory sysroot holding the booted
// release's deployment and a directory of EFI variables.
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "boot/boot_control.hpp"
#include "boot/efivars.hpp"
#include "common/process.hpp"
#include "images/uki.hpp"
#include "tests/integration/boot/tmpfs_esp.hpp"

using namespace ballast;

namespace {

constexpr const char* kSystemdBoot = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";

// A host booted into 2.0 whose deployment ships `loader` (unless empty) as its signed systemd-boot.
struct LoaderHost {
  boot::testing::TmpfsEsp host;
  std::string sysroot = path_join(host.root(), "sysroot");
  std::string shipped = sysroot + "/@ballast/deploy/2.0" + images::kSignedLoaderPath;

  LoaderHost() {
    REQUIRE(make_dirs(shipped.substr(0, shipped.rfind('/'))));
    REQUIRE(write_file_atomic(host.cmdline(), "root=gpt-auto ro ballast.version=2.0\n"));
  }
  void ship(const std::string& loader_file) { REQUIRE(run_checked({"cp", loader_file, shipped})); }
  void set_secure_boot(bool on) {
    REQUIRE(write_file_atomic(path_join(host.efivars(), std::string("SecureBoot-") + boot::kGlobalVariableGuid),
                              std::string("\x06\0\0\0", 4) + std::string(1, on ? '\x01' : '\x00')));
  }
  std::string esp_file(const char* rel) const { return path_join(host.esp(), rel); }
  ProcessResult update() const {
    auto r = run_process({boot::testing::ballast_binary(), "--esp-path", host.esp(), "--efivars-path", host.efivars(),
                          "--cmdline-path", host.cmdline(), "--sysroot", sysroot, "--config-dir",
                          path_join(host.root(), "config"), "boot", "update-loader", "--json"});
    REQUIRE(r);
    return *r;
  }
};

// systemd-boot signed with a throwaway key, as `ballast image build --secure-boot-key` ships it.
std::string signed_systemd_boot(const std::string& dir) {
  const std::string key = path_join(dir, "db.key"), crt = path_join(dir, "db.crt"), out = path_join(dir, "signed.efi");
  REQUIRE(run_checked({"openssl", "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                       "/CN=ballast test db", "-keyout", key, "-out", crt}));
  REQUIRE(run_checked({"sbsign", "--key", key, "--cert", crt, "--output", out, kSystemdBoot}));
  return out;
}

ino_t inode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_ino;
}

std::vector<std::string> hidden_files(const std::string& dir) {
  std::vector<std::string> out;
  auto names = list_dir(dir);
  REQUIRE(names);
  for (const auto& name : *names)
    if (name.rfind(".", 0) == 0) out.push_back(name);
  return out;
}

}  // namespace

TEST_CASE("update-loader copies the booted release's signed loader to both ESP paths, then reports unchanged",
          "[boot][update-loader]") {
  LoaderHost h;
  h.set_secure_boot(true);
  // The loader the host was installed with.
  for (const char* rel : boot::kSystemdBootPaths) {
    REQUIRE(make_dirs(h.esp_file(rel).substr(0, h.esp_file(rel).rfind('/'))));
    REQUIRE(write_file_atomic(h.esp_file(rel), "the old loader"));
  }
  h.ship(signed_systemd_boot(h.host.root()));
  const auto shipped = read_file(h.shipped);
  REQUIRE(shipped);

  auto r = h.update();
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["result"] == "updated");
  CHECK(j["version"] == "2.0");
  CHECK(j["source"] == h.shipped);
  for (const char* rel : boot::kSystemdBootPaths) CHECK(*read_file(h.esp_file(rel)) == *shipped);
  CHECK(hidden_files(h.esp_file("EFI/systemd")).empty());  // no temp file left beside either
  CHECK(hidden_files(h.esp_file("EFI/BOOT")).empty());

  const ino_t before = inode_of(h.esp_file("EFI/BOOT/BOOTX64.EFI"));
  auto again = h.update();
  REQUIRE(again.exit_code == 0);
  CHECK(nlohmann::json::parse(again.out)["result"] == "unchanged");
  CHECK(inode_of(h.esp_file("EFI/BOOT/BOOTX64.EFI")) == before);  // not rewritten
}

TEST_CASE("update-loader fills an ESP that has no loader yet and replaces a stale fallback alone",
          "[boot][update-loader]") {
  LoaderHost h;
  h.ship(signed_systemd_boot(h.host.root()));
  REQUIRE(h.update().exit_code == 0);
  const ino_t kept = inode_of(h.esp_file("EFI/systemd/systemd-bootx64.efi"));
  REQUIRE(write_file_atomic(h.esp_file("EFI/BOOT/BOOTX64.EFI"), "another loader"));
  auto r = h.update();
  REQUIRE(r.exit_code == 0);
  CHECK(nlohmann::json::parse(r.out)["result"] == "updated");
  CHECK(*read_file(h.esp_file("EFI/BOOT/BOOTX64.EFI")) == *read_file(h.shipped));
  CHECK(inode_of(h.esp_file("EFI/systemd/systemd-bootx64.efi")) == kept);
}

TEST_CASE("an unsigned loader is refused while Secure Boot is enabled and the ESP is left untouched",
          "[boot][update-loader]") {
  LoaderHost h;
  REQUIRE(make_dirs(h.esp_file("EFI/BOOT")));
  REQUIRE(write_file_atomic(h.esp_file("EFI/BOOT/BOOTX64.EFI"), "the old loader"));
  h.ship(kSystemdBoot);  // Debian's systemd-boot as packaged: no signature
  h.set_secure_boot(true);
  auto r = h.update();
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("[boot.loader-unsigned]"));
  CHECK(*read_file(h.esp_file("EFI/BOOT/BOOTX64.EFI")) == "the old loader");
  CHECK_FALSE(path_exists(h.esp_file("EFI/systemd")));
  CHECK(*list_dir(h.esp_file("EFI/BOOT")) == std::vector<std::string>{"BOOTX64.EFI"});

  // With Secure Boot off the firmware starts it, and so it is installed.
  h.set_secure_boot(false);
  auto off = h.update();
  INFO(off.err);
  REQUIRE(off.exit_code == 0);
  CHECK(*read_file(h.esp_file("EFI/BOOT/BOOTX64.EFI")) == *read_file(kSystemdBoot));
}

TEST_CASE("a release built without a Secure Boot key ships no loader and update-loader changes nothing",
          "[boot][update-loader]") {
  LoaderHost h;
  auto r = h.update();
  REQUIRE(r.exit_code == 0);
  CHECK(nlohmann::json::parse(r.out)["result"] == "not-shipped");
  CHECK_FALSE(path_exists(h.esp_file("EFI")));
}
