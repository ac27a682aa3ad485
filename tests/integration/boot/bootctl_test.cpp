// bootctl (Debian 12's systemd 252) is the reference reader of BLS entries and boot counters.
#include <sstream>

#include <nlohmann/json.hpp>

#include "boot/boot_simulator.hpp"
#include "common/process.hpp"
#include "images/uki.hpp"
#include "tests/integration/boot/tmpfs_esp.hpp"
#include "tests/version_literal.hpp"

using namespace ballast;
using namespace ballast::boot;

namespace {
using namespace ballast::version_literals;

struct BootctlEntry {
  std::string id;
  int tries_left = -1;
  int tries_done = -1;
  bool is_default = false;
};

std::vector<BootctlEntry> bootctl_list(const std::string& esp) {
  SpawnOptions opts;
  opts.extra_env = {"SYSTEMD_RELAX_ESP_CHECKS=1", "SYSTEMD_PAGER=cat"};
  auto json = run_checked({"bootctl", "--esp-path=" + esp, "--no-pager", "list", "--json=short"}, opts);
  REQUIRE(json);
  std::vector<BootctlEntry> out;
  std::istringstream lines(json->out);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    BootctlEntry e;
    e.id = j.at("id").get<std::string>();
    if (j.contains("triesLeft")) e.tries_left = j["triesLeft"].get<int>();
    if (j.contains("triesDone")) e.tries_done = j["triesDone"].get<int>();
    out.push_back(e);
  }
  // The JSON of 252 has no default flag; the text listing marks the title.
  auto text = run_checked({"bootctl", "--esp-path=" + esp, "--no-pager", "list"}, opts);
  REQUIRE(text);
  std::istringstream tl(text->out);
  size_t index = 0;
  for (std::string line; std::getline(tl, line);) {
    if (line.find(" title: ") != std::string::npos) {
      REQUIRE(index < out.size());
      out[index++].is_default = line.find("(default)") != std::string::npos;
    }
  }
  return out;
}

KernelSpec spec_for(const testing::TmpfsEsp& host, const std::string& v, int tries) {
  return KernelSpec{make_version(v), host.file("vmlinuz-" + v, 1000), host.file("initrd-" + v, 500), "ro", "", tries};
}

// A UKI as the image builder makes it (systemd's stub, objcopy), with stand-in kernel bytes.
KernelSpec uki_spec_for(const testing::TmpfsEsp& host, const std::string& v, int tries) {
  images::UkiParts parts;
  parts.linux_path = host.file("vmlinuz-" + v, 1000);
  parts.osrel = "NAME=\"ballast\"\nID=\"ballast\"\nIMAGE_VERSION=\"" + v + "\"\n";
  parts.cmdline = images::uki_cmdline(make_version(v), "");
  KernelSpec k;
  k.version = make_version(v);
  k.uki_path = host.file("uki-" + v + ".efi", 0);
  k.tries = tries;
  REQUIRE(images::assemble_uki(images::kDefaultStub, parts, k.uki_path));
  return k;
}

// bootctl 252 ids keep ".conf" (".efi" for a UKI) and drop the counter.
std::string bootctl_id(const BootEntry& e) { return stem_of_version(e.version.str()) + (e.uki ? ".efi" : ".conf"); }

void check_bootctl_agrees(const testing::TmpfsEsp& host, BootControl& control) {
  auto ours = control.entries();
  REQUIRE(ours);
  auto theirs = bootctl_list(host.esp());
  REQUIRE(theirs.size() == ours->size());
  for (size_t i = 0; i < ours->size(); ++i) {
    const auto& o = (*ours)[i];
    INFO("position " << i << ": ballast " << o.id << ", bootctl " << theirs[i].id);
    CHECK(theirs[i].id == bootctl_id(o));
    CHECK(theirs[i].tries_left == (o.has_counter ? o.tries_left : -1));
    CHECK(theirs[i].tries_done == (o.has_counter ? o.tries_done : -1));
    CHECK(theirs[i].is_default == (i == 0));
  }
}

}  // namespace

