// `ballast daemon`: the update flow (agent/update_flow.hpp) driven by an sd-event loop. A check
// timer fires every update.check_interval plus a random part of update.check_jitter (timers
// only, no polling); the flow's steps run on a worker thread so the loop, and with it
// AgentApi::status(), stays responsive while a release is staged. Observers hear of every
// transition and progress change on the loop thread. systemd: READY=1 once the loop runs,
// STATUS= on each transition, WATCHDOG=1 at half of WATCHDOG_USEC, SIGTERM/SIGINT end the loop
// (a running step is finished first: staging is journaled, but not interruptible).
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
#include "agent/update_flow.hpp"

namespace ballast::agent {

// What the daemon needs from the host: the flow's ports (the verb fills them from the
// configuration; tests with fakes). The daemon hands the flow its own gate wrapping `gate`.
using DaemonPorts = FlowPorts;

struct DaemonOptions {
  std::string state_dir;
  std::chrono::milliseconds check_interval{std::chrono::hours(1)};
  std::chrono::milliseconds check_jitter{std::chrono::minutes(10)};
  // How often the reboot strategy is asked again while an update waits for it.
  std::chrono::milliseconds reboot_retry{std::chrono::minutes(1)};
  bool auto_apply = true;  // false: checks only report what is available
  // Called on the loop thread once the event loop exists, before READY=1: where the verb adds
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

  Result<AgentStatus> status() override;
  Result<nlohmann::json> check() override;
  Status update(const UpdateOptions& options) override;
  Status rollback(bool reboot) override;
  Status pin(const std::string& version) override;
  Status unpin() override;
  Status bless() override;
  Result<nlohmann::json> history() override;

 private:
  // The reboot strategy as update(download_only | apply) overrides it until the flow rests.
  class OverridableGate final : public RebootGate {
   public:
    explicit OverridableGate(RebootGate& inner) : inner_(inner) {}
    Result<bool> may_reboot_now() override;
    Status steady_state() override { return inner_.steady_state(); }
    enum class Mode { strategy, never, now };
    std::atomic<Mode> mode{Mode::strategy};

   private:
    RebootGate& inner_;
  };
  struct Transition {
    std::string from, to;
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
  bool start_worker(bool check_only);
  void worker_finished();
  bool running() const;
  void arm_timer();

  DaemonOptions opts_;
  DaemonPorts ports_;
  OverridableGate gate_;
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
  std::atomic<bool> stop_{false};
  bool running_ = false;  // guarded by mutex_
  std::condition_variable running_cv_;
  int wake_fd_ = -1;
  std::unique_ptr<Loop> loop_;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace ballast::agent
