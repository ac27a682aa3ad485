// `ballast repo` and `ballast tuf` as an operator runs them, over file://.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "common/file.hpp"
#include "common/process.hpp"

using namespace ballast;

namespace {

const std::string kBallastBin = std::string(BALLAST_BUILD_ROOT) + "/agent/ballast";

struct CliDir {
  std::string path = *make_temp_dir("ballast-tuf-cli");
  ~CliDir() { (void)remove_tree(path); }
  ProcessResult run(std::vector<std::string> args) {
    args.insert(args.begin(), kBallastBin);
    auto r = run_process(args, SpawnOptions{.timeout = std::chrono::minutes(1)});
    REQUIRE(r);
    return *r;
  }
};

}  // namespace

TEST_CASE("ballast repo and ballast tuf publish and refresh and download and name what they refuse", "[tuf]") {
  CliDir d;
  const std::string repo = d.path + "/repo", keys = d.path + "/keys", state = d.path + "/state";
  const std::string url = "file://" + repo;
  REQUIRE(d.run({"repo", "init", repo, "--keys", keys, "--expiry-timestamp", "2h"}).success());
  REQUIRE(write_file_atomic(d.path + "/m", "manifest bytes"));
  REQUIRE(d.run({"repo", "add-target", repo, "--keys", keys, "--name", "releases/1/manifest.json", "--file", d.path + "/m"})
              .success());
  REQUIRE(d.run({"tuf", "init", "--root", repo + "/metadata/1.root.json", "--state-dir", state}).success());

  auto refresh = d.run({"tuf", "refresh", "--repo", url, "--state-dir", state, "--json"});
  INFO(refresh.err);
  REQUIRE(refresh.success());
  auto j = nlohmann::json::parse(refresh.out);
  CHECK(j["timestamp_version"] == 2);
  REQUIRE(j["targets"].size() == 1);
  CHECK(j["targets"][0]["name"] == "releases/1/manifest.json");
  CHECK(j["targets"][0]["length"] == 14);

  REQUIRE(d.run({"tuf", "download", "--repo", url, "--state-dir", state, "--target", "releases/1/manifest.json", "--out",
                 d.path + "/out"})
              .success());
  CHECK(*read_file(d.path + "/out") == "manifest bytes");

  auto unknown = d.run({"tuf", "download", "--repo", url, "--state-dir", state, "--target", "nope", "--out", d.path + "/x"});
  CHECK(unknown.exit_code == 1);
  CHECK(unknown.err.find("[tuf.unknown-target]") != std::string::npos);
  CHECK_FALSE(path_exists(d.path + "/x"));

  CHECK(d.run({"tuf", "refresh", "--state-dir", state}).exit_code == 2);  // --repo missing
  CHECK(d.run({"repo", "timestamp", repo}).exit_code == 2);               // --keys missing

  // A timestamp altered after signing: refused, named, and the state still updates afterwards.
  auto ts = *read_file(repo + "/metadata/timestamp.json");
  auto doc = nlohmann::json::parse(ts);
  doc["signed"]["version"] = 99;
  REQUIRE(write_file_atomic(repo + "/metadata/timestamp.json", doc.dump()));
  auto bad = d.run({"tuf", "refresh", "--repo", url, "--state-dir", state});
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("[tuf.bad-signature]") != std::string::npos);
  REQUIRE(write_file_atomic(repo + "/metadata/timestamp.json", ts));
  REQUIRE(d.run({"repo", "timestamp", repo, "--keys", keys}).success());
  auto good = d.run({"tuf", "refresh", "--repo", url, "--state-dir", state, "--json"});
  INFO(good.err);
  REQUIRE(good.success());
  CHECK(nlohmann::json::parse(good.out)["timestamp_version"] == 3);

  // A repository directory is never overwritten.
  auto again = d.run({"repo", "init", repo, "--keys", keys});
  CHECK(again.exit_code == 1);
  CHECK(again.err.find("[repo.exists]") != std::string::npos);
}
