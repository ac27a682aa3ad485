// A build machine fetches release 1 from the repository (so its copy is a *received*
// subvolume), builds release 2 as a snapshot of it and publishes a delta from it. The kernel
// names such a parent by its received_uuid but with its local ctransid; `repo add` must record
// that received_uuid as the delta's parent and rewrite the transid to the one every host's
// copy of release 1 carries, so hosts pick the delta and a strict receiver accepts it.
#include <btrfsutil.h>

#include <catch2/catch.hpp>

#include "agent/host/stage.hpp"
#include "common/clock.hpp"
#include "common/file.hpp"
#include "common/process.hpp"
#include "repository/release.hpp"
#include "snapshot/send_stream.hpp"
#include "tests/integration/snapshot/tree_builders.hpp"
#include "tests/integration/support/ballast_cli.hpp"
#include "tests/integration/support/loop_btrfs.hpp"
#include "tests/integration/support/tree_compare.hpp"
#include "tests/version_literal.hpp"

using namespace ballast;
using namespace ballast::testing;
namespace stream = ballast::snapshot::stream;

namespace {
using namespace ballast::version_literals;


void sh(const std::vector<std::string>& argv) {
  auto r = run_checked(argv);
  INFO((r ? std::string() : r.error().describe()));
  REQUIRE(r);
}

struct btrfs_util_subvolume_info subvol_info(const std::string& path) {
  struct btrfs_util_subvolume_info info;
  REQUIRE(btrfs_util_subvolume_info(path.c_str(), 0, &info) == BTRFS_UTIL_OK);
  return info;
}

stream::Uuid uuid_of(const uint8_t* bytes) {
  stream::Uuid u;
  std::copy(bytes, bytes + 16, u.begin());
  return u;
}

}  // namespace

