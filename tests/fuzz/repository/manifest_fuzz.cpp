// Any byte string is either a manifest that serialises and parses back to itself, or refused
// with an error code; never a crash. The same holds for a release's custom data.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "repository/manifest.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ballast::repository;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto m = parse_manifest(text);
  if (m) {
    auto again = parse_manifest(serialize_manifest(*m));
    if (!again || !(*again == *m)) __builtin_trap();
  } else if (m.error().code.empty()) {
    __builtin_trap();
  }
  auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.size() < 64) {
    auto info = parse_release_info(j);
    if (info) {
      auto back = parse_release_info(release_info_json(*info));
      if (!back || !(*back == *info)) __builtin_trap();
    }
  }
  return 0;
}
