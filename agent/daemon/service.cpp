#include "agent/daemon/service.hpp"

#include <unistd.h>

#include <mutex>
#include <optional>

#include "agent/azure/scheduled_events.hpp"
#include "agent/daemon/daemon.hpp"
#include "agent/daemon/planner.hpp"
#include "agent/daemon/ports.hpp"
#include "agent/measured_boot.hpp"
#include "agent/dbus/server.hpp"
#include "agent/kubernetes/node_controller.hpp"
#include "agent/reboot/policy.hpp"
#include "agent/reboot/rebooter.hpp"
#include "agent/report/journal_events.hpp"
#include "agent/report/metrics.hpp"
#include "agent/report/outbox.hpp"
#include "common/log.hpp"
#include "repository/http.hpp"

namespace ballast::agent {
namespace {

// The outbox is written by the flow's worker thread and flushed from the loop: one lock for both.
// The journal records milestones (with their MESSAGE_IDs) on the way in.
class LockedReporter final : public Reporter {
 public:
  explicit LockedReporter(report::Outbox& outbox) : outbox_(outbox), journal_(outbox) {}
  void report(const std::string& type, const nlohmann::json& data) override {
    std::lock_guard lock(mutex_);
    journal_.report(type, data);
  }
  uint64_t dropped_events() const override {
    std::lock_guard lock(mutex_);
    return outbox_.dropped();
  }
  void heartbeat(const AgentStatus& status) {
    std::lock_guard lock(mutex_);
    outbox_.report_heartbeat(status);
  }
  // Sends what is due; returns when to try again (nullopt: nothing pending). `last_chance`: the
  // process is about to end (a reboot, --once), so a backoff left by an earlier failure must not
  // keep what the last steps reported from one more try.
  std::optional<std::chrono::steady_clock::time_point> flush(bool last_chance = false) {
    std::lock_guard lock(mutex_);
    auto r = outbox_.flush(last_chance);
    if (!r) log::warning("event outbox: " + r.error().describe());
    else if (!r->last_error.empty()) log::warning("event outbox: " + r->last_error + " (" + std::to_string(r->pending) + " pending)");
    return outbox_.next_retry();
  }

 private:
  mutable std::mutex mutex_;
  report::Outbox& outbox_;
  report::JournalingReporter journal_;
};

// Flushes the outbox after every transition (events are reported at transitions) and journals
// the start of an update, which the flow itself does not report.
class ReportingObserver final : public AgentObserver {
 public:
  explicit ReportingObserver(std::function<void()> rearm) : rearm_(std::move(rearm)) {}
  void on_transition(const std::string&, const std::string&) override { rearm_(); }
  void on_update_started(const std::string& target, const std::string& from) override {
    report::journal_update_started(target, from);
  }
  void on_progress(const Progress&) override {}

