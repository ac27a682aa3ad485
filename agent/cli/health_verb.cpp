// `ballast health`: run the health checks now and print every result. Exit 0 healthy, 1 not.
// With --npd: Node Problem Detector's custom-plugin protocol (agent/kubernetes/npd.hpp).
#include <iostream>

#include "agent/cli/host_options.hpp"
#include "agent/cli/verb.hpp"
#include "agent/health.hpp"
#include "agent/kubernetes/npd.hpp"
#include "agent/measured_boot.hpp"
#include "boot/tpm.hpp"
#include "common/duration.hpp"
#include "common/file.hpp"

namespace ballast::cli {
namespace {

struct HealthArgs {
  std::vector<std::string> dirs;
  std::string timeout;
  bool no_failed_units = false;
  bool npd = false;
};

// The flow record as NPD's plugin reads it: none yet is a host that never updated.
std::optional<nlohmann::json> flow_record(const std::string& state_dir) {
  auto text = read_file(path_join(state_dir, "flow.json"), 1 << 20);
  if (!text) return text.error().code == "io.not-found" ? std::optional(nlohmann::json::object()) : std::nullopt;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  return j.is_object() ? std::optional(j) : std::nullopt;
}

int health(const GlobalOptions& g, const HealthArgs& a) {
  auto cfg = g.load_config();
  if (!cfg) return report_error(cfg.error());
  agent::HealthOptions o;
  if (!a.dirs.empty()) o.dirs = a.dirs;
  o.timeout = cfg->get_duration("health.check_timeout");
  if (!a.timeout.empty()) {
    auto t = parse_duration(a.timeout);
    if (!t) return report_error(t.error());
    o.timeout = *t;
  }
  o.check_failed_units = cfg->get_bool("health.check_failed_units") && !a.no_failed_units;
  auto r = agent::run_health_checks(o);
  // The booted release's measured boot, as the daemon checks it: ballast-health.service runs this
  // verb before the boot is blessed, so a wrong PCR 11 must fail here too. A host that booted no
  // ballast release has nothing published to compare with.
  if (r) {
    if (auto booted = make_boot_control(g, *cfg)->booted_version()) {
      auto tpm = boot::make_sysfs_tpm(g.tpm_path);
      if (auto added = agent::add_measured_boot_check(*r, *tpm, g.state_dir, *booted); !added)
        r = tl::unexpected(added.error());
    }
  }
  if (a.npd) {
    agent::kubernetes::RepositoryReach reach{value_if_ok(agent::load_repository_contact(g.state_dir)),
                                             std::chrono::system_clock::now(),
                                             cfg->get_duration("health.repository_unreachable_after")};
    auto verdict = agent::kubernetes::npd_verdict(flow_record(g.state_dir), value_if_ok(r), reach);
    std::cout << verdict.message << "\n";
    return verdict.exit_code;
  }
  if (!r) return report_error(r.error());
  if (g.json) {
    print_json(agent::health_to_json(*r));
  } else {
    for (const auto& c : r->checks) {
      std::cout << (c.passed ? "pass " : c.required ? "FAIL " : "warn ") << c.name << " ("
                << (c.timed_out ? "timed out" : "exit " + std::to_string(c.exit_code)) << ", " << c.duration.count() << " ms)\n";
      if (!c.passed && !c.output.empty()) std::cout << "     " << c.output << (c.output.back() == '\n' ? "" : "\n");
    }
    std::cout << (r->healthy ? "healthy" : "unhealthy") << "\n";
  }
  return r->healthy ? 0 : 1;
}

void setup(VerbContext& ctx) {
  static HealthArgs args;
  auto* cmd = ctx.app.add_subcommand(
      "health", "Run the health checks (health.d/required and wanted, failed units); exit 0 when healthy");
  cmd->add_option("--dir", args.dirs,
                  "Health directory holding required/ and wanted/; repeatable, later ones win\n"
                  "(default /usr/lib/ballast/health.d, /etc/ballast/health.d)")
      ->allow_extra_args(false);
  cmd->add_option("--timeout", args.timeout, "Time limit per check (default: health.check_timeout)");
  cmd->add_flag("--no-failed-units", args.no_failed_units, "Do not count failed systemd units");
  cmd->add_flag("--npd", args.npd,
                "Node Problem Detector custom plugin: one line, exit 0 no problem, 1 a failed update, a rollback,\n"
                "a repository unreachable for longer than health.repository_unreachable_after\n"
                "or a failing health check, 2 unknown");
  cmd->callback([&ctx] { ctx.action = [&g = ctx.global] { return health(g, args); }; });
}

BALLAST_REGISTER_VERB(200, setup);

}  // namespace
}  // namespace ballast::cli
