#include "agent/update_flow.hpp"

#include <algorithm>

#include "agent/report/journal_events.hpp"
#include "common/file.hpp"
#include "common/host_lock.hpp"
#include "common/json_member.hpp"
#include "common/log.hpp"

namespace ballast::agent {

using S = FlowState;

// The whole update flow. Each row: in this state, do this; the handler returns the next state.
// A state names the step to do next, so the state written before a step is where a restart
// picks up (through resume_state()).
const UpdateFlow::Step UpdateFlow::kSteps[] = {
    {S::idle, "start a check", &UpdateFlow::do_check},
    {S::checking, "ask the repository for an allowed newer release", &UpdateFlow::do_check},
    {S::staging, "fetch, verify and stage the release", &UpdateFlow::do_stage},
    {S::staged, "announce the reboot (/run/reboot-required, report)", &UpdateFlow::do_announce},
    {S::waiting_to_reboot, "ask the reboot strategy", &UpdateFlow::do_wait},
    {S::rebooting, "reboot into the trial entry", &UpdateFlow::do_reboot},
    {S::verifying, "see what booted and check its health", &UpdateFlow::do_verify},
    {S::reverting, "reboot back after marking the target bad", &UpdateFlow::do_revert},
    {S::committed, "record the update", &UpdateFlow::do_finish},
    {S::rolled_back, "denylist the target and record the rollback", &UpdateFlow::do_finish},
    {S::failed, "record the failure", &UpdateFlow::do_finish},
};

FlowState resume_state(FlowState written, const BootFacts& facts) {
  switch (written) {
    case S::idle:
    case S::checking:
    case S::committed:
    case S::rolled_back:
    case S::failed:
      return written;  // no target on the loader's side yet, or the outcome is decided
    case S::staging:
    case S::staged:
    case S::waiting_to_reboot:
    case S::rebooting:
    case S::verifying:
    case S::reverting:
      break;
  }
  if (facts.target_booted) return written == S::reverting ? S::reverting : S::verifying;
  // The health checks failed and the target was marked bad: whatever booted instead, it is back.
  if (written == S::reverting) return S::rolled_back;
  switch (facts.target_entry) {
    case TargetEntry::bad:
      return S::rolled_back;  // boot counting gave up on it, or it was marked bad
    case TargetEntry::absent:
      return written == S::staging ? S::staging : S::failed;
    case TargetEntry::pending:
      break;
  }
  // Staged (the entry is the stage's last act) and not booted yet: the reboot is still to come.
  if (written == S::staging || written == S::staged) return S::staged;
  return S::waiting_to_reboot;
}

bool is_permanent_failure(const Error& error) {
  // The one list. Everything else (network, disk space, a chunk corrupted in transit) is retried.
  static constexpr const char* kPermanent[] = {
      "stage.bad-image",    // the stream does not make a read-only received subvolume
      "image.wrong-version", "image.bad-version",  // the image names another (or no valid) version
      "stage.no-kernel",    "stage.no-uki",       "boot.bad-uki",  // nothing this host can boot
      "manifest.invalid",  // the signed manifest itself is malformed
  };
  return std::any_of(std::begin(kPermanent), std::end(kPermanent), [&](const char* c) { return error.code == c; });
}

namespace {

constexpr const char* kNames[] = {"idle",      "checking",  "staging",   "staged",      "waiting-to-reboot", "rebooting",
                                  "verifying", "reverting", "committed", "rolled-back", "failed"};
constexpr const char* kFile = "flow.json";

// One writer per host (common/host_lock.hpp): every step takes the host lock but those that only
// ask the repository or the reboot strategy, so that an operator's `ballast boot bless` waits at
// most for one writing step, never for a check or a reboot window. The flow waits for the lock:
// a verb holds it only while it writes.
bool writes_host(FlowState s) { return s != S::idle && s != S::checking && s != S::waiting_to_reboot; }

Error corrupt(const std::string& what) { return Error{"flow.corrupt", "the flow record's " + what + " is not valid", 0, {}}; }

// A version the record holds: a string that parses, else the record is corrupt.
Result<Version> version_in_record(const nlohmann::json& j, const std::string& what) {
  if (!j.is_string()) return tl::unexpected(corrupt(what));
  auto v = Version::parse(j.get<std::string>());
  if (!v) return tl::unexpected(corrupt(what + " (" + v.error().message + ")"));
  return *v;
}

// "target" and "from": "" (or absent) when the record has none.
Result<std::optional<Version>> optional_version_in_record(const nlohmann::json& j, const char* key) {
  auto value = j.value(key, nlohmann::json(""));
  if (value == "" || value.is_null()) return std::optional<Version>();
  return std::optional<Version>(BALLAST_TRY(version_in_record(value, key)));
}

}  // namespace

nlohmann::json link_to_json(const PlanLink& link) {
  return {{"from", link.from ? nlohmann::json(link.from->str()) : nlohmann::json(nullptr)},
          {"to", link.to.str()},
          {"bytes", link.bytes}};
}

nlohmann::json plan_to_json(const ReleasePlan& plan) {
  nlohmann::json chain = nlohmann::json::array();
  for (const auto& link : plan.chain) chain.push_back(link_to_json(link));
  return {{"version", plan.version.str()},
          {"backward", plan.backward},
          {"deltaFrom", plan.delta_from ? nlohmann::json(plan.delta_from->str()) : nlohmann::json(nullptr)},
          {"downloadBytes", plan.download_bytes},
          {"reason", plan.reason},
          {"chain", chain}};
}

Result<ReleasePlan> plan_from_json(const nlohmann::json& j) {
  auto invalid = [] { return tl::unexpected(corrupt("plan")); };
  if (!j.is_object() || !j.value("version", nlohmann::json()).is_string() || !j.value("backward", nlohmann::json()).is_boolean() ||
      !j.value("downloadBytes", nlohmann::json()).is_number_unsigned() || !j.value("reason", nlohmann::json()).is_string())
    return invalid();
  ReleasePlan plan;
  plan.version = BALLAST_TRY(version_in_record(j["version"], "plan's version"));
  plan.backward = j["backward"].get<bool>();
  plan.download_bytes = j["downloadBytes"].get<uint64_t>();
  plan.reason = j["reason"].get<std::string>();
  const auto& from = j.value("deltaFrom", nlohmann::json());
  if (!from.is_null()) plan.delta_from = BALLAST_TRY(version_in_record(from, "plan's deltaFrom"));
  // Absent in records written before chains existed: one artifact.
  const auto& chain = j.value("chain", nlohmann::json::array());
  if (!chain.is_array()) return invalid();
  for (const auto& link : chain) {
    if (!link.is_object() || !link.value("bytes", nlohmann::json()).is_number_unsigned()) return invalid();
    auto from = BALLAST_TRY(optional_version_in_record(link, "from"));
    auto to = BALLAST_TRY(version_in_record(link.value("to", nlohmann::json()), "plan's chain"));
    plan.chain.push_back(PlanLink{std::move(from), std::move(to), link["bytes"].get<uint64_t>()});
  }
  if (!plan.chain.empty() && (plan.chain.front().from != plan.delta_from || plan.chain.back().to != plan.version))
    return invalid();
  // Only a chain's first link may be a full stream.
  for (size_t i = 1; i < plan.chain.size(); ++i)
    if (!plan.chain[i].from) return invalid();
  return plan;
}

nlohmann::json flow_record_to_json(const FlowRecord& r) {
  nlohmann::json denylist = nlohmann::json::array();
  for (const auto& v : r.denylist) denylist.push_back(v.str());
  return {{"state", to_string(r.state)}, {"target", str_or_empty(r.target)},
          {"plan", r.plan ? plan_to_json(*r.plan) : nlohmann::json(nullptr)},
          {"from", str_or_empty(r.from)}, {"lastError", r.last_error}, {"resumes", r.resumes},
          {"denylist", std::move(denylist)}, {"history", r.history}};
}

// Every field is checked for its type before it is read: a record that is not what save() writes
// (a hand edit, a damaged disk) is refused as a value, never thrown at the daemon's start.
Result<FlowRecord> flow_record_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return fail("flow.corrupt", "the flow record is not a JSON object");
  const auto field = [&](const char* key) -> const nlohmann::json& {
    static const nlohmann::json absent;
    auto it = j.find(key);
    return it == j.end() ? absent : *it;
  };
  FlowRecord r;
  const auto& state = field("state");
  auto parsed = state.is_string() ? flow_state_from_string(state.get<std::string>()) : std::nullopt;
  if (!parsed) return tl::unexpected(corrupt("state"));
  r.state = *parsed;
  r.target = BALLAST_TRY(optional_version_in_record(j, "target"));
  if (const auto& plan = field("plan"); !plan.is_null()) r.plan = BALLAST_TRY(plan_from_json(plan));
  r.from = BALLAST_TRY(optional_version_in_record(j, "from"));
  if (const auto& error = field("lastError"); !error.is_null()) {
    if (!error.is_string()) return tl::unexpected(corrupt("lastError"));
    r.last_error = error.get<std::string>();
  }
  if (const auto& resumes = field("resumes"); !resumes.is_null()) {
    // save() never writes more than the loop guard allows.
    const int64_t count = integer_member(j, "resumes", -1);
    if (count < 0 || count > UpdateFlow::kMaxResumes) return tl::unexpected(corrupt("resumes"));
    r.resumes = static_cast<int>(count);
  }
  if (const auto& denylist = field("denylist"); !denylist.is_null()) {
    if (!denylist.is_array()) return tl::unexpected(corrupt("denylist"));
    for (const auto& v : denylist) r.denylist.push_back(BALLAST_TRY(version_in_record(v, "denylist")));
  }
  if (const auto& history = field("history"); !history.is_null()) {
    if (!history.is_array()) return tl::unexpected(corrupt("history"));
    r.history = history.get<std::vector<nlohmann::json>>();
  }
  return r;
}

