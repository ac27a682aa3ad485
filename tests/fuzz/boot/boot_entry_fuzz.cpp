// Any bytes given as an entry file name, entry text or grubenv block are parsed or refused with
// an error code; what parses survives a write and a re-read unchanged. Never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "boot/bls.hpp"
#include "boot/grubenv.hpp"
#include "common/version.hpp"

using namespace ballast::boot;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  if (auto name = parse_entry_name(in)) {
    auto again = parse_entry_name(format_entry_name(name->stem, name->counter));
    if (!again || again->stem != name->stem || again->counter != name->counter) __builtin_trap();
    (void)version_of_stem(name->stem);
  } else if (name.error().code.empty()) {
    __builtin_trap();
  }

  if (auto entry = parse_entry(in)) {
    auto text = format_entry(*entry);
    auto again = parse_entry(text);
    if (!again || format_entry(*again) != text) __builtin_trap();
  } else if (entry.error().code.empty()) {
    __builtin_trap();
  }

  if (auto env = parse_grubenv(in)) {
    auto block = format_grubenv(*env);
    // Escaping can only grow values, but a parsed block always fitted; a refusal must say why.
    if (block) {
      auto again = parse_grubenv(*block);
      if (!again || *again != *env) __builtin_trap();
    } else if (block.error().code.empty()) {
      __builtin_trap();
    }
  }

  // Version comparison is antisymmetric on any split of the input.
  auto half = in.size() / 2;
  int ab = ballast::compare_uapi_versions(in.substr(0, half), in.substr(half));
  int ba = ballast::compare_uapi_versions(in.substr(half), in.substr(0, half));
  if ((ab < 0) != (ba > 0) || (ab == 0) != (ba == 0)) __builtin_trap();
  return 0;
}