TEST_CASE("a delta from a received build subvolume is chosen by hosts and received by ballast and btrfs receive",
          "[repository][received-parent]") {
  auto pub = LoopBtrfs::create();
  REQUIRE(pub);
  auto host = LoopBtrfs::create();
  REQUIRE(host);
  const std::string origin = (*pub)->mount_point() + "/origin", build = (*pub)->mount_point() + "/build";
  const std::string slots = (*host)->mount_point() + "/slots", next = (*host)->mount_point() + "/next",
                    by_btrfs = (*host)->mount_point() + "/by-btrfs";
  const std::string repo = (*pub)->base_dir() + "/repo", keys = (*pub)->base_dir() + "/keys";
  const std::string build_state = (*pub)->base_dir() + "/state", host_state = (*host)->base_dir() + "/state";
  for (const auto& d : {origin, build, slots, next, by_btrfs}) REQUIRE(make_dirs(d));
  const std::string url = "file://" + repo, root = repo + "/metadata/1.root.json";

  // Release 1, published from its original subvolume.
  sh({"btrfs", "-q", "subvolume", "create", origin + "/work"});
  build_tree_v1(origin + "/work");
  write_image_version(origin + "/work", "1");
  sh({"btrfs", "-q", "subvolume", "snapshot", "-r", origin + "/work", origin + "/1"});
  run_ballast_ok({"repo", "init", repo, "--keys", keys});
  run_ballast_ok({"repo", "add", repo, "--keys", keys, "--version", "1", "--subvolume", origin + "/1", "--zstd-level", "3"});

  // The build machine fetches release 1 and builds release 2 on it. A file of release 1 moves
  // to a new inode by a reflink copy: its extents are then only in the parent, so the stream
  // clones them from there.
  run_ballast_ok({"--state-dir", build_state, "fetch", "--repo", url, "--root", root, "--version", "1", build});
  sh({"btrfs", "-q", "subvolume", "snapshot", build + "/1", build + "/work"});
  change_tree_v2(build + "/work");
  write_image_version(build + "/work", "2");
  sh({"cp", "--reflink=always", build + "/work/big", build + "/work/big-copy"});
  sh({"rm", build + "/work/big"});
  sh({"btrfs", "-q", "subvolume", "snapshot", "-r", build + "/work", build + "/2"});
  const auto original = subvol_info(origin + "/1");
  const auto parent = subvol_info(build + "/1");
  REQUIRE(uuid_of(parent.received_uuid) == uuid_of(original.uuid));
  REQUIRE(parent.stransid == original.ctransid);
  // What the kernel writes for this parent, and what the rewrite must replace.
  REQUIRE(parent.ctransid != parent.stransid);
  run_ballast_ok({"repo", "add", repo, "--keys", keys, "--version", "2", "--subvolume", build + "/2", "--delta-from", "1",
               "--zstd-level", "3"});

  // A host holding release 1 as received from the repository's full stream.
  auto full = run_ballast_ok({"--json", "--state-dir", host_state, "fetch", "--repo", url, "--root", root, "--version",
                           "1", slots});
  CHECK(nlohmann::json::parse(full.out)["artifact"] == "full");

  // The host picks the delta and ballast's strict receiver applies it.
  auto delta = run_ballast_ok({"--json", "--state-dir", host_state, "fetch", "--repo", url, "--root", root,
                            "--from-subvolume", slots + "/1", next});
  auto j = nlohmann::json::parse(delta.out);
  CHECK(j["version"] == "2");
  CHECK(j["artifact"] == "delta");
  // Protocol 1 sends a hole punched in an incremental as zeros, so holes are not compared.
  auto diffs = compare_trees(build + "/2", next + "/2",
                             TreeCompareOptions{.compare_atime = false, .compare_holes = false});
  INFO((diffs.empty() ? std::string() : diffs.front()));
  CHECK(diffs.empty());
  CHECK(uuid_of(subvol_info(next + "/2").received_uuid) == uuid_of(subvol_info(build + "/2").uuid));

  // The manifest names the parent as hosts know it; the stream names it with the host's transid.
  auto local = host::local_subvolume(slots + "/1");
  REQUIRE(local);
  repository::ReleaseRequest req;
  req.repo_url = url;
  req.root_json = root;
  req.state_dir = host_state;
  req.version = "2"_v;
  req.local = *local;
  SystemClock clock;
  auto trusted = repository::refresh_repository(req, clock);
  REQUIRE(trusted);
  auto releases = repository::list_releases(*trusted->client);
  REQUIRE(releases);
  auto release = repository::choose_release(*releases, req.version, req.channel);
  REQUIRE(release);
  auto manifest = repository::load_manifest(*trusted->client, *release);
  REQUIRE(manifest);
  const repository::Artifact* planned = nullptr;
  for (const auto& a : manifest->artifacts)
    if (repository::delta_applies_to(a, *local)) planned = &a;
  REQUIRE(planned);
  CHECK(planned->from == "1"_v);
  CHECK(planned->parent_uuid == stream::format_uuid(uuid_of(original.uuid)));
  auto opened = repository::open_artifact_stream(*planned, repository::fetch_options(req));
  REQUIRE(opened);

  std::string bytes;
  char buf[1 << 16];
  for (;;) {
    auto n = (*opened)->read(buf, sizeof(buf));
    REQUIRE(n);
    if (*n == 0) break;
    bytes.append(buf, *n);
  }
  MemoryByteSource src(bytes);
  stream::StreamReader reader(src);
  REQUIRE(reader.read_header());
  stream::Command c;
  int snapshots = 0, clones_from_parent = 0;
  for (;;) {
    auto more = reader.next(c);  // checks every command's crc
    REQUIRE(more);
    if (!*more) break;
    if (c.cmd != stream::Cmd::snapshot && c.cmd != stream::Cmd::clone) continue;
    if (*c.uuid(stream::Attr::clone_uuid) != uuid_of(original.uuid)) continue;
    CHECK(*c.u64(stream::Attr::clone_ctransid) == original.ctransid);
    (c.cmd == stream::Cmd::snapshot ? snapshots : clones_from_parent)++;
  }
  CHECK(snapshots == 1);
  CHECK(clones_from_parent > 0);

  // Real `btrfs receive` takes the rewritten stream too.
  const std::string file = (*host)->base_dir() + "/delta.stream";
  REQUIRE(write_file_atomic(file, bytes));
  sh({"btrfs", "receive", "-q", "-f", file, by_btrfs});
  auto by_btrfs_diffs = compare_trees(build + "/2", by_btrfs + "/2",
                                      TreeCompareOptions{.compare_atime = false, .compare_holes = false});
  INFO((by_btrfs_diffs.empty() ? std::string() : by_btrfs_diffs.front()));
  CHECK(by_btrfs_diffs.empty());
}