std::string describe_plan(const ReleasePlan& plan) {
  if (plan.backward) return "back to the retained " + plan.version.str();
  std::string what;
  if (!plan.chain.empty()) {
    const PlanLink& first = plan.chain.front();
    if (first.from) {
      what = "chain of " + std::to_string(plan.chain.size()) + " deltas " + first.from->str();
    } else {
      const size_t deltas = plan.chain.size() - 1;
      what = "full stream of " + first.to.str() + " and " + std::to_string(deltas) + (deltas == 1 ? " delta " : " deltas ") +
             first.to.str();
    }
    for (size_t i = first.from ? 0 : 1; i < plan.chain.size(); ++i) what += " -> " + plan.chain[i].to.str();
  } else if (plan.delta_from) {
    what = "delta " + plan.delta_from->str() + " -> " + plan.version.str();
  } else {
    what = "full stream of " + plan.version.str();
  }
  return what + ", " + std::to_string(plan.download_bytes) + " bytes";
}

const char* to_string(FlowState s) { return kNames[static_cast<int>(s)]; }

std::optional<FlowState> flow_state_from_string(const std::string& s) {
  for (int i = 0; i < static_cast<int>(std::size(kNames)); ++i)
    if (s == kNames[i]) return static_cast<FlowState>(i);
  return std::nullopt;
}

