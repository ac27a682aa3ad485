// The libcurl HTTP client (repository/http.cpp) against nginx over HTTPS with a throwaway CA.
#include <catch2/catch.hpp>

#include "common/file.hpp"
#include "repository/http.hpp"
#include "tests/integration/support/http_servers.hpp"

using namespace ballast;
using namespace ballast::repository;
using namespace ballast::testing;

namespace {

// Five small files served by nginx over HTTPS, and a client that trusts nginx's throwaway CA.
struct Site {
  std::string dir = *make_temp_dir("ballast-http");
  std::unique_ptr<NginxHttps> nginx;
  std::unique_ptr<HttpClient> http;
  Site() {
    for (int i = 0; i < 5; ++i) REQUIRE(write_file_atomic(dir + "/" + std::to_string(i) + ".json", std::string(100 + i, 'x')));
    auto n = NginxHttps::start(dir);
    REQUIRE(n);
    nginx = std::move(*n);
    HttpSettings s;
    s.ca_bundle = nginx->ca_cert();
    http = make_curl_http_client(s);
  }
  ~Site() {
    nginx.reset();
    (void)remove_tree(dir);
  }
  std::string url(const std::string& name) const { return nginx->url() + name; }
};

}  // namespace

TEST_CASE("one client sends its requests over one kept-alive TLS connection", "[repository][http]") {
  Site site;
  for (int i = 0; i < 5; ++i) {
    auto r = site.http->get(site.url(std::to_string(i) + ".json"), 1 << 20);
    REQUIRE(r);
    CHECK(r->body == std::string(100 + i, 'x'));
  }
  CHECK(site.nginx->connections_used().size() == 1);
}

TEST_CASE("a request after a failed one still succeeds on the shared handle", "[repository][http]") {
  Site site;
  auto missing = site.http->get(site.url("missing.json"), 1 << 20);
  REQUIRE(!missing);
  CHECK(missing.error().code == "http.not-found");
  auto too_large = site.http->get(site.url("4.json"), 50);
  REQUIRE(!too_large);
  CHECK(too_large.error().code == "http.too-large");
  auto r = site.http->get(site.url("3.json"), 1 << 20);
  REQUIRE(r);
  CHECK(r->body == std::string(103, 'x'));
}

TEST_CASE("a client with another CA bundle is refused on every request, not only the first", "[repository][http]") {
  Site site;
  auto http = make_curl_http_client(HttpSettings{});  // the system CAs do not know the test CA
  for (int i = 0; i < 2; ++i) {
    auto r = http->get(site.url("0.json"), 1 << 20);
    REQUIRE(!r);
    CHECK(r.error().code == "http.transfer");
  }
}

TEST_CASE("a 404, as an idle check's probe for the next root gets, keeps the connection", "[repository][http]") {
  Site site;
  auto missing = site.http->get(site.url("2.root.json"), 1 << 20);
  REQUIRE(!missing);
  CHECK(missing.error().code == "http.not-found");
  auto r = site.http->get(site.url("0.json"), 1 << 20);
  REQUIRE(r);
  CHECK(site.nginx->connections_used().size() == 1);
}

namespace {

// Metadata files behind the misbehaving test server, and a client with short backoffs.
struct FaultySite {
  std::string dir = *make_temp_dir("ballast-http-faults");
  std::unique_ptr<FaultyHttpServer> server;
  std::unique_ptr<HttpClient> http;
  explicit FaultySite(int retries) {
    REQUIRE(make_dirs(dir + "/root"));
    for (const char* name : {"timestamp.json", "snapshot.json", "1.targets.json"})
      REQUIRE(write_file_atomic(dir + "/root/" + name, std::string("{\"signed\":\"") + name + "\"}"));
    auto s = FaultyHttpServer::start(dir + "/root");
    REQUIRE(s);
    server = std::move(*s);
    HttpSettings settings;
    settings.retries = retries;
    settings.backoff_base = std::chrono::milliseconds(10);
    settings.backoff_max = std::chrono::milliseconds(50);
    http = make_curl_http_client(settings);
  }
  ~FaultySite() {
    server.reset();
    (void)remove_tree(dir);
  }
  size_t requests_for(const std::string& name) const {
    size_t n = 0;
    for (auto& r : server->requests()) n += r["name"] == name;
    return n;
  }
};

}  // namespace

TEST_CASE("metadata answered 503 with Retry-After, 500, 429 or 408 is fetched again and arrives", "[repository][http]") {
  FaultySite site(3);
  REQUIRE(site.server->set_rules({{"timestamp.json", {"status:503:1"}},
                                  {"snapshot.json", {"status:500", "status:429"}},
                                  {"1.targets.json", {"status:408"}}}));
  for (const char* name : {"timestamp.json", "snapshot.json", "1.targets.json"}) {
    auto r = site.http->get(site.server->url() + name, 1 << 20);
    INFO(name << ": " << (r ? std::string() : r.error().describe()));
    REQUIRE(r);
    CHECK(r->body == std::string("{\"signed\":\"") + name + "\"}");
  }
  CHECK(site.requests_for("timestamp.json") == 2);
  CHECK(site.requests_for("snapshot.json") == 3);
  CHECK(site.requests_for("1.targets.json") == 2);
  // The Retry-After was honoured: the server's own clock shows the wait.
  auto reqs = site.server->requests();
  CHECK(reqs[1]["time"].get<double>() - reqs[0]["time"].get<double>() >= 0.9);
}

TEST_CASE("a metadata 404 or 403 is final and not requested again", "[repository][http]") {
  FaultySite site(3);
  REQUIRE(site.server->set_rules({{"timestamp.json", {"status:403"}}}));
  auto missing = site.http->get(site.server->url() + "2.root.json", 1 << 20);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == "http.not-found");
  CHECK(site.requests_for("2.root.json") == 1);
  auto forbidden = site.http->get(site.server->url() + "timestamp.json", 1 << 20);
  REQUIRE_FALSE(forbidden);
  CHECK(forbidden.error().code == "http.forbidden");  // with the likely cause in the message
  CHECK(site.requests_for("timestamp.json") == 1);
}

TEST_CASE("metadata that keeps failing gives up after repository.retries further attempts", "[repository][http]") {
  FaultySite site(2);
  REQUIRE(site.server->set_rules({{"timestamp.json", {"status:503", "status:503", "status:503", "status:503"}}}));
  auto r = site.http->get(site.server->url() + "timestamp.json", 1 << 20);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "http.status");
  CHECK(r.error().describe().find("gave up after 3 attempts") != std::string::npos);
  CHECK(site.requests_for("timestamp.json") == 3);
}

TEST_CASE("a metadata transfer cut off mid-body is requested again", "[repository][http]") {
  FaultySite site(2);
  REQUIRE(site.server->set_rules({{"snapshot.json", {"drop:5"}}}));
  auto r = site.http->get(site.server->url() + "snapshot.json", 1 << 20);
  REQUIRE(r);
  CHECK(r->body == "{\"signed\":\"snapshot.json\"}");
  CHECK(site.requests_for("snapshot.json") == 2);
}