TEST_CASE("a release published from a received subvolume and a delta from it agree on its transid",
          "[repository][received-parent]") {
  auto pub = LoopBtrfs::create();
  REQUIRE(pub);
  auto host = LoopBtrfs::create();
  REQUIRE(host);
  const std::string farm = (*pub)->mount_point() + "/farm", build = (*pub)->mount_point() + "/build";
  const std::string slots = (*host)->mount_point() + "/slots", next = (*host)->mount_point() + "/next";
  const std::string repo = (*pub)->base_dir() + "/repo", keys = (*pub)->base_dir() + "/keys";
  const std::string host_state = (*host)->base_dir() + "/state", sent = (*pub)->base_dir() + "/1.stream";
  for (const auto& d : {farm, build, slots, next}) REQUIRE(make_dirs(d));
  const std::string url = "file://" + repo, root = repo + "/metadata/1.root.json";

  // Release 1 is built elsewhere and reaches the publisher by btrfs send/receive.
  sh({"btrfs", "-q", "subvolume", "create", farm + "/work"});
  REQUIRE(write_file_atomic(farm + "/work/kept", std::string(300000, 'k')));
  REQUIRE(write_file_atomic(farm + "/work/changed", "one\n"));
  write_image_version(farm + "/work", "1");
  sh({"btrfs", "-q", "subvolume", "snapshot", "-r", farm + "/work", farm + "/1"});
  sh({"btrfs", "-q", "send", "-f", sent, farm + "/1"});
  sh({"btrfs", "-q", "receive", "-f", sent, build});
  const auto original = subvol_info(farm + "/1");
  REQUIRE(subvol_info(build + "/1").ctransid != original.ctransid);

  run_ballast_ok({"repo", "init", repo, "--keys", keys});
  run_ballast_ok({"repo", "add", repo, "--keys", keys, "--version", "1", "--subvolume", build + "/1", "--zstd-level", "3"});
  sh({"btrfs", "-q", "subvolume", "snapshot", build + "/1", build + "/work"});
  REQUIRE(write_file_atomic(build + "/work/changed", "two\n"));
  write_image_version(build + "/work", "2");
  sh({"btrfs", "-q", "subvolume", "snapshot", "-r", build + "/work", build + "/2"});
  run_ballast_ok({"repo", "add", repo, "--keys", keys, "--version", "2", "--subvolume", build + "/2", "--delta-from", "1",
               "--zstd-level", "3"});

  // The host's copy of release 1 carries the original's identity, whichever copy was published.
  run_ballast_ok({"--state-dir", host_state, "fetch", "--repo", url, "--root", root, "--version", "1", slots});
  const auto slot = subvol_info(slots + "/1");
  CHECK(uuid_of(slot.received_uuid) == uuid_of(original.uuid));
  CHECK(slot.stransid == original.ctransid);

  auto delta = run_ballast_ok({"--json", "--state-dir", host_state, "fetch", "--repo", url, "--root", root,
                            "--from-subvolume", slots + "/1", next});
  CHECK(nlohmann::json::parse(delta.out)["artifact"] == "delta");
  auto diffs = compare_trees(build + "/2", next + "/2", TreeCompareOptions{.compare_atime = false});
  INFO((diffs.empty() ? std::string() : diffs.front()));
  CHECK(diffs.empty());
}
