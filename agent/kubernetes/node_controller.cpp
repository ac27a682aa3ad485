#include "agent/kubernetes/node_controller.hpp"

#include <algorithm>
#include <random>

#include "agent/report/outbox.hpp"
#include "common/file.hpp"
#include "common/json_member.hpp"
#include "common/log.hpp"

namespace ballast::agent::kubernetes {

using nlohmann::json;

namespace {

constexpr const char* kFile = "kubernetes.json";
constexpr size_t kAnswersKept = 64;

json answer_json(const std::string& id, std::optional<Operation> op, Phase phase, const json& error,
                 const std::string& rolled_back_from) {
  return {{"operationId", id},
          {"operation", op ? json(to_string(*op)) : json(nullptr)},
          {"phase", to_string(phase)},
          {"error", error},
          {"rolledBackFrom", rolled_back_from}};
}

}  // namespace

Result<std::unique_ptr<NodeController>> NodeController::open(KubeApi& kube, AgentApi& agent, const Clock& clock,
                                                             NodeControllerOptions options) {
  std::unique_ptr<NodeController> c(new NodeController(kube, agent, clock, std::move(options)));
  BALLAST_CHECK(c->load());
  // A rollback asked for before a reboot: answered once the node runs another version.
  if (c->current_.operation == Operation::rollback &&
      (c->current_.phase == Phase::Rebooting || c->current_.phase == Phase::WaitingToReboot)) {
    auto status = BALLAST_TRY(agent.status());
    if (!status.booted.empty() && status.booted != c->current_.from) {
      std::lock_guard lock(c->mutex_);
      c->current_.phase = Phase::RolledBack;
      c->current_.rolled_back_from = c->current_.from;
      c->changed_locked();
    }
  }
  return c;
}

NodeController::~NodeController() { stop(); }

Status NodeController::load() {
  const std::string path = path_join(opts_.state_dir, kFile);
  auto text = read_file(path, 1 << 20);
  if (!text) return text.error().code == "io.not-found" ? ok() : Status(tl::unexpected(text.error()));
  auto j = json::parse(*text, nullptr, false);
  if (!j.is_object()) return fail("kubernetes.corrupt", path + " is not a JSON object");
  handled_request_ = string_member(j, "handledRequest");
  const json c = j.contains("current") && j["current"].is_object() ? j["current"] : json::object();
  current_.operation_id = string_member(c, "operationId");
  std::string op = string_member(c, "operation");
  for (auto o : {Operation::stage, Operation::reboot, Operation::rollback, Operation::pin, Operation::unpin})
    if (op == to_string(o)) current_.operation = o;
  current_.from = string_member(c, "from");
  current_.phase = phase_from_string(string_member(c, "phase", "Idle")).value_or(Phase::Idle);
  current_.error = c.contains("error") ? c["error"] : json(nullptr);
  current_.rolled_back_from = string_member(c, "rolledBackFrom");
  if (j.contains("answers") && j["answers"].is_array())
    for (const auto& a : j["answers"])
      if (a.is_object() && a.contains("operationId") && a["operationId"].is_string())
        answers_.emplace_back(a["operationId"].get<std::string>(), a);
  return ok();
}

Status NodeController::save_locked() {
  json answers = json::array();
  for (const auto& [id, a] : answers_) answers.push_back(a);
  json c = answer_json(current_.operation_id, current_.operation, current_.phase, current_.error, current_.rolled_back_from);
  c["from"] = current_.from;
  json j{{"handledRequest", handled_request_}, {"current", c}, {"answers", answers}};
  return write_file_atomic(path_join(opts_.state_dir, kFile), j.dump() + "\n", 0600);
}

void NodeController::changed_locked() {
  record_locked();
  dirty_ = true;
  cv_.notify_all();
}

void NodeController::record_locked() {
  if (!current_.operation_id.empty()) {
    json a = answer_json(current_.operation_id, current_.operation, current_.phase, current_.error, current_.rolled_back_from);
    auto it = std::find_if(answers_.begin(), answers_.end(), [&](const auto& e) { return e.first == current_.operation_id; });
    if (it != answers_.end()) it->second = a;
    else answers_.emplace_back(current_.operation_id, a);
    while (answers_.size() > kAnswersKept) answers_.pop_front();
  }
  if (auto st = save_locked(); !st) log::warning("kubernetes: " + st.error().describe());
}

void NodeController::on_node(const NodeObject& node) {
  auto it = node.annotations.find(kRequestAnnotation);
  if (it == node.annotations.end()) return;
  const std::string& text = it->second;
  std::optional<UpdateRequest> request;
  {
    std::lock_guard lock(mutex_);
    if (text == handled_request_) return;  // our own status patch echoed, a relist, a restart
    handled_request_ = text;
    auto parsed = parse_request(text);
    if (!parsed) {
      // Nothing is carried out; the status says why, under the operationId when there is one.
      auto j = json::parse(text, nullptr, false);
      current_ = Answer{};
      if (j.is_object() && j.contains("operationId") && j["operationId"].is_string()) current_.operation_id = j["operationId"];
      current_.error = {{"code", parsed.error().code}, {"message", parsed.error().message}};
      log::warning("kubernetes: " + parsed.error().describe());
      changed_locked();
      return;
    }
    auto seen = std::find_if(answers_.begin(), answers_.end(), [&](const auto& e) { return e.first == parsed->operation_id; });
    if (seen != answers_.end()) {
      log::info("kubernetes: operation " + parsed->operation_id + " was carried out already; not again");
      if (auto st = save_locked(); !st) log::warning("kubernetes: " + st.error().describe());
      return;
    }
    auto status = agent_.status();
    current_ = Answer{};
    current_.operation_id = parsed->operation_id;
    current_.operation = parsed->operation;
    current_.from = status ? status->booted : "";
    current_.phase = status ? phase_after(flow_state_from_string(status->state).value_or(FlowState::idle), Phase::Idle,
                                          parsed->operation)
                            : Phase::Idle;
    // Recorded before it is carried out (a crash in between does not carry it out twice), answered
    // after: the status never names an operation that has not happened yet.
    record_locked();
    request = *parsed;
  }
  log::info(std::string("kubernetes: ") + to_string(request->operation) + " (operation " + request->operation_id + ")");
  auto st = carry_out(*request);
  std::lock_guard lock(mutex_);
  if (!st) {
    log::warning("kubernetes: " + st.error().describe());
    current_.error = {{"code", st.error().code}, {"message", st.error().describe()}};
  } else if (request->operation == Operation::rollback && current_.operation_id == request->operation_id) {
    current_.phase = Phase::Rebooting;
  }
  changed_locked();
}

Status NodeController::carry_out(const UpdateRequest& r) {
  switch (r.operation) {
    case Operation::stage:
    case Operation::reboot: {
      // A version chosen by the controller is a pin: the planner then goes there and nowhere else.
      if (r.version) BALLAST_CHECK(agent_.pin(r.version->str()));
      UpdateOptions o;
      o.download_only = r.operation == Operation::stage;
      o.apply = r.operation == Operation::reboot;
      return agent_.update(o);
    }
    case Operation::rollback: return agent_.rollback(true);
    case Operation::pin: return agent_.pin(r.version->str());
    case Operation::unpin: return agent_.unpin();
  }
  return ok();
}

void NodeController::on_transition(const std::string&, const std::string& to) {
  auto state = flow_state_from_string(to);
  if (!state) return;
  std::lock_guard lock(mutex_);
  Phase next = phase_after(*state, current_.phase, current_.operation);
  if (next == current_.phase) return;
  current_.phase = next;
  if (next == Phase::Checking || next == Phase::Staging) current_.error = nullptr;
  changed_locked();
}

void NodeController::on_progress(const Progress&) {}  // the heartbeat carries it; not a transition

json NodeController::status_json() {
  auto status = agent_.status();
  AgentStatus s = status ? *status : AgentStatus{};
  std::lock_guard lock(mutex_);
  json error = current_.error;
  if (error.is_null() && current_.phase == Phase::Failed && !s.last_error.empty()) error = error_json(s.last_error);
  std::string rolled_back_from = current_.rolled_back_from;
  if (current_.phase == Phase::RolledBack && rolled_back_from.empty()) {
    // The flow rolled back on its own: the version it left is in its last history line.
    if (auto h = agent_.history(); h && h->is_array() && !h->empty() && string_member(h->back(), "result") == "rolled-back")
      rolled_back_from = string_member(h->back(), "target");
  }
  return {{"schemaVersion", 1},
          {"operationId", current_.operation_id},
          {"operation", current_.operation ? json(to_string(*current_.operation)) : json(nullptr)},
          {"phase", to_string(current_.phase)},
          {"bootedVersion", s.booted},
          {"stagedVersion", s.staged},
          {"rollbackVersion", current_.from != s.booted ? current_.from : std::string()},
          {"pinnedVersion", s.pinned},
          {"progress", {{"bytesDone", s.progress.bytes}, {"bytesTotal", s.progress.total_bytes}}},
          {"lastError", error},
          {"rolledBackFrom", rolled_back_from},
          {"heartbeat", report::rfc3339(clock_.now())}};
}

Status NodeController::publish() {
  json status = status_json();
  return kube_.patch_annotations(opts_.node_name, {{kStatusAnnotation, status.dump()}});
}

Status NodeController::sync() {
  if (resource_version_.empty()) {
    auto list = BALLAST_TRY(kube_.list_node(opts_.node_name));
    if (!list.node) return fail("kubernetes.no-node", "there is no Node named " + opts_.node_name);
    on_node(*list.node);
    resource_version_ = list.resource_version;
  }
  auto st = kube_.watch_node(
      opts_.node_name, resource_version_,
      [&](const WatchEvent& e) {
        if (!e.node.resource_version.empty()) resource_version_ = e.node.resource_version;
        if (e.type == "ADDED" || e.type == "MODIFIED") on_node(e.node);
      },
      stop_);
  // Gone, or away: what happened meanwhile is read from a new list.
  if (!st) resource_version_.clear();
  return st;
}

bool NodeController::sleep_for(std::chrono::milliseconds d) {
  std::unique_lock lock(mutex_);
  cv_.wait_for(lock, d, [&] { return stop_.load(); });
  return !stop_;
}

std::chrono::milliseconds WatchBackoff::after(const Status& sync) {
  if (sync) {
    backoff_ = base_;
    gone_before_ = false;
    return std::chrono::milliseconds(0);
  }
  const bool gone = sync.error().code == "kubernetes.gone";
  if (gone && !gone_before_) {
    gone_before_ = true;
    return std::chrono::milliseconds(0);
  }
  gone_before_ = gone;
  // Jittered, so that a fleet does not come back to a restarted API server all at once.
  auto wait = backoff_ / 2 + std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(0, backoff_.count() / 2)(rng_));
  backoff_ = std::min(backoff_ * 2, max_);
  return std::max(wait, std::chrono::milliseconds(1));
}

