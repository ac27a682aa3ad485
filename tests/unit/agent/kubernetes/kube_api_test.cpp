#include "agent/kubernetes/kube_api.hpp"

#include <catch2/catch.hpp>

using namespace ballast::agent::kubernetes;
using nlohmann::json;

TEST_CASE("a Node's name, resourceVersion and string annotations are read from its metadata") {
  auto node = node_from_json(json::parse(
      R"({"kind":"Node","metadata":{"name":"node-1","resourceVersion":"4711","annotations":{"a":"1","b":2}}})"));
  REQUIRE(node);
  CHECK(node->name == "node-1");
  CHECK(node->resource_version == "4711");
  CHECK(node->annotations == std::map<std::string, std::string>{{"a", "1"}});  // "b" is no string: not an annotation
}

TEST_CASE("a Node from an API server whose metadata members have other types reads as unnamed, never throws") {
  ballast::Result<NodeObject> node = NodeObject{};
  REQUIRE_NOTHROW(node = node_from_json(json::parse(R"({"metadata":{"name":5,"resourceVersion":["1"],"annotations":[1]}})")));
  REQUIRE(node);
  CHECK(node->name.empty());
  CHECK(node->resource_version.empty());
  CHECK(node->annotations.empty());
  auto no_metadata = node_from_json(json::parse(R"({"metadata":"node-1"})"));
  REQUIRE_FALSE(no_metadata);
  CHECK(no_metadata.error().code == "kubernetes.bad-object");
}
