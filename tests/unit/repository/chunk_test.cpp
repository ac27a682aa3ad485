#include <catch2/catch.hpp>

#include <random>
#include <set>

#include "common/byte_source.hpp"
#include "common/file.hpp"
#include "repository/chunk_codec.hpp"
#include "repository/chunker.hpp"
#include "repository/packer.hpp"

using namespace ballast;
using namespace ballast::repository;

namespace {
// A MiB of words: compressible, so a chunk compressed at another level or against another
// history comes out as other bytes.
std::string compressible_words(unsigned seed) {
  std::mt19937 rng(seed);
  std::string data;
  while (data.size() < (1u << 20)) data += "word" + std::to_string(rng() % 5000) + (rng() % 9 ? " " : "\n");
  return data;
}

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

std::vector<std::string> chunks_of(const std::string& data, const ChunkerParams& p) {
  MemoryByteSource src(data);
  std::vector<std::string> out;
  REQUIRE(chunk_stream(src, p, [&](std::string&& c) {
    out.push_back(std::move(c));
    return ok();
  }));
  return out;
}

const ChunkerParams kSmall{16u << 10, 64u << 10, 256u << 10};

}  // namespace

TEST_CASE("chunks concatenate to the stream and respect the size bounds", "[repository][chunker]") {
  std::string data = random_bytes(3u << 20, 1);
  auto chunks = chunks_of(data, kSmall);
  std::string joined;
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (i + 1 < chunks.size()) CHECK(chunks[i].size() >= kSmall.min_size);
    CHECK(chunks[i].size() <= kSmall.max_size);
    joined += chunks[i];
  }
  CHECK(joined == data);
  // Content-defined cuts average near the target, not at the bounds.
  CHECK(chunks.size() > data.size() / kSmall.max_size);
  CHECK(chunks.size() < data.size() / kSmall.min_size);
}

TEST_CASE("an insertion early in a stream leaves later chunks unchanged", "[repository][chunker]") {
  std::string data = random_bytes(4u << 20, 2);
  std::string edited = data;
  edited.insert(100000, "an inserted run of bytes that shifts every later offset");
  auto a = chunks_of(data, kSmall), b = chunks_of(edited, kSmall);
  std::set<std::string> sa(a.begin(), a.end());
  size_t shared = 0;
  for (const auto& c : b) shared += sa.count(c);
  // Only the chunk(s) around the insertion differ.
  CHECK(shared + 2 >= b.size());
  CHECK(shared < b.size());
}

TEST_CASE("invalid chunker parameters are refused", "[repository][chunker]") {
  CHECK_FALSE(validate(ChunkerParams{1u << 20, 64u << 10, 2u << 20}));
  CHECK_FALSE(validate(ChunkerParams{1, 1024, 4096}));
  CHECK_FALSE(validate(ChunkerParams{1u << 20, 2u << 20, 128u << 20}));
  CHECK(validate(ChunkerParams{}));
}

