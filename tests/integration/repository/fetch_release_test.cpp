// `ballast repo add` publishes a full stream and a delta; nginx serves the repository over
// HTTPS with a throwaway CA; `ballast fetch` receives the full release and then the delta
// from it, and each received subvolume is identical to its source.
#include <catch2/catch.hpp>

#include "common/file.hpp"
#include "common/process.hpp"
#include "tests/integration/snapshot/tree_builders.hpp"
#include "tests/integration/support/ballast_cli.hpp"
#include "tests/integration/support/http_servers.hpp"
#include "tests/integration/support/loop_btrfs.hpp"
#include "tests/integration/support/tree_compare.hpp"

using namespace ballast;
using namespace ballast::testing;

namespace {

void sh(const std::vector<std::string>& argv) {
  auto r = run_checked(argv);
  INFO((r ? std::string() : r.error().describe()));
  REQUIRE(r);
}

std::string json_field(const std::string& out, const char* key) {
  auto j = nlohmann::json::parse(out);
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

// A loop-backed Btrfs with the publisher's source subvolumes (src), the fetched ones (dst), the
// repository, its keys and the host's state directory.
struct PublisherFiles {
  std::unique_ptr<LoopBtrfs> fs;
  std::string src, dst, repo, keys, state;
  PublisherFiles() {
    auto created = LoopBtrfs::create();
    REQUIRE(created);
    fs = std::move(*created);
    src = fs->mount_point() + "/src";
    dst = fs->mount_point() + "/dst";
    repo = fs->base_dir() + "/repo";
    keys = fs->base_dir() + "/keys";
    state = fs->base_dir() + "/state";
    REQUIRE(make_dirs(src));
  }
};

// Publishes 1.0, 2.0 and 3.0 from the v1, v2 and v3 trees, each a read-only snapshot in src; the
// later two with `later` added to their `repo add`.
void publish_three_releases(PublisherFiles& files, const std::vector<std::string>& later) {
  sh({"btrfs", "-q", "subvolume", "create", files.src + "/work"});
  build_tree_v1(files.src + "/work");
  REQUIRE(run_ballast({"repo", "init", files.repo, "--keys", files.keys}).success());
  const std::vector<std::pair<std::string, void (*)(const std::string&)>> releases = {
      {"1.0", nullptr}, {"2.0", change_tree_v2}, {"3.0", change_tree_v3}};
  for (const auto& [version, change] : releases) {
    if (change) change(files.src + "/work");
    write_image_version(files.src + "/work", version);
    sh({"btrfs", "-q", "subvolume", "snapshot", "-r", files.src + "/work", files.src + "/" + version});
    std::vector<std::string> add = {"repo", "add", files.repo, "--keys", files.keys, "--version", version, "--subvolume",
                                    files.src + "/" + version, "--zstd-level", "3"};
    if (version != "1.0") add.insert(add.end(), later.begin(), later.end());
    auto added = run_ballast(add);
    INFO(added.err);
    REQUIRE(added.success());
  }
}

// `ballast --json fetch` from the repository served by `nginx`, with `args` added.
ProcessResult fetch_json(const PublisherFiles& files, NginxHttps& nginx, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"--json", "--state-dir", files.state, "fetch", "--repo", nginx.url(), "--root",
                                   files.repo + "/metadata/1.root.json", "--ca-bundle", nginx.ca_cert()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_ballast(argv);
}

}  // namespace

TEST_CASE("a full and a delta release published by repo add arrive over HTTPS identical to their sources",
          "[repository][fetch-release]") {
  PublisherFiles files;
  const std::string &src = files.src, &dst = files.dst, &repo = files.repo, &keys = files.keys, &state = files.state;
  REQUIRE(make_dirs(dst));
  sh({"btrfs", "-q", "subvolume", "create", src + "/work"});
  build_tree_v1(src + "/work");
  write_image_version(src + "/work", "1.0");
  sh({"btrfs", "-q", "subvolume", "snapshot", "-r", src + "/work", src + "/1.0"});
  change_tree_v2(src + "/work");
  write_image_version(src + "/work", "1.1");
  sh({"btrfs", "-q", "subvolume", "snapshot", "-r", src + "/work", src + "/1.1"});

  REQUIRE(run_ballast({"repo", "init", repo, "--keys", keys}).success());
  auto add1 = run_ballast({"repo", "add", repo, "--keys", keys, "--version", "1.0", "--subvolume", src + "/1.0",
                           "--zstd-level", "3"});
  REQUIRE(add1.success());
  // The delta's parent is found beside the new subvolume, named after its version.
  auto add2 = run_ballast({"--json", "repo", "add", repo, "--keys", keys, "--version", "1.1", "--subvolume",
                           src + "/1.1", "--delta-from", "1.0", "--zstd-level", "3"});
  REQUIRE(add2.success());
  CHECK(nlohmann::json::parse(add2.out)["artifacts"].size() == 2);
  // Adding the same version again is refused and leaves the repository as it was.
  auto again = run_ballast({"repo", "add", repo, "--keys", keys, "--version", "1.1", "--subvolume", src + "/1.1"});
  CHECK(again.exit_code == 1);
  CHECK(again.err.find("already published") != std::string::npos);

  auto nginx = NginxHttps::start(repo);
  REQUIRE(nginx);
  const std::string url = (*nginx)->url();
  const std::string root = repo + "/metadata/1.root.json";
  std::vector<std::string> common = {"--json", "--state-dir", state, "fetch", "--repo", url, "--root", root,
                                     "--ca-bundle", (*nginx)->ca_cert()};

  auto a = common;
  a.insert(a.end(), {"--version", "1.0", dst});
  auto full = run_ballast(a);
  REQUIRE(full.success());
  CHECK(json_field(full.out, "artifact") == "full");
  CHECK(compare_trees(src + "/1.0", dst + "/1.0", TreeCompareOptions{.compare_atime = false}).empty());

  auto b = common;
  b.insert(b.end(), {"--from-subvolume", dst + "/1.0", dst + "/next"});
  REQUIRE(make_dirs(dst + "/next"));
  auto delta = run_ballast(b);
  REQUIRE(delta.success());
  CHECK(json_field(delta.out, "version") == "1.1");  // newest on the channel
  CHECK(json_field(delta.out, "artifact") == "delta");
  // Protocol 1 sends a hole punched in an incremental as zeros, so holes are not compared here.
  auto diffs = compare_trees(src + "/1.1", dst + "/next/1.1",
                             TreeCompareOptions{.compare_atime = false, .compare_holes = false});
  INFO((diffs.empty() ? std::string() : diffs.front()));
  CHECK(diffs.empty());
  // The delta moved far fewer bytes than the full stream.
  CHECK(std::stoull(json_field(delta.out, "network_bytes")) < std::stoull(json_field(full.out, "network_bytes")));
  // The download cache is emptied once a release is applied.
  CHECK(list_dir(state + "/cache/chunks")->empty());

  // A revoked release is no longer fetched by name, and the newest is then the older one.
  REQUIRE(run_ballast({"repo", "revoke", repo, "--keys", keys, "--version", "1.1"}).success());
  auto c = common;
  c.insert(c.end(), {"--version", "1.1", dst + "/next"});
  auto revoked = run_ballast(c);
  CHECK(revoked.exit_code == 1);
  CHECK(revoked.err.find("fetch.revoked") != std::string::npos);
}

TEST_CASE("repo add refuses a delta from a release the repository does not have", "[repository][fetch-release]") {
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  const std::string top = (*fs)->mount_point(), repo = (*fs)->base_dir() + "/repo", keys = (*fs)->base_dir() + "/keys";
  sh({"btrfs", "-q", "subvolume", "create", top + "/w"});
  REQUIRE(write_file_atomic(top + "/w/f", "x"));
  write_image_version(top + "/w", "2");
  sh({"btrfs", "-q", "subvolume", "snapshot", "-r", top + "/w", top + "/2"});
  sh({"btrfs", "-q", "subvolume", "snapshot", "-r", top + "/w", top + "/1"});
  REQUIRE(run_ballast({"repo", "init", repo, "--keys", keys}).success());
  auto r = run_ballast({"repo", "add", repo, "--keys", keys, "--version", "2", "--subvolume", top + "/2", "--delta-from", "1"});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("repo.unknown-release") != std::string::npos);
  CHECK_FALSE(path_exists(repo + "/targets/chunks"));
}

