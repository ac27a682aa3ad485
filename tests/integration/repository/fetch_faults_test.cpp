// The fetcher against a local HTTP server that drops, stalls, corrupts, refuses and shortens:
// each fetch either completes with exactly the original stream or fails cleanly, and the
// server's own log shows what was (re)requested and how many bytes it sent.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include <random>
#include <thread>

#include "common/file.hpp"
#include "repository/fetcher.hpp"
#include "repository/packer.hpp"
#include "tests/integration/support/http_servers.hpp"

using namespace ballast;
using namespace ballast::repository;
using namespace ballast::testing;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

std::string random_text(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s;
  s.reserve(n);
  while (s.size() < n) s.push_back(static_cast<char>('a' + rng() % 11 + (rng() % 7 == 0 ? 32 : 0)));
  return s;
}

struct Served {
  std::string dir, data;
  Artifact art;
  std::unique_ptr<FaultyHttpServer> server;
  explicit Served(size_t bytes, uint32_t seed = 1) {
    dir = *make_temp_dir("ballast-faults");
    data = random_text(bytes, seed);
    PackOptions p;
    p.chunker = {32u << 10, 128u << 10, 512u << 10};
    p.zstd_level = 3;
    MemoryByteSource src(data);
    art = *pack_stream(src, dir + "/repo/chunks", p);
    auto s = FaultyHttpServer::start(dir + "/repo");
    REQUIRE(s);
    server = std::move(*s);
  }
  ~Served() {
    server.reset();
    (void)remove_tree(dir);
  }
  FetchOptions options() const {
    FetchOptions o;
    o.chunk_base_url = server->url() + "chunks/";
    o.cache_dir = dir + "/cache";
    o.parallel = 3;
    o.http.backoff_base = 10ms;
    o.http.backoff_max = 50ms;
    o.http.retries = 3;
    o.http.low_speed_limit = 1000;
    o.http.low_speed_time = 2s;
    return o;
  }
  const std::string& sha(size_t i) const { return art.chunks[i].sha256; }
  std::vector<json> requests_for(size_t i) const {
    std::vector<json> out;
    for (auto& r : server->requests())
      if (r["name"] == sha(i)) out.push_back(r);
    return out;
  }
};

Result<std::string> fetch_all(const Artifact& art, const FetchOptions& o, FetchStats* stats = nullptr) {
  auto s = BALLAST_TRY(open_artifact_stream(art, o));
  std::string out, buf(1 << 16, '\0');
  for (;;) {
    auto n = s->read(buf.data(), buf.size());
    if (!n) return tl::unexpected<Error>(n.error());
    if (*n == 0) break;
    out.append(buf.data(), *n);
  }
  if (stats) *stats = s->stats();
  return out;
}

}  // namespace

TEST_CASE("a connection dropped mid-chunk resumes with a Range request for the rest", "[repository][fetch-faults]") {
  Served s(2u << 20);
  uint64_t cut = s.art.chunks[1].size / 3;
  REQUIRE(s.server->set_rules({{s.sha(1), {"drop:" + std::to_string(cut)}}}));
  FetchStats st;
  auto out = fetch_all(s.art, s.options(), &st);
  REQUIRE(out);
  CHECK(*out == s.data);
  auto reqs = s.requests_for(1);
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[0]["bytes"] == cut);
  CHECK(reqs[1]["range"] == "bytes=" + std::to_string(cut) + "-" + std::to_string(s.art.chunks[1].size - 1));
  // Not one byte was sent twice.
  CHECK(s.server->bytes_served() == s.art.size);
  CHECK(st.network_bytes == s.art.size);
}

TEST_CASE("a stalled transfer is abandoned after the low-speed time and resumed", "[repository][fetch-faults]") {
  Served s(1u << 20, 2);
  REQUIRE(s.server->set_rules({{s.sha(0), {"stall:1000"}}}));
  auto out = fetch_all(s.art, s.options());
  REQUIRE(out);
  CHECK(*out == s.data);
  auto reqs = s.requests_for(0);
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[1]["range"] == "bytes=1000-" + std::to_string(s.art.chunks[0].size - 1));
}

