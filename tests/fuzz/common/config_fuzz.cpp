// Any byte string given as a config drop-in is either merged or refused with an error; never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ballast::Config cfg;
  auto st = cfg.merge_text(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.toml");
  if (!st && st.error().code.empty()) __builtin_trap();
  return 0;
}
