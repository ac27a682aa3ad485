// The libcurl HTTP client (repository/http.cpp) against nginx over HTTPS with a throwaway CA.
#include <catch2/catch.hpp>

#include "common/file.hpp"
#include "repository/http.hpp"
#include "tests/integration/support/http_servers.hpp"

using namespace ballast;
using namespace ballast::repository;
using namespace ballast::testing;

namespace {

struct Site {
  std::string dir = *make_temp_dir("ballast-http");
  Site() {
    for (int i = 0; i < 5; ++i) REQUIRE(write_file_atomic(dir + "/" + std::to_string(i) + ".json", std::string(100 + i, 'x')));
  }
  ~Site() { (void)remove_tree(dir); }
};

}  // namespace

TEST_CASE("one client sends its requests over one kept-alive TLS connection", "[repository][http]") {
  Site site;
  auto nginx = NginxHttps::start(site.dir);
  REQUIRE(nginx);
  HttpSettings s;
  s.ca_bundle = (*nginx)->ca_cert();
  auto http = make_curl_http_client(s);
  for (int i = 0; i < 5; ++i) {
    auto r = http->get((*nginx)->url() + std::to_string(i) + ".json", 1 << 20);
    REQUIRE(r);
    CHECK(r->body == std::string(100 + i, 'x'));
  }
  CHECK((*nginx)->connections_used().size() == 1);
}

TEST_CASE("a request after a failed one still succeeds on the shared handle", "[repository][http]") {
  Site site;
  auto nginx = NginxHttps::start(site.dir);
  REQUIRE(nginx);
  HttpSettings s;
  s.ca_bundle = (*nginx)->ca_cert();
  auto http = make_curl_http_client(s);
  auto missing = http->get((*nginx)->url() + "missing.json", 1 << 20);
  REQUIRE(!missing);
  CHECK(missing.error().code == "http.not-found");
  auto too_large = http->get((*nginx)->url() + "4.json", 50);
  REQUIRE(!too_large);
  CHECK(too_large.error().code == "http.too-large");
  auto r = http->get((*nginx)->url() + "3.json", 1 << 20);
  REQUIRE(r);
  CHECK(r->body == std::string(103, 'x'));
}

TEST_CASE("a client with another CA bundle is refused on every request, not only the first", "[repository][http]") {
  Site site;
  auto nginx = NginxHttps::start(site.dir);
  REQUIRE(nginx);
  auto http = make_curl_http_client(HttpSettings{});  // the system CAs do not know the test CA
  for (int i = 0; i < 2; ++i) {
    auto r = http->get((*nginx)->url() + "0.json", 1 << 20);
    REQUIRE(!r);
    CHECK(r.error().code == "http.transfer");
  }
}
