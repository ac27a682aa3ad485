#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <thread>

#include "common/file.hpp"
#include "repository/chunk_codec.hpp"
#include "repository/fetcher.hpp"
#include "repository/packer.hpp"

using namespace ballast;
using namespace ballast::repository;
using namespace std::chrono_literals;

namespace {

std::string random_text(size_t n, uint32_t seed) {
  // Compressible but not trivially: words from a small alphabet.
  std::mt19937 rng(seed);
  std::string s;
  s.reserve(n);
  while (s.size() < n) s.push_back(static_cast<char>('a' + rng() % 7 + (rng() % 5 == 0 ? 32 : 0)));
  return s;
}

// A repository directory served over file:// with one packed artifact.
struct Repo {
  std::string dir, data;
  Artifact art;
  Repo(size_t bytes, uint32_t seed, uint64_t history = 8u << 20) {
    dir = *make_temp_dir("ballast-fetch");
    data = random_text(bytes, seed);
    PackOptions p;
    p.chunker = {16u << 10, 64u << 10, 256u << 10};
    p.zstd_level = 3;
    p.history = history;
    MemoryByteSource src(data);
    art = *pack_stream(src, dir + "/repo/chunks", p);
  }
  ~Repo() { (void)remove_tree(dir); }
  FetchOptions options() const {
    FetchOptions o;
    o.chunk_base_url = "file://" + dir + "/repo/chunks/";
    o.cache_dir = dir + "/cache";
    o.parallel = 3;
    o.window = 4;
    o.http.backoff_base = 1ms;
    o.http.backoff_max = 5ms;
    o.http.retries = 2;
    return o;
  }
  std::string chunk_file(size_t i) const { return dir + "/repo/chunks/" + art.chunks[i].sha256; }
};

Result<std::string> read_all(ByteSource& s, size_t step = 65536) {
  std::string out, buf(step, '\0');
  for (;;) {
    size_t n = BALLAST_TRY(s.read(buf.data(), buf.size()));
    if (n == 0) return out;
    out.append(buf.data(), n);
  }
}

}  // namespace

TEST_CASE("an artifact fetched over file:// reads back as the original stream", "[repository][fetcher]") {
  Repo r(3u << 20, 1);
  REQUIRE(r.art.chunks.size() > 8);
  std::vector<FetchProgress> seen;
  auto o = r.options();
  o.progress = [&](const FetchProgress& p) { seen.push_back(p); };
  auto s = open_artifact_stream(r.art, o);
  REQUIRE(s);
  auto out = read_all(**s, 1000);  // small reads cross chunk boundaries
  REQUIRE(out);
  CHECK(*out == r.data);
  auto st = (*s)->stats();
  CHECK(st.network_bytes == r.art.size);
  CHECK(st.cache_bytes == 0);
  CHECK(st.requests == r.art.chunks.size());
  REQUIRE_FALSE(seen.empty());
  CHECK(seen.back().bytes_done == r.art.size);
  CHECK(seen.back().bytes_total == r.art.size);
  // Verified chunks stay in the cache until the caller discards them.
  CHECK(path_exists(o.cache_dir + "/" + r.art.chunks[0].sha256));
  REQUIRE((*s)->discard_cache());
  CHECK(list_dir(o.cache_dir)->empty());
}

TEST_CASE("a stream many times larger than the fetcher's buffer, each chunk compressed against the bytes "
          "before it, reads back exactly",
          "[repository][fetcher]") {
  // A short history and a small window make a small ring, so the stream wraps around it many
  // times and the history of many chunks straddles the wrap.
  Repo r(3u << 20, 5, 48u << 10);
  uint64_t biggest = 0;
  for (const auto& c : r.art.chunks) biggest = std::max(biggest, c.usize);
  auto o = r.options();
  o.window = 64;
  o.window_bytes = biggest;
  auto s = open_artifact_stream(r.art, o);
  REQUIRE(s);
  auto out = read_all(**s, 777);
  REQUIRE(out);
  CHECK(*out == r.data);
  uint64_t ring = (*s)->stats().ring_bytes;
  CHECK(ring >= r.art.history + biggest);
  CHECK(ring * 4 < r.data.size());
}

