#include <algorithm>

#include "boot/grubenv.hpp"
#include "common/version.hpp"
#include "common/file.hpp"
#include "tests/unit/boot/scenarios.hpp"
#include "tests/version_literal.hpp"

using namespace ballast;
using namespace ballast::boot;

namespace {
using namespace ballast::version_literals;

// What GRUB does at boot with Fedora's grub.cfg and blscfg: the menu is every BLS entry, newest
// version first; next_entry wins once; else saved_entry; Fedora's fallback counting counts
// boot_counter down while boot_success is 0 and boots menu entry 1 once it hits 0.
struct GrubSimulator {
  BootPaths paths;
  std::string grubenv() const { return path_join(paths.esp_path, "grub/grubenv"); }

  Result<std::string> reboot() const {
    std::string dir = path_join(paths.esp_path, "loader/entries");
    struct Menu {
      std::string id, version, options;
    };
    std::vector<Menu> menu;
    for (const auto& name : BALLAST_TRY(list_dir(dir))) {
      if (name.front() == '.' || name.size() < 6 || name.substr(name.size() - 5) != ".conf") continue;
      auto e = BALLAST_TRY(parse_entry(BALLAST_TRY(read_file(path_join(dir, name)))));
      menu.push_back({name.substr(0, name.size() - 5), e.version, e.options});
    }
    std::stable_sort(menu.begin(), menu.end(),
                     [](const Menu& a, const Menu& b) { return compare_uapi_versions(a.version, b.version) > 0; });
    auto env = BALLAST_TRY(read_grubenv(grubenv()));
    std::string def = env["saved_entry"];
    if (!env["next_entry"].empty()) {
      def = env["next_entry"];
      env.erase("next_entry");
    }
    size_t pick = 0;
    for (size_t i = 0; i < menu.size(); ++i)
      if (menu[i].id == def) pick = i;
    if (env.count("boot_counter") && env["boot_success"] == "0") {
      if (env["boot_counter"] == "0" || env["boot_counter"] == "-1") {
        pick = 1;
        env["boot_counter"] = "-1";
      } else {
        env["boot_counter"] = std::to_string(std::stoi(env["boot_counter"]) - 1);
      }
    }
    env["boot_success"] = "0";
    BALLAST_CHECK(write_grubenv(grubenv(), env));
    if (pick >= menu.size()) return fail("test.no-entry", "nothing to boot");
    BALLAST_CHECK(write_file_atomic(paths.cmdline_path, menu[pick].options + "\n"));
    return menu[pick].version;
  }
};

struct GrubHost {
  std::string root = *make_temp_dir("grub-host");
  BootPaths paths;
  GrubHost() {
    paths.esp_path = path_join(root, "boot");
    paths.efivars_path = path_join(root, "efivars");
    paths.cmdline_path = path_join(root, "cmdline");
    REQUIRE(make_dirs(path_join(paths.esp_path, "grub")));
  }
  ~GrubHost() { (void)remove_tree(root); }
  KernelSpec spec(const std::string& v, int tries) {
    std::string k = path_join(root, "vmlinuz-" + v);
    REQUIRE(write_file_atomic(k, "kernel " + v));
    return KernelSpec{make_version(v), k, "", "ro", "", tries};
  }
};

}  // namespace

TEST_CASE("the GRUB backend follows the boot-counting scenarios under Fedora's grub.cfg rules", "[boot][grub]") {
  testing::run_all_scenarios([](const std::function<void(testing::Rig&)>& scenario) {
    GrubHost host;
    auto control = make_grub_control(host.paths);
    GrubSimulator grub{host.paths};
    testing::Rig rig{*control,
                     [&]() -> Result<std::string> {
                       BALLAST_TRY(grub.reboot());
                       return BALLAST_TRY(control->booted_version()).str();
                     },
                     [&](const std::string& v, int t) { return host.spec(v, t); }};
    scenario(rig);
  });
}

TEST_CASE("the GRUB backend points saved_entry and boot_counter at the trial and folds GRUB's count back",
          "[boot][grub]") {
  GrubHost host;
  auto control = make_grub_control(host.paths);
  GrubSimulator grub{host.paths};
  REQUIRE(control->install(host.spec("1", 0)));
  REQUIRE(control->bless("1"_v));
  auto env = *read_grubenv(grub.grubenv());
  CHECK(env["saved_entry"] == "ballast-1");
  CHECK(env.count("boot_counter") == 0);
  REQUIRE(control->install(host.spec("2", 3)));
  env = *read_grubenv(grub.grubenv());
  CHECK(env["saved_entry"] == "ballast-2+3-0");
  CHECK(env["boot_counter"] == "3");
  CHECK(env["boot_success"] == "0");
  REQUIRE(grub.reboot());
  auto e = testing::entry_of(*control, "2");
  CHECK(e.tries_left == 2);
  CHECK(e.tries_done == 1);
  REQUIRE(control->set_oneshot("1"_v));  // any change folds GRUB's count into the file name
  CHECK(path_exists(path_join(host.paths.esp_path, "loader/entries/ballast-2+2-1.conf")));
  env = *read_grubenv(grub.grubenv());
  CHECK(env["saved_entry"] == "ballast-2+2-1");
  CHECK(env["next_entry"] == "ballast-1");
  CHECK(env["boot_counter"] == "2");
}