 private:
  std::function<void()> rearm_;
};

std::string hostname() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return {};
  return name;
}

// The Node contract (kubernetes.enabled): the kubelet's credentials, the node's name, the controller.
struct KubernetesSide {
  std::unique_ptr<kubernetes::KubeApi> api;
  std::unique_ptr<kubernetes::NodeController> controller;
};

Result<KubernetesSide> open_kubernetes(const Config& config, AgentApi& agent, const Clock& clock, const std::string& state_dir) {
  std::vector<std::string> candidates{"/etc/kubernetes/kubelet.conf", "/var/lib/kubelet/kubeconfig"};
  if (!config.get_string("kubernetes.kubeconfig").empty()) candidates = {config.get_string("kubernetes.kubeconfig")};
  auto kubeconfig = BALLAST_TRY(kubernetes::load_first_kubeconfig(candidates));
  kubernetes::NodeControllerOptions o;
  o.node_name = kubernetes::node_name(config.get_string("kubernetes.node_name"), kubeconfig, hostname());
  if (o.node_name.empty()) return fail("config.missing", "no node name: set kubernetes.node_name");
  o.state_dir = state_dir;
  o.heartbeat = config.get_duration("kubernetes.heartbeat_interval");
  KubernetesSide k;
  k.api = kubernetes::make_curl_kube_api(std::move(kubeconfig));
  k.controller = BALLAST_TRY(kubernetes::NodeController::open(*k.api, agent, clock, o));
  log::info("kubernetes: following Node " + o.node_name);
  return k;
}

uint64_t usec_from_now(std::chrono::steady_clock::time_point at) {
  auto d = at - std::chrono::steady_clock::now();
  if (d < std::chrono::steady_clock::duration::zero()) return 0;
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

}  // namespace

Result<std::optional<AgentStatus>> run_service(const Config& config, ServiceHost host, const ServiceOptions& a) {
  if (a.simulate_reboot && config.get_string("boot.loader") != "systemd-boot")
    return fail("config.invalid", "--simulate-reboot follows systemd-boot; boot.loader is " + config.get_string("boot.loader"));
  if (host.request.repo_url.empty()) return fail("config.missing", "repository.url is not set");
  // Read once per run: the node id on Azure, and what every heartbeat carries.
  const std::optional<azure::InstanceIdentity> instance = azure::read_instance_identity(config);
  const std::string platform_id = instance ? instance->vm_id : "";
  auto node = BALLAST_TRY(node_id(config, "/etc/machine-id", platform_id));
  auto wariness = BALLAST_TRY(node_wariness(config, "/etc/machine-id", platform_id));
  boot::BootControl* boot = &host.boot;
  SystemClock clock;

  Daemon* daemon_ptr = nullptr;  // set once the daemon exists; progress arrives only after run starts
  HostReleaseSourceOptions so;
  so.request = host.request;
  so.host = host.layout;
  so.state_dir = host.state_dir;
  so.wariness = wariness;
  so.keep = static_cast<int>(config.get_int("retention.keep"));
  so.entry_type = host.entry_type;
  so.on_progress = [&daemon_ptr](const Progress& p) {
    if (daemon_ptr) daemon_ptr->report_progress(p);
  };
  HostReleaseSource source(std::move(so), *boot, clock);

  reboot::RebooterOptions ro;
  ro.run_dir = a.run_dir;
  ro.bus_address = a.bus_address;
  reboot::SystemRebooter system_rebooter(ro);
  // A simulated reboot ends this process as a real one would; the daemon exists by then.
  reboot::SimulatedRebooter simulated_rebooter(host.boot_paths, ro, [&daemon_ptr] {
    if (daemon_ptr) daemon_ptr->stop();
  });
  Rebooter& rebooter = a.simulate_reboot ? static_cast<Rebooter&>(simulated_rebooter) : system_rebooter;
  std::optional<HostHealthChecker> health;
  if (!host.outside) health.emplace(health_options(config));
  else health.emplace(health_options(config), host.layout, *boot);
  auto tpm = boot::make_sysfs_tpm(host.tpm_path);
  health->check_measured_boot(*tpm, host.state_dir, *boot);
  auto efi = boot::make_efivarfs(host.boot_paths.efivars_path);
  BootSecurityInputs security{*efi, *boot, *tpm, host.boot_paths.esp_path, host.state_dir};

  auto report_http = repository::make_curl_http_client(report::report_http_settings(config));
  auto outbox = BALLAST_TRY(report::Outbox::open(report::outbox_options_from_config(config, host.state_dir, node),
                                                 *report_http, clock));
  LockedReporter reporter(*outbox);
  // A Scheduled Events decision is news between transitions: it is sent at once, not with the
  // next heartbeat (set once the report timer exists).
  std::function<void()> send_reports_now;
  auto policy = azure::with_scheduled_events(config, BALLAST_TRY(reboot::make_reboot_policy(config, clock, node)), clock,
                                             instance ? instance->name : "",
                                             [&reporter, &send_reports_now](const azure::EventDecision& d) {
                                               reporter.report("scheduled-events", azure::decision_event(d));
                                               if (send_reports_now) send_reports_now();
                                             });
  auto metrics = BALLAST_TRY(report::Metrics::open(report::metrics_options_from_config(config, host.state_dir), clock));
  metrics->count_dropped_events_from([&reporter] { return reporter.dropped_events(); });
  if (auto booted = boot->booted_version()) metrics->set_booted(booted->str());

  DaemonOptions opts;
  opts.state_dir = host.state_dir;
  opts.check_interval = config.get_duration("update.check_interval");
  opts.check_jitter = config.get_duration("update.check_jitter");
  opts.auto_apply = config.get_bool("update.auto_apply");
  const bool kubernetes_on = config.get_bool("kubernetes.enabled");
  opts.rollback_by = kubernetes_on && config.get_string("kubernetes.rollback") == "controller" ? RollbackBy::controller
                                                                                               : RollbackBy::agent;

  std::unique_ptr<dbus::Server> server;
  sd_event_source* report_timer = nullptr;
  const auto heartbeat = std::chrono::duration_cast<std::chrono::microseconds>(config.get_duration("report.heartbeat_interval"));
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
  send_reports_now = [&] {
    rearm_report_timer();
    if (server) server->on_status_changed();
  };
  auto status_now = [&daemon_ptr, &security, &instance]() -> AgentStatus {
    auto s = daemon_ptr ? daemon_ptr->status() : Result<AgentStatus>(AgentStatus{});
    AgentStatus out = s ? *s : AgentStatus{};
    out.boot = read_boot_security(security);
    out.azure = instance;
    return out;
  };
  ReportingObserver reporting([&] { rearm_report_timer(); });
  std::chrono::steady_clock::time_point next_heartbeat = std::chrono::steady_clock::now() + heartbeat;

  std::function<void()> fire_report_timer;  // outlives the loop that calls it
  opts.on_loop = [&](sd_event* event) -> Status {
    if (!a.no_dbus) {
      dbus::ServerOptions dso;
      dso.bus_address = a.bus_address;
      dso.admin_group = config.get_string("api.admin_group");
      server = BALLAST_TRY(dbus::Server::open(*daemon_ptr, dso));
      BALLAST_CHECK(server->attach(event));
    }
    const std::string socket = config.get_string("report.metrics_socket");
    if (!socket.empty()) {
      if (auto st = metrics->attach(event, socket); !st) log::warning("metrics socket: " + st.error().describe());
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
    if (!policy->steady_state()) log::info("steady-state not yet accepted; the flow sends it again once healthy");
    return ok();
  };

  auto d = BALLAST_TRY(Daemon::open(opts, DaemonPorts{*boot, source, *policy, rebooter, *health, reporter, clock}));
  daemon_ptr = d.get();
  d->add_observer(*metrics);
  d->add_observer(reporting);
  if (a.once) {
    auto passed = d->run_flow();
    reporter.flush(true);
    if (!passed) return tl::unexpected(passed.error());
    auto status = BALLAST_TRY(d->status());
    status.boot = read_boot_security(security);
    status.azure = instance;
    return std::optional<AgentStatus>(std::move(status));
  }
  // The server observes transitions only once it exists, inside the loop.
  struct ServerRelay final : AgentObserver {
    std::unique_ptr<dbus::Server>& server;
    explicit ServerRelay(std::unique_ptr<dbus::Server>& s) : server(s) {}
    void on_transition(const std::string& from, const std::string& to) override {
      if (server) server->on_transition(from, to);
    }
    void on_progress(const Progress& p) override {
      if (server) server->on_progress(p);
    }
  } relay(server);
  d->add_observer(relay);
  KubernetesSide kube;
  if (kubernetes_on) {
    kube = BALLAST_TRY(open_kubernetes(config, *d, clock, host.state_dir));
    d->add_observer(*kube.controller);
    kube.controller->start();
  }
  auto st = d->run();
  if (kube.controller) {
    kube.controller->stop();
    // The last transition (rebooting, say) before the process ends.
    if (auto published = kube.controller->publish(); !published)
      log::warning("kubernetes: the last status: " + published.error().describe());
  }
  if (report_timer) sd_event_source_unref(report_timer);
  server.reset();
  reporter.flush(true);  // what the last steps reported, before a (simulated) reboot if it can
  if (!st) return tl::unexpected(st.error());
  return std::optional<AgentStatus>();
}

}  // namespace ballast::agent
