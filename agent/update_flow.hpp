// The agent's update flow: one transition table (update_flow.cpp, kSteps) from idle to committed
// or rolled back, in the manner of Mender's state machine. The state is written to the state
// directory before every step with side effects; after a restart (a crash, the reboot the flow
// asked for, or a reboot by anyone else) resume_state() says where the written state resumes,
// from what booted. The OS is reached only through the small interfaces below, each with a fake
// in tests.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/health.hpp"
#include "boot/boot_control.hpp"
#include "common/clock.hpp"
#include "common/result.hpp"
#include "common/version.hpp"

namespace ballast::agent {

enum class FlowState {
  idle,               // nothing under way
  checking,           // asking the repository for a newer allowed release
  staging,            // fetching and staging the target
  staged,             // staged with a trial entry; announcing the reboot
  waiting_to_reboot,  // the reboot strategy has not allowed the reboot yet
  rebooting,          // about to reboot into the target
  verifying,          // booted again: which version, and is it healthy?
  reverting,          // the target was unhealthy and marked bad: rebooting back
  committed,          // the target is blessed
  rolled_back,        // the target failed; the previous version runs and the target is denylisted
  failed,             // a step failed; the error is recorded
};

const char* to_string(FlowState s);
std::optional<FlowState> flow_state_from_string(const std::string& s);

// One delta of a chain: the stream in release `to`'s manifest that applies to `from`.
struct PlanLink {
  // nullopt: the full stream of `to`, which only a chain's first link may be (a host with no
  // slot the deltas start from, or one for which an earlier release's full stream and the
  // deltas after it are cheaper than the target's own full stream, or the target has none).
  std::optional<Version> from;
  Version to;
  uint64_t bytes = 0;  // the delta's compressed size
  bool operator==(const PlanLink&) const = default;
};

// What one check decided, whole: staging carries it out and re-decides nothing.
struct ReleasePlan {
  Version version;
  // Back to an older deployment this host retains: its boot entry is preferred, nothing is
  // fetched. (A pin to an older version the host no longer has is fetched like any other.)
  bool backward = false;
  // Unless backward, the artifact to fetch: the full stream (nullopt), or the delta from this
  // version, whose parent is one of the host's slots (a manifest names at most one delta per
  // version, so staging finds the same artifact again).
  std::optional<Version> delta_from;
  uint64_t download_bytes = 0;  // the artifacts' compressed size: the progress total
  std::string reason;           // the planner's line for humans
  // Empty for one artifact (the full stream or the delta from `delta_from`). Else a chain of
  // deltas, in order: the first from `delta_from` (a slot of this host), or, when delta_from is
  // nullopt, the full stream of an earlier release; each next from the one before, the last to
  // `version`; download_bytes is their sum. Records written before chains existed have none.
  std::vector<PlanLink> chain = {};
  bool operator==(const ReleasePlan&) const = default;
};

// One line for status and progress: "delta 1.0 -> 2.0", "chain 1.0 -> 2.0 -> 3.0", "full stream"
// or "back to the retained 1.0", with the bytes to download.
std::string describe_plan(const ReleasePlan& plan);

// {"from": V or null for a full stream, "to": V, "bytes": N}: a plan record's and `fetch --json`'s.
nlohmann::json link_to_json(const PlanLink& link);
nlohmann::json plan_to_json(const ReleasePlan& plan);
Result<ReleasePlan> plan_from_json(const nlohmann::json& j);

// The repository side: what to update to (the planner applies channel, pins, waves, barriers,
// the denylist and revocations, and chooses the artifact), and staging exactly that plan.
class ReleaseSource {
 public:
  virtual ~ReleaseSource() = default;
  virtual Result<std::optional<ReleasePlan>> check(const std::vector<Version>& denylist) = 0;
  virtual Status stage(const ReleasePlan& plan) = 0;
  // Why the last check() chose what it chose ("pinned to 2.0", "waiting for rollout wave …").
  virtual std::string explain() const { return {}; }
  // Once `version` is committed (booted and blessed): its boot loader onto the ESP.
  virtual Result<boot::LoaderUpdate> update_loader(const Version&) { return boot::LoaderUpdate::not_shipped; }
};

// The reboot strategy: immediate, periodic windows, FleetLock, manual.
class RebootGate {
 public:
  virtual ~RebootGate() = default;
  virtual Result<bool> may_reboot_now() = 0;   // FleetLock: pre-reboot
  virtual Status steady_state() = 0;           // FleetLock: steady-state
};

class Rebooter {
 public:
  virtual ~Rebooter() = default;
  virtual Status announce(const std::string& version) = 0;  // /run/reboot-required for kured
  virtual Status reboot() = 0;                               // logind; does not return on a host
};

class HealthChecker {
 public:
  virtual ~HealthChecker() = default;
  virtual Result<HealthReport> run() = 0;
};

// Events go to the durable outbox: type is the step ("checked", "staged", "rolled-back", …).
class Reporter {
 public:
  virtual ~Reporter() = default;
  virtual void report(const std::string& type, const nlohmann::json& data) = 0;
  // Events dropped to keep the outbox in its bounds, ever (status and metrics show it).
  virtual uint64_t dropped_events() const { return 0; }
};

// What survives restarts, in <state>/flow.json.
struct FlowRecord {
  FlowState state = FlowState::idle;
  std::optional<Version> target;       // the version being updated to; nullopt when idle
  // The check's plan for the target. A record written before plans existed has none: if it
  // stopped in checking or staging it resumes in checking (see UpdateFlow::open).
  std::optional<ReleasePlan> plan;
  std::optional<Version> from;         // the version booted when the update started; nullopt when unknown
  std::string last_error;
  int resumes = 0;                     // restarts in the current state (the loop guard)
  std::vector<Version> denylist;       // versions rolled back from, or failed for good: never retried automatically
  std::vector<nlohmann::json> history; // one line per finished update
  bool operator==(const FlowRecord&) const = default;
};

// The record as <state>/flow.json holds it, and back. A record that is not what flow_record_to_json
// writes (a field of the wrong type or out of range, an invalid version) is "flow.corrupt" naming
// the field.
nlohmann::json flow_record_to_json(const FlowRecord& record);
Result<FlowRecord> flow_record_from_json(const nlohmann::json& j);

// What the loader did, as a start of the agent finds it, about the flow's target.
enum class TargetEntry {
  absent,   // no boot entry for the target: not staged yet, or removed since
  pending,  // an entry the loader would still boot (on trial with tries left, or blessed)
  bad,      // marked bad or out of tries: the loader falls back past it
};
struct BootFacts {
  bool target_booted = false;  // this boot runs the target (ballast.version=)
  TargetEntry target_entry = TargetEntry::absent;
};

// Where a start resumes the written state, given what booted. One decision for every state and
// for any reboot, whoever asked for it: the target booted → verify it; the target's entry bad or
// exhausted → rolled back; the target still pending → wait for the reboot (or announce it); the
// target's entry gone → failed. Idle, checking and the finishing states resume as written.
FlowState resume_state(FlowState written, const BootFacts& facts);

// Failures of a release that trying again cannot change (its image names another version, its
// signed manifest cannot be used): the target is denylisted like a version rolled back from.
bool is_permanent_failure(const Error& error);

// Who rolls back a release that booted but failed its health checks (kubernetes.rollback): the
// agent at once (reverting), or a controller: the release is marked bad (boot counting still falls
// back if the node reboots) and the flow fails with "health.failed"; a rollback request decides.
enum class RollbackBy { agent, controller };

struct FlowPorts {
  boot::BootControl& boot;
  ReleaseSource& source;
  RebootGate& gate;
  Rebooter& rebooter;
  HealthChecker& health;
  Reporter& reporter;
  const Clock& clock;
};

class UpdateFlow {
 public:
  // Loads <state_dir>/flow.json (or starts idle) and resumes it with resume_state().
  static Result<UpdateFlow> open(std::string state_dir, FlowPorts ports, RollbackBy rollback_by = RollbackBy::agent);

