#include <sys/stat.h>
#include <unistd.h>

#include "boot/boot_simulator.hpp"
#include "boot/efivars.hpp"
#include "common/file.hpp"
#include "tests/unit/boot/scenarios.hpp"
#include "tests/unit/support/pe_image.hpp"
#include "tests/version_literal.hpp"

using namespace ballast;
using namespace ballast::boot;

namespace {
using namespace ballast::version_literals;

// A directory ESP, an efivars directory and a cmdline file under one temp dir.
struct DirHost {
  std::string root = *make_temp_dir("boot-host");
  BootPaths paths;
  DirHost() {
    paths.esp_path = path_join(root, "esp");
    paths.efivars_path = path_join(root, "efivars");
    paths.cmdline_path = path_join(root, "cmdline");
    REQUIRE(make_dirs(paths.esp_path));
    REQUIRE(make_dirs(paths.efivars_path));
  }
  ~DirHost() { (void)remove_tree(root); }
  KernelSpec spec(const std::string& v, int tries) {
    std::string k = path_join(root, "vmlinuz-" + v), i = path_join(root, "initrd-" + v);
    REQUIRE(write_file_atomic(k, "kernel " + v));
    REQUIRE(write_file_atomic(i, "initrd " + v));
    return KernelSpec{make_version(v), k, i, "root=UUID=f00 rootflags=subvol=@ballast/deploy/" + v + " ro", "", tries};
  }
  // A UKI whose sealed command line names `named` (the version itself unless told otherwise).
  KernelSpec uki_spec(const std::string& v, int tries, const std::string& named = "") {
    std::string u = path_join(root, "uki-" + v + ".efi");
    REQUIRE(write_file_atomic(u, ballast::pe_testing::uki_image(v, "root=gpt-auto rootflags=subvol=@ballast/deploy/" + v +
                                                                  " ro ballast.version=" + (named.empty() ? v : named))));
    KernelSpec k;
    k.version = make_version(v);
    k.uki_path = u;
    k.tries = tries;
    return k;
  }
  std::string uki_dir() const { return path_join(paths.esp_path, "EFI/Linux"); }
  std::string entries_dir() const { return path_join(paths.esp_path, "loader/entries"); }
  std::vector<std::string> entry_files() const { return path_exists(entries_dir()) ? *list_dir(entries_dir()) : std::vector<std::string>{}; }
};

}  // namespace

// Runs every scenario on a fresh directory ESP, booted by the simulator; `with_ukis`: even
// versions are UKIs, as on a host moving from Type #1 releases to UKI releases and back.
static void run_dir_host_scenarios(bool with_ukis, const std::function<void(DirHost&, BootControl&)>& after = {}) {
  testing::run_all_scenarios([&](const std::function<void(testing::Rig&)>& scenario) {
    DirHost host;
    auto control = make_systemd_boot_control(host.paths);
    BootSimulator sim(host.paths);
    testing::Rig rig{*control,
                     [&]() -> Result<std::string> {
                       BALLAST_TRY(sim.reboot());
                       return BALLAST_TRY(control->booted_version()).str();
                     },
                     [&](const std::string& v, int t) {
                       return with_ukis && std::stoi(v) % 2 == 0 ? host.uki_spec(v, t) : host.spec(v, t);
                     }};
    scenario(rig);
    if (after) after(host, *control);
  });
}

TEST_CASE("the systemd-boot backend on a directory ESP follows the boot-counting scenarios", "[boot][systemd-boot]") {
  run_dir_host_scenarios(false);
}

TEST_CASE("the systemd-boot backend follows the boot-counting scenarios with UKIs among Type #1 entries", "[boot][systemd-boot][uki]") {
  run_dir_host_scenarios(true, [](DirHost& host, BootControl& control) {
    auto all = control.entries();
    REQUIRE(all);
    for (const auto& e : *all) {
      CHECK(e.uki == (std::stoi(e.version.str()) % 2 == 0));
      if (e.uki) CHECK(path_exists(path_join(host.uki_dir(), e.id)));
    }
  });
}