TEST_CASE("a compressed chunk decompresses only to exactly its manifest size", "[repository][chunker]") {
  std::string data = "hello hello hello hello " + random_bytes(1000, 3);
  auto z = compress_chunk(data, 3);
  REQUIRE(z);
  auto back = decompress_chunk(*z, data.size());
  REQUIRE(back);
  CHECK(*back == data);
  CHECK(decompress_chunk(*z, data.size() - 1).error().code == "chunk.bad-data");
  CHECK(decompress_chunk(*z, data.size() + 1).error().code == "chunk.bad-data");
  CHECK(decompress_chunk(*z + "x", data.size()).error().code == "chunk.bad-data");
  CHECK(decompress_chunk("not zstd at all", 10).error().code == "chunk.bad-data");
  CHECK(compress_chunk(data, 0).error().code == "chunk.level");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("packing stores each distinct chunk once and describes the stream", "[repository][packer]") {
  auto dir = make_temp_dir("ballast-pack");
  REQUIRE(dir);
  std::string data = random_bytes(2u << 20, 4);
  PackOptions opts;
  opts.chunker = kSmall;
  opts.zstd_level = 3;
  opts.threads = 3;
  MemoryByteSource src(data);
  PackStats stats;
  auto art = pack_stream(src, *dir + "/chunks", opts, &stats);
  REQUIRE(art);
  CHECK(stats.chunks == art->chunks.size());
  CHECK(stats.new_chunks == art->chunks.size());
  CHECK(art->usize == data.size());
  CHECK(art->history == opts.history);
  std::string rebuilt;
  uint64_t size = 0;
  for (const auto& c : art->chunks) {
    auto z = read_file(*dir + "/chunks/" + c.sha256);
    REQUIRE(z);
    CHECK(sha256_hex(*z) == c.sha256);
    CHECK(z->size() == c.size);
    size += c.size;
    std::string_view history(rebuilt);
    if (history.size() > art->history) history.remove_prefix(history.size() - art->history);
    auto plain = decompress_chunk(*z, c.usize, history);
    REQUIRE(plain);
    rebuilt += *plain;
  }
  CHECK(size == art->size);
  CHECK(rebuilt == data);

  // The same stream with a change at the end shares all but the last chunks.
  MemoryByteSource src2(data + "tail");
  PackStats stats2;
  auto art2 = pack_stream(src2, *dir + "/chunks", opts, &stats2);
  REQUIRE(art2);
  CHECK(stats2.new_chunks >= 1);
  CHECK(stats2.new_chunks <= 2);
  REQUIRE(remove_tree(*dir));
}

TEST_CASE("a chunk compressed against its history is smaller and decodes only with that history",
          "[repository][chunker]") {
  std::string history = random_bytes(200000, 9);
  std::string data = history.substr(50000, 100000) + "new";  // repeats bytes the history holds
  auto alone = compress_chunk(data, 3);
  auto chained = compress_chunk(data, 3, history);
  REQUIRE(alone);
  REQUIRE(chained);
  CHECK(chained->size() * 10 < alone->size());
  CHECK(*decompress_chunk(*chained, data.size(), history) == data);
  CHECK_FALSE(decompress_chunk(*chained, data.size()));
  std::string other = history;
  other[60000] ^= 1;
  auto wrong = decompress_chunk(*chained, data.size(), other);
  CHECK((!wrong || *wrong != data));
}

TEST_CASE("packing an empty stream is an error", "[repository][packer]") {
  auto dir = make_temp_dir("ballast-pack");
  REQUIRE(dir);
  MemoryByteSource src("");
  auto art = pack_stream(src, *dir + "/chunks", PackOptions{}, nullptr);
  REQUIRE_FALSE(art);
  CHECK(art.error().code == "pack.empty");
  REQUIRE(remove_tree(*dir));
}

namespace {
// Small chunks and history, so that a MiB makes many chunks, with the reuse index at `index`.
PackOptions reuse_options(const std::string& index) {
  PackOptions opts;
  opts.chunker = kSmall;
  opts.history = 128u << 10;
  opts.reuse_index = index;
  return opts;
}
}  // namespace

TEST_CASE("a chunk the reuse index names is taken from the store without compressing, and the artifact is the same",
          "[repository][packer][reuse]") {
  auto dir = make_temp_dir("ballast-pack");
  REQUIRE(dir);
  // Compressible, so that a chunk compressed against another history would differ.
  const std::string data = compressible_words(5);
  PackOptions opts = reuse_options(*dir + "/build/reuse-index");
  opts.zstd_level = 3;
  auto pack = [&](const std::string& s, PackStats& st) {
    MemoryByteSource src(s);
    return pack_stream(src, *dir + "/chunks", opts, &st);
  };
  PackStats first, second;
  auto a = pack(data, first);
  REQUIRE(a);
  CHECK(first.reused == 0);
  CHECK(path_exists(opts.reuse_index));
  // The same level again: every chunk comes from the store.
  auto b = pack(data, second);
  REQUIRE(b);
  CHECK(second.reused == a->chunks.size());
  CHECK(second.new_chunks == 0);
  CHECK(b->chunks == a->chunks);

  // A change near the end: the chunks before it keep their bytes and history and are reused,
  // the changed one and those whose history holds the change are compressed.
  std::string changed = data;
  changed[changed.size() - 1000] = '#';
  PackStats third;
  auto c = pack(changed, third);
  REQUIRE(c);
  CHECK(third.reused > 0);
  CHECK(third.reused < c->chunks.size());
  CHECK(third.reused + third.new_chunks == c->chunks.size());
  REQUIRE(remove_tree(*dir));
}

TEST_CASE("a stored chunk stands in for a new one only when it was compressed at the level asked for or a higher one",
          "[repository][packer][reuse]") {
  auto dir = make_temp_dir("ballast-pack");
  REQUIRE(dir);
  const std::string data = compressible_words(7);
  PackOptions opts = reuse_options(*dir + "/reuse-index");
  auto pack = [&](int level, PackStats& st) {
    opts.zstd_level = level;
    MemoryByteSource src(data);
    return pack_stream(src, *dir + "/chunks", opts, &st);
  };
  PackStats fast, strong, strong_again, fast_again;
  auto at3 = pack(3, fast);
  REQUIRE(at3);
  // Asked for 19, the level-3 chunks are compressed again: the artifact is what 19 makes.
  auto at19 = pack(19, strong);
  REQUIRE(at19);
  CHECK(strong.reused == 0);
  CHECK(strong.new_chunks == at19->chunks.size());
  CHECK(at19->size < at3->size);
  PackStats fresh19;
  auto dir19 = make_temp_dir("ballast-pack");
  REQUIRE(dir19);
  {
    PackOptions plain = opts;
    plain.reuse_index.clear();
    plain.zstd_level = 19;
    MemoryByteSource src(data);
    auto direct = pack_stream(src, *dir19 + "/chunks", plain, &fresh19);
    REQUIRE(direct);
    CHECK(at19->chunks == direct->chunks);
  }
  // 19 again, and then 3: the level-19 chunks serve both.
  auto again19 = pack(19, strong_again);
  REQUIRE(again19);
  CHECK(strong_again.reused == at19->chunks.size());
  auto again3 = pack(3, fast_again);
  REQUIRE(again3);
  CHECK(fast_again.reused == at19->chunks.size());
  CHECK(again3->chunks == at19->chunks);

  // An index line from before levels were recorded (four fields) counts as level 0: never reused.
  auto text = read_file(opts.reuse_index);
  REQUIRE(text);
  std::string old_format;
  for (size_t pos = 0; pos < text->size();) {
    size_t nl = text->find('\n', pos);
    std::string line = text->substr(pos, nl - pos);
    old_format += line.substr(0, line.rfind(' ')) + "\n";
    pos = nl + 1;
  }
  REQUIRE(write_file_atomic(opts.reuse_index, old_format));
  PackStats legacy;
  REQUIRE(pack(3, legacy));
  CHECK(legacy.reused == 0);
  REQUIRE(remove_tree(*dir));
  REQUIRE(remove_tree(*dir19));
}

TEST_CASE("a reuse index entry whose chunk is gone or altered, or a garbled line, only costs a compression",
          "[repository][packer][reuse]") {
  auto dir = make_temp_dir("ballast-pack");
  REQUIRE(dir);
  std::string data = random_bytes(512u << 10, 11);
  PackOptions opts;
  opts.chunker = kSmall;
  opts.zstd_level = 3;
  opts.reuse_index = *dir + "/reuse-index";
  PackStats st;
  MemoryByteSource src(data);
  auto a = pack_stream(src, *dir + "/chunks", opts, &st);
  REQUIRE(a);
  REQUIRE(a->chunks.size() >= 3);
  // One chunk deleted, one replaced by other bytes, and a torn line at the end of the index.
  REQUIRE(remove_if_exists(*dir + "/chunks/" + a->chunks[0].sha256));
  REQUIRE(write_file_atomic(*dir + "/chunks/" + a->chunks[1].sha256, std::string(a->chunks[1].size, 'x')));
  auto index = read_file(opts.reuse_index);
  REQUIRE(index);
  REQUIRE(write_file_atomic(opts.reuse_index, *index + "garbage line\n" + index->substr(0, 70)));
  PackStats again;
  MemoryByteSource src2(data);
  auto b = pack_stream(src2, *dir + "/chunks", opts, &again);
  REQUIRE(b);
  CHECK(again.reused == a->chunks.size() - 2);
  CHECK(b->chunks == a->chunks);
  auto z = read_file(*dir + "/chunks/" + a->chunks[1].sha256);
  REQUIRE(z);
  CHECK(sha256_hex(*z) == a->chunks[1].sha256);  // the altered chunk was written again
  REQUIRE(remove_tree(*dir));
}

TEST_CASE("a zstd level outside 1..22 is refused before anything is stored", "[repository][packer]") {
  auto dir = make_temp_dir("ballast-pack");
  REQUIRE(dir);
  for (int level : {0, 23, -1}) {
    PackOptions opts;
    opts.zstd_level = level;
    MemoryByteSource src("data");
    auto art = pack_stream(src, *dir + "/chunks", opts, nullptr);
    REQUIRE_FALSE(art);
    CHECK(art.error().code == "chunk.level");
  }
  CHECK_FALSE(path_exists(*dir + "/chunks"));
  REQUIRE(remove_tree(*dir));
}
