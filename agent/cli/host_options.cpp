#include "agent/cli/host_options.hpp"

#include "agent/credentials.hpp"
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

bool sandbox_boot_paths(const GlobalOptions& g) {
  const GlobalOptions machine;
  return g.esp_path != machine.esp_path && g.efivars_path != machine.efivars_path && g.cmdline_path != machine.cmdline_path;
}

std::unique_ptr<boot::BootControl> make_boot_control(const GlobalOptions& g, const Config& cfg) {
  auto paths = boot_paths(g, cfg);
  if (cfg.get_string("boot.loader") == "grub") return boot::make_grub_control(paths);
  return boot::make_systemd_boot_control(paths);
}

Result<host::EntryType> entry_type(const Config& cfg) {
  const std::string type = cfg.get_string("boot.entry_type");
  const bool grub = cfg.get_string("boot.loader") == "grub";
  if (type == "type1" || (type == "auto" && grub)) return host::EntryType::type1;
  if (type == "uki" && grub) return fail("config.entry-type", "boot.entry_type = \"uki\" needs boot.loader = \"systemd-boot\"");
  return type == "uki" ? host::EntryType::uki : host::EntryType::automatic;
}

repository::ReleaseRequest release_request(const GlobalOptions& g, const Config& cfg, std::string repo_url,
                                           std::string root_json) {
  repository::ReleaseRequest r;
  r.repo_url = std::move(repo_url);
  r.root_json = std::move(root_json);
  r.state_dir = g.state_dir;
  r.channel = cfg.get_string("update.channel");
  r.http = agent::repository_http_settings(cfg);
  r.max_metadata_size = static_cast<uint64_t>(cfg.get_int("repository.max_metadata_size"));
  r.parallel = static_cast<unsigned>(cfg.get_int("repository.parallel_fetches"));
  return r;
}

}  // namespace ballast::cli