TEST_CASE("verified and partial chunks in the cache are reused, not fetched again", "[repository][fetcher]") {
  Repo r(2u << 20, 2);
  auto o = r.options();
  REQUIRE(make_dirs(o.cache_dir));
  // chunk 0 verified, chunk 1 half-downloaded.
  REQUIRE(write_file_atomic(o.cache_dir + "/" + r.art.chunks[0].sha256, *read_file(r.chunk_file(0))));
  std::string c1 = *read_file(r.chunk_file(1));
  REQUIRE(write_file_atomic(o.cache_dir + "/" + r.art.chunks[1].sha256 + ".part", c1.substr(0, c1.size() / 2)));
  auto s = open_artifact_stream(r.art, o);
  REQUIRE(s);
  auto out = read_all(**s);
  REQUIRE(out);
  CHECK(*out == r.data);
  auto st = (*s)->stats();
  CHECK(st.chunks_from_cache == 1);
  CHECK(st.cache_bytes == r.art.chunks[0].size + c1.size() / 2);
  CHECK(st.network_bytes == r.art.size - st.cache_bytes);
}

TEST_CASE("a corrupt cached chunk is discarded and fetched again", "[repository][fetcher]") {
  Repo r(1u << 20, 3);
  auto o = r.options();
  REQUIRE(make_dirs(o.cache_dir));
  std::string bad = *read_file(r.chunk_file(0));
  bad[bad.size() / 2] ^= 0x40;
  REQUIRE(write_file_atomic(o.cache_dir + "/" + r.art.chunks[0].sha256, bad));
  auto s = open_artifact_stream(r.art, o);
  REQUIRE(s);
  auto out = read_all(**s);
  REQUIRE(out);
  CHECK(*out == r.data);
  CHECK((*s)->stats().network_bytes == r.art.size);
}

TEST_CASE("a chunk whose bytes do not match its hash fails the stream before any of it is handed on",
          "[repository][fetcher]") {
  Repo r(1u << 20, 4);
  REQUIRE(r.art.chunks.size() > 3);
  // Same length, one flipped byte, in the first chunk: nothing may be read at all.
  std::string bad = *read_file(r.chunk_file(0));
  bad[10] ^= 1;
  REQUIRE(write_file_atomic(r.chunk_file(0), bad));
  auto o = r.options();
  auto s = open_artifact_stream(r.art, o);
  REQUIRE(s);
  char buf[16];
  auto n = (*s)->read(buf, sizeof buf);
  REQUIRE_FALSE(n);
  CHECK(n.error().code == "fetch.hash-mismatch");
  CHECK((*s)->stats().retries == 2);
  // The bad bytes are not kept as a partial download.
  CHECK_FALSE(path_exists(o.cache_dir + "/" + r.art.chunks[0].sha256 + ".part"));
  CHECK_FALSE(path_exists(o.cache_dir + "/" + r.art.chunks[0].sha256));
}

TEST_CASE("a chunk larger than the manifest says is cut off and refused", "[repository][fetcher]") {
  Repo r(1u << 20, 5);
  std::string c = *read_file(r.chunk_file(1));
  REQUIRE(write_file_atomic(r.chunk_file(1), c + std::string(1u << 20, 'x')));
  auto o = r.options();
  auto s = open_artifact_stream(r.art, o);
  REQUIRE(s);
  auto out = read_all(**s);
  REQUIRE_FALSE(out);
  CHECK(out.error().code == "fetch.too-large");
  // Never more than the manifest's length of any chunk was accepted.
  CHECK((*s)->stats().network_bytes <= r.art.size);
}

