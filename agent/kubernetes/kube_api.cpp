#include "agent/kubernetes/kube_api.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cstdint>
#include <thread>

#include "common/file.hpp"
#include "common/json_member.hpp"
#include "repository/curl_library.hpp"
#include "repository/curl_options.hpp"

namespace ballast::agent::kubernetes {

using nlohmann::json;

Result<NodeObject> node_from_json(const json& j) {
  if (!j.is_object() || !j.contains("metadata") || !j["metadata"].is_object())
    return fail("kubernetes.bad-object", "a Node without metadata");
  const json& m = j["metadata"];
  NodeObject n;
  n.name = string_member(m, "name");
  n.resource_version = string_member(m, "resourceVersion");
  if (m.contains("annotations") && m["annotations"].is_object())
    for (const auto& [k, v] : m["annotations"].items())
      if (v.is_string()) n.annotations[k] = v.get<std::string>();
  return n;
}

namespace {

tl::unexpected<Error> status_error(long status, const std::string& what, const std::string& body) {
  std::string message = what + ": HTTP " + std::to_string(status);
  auto j = json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("message") && j["message"].is_string()) message += ": " + j["message"].get<std::string>();
  switch (status) {
    case 401: return fail("kubernetes.unauthorized", message + " (the API server refused the kubeconfig's credentials)");
    case 403: return fail("kubernetes.forbidden", message);
    case 409: return fail("kubernetes.conflict", message);
    case 410: return fail("kubernetes.gone", message);
    default: return fail("kubernetes.status", message);
  }
}

struct Transfer {
  std::string body;
  size_t max_bytes = 4 << 20;
  bool too_large = false;
  // Watch: every complete line goes here as it arrives.
  std::function<void(const std::string&)> on_line;
  const std::atomic<bool>* stop = nullptr;
};

size_t on_write(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  t->body.append(ptr, size * nmemb);
  if (t->on_line) {
    for (size_t nl; (nl = t->body.find('\n')) != std::string::npos;) {
      std::string line = t->body.substr(0, nl);
      t->body.erase(0, nl + 1);
      if (!line.empty()) t->on_line(line);
    }
  }
  if (t->body.size() > t->max_bytes) {
    t->too_large = true;
    return 0;
  }
  return size * nmemb;
}

int on_watch_progress(void* userdata, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(userdata);
  return t->stop && t->stop->load() ? 1 : 0;
}

void set_blob(CURL* curl, CURLoption option, const std::string& data) {
  curl_blob blob{const_cast<char*>(data.data()), data.size(), CURL_BLOB_COPY};
  curl_easy_setopt(curl, option, &blob);
}

class CurlKubeApi final : public KubeApi {
 public:
  explicit CurlKubeApi(Kubeconfig k) : k_(std::move(k)) {}

  Result<NodeList> list_node(const std::string& name) override {
    auto body = BALLAST_TRY(request("GET", "/api/v1/nodes?fieldSelector=metadata.name%3D" + name, nullptr, nullptr));
    auto j = json::parse(body, nullptr, false);
    if (!j.is_object() || !j.contains("items") || !j["items"].is_array())
      return fail("kubernetes.bad-object", "the Node list is not a NodeList");
    NodeList out;
    if (j.contains("metadata")) out.resource_version = string_member(j["metadata"], "resourceVersion");
    for (const auto& item : j["items"]) {
      auto node = BALLAST_TRY(node_from_json(item));
      if (node.name == name) out.node = std::move(node);
    }
    return out;
  }

  Status watch_node(const std::string& name, const std::string& rv, const std::function<void(const WatchEvent&)>& on_event,
                    const std::atomic<bool>& stop) override {
    Transfer t;
    t.stop = &stop;
    std::optional<Error> gone;
    t.on_line = [&](const std::string& line) {
      auto j = json::parse(line, nullptr, false);
      if (!j.is_object() || !j.contains("type") || !j["type"].is_string() || !j.contains("object")) return;
      WatchEvent e;
      e.type = j["type"];
      if (e.type == "ERROR") {
        e.status_code = static_cast<int>(std::clamp<int64_t>(integer_member(j["object"], "code", 0), 0, 999));
        if (e.status_code == 410) gone = Error{"kubernetes.gone", "watch from resourceVersion " + rv + ": 410 Gone", 0, {}};
      } else if (auto node = node_from_json(j["object"])) {
        e.node = std::move(*node);
      } else {
        return;
      }
      on_event(e);
    };
    auto body = request("GET",
                        "/api/v1/nodes?fieldSelector=metadata.name%3D" + name + "&watch=1&allowWatchBookmarks=true&resourceVersion=" +
                            rv + "&timeoutSeconds=" + std::to_string(kWatchSeconds),
                        nullptr, &t);
    if (gone) return tl::unexpected(*gone);
    if (!body && stop) return ok();
    if (!body) return tl::unexpected(body.error());
    return ok();
  }

  Status patch_annotations(const std::string& name, const json& annotations, const std::string& rv) override {
    json patch{{"metadata", {{"annotations", annotations}}}};
    if (!rv.empty()) patch["metadata"]["resourceVersion"] = rv;
    std::string body = patch.dump();
    BALLAST_CHECK(request("PATCH", "/api/v1/nodes/" + name, &body, nullptr));
    return ok();
  }

