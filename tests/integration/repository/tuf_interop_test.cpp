// Interop with an independent TUF implementation from the npm registry (tests/interop: run
// `npm ci` there first). Repositories built by @tufjs/models are accepted or refused by
// `ballast tuf` exactly as the specification says, and repositories made by `ballast repo`
// are accepted by the tuf-js client. Everything is served over file://.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "common/file.hpp"
#include "common/process.hpp"
#include "tests/temp_dir.hpp"

using namespace ballast;
using ballast::testing::TempDir;

namespace {
const std::string kInterop = std::string(BALLAST_SOURCE_ROOT) + "/tests/interop";
const std::string kBallast = std::string(BALLAST_BUILD_ROOT) + "/agent/ballast";

void require_npm_peers() {
  INFO("the npm peers are missing: run `npm ci` in " << kInterop);
  REQUIRE(path_exists(kInterop + "/node_modules/tuf-js/package.json"));
  REQUIRE(path_exists(kInterop + "/node_modules/@tufjs/models/package.json"));
}

ProcessResult run(const std::vector<std::string>& argv) {
  auto r = run_process(argv, SpawnOptions{.timeout = std::chrono::minutes(2)});
  INFO(argv[0] << " " << (argv.size() > 1 ? argv[1] : ""));
  REQUIRE(r);
  return *r;
}

// `ballast` with a config that caps metadata at 64 KiB, so "endless data" needs no huge file.
ProcessResult run_ballast(const std::string& dir, std::vector<std::string> args) {
  args.insert(args.begin(), {kBallast, "--config-dir", dir + "/conf"});
  return run(args);
}

void make_config(const std::string& dir) {
  REQUIRE(make_dirs(dir + "/conf"));
  REQUIRE(write_file_atomic(dir + "/conf/10-interop.toml", "[repository]\nmax_metadata_size = 65536\n"));
}

}  // namespace

TEST_CASE("repositories built by @tufjs/models are accepted or refused by ballast tuf as the specification says",
          "[tuf][interop]") {
  require_npm_peers();
  // Then OUT/repaired, the next good publication, must be accepted in every case: a refused
  // refresh never leaves the client unable to update.
  // scenario, then the error code of `tuf refresh` and of `tuf download` of the new release
  // ("" = accepted).
  auto [scenario, refresh_code, download_code] = GENERATE(table<std::string, std::string, std::string>({
      {"valid", "", ""},
      {"root-rotation", "", ""},
      {"delegated", "", ""},
      {"delegated-outside-paths", "", "tuf.unknown-target"},
      {"root-rotation-unsigned-by-old", "tuf.threshold", "tuf.threshold"},
      {"expired-timestamp", "tuf.expired", "tuf.expired"},
      {"expired-targets", "tuf.expired", "tuf.expired"},
      {"rollback-snapshot", "tuf.rollback", "tuf.rollback"},
      {"rollback-targets", "tuf.rollback", "tuf.rollback"},
      {"mix-and-match", "tuf.mix-and-match", "tuf.mix-and-match"},
      {"below-threshold", "tuf.threshold", "tuf.threshold"},
      {"bad-signature", "tuf.bad-signature", "tuf.bad-signature"},
      {"wrong-length-snapshot", "tuf.length-mismatch", "tuf.length-mismatch"},
      {"wrong-hash-snapshot", "tuf.hash-mismatch", "tuf.hash-mismatch"},
      {"wrong-hash-target", "", "tuf.hash-mismatch"},
      {"wrong-length-target", "", "tuf.length-mismatch"},
      {"oversized-timestamp", "tuf.too-large", "tuf.too-large"},
  }));
  INFO("scenario " << scenario);
  TempDir t;
  make_config(t.path);
  auto made = run({"node", kInterop + "/make_repo.js", t.path + "/repo", scenario});
  INFO(made.err);
  REQUIRE(made.success());
  const std::string state = t.path + "/state";
  const std::string before = "file://" + t.path + "/repo/before";
  const std::string after = "file://" + t.path + "/repo/after";
  REQUIRE(run_ballast(t.path, {"tuf", "init", "--root", t.path + "/repo/before/metadata/1.root.json", "--state-dir", state})
              .success());
  auto first = run_ballast(t.path, {"tuf", "refresh", "--repo", before, "--state-dir", state, "--json"});
  INFO(first.err);
  REQUIRE(first.success());
  CHECK(nlohmann::json::parse(first.out)["targets"].size() == 1);

  auto refresh = run_ballast(t.path, {"tuf", "refresh", "--repo", after, "--state-dir", state, "--json"});
  INFO("refresh: " << refresh.err);
  if (refresh_code.empty()) {
    CHECK(refresh.exit_code == 0);
  } else {
    CHECK(refresh.exit_code == 1);
    CHECK(refresh.err.find("[" + refresh_code + "]") != std::string::npos);
  }

  auto out = t.path + "/manifest.json";
  auto download = run_ballast(t.path, {"tuf", "download", "--repo", after, "--state-dir", state, "--target",
                                   "releases/2.0/manifest.json", "--out", out});
  INFO("download: " << download.err);
  if (download_code.empty()) {
    REQUIRE(download.exit_code == 0);
    CHECK(*read_file(out) == "release two manifest\n");
    auto listed = nlohmann::json::parse(refresh.out);
    CHECK(listed["targets"].size() == 2);
    CHECK(listed["targets"][1]["custom"]["origin"] == "tufjs-models");
    CHECK(listed["root_version"] == (scenario == "root-rotation" ? 2 : 1));
  } else {
    CHECK(download.exit_code == 1);
    CHECK(download.err.find("[" + download_code + "]") != std::string::npos);
    CHECK_FALSE(path_exists(out));
  }

  auto again = run_ballast(t.path, {"tuf", "refresh", "--repo", "file://" + t.path + "/repo/repaired", "--state-dir",
                                   state, "--json"});
  INFO("refresh of the repaired repository: " << again.err);
  REQUIRE(again.success());
  CHECK(nlohmann::json::parse(again.out)["timestamp_version"] == 10);
}

