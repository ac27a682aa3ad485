#include "repository/chunker.hpp"

#include <array>
#include <bit>
#include <cstring>

#include "repository/manifest.hpp"

namespace ballast::repository {

namespace {

// The gear table is part of the format in effect: changing it moves every boundary, so a new
// publisher would share no chunks with an old one. Derived from splitmix64 with a fixed seed.
constexpr std::array<uint64_t, 256> make_gear() {
  std::array<uint64_t, 256> g{};
  uint64_t x = 0x62616c6c61737421ull;  // "ballast!"
  for (auto& v : g) {
    x += 0x9e3779b97f4a7c15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    v = z ^ (z >> 31);
  }
  return g;
}
constexpr auto kGear = make_gear();

// The shift-left gear hash moves each byte's influence towards the high bits, so testing the
// top bits makes a boundary depend on the last 64 bytes rather than the last few.
constexpr uint64_t top_bits(int n) { return n <= 0 ? 0 : (~0ull << (64 - n)); }

}  // namespace

Status validate(const ChunkerParams& p) {
  if (p.avg_size < (64u << 10)) return fail("chunker.params", "average chunk size below 64 KiB");
  if (!(p.min_size <= p.avg_size && p.avg_size <= p.max_size))
    return fail("chunker.params", "chunk sizes must satisfy min <= avg <= max");
  if (p.max_size > kMaxChunkBytes) return fail("chunker.params", "maximum chunk size above the manifest's cap");
  if (p.min_size == 0) return fail("chunker.params", "minimum chunk size must be positive");
  return ok();
}

Chunker::Chunker(const ChunkerParams& p) : p_(p) {
  int bits = std::bit_width(p.avg_size) - 1;
  // Normalised chunking (level 2): harder to cut before the average, easier after, which
  // narrows the size distribution around it.
  mask_small_ = top_bits(bits + 2);
  mask_large_ = top_bits(bits - 2);
}

size_t Chunker::cut(const uint8_t* data, size_t len, bool at_end) const {
  if (len <= p_.min_size) return at_end ? len : 0;
  size_t limit = std::min(len, p_.max_size);
  size_t normal = std::min(limit, p_.avg_size);
  uint64_t fp = 0;
  size_t i = p_.min_size;
  for (; i < normal; ++i) {
    fp = (fp << 1) + kGear[data[i]];
    if (!(fp & mask_small_)) return i + 1;
  }
  for (; i < limit; ++i) {
    fp = (fp << 1) + kGear[data[i]];
    if (!(fp & mask_large_)) return i + 1;
  }
  if (limit == p_.max_size || at_end) return limit;
  return 0;
}

Status chunk_stream(ByteSource& in, const ChunkerParams& p, const std::function<Status(std::string&&)>& on_chunk) {
  BALLAST_CHECK(validate(p));
  Chunker chunker(p);
  std::string buf;
  size_t start = 0;  // consumed prefix of buf
  bool at_end = false;
  const size_t want = 2 * p.max_size;
  for (;;) {
    // Keep at least max_size bytes ahead of `start` unless the stream has ended.
    while (!at_end && buf.size() - start < p.max_size) {
      if (start > 0) {
        buf.erase(0, start);
        start = 0;
      }
      size_t old = buf.size();
      buf.resize(want);
      size_t n = BALLAST_TRY(in.read(buf.data() + old, want - old));
      buf.resize(old + n);
      if (n == 0) at_end = true;
    }
    size_t avail = buf.size() - start;
    if (avail == 0) return ok();
    size_t n = chunker.cut(reinterpret_cast<const uint8_t*>(buf.data() + start), avail, at_end);
    if (n == 0) continue;  // cannot happen with max_size bytes available; defensive
    BALLAST_CHECK(on_chunk(buf.substr(start, n)));
    start += n;
  }
}

}  // namespace ballast::repository
