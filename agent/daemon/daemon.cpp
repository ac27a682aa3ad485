#include "agent/daemon/daemon.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "agent/daemon/pin.hpp"
#include "agent/daemon/planner.hpp"
#include "common/host_lock.hpp"
#include "common/log.hpp"

namespace ballast::agent {

using S = FlowState;

struct Daemon::Loop {
  sd_event* event = nullptr;
  sd_event_source* timer = nullptr;
  sd_event_source* watchdog = nullptr;
  uint64_t watchdog_usec = 0;
  ~Loop() {
    sd_event_source_unref(watchdog);
    sd_event_source_unref(timer);
    sd_event_unref(event);
  }
};

namespace {

uint64_t usec(std::chrono::milliseconds d) { return static_cast<uint64_t>(d.count()) * 1000; }

bool staged_state(FlowState s) { return s == S::staged || s == S::waiting_to_reboot || s == S::rebooting; }

}  // namespace

Daemon::Daemon(DaemonOptions options, DaemonPorts ports) : opts_(std::move(options)), ports_(ports) {}

Result<std::unique_ptr<Daemon>> Daemon::open(DaemonOptions options, DaemonPorts ports) {
  std::unique_ptr<Daemon> d(new Daemon(std::move(options), ports));
  FlowPorts fp{d->ports_.boot,   d->ports_.source,   d->ports_.reboot, d->ports_.rebooter,
               d->ports_.health, d->ports_.reporter, d->ports_.clock};
  d->flow_.emplace(BALLAST_TRY(UpdateFlow::open(d->opts_.state_dir, fp, d->opts_.rollback_by)));
  d->flow_->on_transition([p = d.get()](FlowState from, FlowState to) { p->transitioned(from, to); });
  d->wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (d->wake_fd_ < 0) return fail_errno("daemon.eventfd", errno, "eventfd");
  auto booted = ports.boot.booted_version();
  const FlowRecord& r = d->flow_->record();
  d->status_.state = to_string(r.state);
  d->status_.booted = booted ? booted->str() : "";
  d->status_.target = str_or_empty(r.target);
  d->status_.staged = staged_state(r.state) ? str_or_empty(r.target) : "";
  d->status_.last_error = r.last_error;
  d->history_ = r.history;
  return d;
}

Daemon::~Daemon() {
  if (worker_.joinable()) worker_.join();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void Daemon::add_observer(AgentObserver& observer) { observers_.push_back(&observer); }

FlowState Daemon::state() const {
  std::lock_guard lock(mutex_);
  return flow_state_from_string(status_.state).value_or(S::idle);
}

std::chrono::milliseconds Daemon::next_check_delay(const DaemonOptions& options, std::mt19937_64& rng) {
  auto jitter = options.check_jitter.count() > 0
                    ? std::uniform_int_distribution<int64_t>(0, options.check_jitter.count())(rng)
                    : int64_t{0};
  return options.check_interval + std::chrono::milliseconds(jitter);
}

// --- events: recorded on whichever thread runs the flow, delivered on the loop thread ---

void Daemon::transitioned(FlowState from, FlowState to) {
  const FlowRecord& r = flow_->record();
  {
    std::lock_guard lock(mutex_);
    status_.state = to_string(to);
    status_.target = str_or_empty(r.target);
    status_.staged = staged_state(to) ? str_or_empty(r.target) : "";
    status_.last_error = r.last_error;
    if (from == S::checking)
      status_.last_check = std::chrono::duration_cast<std::chrono::seconds>(ports_.clock.now().time_since_epoch()).count();
    if (to != S::staging) status_.progress = Progress{};
    if (to == S::staging)
      status_.progress = Progress{0, 0, r.plan ? r.plan->download_bytes : 0, 0,
                                  "staging " + str_or_empty(r.target) + (r.plan ? " (" + describe_plan(*r.plan) + ")" : "")};
    history_ = r.history;
  }
  // An operator's override of the reboot strategy lasts for one update.
  if (to == S::idle) ports_.reboot.end_of_update();
  post(Transition{to_string(from), to_string(to), str_or_empty(r.target), str_or_empty(r.from)});
}

void Daemon::report_progress(const Progress& progress) {
  {
    std::lock_guard lock(mutex_);
    status_.progress = progress;
  }
  post(progress);
}

void Daemon::post(Event e) {
  {
    std::lock_guard lock(mutex_);
    events_.push_back(std::move(e));
  }
  wake();
}

void Daemon::wake() {
  uint64_t one = 1;
  if (::write(wake_fd_, &one, sizeof one) < 0 && errno != EAGAIN) log::warning("daemon: cannot wake the event loop");
}

void Daemon::dispatch() {
  std::deque<Event> events;
  {
    std::lock_guard lock(mutex_);
    events.swap(events_);
  }
  for (const auto& e : events) {
    if (const auto* t = std::get_if<Transition>(&e)) {
      if (loop_) sd_notifyf(0, "STATUS=%s", t->to.c_str());
      for (auto* o : observers_) o->on_transition(t->from, t->to);
      if (t->to == "staging")
        for (auto* o : observers_) o->on_update_started(t->target, t->from_version);
    } else {
      for (auto* o : observers_) o->on_progress(std::get<Progress>(e));
    }
  }
}

// --- running the flow ---

Result<std::vector<FlowState>> Daemon::run_flow_locked() {
  auto passed = flow_->run_until_rest();
  // The flow stops right after asking for a reboot; the host is going down (or, in tests, the
  // next Daemon::open() is the new boot): nothing more may run against the old boot.
  if (passed && !passed->empty() && flow_->state() == S::verifying) reboot_asked_ = true;
  return passed;
}

Result<std::vector<FlowState>> Daemon::run_flow() {
  std::unique_lock lock(flow_mutex_, std::try_to_lock);
  if (!lock.owns_lock() || busy_) return fail("daemon.busy", "an update step is running");
  if (running()) return fail("daemon.running", "the event loop runs the flow");
  auto r = run_flow_locked();
  lock.unlock();
  dispatch();
  return r;
}

Result<nlohmann::json> Daemon::check_locked() {
  auto release = BALLAST_TRY(ports_.source.check(flow_->record().denylist));
  nlohmann::json available = release ? nlohmann::json(release->version.str()) : nlohmann::json(nullptr);
  ports_.reporter.report("checked", {{"available", available}});
  {
    std::lock_guard lock(mutex_);
    status_.last_check = std::chrono::duration_cast<std::chrono::seconds>(ports_.clock.now().time_since_epoch()).count();
  }
  return nlohmann::json{{"available", available}, {"reason", ports_.source.explain()}};
}

bool Daemon::start_worker(Job job) {
  std::lock_guard worker_lock(worker_mutex_);
  if (busy_.exchange(true)) return false;
  if (worker_.joinable()) worker_.join();
  worker_ = std::thread([this, job] {
    {
      std::lock_guard lock(flow_mutex_);
      if (job == Job::check) {
        if (auto r = check_locked(); !r) log::warning("update check failed: " + r.error().describe());
      } else if (job == Job::rollback_reboot) {
        if (auto st = reboot_for_rollback_locked(); !st) log::error("rollback: " + st.error().describe());
      } else if (auto r = run_flow_locked(); !r) {
        log::error("update flow: " + r.error().describe());
      }
    }
    busy_ = false;
    wake();  // the loop joins the worker and re-arms the timer
  });
  return true;
}

void Daemon::worker_finished() {
  {
    std::lock_guard worker_lock(worker_mutex_);
    if (busy_ || !worker_.joinable()) return;
    worker_.join();
  }
  arm_timer();
}

Daemon::Wakeup Daemon::next_wakeup() const {
  if (!rollback_reboot_waits_ && state() != S::waiting_to_reboot) return {};
  Wakeup w{true, std::nullopt};
  if (auto at = ports_.reboot.next_attempt()) {
    auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(*at - ports_.clock.now());
    w.delay = std::max(delay, std::chrono::milliseconds{0});
  }
  return w;
}

void Daemon::arm_timer() {
  if (!loop_ || !loop_->timer) return;
  auto wakeup = next_wakeup();
  if (reboot_asked_ || (wakeup.reboot_waits && !wakeup.delay)) {
    sd_event_source_set_enabled(loop_->timer, SD_EVENT_OFF);
    return;
  }
  auto delay = wakeup.reboot_waits ? *wakeup.delay : next_check_delay(opts_, rng_);
  sd_event_source_set_time_relative(loop_->timer, usec(delay));
  sd_event_source_set_enabled(loop_->timer, SD_EVENT_ONESHOT);
}

Status Daemon::run() {
  sigset_t ss;
  sigemptyset(&ss);
  sigaddset(&ss, SIGTERM);
  sigaddset(&ss, SIGINT);
  if (int e = pthread_sigmask(SIG_BLOCK, &ss, nullptr); e != 0) return fail_errno("daemon.signals", e, "blocking signals");
  auto loop = std::make_unique<Loop>();
  auto check = [](int r, const char* what) -> Status {
    if (r < 0) return fail_errno("daemon.event", -r, what);
    return ok();
  };
  BALLAST_CHECK(check(sd_event_new(&loop->event), "sd_event_new"));
  auto on_signal = [](sd_event_source* s, const struct signalfd_siginfo*, void*) -> int {
    log::info("daemon: stopping on a signal");
    return sd_event_exit(sd_event_source_get_event(s), 0);
  };
  BALLAST_CHECK(check(sd_event_add_signal(loop->event, nullptr, SIGTERM, on_signal, this), "SIGTERM"));
  BALLAST_CHECK(check(sd_event_add_signal(loop->event, nullptr, SIGINT, on_signal, this), "SIGINT"));
  auto on_wake = [](sd_event_source* s, int fd, uint32_t, void* data) -> int {
    auto* self = static_cast<Daemon*>(data);
    uint64_t n;
    while (::read(fd, &n, sizeof n) > 0) {
    }
    self->dispatch();
    self->worker_finished();
    // While a worker runs, its end arms the timer (and the policy is the worker's to ask).
    if (self->rearm_.exchange(false) && !self->busy_) self->arm_timer();
    // A step that asked to stop (a simulated reboot) ends first, so that its last transitions
    // still reach the bus; the worker's own wake-up comes once it has.
    if (self->stop_ && !self->busy_) return sd_event_exit(sd_event_source_get_event(s), 0);
    return 0;
  };
  BALLAST_CHECK(check(sd_event_add_io(loop->event, nullptr, wake_fd_, EPOLLIN, on_wake, this), "wake-up"));
  auto on_timer = [](sd_event_source*, uint64_t, void* data) -> int {
    auto* self = static_cast<Daemon*>(data);
    Job job = self->rollback_reboot_waits_                                ? Job::rollback_reboot
              : !self->opts_.auto_apply && self->state() == S::idle ? Job::check
                                                                     : Job::flow;
    if (!self->start_worker(job)) self->arm_timer();
    return 0;
  };
  BALLAST_CHECK(check(sd_event_add_time_relative(loop->event, &loop->timer, CLOCK_MONOTONIC,
                                                 usec(next_check_delay(opts_, rng_)), 1'000'000, on_timer, this),
                      "check timer"));
  if (sd_watchdog_enabled(0, &loop->watchdog_usec) > 0 && loop->watchdog_usec > 0) {
    auto on_watchdog = [](sd_event_source* s, uint64_t, void* data) -> int {
      auto* self = static_cast<Daemon*>(data);
      sd_notify(0, "WATCHDOG=1");
      sd_event_source_set_time_relative(s, self->loop_->watchdog_usec / 2);
      return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
    };
    BALLAST_CHECK(check(sd_event_add_time_relative(loop->event, &loop->watchdog, CLOCK_MONOTONIC,
                                                   loop->watchdog_usec / 2, 0, on_watchdog, this),
                        "watchdog timer"));
  }
  if (opts_.on_loop) BALLAST_CHECK(with_context(opts_.on_loop(loop->event), "setting up the agent's event sources"));
  loop_ = std::move(loop);
  {
    std::lock_guard lock(mutex_);
    running_ = true;
  }
  running_cv_.notify_all();
  sd_notifyf(0, "READY=1\nSTATUS=%s", to_string(state()));
  // Resume what a restart interrupted (verifying after a reboot) without waiting for the timer.
  if (state() != S::idle) start_worker(Job::flow);
  int r = stop_ ? 0 : sd_event_loop(loop_->event);
  sd_notify(0, "STOPPING=1");
  {
    std::lock_guard worker_lock(worker_mutex_);
    if (worker_.joinable()) worker_.join();
  }
  {
    std::lock_guard lock(mutex_);
    running_ = false;
  }
  dispatch();
  loop_.reset();
  if (r < 0) return fail_errno("daemon.event", -r, "event loop");
  return ok();
}

void Daemon::wait_running() {
  std::unique_lock lock(mutex_);
  running_cv_.wait(lock, [this] { return running_; });
}

bool Daemon::running() const {
  std::lock_guard lock(mutex_);
  return running_;
}

void Daemon::stop() {
  stop_ = true;
  wake();
}

// --- AgentApi ---

Result<AgentStatus> Daemon::status() {
  AgentStatus s;
  {
    std::lock_guard lock(mutex_);
    s = status_;
  }
  auto pinned = BALLAST_TRY(read_pin(opts_.state_dir));
  s.pinned = pinned ? pinned->str() : "";
  s.dropped_events = ports_.reporter.dropped_events();
  ports_.reboot.describe(s);
  return s;
}

Result<nlohmann::json> Daemon::check() {
  std::unique_lock lock(flow_mutex_, std::try_to_lock);
  if (!lock.owns_lock() || busy_) return fail("daemon.busy", std::string("an update step is running (state ") + to_string(state()) + ")");
  return check_locked();
}

Status Daemon::update(const UpdateOptions& options) {
  if (options.download_only && options.apply) return fail("daemon.bad-options", "download-only and apply exclude each other");
  S s = state();
  if (s != S::idle && s != S::waiting_to_reboot)
    return fail("daemon.busy", std::string("an update is under way (state ") + to_string(s) + ")");
  if (options.download_only) ports_.reboot.hold();
  else if (options.apply) ports_.reboot.allow_once();
  else ports_.reboot.end_of_update();
  if (running()) {
    if (!start_worker(Job::flow)) return fail("daemon.busy", "an update step is running");
    return ok();
  }
  auto r = run_flow();
  if (!r) return tl::unexpected(r.error());
  return ok();
}

Status Daemon::rollback(bool reboot) {
  std::unique_lock lock(flow_mutex_, std::try_to_lock);
  if (!lock.owns_lock() || busy_) return fail("daemon.busy", "an update step is running");
  // An operator's call: it fails at once rather than block the bus while a verb writes the host.
  auto host_lock = BALLAST_TRY(HostLock::acquire(host_lock_path(opts_.state_dir), "daemon rollback"));
  auto booted = BALLAST_TRY(ports_.boot.booted_version());
  std::vector<Version> bootable;  // an entry marked bad is no place to go back to
  for (const auto& e : BALLAST_TRY(ports_.boot.entries()))
    if (e.state != boot::EntryState::bad) bootable.push_back(e.version);
  // An operator's rollback is deliberate: neither the denylist nor revocations narrow it.
  std::optional<Version> previous = previous_good_deployment(booted, bootable, {}, {});
  if (!previous) return fail("rollback.none", "no older deployment to roll back to from " + booted.str());
  BALLAST_CHECK(ports_.boot.prefer(*previous));
  // Else the next check would bring the version back at once.
  BALLAST_CHECK(flow_->denylist_add(booted));
  log::info("rollback: " + previous->str() + " boots next, " + booted.str() + " is denylisted");
  if (!reboot) return ok();
  ports_.reboot.allow_once();
  BALLAST_CHECK(reboot_for_rollback_locked());
  if (rollback_reboot_waits_) {
    log::info(std::string("rollback: the reboot waits for the reboot strategy (") + ports_.reboot.strategy() + ")");
    if (running()) {
      rearm_ = true;  // for the policy's next attempt
      wake();
    }
  }
  return ok();
}

Status Daemon::reboot_for_rollback_locked() {
  rollback_reboot_waits_ = !BALLAST_TRY(ports_.reboot.may_reboot_now());
  if (rollback_reboot_waits_) return ok();
  BALLAST_CHECK(ports_.rebooter.reboot());
  reboot_asked_ = true;
  return ok();
}

Status Daemon::pin(const std::string& version) {
  return write_pin(opts_.state_dir, BALLAST_TRY(Version::parse(version)));
}

Status Daemon::unpin() { return remove_pin(opts_.state_dir); }

Status Daemon::bless() {
  auto host_lock = BALLAST_TRY(HostLock::acquire(host_lock_path(opts_.state_dir), "daemon bless"));
  auto booted = BALLAST_TRY(ports_.boot.booted_version());
  return ports_.boot.bless(booted);
}

Result<nlohmann::json> Daemon::history() {
  std::lock_guard lock(mutex_);
  return nlohmann::json(history_);
}

}  // namespace ballast::agent