TEST_CASE("wrong bytes are refused and fetched again in full", "[repository][fetch-faults]") {
  Served s(1u << 20, 3);
  REQUIRE(s.server->set_rules({{s.sha(2), {"corrupt"}}}));
  FetchStats st;
  auto out = fetch_all(s.art, s.options(), &st);
  REQUIRE(out);
  CHECK(*out == s.data);
  auto reqs = s.requests_for(2);
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[1]["range"].is_null());  // the corrupt copy was thrown away, not resumed
  CHECK(st.retries == 1);
}

TEST_CASE("a server that keeps sending wrong bytes fails the fetch cleanly", "[repository][fetch-faults]") {
  Served s(1u << 20, 4);
  REQUIRE(s.server->set_rules({{s.sha(0), {"corrupt", "corrupt", "corrupt", "corrupt", "corrupt"}}}));
  auto o = s.options();
  auto out = fetch_all(s.art, o);
  REQUIRE_FALSE(out);
  CHECK(out.error().code == "fetch.hash-mismatch");
  CHECK(s.requests_for(0).size() == 4);  // the first attempt and three retries
  CHECK_FALSE(path_exists(o.cache_dir + "/" + s.sha(0)));
  CHECK_FALSE(path_exists(o.cache_dir + "/" + s.sha(0) + ".part"));
}

TEST_CASE("503 with Retry-After waits as told before retrying; 500 is retried with backoff",
          "[repository][fetch-faults]") {
  Served s(1u << 20, 5);
  REQUIRE(s.server->set_rules({{s.sha(0), {"status:503:2"}}, {s.sha(1), {"status:500", "status:500"}}}));
  auto out = fetch_all(s.art, s.options());
  REQUIRE(out);
  CHECK(*out == s.data);
  auto r0 = s.requests_for(0);
  REQUIRE(r0.size() == 2);
  CHECK(r0[0]["status"] == 503);
  // Honouring the header is the behaviour under test, so the gap is checked from the server's clock.
  CHECK(r0[1]["time"].get<double>() - r0[0]["time"].get<double>() >= 1.9);
  CHECK(s.requests_for(1).size() == 3);
}

TEST_CASE("a short but complete response is followed by a Range request for the rest",
          "[repository][fetch-faults]") {
  Served s(1u << 20, 6);
  REQUIRE(s.server->set_rules({{s.sha(1), {"short:5000"}}}));
  auto out = fetch_all(s.art, s.options());
  REQUIRE(out);
  CHECK(*out == s.data);
  auto reqs = s.requests_for(1);
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[1]["range"].get<std::string>().rfind("bytes=5000-", 0) == 0);
  CHECK(s.server->bytes_served() == s.art.size);
}

TEST_CASE("a server ignoring Range gets the chunk restarted from its first byte", "[repository][fetch-faults]") {
  Served s(1u << 20, 7);
  REQUIRE(s.server->set_rules({{s.sha(0), {"drop:3000", "ignore-range"}}}));
  auto out = fetch_all(s.art, s.options());
  REQUIRE(out);
  CHECK(*out == s.data);
  auto reqs = s.requests_for(0);
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[1]["status"] == 200);
}

TEST_CASE("a server sending more than the manifest's length is cut off and finally refused",
          "[repository][fetch-faults]") {
  Served s(1u << 20, 8);
  REQUIRE(s.server->set_rules({{s.sha(0), {"extra:100000", "extra:100000", "extra:100000", "extra:100000"}}}));
  FetchStats st;
  auto out = fetch_all(s.art, s.options(), &st);
  REQUIRE_FALSE(out);
  CHECK(out.error().code == "fetch.too-large");
}

TEST_CASE("a 404 for a chunk fails at once without retrying", "[repository][fetch-faults]") {
  Served s(1u << 20, 9);
  REQUIRE(remove_if_exists(s.dir + "/repo/chunks/" + s.sha(1)));
  auto out = fetch_all(s.art, s.options());
  REQUIRE_FALSE(out);
  CHECK(out.error().code == "fetch.not-found");
  CHECK(s.requests_for(1).size() == 1);
}