void NodeController::watch_loop() {
  WatchBackoff backoff(opts_.backoff_base, opts_.backoff_max);
  while (!stop_) {
    auto st = sync();
    if (stop_) break;
    auto wait = backoff.after(st);
    if (st) continue;
    if (wait.count() == 0) {
      log::info("kubernetes: the watch's resourceVersion is gone; listing again");
      continue;
    }
    log::warning("kubernetes: watching Node " + opts_.node_name + ": " + st.error().describe() + "; again in " +
                 std::to_string(wait.count()) + " ms");
    if (!sleep_for(wait)) break;
  }
}

void NodeController::write_loop() {
  auto backoff = opts_.backoff_base;
  auto next_heartbeat = std::chrono::steady_clock::now();
  while (!stop_) {
    {
      std::unique_lock lock(mutex_);
      auto due = [&] { return stop_ || dirty_ || (opts_.heartbeat.count() > 0 && std::chrono::steady_clock::now() >= next_heartbeat); };
      if (opts_.heartbeat.count() > 0) cv_.wait_until(lock, next_heartbeat, due);
      else cv_.wait(lock, due);
      if (stop_) break;
      dirty_ = false;
    }
    if (auto st = publish(); !st) {
      log::warning("kubernetes: writing the status of Node " + opts_.node_name + ": " + st.error().describe());
      {
        std::lock_guard lock(mutex_);
        dirty_ = true;
      }
      if (!sleep_for(backoff)) break;
      backoff = std::min(backoff * 2, opts_.backoff_max);
      continue;
    }
    backoff = opts_.backoff_base;
    next_heartbeat = std::chrono::steady_clock::now() + opts_.heartbeat;
  }
}

void NodeController::start() {
  stop_ = false;
  watcher_ = std::thread([this] { watch_loop(); });
  writer_ = std::thread([this] { write_loop(); });
}

void NodeController::stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
  if (writer_.joinable()) writer_.join();
}

}  // namespace ballast::agent::kubernetes
