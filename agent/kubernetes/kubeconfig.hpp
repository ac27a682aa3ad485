// The node's own credentials, read from the kubelet's kubeconfig (YAML or JSON): the API server's
// URL and CA, a client certificate and key or a bearer token, and the node's name. File paths are
// kept as paths (the kubelet rotates its client certificate in place), `-data` fields as the
// decoded bytes; relative paths are relative to the kubeconfig's directory, as kubectl reads them.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace ballast::agent::kubernetes {

// A PEM item given either by path or inline; both empty: none.
struct PemSource {
  std::string path;
  std::string data;
  bool empty() const { return path.empty() && data.empty(); }
};

struct Kubeconfig {
  std::string server;  // "https://host:port"
  PemSource ca;
  PemSource client_cert;
  PemSource client_key;
  std::string token;       // bearer token, inline
  std::string token_file;  // bearer token, read anew for every request (projected tokens rotate)
  bool insecure_skip_tls_verify = false;
  std::string user;  // the current context's user entry ("system:node:<name>" for a kubelet)
};

// `text` is the kubeconfig, `dir` the directory relative paths start from. The current context
// (or the only one) picks cluster and user. Errors: "kubeconfig.invalid".
Result<Kubeconfig> parse_kubeconfig(const std::string& text, const std::string& dir);
Result<Kubeconfig> load_kubeconfig(const std::string& path);
// The first of `candidates` that exists (kubernetes.kubeconfig, else the kubelet's usual places).
Result<Kubeconfig> load_first_kubeconfig(const std::vector<std::string>& candidates);

// The Node's name, decided once: `configured` (kubernetes.node_name) when set, else the name in a
// kubelet user "system:node:<name>", else `hostname`.
std::string node_name(const std::string& configured, const Kubeconfig& kubeconfig, const std::string& hostname);

// RFC 4648 base64 (the kubeconfig's `-data` fields); "kubeconfig.invalid" when it is not.
Result<std::string> base64_decode(const std::string& text);

}  // namespace ballast::agent::kubernetes
