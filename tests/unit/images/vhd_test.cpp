#include <catch2/catch.hpp>

#include <cstring>

#include "images/vhd.hpp"

using namespace ballast;
using images::ChsGeometry;

namespace {

uint64_t be(const images::VhdFooter& f, size_t offset, size_t bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < bytes; ++i) v = (v << 8) | f[offset + i];
  return v;
}

const images::VhdUniqueId kId = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

}  // namespace

TEST_CASE("VHD geometry follows the specification's CHS algorithm at each of its boundaries") {
  struct Row {
    uint64_t sectors;
    ChsGeometry chs;
  };
  const Row rows[] = {
      {2048, {30, 4, 17}},                        // 1 MiB: at least 4 heads
      {16384ull * 17 - 1, {1023, 16, 17}},         // the last size with 17 sectors per track
      {16384ull * 17, {561, 16, 31}},
      {16384ull * 31 - 1, {1023, 16, 31}},         // the last size with 31
      {16384ull * 31, {503, 16, 63}},
      {65535ull * 16 * 63 - 1, {65534, 16, 63}},   // the last size with 63
      {65535ull * 16 * 63, {16191, 16, 255}},      // from here 255 sectors per track
      {65535ull * 16 * 255, {65535, 16, 255}},     // the largest geometry
      {65535ull * 16 * 255 + 4096, {65535, 16, 255}},  // larger disks keep it
  };
  for (const auto& r : rows) {
    INFO("sectors " << r.sectors);
    CHECK(images::vhd_geometry(r.sectors) == r.chs);
  }
}

TEST_CASE("a VHD footer's checksum is the one's complement of the sum of its other bytes") {
  auto f = images::vhd_footer(64ull << 20, kId, 12345);
  uint32_t sum = 0;
  for (size_t i = 0; i < f.size(); ++i)
    if (i < 64 || i >= 68) sum += f[i];
  CHECK(be(f, 64, 4) == static_cast<uint32_t>(~sum));
  CHECK(images::vhd_checksum(f) == be(f, 64, 4));
  CHECK(images::fixed_vhd_size(f) == (64ull << 20));
  f[100] ^= 1;  // any changed byte breaks it
  CHECK_FALSE(images::fixed_vhd_size(f));
}

TEST_CASE("a VHD footer describes a fixed disk of the given size in the specification's layout") {
  const uint64_t size = 5ull << 30;
  auto f = images::vhd_footer(size, kId, 0x01020304);
  CHECK(std::memcmp(f.data(), "conectix", 8) == 0);
  CHECK(be(f, 8, 4) == 2);            // features
  CHECK(be(f, 12, 4) == 0x00010000);  // version 1.0
  CHECK(be(f, 16, 8) == ~uint64_t{0});
  CHECK(be(f, 24, 4) == 0x01020304);
  CHECK(be(f, 40, 8) == size);
  CHECK(be(f, 48, 8) == size);
  auto chs = images::vhd_geometry(size / 512);
  CHECK(be(f, 56, 2) == chs.cylinders);
  CHECK(f[58] == chs.heads);
  CHECK(f[59] == chs.sectors_per_track);
  CHECK(be(f, 60, 4) == 2);  // fixed
  CHECK(std::memcmp(f.data() + 68, kId.data(), 16) == 0);
  for (size_t i = 84; i < f.size(); ++i) REQUIRE(f[i] == 0);
}

TEST_CASE("each new VHD footer gets its own unique id") {
  auto a = images::new_vhd_footer(1 << 20), b = images::new_vhd_footer(1 << 20);
  CHECK(std::memcmp(a.data() + 68, b.data() + 68, 16) != 0);
  CHECK(images::fixed_vhd_size(a) == (1u << 20));
}

TEST_CASE("a VHD's disk size is rounded up to a whole MiB") {
  CHECK(images::vhd_disk_size(1 << 20) == (1u << 20));
  CHECK(images::vhd_disk_size((1 << 20) + 512) == (2u << 20));
  CHECK(images::vhd_disk_size(1) == (1u << 20));
  CHECK(images::vhd_disk_size((5ull << 30) - 4096) == (5ull << 30));
}

TEST_CASE("a footer that is not a fixed disk is not taken for one") {
  auto f = images::vhd_footer(1 << 20, kId, 0);
  f[63] = 3;  // dynamic
  f[64] = f[65] = f[66] = f[67] = 0;
  auto sum = images::vhd_checksum(f);
  for (int i = 0; i < 4; ++i) f[64 + i] = static_cast<uint8_t>(sum >> (8 * (3 - i)));
  CHECK_FALSE(images::fixed_vhd_size(f));
}
