#include "agent/kubernetes/kubeconfig.hpp"

#include <yaml.h>

#include <memory>

#include <nlohmann/json.hpp>

#include "common/file.hpp"
#include "common/json_member.hpp"

namespace ballast::agent::kubernetes {
namespace {

using nlohmann::json;

// The YAML document as JSON (every scalar a string): kubeconfig fields are strings, and the one
// boolean is compared as text.
json to_json(yaml_document_t* doc, yaml_node_t* node, int depth) {
  if (!node || depth > 32) return nullptr;
  switch (node->type) {
    case YAML_SCALAR_NODE:
      return std::string(reinterpret_cast<const char*>(node->data.scalar.value), node->data.scalar.length);
    case YAML_SEQUENCE_NODE: {
      json out = json::array();
      for (auto* item = node->data.sequence.items.start; item < node->data.sequence.items.top; ++item)
        out.push_back(to_json(doc, yaml_document_get_node(doc, *item), depth + 1));
      return out;
    }
    case YAML_MAPPING_NODE: {
      json out = json::object();
      for (auto* pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top; ++pair) {
        json key = to_json(doc, yaml_document_get_node(doc, pair->key), depth + 1);
        if (key.is_string()) out[key.get<std::string>()] = to_json(doc, yaml_document_get_node(doc, pair->value), depth + 1);
      }
      return out;
    }
    default:
      return nullptr;
  }
}

Result<json> parse_yaml(const std::string& text) {
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) return fail("kubeconfig.invalid", "cannot initialise the YAML parser");
  std::unique_ptr<yaml_parser_t, void (*)(yaml_parser_t*)> free_parser(&parser, yaml_parser_delete);
  yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  yaml_document_t doc;
  if (!yaml_parser_load(&parser, &doc))
    return fail("kubeconfig.invalid", std::string("not YAML: ") + (parser.problem ? parser.problem : "parse error") +
                                          " at line " + std::to_string(parser.problem_mark.line + 1));
  std::unique_ptr<yaml_document_t, void (*)(yaml_document_t*)> free_doc(&doc, yaml_document_delete);
  return to_json(&doc, yaml_document_get_root_node(&doc), 0);
}

// The entry `name` of a kubeconfig list ("clusters", "users", "contexts"): its inner object.
Result<json> named(const json& root, const char* list, const char* inner, const std::string& name) {
  if (root.contains(list) && root[list].is_array())
    for (const auto& e : root[list])
      if (e.is_object() && e.value("name", json("")) == name && e.contains(inner) && e[inner].is_object()) return e[inner];
  return fail("kubeconfig.invalid", std::string("no ") + inner + " named \"" + name + "\" in " + list);
}

std::string resolve(const std::string& path, const std::string& dir) {
  if (path.empty() || path[0] == '/' || dir.empty()) return path;
  return path_join(dir, path);
}

Result<PemSource> pem(const json& o, const std::string& key, const std::string& dir) {
  PemSource out;
  if (auto data = string_member(o, (key + "-data").c_str()); !data.empty())
    out.data = BALLAST_TRY(with_context(base64_decode(data), key + "-data"));
  else
    out.path = resolve(string_member(o, key.c_str()), dir);
  return out;
}

}  // namespace

Result<std::string> base64_decode(const std::string& text) {
  static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t bits = 0;
  int nbits = 0;
  size_t padding = 0;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    auto v = kAlphabet.find(c);
    if (v == std::string_view::npos || padding) return fail("kubeconfig.invalid", "not base64");
    bits = (bits << 6) | static_cast<uint32_t>(v);
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      out.push_back(static_cast<char>((bits >> nbits) & 0xff));
    }
  }
  if (padding > 2 || nbits >= 6) return fail("kubeconfig.invalid", "not base64");
  return out;
}

Result<Kubeconfig> parse_kubeconfig(const std::string& text, const std::string& dir) {
  json root = BALLAST_TRY(parse_yaml(text));
  if (!root.is_object()) return fail("kubeconfig.invalid", "not a kubeconfig (no mapping at the top)");
  std::string context_name = string_member(root, "current-context");
  if (context_name.empty() && root.contains("contexts") && root["contexts"].is_array() && root["contexts"].size() == 1)
    context_name = string_member(root["contexts"][0], "name");
  if (context_name.empty()) return fail("kubeconfig.invalid", "no current-context");
  json context = BALLAST_TRY(named(root, "contexts", "context", context_name));
  Kubeconfig k;
  k.user = string_member(context, "user");
  json cluster = BALLAST_TRY(named(root, "clusters", "cluster", string_member(context, "cluster")));
  k.server = string_member(cluster, "server");
  if (k.server.rfind("https://", 0) != 0 && k.server.rfind("http://", 0) != 0)
    return fail("kubeconfig.invalid", "cluster \"" + string_member(context, "cluster") + "\" has no http(s) server URL");
  while (!k.server.empty() && k.server.back() == '/') k.server.pop_back();
  k.ca = BALLAST_TRY(pem(cluster, "certificate-authority", dir));
  k.insecure_skip_tls_verify = string_member(cluster, "insecure-skip-tls-verify") == "true";
  json user = BALLAST_TRY(named(root, "users", "user", k.user));
  k.client_cert = BALLAST_TRY(pem(user, "client-certificate", dir));
  k.client_key = BALLAST_TRY(pem(user, "client-key", dir));
  k.token = string_member(user, "token");
  k.token_file = resolve(string_member(user, "tokenFile"), dir);
  if (k.client_cert.empty() != k.client_key.empty())
    return fail("kubeconfig.invalid", "user \"" + k.user + "\" has a client certificate without its key, or a key without its certificate");
  if (k.client_cert.empty() && k.token.empty() && k.token_file.empty())
    return fail("kubeconfig.invalid", "user \"" + k.user + "\" has neither a client certificate nor a token");
  return k;
}

Result<Kubeconfig> load_kubeconfig(const std::string& path) {
  auto text = BALLAST_TRY(read_file(path, 1 << 20));
  auto slash = path.rfind('/');
  return with_context(parse_kubeconfig(text, slash == std::string::npos ? "." : path.substr(0, slash)), "reading " + path);
}

Result<Kubeconfig> load_first_kubeconfig(const std::vector<std::string>& candidates) {
  for (const auto& path : candidates)
    if (path_exists(path)) return load_kubeconfig(path);
  std::string tried;
  for (const auto& path : candidates) tried += (tried.empty() ? "" : ", ") + path;
  return fail("kubeconfig.not-found", "no kubeconfig at " + tried + " (kubernetes.kubeconfig)");
}

std::string node_name(const std::string& configured, const Kubeconfig& kubeconfig, const std::string& hostname) {
  if (!configured.empty()) return configured;
  static constexpr std::string_view kNodeUser = "system:node:";
  if (kubeconfig.user.rfind(kNodeUser, 0) == 0 && kubeconfig.user.size() > kNodeUser.size())
    return kubeconfig.user.substr(kNodeUser.size());
  return hostname;
}

}  // namespace ballast::agent::kubernetes