Result<UpdateFlow> UpdateFlow::open(std::string state_dir, FlowPorts ports, RollbackBy rollback_by) {
  UpdateFlow flow(std::move(state_dir), ports, rollback_by);
  const std::string where = path_join(flow.state_dir_, kFile);
  auto text = read_file(where, 1 << 20);
  if (!text) {
    if (text.error().code != "io.not-found") return tl::unexpected(text.error());
    return flow;
  }
  FlowRecord& r = flow.record_;
  r = BALLAST_TRY(with_context(flow_record_from_json(nlohmann::json::parse(*text, nullptr, false)), where));
  const FlowState written = r.state;
  FlowState resumed = written;
  if (auto facts = r.target ? flow.boot_facts() : std::nullopt) {
    const std::string& target = r.target->str();
    resumed = resume_state(written, *facts);
    if (resumed == S::failed && written != S::failed)
      r.last_error = "the boot entry of " + target + " is gone; the update is abandoned";
    if (resumed == S::rolled_back && written != S::rolled_back) {
      if (r.last_error.empty()) r.last_error = target + " did not stay booted: the loader fell back past its entry";
      // The verifying step, which says what booted, is skipped: say it here.
      auto booted = flow.ports_.boot.booted_version();
      flow.ports_.reporter.report("booted", {{"version", booted ? booted->str() : ""}, {"target", target}});
    }
    if (resumed != written)
      log::info(std::string("flow: resuming ") + to_string(written) + " as " + to_string(resumed) + " (" +
                (facts->target_booted ? target + " booted" : target + " not booted") + ")");
  }
  if (resumed == written && written != S::idle && written != S::waiting_to_reboot) {
    // Restarted without leaving the state: a step that kills the agent must not loop forever.
    if (++r.resumes > kMaxResumes) {
      r.last_error = std::string("gave up after ") + std::to_string(kMaxResumes) + " restarts in state " + to_string(written);
      log::error(r.last_error);
      resumed = S::failed;
      r.resumes = 0;
    }
  } else {
    r.resumes = 0;
  }
  // A record from before plans (no "plan") cannot be staged: its check is run again.
  if (!r.plan && (resumed == S::checking || resumed == S::staging)) resumed = S::checking;
  r.state = resumed;
  BALLAST_CHECK(flow.save());
  if (resumed != written) report::journal_state_changed(to_string(written), to_string(resumed), str_or_empty(r.target));
  return flow;
}

