// libcurl is loaded by the first request, not by every `ballast` process (repository/curl_library.cpp).
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "common/file.hpp"
#include "common/process.hpp"

using namespace ballast;

namespace {

const std::string kBallastBin = std::string(BALLAST_BUILD_ROOT) + "/agent/ballast";

// The dynamic loader's own account of the libraries it loads (LD_DEBUG=libs, on stderr).
ProcessResult run_logging_libraries(std::vector<std::string> args) {
  args.insert(args.begin(), kBallastBin);
  auto r = run_process(args, SpawnOptions{.timeout = std::chrono::minutes(1), .extra_env = {"LD_DEBUG=libs"}});
  REQUIRE(r);
  return *r;
}

bool loaded_libcurl(const ProcessResult& r) { return r.err.find("libcurl.so.4") != std::string::npos; }

}  // namespace

TEST_CASE("a ballast verb that speaks no HTTP never loads libcurl, and one that does loads it and its requests work",
          "[curl]") {
  auto version = run_logging_libraries({"--version"});
  REQUIRE(version.success());
  CHECK(version.err.find("calling init") != std::string::npos);  // the loader did log its libraries
  CHECK_FALSE(loaded_libcurl(version));

  std::string dir = *make_temp_dir("ballast-curl-library");
  struct Cleanup {
    std::string dir;
    ~Cleanup() { (void)remove_tree(dir); }
  } cleanup{dir};
  const std::string repo = dir + "/repo", keys = dir + "/keys", state = dir + "/state";
  REQUIRE(run_logging_libraries({"repo", "init", repo, "--keys", keys}).success());
  REQUIRE(write_file_atomic(dir + "/m", "manifest bytes"));
  REQUIRE(run_logging_libraries(
              {"repo", "add-target", repo, "--keys", keys, "--name", "releases/1/manifest.json", "--file", dir + "/m"})
              .success());
  REQUIRE(run_logging_libraries({"tuf", "init", "--root", repo + "/metadata/1.root.json", "--state-dir", state}).success());

  // Every metadata file of a refresh is read through libcurl (file:// here).
  auto refresh = run_logging_libraries({"tuf", "refresh", "--repo", "file://" + repo, "--state-dir", state, "--json"});
  INFO(refresh.err.substr(0, 4000));
  REQUIRE(refresh.success());
  CHECK(loaded_libcurl(refresh));
  auto j = nlohmann::json::parse(refresh.out);
  REQUIRE(j["targets"].size() == 1);
  CHECK(j["targets"][0]["name"] == "releases/1/manifest.json");
  CHECK(j["targets"][0]["length"] == 14);
}
