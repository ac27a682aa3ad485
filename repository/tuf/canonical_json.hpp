// OLPC canonical JSON (http://wiki.laptop.org/go/Canonical_JSON), the byte form TUF signs:
// object keys sorted by their bytes, no insignificant whitespace, integers only, and strings
// escaping nothing but '"' and '\\'. Written here rather than relying on a serializer's defaults
// so that a library upgrade can never change the signed bytes.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace ballast::repository::tuf {

// Fails with "tuf.bad-metadata" for values canonical JSON cannot express (floating point numbers).
Result<std::string> canonical_json(const nlohmann::json& value);

}  // namespace ballast::repository::tuf
