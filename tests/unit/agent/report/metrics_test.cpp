#include <catch2/catch.hpp>

#include "agent/report/metrics.hpp"
#include "common/file.hpp"

using namespace ballast;
using namespace ballast::agent::report;
using namespace std::chrono_literals;

namespace {

struct MetricsFixture {
  std::string root = *make_temp_dir("ballast-metrics-test");
  FakeClock clock;
  ~MetricsFixture() { (void)remove_tree(root); }
  MetricsOptions options() const { return {root + "/metrics.json", root + "/textfile/ballast.prom"}; }
  std::unique_ptr<Metrics> open() {
    REQUIRE(make_dirs(root + "/textfile"));
    auto m = Metrics::open(options(), clock);
    REQUIRE(m);
    return std::move(*m);
  }
};

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

agent::Progress bytes(uint64_t n) {
  agent::Progress p;
  p.bytes = n;
  return p;
}

}  // namespace

TEST_CASE("transitions and progress drive the counters and the state gauge", "[report][metrics]") {
  MetricsFixture f;
  auto m = f.open();
  std::string fresh = m->exposition();
  CHECK(has_line(fresh, "ballast_state{state=\"idle\"} 1"));
  CHECK(has_line(fresh, "ballast_state{state=\"staging\"} 0"));
  CHECK(has_line(fresh, "ballast_last_check_timestamp_seconds 0"));
  CHECK(has_line(fresh, "ballast_updates_total 0"));
  CHECK(fresh.find("ballast_booted_info") == std::string::npos);

  m->set_booted("1.0");
  m->on_transition("idle", "checking");
  f.clock.advance(5s);
  m->on_transition("checking", "staging");
  m->on_progress(bytes(1000));
  m->on_progress(bytes(4000));
  m->on_progress(bytes(4000));
  m->on_transition("staging", "staged");
  m->on_transition("verifying", "committed");
  // A second update that fails its health checks and rolls back.
  m->on_transition("checking", "staging");
  m->on_progress(bytes(500));
  m->on_transition("verifying", "reverting");
  m->on_transition("reverting", "rolled-back");
  m->on_transition("rolled-back", "idle");

  std::string text = m->exposition();
  CHECK(has_line(text, "ballast_state{state=\"idle\"} 1"));
  CHECK(has_line(text, "ballast_state{state=\"rolled-back\"} 0"));
  CHECK(has_line(text, "ballast_last_check_timestamp_seconds 1767225605"));
  CHECK(has_line(text, "ballast_downloaded_bytes_total 4500"));
  CHECK(has_line(text, "ballast_updates_total 1"));
  CHECK(has_line(text, "ballast_rollbacks_total 1"));
  CHECK(has_line(text, "ballast_health_failures_total 1"));
  CHECK(has_line(text, "ballast_booted_info{version=\"1.0\"} 1"));
  CHECK(has_line(text, "# TYPE ballast_downloaded_bytes_total counter"));
  CHECK(has_line(text, "# TYPE ballast_state gauge"));
  // Exactly one state is 1.
  size_t ones = 0;
  for (size_t p = text.find("ballast_state{"); p != std::string::npos; p = text.find("ballast_state{", p + 1))
    if (text.compare(text.find('}', p) + 1, 3, " 1\n") == 0) ++ones;
  CHECK(ones == 1);
}

TEST_CASE("counters survive a restart and the textfile holds what a scrape gets", "[report][metrics]") {
  MetricsFixture f;
  {
    auto m = f.open();
    m->set_booted("2.0");
    m->on_transition("checking", "staging");
    m->on_progress(bytes(123456));
    m->on_transition("staging", "staged");
    m->on_transition("verifying", "committed");
  }
  auto m = f.open();
  CHECK(m->counters().downloaded_bytes == 123456);
  CHECK(m->counters().updates == 1);
  CHECK(m->counters().booted == "2.0");
  CHECK(m->counters().state == "committed");
  CHECK(*read_file(f.options().textfile) == m->exposition());

  m->on_transition("committed", "idle");
  CHECK(*read_file(f.options().textfile) == m->exposition());
  CHECK(has_line(*read_file(f.options().textfile), "ballast_state{state=\"idle\"} 1"));
}

TEST_CASE("a corrupt metrics state file is an error, not a silent reset", "[report][metrics]") {
  MetricsFixture f;
  REQUIRE(write_file_atomic(f.options().state_file, "{\"updates\": -1}"));
  auto m = Metrics::open(f.options(), f.clock);
  REQUIRE(!m);
  CHECK(m.error().code == "metrics.corrupt");
}

TEST_CASE("the exposition counts the reports the outbox dropped", "[report][metrics]") {
  MetricsFixture f;
  auto m = f.open();
  CHECK(has_line(m->exposition(), "ballast_report_events_dropped_total 0"));
  uint64_t dropped = 12;
  m->count_dropped_events_from([&] { return dropped; });
  CHECK(has_line(m->exposition(), "# TYPE ballast_report_events_dropped_total counter"));
  CHECK(has_line(m->exposition(), "ballast_report_events_dropped_total 12"));
}

TEST_CASE("label values are escaped in the exposition", "[report][metrics]") {
  MetricsFixture f;
  auto m = f.open();
  m->set_booted("a\"b\\c\nd");
  CHECK(has_line(m->exposition(), "ballast_booted_info{version=\"a\\\"b\\\\c\\nd\"} 1"));
}

TEST_CASE("the metrics endpoint answers GET with the text and refuses other requests", "[report][metrics]") {
  std::string ok = metrics_http_reply("GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n", "body\n");
  CHECK(ok.rfind("HTTP/1.0 200 OK\r\n", 0) == 0);
  CHECK(ok.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n") != std::string::npos);
  CHECK(ok.find("Content-Length: 5\r\n") != std::string::npos);
  CHECK(ok.substr(ok.size() - 9) == "\r\n\r\nbody\n");
  CHECK(metrics_http_reply("GET / HTTP/1.0\r\n\r\n", "b").rfind("HTTP/1.0 200", 0) == 0);
  CHECK(metrics_http_reply("GET /other HTTP/1.1\r\n\r\n", "b").rfind("HTTP/1.0 404", 0) == 0);
  CHECK(metrics_http_reply("POST /metrics HTTP/1.1\r\n\r\n", "b").rfind("HTTP/1.0 405", 0) == 0);
  CHECK(metrics_http_reply("garbage\r\n\r\n", "b").rfind("HTTP/1.0 400", 0) == 0);
  CHECK(metrics_http_reply("", "b").rfind("HTTP/1.0 400", 0) == 0);
  std::string head = metrics_http_reply("HEAD /metrics HTTP/1.1\r\n\r\n", "body\n");
  CHECK(head.find("Content-Length: 5\r\n") != std::string::npos);
  CHECK(head.substr(head.size() - 4) == "\r\n\r\n");
}