  FlowState state() const { return record_.state; }
  const FlowRecord& record() const { return record_; }

  // Runs one step of the table from the current state; returns the new state. Idle starts a
  // check; waiting_to_reboot stays put until the gate opens.
  Result<FlowState> step();
  // Steps until the flow rests (idle, waiting_to_reboot) or has asked for a reboot; returns the
  // states passed through, for logs and tests.
  Result<std::vector<FlowState>> run_until_rest(int max_steps = 32);

  // Called after every change of state, once it is saved (the daemon's observers hear of it).
  void on_transition(std::function<void(FlowState from, FlowState to)> callback) { on_transition_ = std::move(callback); }
  // Adds a version to the denylist (an operator rollback away from it); saved at once.
  Status denylist_add(const Version& version);

  // After how many restarts in one state the flow gives up (a state that crashes the agent).
  static constexpr int kMaxResumes = 3;

 private:
  UpdateFlow(std::string state_dir, FlowPorts ports, RollbackBy rollback_by)
      : state_dir_(std::move(state_dir)), ports_(ports), rollback_by_(rollback_by) {}
  Status save();
  Status enter(FlowState next);
  bool denylist_insert(const Version& version);  // false when it was there already
  Result<Version> target() const;                // "flow.no-target" when the record has none

  Result<FlowState> do_check();
  Result<FlowState> do_stage();
  Result<FlowState> do_announce();
  Result<FlowState> do_wait();
  Result<FlowState> do_reboot();
  Result<FlowState> do_verify();
  Result<FlowState> do_revert();
  Result<FlowState> do_finish();

  struct Step {
    FlowState from;
    const char* what;
    Result<FlowState> (UpdateFlow::*run)();
  };
  static const Step kSteps[];
  std::optional<BootFacts> boot_facts();  // nullopt when the loader's side cannot be read

  std::string state_dir_;
  FlowPorts ports_;
  RollbackBy rollback_by_;
  FlowRecord record_;
  bool asked_reboot_ = false;
  std::function<void(FlowState, FlowState)> on_transition_;
};

}  // namespace ballast::agent
