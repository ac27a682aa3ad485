// `ballast boot …`: the boot entries on the ESP and the loader's EFI variables, by hand.
#include <iostream>

#include "agent/cli/host_options.hpp"
#include "agent/cli/verb.hpp"
#include "agent/host/loader.hpp"
#include "boot/boot_control.hpp"
#include "boot/boot_simulator.hpp"

namespace ballast::cli {
namespace {

struct BootOptions {
  std::string version;  // the VERSION argument as given; parsed by version_arg()
  boot::KernelSpec spec;
};

// The VERSION argument, parsed here once ("version.invalid"); nullopt when none was given.
Result<std::optional<Version>> version_arg(const BootOptions& o) {
  if (o.version.empty()) return std::optional<Version>();
  return std::optional<Version>(BALLAST_TRY(Version::parse(o.version)));
}

Result<std::unique_ptr<boot::BootControl>> open_control(const GlobalOptions& g, const BootOptions&) {
  auto cfg = BALLAST_TRY(g.load_config());
  return make_boot_control(g, cfg);
}

nlohmann::json entry_json(const boot::BootEntry& e, bool booted) {
  return {{"version", e.version.str()}, {"id", e.id},
          {"state", boot::to_string(e.state)},
          {"tries_left", e.has_counter ? nlohmann::json(e.tries_left) : nlohmann::json()},
          {"tries_done", e.has_counter ? nlohmann::json(e.tries_done) : nlohmann::json()},
          {"title", e.title},           {"linux", e.linux_path},
          {"initrd", e.initrd_path},    {"options", e.options},
          {"booted", booted}};
}

int list(const GlobalOptions& g, const BootOptions& o) {
  auto control = open_control(g, o);
  if (!control) return report_error(control.error());
  auto entries = (*control)->entries();
  if (!entries) return report_error(entries.error());
  auto booted = (*control)->booted_version();
  auto is_booted = [&](const boot::BootEntry& e) { return booted && e.version == *booted; };
  if (g.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : *entries) out.push_back(entry_json(e, is_booted(e)));
    print_json(out);
    return 0;
  }
  if (entries->empty()) {
    std::cout << "no ballast boot entries on " << g.esp_path << "\n";
    return 0;
  }
  // Boot order: the loader tries the first line first.
  for (const auto& e : *entries) {
    std::string tries = e.has_counter ? std::to_string(e.tries_left) + " left, " + std::to_string(e.tries_done) + " done" : "";
    std::cout << (is_booted(e) ? "* " : "  ") << e.version.str() << "  " << boot::to_string(e.state)
              << (tries.empty() ? "" : " (" + tries + ")") << "  " << e.id << "\n";
  }
  return 0;
}

// Sandbox hosts and tests: what systemd-boot would do at the next boot, done on the directories.
int simulate_reboot(const GlobalOptions& g) {
  if (!sandbox_boot_paths(g)) {
    std::fprintf(stderr, "ballast: simulate-reboot is for sandbox hosts: give --esp-path, --efivars-path and --cmdline-path\n");
    return 2;
  }
  auto cfg = g.load_config();
  if (!cfg) return report_error(cfg.error());
  auto booted = boot::BootSimulator(boot_paths(g, *cfg)).reboot();
  if (!booted) return report_error(booted.error());
  if (g.json) print_json({{"entry", booted->entry_id}, {"version", booted->version.str()}});
  else std::cout << "booted " << booted->version.str() << " (entry " << booted->entry_id << ")\n";
  return 0;
}

// The booted release's signed systemd-boot onto the ESP.
int update_loader(const GlobalOptions& g, const BootOptions& o) {
  auto lock = g.lock_host("boot update-loader");
  if (!lock) return report_error(lock.error());
  auto control = open_control(g, o);
  if (!control) return report_error(control.error());
  auto booted = (*control)->booted_version();
  if (!booted) return report_error(booted.error());
  auto layout = host_layout(g);
  auto done = host::update_loader(layout, **control, *booted);
  if (!done) return report_error(done.error());
  const std::string source = host::release_loader_path(layout, *booted);
  if (g.json) {
    nlohmann::json paths = nlohmann::json::array();
    for (const char* p : boot::kSystemdBootPaths) paths.push_back(p);
    print_json({{"result", boot::to_string(*done)}, {"version", booted->str()}, {"source", source}, {"paths", paths}});
    return 0;
  }
  switch (*done) {
    case boot::LoaderUpdate::updated: std::cout << "updated: the ESP's systemd-boot is now release " << booted->str() << "'s\n"; break;
    case boot::LoaderUpdate::unchanged: std::cout << "unchanged: the ESP already has release " << booted->str() << "'s loader\n"; break;
    case boot::LoaderUpdate::not_shipped: std::cout << "not shipped: release " << booted->str() << " carries no loader at " << source << "\n"; break;
  }
  return 0;
}

// Runs one change under the host lock and prints nothing on success (exit status tells).
int change(const GlobalOptions& g, const BootOptions& o, const std::string& verb,
           const std::function<Status(boot::BootControl&)>& op) {
  auto lock = g.lock_host("boot " + verb);
  if (!lock) return report_error(lock.error());
  auto control = open_control(g, o);
  if (!control) return report_error(control.error());
  auto st = op(**control);
  if (!st) return report_error(st.error());
  return 0;
}

void setup(VerbContext& ctx) {
  static BootOptions o;
  auto* boot = ctx.app.add_subcommand("boot", "Manage boot entries, boot counting and the loader's defaults");
  boot->require_subcommand(1);
  boot->fallthrough();  // global options (--esp-path, --cmdline-path, …) may follow the action
  auto& g = ctx.global;
  auto& action = ctx.action;

  auto* add = boot->add_subcommand("add", "Copy a kernel (+ initrd) to the ESP and add a counted trial entry");
  add->add_option("VERSION", o.version, "Version of the entry")->required();
  add->add_option("--kernel", o.spec.kernel_path, "Kernel image to copy")->required()->check(CLI::ExistingFile);
  add->add_option("--initrd", o.spec.initrd_path, "Initrd to copy")->check(CLI::ExistingFile);
  add->add_option("--options", o.spec.options, "Kernel command line (ballast.version= is appended)");
  add->add_option("--tries", o.spec.tries, "Boot attempts before the entry counts as bad (default: boot.tries)")
      ->check(CLI::Range(1, 99));
  add->add_option("--title", o.spec.title, "Menu title (default \"ballast VERSION\")");
  add->callback([&] {
    action = [&] {
      return change(g, o, "add", [](boot::BootControl& c) -> Status {
        o.spec.version = *BALLAST_TRY(version_arg(o));
        return c.install(o.spec);
      });
    };
  });

  auto* ls = boot->add_subcommand("list", "List ballast's entries in boot order with their boot-counting state");
  ls->add_flag("--json", g.json, "Print machine-readable JSON");
  ls->callback([&] { action = [&] { return list(g, o); }; });

  auto* bless = boot->add_subcommand("bless", "Mark an entry good: drop its boot counter");
  bless->add_option("VERSION", o.version, "Version to bless (default: the booted one)");
  bless->callback([&] {
    action = [&] {
      return change(g, o, "bless", [](boot::BootControl& c) -> Status {
        auto v = BALLAST_TRY(version_arg(o));
        return c.bless(v ? *v : BALLAST_TRY(c.booted_version()));
      });
    };
  });

  auto* sim = boot->add_subcommand(
      "simulate-reboot", "Boot like systemd-boot on a directory ESP: count down, set the loader's EFI "
                         "variables, write the entry's options to the --cmdline-path file (for sandboxes and tests)");
  sim->add_flag("--json", g.json, "Print machine-readable JSON");
  sim->callback([&] { action = [&] { return simulate_reboot(g); }; });

  auto* loader = boot->add_subcommand(
      "update-loader", "Replace systemd-boot on the ESP (EFI/systemd/systemd-bootx64.efi, EFI/BOOT/BOOTX64.EFI) with the "
                       "booted release's signed copy, atomically and only when it differs; an unsigned loader is refused "
                       "while Secure Boot is enabled");
  loader->add_flag("--json", g.json, "Print machine-readable JSON");
  loader->callback([&] { action = [&] { return update_loader(g, o); }; });

  struct Simple {
    const char* name;
    const char* help;
    Status (boot::BootControl::*op)(const Version&);
  };
  for (const Simple& s : {Simple{"mark-bad", "Mark an entry bad (+0): the loader falls back past it", &boot::BootControl::mark_bad},
                          Simple{"set-default", "Boot VERSION next and by default (entries before it are marked bad)",
                                 &boot::BootControl::prefer},
                          Simple{"oneshot", "Boot VERSION on the next boot only", &boot::BootControl::set_oneshot},
                          Simple{"remove", "Remove an entry and its kernel files", &boot::BootControl::remove}}) {
    auto* cmd = boot->add_subcommand(s.name, s.help);
    cmd->add_option("VERSION", o.version, "Version of the entry")->required();
    auto op = s.op;
    std::string name = s.name;
    cmd->callback([&, op, name] {
      action = [&, op, name] {
        return change(g, o, name, [op](boot::BootControl& c) -> Status { return (c.*op)(*BALLAST_TRY(version_arg(o))); });
      };
    });
  }
}

BALLAST_REGISTER_VERB(300, setup);

}  // namespace
}  // namespace ballast::cli
