// `ballast boot …` end to end on a tmpfs ESP.
#include <nlohmann/json.hpp>

#include "boot/boot_control.hpp"
#include "boot/efivars.hpp"
#include "common/process.hpp"
#include "tests/integration/boot/tmpfs_esp.hpp"
#include "tests/version_literal.hpp"

using namespace ballast;
using namespace ballast::boot;

namespace {
using namespace ballast::version_literals;

struct Cli {
  const testing::TmpfsEsp& host;
  std::string cfg = path_join(host.root(), "config");
  ProcessResult run(std::vector<std::string> args) const {
    std::vector<std::string> argv = {testing::ballast_binary(), "--esp-path", host.esp(), "--efivars-path",
                                     host.efivars(), "--config-dir", cfg};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run_process(argv);
    REQUIRE(r);
    return *r;
  }
};

std::vector<std::string> esp_files(const std::string& dir) {
  std::vector<std::string> out;
  auto r = run_checked({"find", dir, "-mindepth", "1"});
  REQUIRE(r);
  std::string s = r->out;
  for (size_t i = 0; i < s.size();) {
    auto nl = s.find('\n', i);
    out.push_back(s.substr(i, nl - i));
    i = nl + 1;
  }
  return out;
}

}  // namespace

TEST_CASE("ballast boot adds, lists, blesses, marks bad, sets default, one-shots and removes entries", "[boot][cli]") {
  testing::TmpfsEsp host;
  Cli cli{host};
  REQUIRE(make_dirs(cli.cfg));
  REQUIRE(write_file_atomic(path_join(cli.cfg, "10-boot.toml"), "[boot]\ntries = 5\n"));
  auto k = host.file("vmlinuz", 4096), i = host.file("initrd", 2048, 'i');

  CHECK(cli.run({"boot", "add", "1", "--kernel", k, "--initrd", i, "--options", "root=UUID=x ro"}).exit_code == 0);
  CHECK(cli.run({"boot", "add", "2", "--kernel", k, "--tries", "2", "--title", "Two"}).exit_code == 0);
  auto listed = cli.run({"boot", "list", "--json"});
  REQUIRE(listed.exit_code == 0);
  auto j = nlohmann::json::parse(listed.out);
  REQUIRE(j.size() == 2);
  CHECK(j[0]["version"] == "2");
  CHECK(j[0]["tries_left"] == 2);
  CHECK(j[0]["title"] == "Two");
  CHECK(j[1]["version"] == "1");
  CHECK(j[1]["tries_left"] == 5);  // boot.tries from the configuration
  CHECK(j[1]["options"] == "root=UUID=x ro ballast.version=1");
  CHECK(*read_file(path_join(host.esp(), "ballast/1/initrd.img")) == std::string(2048, 'i'));

  // bless without a version blesses the booted one, read from the command line.
  REQUIRE(write_file_atomic(host.cmdline(), "root=UUID=x ballast.version=1\n"));
  CHECK(cli.run({"boot", "--cmdline-path", host.cmdline(), "bless"}).exit_code == 0);
  auto no_booted = cli.run({"boot", "bless", "--cmdline-path", path_join(host.root(), "none")});
  CHECK(no_booted.exit_code == 1);
  CHECK(no_booted.err.find("boot.unknown-booted") != std::string::npos);

  CHECK(cli.run({"boot", "oneshot", "1"}).exit_code == 0);
  auto efi = make_efivarfs(host.efivars());
  CHECK(efi->read_string("LoaderEntryOneShot")->value() == "ballast-1.conf");
  REQUIRE(efi->write_string("LoaderEntryDefault", "ballast-2+2-0.conf"));  // as a stray bootctl set-default would

  CHECK(cli.run({"boot", "set-default", "1"}).exit_code == 0);
  j = nlohmann::json::parse(cli.run({"boot", "list", "--json"}).out);
  CHECK(j[0]["version"] == "1");
  CHECK(j[1]["state"] == "bad");
  CHECK(!efi->read_string("LoaderEntryOneShot")->has_value());
  CHECK(!efi->read_string("LoaderEntryDefault")->has_value());

  auto refused = cli.run({"boot", "set-default", "2"});
  CHECK(refused.exit_code == 1);
  CHECK(refused.err == "ballast: version 2 is marked bad; bless it first [boot.entry-bad]\n");

  CHECK(cli.run({"boot", "mark-bad", "1"}).exit_code == 0);
  CHECK(cli.run({"boot", "remove", "2"}).exit_code == 0);
  CHECK(!path_exists(path_join(host.esp(), "ballast/2")));
  j = nlohmann::json::parse(cli.run({"boot", "list", "--json"}).out);
  REQUIRE(j.size() == 1);
  CHECK(j[0]["state"] == "bad");

  CHECK(cli.run({"boot", "add", "3"}).exit_code == 2);                          // no --kernel
  CHECK(cli.run({"boot", "add", "3", "--kernel", k, "--tries", "0"}).exit_code == 2);
  auto bad_version = cli.run({"boot", "add", "3/..", "--kernel", k});
  CHECK(bad_version.exit_code == 1);
  CHECK(bad_version.err.find("version.invalid") != std::string::npos);
  CHECK(cli.run({"boot", "remove", "9"}).exit_code == 1);
}

