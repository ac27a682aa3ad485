#include "agent/cli/host_options.hpp"

#include "common/file.hpp"

namespace ballast::cli {

boot::BootPaths boot_paths(const GlobalOptions& g, const Config& cfg) {
  boot::BootPaths p;
  p.esp_path = g.esp_path;
  p.efivars_path = g.efivars_path;
  p.cmdline_path = g.cmdline_path;
  p.default_tries = static_cast<int>(cfg.get_int("boot.tries"));
  return p;
}

std::unique_ptr<boot::BootControl> make_boot_control(const GlobalOptions& g, const Config& cfg) {
  auto paths = boot_paths(g, cfg);
  if (cfg.get_string("boot.loader") == "grub") return boot::make_grub_control(paths);
  return boot::make_systemd_boot_control(paths);
}

}  // namespace ballast::cli