TEST_CASE("repo add refuses what a host would refuse: a version with '+' and an image of another version",
          "[repository][fetch-release]") {
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  const std::string top = (*fs)->mount_point(), repo = (*fs)->base_dir() + "/repo", keys = (*fs)->base_dir() + "/keys";
  sh({"btrfs", "-q", "subvolume", "create", top + "/w"});
  REQUIRE(write_file_atomic(top + "/w/f", "x"));
  write_image_version(top + "/w", "3.0");
  sh({"btrfs", "-q", "subvolume", "snapshot", "-r", top + "/w", top + "/3.0"});
  REQUIRE(run_ballast({"repo", "init", repo, "--keys", keys}).success());

  auto plus = run_ballast({"repo", "add", repo, "--keys", keys, "--version", "2.0+1", "--subvolume", top + "/3.0"});
  CHECK(plus.exit_code == 1);
  CHECK(plus.err.find("version.invalid") != std::string::npos);
  auto other = run_ballast({"repo", "add", repo, "--keys", keys, "--version", "4.0", "--subvolume", top + "/3.0"});
  CHECK(other.exit_code == 1);
  CHECK(other.err.find("image.wrong-version") != std::string::npos);
  CHECK(other.err.find("IMAGE_VERSION \"3.0\"") != std::string::npos);
  CHECK_FALSE(path_exists(repo + "/targets/chunks"));
  // The same image under its own version publishes.
  CHECK(run_ballast({"repo", "add", repo, "--keys", keys, "--version", "3.0", "--subvolume", top + "/3.0"}).success());
}

