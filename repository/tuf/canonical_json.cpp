#include "repository/tuf/canonical_json.hpp"

#include <algorithm>
#include <vector>

namespace ballast::repository::tuf {
namespace {

void put_string(std::string& out, const std::string& s) {
  out.push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
}

Status put(std::string& out, const nlohmann::json& v, int depth) {
  // Metadata nests a handful of levels; a deep value is hostile input, not a repository.
  if (depth > 64) return fail("tuf.bad-metadata", "JSON nested too deeply");
  switch (v.type()) {
    case nlohmann::json::value_t::null: out += "null"; return ok();
    case nlohmann::json::value_t::boolean: out += v.get<bool>() ? "true" : "false"; return ok();
    case nlohmann::json::value_t::number_integer: out += std::to_string(v.get<int64_t>()); return ok();
    case nlohmann::json::value_t::number_unsigned: out += std::to_string(v.get<uint64_t>()); return ok();
    case nlohmann::json::value_t::number_float:
      return fail("tuf.bad-metadata", "canonical JSON has no floating point numbers");
    case nlohmann::json::value_t::string: put_string(out, v.get_ref<const std::string&>()); return ok();
    case nlohmann::json::value_t::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& e : v) {
        if (!first) out.push_back(',');
        first = false;
        BALLAST_CHECK(put(out, e, depth + 1));
      }
      out.push_back(']');
      return ok();
    }
    case nlohmann::json::value_t::object: {
      // nlohmann's object is a std::map ordered by std::string's operator<, which compares
      // char_traits<char> — signed on x86 — so sort explicitly by unsigned bytes.
      std::vector<const std::string*> keys;
      for (auto it = v.begin(); it != v.end(); ++it) keys.push_back(&it.key());
      std::sort(keys.begin(), keys.end(), [](const std::string* a, const std::string* b) {
        return std::lexicographical_compare(a->begin(), a->end(), b->begin(), b->end(),
                                            [](char x, char y) { return (unsigned char)x < (unsigned char)y; });
      });
      out.push_back('{');
      bool first = true;
      for (const auto* k : keys) {
        if (!first) out.push_back(',');
        first = false;
        put_string(out, *k);
        out.push_back(':');
        BALLAST_CHECK(put(out, v.at(*k), depth + 1));
      }
      out.push_back('}');
      return ok();
    }
    case nlohmann::json::value_t::binary:
    case nlohmann::json::value_t::discarded:
      break;
  }
  return fail("tuf.bad-metadata", "value has no JSON form");
}

}  // namespace

Result<std::string> canonical_json(const nlohmann::json& value) {
  std::string out;
  BALLAST_CHECK(put(out, value, 0));
  return out;
}

}  // namespace ballast::repository::tuf
