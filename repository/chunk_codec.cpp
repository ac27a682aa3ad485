#include "repository/chunk_codec.hpp"

#include <openssl/evp.h>
#include <zstd.h>

#include "repository/manifest.hpp"

namespace ballast::repository {

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 15]);
  }
  return out;
}

Status validate_zstd_level(int level) {
  if (level < 1 || level > ZSTD_maxCLevel())
    return fail("chunk.level", "zstd level " + std::to_string(level) + " is not in 1.." + std::to_string(ZSTD_maxCLevel()));
  return ok();
}

Result<std::string> compress_chunk(std::string_view data, int level, std::string_view history) {
  BALLAST_CHECK(validate_zstd_level(level));
  // One context per thread: contexts are reused across chunks to avoid reallocating tables.
  thread_local struct Ctx {
    ZSTD_CCtx* c = ZSTD_createCCtx();
    ~Ctx() { ZSTD_freeCCtx(c); }
  } ctx;
  if (!ctx.c) return fail("chunk.compress", "cannot allocate a zstd context");
  ZSTD_CCtx_reset(ctx.c, ZSTD_reset_session_and_parameters);
  ZSTD_CCtx_setParameter(ctx.c, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(ctx.c, ZSTD_c_contentSizeFlag, 1);
  ZSTD_CCtx_setParameter(ctx.c, ZSTD_c_checksumFlag, 0);  // the sha256 covers it
  if (!history.empty()) {
    ZSTD_CCtx_setParameter(ctx.c, ZSTD_c_windowLog, kHistoryWindowLog);
    size_t r = ZSTD_CCtx_refPrefix(ctx.c, history.data(), history.size());
    if (ZSTD_isError(r)) return fail("chunk.compress", ZSTD_getErrorName(r));
  }
  std::string out(ZSTD_compressBound(data.size()), '\0');
  size_t n = ZSTD_compress2(ctx.c, out.data(), out.size(), data.data(), data.size());
  if (ZSTD_isError(n)) return fail("chunk.compress", ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

Status decompress_chunk_into(std::string_view compressed, uint64_t usize, std::string_view history, char* out) {
  if (usize > kMaxChunkBytes) return fail("chunk.bad-data", "chunk larger than the cap");
  unsigned long long declared = ZSTD_getFrameContentSize(compressed.data(), compressed.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR) return fail("chunk.bad-data", "not a zstd frame");
  if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != usize)
    return fail("chunk.bad-data", "frame declares " + std::to_string(declared) + " bytes, manifest says " +
                                      std::to_string(usize));
  size_t frame = ZSTD_findFrameCompressedSize(compressed.data(), compressed.size());
  if (ZSTD_isError(frame) || frame != compressed.size())
    return fail("chunk.bad-data", "chunk is not exactly one zstd frame");
  thread_local struct Ctx {
    ZSTD_DCtx* d = ZSTD_createDCtx();
    ~Ctx() { ZSTD_freeDCtx(d); }
  } ctx;
  if (!ctx.d) return fail("chunk.decompress", "cannot allocate a zstd context");
  ZSTD_DCtx_reset(ctx.d, ZSTD_reset_session_only);
  if (!history.empty()) {
    size_t r = ZSTD_DCtx_refPrefix(ctx.d, history.data(), history.size());
    if (ZSTD_isError(r)) return fail("chunk.decompress", ZSTD_getErrorName(r));
  }
  // A frame that would produce more than `usize` bytes fails here: the buffer has no more room.
  size_t n = ZSTD_decompressDCtx(ctx.d, out, usize, compressed.data(), compressed.size());
  if (ZSTD_isError(n)) return fail("chunk.bad-data", std::string("zstd: ") + ZSTD_getErrorName(n));
  if (n != usize)
    return fail("chunk.bad-data", "chunk decompresses to " + std::to_string(n) + " bytes, manifest says " +
                                      std::to_string(usize));
  return ok();
}

Result<std::string> decompress_chunk(std::string_view compressed, uint64_t usize, std::string_view history) {
  if (usize > kMaxChunkBytes) return fail("chunk.bad-data", "chunk larger than the cap");
  std::string out(usize, '\0');
  BALLAST_CHECK(decompress_chunk_into(compressed, usize, history, out.data()));
  return out;
}

}  // namespace ballast::repository