std::optional<BootFacts> UpdateFlow::boot_facts() {
  BootFacts facts;
  auto booted = ports_.boot.booted_version();
  facts.target_booted = booted && *booted == record_.target;
  auto entries = ports_.boot.entries();
  if (!entries) {
    // Nothing then tells a fallback from a reboot still to come: the written state resumes as
    // written, and its step meets the error itself.
    log::warning("flow: cannot read the boot entries, resuming as written: " + entries.error().describe());
    return std::nullopt;
  }
  for (const auto& e : *entries)
    if (e.version == record_.target)
      facts.target_entry = e.state == boot::EntryState::bad ? TargetEntry::bad : TargetEntry::pending;
  return facts;
}

Status UpdateFlow::save() {
  BALLAST_CHECK(make_dirs(state_dir_));
  return write_file_atomic(path_join(state_dir_, kFile), flow_record_to_json(record_).dump(2) + "\n", 0644);
}

Status UpdateFlow::enter(FlowState next) {
  FlowState before = record_.state;
  if (next != before) record_.resumes = 0;
  record_.state = next;
  BALLAST_CHECK(save());
  if (next != before) report::journal_state_changed(to_string(before), to_string(next), str_or_empty(record_.target));
  if (next != before && on_transition_) on_transition_(before, next);
  return ok();
}

bool UpdateFlow::denylist_insert(const Version& version) {
  if (std::find(record_.denylist.begin(), record_.denylist.end(), version) != record_.denylist.end()) return false;
  record_.denylist.push_back(version);
  return true;
}

Status UpdateFlow::denylist_add(const Version& version) {
  if (!denylist_insert(version)) return ok();
  return save();
}

Result<Version> UpdateFlow::target() const {
  if (!record_.target)
    return fail("flow.no-target", std::string("the flow record in state ") + to_string(record_.state) + " names no target");
  return *record_.target;
}

Result<FlowState> UpdateFlow::step() {
  for (const auto& row : kSteps) {
    if (row.from != record_.state) continue;
    log::debug(std::string("flow: ") + to_string(row.from) + ": " + row.what);
    auto next = [&]() -> Result<FlowState> {
      if (!writes_host(row.from)) return (this->*row.run)();
      auto lock = BALLAST_TRY(HostLock::acquire(host_lock_path(state_dir_), std::string("daemon ") + to_string(row.from),
                                                HostLock::Mode::wait));
      return (this->*row.run)();
    }();
    if (!next) {
      record_.last_error = next.error().describe();
      // Staging it again would fail the same way at every check: denylisted, reported this once.
      bool denylist = row.from == S::staging && record_.target && is_permanent_failure(next.error());
      if (denylist) {
        denylist_insert(*record_.target);
        record_.last_error += " (" + record_.target->str() + " is denylisted: not retried automatically)";
      }
      log::error(std::string("update flow: ") + row.what + " failed: " + record_.last_error);
      ports_.reporter.report("error", {{"state", to_string(row.from)}, {"error", record_.last_error},
                                       {"code", next.error().code}, {"target", str_or_empty(record_.target)},
                                       {"denylisted", denylist}});
      BALLAST_CHECK(enter(S::failed));
      return S::failed;
    }
    BALLAST_CHECK(enter(*next));
    return *next;
  }
  return fail("flow.no-step", std::string("no step for state ") + to_string(record_.state));
}

Result<std::vector<FlowState>> UpdateFlow::run_until_rest(int max_steps) {
  std::vector<FlowState> passed;
  asked_reboot_ = false;
  for (int i = 0; i < max_steps; ++i) {
    FlowState before = record_.state;
    auto next = BALLAST_TRY(step());
    passed.push_back(next);
    if (asked_reboot_) break;
    if (next == S::idle && before != S::idle) break;
    if (next == S::idle && before == S::idle) continue;  // idle → checking handled by do_check
    if (next == S::waiting_to_reboot && before == S::waiting_to_reboot) break;
  }
  return passed;
}

Result<FlowState> UpdateFlow::do_check() {
  if (record_.state == S::idle) return S::checking;
  auto plan = BALLAST_TRY(ports_.source.check(record_.denylist));
  ports_.reporter.report("checked", {{"available", plan ? nlohmann::json(plan->version.str()) : nlohmann::json(nullptr)}});
  if (!plan) return S::idle;
  auto booted = ports_.boot.booted_version();
  record_.target = plan->version;
  record_.plan = std::move(*plan);
  record_.from = value_if_ok(booted);
  record_.last_error.clear();
  return S::staging;
}

