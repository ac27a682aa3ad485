#include "common/crc32c.hpp"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace ballast {

namespace {

constexpr uint32_t kPoly = 0x82F63B78;  // reflected Castagnoli polynomial

constexpr std::array<std::array<uint32_t, 256>, 8> make_tables() {
  std::array<std::array<uint32_t, 256>, 8> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; ++i)
    for (size_t s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
  return t;
}

constexpr auto kTables = make_tables();

uint32_t update_portable(uint32_t crc, const uint8_t* p, size_t len) {
  while (len >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    v ^= crc;
    crc = kTables[7][v & 0xff] ^ kTables[6][(v >> 8) & 0xff] ^ kTables[5][(v >> 16) & 0xff] ^
          kTables[4][(v >> 24) & 0xff] ^ kTables[3][(v >> 32) & 0xff] ^ kTables[2][(v >> 40) & 0xff] ^
          kTables[1][(v >> 48) & 0xff] ^ kTables[0][v >> 56];
    p += 8;
    len -= 8;
  }
  while (len--) crc = (crc >> 8) ^ kTables[0][(crc ^ *p++) & 0xff];
  return crc;
}

// The register after `kLane` more zero bytes, as a linear map of the register: one table per
// byte of it. update(c, A || B) = advance(update(c, A)) ^ update(0, B) for |B| == kLane, which is
// what lets three independent runs over adjacent lanes be joined into one.
constexpr size_t kLane = 4096;

struct LaneAdvance {
  std::array<std::array<uint32_t, 256>, 4> t{};
  LaneAdvance() {
    static const std::array<uint8_t, kLane> zeros{};
    std::array<uint32_t, 32> bit{};
    for (size_t i = 0; i < 32; ++i) bit[i] = update_portable(1u << i, zeros.data(), zeros.size());
    for (size_t k = 0; k < 4; ++k)
      for (uint32_t b = 0; b < 256; ++b) {
        uint32_t v = 0;
        for (size_t i = 0; i < 8; ++i)
          if (b & (1u << i)) v ^= bit[8 * k + i];
        t[k][b] = v;
      }
  }
  uint32_t operator()(uint32_t c) const {
    return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^ t[3][c >> 24];
  }
};

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t update_sse42(uint32_t crc, const uint8_t* p, size_t len) {
  uint64_t c = crc;
  // One crc32 instruction's result is the next one's input, and its latency is three times its
  // issue interval: three lanes at once keep the unit busy. Every byte of a send stream goes
  // through here, so on a large receive this was a visible share of the receiver's CPU.
  if (len >= 3 * kLane) {
    static const LaneAdvance advance;
    do {
      uint64_t c1 = 0, c2 = 0;
      for (size_t i = 0; i < kLane; i += 8) {
        uint64_t v0, v1, v2;
        std::memcpy(&v0, p + i, 8);
        std::memcpy(&v1, p + kLane + i, 8);
        std::memcpy(&v2, p + 2 * kLane + i, 8);
        c = _mm_crc32_u64(c, v0);
        c1 = _mm_crc32_u64(c1, v1);
        c2 = _mm_crc32_u64(c2, v2);
      }
      uint32_t joined = advance(static_cast<uint32_t>(c)) ^ static_cast<uint32_t>(c1);
      c = advance(joined) ^ static_cast<uint32_t>(c2);
      p += 3 * kLane;
      len -= 3 * kLane;
    } while (len >= 3 * kLane);
  }
  while (len >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    len -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (len--) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}
#endif

}  // namespace

uint32_t crc32c_update(uint32_t crc, const void* data, size_t len) {
  const auto* p = static_cast<const uint8_t*>(data);
#if defined(__x86_64__)
  static const bool has_sse42 = __builtin_cpu_supports("sse4.2");
  if (has_sse42) return update_sse42(crc, p, len);
#endif
  return update_portable(crc, p, len);
}

}  // namespace ballast
