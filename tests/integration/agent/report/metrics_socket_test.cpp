// The metrics server on a real unix socket, driven by a real sd-event loop and scraped with
// `curl --unix-socket` the way an operator or a sidecar would.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <atomic>
#include <thread>

#include "agent/report/metrics.hpp"
#include "common/file.hpp"
#include "common/process.hpp"
#include "tests/temp_dir.hpp"

using namespace ballast;
using ballast::testing::TempDir;
using namespace ballast::agent::report;

namespace {
// Runs the loop on its own thread until destroyed; the metrics are not touched meanwhile.
struct LoopThread {
  sd_event* event = nullptr;
  std::atomic<bool> stop{false};
  std::thread thread;
  explicit LoopThread(sd_event* e) : event(e) {
    thread = std::thread([this] {
      while (!stop) sd_event_run(event, 20'000);
    });
  }
  ~LoopThread() {
    stop = true;
    thread.join();
  }
};

ProcessResult curl(const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {"curl", "--silent", "--show-error", "--max-time", "20"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto r = run_process(argv);
  REQUIRE(r);
  return *r;
}

}  // namespace

TEST_CASE("curl --unix-socket scrapes the metrics text from the sd-event loop", "[report][metrics]") {
  TempDir t;
  SystemClock clock;
  auto m = Metrics::open({t.path + "/metrics.json", ""}, clock);
  REQUIRE(m);
  (*m)->set_booted("3.1");
  (*m)->on_transition("idle", "checking");
  (*m)->on_transition("checking", "idle");
  (*m)->on_transition("verifying", "committed");

  sd_event* event = nullptr;
  REQUIRE(sd_event_new(&event) >= 0);
  const std::string socket = t.path + "/metrics.sock";
  // A socket left by an earlier run is replaced.
  {
    auto first = Metrics::open({t.path + "/other.json", ""}, clock);
    REQUIRE(first);
    REQUIRE((*first)->attach(event, socket));
    REQUIRE(path_exists(socket));
  }
  CHECK(!path_exists(socket));  // detach removes it
  REQUIRE(write_file_atomic(t.path + "/not-a-socket", "x"));
  auto refused = (*m)->attach(event, t.path + "/not-a-socket");
  REQUIRE(!refused);
  CHECK(refused.error().code == "metrics.socket");

  REQUIRE((*m)->attach(event, socket));
  struct stat st;
  REQUIRE(::stat(socket.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 0777) == 0666);
  {
    LoopThread loop(event);
    // Several scrapes in a row: each connection is answered and closed.
    for (int i = 0; i < 3; ++i) {
      auto r = curl({"--unix-socket", socket, "-i", "http://localhost/metrics"});
      INFO(r.err);
      REQUIRE(r.success());
      CHECK(r.out.rfind("HTTP/1.0 200 OK\r\n", 0) == 0);
      CHECK(r.out.find("Content-Type: text/plain; version=0.0.4; charset=utf-8") != std::string::npos);
      std::string body = r.out.substr(r.out.find("\r\n\r\n") + 4);
      CHECK(body == (*m)->exposition());
      CHECK(body.find("ballast_updates_total 1\n") != std::string::npos);
      CHECK(body.find("ballast_state{state=\"committed\"} 1\n") != std::string::npos);
      CHECK(body.find("ballast_booted_info{version=\"3.1\"} 1\n") != std::string::npos);
    }
    auto missing = curl({"--unix-socket", socket, "-o", "/dev/null", "-w", "%{http_code}", "http://localhost/nope"});
    CHECK(missing.out == "404");
    auto post = curl({"--unix-socket", socket, "-o", "/dev/null", "-w", "%{http_code}", "-d", "x",
                      "http://localhost/metrics"});
    CHECK(post.out == "405");
  }
  (*m)->detach();
  CHECK(!path_exists(socket));
  sd_event_unref(event);
}
