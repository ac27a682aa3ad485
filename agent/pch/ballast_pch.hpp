// Precompiled for the `ballast` binary's verb files (meson: cpp_pch), which all parse options with
// CLI11 and print JSON: those two headers were most of each file's 20-40 s compile. Only external
// headers belong here; every source still includes what it uses.
#include <algorithm>
#include <chrono>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <tl/expected.hpp>
