// Precompiled for the unit and integration test binaries (meson: cpp_pch): Catch2's single header
// and nlohmann/json were about a third of each test file's compile. Only external headers belong
// here; every test still includes what it uses.
#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <tl/expected.hpp>