Result<FlowState> UpdateFlow::do_stage() {
  if (!record_.plan) return fail("flow.no-plan", "nothing to stage: the check's plan is missing");
  BALLAST_CHECK(ports_.source.stage(*record_.plan));
  return S::staged;
}

Result<FlowState> UpdateFlow::do_announce() {
  Version target = BALLAST_TRY(this->target());
  BALLAST_CHECK(ports_.rebooter.announce(target.str()));
  ports_.reporter.report("staged", {{"version", target.str()}, {"from", str_or_empty(record_.from)}});
  return S::waiting_to_reboot;
}

Result<FlowState> UpdateFlow::do_wait() {
  if (!BALLAST_TRY(ports_.gate.may_reboot_now())) return S::waiting_to_reboot;
  return S::rebooting;
}

Result<FlowState> UpdateFlow::do_reboot() {
  ports_.reporter.report("rebooting", {{"version", str_or_empty(record_.target)}});
  // Written first: whatever happens to this process, the next start verifies.
  BALLAST_CHECK(enter(S::verifying));
  asked_reboot_ = true;
  BALLAST_CHECK(ports_.rebooter.reboot());
  return S::verifying;
}

Result<FlowState> UpdateFlow::do_verify() {
  Version booted = BALLAST_TRY(ports_.boot.booted_version());
  Version target = BALLAST_TRY(this->target());
  ports_.reporter.report("booted", {{"version", booted.str()}, {"target", target.str()}});
  if (booted == record_.from && booted != target) return S::rolled_back;  // the loader fell back
  if (booted != target)
    return fail("flow.unexpected-boot", "booted " + booted.str() + ", neither the target " + target.str() + " nor " +
                                            str_or_empty(record_.from));
  auto health = BALLAST_TRY(ports_.health.run());
  if (health.healthy) {
    BALLAST_CHECK(ports_.boot.bless(target));
    ports_.reporter.report("health.passed", health_to_json(health));
    if (auto st = ports_.gate.steady_state(); !st) log::warning("steady-state not reported yet: " + st.error().describe());
    return S::committed;
  }
  ports_.reporter.report("health.failed", health_to_json(health));
  record_.last_error = "health checks failed:";
  for (const auto& f : health.failures()) record_.last_error += " " + f;
  BALLAST_CHECK(ports_.boot.mark_bad(target));
  if (rollback_by_ == RollbackBy::controller) return fail("health.failed", record_.last_error + " (the controller rolls back)");
  return S::reverting;
}

Result<FlowState> UpdateFlow::do_revert() {
  // Not gated (see agent/reboot/policy.hpp): the target is broken and already marked bad, and
  // under FleetLock this node still holds the slot it took to boot it.
  asked_reboot_ = true;
  BALLAST_CHECK(ports_.rebooter.reboot());
  return S::verifying;
}

Result<FlowState> UpdateFlow::do_finish() {
  auto now = std::chrono::duration_cast<std::chrono::seconds>(ports_.clock.now().time_since_epoch()).count();
  const std::string target = str_or_empty(record_.target), from = str_or_empty(record_.from);
  nlohmann::json line{{"time", now}, {"from", from}, {"target", target}, {"result", to_string(record_.state)}};
  if (record_.state == S::committed) {
    nlohmann::json event{{"version", target}, {"from", from}};
    // Only now that the release has booted and passed its checks does its loader replace the one
    // that booted it. A failure keeps the old loader, which still boots every entry: it is
    // reported, not a reason to roll a healthy release back.
    if (auto loader = ports_.source.update_loader(*record_.target)) {
      event["loader"] = boot::to_string(*loader);
    } else {
      log::warning("the boot loader was not updated: " + loader.error().describe());
      event["loader"] = "failed";
      event["loaderError"] = loader.error().describe();
    }
    ports_.reporter.report("committed", event);
  } else if (record_.state == S::rolled_back) {
    if (record_.target) denylist_insert(*record_.target);
    line["error"] = record_.last_error;
    ports_.reporter.report("rolled-back", {{"from", target}, {"to", from}, {"reason", record_.last_error}});
  } else {
    line["error"] = record_.last_error;
  }
  record_.history.push_back(line);
  if (record_.history.size() > 100) record_.history.erase(record_.history.begin());
  record_.target.reset();
  record_.plan.reset();
  return S::idle;
}

}  // namespace ballast::agent