TEST_CASE("bootctl reads ballast's entries in ballast's boot order with the same boot-counting state",
          "[boot][bootctl]") {
  testing::TmpfsEsp host;
  BootPaths paths{host.esp(), host.efivars(), host.cmdline(), 3, ""};
  auto control = make_systemd_boot_control(paths);
  for (const char* v : {"1.9", "1.10", "2~rc1"}) {
    REQUIRE(control->install(spec_for(host, v, 0)));
    REQUIRE(control->bless(make_version(v)));
  }
  REQUIRE(control->install(spec_for(host, "2024.01.02", 2)));
  REQUIRE(control->install(spec_for(host, "1.2", 3)));
  REQUIRE(control->mark_bad("1.2"_v));
  check_bootctl_agrees(host, *control);
  CHECK(control->entries()->front().version == "2024.01.02"_v);

  BootSimulator sim(paths);
  REQUIRE(sim.reboot()->version.str() == "2024.01.02");
  check_bootctl_agrees(host, *control);
  REQUIRE(sim.reboot()->version.str() == "2024.01.02");
  // Exhausted: bootctl, like ballast, now puts the newest good entry first and the spent one last.
  check_bootctl_agrees(host, *control);
  CHECK(control->entries()->front().version == "2~rc1"_v);
  CHECK(bootctl_list(host.esp()).front().id == "ballast-2_trc1.conf");
  REQUIRE(sim.reboot()->version.str() == "2~rc1");

  REQUIRE(control->prefer("1.10"_v));
  check_bootctl_agrees(host, *control);
  CHECK(bootctl_list(host.esp()).front().id == "ballast-1.10.conf");
}

TEST_CASE("bootctl reads ballast's UKIs among its Type #1 entries in ballast's boot order with the same counters",
          "[boot][bootctl][uki]") {
  testing::TmpfsEsp host;
  BootPaths paths{host.esp(), host.efivars(), host.cmdline(), 3, ""};
  auto control = make_systemd_boot_control(paths);
  REQUIRE(control->install(spec_for(host, "1.9", 0)));
  REQUIRE(control->bless("1.9"_v));
  REQUIRE(control->install(uki_spec_for(host, "1.10", 0)));
  REQUIRE(control->bless("1.10"_v));
  REQUIRE(control->install(spec_for(host, "2~rc1", 0)));
  REQUIRE(control->bless("2~rc1"_v));
  REQUIRE(control->install(uki_spec_for(host, "2024.01.02", 2)));
  REQUIRE(control->install(uki_spec_for(host, "1.2", 3)));
  REQUIRE(control->mark_bad("1.2"_v));
  check_bootctl_agrees(host, *control);
  CHECK(bootctl_list(host.esp()).front().id == "ballast-2024.01.02.efi");

  BootSimulator sim(paths);
  REQUIRE(sim.reboot()->version.str() == "2024.01.02");
  CHECK(*read_file(host.cmdline()) == images::uki_cmdline("2024.01.02"_v, "") + "\n");
  check_bootctl_agrees(host, *control);
  REQUIRE(sim.reboot()->version.str() == "2024.01.02");
  // The UKI's trial is exhausted: the newest good entry, a Type #1 one, boots next.
  check_bootctl_agrees(host, *control);
  CHECK(bootctl_list(host.esp()).front().id == "ballast-2_trc1.conf");
  REQUIRE(sim.reboot()->version.str() == "2~rc1");

  REQUIRE(control->prefer("1.10"_v));
  check_bootctl_agrees(host, *control);
  CHECK(bootctl_list(host.esp()).front().id == "ballast-1.10.efi");
  REQUIRE(control->set_oneshot("1.9"_v));
  REQUIRE(sim.reboot()->version.str() == "1.9");
  REQUIRE(sim.reboot()->version.str() == "1.10");
  REQUIRE(control->remove("2024.01.02"_v));
  check_bootctl_agrees(host, *control);
}

TEST_CASE("bootctl sees a blessed trial entry without a counter", "[boot][bootctl]") {
  testing::TmpfsEsp host;
  BootPaths paths{host.esp(), host.efivars(), host.cmdline(), 3, ""};
  auto control = make_systemd_boot_control(paths);
  REQUIRE(control->install(spec_for(host, "1", 0)));
  REQUIRE(control->bless("1"_v));
  REQUIRE(control->install(spec_for(host, "2", 0)));
  BootSimulator sim(paths);
  REQUIRE(sim.reboot()->version.str() == "2");
  REQUIRE(control->bless("2"_v));
  auto theirs = bootctl_list(host.esp());
  REQUIRE(theirs.size() == 2);
  CHECK(theirs[0].id == "ballast-2.conf");
  CHECK(theirs[0].tries_left == -1);
  CHECK(theirs[0].is_default);
}
