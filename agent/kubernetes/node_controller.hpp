// The agent's side of the Node contract (contract.hpp): a watcher thread lists and watches the
// node's own Node (from the list's resourceVersion, with bookmarks; relists on 410 Gone; backs off
// and relists when the API server is away) and carries each new request out through AgentApi, as
// the D-Bus API does; a writer thread merge-patches the status annotation on every transition and
// heartbeat, and no more often, retrying until the API server takes it. The last request handled,
// the current operation and the answer to every recent operationId live in
// <state>/kubernetes.json, so a request seen again (our own status patch echoes it back, a
// restart, a reboot) is never carried out twice.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "agent/api.hpp"
#include "agent/kubernetes/contract.hpp"
#include "agent/kubernetes/kube_api.hpp"
#include "common/clock.hpp"

namespace ballast::agent::kubernetes {

struct NodeControllerOptions {
  std::string node_name;
  std::string state_dir;
  std::chrono::milliseconds heartbeat{std::chrono::minutes(1)};  // 0: transitions only
  std::chrono::milliseconds backoff_base{std::chrono::seconds(1)};
  std::chrono::milliseconds backoff_max{std::chrono::seconds(30)};
};

// How long the watcher waits before its next sync, from how the last one ended: a success resets
// the backoff and syncs at once; a first 410 Gone relists at once (the list's resourceVersion is
// the newest); a second 410 in a row, or any other failure, waits a jittered backoff that doubles
// up to `max` (against a server whose lists cannot be watched, or one that is away).
class WatchBackoff {
 public:
  WatchBackoff(std::chrono::milliseconds base, std::chrono::milliseconds max, uint64_t seed = std::random_device{}())
      : base_(base), max_(max), backoff_(base), rng_(seed) {}
  std::chrono::milliseconds after(const Status& sync);

 private:
  std::chrono::milliseconds base_, max_, backoff_;
  bool gone_before_ = false;
  std::mt19937_64 rng_;
};

class NodeController final : public AgentObserver {
 public:
  // Loads <state>/kubernetes.json. An operation that rebooted the node gets its answer here: a
  // rollback whose reboot left the version it was asked on is RolledBack.
  static Result<std::unique_ptr<NodeController>> open(KubeApi& kube, AgentApi& agent, const Clock& clock,
                                                      NodeControllerOptions options);
  ~NodeController() override;

  void start();  // the watcher and writer threads
  void stop();   // ends and joins them

  // A Node as listed or watched: carries out its request if it is new.
  void on_node(const NodeObject& node);
  // The status annotation now.
  nlohmann::json status_json();
  // Writes it (one merge patch).
  Status publish();
  // One watch from the last resourceVersion, after a list when there is none (the first call,
  // after 410 Gone or a failure: a list catches up on what changed meanwhile).
  Status sync();

  void on_transition(const std::string& from, const std::string& to) override;
  void on_progress(const Progress& progress) override;

 private:
  struct Answer {
    std::string operation_id;
    std::optional<Operation> operation;
    std::string from;  // the booted version when the operation was accepted
    Phase phase = Phase::Idle;
    nlohmann::json error;  // null, or {"code","message"}
    std::string rolled_back_from;
  };
  NodeController(KubeApi& kube, AgentApi& agent, const Clock& clock, NodeControllerOptions options)
      : kube_(kube), agent_(agent), clock_(clock), opts_(std::move(options)) {}
  Status load();
  Status save_locked();
  void record_locked();   // records the current answer and saves
  void changed_locked();  // record_locked(), and wakes the writer
  Status carry_out(const UpdateRequest& request);
  void watch_loop();
  void write_loop();
  bool sleep_for(std::chrono::milliseconds d);  // false when stopping

  KubeApi& kube_;
  AgentApi& agent_;
  const Clock& clock_;
  NodeControllerOptions opts_;

  std::mutex mutex_;  // guards everything below
  std::condition_variable cv_;
  std::string handled_request_;  // the annotation text last acted on
  Answer current_;
  std::deque<std::pair<std::string, nlohmann::json>> answers_;  // operationId → answer, newest last
  bool dirty_ = true;
  std::atomic<bool> stop_{false};
  std::string resource_version_;  // the watcher's
  std::thread watcher_, writer_;
};

}  // namespace ballast::agent::kubernetes
