#include <catch2/catch.hpp>

#include "agent/repository_contact.hpp"
#include "common/clock.hpp"
#include "common/file.hpp"

using namespace ballast;
using namespace ballast::agent;
using namespace std::chrono_literals;

namespace {
const Error kRefused{"http.transfer", "connection refused", 0, {}};
}  // namespace

TEST_CASE("a repository failing for less than the threshold is no problem, for longer it is, and a success resets it") {
  FakeClock clock;
  RepositoryContact c = next_contact({}, std::nullopt, clock.now());
  CHECK(c.last_success == clock.now());
  const auto since = clock.now() + 1min;
  clock.advance(1min);
  c = next_contact(c, kRefused, clock.now());
  clock.advance(30min);
  c = next_contact(c, Error{"tuf.fetch", "404", 0, {}}, clock.now());  // a later failure keeps the start
  CHECK(c.failing_since == since);
  CHECK(c.last_error == "tuf.fetch");
  CHECK_FALSE(repository_unreachable(c, clock.now(), 1h));
  clock.advance(31min);
  auto problem = repository_unreachable(c, clock.now(), 1h);
  REQUIRE(problem);
  CHECK(*problem == "repository unreachable since 2026-01-01T00:01:00Z (61 min): tuf.fetch");

  c = next_contact(c, std::nullopt, clock.now());
  CHECK_FALSE(c.failing_since);
  CHECK_FALSE(repository_unreachable(c, clock.now() + 24h, 1h));
  // The next failure starts a new period.
  c = next_contact(c, kRefused, clock.now());
  CHECK(c.failing_since == clock.now());
  CHECK_FALSE(repository_unreachable(c, clock.now() + 59min, 1h));
}

TEST_CASE("the repository record survives in the state dir and a missing one is a host that never failed") {
  std::string dir = *make_temp_dir("ballast-contact-test");
  FakeClock clock;
  auto none = load_repository_contact(dir);
  REQUIRE(none);
  CHECK_FALSE(none->failing_since);
  CHECK_FALSE(none->last_success);
  REQUIRE(record_repository_contact(dir, std::nullopt, clock.now()));
  clock.advance(10min);
  REQUIRE(record_repository_contact(dir, kRefused, clock.now()));
  clock.advance(10min);
  REQUIRE(record_repository_contact(dir, kRefused, clock.now()));
  auto loaded = load_repository_contact(dir);
  REQUIRE(loaded);
  CHECK(loaded->last_success == clock.now() - 20min);
  CHECK(loaded->failing_since == clock.now() - 10min);
  CHECK(loaded->last_error == "http.transfer");
  REQUIRE(write_file_atomic(dir + "/repository.json", "{\"failingSince\": 7}"));
  auto corrupt = load_repository_contact(dir);
  REQUIRE_FALSE(corrupt);
  CHECK(corrupt.error().code == "state.corrupt");
  REQUIRE(write_file_atomic(dir + "/repository.json", "{\"lastError\": 7}"));
  auto wrong_error = load_repository_contact(dir);  // refused as a value, not thrown
  REQUIRE_FALSE(wrong_error);
  CHECK(wrong_error.error().code == "state.corrupt");
  CHECK_THAT(wrong_error.error().describe(), Catch::Contains("lastError"));
  (void)remove_tree(dir);
}