TEST_CASE("a UKI is installed byte for byte as a counted Type #2 entry and the simulator boots its sealed command line", "[boot][systemd-boot][uki]") {
  DirHost host;
  auto control = make_systemd_boot_control(host.paths);
  auto spec = host.uki_spec("2.0", 3);
  REQUIRE(control->install(spec));
  CHECK(*read_file(path_join(host.uki_dir(), "ballast-2.0+3-0.efi")) == *read_file(spec.uki_path));
  CHECK(host.entry_files().empty());  // no Type #1 entry, no kernel copy
  CHECK_FALSE(path_exists(path_join(host.paths.esp_path, "ballast/2.0")));
  auto e = testing::entry_of(*control, "2.0");
  CHECK(e.uki);
  CHECK(e.state == EntryState::indeterminate);
  CHECK(e.options == "root=gpt-auto rootflags=subvol=@ballast/deploy/2.0 ro ballast.version=2.0");

  BootSimulator sim(host.paths);
  auto booted = sim.reboot();
  REQUIRE(booted);
  CHECK(*read_file(host.paths.cmdline_path) == e.options + "\n");
  CHECK(make_efivarfs(host.paths.efivars_path)->read_string("LoaderBootCountPath")->value() == "\\EFI\\Linux\\ballast-2.0+2-1.efi");
  CHECK(*control->booted_version() == "2.0"_v);
  REQUIRE(control->bless("2.0"_v));
  CHECK(path_exists(path_join(host.uki_dir(), "ballast-2.0.efi")));
  REQUIRE(control->install(host.uki_spec("3.0", 3)));
  REQUIRE(control->mark_bad("3.0"_v));
  CHECK(path_exists(path_join(host.uki_dir(), "ballast-3.0+0-0.efi")));
  REQUIRE(control->remove("3.0"_v));
  CHECK_FALSE(path_exists(path_join(host.uki_dir(), "ballast-3.0+0-0.efi")));
  CHECK(control->remove("2.0"_v).error().code == "boot.busy");
}

TEST_CASE("a UKI whose sealed command line names another version, or that is no PE image, is refused", "[boot][systemd-boot][uki]") {
  DirHost host;
  auto control = make_systemd_boot_control(host.paths);
  CHECK(control->install(host.uki_spec("2.0", 3, "1.0")).error().code == "boot.bad-uki");
  auto garbage = host.uki_spec("2.1", 3);
  REQUIRE(write_file_atomic(garbage.uki_path, "not a PE image"));
  CHECK(control->install(garbage).error().code == "pe.malformed");
  CHECK(control->entries()->empty());
  CHECK((!path_exists(host.uki_dir()) || list_dir(host.uki_dir())->empty()));
}

TEST_CASE("install copies kernel and initrd and writes a counted entry with sort-key and version", "[boot][systemd-boot]") {
  DirHost host;
  auto control = make_systemd_boot_control(host.paths);
  REQUIRE(control->install(host.spec("2.0", 0)));
  CHECK(*read_file(path_join(host.paths.esp_path, "ballast/2.0/vmlinuz")) == "kernel 2.0");
  CHECK(*read_file(path_join(host.paths.esp_path, "ballast/2.0/initrd.img")) == "initrd 2.0");
  CHECK(host.entry_files() == std::vector<std::string>{"ballast-2.0+3-0.conf"});
  auto text = read_file(path_join(host.entries_dir(), "ballast-2.0+3-0.conf"));
  REQUIRE(text);
  auto entry = parse_entry(*text);
  REQUIRE(entry);
  CHECK(entry->sort_key == "ballast");
  CHECK(entry->version == "2.0");
  CHECK(entry->linux_path == "/ballast/2.0/vmlinuz");
  CHECK(entry->initrd_paths == std::vector<std::string>{"/ballast/2.0/initrd.img"});
  CHECK(entry->options == "root=UUID=f00 rootflags=subvol=@ballast/deploy/2.0 ro ballast.version=2.0");

  auto again = control->install(host.spec("2.0", 0));
  REQUIRE(!again);
  CHECK(again.error().code == "boot.exists");
  CHECK(control->install(host.spec("3", 7)));
  CHECK(control->entries()->front().id == "ballast-3+7-0.conf");
}

