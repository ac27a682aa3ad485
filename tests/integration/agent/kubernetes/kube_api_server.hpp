// kube-apiserver.mjs (a Kubernetes API server for Nodes that follows the protocol: list, watch
// with bookmarks and 410, merge patch with 409, 401/403) over HTTPS with a CA of its own, serving
// the Node "node-a". The node's identity is the test client certificate (user
// system:node:node-a) or the bearer token "node-token"; a controller's is the bearer token "admin-token". Its state survives
// stop() and start() on the same port: an API server that was away.
#pragma once

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <thread>

#include "common/file.hpp"
#include "common/process.hpp"
#include "repository/http.hpp"
#include "tests/integration/support/http_servers.hpp"

namespace ballast::testing {

inline const std::string kKubeDir = BALLAST_SOURCE_ROOT "/tests/integration/agent/kubernetes";

struct KubeApiServer {
  std::string dir = make_temp_dir("ballast-kube").value();
  ChildProcess proc;
  int port = 0;

  KubeApiServer() {
    REQUIRE(make_test_certificates(dir));
    start();
    write_kubeconfig(dir + "/kubelet.conf", "system:node:node-a",
                     "    client-certificate: client.pem\n    client-key: client.key\n");
    write_kubeconfig(dir + "/admin.conf", "admin", "    token: admin-token\n");
  }
  ~KubeApiServer() {
    proc.stop();
    (void)remove_tree(dir);
  }
  void start() {
    const std::string port_file = dir + "/port";
    (void)remove_tree(port_file);
    auto p = ChildProcess::spawn({"node", kKubeDir + "/kube-apiserver.mjs", "--port-file", port_file, "--port",
                                  std::to_string(port), "--state-file", dir + "/state.json", "--node", "node-a", "--tls-cert",
                                  dir + "/server.pem", "--tls-key", dir + "/server.key", "--client-ca", dir + "/ca.pem",
                                  "--cn-user", "ballast client=system:node:node-a", "--token", "admin-token=admin",
                                  "--token", "node-token=system:node:node-a"});
    REQUIRE(p);
    proc = std::move(*p);
    auto listening = wait_for_port_file(port_file);
    REQUIRE(listening);
    port = *listening;
  }
  void stop() { proc.stop(); }
  std::string url() const { return "https://localhost:" + std::to_string(port); }
  std::string kubelet_conf() const { return dir + "/kubelet.conf"; }
  std::string admin_conf() const { return dir + "/admin.conf"; }

  // kubectl, as a cluster admin.
  ProcessResult kubectl(std::vector<std::string> args) const {
    args.insert(args.begin(), {"kubectl", "--kubeconfig", admin_conf()});
    auto r = run_process(args);
    REQUIRE(r);
    INFO(r->err);
    return *r;
  }
  // The request annotation, set by kubectl.
  void request(const std::string& json) const {
    auto r = kubectl({"annotate", "--overwrite", "node", "node-a", "ballast.dev/update-request=" + json});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
  }
  // The controller script on @kubernetes/client-node.
  ProcessResult controller(std::vector<std::string> args) const {
    args.insert(args.begin(), {"node", kKubeDir + "/node-controller.mjs", admin_conf()});
    SpawnOptions o;
    o.extra_env = {"BALLAST_INTEROP=" BALLAST_SOURCE_ROOT "/tests/interop"};
    auto r = run_process(args, o);
    REQUIRE(r);
    return *r;
  }
  // Waits (through the client-node watch) for the status to answer `operation_id` with one of
  // `phases` ("Staged,Failed"); returns that status.
  nlohmann::json wait_for(const std::string& operation_id, const std::string& phases) const {
    auto r = controller({"wait", "node-a", operation_id, phases, "90"});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return nlohmann::json::parse(r.out);
  }
  // The Node as `kubectl get node -o json` shows it.
  nlohmann::json node() const {
    auto r = kubectl({"get", "node", "node-a", "-o", "json"});
    REQUIRE(r.exit_code == 0);
    return nlohmann::json::parse(r.out);
  }
  // A kubeconfig of the node's user with these credentials (YAML lines under `user:`), at dir/name.
  std::string node_kubeconfig(const std::string& name, const std::string& credentials) {
    write_kubeconfig(dir + "/" + name, "system:node:node-a", credentials);
    return dir + "/" + name;
  }
  nlohmann::json admin(const std::string& method, const std::string& path) const {
    repository::HttpSettings s;
    s.ca_bundle = dir + "/ca.pem";
    auto http = repository::make_curl_http_client(s);
    auto r = method == "GET" ? http->get(url() + path, 1 << 20) : http->post(url() + path, "", {});
    REQUIRE(r);
    return nlohmann::json::parse(r->body);
  }

 private:
  void write_kubeconfig(const std::string& path, const std::string& user, const std::string& credentials) {
    REQUIRE(write_file_atomic(path, "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: " + url() +
                                        "\n    certificate-authority: ca.pem\ncontexts:\n- name: ctx\n  context:\n    cluster: test\n"
                                        "    user: " + user + "\ncurrent-context: ctx\nusers:\n- name: " + user + "\n  user:\n" +
                                        credentials));
  }
};

}  // namespace ballast::testing