 private:
  static constexpr int kWatchSeconds = 300;  // the server ends the watch then; the agent watches anew

  Result<std::string> request(const char* method, const std::string& path, const std::string* body, Transfer* watch) {
    CURL* curl = curl_easy_init();
    if (!curl) return fail("http.init", repository::curl_init_error());
    std::unique_ptr<CURL, void (*)(CURL*)> free_curl(curl, curl_easy_cleanup);
    repository::HttpSettings s;
    s.ca_bundle = k_.ca.path;
    s.client_cert = k_.client_cert.path;
    s.client_key = k_.client_key.path;
    s.connect_timeout = std::chrono::seconds(10);
    if (watch) s.low_speed_limit = 0;  // an idle watch is not a stalled one
    repository::StallDetector stall(s);
    const std::string url = k_.server + path;
    repository::apply_http_settings(curl, url, s, 0, stall);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https,http");
    if (!k_.ca.data.empty()) set_blob(curl, CURLOPT_CAINFO_BLOB, k_.ca.data);
    if (!k_.client_cert.data.empty()) set_blob(curl, CURLOPT_SSLCERT_BLOB, k_.client_cert.data);
    if (!k_.client_key.data.empty()) set_blob(curl, CURLOPT_SSLKEY_BLOB, k_.client_key.data);
    if (k_.insecure_skip_tls_verify) curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    Transfer plain;
    Transfer* t = watch ? watch : &plain;
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, t);
    if (watch) {
      curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_watch_progress);
      curl_easy_setopt(curl, CURLOPT_XFERINFODATA, watch);
      curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
    } else {
      curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
    }
    curl_slist* headers = curl_slist_append(nullptr, "Accept: application/json");
    std::string token = k_.token;
    if (!k_.token_file.empty()) {
      auto text = BALLAST_TRY(read_file(k_.token_file, 64 << 10));
      while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
      token = text;
    }
    if (!token.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
    if (body) headers = curl_slist_append(headers, "Content-Type: application/merge-patch+json");
    std::unique_ptr<curl_slist, void (*)(curl_slist*)> free_headers(headers, curl_slist_free_all);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
    }
    CURLcode rc = curl_easy_perform(curl);
    if (t->too_large) return fail("http.too-large", url + " answered more than " + std::to_string(t->max_bytes) + " bytes");
    if (rc != CURLE_OK) return fail("http.transfer", url + ": " + curl_easy_strerror(rc));
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299) return status_error(status, std::string(method) + " " + path, t->body);
    return std::move(t->body);
  }

  Kubeconfig k_;
};

}  // namespace

std::unique_ptr<KubeApi> make_curl_kube_api(Kubeconfig kubeconfig) { return std::make_unique<CurlKubeApi>(std::move(kubeconfig)); }

// --- the fake ---

void FakeKubeApi::bump_locked() { node.resource_version = std::to_string(std::stoll("0" + node.resource_version) + 1); }

Result<NodeList> FakeKubeApi::list_node(const std::string& name) {
  std::lock_guard lock(mutex);
  if (down) return tl::unexpected(*down);
  ++lists;
  calls.push_back("list");
  events.clear();  // a list sees the present: nothing older is delivered again
  NodeList out{node.resource_version, std::nullopt};
  if (node.name == name) out.node = node;
  return out;
}

Status FakeKubeApi::watch_node(const std::string&, const std::string& rv, const std::function<void(const WatchEvent&)>& on_event,
                               const std::atomic<bool>&) {
  std::deque<WatchEvent> batch;
  {
    std::lock_guard lock(mutex);
    if (down) return tl::unexpected(*down);
    if (gone_next > 0) {
      --gone_next;
      calls.push_back("watch: 410");
      return fail("kubernetes.gone", "watch from resourceVersion " + rv + ": 410 Gone");
    }
    calls.push_back("watch");
    batch.swap(events);
  }
  // As a server holds an idle watch open: a caller's loop does not spin.
  if (batch.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  for (const auto& e : batch) on_event(e);
  return ok();
}

Status FakeKubeApi::patch_annotations(const std::string& name, const json& annotations, const std::string& rv) {
  std::lock_guard lock(mutex);
  if (down) return tl::unexpected(*down);
  if (name != node.name) return fail("kubernetes.forbidden", "only its own Node");
  if (!rv.empty() && rv != node.resource_version) return fail("kubernetes.conflict", "stale resourceVersion " + rv);
  patches.push_back(annotations);
  for (const auto& [k, v] : annotations.items()) {
    if (v.is_null()) node.annotations.erase(k);
    else node.annotations[k] = v.get<std::string>();
  }
  bump_locked();
  events.push_back({"MODIFIED", node, 0});
  return ok();
}

void FakeKubeApi::annotate(const std::string& key, const std::string& value) {
  std::lock_guard lock(mutex);
  node.annotations[key] = value;
  bump_locked();
  events.push_back({"MODIFIED", node, 0});
}

}  // namespace ballast::agent::kubernetes