TEST_CASE("a failed install leaves no entry and no kernel directory", "[boot][systemd-boot]") {
  DirHost host;
  auto control = make_systemd_boot_control(host.paths);
  auto spec = host.spec("2", 0);
  spec.initrd_path = path_join(host.root, "no-such-initrd");
  auto st = control->install(spec);
  REQUIRE(!st);
  CHECK(st.error().code == "boot.read-kernel");
  CHECK(!path_exists(path_join(host.paths.esp_path, "ballast/2")));
  CHECK(host.entry_files().empty());

  auto two_lines = host.spec("2", 0);
  two_lines.options = "ro\nquiet";
  CHECK(control->install(two_lines).error().code == "boot.usage");
  CHECK(host.entry_files().empty());
}

TEST_CASE("a default naming a ballast entry is removed when a trial entry is installed", "[boot][systemd-boot]") {
  DirHost host;
  auto control = make_systemd_boot_control(host.paths);
  REQUIRE(control->install(host.spec("1", 0)));
  REQUIRE(control->bless("1"_v));
  REQUIRE(write_file_atomic(path_join(host.paths.esp_path, "loader/loader.conf"), "timeout 3\ndefault ballast-*\neditor no\n"));
  auto efi = make_efivarfs(host.paths.efivars_path);
  REQUIRE(efi->write_string("LoaderEntryDefault", "ballast-1.conf"));
  REQUIRE(control->install(host.spec("2", 0)));
  CHECK(*read_file(path_join(host.paths.esp_path, "loader/loader.conf")) == "timeout 3\neditor no\n");
  CHECK(!efi->read_string("LoaderEntryDefault")->has_value());
  BootSimulator sim(host.paths);
  CHECK(sim.reboot()->version.str() == "2");
}

TEST_CASE("a default naming another OS's entry is left alone", "[boot][systemd-boot]") {
  DirHost host;
  auto control = make_systemd_boot_control(host.paths);
  REQUIRE(make_dirs(path_join(host.paths.esp_path, "loader")));
  REQUIRE(write_file_atomic(path_join(host.paths.esp_path, "loader/loader.conf"), "default windows.conf\n"));
  REQUIRE(control->install(host.spec("1", 0)));
  CHECK(*read_file(path_join(host.paths.esp_path, "loader/loader.conf")) == "default windows.conf\n");
}

TEST_CASE("the booted version comes from the command line and must agree with LoaderEntrySelected", "[boot][systemd-boot]") {
  DirHost host;
  auto control = make_systemd_boot_control(host.paths);
  auto efi = make_efivarfs(host.paths.efivars_path);
  CHECK(control->booted_version().error().code == "boot.unknown-booted");
  REQUIRE(write_file_atomic(host.paths.cmdline_path, "root=UUID=x ballast.version=2 quiet\n"));
  CHECK(*control->booted_version() == "2"_v);
  REQUIRE(efi->write_string("LoaderEntrySelected", "ballast-2+3-0.conf"));
  CHECK(*control->booted_version() == "2"_v);
  REQUIRE(efi->write_string("LoaderEntrySelected", "ballast-1.conf"));
  CHECK(control->booted_version().error().code == "boot.booted-mismatch");
  REQUIRE(write_file_atomic(host.paths.cmdline_path, "root=UUID=x\n"));
  CHECK(*control->booted_version() == "1"_v);  // the loader's word alone
}