TEST_CASE("fetch from a subvolume two releases behind takes the chain of deltas, leaves no scratch subvolume, and "
          "falls back to the full stream when a link is revoked",
          "[repository][fetch-release]") {
  PublisherFiles files;
  const std::string &src = files.src, &dst = files.dst, &repo = files.repo, &keys = files.keys;
  REQUIRE(make_dirs(dst + "/1"));
  REQUIRE(make_dirs(dst + "/3"));
  REQUIRE(make_dirs(dst + "/full"));
  // Each release has a delta from the one before only: 1.0 reaches 3.0 by a chain or not at all.
  publish_three_releases(files, {"--deltas-from-last", "1"});
  auto nginx = NginxHttps::start(repo);
  REQUIRE(nginx);
  auto fetch = [&](const std::vector<std::string>& args) { return fetch_json(files, **nginx, args); };
  auto base = fetch({"--version", "1.0", dst + "/1"});
  REQUIRE(base.success());
  auto full = fetch({"--version", "3.0", dst + "/full"});
  REQUIRE(full.success());
  CHECK(json_field(full.out, "artifact") == "full");

  auto chained = fetch({"--version", "3.0", "--from-subvolume", dst + "/1/1.0", dst + "/3"});
  INFO(chained.err);
  REQUIRE(chained.success());
  auto j = nlohmann::json::parse(chained.out);
  CHECK(j["artifact"] == "chain");
  CHECK(j["from"] == "1.0");
  REQUIRE(j["chain"].size() == 2);
  CHECK(j["chain"][0]["to"] == "2.0");
  CHECK(j["chain"][1]["to"] == "3.0");
  CHECK(j["plan"].get<std::string>().starts_with("chain of 2 deltas 1.0 -> 2.0 -> 3.0"));
  // Both deltas together are far smaller than the full stream, and that is what was downloaded.
  CHECK(j["network_bytes"].get<uint64_t>() < std::stoull(json_field(full.out, "network_bytes")) / 4);
  auto diffs = compare_trees(src + "/3.0", dst + "/3/3.0", TreeCompareOptions{.compare_atime = false, .compare_holes = false});
  INFO((diffs.empty() ? std::string() : diffs.front()));
  CHECK(diffs.empty());
  // The scratch subvolume of 2.0 is gone: beside the fetch's lock file, 3.0 is all that DIR holds.
  CHECK(*list_dir(dst + "/3") == std::vector<std::string>{".ballast-fetch.lock", "3.0"});

  // With 2.0 revoked no chain passes through it, and the full stream is what reaches 3.0.
  REQUIRE(run_ballast({"repo", "revoke", repo, "--keys", keys, "--version", "2.0"}).success());
  REQUIRE(make_dirs(dst + "/again"));
  auto fallback = fetch({"--version", "3.0", "--from-subvolume", dst + "/1/1.0", dst + "/again"});
  INFO(fallback.err);
  REQUIRE(fallback.success());
  CHECK(json_field(fallback.out, "artifact") == "full");
  CHECK(nlohmann::json::parse(fallback.out)["chain"].empty());
}

