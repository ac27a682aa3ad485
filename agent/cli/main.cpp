#include <algorithm>
#include <cstdio>
#include <iostream>

#include "agent/cli/verb.hpp"
#include "common/log.hpp"

namespace ballast::cli {

std::vector<std::pair<int, VerbSetup>>& verb_registry() {
  static std::vector<std::pair<int, VerbSetup>> registry;
  return registry;
}

VerbRegistration::VerbRegistration(int order, VerbSetup setup) { verb_registry().emplace_back(order, setup); }

Result<Config> GlobalOptions::load_config() const {
  return with_context(Config::load(config_dirs.empty() ? default_config_dirs() : config_dirs),
                      "loading configuration");
}

Result<HostLock> GlobalOptions::lock_host(const std::string& verb) const {
  return HostLock::acquire(host_lock_path(state_dir), verb, wait ? HostLock::Mode::wait : HostLock::Mode::fail);
}

int report_error(const Error& e) {
  std::fprintf(stderr, "ballast: %s\n", e.describe().c_str());
  return 1;
}

void print_json(const nlohmann::json& j) { std::cout << j.dump(2) << "\n"; }

namespace {

// CLI11 messages can span lines; the contract is one line.
std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

}  // namespace

int run(int argc, char** argv) {
  CLI::App app{"ballast: the on-host agent and boot manager of an immutable Btrfs-based OS.\n"
               "Stages signed image deltas into read-only subvolumes, boots them on trial with\n"
               "boot counting, and blesses or rolls back on health checks.",
               "ballast"};
  app.set_version_flag("--version", std::string("ballast ") + BALLAST_VERSION);
  app.fallthrough();
  app.require_subcommand(0, 1);
  app.footer("Run 'ballast VERB --help' for a verb's options.\n");

  GlobalOptions global;
  app.add_option("--sysroot", global.sysroot, "Root of the host's Btrfs top level (default /)");
  app.add_option("--esp-path", global.esp_path, "Mount point of the EFI system partition (default /efi)");
  app.add_option("--efivars-path", global.efivars_path, "efivarfs directory (default /sys/firmware/efi/efivars)");
  app.add_option("--state-dir", global.state_dir, "State directory (default /var/lib/ballast)");
  app.add_option("--cmdline-path", global.cmdline_path, "Kernel command line of this boot (default /proc/cmdline)");
  app.add_option("--tpm-path", global.tpm_path,
                 "TPM device directory in sysfs, holding pcr-sha256/<n> (default /sys/class/tpm/tpm0)");
  app.add_option("--config-dir", global.config_dirs,
                 "Configuration drop-in directory; repeatable, replaces the defaults")
      ->allow_extra_args(false);
  app.add_flag("--json", global.json, "Print machine-readable JSON");
  app.add_flag("-v,--verbose", global.verbose, "Log debug messages");
  app.add_flag("--wait", global.wait,
               "A verb that writes the host waits while another ballast process writes it (default: fail at once)");

  VerbAction action;
  VerbContext ctx{app, global, action};
  auto& registry = verb_registry();
  std::stable_sort(registry.begin(), registry.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [order, setup] : registry) setup(ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ExtrasError& e) {
    std::string msg = one_line(e.what());
    if (app.get_subcommands().empty() && argc > 1 && argv[1][0] != '-')
      msg = std::string("unknown verb '") + argv[1] + "'";
    std::fprintf(stderr, "ballast: %s (see 'ballast --help')\n", msg.c_str());
    return 2;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "ballast: %s (see 'ballast --help')\n", one_line(e.what()).c_str());
    return 2;
  }
  if (global.verbose) log::set_min_level(log::Level::debug);
  if (!action) {
    std::cout << app.help();
    return 2;
  }
  return action();
}

}  // namespace ballast::cli

int main(int argc, char** argv) { return ballast::cli::run(argc, argv); }