TEST_CASE("a rename interrupted midway with both files present is recovered on the next run", "[boot][systemd-boot]") {
  DirHost host;
  auto control = make_systemd_boot_control(host.paths);
  REQUIRE(control->install(host.spec("1", 0)));
  REQUIRE(control->bless("1"_v));
  REQUIRE(control->install(host.spec("2", 0)));
  std::string counted = path_join(host.entries_dir(), "ballast-2+3-0.conf");
  std::string blessed = path_join(host.entries_dir(), "ballast-2.conf");
  std::string journal = path_join(host.paths.esp_path, "ballast/rename-pending");

  SECTION("a bless cut short after the new name appeared") {
    // FAT writes the new directory entry before it drops the old one.
    REQUIRE(::link(counted.c_str(), blessed.c_str()) == 0);
    REQUIRE(write_file_atomic(journal, "ballast-2+3-0.conf\nballast-2.conf\n"));
    auto listed = control->entries();
    REQUIRE(listed);
    REQUIRE(listed->size() == 2);
    CHECK(testing::entry_of(*control, "2").state == EntryState::good);  // read-only view already resolves
    CHECK(path_exists(counted));                                        // ... without writing
    REQUIRE(control->mark_bad("1"_v));                                    // any change repairs first
    CHECK(!path_exists(counted));
    CHECK(path_exists(blessed));
    CHECK(!path_exists(journal));
  }
  SECTION("a bless cut short before the rename") {
    REQUIRE(write_file_atomic(journal, "ballast-2+3-0.conf\nballast-2.conf\n"));
    REQUIRE(control->prefer("2"_v));
    CHECK(!path_exists(counted));
    CHECK(testing::entry_of(*control, "2").state == EntryState::good);
  }
  SECTION("the loader's own count-down cut short, without a journal") {
    std::string decremented = path_join(host.entries_dir(), "ballast-2+2-1.conf");
    REQUIRE(::link(counted.c_str(), decremented.c_str()) == 0);
    auto e = testing::entry_of(*control, "2");
    CHECK(e.tries_left == 2);
    CHECK(e.tries_done == 1);
    REQUIRE(control->bless("2"_v));
    CHECK(host.entry_files() == std::vector<std::string>{"ballast-1.conf", "ballast-2.conf"});
  }
  SECTION("a counted and an uncounted name without a journal keep the counted one") {
    REQUIRE(::link(counted.c_str(), blessed.c_str()) == 0);
    CHECK(testing::entry_of(*control, "2").state == EntryState::indeterminate);
    REQUIRE(control->set_oneshot("1"_v));
    CHECK(host.entry_files() == std::vector<std::string>{"ballast-1.conf", "ballast-2+3-0.conf"});
  }
}

TEST_CASE("remove deletes the entry and its kernel files but never the booted version", "[boot][systemd-boot]") {
  DirHost host;
  auto control = make_systemd_boot_control(host.paths);
  REQUIRE(control->install(host.spec("1", 0)));
  REQUIRE(control->install(host.spec("2", 0)));
  REQUIRE(control->bless("1"_v));
  BootSimulator sim(host.paths);
  REQUIRE(sim.reboot()->version.str() == "2");
  REQUIRE(control->set_oneshot("1"_v));
  CHECK(control->remove("2"_v).error().code == "boot.busy");
  REQUIRE(control->remove("1"_v));
  CHECK(host.entry_files() == std::vector<std::string>{"ballast-2+2-1.conf"});
  CHECK(!path_exists(path_join(host.paths.esp_path, "ballast/1")));
  CHECK(!make_efivarfs(host.paths.efivars_path)->read_string("LoaderEntryOneShot")->has_value());
  CHECK(control->remove("1"_v).error().code == "boot.no-entry");
}

TEST_CASE("the boot simulator records the selected name before the count-down and the count path", "[boot][simulator]") {
  DirHost host;
  auto control = make_systemd_boot_control(host.paths);
  REQUIRE(control->install(host.spec("2", 3)));
  BootSimulator sim(host.paths);
  auto boot = sim.reboot();
  REQUIRE(boot);
  CHECK(boot->entry_id == "ballast-2+3-0.conf");
  auto efi = make_efivarfs(host.paths.efivars_path);
  CHECK(efi->read_string("LoaderEntrySelected")->value() == "ballast-2+3-0.conf");
  CHECK(efi->read_string("LoaderBootCountPath")->value() == "\\loader\\entries\\ballast-2+2-1.conf");
  CHECK(read_file(host.paths.cmdline_path)->find("ballast.version=2") != std::string::npos);
}