TEST_CASE("a release published without a full stream reaches an empty directory as the earlier full stream and the "
          "deltas after it, and repo add refuses one no new host could reach",
          "[repository][fetch-release]") {
  PublisherFiles files;
  const std::string &src = files.src, &dst = files.dst, &repo = files.repo, &keys = files.keys;
  REQUIRE(make_dirs(dst + "/new"));
  REQUIRE(make_dirs(dst + "/1"));
  REQUIRE(make_dirs(dst + "/from-1"));
  publish_three_releases(files, {"--no-full", "--deltas-from-last", "1"});
  // Without a delta there is nothing a new host could start from: refused, nothing published.
  write_image_version(src + "/work", "4.0");
  sh({"btrfs", "-q", "subvolume", "snapshot", "-r", src + "/work", src + "/4.0"});
  auto metadata_before = *list_dir(repo + "/metadata");
  auto alone = run_ballast({"repo", "add", repo, "--keys", keys, "--version", "4.0", "--subvolume", src + "/4.0", "--no-full"});
  CHECK(alone.exit_code == 1);
  CHECK(alone.err.find("repo.no-full") != std::string::npos);
  CHECK(*list_dir(repo + "/metadata") == metadata_before);
  auto nginx = NginxHttps::start(repo);
  REQUIRE(nginx);
  auto fetch = [&](const std::vector<std::string>& args) { return fetch_json(files, **nginx, args); };
  auto fresh = fetch({dst + "/new"});
  INFO(fresh.err);
  REQUIRE(fresh.success());
  auto j = nlohmann::json::parse(fresh.out);
  CHECK(j["version"] == "3.0");
  CHECK(j["artifact"] == "chain");
  CHECK(j["from"] == "");
  REQUIRE(j["chain"].size() == 3);
  CHECK(j["chain"][0]["from"].is_null());
  CHECK(j["chain"][0]["to"] == "1.0");
  CHECK(j["chain"][2]["from"] == "2.0");
  CHECK(j["plan"].get<std::string>().starts_with("full stream of 1.0 and 2 deltas 1.0 -> 2.0 -> 3.0"));
  uint64_t links = 0;
  for (const auto& link : j["chain"]) links += link["bytes"].get<uint64_t>();
  CHECK(j["artifact_bytes"].get<uint64_t>() == links);
  auto diffs = compare_trees(src + "/3.0", dst + "/new/3.0", TreeCompareOptions{.compare_atime = false, .compare_holes = false});
  INFO((diffs.empty() ? std::string() : diffs.front()));
  CHECK(diffs.empty());
  // The scratch subvolumes of 1.0 and 2.0 are gone.
  CHECK(*list_dir(dst + "/new") == std::vector<std::string>{".ballast-fetch.lock", "3.0"});

  // A host on 1.0 takes only the two deltas.
  REQUIRE(fetch({"--version", "1.0", dst + "/1"}).success());
  auto updating = fetch({"--from-subvolume", dst + "/1/1.0", dst + "/from-1"});
  INFO(updating.err);
  REQUIRE(updating.success());
  auto u = nlohmann::json::parse(updating.out);
  CHECK(u["from"] == "1.0");
  CHECK(u["plan"].get<std::string>().starts_with("chain of 2 deltas 1.0 -> 2.0 -> 3.0"));
  CHECK(u["network_bytes"].get<uint64_t>() < j["network_bytes"].get<uint64_t>());

  // Revoking 2.0 cuts the only chain to 3.0: done, and said, and a new host is refused clearly.
  auto revoked = run_ballast({"--json", "repo", "revoke", repo, "--keys", keys, "--version", "2.0"});
  INFO(revoked.err);
  REQUIRE(revoked.success());
  CHECK(nlohmann::json::parse(revoked.out)["unreachable_without_full"] == nlohmann::json::array({"3.0"}));
  CHECK(revoked.err.find("warning: with 2.0 revoked, a host with nothing installed reaches no route to 3.0") !=
        std::string::npos);
  REQUIRE(make_dirs(dst + "/after-revoke"));
  auto stranded = fetch({dst + "/after-revoke"});
  CHECK(stranded.exit_code != 0);
  CHECK(stranded.err.find("plan.no-artifact") != std::string::npos);
  CHECK(*list_dir(dst + "/after-revoke") == std::vector<std::string>{".ballast-fetch.lock"});
}
