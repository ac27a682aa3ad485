// Host verbs: `ballast stage` (stage a release from a local send stream: the transaction the
// agent runs after fetching) and `ballast status` (the running agent's state when it answers on
// the bus; otherwise the booted, staged and rollback versions read from the host).
#include <sys/stat.h>

#include <iostream>

#include "agent/cli/host_options.hpp"
#include "agent/cli/verb.hpp"
#include "agent/cli/cli_agent.hpp"
#include "agent/dbus/view.hpp"
#include "agent/host/retention.hpp"
#include "agent/host/stage.hpp"
#include "agent/host/status.hpp"
#include "agent/measured_boot.hpp"

namespace ballast::cli {
namespace {

struct StageArgs {
  std::string version;
  std::string stream = "-";
  int tries = 0;
  bool no_retention = false;
};

int stage(const GlobalOptions& g, const StageArgs& a) {
  auto lock = g.lock_host("stage");
  if (!lock) return report_error(lock.error());
  auto cfg = g.load_config();
  if (!cfg) return report_error(cfg.error());
  auto boot = make_boot_control(g, *cfg);
  auto booted = boot->booted_version();
  auto version = Version::parse(a.version);
  if (!version) return report_error(version.error());
  host::StageContext ctx{host_layout(g), *boot, g.state_dir, value_if_ok(booted)};
  host::StageRequest req;
  req.version = *version;
  req.tries = a.tries;
  auto type = entry_type(*cfg);
  if (!type) return report_error(type.error());
  req.entry_type = *type;
  // A stream file's size is what receiving it needs; a pipe's is unknown until it has been read.
  if (struct stat st {}; a.stream != "-" && ::stat(a.stream.c_str(), &st) == 0 && S_ISREG(st.st_mode))
    req.needed_bytes = static_cast<uint64_t>(st.st_size);
  req.open_stream = [&]() -> Result<std::unique_ptr<ByteSource>> {
    if (a.stream == "-") return std::unique_ptr<ByteSource>(new FdByteSource(0));
    return open_file_source(a.stream);
  };
  auto r = host::stage_release(ctx, req);
  if (!r) return report_error(r.error());
  if (!a.no_retention) {
    if (auto st = host::retain(ctx.host, *boot, ctx.booted_version, static_cast<int>(cfg->get_int("retention.keep"))); !st)
      return report_error(st.error());
  }
  if (g.json) {
    print_json({{"version", r->version.str()}, {"kernelVersion", r->kernel_version}, {"options", r->entry_options},
                {"resumed", r->resumed}});
  } else {
    std::cout << "staged " << r->version.str() << " (kernel " << r->kernel_version << ") with a trial boot entry\n";
    if (!r->resumed.empty()) {
      std::cout << "resumed: already complete:";
      for (const auto& s : r->resumed) std::cout << " " << s;
      std::cout << "\n";
    }
  }
  return 0;
}

// The daemon's view: its flow state, versions and progress. Empty when it is not running.
Result<std::optional<agent::AgentStatus>> daemon_status(const std::string& bus_address) {
  auto client = connect_agent(bus_address);
  Result<agent::AgentStatus> s = client ? (*client)->status() : tl::unexpected<Error>(client.error());
  if (s) return std::optional<agent::AgentStatus>(std::move(*s));
  if (agent::dbus::is_not_running(s.error())) return std::optional<agent::AgentStatus>();
  return tl::unexpected<Error>(s.error());
}

void print_agent_status(const GlobalOptions& g, const agent::AgentStatus& s) {
  if (g.json) {
    auto j = agent::to_json(s);
    j["daemon"] = true;
    print_json(j);
    return;
  }
  if (s.boot) std::cout << agent::boot_security_text(*s.boot);
  auto or_none = [](const std::string& v) { return v.empty() ? std::string("none") : v; };
  std::cout << "state:   " << s.state << "\n"
            << "booted:  " << or_none(s.booted) << "\n"
            << "staged:  " << or_none(s.staged) << "\n";
  if (!s.target.empty()) std::cout << "target:  " << s.target << "\n";
  if (!s.pinned.empty()) std::cout << "pinned:  " << s.pinned << "\n";
  if (s.state == "staging") std::cout << "progress: " << agent::dbus::format_progress(s.progress, false) << "\n";
  if (!s.last_error.empty()) std::cout << "last error: " << s.last_error << "\n";
  if (!s.reboot_hold.empty()) std::cout << "reboot:  " << s.reboot_hold << "\n";
  if (s.dropped_events > 0) std::cout << "dropped reports: " << s.dropped_events << "\n";
}

int status(const GlobalOptions& g, const std::string& bus_address) {
  auto live = daemon_status(bus_address);
  if (!live) return report_error(live.error());
  auto cfg = g.load_config();
  if (!cfg) return report_error(cfg.error());
  auto boot = make_boot_control(g, *cfg);
  // How the host booted is read here, from the host, whether or not the agent answers.
  auto efi = boot::make_efivarfs(g.efivars_path);
  auto tpm = boot::make_sysfs_tpm(g.tpm_path);
  agent::BootSecurity security = agent::read_boot_security({*efi, *boot, *tpm, g.esp_path, g.state_dir});
  if (*live) {
    (*live)->boot = security;
    print_agent_status(g, **live);
    return 0;
  }
  auto booted = boot->booted_version();
  auto s = host::read_host_status(host_layout(g), *boot, value_if_ok(booted));
  if (!s) return report_error(s.error());
  if (!booted) s->booted_error = booted.error().describe();
  if (g.json) {
    auto j = host::status_to_json(*s);
    agent::add_to_json(j, security);
    print_json(j);
  } else {
    std::cout << host::status_to_text(*s) << agent::boot_security_text(security);
  }
  return 0;
}

void setup(VerbContext& ctx) {
  static StageArgs args;
  auto* st = ctx.app.add_subcommand(
      "stage", "Stage a release from a local send stream: receive it into a slot, deploy it with the booted\n"
               "version's /etc changes, and write a trial boot entry (crash-safe; re-run to resume)");
  st->add_option("--version", args.version, "Release version (the stream's IMAGE_VERSION)")->required();
  st->add_option("-f,--stream", args.stream, "Send stream file, full or a delta from a local slot ('-': stdin)");
  st->add_option("--tries", args.tries, "Boot attempts of the trial entry (default: boot.tries)");
  st->add_flag("--no-retention", args.no_retention, "Keep every older version");
  st->callback([&ctx] { ctx.action = [&g = ctx.global] { return stage(g, args); }; });

  static std::string bus_address;
  auto* status_cmd = ctx.app.add_subcommand(
      "status", "Show the running agent's state, or when it is not running the booted, staged and rollback\n"
                "versions read from the host (read-only)");
  add_bus_address_option(status_cmd, bus_address);
  status_cmd->callback([&ctx] { ctx.action = [&g = ctx.global] { return status(g, bus_address); }; });
}

BALLAST_REGISTER_VERB(100, setup);

}  // namespace
}  // namespace ballast::cli
