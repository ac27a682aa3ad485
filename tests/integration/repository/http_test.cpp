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
