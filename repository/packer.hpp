// The publisher's half of chunked artifacts: a send stream in, content-addressed zstd chunks
// out (written once under chunks/), and the artifact's ordered chunk list for the manifest.
#pragma once

#include <string>

#include "common/byte_source.hpp"
#include "common/result.hpp"
#include "repository/chunker.hpp"
#include "repository/manifest.hpp"

namespace ballast::repository {

struct PackOptions {
  ChunkerParams chunker;
  // pack_stream's level; the publisher uses it for deltas, which are small and fetched by most
  // hosts, so the slowest level costs little and saves on every update.
  int zstd_level = 19;
  // The publisher's level for the full stream (installs, hosts beyond the deltas): nearly all of
  // a release's raw bytes, where level 19 against its history cost about 25 times level 9's time
  // for 18-30 % fewer bytes (README, "Publishing speed and compression levels").
  int full_zstd_level = 9;
  unsigned threads = 0;  // compression threads; 0: one per CPU
  // Each chunk is compressed against up to this many preceding stream bytes (see
  // Artifact::history): per-chunk frames then compress about as well as one whole-stream frame
  // with zstd's 8 MiB window, while an unchanged chunk after unchanged history still compresses
  // to the same bytes, so releases keep sharing chunks. 0: independent chunks.
  uint64_t history = 8u << 20;
  // Build-side state, never published: a file naming, for each raw chunk and history compressed
  // before, the stored chunk it became and its level, so a chunk the store already holds at this
  // level or a higher one is taken from it (after checking that it decompresses to the same
  // bytes) instead of being compressed again.
  // Empty: no index.
  std::string reuse_index;
};

struct PackStats {
  uint64_t chunks = 0;
  uint64_t new_chunks = 0;  // not already in the store
  uint64_t new_bytes = 0;   // compressed bytes written
  uint64_t reused = 0;      // taken from the store through the reuse index, not compressed
};

// Chunks and compresses `stream` on `threads` workers while it is still being produced, and
// stores each chunk as `chunks_dir/<sha256>` unless the store already has it. The artifact's
// `from`/`parent_uuid` are left for the caller. With `opts.reuse_index`, chunks found there are
// not compressed again and the chunks compressed are added to it.
Result<Artifact> pack_stream(ByteSource& stream, const std::string& chunks_dir, const PackOptions& opts,
                             PackStats* stats = nullptr);

}  // namespace ballast::repository
