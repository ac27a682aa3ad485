#include <unistd.h>

#include <catch2/catch.hpp>

#include <optional>
#include <thread>

#include "common/file.hpp"
#include "common/host_lock.hpp"

using namespace ballast;

namespace {

struct TempState {
  std::string dir = *make_temp_dir("ballast-host-lock-test");
  ~TempState() { (void)remove_tree(dir); }
  std::string lock() const { return host_lock_path(dir + "/state"); }
};

// Another thread holds its own open file description, as another process would.
Result<HostLock> acquire_elsewhere(const std::string& path, const std::string& verb) {
  std::optional<Result<HostLock>> r;
  std::thread([&] { r.emplace(HostLock::acquire(path, verb)); }).join();
  return std::move(*r);
}

}  // namespace

TEST_CASE("the host lock file names its holder's pid and verb, and a second writer fails at once naming them") {
  TempState t;
  auto held = HostLock::acquire(t.lock(), "boot bless");
  REQUIRE(held);
  CHECK(*read_file(t.lock()) == std::to_string(::getpid()) + " boot bless\n");
  auto second = acquire_elsewhere(t.lock(), "stage");
  REQUIRE_FALSE(second);
  CHECK(second.error().code == "host.locked");
  CHECK_THAT(second.error().message, Catch::Contains("pid " + std::to_string(::getpid()) + " (boot bless)"));
  CHECK_THAT(second.error().message, Catch::Contains(t.lock()));
}

TEST_CASE("the host lock is free again once its holder lets go, and the file no longer names it") {
  TempState t;
  { auto held = HostLock::acquire(t.lock(), "stage"); REQUIRE(held); }
  CHECK(read_file(t.lock())->empty());
  auto next = acquire_elsewhere(t.lock(), "install");
  REQUIRE(next);
}

TEST_CASE("a thread holding the host lock may take it again, and the outer hold outlasts the inner") {
  TempState t;
  auto outer = HostLock::acquire(t.lock(), "daemon staging");
  REQUIRE(outer);
  {
    auto inner = HostLock::acquire(t.lock(), "stage");
    REQUIRE(inner);
  }
  CHECK_FALSE(acquire_elsewhere(t.lock(), "boot bless"));
  CHECK(*read_file(t.lock()) == std::to_string(::getpid()) + " daemon staging\n");
}

TEST_CASE("a moved host lock is still held and is released once") {
  TempState t;
  std::optional<HostLock> kept;
  {
    auto held = HostLock::acquire(t.lock(), "stage");
    REQUIRE(held);
    kept.emplace(std::move(*held));
  }
  CHECK_FALSE(acquire_elsewhere(t.lock(), "boot bless"));
  kept.reset();
  CHECK(acquire_elsewhere(t.lock(), "boot bless"));
}
