#include "common/mirrored_ring.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>

using namespace ballast;

TEST_CASE("a mirrored ring rounds its capacity up to whole pages") {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  auto ring = MirroredRing::create(page + 1);
  REQUIRE(ring);
  CHECK(ring->capacity() == 2 * page);
}

TEST_CASE("bytes written across a mirrored ring's end read back contiguously from either side of the wrap") {
  auto made = MirroredRing::create(1);
  REQUIRE(made);
  MirroredRing ring = std::move(*made);
  const size_t cap = ring.capacity();
  // A whole ring's worth of bytes, starting 100 bytes before the physical end.
  std::string data(cap, '\0');
  for (size_t i = 0; i < cap; ++i) data[i] = static_cast<char>('a' + i % 23);
  const uint64_t start = 5 * cap - 100;
  std::memcpy(ring.at(start), data.data(), data.size());
  CHECK(std::string(ring.at(start), cap) == data);
  // The same bytes, seen from the position just past the wrap: the ring's own start.
  CHECK(std::string(ring.at(start + 100), cap - 100) == data.substr(100));
  CHECK(std::memcmp(ring.at(start + 100), data.data() + 100, 16) == 0);
  CHECK(ring.at(start + 100) == ring.at(0));
  // A later write over the first bytes shows through the mirror at the same stream position.
  ring.at(start + cap)[0] = '#';
  CHECK(ring.at(start)[0] == '#');
}

TEST_CASE("an impossibly large mirrored ring is refused with an error, not a crash") {
  auto ring = MirroredRing::create(SIZE_MAX / 2);
  REQUIRE_FALSE(ring);
  CHECK(ring.error().code == "ring.memory");
}
