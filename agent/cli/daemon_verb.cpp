// `ballast daemon`: the agent as units/ballast.service runs it (Type=notify). It wires the
// daemon's ports from the configuration: the reboot strategy and logind rebooter (agent/reboot),
// the CloudEvents outbox, journal milestones and metrics (agent/report), the D-Bus API (agent/dbus).
// On a sandbox host (--sysroot with a directory ESP and EFI variables) --simulate-reboot stands
// the boot simulator in for logind, and the health checks are those of the booted deployment.
#include <cstdio>
#include <iostream>
#include <optional>
#include <mutex>

#include "agent/cli/host_options.hpp"
#include "agent/cli/verb.hpp"
#include "agent/daemon/daemon.hpp"
#include "agent/daemon/planner.hpp"
#include "agent/daemon/ports.hpp"
#include "agent/dbus/cli_agent.hpp"
#include "agent/dbus/server.hpp"
#include "agent/reboot/gate.hpp"
#include "agent/reboot/rebooter.hpp"
#include "agent/report/journal_events.hpp"
#include "agent/report/metrics.hpp"
#include "agent/report/outbox.hpp"
#include "repository/http.hpp"
#include "common/file.hpp"
#include "common/log.hpp"
#include "common/process.hpp"

namespace ballast::cli {
namespace {

struct DaemonArgs {
  bool once = false;
  bool no_dbus = false;
  bool simulate_reboot = false;
  std::string run_dir = "/run";
  std::string bus_address;
};

// The outbox is written by the flow's worker thread and flushed from the loop: one lock for both.
// The journal records milestones (with their MESSAGE_IDs) on the way in.
class LockedReporter final : public agent::Reporter {
 public:
  explicit LockedReporter(agent::report::Outbox& outbox) : outbox_(outbox), journal_(outbox) {}
  void report(const std::string& type, const nlohmann::json& data) override {
    std::lock_guard lock(mutex_);
    journal_.report(type, data);
  }
  void heartbeat(const agent::AgentStatus& status) {
    std::lock_guard lock(mutex_);
    outbox_.report_heartbeat(status);
  }
  // Sends what is due; returns when to try again (nullopt: nothing pending).
  std::optional<std::chrono::steady_clock::time_point> flush() {
    std::lock_guard lock(mutex_);
    auto r = outbox_.flush();
    if (!r) log::warning("event outbox: " + r.error().describe());
    else if (!r->last_error.empty()) log::warning("event outbox: " + r->last_error + " (" + std::to_string(r->pending) + " pending)");
    return outbox_.next_retry();
  }

 private:
  std::mutex mutex_;
  agent::report::Outbox& outbox_;
  agent::report::JournalingReporter journal_;
};

// Flushes the outbox after every transition (events are reported at transitions) and journals
// the start of an update, which the flow itself does not report.
class ReportingObserver final : public agent::AgentObserver {
 public:
  ReportingObserver(std::function<void()> rearm, std::function<agent::AgentStatus()> status)
      : rearm_(std::move(rearm)), status_(std::move(status)) {}
  void on_transition(const std::string&, const std::string& to) override {
    if (to == "staging") {
      auto s = status_();
      agent::report::journal_update_started(s.target, s.booted);
    }
    rearm_();
  }
  void on_progress(const agent::Progress&) override {}

