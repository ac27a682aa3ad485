// The fetcher against nginx over HTTPS with a throwaway CA: HTTP/2 multiplexing and
// HTTP/1.1, CA pinning, and a client certificate when the server demands one.
#include <catch2/catch.hpp>

#include <curl/curl.h>

#include <random>

#include "common/file.hpp"
#include "repository/fetcher.hpp"
#include "repository/packer.hpp"
#include "tests/integration/support/http_servers.hpp"

using namespace ballast;
using namespace ballast::repository;
using namespace ballast::testing;

namespace {

struct Published {
  std::string dir, data;
  Artifact art;
  Published() {
    dir = *make_temp_dir("ballast-https");
    std::mt19937 rng(42);
    while (data.size() < (2u << 20)) data += "line " + std::to_string(rng() % 100000) + "\n";
    PackOptions p;
    p.chunker = {32u << 10, 128u << 10, 512u << 10};
    p.zstd_level = 3;
    MemoryByteSource src(data);
    art = *pack_stream(src, dir + "/repo/chunks", p);
  }
  ~Published() { (void)remove_tree(dir); }
  FetchOptions options(const NginxHttps& n) const {
    FetchOptions o;
    o.chunk_base_url = n.url() + "chunks/";
    o.cache_dir = dir + "/cache";
    o.http.ca_bundle = n.ca_cert();
    o.http.retries = 1;
    return o;
  }
};

Result<std::string> fetch_all(const Artifact& art, const FetchOptions& o, FetchStats* stats = nullptr) {
  auto s = BALLAST_TRY(open_artifact_stream(art, o));
  std::string out, buf(1 << 16, '\0');
  for (;;) {
    size_t n = BALLAST_TRY(s->read(buf.data(), buf.size()));
    if (n == 0) break;
    out.append(buf.data(), n);
  }
  if (stats) *stats = s->stats();
  BALLAST_CHECK(s->discard_cache());
  return out;
}

}  // namespace

TEST_CASE("chunks come over HTTPS as multiplexed HTTP/2 streams, or over HTTP/1.1 when asked",
          "[repository][fetch-https]") {
  Published p;
  auto nginx = NginxHttps::start(p.dir + "/repo");
  REQUIRE(nginx);
  FetchStats st;
  auto o = p.options(**nginx);
  o.parallel = 4;
  auto out = fetch_all(p.art, o, &st);
  REQUIRE(out);
  CHECK(*out == p.data);
  CHECK(st.http_versions == std::set<long>{CURL_HTTP_VERSION_2_0});
  CHECK((*nginx)->body_bytes_sent() == p.art.size);

  o.http2 = false;
  out = fetch_all(p.art, o, &st);
  REQUIRE(out);
  CHECK(*out == p.data);
  CHECK(st.http_versions == std::set<long>{CURL_HTTP_VERSION_1_1});
}

TEST_CASE("a server certificate from another CA is refused", "[repository][fetch-https]") {
  Published p;
  auto nginx = NginxHttps::start(p.dir + "/repo");
  REQUIRE(nginx);
  auto o = p.options(**nginx);
  o.http.ca_bundle = "/etc/ssl/certs/ca-certificates.crt";
  auto out = fetch_all(p.art, o);
  REQUIRE_FALSE(out);
  CHECK(out.error().code == "fetch.tls");
}

TEST_CASE("a server demanding a client certificate serves only a client that has one", "[repository][fetch-https]") {
  Published p;
  auto nginx = NginxHttps::start(p.dir + "/repo", NginxHttps::Options{.require_client_cert = true});
  REQUIRE(nginx);
  auto o = p.options(**nginx);
  auto refused = fetch_all(p.art, o);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == "fetch.status");
  o.http.client_cert = (*nginx)->client_cert();
  o.http.client_key = (*nginx)->client_key();
  auto out = fetch_all(p.art, o);
  REQUIRE(out);
  CHECK(*out == p.data);
}