TEST_CASE("a repository made by ballast repo is accepted by the tuf-js client also after root rotation",
          "[tuf][interop]") {
  require_npm_peers();
  TempDir t;
  make_config(t.path);
  const std::string repo = t.path + "/repo", keys = t.path + "/keys";
  auto key_type = GENERATE(std::string("ed25519"), std::string("ecdsa-sha2-nistp256"), std::string("rsassa-pss-sha256"));
  INFO("key type " << key_type);
  REQUIRE(run_ballast(t.path, {"repo", "init", repo, "--keys", keys, "--key-type", key_type}).success());
  std::string payload = "release manifest bytes \x01\x02\n";
  REQUIRE(write_file_atomic(t.path + "/payload", payload));
  auto add = run_ballast(t.path, {"repo", "add-target", repo, "--keys", keys, "--name", "releases/1.0/manifest.json",
                              "--file", t.path + "/payload", "--custom", R"({"version":"1.0"})"});
  INFO(add.err);
  REQUIRE(add.success());

  auto tufjs = [&](const std::string& work, const std::string& out) {
    return run({"node", kInterop + "/tufjs_client.js", repo, repo + "/metadata/1.root.json", t.path + "/" + work,
                "releases/1.0/manifest.json", t.path + "/" + out});
  };
  auto first = tufjs("work", "out1");
  INFO(first.err);
  REQUIRE(first.success());
  CHECK(*read_file(t.path + "/out1") == payload);

  // Rotation and a fresh timestamp: the same client state follows root v2.
  REQUIRE(run_ballast(t.path, {"repo", "rotate-root", repo, "--keys", keys, "--new-keys", t.path + "/keys2"}).success());
  REQUIRE(run_ballast(t.path, {"repo", "timestamp", repo, "--keys", t.path + "/keys2"}).success());
  auto second = tufjs("work", "out2");
  INFO(second.err);
  REQUIRE(second.success());
  CHECK(*read_file(t.path + "/out2") == payload);
  CHECK(nlohmann::json::parse(*read_file(t.path + "/work/metadata/root.json"))["signed"]["version"] == 2);

  // The harness notices a bad repository: tuf-js refuses a target whose bytes were altered.
  auto ls = list_dir(repo + "/targets/releases/1.0");
  REQUIRE(ls);
  REQUIRE(ls->size() == 1);
  std::string altered = payload;
  altered[0] = 'R';
  REQUIRE(write_file_atomic(repo + "/targets/releases/1.0/" + (*ls)[0], altered));
  auto third = tufjs("fresh-work", "out3");
  CHECK_FALSE(third.success());
}