TEST_CASE("a full ESP is a clear error naming the space needed, with nothing half-written", "[boot][cli]") {
  testing::TmpfsEsp host("1m");
  Cli cli{host};
  auto small = host.file("small", 100 * 1024);
  CHECK(cli.run({"boot", "add", "1", "--kernel", small}).exit_code == 0);
  auto before = esp_files(host.esp());
  auto big = host.file("big", 2 * 1024 * 1024);
  auto r = cli.run({"boot", "add", "2", "--kernel", big, "--initrd", small});
  CHECK(r.exit_code == 1);
  INFO(r.err);
  CHECK(r.err.rfind("ballast: installing 2 needs ", 0) == 0);
  CHECK(r.err.find("but " + host.esp() + " has ") != std::string::npos);
  CHECK(r.err.find("[boot.esp-full]") != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(esp_files(host.esp()) == before);
}

TEST_CASE("the library refuses an install that does not fit before copying anything", "[boot][esp-full]") {
  testing::TmpfsEsp host("1m");
  auto control = make_systemd_boot_control(BootPaths{host.esp(), host.efivars(), host.cmdline(), 3, ""});
  auto kernel = host.file("k", 600 * 1024);
  REQUIRE(control->install(KernelSpec{"1"_v, kernel, "", "", "", 0}));
  auto before = esp_files(host.esp());
  // 600 KiB more does not fit in what is left, and the check must say so before copying.
  auto st = control->install(KernelSpec{"2"_v, kernel, "", "", "", 0});
  REQUIRE(!st);
  CHECK(st.error().code == "boot.esp-full");
  CHECK(esp_files(host.esp()) == before);
}

TEST_CASE("a copy that fails midway (no inodes left) removes what it copied and writes no entry", "[boot][esp-full]") {
  testing::TmpfsEsp host("16m,nr_inodes=4");  // the root, ballast/, ballast/2/, vmlinuz: no room for initrd.img
  auto control = make_systemd_boot_control(BootPaths{host.esp(), host.efivars(), host.cmdline(), 3, ""});
  auto st = control->install(KernelSpec{"2"_v, host.file("k", 4096), host.file("i", 4096), "", "", 0});
  REQUIRE(!st);
  CHECK(st.error().code == "boot.esp-full");
  CHECK(!path_exists(path_join(host.esp(), "ballast/2")));
  CHECK(!path_exists(path_join(host.esp(), "loader/entries")));
  CHECK(control->entries()->empty());
}

TEST_CASE("an ESP out of room for a directory is boot.esp-full too, with no entry written", "[boot][esp-full]") {
  testing::TmpfsEsp host("16m,nr_inodes=2");  // the root and ballast/: mkdir of ballast/2 fails
  auto control = make_systemd_boot_control(BootPaths{host.esp(), host.efivars(), host.cmdline(), 3, ""});
  auto st = control->install(KernelSpec{"2"_v, host.file("k", 4096), "", "", "", 0});
  REQUIRE(!st);
  CHECK(st.error().code == "boot.esp-full");
  CHECK(st.error().sys_errno == ENOSPC);
  CHECK_THAT(st.error().message, Catch::Contains("the ESP at " + host.esp() + " ran out of space"));
  CHECK(!path_exists(path_join(host.esp(), "ballast/2")));
  CHECK(control->entries()->empty());
}

TEST_CASE("ballast boot simulate-reboot lets a sandbox host boot its trial entry and fall back", "[boot][cli]") {
  testing::TmpfsEsp host;
  Cli cli{host};
  auto k = host.file("vmlinuz", 4096);
  REQUIRE(cli.run({"boot", "add", "1", "--kernel", k}).exit_code == 0);
  REQUIRE(cli.run({"boot", "bless", "1"}).exit_code == 0);
  REQUIRE(cli.run({"boot", "add", "2", "--kernel", k, "--tries", "1"}).exit_code == 0);
  auto boot = [&] {
    auto r = cli.run({"boot", "simulate-reboot", "--cmdline-path", host.cmdline(), "--json"});
    REQUIRE(r.exit_code == 0);
    return nlohmann::json::parse(r.out);
  };
  CHECK(boot()["entry"] == "ballast-2+1-0.conf");
  CHECK(*read_file(host.cmdline()) == "ballast.version=2\n");
  auto listed = cli.run({"boot", "list", "--json", "--cmdline-path", host.cmdline()});
  auto j = nlohmann::json::parse(listed.out);
  // Its only try is being used: already +0 and ordered last, booted until blessed or rebooted.
  REQUIRE(j.size() == 2);
  CHECK(j[1]["version"] == "2");
  CHECK(j[1]["booted"] == true);
  CHECK(j[1]["tries_left"] == 0);
  CHECK(j[1]["tries_done"] == 1);
  CHECK(boot()["version"] == "1");  // spent: falls back
  CHECK(make_efivarfs(host.efivars())->read_string("LoaderEntrySelected")->value() == "ballast-1.conf");
}
