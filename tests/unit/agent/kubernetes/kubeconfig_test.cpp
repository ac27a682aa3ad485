#include <catch2/catch.hpp>

#include "agent/kubernetes/kubeconfig.hpp"
#include "common/file.hpp"

using namespace ballast;
using namespace ballast::agent::kubernetes;

namespace {

// What kubeadm writes for a kubelet: paths to the rotated client certificate, inline CA.
const char* kKubeletConf = R"(apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
    server: https://10.0.0.1:6443/
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: system:node:worker-7
  name: system:node:worker-7@kubernetes
current-context: system:node:worker-7@kubernetes
preferences: {}
users:
- name: system:node:worker-7
  user:
    client-certificate: pki/kubelet-client-current.pem
    client-key: /var/lib/kubelet/pki/kubelet-client-current.pem
)";

}  // namespace

TEST_CASE("a kubelet kubeconfig gives the server, the inline CA, the certificate paths and the node's name") {
  auto k = parse_kubeconfig(kKubeletConf, "/var/lib/kubelet");
  REQUIRE(k);
  CHECK(k->server == "https://10.0.0.1:6443");
  CHECK(k->ca.data == "-----BEGIN CERTIFICATE-----\n");
  CHECK(k->ca.path.empty());
  CHECK(k->client_cert.path == "/var/lib/kubelet/pki/kubelet-client-current.pem");  // relative to the kubeconfig
  CHECK(k->client_key.path == "/var/lib/kubelet/pki/kubelet-client-current.pem");
  CHECK(k->token.empty());
  CHECK(k->user == "system:node:worker-7");
  CHECK(node_name("", *k, "host-1") == "worker-7");
  CHECK(node_name("configured", *k, "host-1") == "configured");
}

TEST_CASE("a kubeconfig in JSON with a token file and inline client data is read the same way") {
  const std::string text = R"({"apiVersion":"v1","kind":"Config","current-context":"c",
    "clusters":[{"name":"k","cluster":{"server":"https://api:443","certificate-authority":"/etc/ca.pem"}}],
    "contexts":[{"name":"c","context":{"cluster":"k","user":"u"}}],
    "users":[{"name":"u","user":{"tokenFile":"token","client-certificate-data":"Y2VydA==","client-key-data":"a2V5"}}]})";
  auto k = parse_kubeconfig(text, "/etc/kubernetes");
  REQUIRE(k);
  CHECK(k->ca.path == "/etc/ca.pem");
  CHECK(k->client_cert.data == "cert");
  CHECK(k->client_key.data == "key");
  CHECK(k->token_file == "/etc/kubernetes/token");
  CHECK(node_name("", *k, "host-1") == "host-1");  // the user names no node
}

TEST_CASE("a kubeconfig that cannot reach the API server as a node is refused with kubeconfig.invalid") {
  auto bad = [](const std::string& text) {
    auto k = parse_kubeconfig(text, "/");
    REQUIRE_FALSE(k);
    CHECK(k.error().code == "kubeconfig.invalid");
    return k.error().message;
  };
  CHECK_THAT(bad("a: [unclosed"), Catch::Contains("not YAML"));
  CHECK_THAT(bad("current-context: x\n"), Catch::Contains("no context named"));
  const std::string head = "current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nclusters:\n- name: k\n  cluster: {server: ";
  CHECK_THAT(bad(head + "ftp://x}\nusers:\n- name: u\n  user: {token: t}\n"), Catch::Contains("no http(s) server URL"));
  CHECK_THAT(bad(head + "https://x}\nusers:\n- name: u\n  user: {}\n"), Catch::Contains("neither a client certificate nor a token"));
  CHECK_THAT(bad(head + "https://x}\nusers:\n- name: u\n  user: {client-certificate: c.pem}\n"), Catch::Contains("without its key"));
  CHECK_THAT(bad(head + "https://x, certificate-authority-data: '***'}\nusers:\n- name: u\n  user: {token: t}\n"),
             Catch::Contains("not base64"));
}

TEST_CASE("the first kubeconfig that exists is read; none is kubeconfig.not-found naming the paths") {
  auto dir = *make_temp_dir("ballast-kubeconfig-test");
  REQUIRE(write_file_atomic(dir + "/second.conf", kKubeletConf));
  auto k = load_first_kubeconfig({dir + "/first.conf", dir + "/second.conf"});
  REQUIRE(k);
  CHECK(k->client_cert.path == dir + "/pki/kubelet-client-current.pem");
  auto none = load_first_kubeconfig({dir + "/first.conf"});
  REQUIRE_FALSE(none);
  CHECK(none.error().code == "kubeconfig.not-found");
  CHECK_THAT(none.error().message, Catch::Contains(dir + "/first.conf"));
  (void)remove_tree(dir);
}

TEST_CASE("base64 decodes with and without padding and refuses other characters") {
  CHECK(*base64_decode("aGVsbG8=") == "hello");
  CHECK(*base64_decode("aGVsbG8") == "hello");
  CHECK(*base64_decode("aGVs\nbG8h") == "hello!");
  CHECK_FALSE(base64_decode("aGV$"));
  CHECK_FALSE(base64_decode("a=b"));
}
