#include <catch2/catch.hpp>
#include <string>

#include "common/crc32c.hpp"

using namespace ballast;

TEST_CASE("crc32c matches the RFC 3720 check value") {
  std::string s = "123456789";
  CHECK(crc32c(s.data(), s.size()) == 0xE3069283u);
  std::string zeros(32, '\0');
  CHECK(crc32c(zeros.data(), zeros.size()) == 0x8A9136AAu);  // RFC 3720 B.4
}

TEST_CASE("crc32c over pieces equals crc32c over the whole, at every split and alignment") {
  std::string data;
  for (int i = 0; i < 1000; ++i) data += static_cast<char>(i * 7 + 3);
  uint32_t whole = crc32c_update(0, data.data(), data.size());
  for (size_t split : {0u, 1u, 7u, 8u, 9u, 500u, 999u, 1000u}) {
    uint32_t c = crc32c_update(0, data.data(), split);
    c = crc32c_update(c, data.data() + split, data.size() - split);
    CHECK(c == whole);
  }
}

namespace {
// Bit by bit, from the polynomial alone: shares nothing with the tables or lanes it checks.
uint32_t crc32c_bitwise(uint32_t crc, const std::string& data, size_t from, size_t len) {
  for (size_t i = from; i < from + len; ++i) {
    crc ^= static_cast<uint8_t>(data[i]);
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
  }
  return crc;
}
}  // namespace

TEST_CASE("crc32c of long buffers, checked in interleaved lanes, equals the bit-by-bit definition") {
  std::string data(64 * 1024 + 123, '\0');
  uint32_t x = 12345;
  for (auto& ch : data) {
    x = x * 1103515245u + 12345u;
    ch = static_cast<char>(x >> 23);
  }
  // Around one, two and several rounds of three 4 KiB lanes, at odd offsets and with a running crc.
  for (size_t len : {12287u, 12288u, 12289u, 24576u + 8u, 49152u, 49152u + 7u, 65536u}) {
    for (size_t from : {0u, 1u, 5u}) {
      for (uint32_t seed : {0u, 0xffffffffu, 0x1234abcdu}) {
        INFO("len " << len << " from " << from << " seed " << seed);
        CHECK(crc32c_update(seed, data.data() + from, len) == crc32c_bitwise(seed, data, from, len));
      }
    }
  }
}