TEST_CASE("a fetch killed with SIGKILL resumes without fetching its verified chunks again",
          "[repository][fetch-faults]") {
  Served s(3u << 20, 10);
  REQUIRE(s.art.chunks.size() >= 8);
  auto o = s.options();
  o.parallel = 2;
  o.http.max_bandwidth = 256u << 10;  // slow enough to be killed midway
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto out = fetch_all(s.art, o);
    ::_exit(out ? 0 : 1);
  }
  auto verified = [&] {
    std::set<std::string> v;
    if (auto names = list_dir(o.cache_dir))
      for (auto& n : *names)
        if (n.find('.') == std::string::npos) v.insert(n);
    return v;
  };
  for (int i = 0; i < 3000 && verified().size() < 3; ++i) std::this_thread::sleep_for(10ms);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFSIGNALED(status));
  auto at_kill = verified();
  REQUIRE(at_kill.size() >= 3);
  REQUIRE(at_kill.size() < s.art.chunks.size());
  std::map<std::string, uint64_t> partial;
  auto names = list_dir(o.cache_dir);
  REQUIRE(names);
  for (auto& n : *names)
    if (n.size() > 5 && n.substr(n.size() - 5) == ".part")
      partial[n.substr(0, n.size() - 5)] = read_file(o.cache_dir + "/" + n)->size();
  uint64_t kept = 0;
  for (auto& c : s.art.chunks) kept += at_kill.count(c.sha256) ? c.size : (partial.count(c.sha256) ? partial[c.sha256] : 0);

  o.http.max_bandwidth = 0;
  // The server may log a request of the killed process late; the restarted fetch's requests are
  // told apart by a path no request of the first one has (the server serves it all the same).
  o.chunk_base_url = s.server->url() + "chunks//";
  FetchStats st;
  auto out = fetch_all(s.art, o, &st);
  REQUIRE(out);
  CHECK(*out == s.data);
  auto all = s.server->requests();
  uint64_t second_run_bytes = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i]["path"].get<std::string>().find("//") == std::string::npos) continue;
    std::string name = all[i]["name"];
    CHECK(at_kill.count(name) == 0);  // verified chunks are not requested again
    if (partial.count(name) && partial[name] > 0)
      CHECK(all[i]["range"].get<std::string>().rfind("bytes=" + std::to_string(partial[name]) + "-", 0) == 0);
    second_run_bytes += all[i]["bytes"].get<uint64_t>();
  }
  // The restarted fetch downloads exactly what was not on disk yet.
  CHECK(second_run_bytes == s.art.size - kept);
  CHECK(st.network_bytes == second_run_bytes);
  uint64_t complete_parts = 0;  // every byte arrived, but the kill came before the rename
  for (auto& c : s.art.chunks) complete_parts += partial.count(c.sha256) && partial[c.sha256] == c.size;
  CHECK(st.chunks_from_cache == at_kill.size() + complete_parts);
}

TEST_CASE("a stall is reported as one: no byte for low_speed_time aborts the transfer, named by its rule",
          "[repository][fetch-faults]") {
  Served s(1u << 20, 12);
  REQUIRE(s.server->set_rules({{s.sha(0), {"stall:1000"}}}));
  auto o = s.options();
  o.http.retries = 0;
  o.http.low_speed_time = 1s;
  auto out = fetch_all(s.art, o);
  REQUIRE_FALSE(out);
  INFO(out.error().describe());
  CHECK(out.error().code == "fetch.failed");
  // Detected by the low-speed rule itself, not by libcurl's lagging five-second average.
  CHECK(out.error().describe().find("stalled: fewer than 1000 bytes/s for 1 s") != std::string::npos);
  CHECK(s.requests_for(0).size() == 1);
}

TEST_CASE("max_bandwidth holds for the whole artifact across parallel transfers", "[repository][fetch-faults]") {
  Served s(2u << 20, 13);
  auto o = s.options();
  o.parallel = 4;
  o.http.max_bandwidth = 256u << 10;
  auto started = std::chrono::steady_clock::now();
  FetchStats st;
  auto out = fetch_all(s.art, o, &st);
  auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  REQUIRE(out);
  CHECK(*out == s.data);
  // A lower bound that a slow machine cannot break: the budget allows max_bandwidth per second
  // plus one libcurl write (16 KiB) of slack, so the bytes received cannot have come faster.
  INFO("bytes " << st.network_bytes << " in " << elapsed << " s");
  REQUIRE(st.network_bytes > (64u << 10));
  CHECK(elapsed >= static_cast<double>(st.network_bytes - CURL_MAX_WRITE_SIZE) / static_cast<double>(o.http.max_bandwidth));
}
