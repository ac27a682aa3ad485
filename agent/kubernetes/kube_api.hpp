// The three calls the agent makes to the Kubernetes API, all about its own Node (the Node
// authorizer lets a kubelet's identity modify nothing else): list it (for the resourceVersion to
// watch from), watch it, and merge-patch its annotations. Real: libcurl (kube_api.cpp); fake:
// FakeKubeApi below.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/kubernetes/kubeconfig.hpp"
#include "common/result.hpp"

namespace ballast::agent::kubernetes {

struct NodeObject {
  std::string name;
  std::string resource_version;
  std::map<std::string, std::string> annotations;
};

// A Node from its JSON ("kubernetes.bad-object" when it has no metadata).
Result<NodeObject> node_from_json(const nlohmann::json& j);

struct NodeList {
  std::string resource_version;    // the list's: where a watch starts
  std::optional<NodeObject> node;  // nullopt: no Node of that name (yet)
};

// One line of a watch stream. type: ADDED, MODIFIED, DELETED, BOOKMARK (only resource_version
// set) or ERROR (status_code: 410 when the resourceVersion is too old).
struct WatchEvent {
  std::string type;
  NodeObject node;
  int status_code = 0;
};

// Error codes: "kubernetes.gone" (410: relist), "kubernetes.conflict" (409: a stale
// resourceVersion), "kubernetes.unauthorized" (401), "kubernetes.forbidden" (403),
// "kubernetes.status" (other non-2xx), "http.transfer" (no answer).
class KubeApi {
 public:
  virtual ~KubeApi() = default;
  virtual Result<NodeList> list_node(const std::string& name) = 0;
  // Streams the Node's changes after `resource_version` (with bookmarks) to `on_event` until the
  // server ends the stream (ok), `stop` turns true (ok) or the stream fails. An ERROR event with
  // 410 ends it with "kubernetes.gone".
  virtual Status watch_node(const std::string& name, const std::string& resource_version,
                            const std::function<void(const WatchEvent&)>& on_event, const std::atomic<bool>& stop) = 0;
  // A JSON merge patch of metadata.annotations (a null value removes one). With
  // `resource_version` the server refuses it when the Node changed since (409).
  virtual Status patch_annotations(const std::string& name, const nlohmann::json& annotations,
                                   const std::string& resource_version = "") = 0;
};

std::unique_ptr<KubeApi> make_curl_kube_api(Kubeconfig kubeconfig);

// One Node in memory. A watch fails with 410 while `gone_next` counts down, else delivers the
// queued events (after a short wait when there are none) and returns; every patch is applied,
// recorded and queued as a MODIFIED event. `calls` records "list", "watch" and "watch: 410" in order.
class FakeKubeApi final : public KubeApi {
 public:
  std::mutex mutex;
  NodeObject node;
  std::deque<WatchEvent> events;
  std::vector<nlohmann::json> patches;
  int gone_next = 0;
  std::vector<std::string> calls;
  std::optional<Error> down;  // every call fails with it
  int lists = 0;

  Result<NodeList> list_node(const std::string& name) override;
  Status watch_node(const std::string& name, const std::string& resource_version,
                    const std::function<void(const WatchEvent&)>& on_event, const std::atomic<bool>& stop) override;
  Status patch_annotations(const std::string& name, const nlohmann::json& annotations,
                           const std::string& resource_version = "") override;
  // Sets an annotation as a controller would, and queues the MODIFIED event.
  void annotate(const std::string& key, const std::string& value);

 private:
  void bump_locked();
};

}  // namespace ballast::agent::kubernetes