TEST_CASE("a missing chunk fails the stream as not found", "[repository][fetcher]") {
  Repo r(1u << 20, 6);
  REQUIRE(remove_if_exists(r.chunk_file(2)));
  auto s = open_artifact_stream(r.art, r.options());
  REQUIRE(s);
  auto out = read_all(**s);
  REQUIRE_FALSE(out);
  CHECK(out.error().code == "fetch.not-found");
}

TEST_CASE("a chunk listed twice in an artifact is fetched once", "[repository][fetcher]") {
  Repo r(1u << 20, 7, /*history=*/0);  // independent chunks: a repeat decodes on its own
  Artifact twice = r.art;
  twice.chunks.push_back(r.art.chunks[0]);
  twice.chunks.push_back(r.art.chunks[0]);
  twice.size += 2 * r.art.chunks[0].size;
  auto o = r.options();
  o.window = 64;
  auto s = open_artifact_stream(twice, o);
  REQUIRE(s);
  auto out = read_all(**s);
  REQUIRE(out);
  auto first = *decompress_chunk(*read_file(r.chunk_file(0)), r.art.chunks[0].usize);
  CHECK(*out == r.data + first + first);
  CHECK((*s)->stats().requests == r.art.chunks.size());
}

TEST_CASE("the fetcher holds no more than window_bytes ahead of a reader that stalls", "[repository][fetcher]") {
  Repo r(3u << 20, 11);
  uint64_t biggest = 0;
  for (const auto& c : r.art.chunks) biggest = std::max({biggest, c.size, c.usize});
  auto o = r.options();
  o.window = 64;  // the chunk count alone would let most of the artifact in
  o.window_bytes = 3 * biggest;
  uint64_t total = 0;
  for (const auto& c : r.art.chunks) total += std::max(c.size, c.usize);
  REQUIRE(total > 2 * o.window_bytes);
  auto s = open_artifact_stream(r.art, o);
  REQUIRE(s);
  char first = 0;
  REQUIRE(*(*s)->read(&first, 1) == 1);
  // The reader stalls after one byte while the fetcher fills the window as far as it may: until
  // the next chunk would not fit.
  for (int i = 0; i < 100000 && (*s)->stats().peak_bytes_ahead + biggest <= o.window_bytes; ++i)
    std::this_thread::sleep_for(1ms);
  CHECK((*s)->stats().peak_bytes_ahead + biggest > o.window_bytes);
  auto rest = read_all(**s);
  REQUIRE(rest);
  CHECK(first + *rest == r.data);
  CHECK((*s)->stats().peak_bytes_ahead <= o.window_bytes);
}

TEST_CASE("Retry-After is read as seconds or as an HTTP date", "[repository][fetcher]") {
  CHECK(parse_retry_after("120", 0) == 120s);
  CHECK(parse_retry_after(" 3\r\n", 0) == 3s);
  CHECK(parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", 40) == 60s);
  CHECK(parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", 40) == 0s);
  CHECK_FALSE(parse_retry_after("soon", 0));
  CHECK_FALSE(parse_retry_after("", 0));
  // A date a server puts millennia away is the longest wait, which the caller caps anyway.
  CHECK(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", 0) == 999999999s);
  CHECK(parse_retry_after("99999999999999999999", 0) == 999999999s);
}

TEST_CASE("backoff doubles per attempt up to its cap", "[repository][fetcher]") {
  for (int i = 0; i < 20; ++i) {
    auto d1 = backoff_delay(1, 100ms, 1000ms), d3 = backoff_delay(3, 100ms, 1000ms), d9 = backoff_delay(9, 100ms, 1000ms);
    CHECK(d1 >= 75ms);
    CHECK(d1 <= 100ms);
    CHECK(d3 >= 300ms);
    CHECK(d3 <= 400ms);
    CHECK(d9 >= 750ms);
    CHECK(d9 <= 1000ms);
  }
}
