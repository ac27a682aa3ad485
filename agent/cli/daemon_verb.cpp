// `ballast daemon`: the agent as units/ballast.service runs it (Type=notify). It wires the
// daemon's ports from the configuration. The reboot gate, rebooter and reporter here are
// stand-ins until agent/reboot and agent/report provide the real ones.
#include <iostream>

#include "agent/cli/host_options.hpp"
#include "agent/cli/verb.hpp"
#include "agent/daemon/daemon.hpp"
#include "agent/daemon/ports.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "common/process.hpp"

namespace ballast::cli {
namespace {

struct DaemonArgs {
  bool once = false;
  std::string reboot_required = "/run/reboot-required";
};

// immediate: always; manual (and, until agent/reboot lands, the other strategies): never.
class StrategyGate final : public agent::RebootGate {
 public:
  explicit StrategyGate(bool immediate) : immediate_(immediate) {}
  Result<bool> may_reboot_now() override { return immediate_; }
  Status steady_state() override { return ok(); }

 private:
  bool immediate_;
};

// Writes the kured flag file, reboots through systemctl.
class SystemctlRebooter final : public agent::Rebooter {
 public:
  explicit SystemctlRebooter(std::string flag) : flag_(std::move(flag)) {}
  Status announce(const std::string& version) override {
    return write_file_atomic(flag_, "ballast: " + version + " is staged\n", 0644);
  }
  Status reboot() override {
    BALLAST_CHECK(run_checked({"systemctl", "reboot"}));
    return ok();
  }

 private:
  std::string flag_;
};

class LogReporter final : public agent::Reporter {
 public:
  void report(const std::string& type, const nlohmann::json& data) override {
    log::info("event " + type + ": " + data.dump(), {{"BALLAST_EVENT", type}});
  }
};

int daemon(const GlobalOptions& g, const DaemonArgs& a) {
  auto cfg = g.load_config();
  if (!cfg) return report_error(cfg.error());
  if (cfg->get_string("repository.url").empty())
    return report_error(Error{"config.missing", "repository.url is not set", 0, {}});
  std::string root = path_exists("/etc/ballast/root.json") ? "/etc/ballast/root.json" : cfg->get_string("repository.root");
  auto wariness = agent::node_wariness(*cfg);
  if (!wariness) return report_error(wariness.error());
  auto boot = make_boot_control(g, *cfg);

  agent::Daemon* daemon_ptr = nullptr;  // set once the daemon exists; progress arrives only after run starts
  agent::HostReleaseSourceOptions so;
  so.request = release_request(g, *cfg, cfg->get_string("repository.url"), root);
  so.host = host_layout(g);
  so.state_dir = g.state_dir;
  so.wariness = *wariness;
  so.keep = static_cast<int>(cfg->get_int("retention.keep"));
  so.on_progress = [&daemon_ptr](const agent::Progress& p) {
    if (daemon_ptr) daemon_ptr->report_progress(p);
  };
  SystemClock clock;
  agent::HostReleaseSource source(std::move(so), *boot, clock);
  const std::string& strategy = cfg->get_string("reboot.strategy");
  if (strategy != "immediate" && strategy != "manual")
    log::warning("reboot.strategy " + strategy + " is not available in this build: rebooting only on request");
  StrategyGate gate(strategy == "immediate");
  SystemctlRebooter rebooter(a.reboot_required);
  agent::HostHealthChecker health(agent::health_options(*cfg));
  LogReporter reporter;

  agent::DaemonOptions opts;
  opts.state_dir = g.state_dir;
  opts.check_interval = cfg->get_duration("update.check_interval");
  opts.check_jitter = cfg->get_duration("update.check_jitter");
  opts.auto_apply = cfg->get_bool("update.auto_apply");
  auto d = agent::Daemon::open(opts, agent::DaemonPorts{*boot, source, gate, rebooter, health, reporter, clock});
  if (!d) return report_error(d.error());
  daemon_ptr = d->get();
  if (a.once) {
    auto passed = (*d)->run_flow();
    if (!passed) return report_error(passed.error());
    auto s = (*d)->status();
    if (!s) return report_error(s.error());
    if (g.json) {
      print_json(agent::to_json(*s));
    } else {
      std::cout << "state " << s->state;
      if (!s->last_error.empty()) std::cout << " (" << s->last_error << ")";
      std::cout << "\n";
    }
    return s->state == "failed" ? 1 : 0;
  }
  if (auto st = (*d)->run(); !st) return report_error(st.error());
  return 0;
}

void setup(VerbContext& ctx) {
  static DaemonArgs args;
  auto* cmd = ctx.app.add_subcommand(
      "daemon", "Run the update agent: check on a jittered timer, stage, reboot per reboot.strategy, verify\n"
                "health after the reboot, bless or roll back (what ballast.service runs)");
  cmd->add_flag("--once", args.once, "Run the update flow until it rests, print the state and exit");
  cmd->add_option("--reboot-required-path", args.reboot_required, "Flag file written when an update is staged (kured)")
      ->capture_default_str();
  cmd->callback([&ctx] { ctx.action = [&g = ctx.global] { return daemon(g, args); }; });
}

BALLAST_REGISTER_VERB(300, setup);

}  // namespace
}  // namespace ballast::cli
