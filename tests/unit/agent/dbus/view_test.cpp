#include <catch2/catch.hpp>

#include "agent/dbus/names.hpp"
#include "agent/dbus/view.hpp"
#include "common/file.hpp"

using namespace ballast;
using namespace ballast::agent::dbus;

TEST_CASE("error codes become valid D-Bus error names and map back", "[dbus]") {
  CHECK(error_name_for_code("boot.esp-full") == "dev.ballast.Error.boot.esp_full");
  CHECK(error_name_for_code("tuf.rollback") == "dev.ballast.Error.tuf.rollback");
  for (std::string code : {"boot.esp-full", "receive.bad-crc", "agent.unknown-version", "tuf.rollback"})
    CHECK(code_for_error_name(error_name_for_code(code)) == code);
  CHECK(code_for_error_name(kAccessDenied) == "agent.access-denied");
  CHECK(code_for_error_name("org.freedesktop.DBus.Error.NoReply") == "dbus.NoReply");
}

TEST_CASE("a progress bar shows the fill, percent, bytes, rate and ETA within the width", "[dbus]") {
  agent::Progress p;
  p.bytes = 3 << 20;
  p.total_bytes = 4 << 20;
  p.percent = 75;
  p.rate = 512 * 1024;
  p.message = "fetching 2.0";
  CHECK(format_progress(p, true, 200) ==
        "[###############-----]  75%  3.0 MiB/4.0 MiB  512.0 KiB/s  ETA 0:02  fetching 2.0");
  CHECK(format_progress(p, true, 30).size() == 30);
  CHECK(format_progress(p, false) == "progress  75% 3.0 MiB of 4.0 MiB at 512.0 KiB/s, ETA 0:02: fetching 2.0");
}

TEST_CASE("the ETA is unknown without a rate or a total and spans hours when long", "[dbus]") {
  agent::Progress p;
  p.total_bytes = 100;
  CHECK(format_eta(p) == "--:--");
  p.rate = 10;
  p.total_bytes = 0;
  CHECK(format_eta(p) == "--:--");
  p.total_bytes = 3723 * 10;
  CHECK(format_eta(p) == "1:02:03");
  p.bytes = p.total_bytes - 15;
  CHECK(format_eta(p) == "0:02");
  CHECK(format_bytes(1023) == "1023 B");
  CHECK(format_bytes(1536) == "1.5 KiB");
  CHECK(format_bytes(uint64_t{5} << 30) == "5.0 GiB");
}

TEST_CASE("offline history reads the flow's history, is empty before any flow, and rejects a bad file", "[dbus]") {
  auto dir = make_temp_dir("ballast-view");
  REQUIRE(dir);
  auto none = read_offline_history(*dir);
  REQUIRE(none);
  CHECK(*none == nlohmann::json::array());
  CHECK(history_to_text(*none) == "no finished updates\n");

  REQUIRE(write_file_atomic(*dir + "/flow.json",
                            R"({"state":"idle","history":[{"time":0,"from":"1.0","target":"1.1","result":"committed"}]})"));
  auto h = read_offline_history(*dir);
  REQUIRE(h);
  REQUIRE(h->size() == 1);
  CHECK(history_to_text(*h) == "1970-01-01 00:00:00 UTC  1.0 -> 1.1  committed\n");

  REQUIRE(write_file_atomic(*dir + "/flow.json", R"({"history": 3})"));
  auto bad = read_offline_history(*dir);
  REQUIRE(!bad);
  CHECK(bad.error().code == "agent.bad-state");
  REQUIRE(write_file_atomic(*dir + "/flow.json", "{not json"));
  CHECK(!read_offline_history(*dir));
  (void)remove_tree(*dir);
}

TEST_CASE("ballast update stops following once the flow rests or hands over to a reboot", "[dbus]") {
  for (const char* s : {"idle", "waiting-to-reboot", "rebooting", "failed", "committed", "rolled-back"}) {
    INFO(s);
    CHECK(update_finished(s, false));
  }
  for (const char* s : {"checking", "staging", "staged", "verifying"}) {
    INFO(s);
    CHECK(!update_finished(s, false));
  }
  CHECK(update_finished("staged", true));
}
