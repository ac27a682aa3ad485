#include <catch2/catch.hpp>

#include "agent/report/journal_events.hpp"
#include "tests/unit/agent/report/journal_capture.hpp"

using namespace ballast;
using namespace ballast::agent::report;
using nlohmann::json;

namespace {

struct RecordingReporter final : agent::Reporter {
  std::vector<std::pair<std::string, json>> events;
  void report(const std::string& type, const json& data) override { events.emplace_back(type, data); }
};

}  // namespace

TEST_CASE("the update milestones reach the journal with their MESSAGE_ID and version fields", "[report][journal]") {
  testing::JournalCapture journal;
  REQUIRE(journal.bound());
  RecordingReporter next;
  JournalingReporter reporter(next);

  journal_update_started("2.0", "1.0");
  reporter.report("checked", {{"available", "2.0"}});
  reporter.report("staged", {{"version", "2.0"}, {"from", "1.0"}});
  reporter.report("committed", {{"version", "2.0"}, {"from", "1.0"}});
  reporter.report("rolled-back", {{"from", "3.0"}, {"to", "2.0"}, {"reason", "health check failed:\nrequired/10-net"}});

  auto records = journal.take();
  REQUIRE(records.size() == 4);  // "checked" is no milestone
  CHECK(testing::field(records[0], "MESSAGE_ID") == kMessageUpdateStarted);
  CHECK(testing::field(records[1], "MESSAGE_ID") == kMessageStaged);
  CHECK(testing::field(records[2], "MESSAGE_ID") == kMessageCommitted);
  CHECK(testing::field(records[3], "MESSAGE_ID") == kMessageRolledBack);
  for (int i = 0; i < 3; ++i) {
    CHECK(testing::field(records[i], "BALLAST_VERSION") == "2.0");
    CHECK(testing::field(records[i], "BALLAST_FROM") == "1.0");
    CHECK(testing::field(records[i], "PRIORITY") == "5");
    CHECK(testing::field(records[i], "SYSLOG_IDENTIFIER") == "ballast");
  }
  CHECK(testing::field(records[1], "MESSAGE") == "update to 2.0 staged; it boots on trial next");
  // The failed version, the one running again, and the reason with its newline intact (the
  // binary form of the native protocol).
  CHECK(testing::field(records[3], "BALLAST_VERSION") == "3.0");
  CHECK(testing::field(records[3], "BALLAST_FROM") == "2.0");
  CHECK(testing::field(records[3], "BALLAST_REASON") == "health check failed:\nrequired/10-net");
  CHECK(testing::field(records[3], "PRIORITY") == "4");

  // Every event is passed on unchanged.
  REQUIRE(next.events.size() == 4);
  CHECK(next.events[0].first == "checked");
  CHECK(next.events[3].second["reason"] == "health check failed:\nrequired/10-net");
}

TEST_CASE("the message ids are distinct 128-bit ids in journald's form", "[report][journal]") {
  std::vector<std::string> ids = {kMessageUpdateStarted, kMessageStaged, kMessageCommitted, kMessageRolledBack};
  for (const auto& id : ids) {
    CHECK(id.size() == 32);
    CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
  }
  std::sort(ids.begin(), ids.end());
  CHECK(std::unique(ids.begin(), ids.end()) == ids.end());
}

TEST_CASE("a journal record encodes values with newlines in the native protocol's binary form", "[report][journal]") {
  std::string rec = log::encode_journal_record({{"A", "one"}, {"B", "x\ny"}});
  std::string expected = std::string("A=one\nB\n") + std::string("\x03\0\0\0\0\0\0\0", 8) + "x\ny\n";
  CHECK(rec == expected);
  auto decoded = testing::decode_journal_record(rec);
  CHECK(testing::field(decoded, "B") == "x\ny");
}
