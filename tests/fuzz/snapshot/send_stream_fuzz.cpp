// Any byte string given as a send stream is parsed into commands or refused with an error code;
// never a crash, an overread or an unbounded allocation. Every accessor is exercised on every
// attribute of every parsed command, as the receiver and --dump would.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "snapshot/receive.hpp"
#include "snapshot/send_stream.hpp"

using namespace ballast::snapshot::stream;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  {
    ballast::MemoryByteSource src(input);
    StreamReader r(src, 1u << 20, 4096);
    auto v = r.read_header();
    if (!v && v.error().code.empty()) __builtin_trap();
    if (v) {
      Command c;
      for (;;) {
        auto more = r.next(c);
        if (!more) {
          if (more.error().code.empty()) __builtin_trap();
          break;
        }
        if (!*more) break;
        for (uint16_t a = 1; a <= kMaxAttrV2; ++a) {
          auto at = static_cast<Attr>(a);
          if (!c.has(at)) continue;
          (void)c.u64(at);
          (void)c.u32(at);
          (void)c.uuid(at);
          (void)c.timespec(at);
          (void)c.path(at);
          (void)c.string(at);
        }
        (void)describe(c);
      }
    }
  }
  ballast::MemoryByteSource src(input);
  std::ostringstream out;
  auto st = ballast::snapshot::dump(src, out);
  if (!st && st.error().code.empty()) __builtin_trap();
  return 0;
}
