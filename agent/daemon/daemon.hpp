// `ballast daemon`: the update flow (agent/update_flow.hpp) driven by an sd-event loop. A check
// timer fires every update.check_interval plus a random part of update.check_jitter (timers
// only, no polling); the flow's steps run on a worker thread so the loop, and with it
// AgentApi::status(), stays responsive while a release is staged. Observers hear of every
// transition and progress change on the loop thread. systemd: READY=1 once the loop runs,
// STATUS= on each transition, WATCHDOG=1 at half of WATCHDOG_USEC, SIGTERM/SIGINT end the loop
// (a running step is finished first: staging is journaled, but not interruptible).
// While an update waits for its reboot, the timer is armed for the RebootPolicy's next_attempt()
// (a window's opening, the end of a FleetLock backoff), not for a fixed poll.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <variant>

#include <systemd/sd-event.h>

#include "agent/api.hpp"
#include "agent/reboot/policy.hpp"
#include "agent/update_flow.hpp"

namespace ballast::agent {

// What the daemon needs from the host: the flow's ports, with the reboot policy as the flow's
// gate (the service fills them from the configuration; tests with fakes).
struct DaemonPorts {
  boot::BootControl& boot;
  ReleaseSource& source;
  reboot::RebootPolicy& reboot;
  Rebooter& rebooter;
  HealthChecker& health;
  Reporter& reporter;
  const Clock& clock;
};

struct DaemonOptions {
  std::string state_dir;
  std::chrono::milliseconds check_interval{std::chrono::hours(1)};
  std::chrono::milliseconds check_jitter{std::chrono::minutes(10)};
  bool auto_apply = true;  // false: checks only report what is available
  RollbackBy rollback_by = RollbackBy::agent;  // of a release that fails its health checks
  // Called on the loop thread once the event loop exists, before READY=1: where the service adds
  // its own sources (the D-Bus server, the metrics socket, the event outbox's timers).
  std::function<Status(sd_event*)> on_loop;
};

class Daemon final : public AgentApi {
 public:
  // Opens the flow in the state dir, applying its resume map (a reboot the flow asked for
  // resumes in verifying). Nothing runs until run() or run_flow().
  static Result<std::unique_ptr<Daemon>> open(DaemonOptions options, DaemonPorts ports);
  ~Daemon() override;

  void add_observer(AgentObserver& observer);  // before run()

  // The event loop: resumes an interrupted flow at once, then checks on the timer, until
  // SIGTERM, SIGINT or stop(). Blocks SIGTERM and SIGINT in the calling thread.
  Status run();
  // Ends run() from any thread, once a running step is done.
  void stop();
  // Blocks until run() has set up its loop (for a caller on another thread).
  void wait_running();
  // Runs the flow on the calling thread until it rests (or asks for a reboot) and delivers
  // the observer calls here; "daemon.busy" while the worker runs it. Without a loop (tests,
  // `ballast daemon --once`).
  Result<std::vector<FlowState>> run_flow();
  // Progress of the long step, from any thread (the release source's fetch callback).
  void report_progress(const Progress& progress);

  FlowState state() const;
  // interval + a uniformly random part of jitter.
  static std::chrono::milliseconds next_check_delay(const DaemonOptions& options, std::mt19937_64& rng);
  // What the loop's timer is armed for while a reboot waits for the policy (an update in
  // waiting-to-reboot, or `rollback --reboot` refused by the strategy): the policy's
  // next_attempt() less now, 0 when that is past; nullopt when no reboot waits (the check
  // timer runs) or when only an operator can allow it (the timer is off).
  struct Wakeup {
    bool reboot_waits = false;
    std::optional<std::chrono::milliseconds> delay;
  };
  Wakeup next_wakeup() const;

  Result<AgentStatus> status() override;
  Result<nlohmann::json> check() override;
  Status update(const UpdateOptions& options) override;
  // With `reboot`, the policy allows the reboot once (FleetLock still takes the lock); when the
  // strategy refuses, the reboot waits for the policy's next_attempt() (not across a restart).
  Status rollback(bool reboot) override;
  Status pin(const std::string& version) override;
  Status unpin() override;
  Status bless() override;
  Result<nlohmann::json> history() override;

 private:
  enum class Job { check, flow, rollback_reboot };
  struct Transition {
    std::string from, to;
    std::string target, from_version;  // the flow record's, when the transition happened
  };
  using Event = std::variant<Transition, Progress>;
  struct Loop;

  Daemon(DaemonOptions options, DaemonPorts ports);
  void transitioned(FlowState from, FlowState to);
  void post(Event e);
  void wake();
  void dispatch();
  Result<std::vector<FlowState>> run_flow_locked();
  Result<nlohmann::json> check_locked();
  bool start_worker(Job job);
  Status reboot_for_rollback_locked();
  void worker_finished();
  bool running() const;
  void arm_timer();

  DaemonOptions opts_;
  DaemonPorts ports_;
  std::optional<UpdateFlow> flow_;
  std::mutex flow_mutex_;  // held by whoever runs the flow or the source

  mutable std::mutex mutex_;  // guards status_ and events_
  AgentStatus status_;
  std::deque<Event> events_;
  std::vector<nlohmann::json> history_;

  std::vector<AgentObserver*> observers_;
  std::mutex worker_mutex_;  // guards worker_ (started by the loop or an API caller, joined by the loop)
  std::thread worker_;
  std::atomic<bool> busy_{false};
  std::atomic<bool> reboot_asked_{false};
  std::atomic<bool> rollback_reboot_waits_{false};
  std::atomic<bool> rearm_{false};  // the loop's timer must be armed anew
  std::atomic<bool> stop_{false};
  bool running_ = false;  // guarded by mutex_
  std::condition_variable running_cv_;
  int wake_fd_ = -1;
  std::unique_ptr<Loop> loop_;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace ballast::agent