 private:
  std::function<void()> rearm_;
  std::function<agent::AgentStatus()> status_;
};

uint64_t usec_from_now(std::chrono::steady_clock::time_point at) {
  auto d = at - std::chrono::steady_clock::now();
  if (d < std::chrono::steady_clock::duration::zero()) return 0;
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

int daemon(const GlobalOptions& g, const DaemonArgs& a) {
  if (a.simulate_reboot && !sandbox_boot_paths(g)) {
    std::fprintf(stderr, "ballast: --simulate-reboot is for sandbox hosts: give --esp-path, --efivars-path and --cmdline-path\n");
    return 2;
  }
  auto cfg = g.load_config();
  if (!cfg) return report_error(cfg.error());
  if (a.simulate_reboot && cfg->get_string("boot.loader") != "systemd-boot")
    return report_error(Error{"config.invalid", "--simulate-reboot follows systemd-boot; boot.loader is " +
                                                    cfg->get_string("boot.loader"), 0, {}});
  if (cfg->get_string("repository.url").empty())
    return report_error(Error{"config.missing", "repository.url is not set", 0, {}});
  std::string root = path_exists("/etc/ballast/root.json") ? "/etc/ballast/root.json" : cfg->get_string("repository.root");
  auto node = agent::node_id(*cfg);
  if (!node) return report_error(node.error());
  auto wariness = agent::node_wariness(*cfg);
  if (!wariness) return report_error(wariness.error());
  auto boot = make_boot_control(g, *cfg);
  SystemClock clock;

  agent::Daemon* daemon_ptr = nullptr;  // set once the daemon exists; progress arrives only after run starts
  agent::HostReleaseSourceOptions so;
  so.request = release_request(g, *cfg, cfg->get_string("repository.url"), root);
  so.host = host_layout(g);
  so.state_dir = g.state_dir;
  so.wariness = *wariness;
  so.keep = static_cast<int>(cfg->get_int("retention.keep"));
  auto type = entry_type(*cfg);
  if (!type) return report_error(type.error());
  so.entry_type = *type;
  so.on_progress = [&daemon_ptr](const agent::Progress& p) {
    if (daemon_ptr) daemon_ptr->report_progress(p);
  };
  auto gate_http = repository::make_curl_http_client(so.request.http);
  agent::HostReleaseSource source(std::move(so), *boot, clock);

  auto gate = agent::reboot::make_reboot_gate(*cfg, *gate_http, clock, *node);
  if (!gate) return report_error(gate.error());
  agent::reboot::RebooterOptions ro;
  ro.run_dir = a.run_dir;
  ro.bus_address = a.bus_address;
  agent::reboot::SystemRebooter system_rebooter(ro);
  // A simulated reboot ends this process as a real one would; the daemon exists by then.
  agent::reboot::SimulatedRebooter simulated_rebooter(boot_paths(g, *cfg), ro, [&daemon_ptr] {
    if (daemon_ptr) daemon_ptr->stop();
  });
  agent::Rebooter& rebooter = a.simulate_reboot ? static_cast<agent::Rebooter&>(simulated_rebooter) : system_rebooter;
  std::optional<agent::HostHealthChecker> health;
  if (g.sysroot == GlobalOptions().sysroot) health.emplace(agent::health_options(*cfg));
  else health.emplace(agent::health_options(*cfg), host_layout(g), *boot);

  auto report_http = repository::make_curl_http_client(agent::report::report_http_settings(*cfg));
  auto outbox = agent::report::Outbox::open(agent::report::outbox_options_from_config(*cfg, g.state_dir, *node),
                                            *report_http, clock);
  if (!outbox) return report_error(outbox.error());
  LockedReporter reporter(**outbox);
  auto metrics = agent::report::Metrics::open(agent::report::metrics_options_from_config(*cfg, g.state_dir), clock);
  if (!metrics) return report_error(metrics.error());
  if (auto booted = boot->booted_version()) (*metrics)->set_booted(*booted);

  agent::DaemonOptions opts;
  opts.state_dir = g.state_dir;
  opts.check_interval = cfg->get_duration("update.check_interval");
  opts.check_jitter = cfg->get_duration("update.check_jitter");
  opts.auto_apply = cfg->get_bool("update.auto_apply");

  std::unique_ptr<agent::dbus::Server> server;
  sd_event_source* report_timer = nullptr;
  const auto heartbeat = std::chrono::duration_cast<std::chrono::microseconds>(cfg->get_duration("report.heartbeat_interval"));
  auto rearm_report_timer = [&] {
    if (!report_timer) return;
    auto next = reporter.flush();
    uint64_t in = heartbeat.count() > 0 ? static_cast<uint64_t>(heartbeat.count()) : 0;
    if (next && (in == 0 || usec_from_now(*next) < in)) in = std::max<uint64_t>(usec_from_now(*next), 1000);
    if (in == 0) {
      sd_event_source_set_enabled(report_timer, SD_EVENT_OFF);
      return;
    }
    sd_event_source_set_time_relative(report_timer, in);
    sd_event_source_set_enabled(report_timer, SD_EVENT_ONESHOT);
  };
  auto status_now = [&daemon_ptr]() -> agent::AgentStatus {
    auto s = daemon_ptr ? daemon_ptr->status() : Result<agent::AgentStatus>(agent::AgentStatus{});
    return s ? *s : agent::AgentStatus{};
  };
  ReportingObserver reporting([&] { rearm_report_timer(); }, status_now);
  std::chrono::steady_clock::time_point next_heartbeat = std::chrono::steady_clock::now() + heartbeat;

  std::function<void()> fire_report_timer;  // outlives the loop that calls it
  opts.on_loop = [&](sd_event* event) -> Status {
    if (!a.no_dbus) {
      agent::dbus::ServerOptions dso;
      dso.bus_address = a.bus_address;
      dso.admin_group = cfg->get_string("api.admin_group");
      auto srv = agent::dbus::Server::open(*daemon_ptr, dso);
      if (!srv) return tl::unexpected(srv.error());
      server = std::move(*srv);
      BALLAST_CHECK(server->attach(event));
    }
    const std::string socket = cfg->get_string("report.metrics_socket");
    if (!socket.empty()) {
      if (auto st = (*metrics)->attach(event, socket); !st) log::warning("metrics socket: " + st.error().describe());
    }
    // One timer for the outbox: the next retry or the next heartbeat, whichever is sooner.
    auto on_report = [](sd_event_source*, uint64_t, void* data) -> int {
      (*static_cast<std::function<void()>*>(data))();
      return 0;
    };
    fire_report_timer = [&] {
      if (heartbeat.count() > 0 && std::chrono::steady_clock::now() >= next_heartbeat) {
        reporter.heartbeat(status_now());
        next_heartbeat = std::chrono::steady_clock::now() + heartbeat;
      }
      rearm_report_timer();
    };
    int r = sd_event_add_time_relative(event, &report_timer, CLOCK_MONOTONIC, 1000, 0, on_report, &fire_report_timer);
    if (r < 0) return fail_errno("daemon.event", -r, "the event outbox timer");
    // FleetLock: give back a slot a previous boot took, until the server has it.
    if (auto retry = agent::reboot::retry_steady_state(**gate, clock))
      log::info("steady-state not yet accepted; the flow sends it again once healthy");
    return ok();
  };

  auto d = agent::Daemon::open(opts, agent::DaemonPorts{*boot, source, **gate, rebooter, *health, reporter, clock});
  if (!d) return report_error(d.error());
  daemon_ptr = d->get();
  (*d)->add_observer(**metrics);
  (*d)->add_observer(reporting);
  if (a.once) {
    auto passed = (*d)->run_flow();
    reporter.flush();
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
  // The server observes transitions only once it exists, inside the loop.
  struct ServerRelay final : agent::AgentObserver {
    std::unique_ptr<agent::dbus::Server>& server;
    explicit ServerRelay(std::unique_ptr<agent::dbus::Server>& s) : server(s) {}
    void on_transition(const std::string& from, const std::string& to) override {
      if (server) server->on_transition(from, to);
    }
    void on_progress(const agent::Progress& p) override {
      if (server) server->on_progress(p);
    }
  } relay(server);
  (*d)->add_observer(relay);
  auto st = (*d)->run();
  if (report_timer) sd_event_source_unref(report_timer);
  server.reset();
  reporter.flush();  // what the last steps reported, before a (simulated) reboot if it can
  if (!st) return report_error(st.error());
  return 0;
}

void setup(VerbContext& ctx) {
  static DaemonArgs args;
  auto* cmd = ctx.app.add_subcommand(
      "daemon", "Run the update agent: check on a jittered timer, stage, reboot per reboot.strategy, verify\n"
                "health after the reboot, bless or roll back (what ballast.service runs)");
  cmd->add_flag("--once", args.once, "Run the update flow until it rests, print the state and exit");
  cmd->add_option("--run-dir", args.run_dir, "Where reboot-required and reboot-required.pkgs go when an update is staged (kured)")
      ->capture_default_str();
  cmd->add_flag("--no-dbus", args.no_dbus, "Do not serve the D-Bus API (a host without a bus)");
  cmd->add_flag("--simulate-reboot", args.simulate_reboot,
                "Sandbox hosts only (with --esp-path, --efivars-path, --cmdline-path): instead of rebooting the\n"
                "machine, boot the sandbox with the boot simulator (systemd-boot's rules) and exit; run the\n"
                "daemon again to go on from the new boot");
  add_bus_address_option(cmd, args.bus_address);
  cmd->callback([&ctx] { ctx.action = [&g = ctx.global] { return daemon(g, args); }; });
}

BALLAST_REGISTER_VERB(300, setup);

}  // namespace
}  // namespace ballast::cli
