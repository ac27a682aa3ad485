#include <catch2/catch.hpp>

#include "agent/daemon/pin.hpp"
#include "agent/daemon/planner.hpp"
#include "common/file.hpp"
#include "repository/release.hpp"
#include "tests/version_literal.hpp"

using namespace ballast;
using namespace ballast::agent;
using repository::ReleaseInfo;

namespace {
using namespace ballast::version_literals;

constexpr int64_t kNow = 1'767'225'600;  // 2026-01-01T00:00:00Z

ReleaseInfo rel(const std::string& v) {
  ReleaseInfo r;
  r.version = make_version(v);
  return r;
}

PlanInput input(std::vector<ReleaseInfo> releases, const std::string& booted) {
  PlanInput in;
  in.releases = std::move(releases);
  if (!booted.empty()) in.booted = make_version(booted);
  in.now = std::chrono::system_clock::time_point{std::chrono::seconds{kNow}};
  return in;
}

}  // namespace

TEST_CASE("the planner picks the newest release of the channel that is newer than the booted one") {
  auto beta = rel("3.0");
  beta.channel = "beta";
  auto in = input({rel("1.0"), rel("2.10"), rel("2.9"), beta}, "1.0");
  auto d = plan_update(in);
  REQUIRE(d.target);
  CHECK(*d.target == "2.10"_v);  // version order, not string order
  CHECK_FALSE(d.backward);
  in.channel = "beta";
  CHECK(plan_update(in).target == std::optional<Version>("3.0"_v));
}

TEST_CASE("fetch and install --repo choose the same release as the daemon's planner: 1.0 over 1.0~rc1") {
  for (auto order : {std::vector<std::string>{"1.0~rc1", "1.0"}, std::vector<std::string>{"1.0", "1.0~rc1"}}) {
    std::vector<repository::Release> releases;
    std::vector<ReleaseInfo> infos;
    for (const auto& v : order) {
      releases.push_back({rel(v), {}});
      infos.push_back(rel(v));
    }
    auto chosen = repository::choose_release(releases, std::nullopt, "stable");  // `fetch`, `install --repo`
    REQUIRE(chosen);
    auto planned = plan_update(input(infos, "0.9"));                              // the daemon
    REQUIRE(planned.target);
    CHECK(chosen->info.version == "1.0"_v);
    CHECK(*planned.target == "1.0"_v);
  }
}

TEST_CASE("the planner stays when nothing newer is on the channel") {
  auto d = plan_update(input({rel("0.9"), rel("1.0")}, "1.0"));
  CHECK_FALSE(d.target);
  CHECK_THAT(d.reason, Catch::Contains("up to date"));
}

TEST_CASE("a pin selects exactly that version, even an older one or one on another channel") {
  auto other = rel("1.5");
  other.channel = "beta";
  auto in = input({rel("0.9"), rel("1.0"), other, rel("2.0")}, "1.0");
  in.pin = "0.9"_v;
  auto d = plan_update(in);
  REQUIRE(d.target == std::optional<Version>("0.9"_v));
  CHECK(d.backward);
  CHECK(d.reason == "pinned to 0.9");
  in.pin = "1.5"_v;
  CHECK(plan_update(in).target == std::optional<Version>("1.5"_v));
  in.pin = "1.0"_v;
  CHECK_FALSE(plan_update(in).target);
  in.pin = "7.0"_v;
  auto missing = plan_update(in);
  CHECK_FALSE(missing.target);
  CHECK_THAT(missing.reason, Catch::Contains("does not list"));
}

TEST_CASE("a pin to a revoked release is not followed") {
  auto bad = rel("2.0");
  bad.revoked = true;
  auto in = input({rel("1.0"), bad}, "1.0");
  in.pin = "2.0"_v;
  auto d = plan_update(in);
  CHECK_FALSE(d.target);
  CHECK_THAT(d.reason, Catch::Contains("revoked"));
}

TEST_CASE("a release opens to a node once now reaches start plus wariness times duration") {
  auto r = rel("2.0");
  r.rollout = repository::Rollout{kNow - 1000, 4000};
  auto in = input({rel("1.0"), r}, "1.0");
  in.wariness = 0.25;  // opens at start + 1000 = now
  CHECK(plan_update(in).target == std::optional<Version>("2.0"_v));
  in.wariness = 0.5;  // opens at start + 2000 = now + 1000
  auto d = plan_update(in);
  CHECK_FALSE(d.target);
  CHECK(d.reason == "waiting for rollout wave of 2.0: opens at 2026-01-01T00:16:40Z");
  in.now += std::chrono::seconds(1000);
  CHECK(plan_update(in).target == std::optional<Version>("2.0"_v));
}

TEST_CASE("an older release whose wave is open is taken while the newest one's wave is closed") {
  auto r = rel("3.0");
  r.rollout = repository::Rollout{kNow + 10, 0};
  auto in = input({rel("1.0"), rel("2.0"), r}, "1.0");
  auto d = plan_update(in);
  REQUIRE(d.target == std::optional<Version>("2.0"_v));
  CHECK_THAT(d.reason, Catch::Contains("waiting for rollout wave of 3.0"));
}

TEST_CASE("a host never skips past a barrier newer than its booted version: it stops at the oldest") {
  auto b2 = rel("2.0");
  b2.barrier = true;
  auto b3 = rel("3.0");
  b3.barrier = true;
  auto in = input({rel("1.0"), rel("1.5"), b2, rel("2.5"), b3, rel("4.0")}, "1.0");
  auto d = plan_update(in);
  REQUIRE(d.target == std::optional<Version>("2.0"_v));
  CHECK_THAT(d.reason, Catch::Contains("barrier 2.0 first"));
  in.booted = "2.0"_v;
  CHECK(plan_update(in).target == std::optional<Version>("3.0"_v));
  in.booted = "3.0"_v;
  CHECK(plan_update(in).target == std::optional<Version>("4.0"_v));
}

TEST_CASE("a barrier whose wave is closed holds the host below it") {
  auto b = rel("2.0");
  b.barrier = true;
  b.rollout = repository::Rollout{kNow + 100, 0};
  auto in = input({rel("1.0"), rel("1.5"), b, rel("3.0")}, "1.0");
  CHECK(plan_update(in).target == std::optional<Version>("1.5"_v));
  in.booted = "1.5"_v;
  auto d = plan_update(in);
  CHECK_FALSE(d.target);
  CHECK_THAT(d.reason, Catch::Contains("barrier 2.0 first"));
}

TEST_CASE("a denylisted version is never chosen automatically, but a pin may choose it") {
  auto in = input({rel("1.0"), rel("2.0"), rel("3.0")}, "1.0");
  in.denylist = {"3.0"_v};
  auto d = plan_update(in);
  REQUIRE(d.target == std::optional<Version>("2.0"_v));
  in.denylist = {"2.0"_v, "3.0"_v};
  d = plan_update(in);
  CHECK_FALSE(d.target);
  CHECK_THAT(d.reason, Catch::Contains("3.0 is denylisted"));
  in.pin = "3.0"_v;
  CHECK(plan_update(in).target == std::optional<Version>("3.0"_v));
}

TEST_CASE("a revoked release is never chosen") {
  auto r = rel("2.0");
  r.revoked = true;
  auto in = input({rel("1.0"), r}, "1.0");
  CHECK_FALSE(plan_update(in).target);
  in = input({rel("1.0"), rel("1.5"), r}, "1.0");
  CHECK(plan_update(in).target == std::optional<Version>("1.5"_v));
}

TEST_CASE("a host booted into a revoked release goes forward when a newer allowed release exists") {
  auto r = rel("2.0");
  r.revoked = true;
  auto in = input({rel("1.0"), r, rel("2.1")}, "2.0");
  in.retained = {"1.0"_v, "2.0"_v};
  auto d = plan_update(in);
  REQUIRE(d.target == std::optional<Version>("2.1"_v));
  CHECK_FALSE(d.backward);
  CHECK_THAT(d.reason, Catch::Contains("2.0 is revoked; forward to 2.1"));
}

TEST_CASE("a host booted into a revoked release goes back to the newest retained good older version") {
  auto r = rel("2.0");
  r.revoked = true;
  auto r15 = rel("1.5");
  r15.revoked = true;
  auto closed = rel("2.1");
  closed.rollout = repository::Rollout{kNow + 100, 0};
  auto in = input({rel("0.9"), rel("1.0"), r15, r, closed}, "2.0");
  in.retained = {"0.9"_v, "1.0"_v, "1.5"_v, "2.0"_v};
  auto d = plan_update(in);
  REQUIRE(d.target == std::optional<Version>("1.0"_v));
  CHECK(d.backward);
  CHECK_THAT(d.reason, Catch::Contains("back to the previous good deployment 1.0"));
  in.retained = {"2.0"_v};
  d = plan_update(in);
  CHECK_FALSE(d.target);
  CHECK_THAT(d.reason, Catch::Contains("no older deployment"));
}

TEST_CASE("a node's wariness is stable, in [0,1) and spread across node ids") {
  double a = wariness_from_node_id("node-a");
  CHECK(a == wariness_from_node_id("node-a"));
  CHECK(a != wariness_from_node_id("node-b"));
  int low = 0;
  for (int i = 0; i < 200; ++i) {
    double w = wariness_from_node_id("node-" + std::to_string(i));
    REQUIRE(w >= 0);
    REQUIRE(w < 1);
    if (w < 0.5) ++low;
  }
  CHECK(low > 50);
  CHECK(low < 150);
}

TEST_CASE("wariness comes from node.wariness, else node.id, else the machine id file") {
  auto dir = make_temp_dir("planner-test");
  REQUIRE(dir);
  std::string mid = *dir + "/machine-id";
  REQUIRE(write_file_atomic(mid, "0123456789abcdef0123456789abcdef\n"));
  Config cfg;
  CHECK(*node_wariness(cfg, mid) == wariness_from_node_id("0123456789abcdef0123456789abcdef"));
  REQUIRE(cfg.merge_text("[node]\nid = \"n1\"\n", "a.toml"));
  CHECK(*node_wariness(cfg, mid) == wariness_from_node_id("n1"));
  REQUIRE(cfg.merge_text("[node]\nwariness = 0.75\n", "b.toml"));
  CHECK(*node_wariness(cfg, mid) == 0.75);
  Config bad;
  REQUIRE(bad.merge_text("[node]\nwariness = 1.5\n", "c.toml"));
  CHECK_FALSE(node_wariness(bad, mid));
  CHECK_FALSE(node_wariness(Config(), *dir + "/missing"));
  REQUIRE(remove_tree(*dir));
}

TEST_CASE("a pin is written atomically, read back, and removed; a corrupt pin file is refused") {
  auto dir = make_temp_dir("pin-test");
  REQUIRE(dir);
  CHECK_FALSE(*read_pin(*dir));
  REQUIRE(write_pin(*dir, "2.0"_v));
  CHECK(*read_pin(*dir) == std::optional<Version>("2.0"_v));
  REQUIRE(remove_pin(*dir));
  CHECK_FALSE(*read_pin(*dir));
  CHECK(remove_pin(*dir));
  REQUIRE(write_file_atomic(*dir + "/pin", "not a/version\n"));
  CHECK(read_pin(*dir).error().code == "pin.corrupt");
  REQUIRE(remove_tree(*dir));
}

TEST_CASE("the previous good deployment is the newest older candidate neither denylisted nor revoked") {
  auto revoked = rel("1.9");
  revoked.revoked = true;
  std::vector<Version> candidates{"1.10"_v, "1.2"_v, "1.9"_v, "1.8"_v, "3.0"_v, "2.0"_v};
  CHECK(previous_good_deployment("2.0"_v, candidates, {}, {}) == std::optional<Version>("1.10"_v));  // not "1.9"
  CHECK(previous_good_deployment("2.0"_v, candidates, {"1.10"_v}, {revoked}) == std::optional<Version>("1.8"_v));
  CHECK_FALSE(previous_good_deployment("1.2"_v, candidates, {}, {}));
}

namespace {

repository::Artifact artifact(const std::string& from, const std::string& parent_uuid, uint64_t size) {
  repository::Artifact a;
  if (!from.empty()) a.from = make_version(from);
  a.parent_uuid = parent_uuid;
  a.size = size;
  a.usize = size * 3;
  return a;
}

// 3.0 published in full (9000 bytes) and as deltas from 1.0 (300) and 2.0 (200).
repository::Manifest manifest_3_0() {
  repository::Manifest m;
  m.version = "3.0"_v;
  m.artifacts = {artifact("", "", 9000), artifact("1.0", "uuid-of-1.0", 300), artifact("2.0", "uuid-of-2.0", 200)};
  return m;
}

LocalSlot slot(const std::string& version, const std::string& received_uuid) {
  return LocalSlot{make_version(version), repository::LocalSubvolume{"own-uuid-" + version, received_uuid}};
}

PlanDecision forward_to_3_0() { return PlanDecision{"3.0"_v, false, "newest allowed on channel stable: 3.0"}; }

}  // namespace

TEST_CASE("a release plan fetches the delta whose parent is the booted slot, and knows its bytes") {
  auto plan = plan_fetch(forward_to_3_0(), manifest_3_0(), {slot("2.0", "uuid-of-2.0"), slot("1.0", "uuid-of-1.0")});
  REQUIRE(plan);
  CHECK(*plan == ReleasePlan{"3.0"_v, false, "2.0"_v, 200, "newest allowed on channel stable: 3.0"});
}

TEST_CASE("a release plan fetches a delta from another local slot when none starts from the booted one") {
  // Booted 2.5 was installed in full from elsewhere: no delta names it, but the retained 1.0 slot is a parent.
  auto plan = plan_fetch(forward_to_3_0(), manifest_3_0(), {slot("2.5", "uuid-of-2.5"), slot("1.0", "uuid-of-1.0")});
  REQUIRE(plan);
  CHECK(plan->delta_from == "1.0"_v);
  CHECK(plan->download_bytes == 300);
}

TEST_CASE("a release plan fetches the full stream when no local slot is a delta's parent") {
  auto plan = plan_fetch(forward_to_3_0(), manifest_3_0(), {slot("2.5", "uuid-of-2.5")});
  REQUIRE(plan);
  CHECK_FALSE(plan->delta_from);
  CHECK(plan->download_bytes == 9000);
  CHECK_FALSE(plan->backward);
  auto none = plan_fetch(forward_to_3_0(), manifest_3_0(), {});
  REQUIRE(none);
  CHECK(none->download_bytes == 9000);
  repository::Manifest deltas_only = manifest_3_0();
  deltas_only.artifacts.erase(deltas_only.artifacts.begin());
  auto refused = plan_fetch(forward_to_3_0(), deltas_only, {});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == "plan.no-artifact");
}

TEST_CASE("staging finds the planned artifact in the manifest again, and refuses a manifest that no longer holds it") {
  ReleasePlan plan{"3.0"_v, false, "2.0"_v, 200, "r"};
  auto found = planned_artifact(plan, manifest_3_0());
  REQUIRE(found);
  CHECK(found->from == "2.0"_v);
  plan.delta_from.reset();
  plan.download_bytes = 9000;
  CHECK(planned_artifact(plan, manifest_3_0())->is_full());
  plan.download_bytes = 8000;  // republished with other bytes since the check
  auto changed = planned_artifact(plan, manifest_3_0());
  REQUIRE_FALSE(changed);
  CHECK(changed.error().code == "stage.plan-mismatch");
  ReleasePlan gone{"3.0"_v, false, "1.5"_v, 300, "r"};
  CHECK(planned_artifact(gone, manifest_3_0()).error().code == "stage.plan-mismatch");
}

TEST_CASE("going back to a retained deployment (revoked booted release, pin to an older one) is a plan that fetches nothing") {
  auto revoked = rel("2.0");
  revoked.revoked = true;
  auto in = input({rel("1.0"), revoked}, "2.0");
  in.retained = {"1.0"_v, "2.0"_v};
  auto back = plan_going_back(plan_update(in), in.retained);
  REQUIRE(back);
  CHECK(back->version == "1.0"_v);
  CHECK(back->backward);
  CHECK(back->download_bytes == 0);
  CHECK_FALSE(back->delta_from);

  in = input({rel("1.0"), rel("2.0")}, "2.0");
  in.pin = "1.0"_v;
  in.retained = {"1.0"_v, "2.0"_v};
  auto pinned = plan_going_back(plan_update(in), in.retained);
  REQUIRE(pinned);
  CHECK(pinned->backward);
  CHECK(pinned->reason == "pinned to 1.0");
  // An older pinned version this host no longer retains has to be fetched.
  in.retained = {"2.0"_v};
  CHECK_FALSE(plan_going_back(plan_update(in), in.retained));
  // Forward is never going back.
  in = input({rel("1.0"), rel("2.0")}, "1.0");
  in.retained = {"1.0"_v};
  CHECK_FALSE(plan_going_back(plan_update(in), in.retained));
}

namespace {

// Releases 1.0 … 4.0, each published in full (5000 bytes) with a delta from the one before
// (100 bytes; the publisher's subvolume of N is uuid-of-N); 4.0 also from 1.0 (`direct` bytes).
std::vector<repository::Manifest> line_of_releases(uint64_t direct) {
  std::vector<repository::Manifest> out;
  for (int n = 2; n <= 4; ++n) {
    repository::Manifest m;
    m.version = make_version(std::to_string(n) + ".0");
    std::string prev = std::to_string(n - 1) + ".0";
    m.artifacts = {artifact("", "", 5000), artifact(prev, "uuid-of-" + prev, 100)};
    if (n == 4 && direct) m.artifacts.push_back(artifact("1.0", "uuid-of-1.0", direct));
    out.push_back(m);
  }
  return out;
}

PlanDecision forward_to_4_0() { return PlanDecision{"4.0"_v, false, "newest allowed on channel stable: 4.0"}; }

}  // namespace

TEST_CASE("a host three releases behind takes the chain of deltas when it is cheaper than the direct delta and the full stream") {
  auto m = line_of_releases(1000);
  auto plan = plan_fetch(forward_to_4_0(), m[2], {slot("1.0", "uuid-of-1.0")}, {m[0], m[1]}, {rel("1.0"), rel("2.0"), rel("3.0"), rel("4.0")});
  REQUIRE(plan);
  CHECK(plan->delta_from == "1.0"_v);
  CHECK(plan->download_bytes == 300);
  CHECK(plan->chain == std::vector<PlanLink>{{"1.0"_v, "2.0"_v, 100}, {"2.0"_v, "3.0"_v, 100}, {"3.0"_v, "4.0"_v, 100}});
  CHECK(planned_artifact(*plan, m[2])->from == "3.0"_v);
  CHECK(planned_link(plan->chain[0], m[0])->from == "1.0"_v);
}

TEST_CASE("a direct delta cheaper than the chain wins, and on equal bytes the plan with fewer links wins") {
  auto m = line_of_releases(250);
  auto infos = std::vector<ReleaseInfo>{rel("1.0"), rel("2.0"), rel("3.0"), rel("4.0")};
  auto cheaper = plan_fetch(forward_to_4_0(), m[2], {slot("1.0", "uuid-of-1.0")}, {m[0], m[1]}, infos);
  REQUIRE(cheaper);
  CHECK(cheaper->chain.empty());
  CHECK(cheaper->delta_from == "1.0"_v);
  CHECK(cheaper->download_bytes == 250);
  auto tie = line_of_releases(300);
  auto same = plan_fetch(forward_to_4_0(), tie[2], {slot("1.0", "uuid-of-1.0")}, {tie[0], tie[1]}, infos);
  REQUIRE(same);
  CHECK(same->chain.empty());
  CHECK(same->download_bytes == 300);
  // A delta and the full stream of equal bytes: the delta.
  repository::Manifest even = tie[2];
  even.artifacts[0].size = 300;
  auto delta = plan_fetch(forward_to_4_0(), even, {slot("1.0", "uuid-of-1.0")}, {}, infos);
  CHECK(delta->delta_from == "1.0"_v);
}

TEST_CASE("the full stream wins when it is cheaper than any delta or chain") {
  auto m = line_of_releases(0);
  m[2].artifacts[0].size = 250;
  auto plan = plan_fetch(forward_to_4_0(), m[2], {slot("1.0", "uuid-of-1.0")}, {m[0], m[1]}, {rel("2.0"), rel("3.0")});
  REQUIRE(plan);
  CHECK_FALSE(plan->delta_from);
  CHECK(plan->chain.empty());
  CHECK(plan->download_bytes == 250);
}

TEST_CASE("a chain never passes through a revoked release or one whose manifest is missing: the plan falls back") {
  auto m = line_of_releases(0);
  auto revoked = rel("3.0");
  revoked.revoked = true;
  auto through_revoked = plan_fetch(forward_to_4_0(), m[2], {slot("1.0", "uuid-of-1.0")}, {m[0], m[1]}, {rel("2.0"), revoked});
  REQUIRE(through_revoked);
  CHECK(through_revoked->chain.empty());
  CHECK_FALSE(through_revoked->delta_from);
  CHECK(through_revoked->download_bytes == 5000);
  // 2.0's manifest could not be read (or the release is gone): no chain; with a direct delta, that.
  auto with_direct = line_of_releases(1000);
  auto missing = plan_fetch(forward_to_4_0(), with_direct[2], {slot("1.0", "uuid-of-1.0")}, {with_direct[1]}, {rel("2.0"), rel("3.0")});
  REQUIRE(missing);
  CHECK(missing->chain.empty());
  CHECK(missing->delta_from == "1.0"_v);
  CHECK(missing->download_bytes == 1000);
  // A release the listing does not have is no link either, even with its manifest at hand.
  auto unlisted = plan_fetch(forward_to_4_0(), m[2], {slot("1.0", "uuid-of-1.0")}, {m[0], m[1]}, {rel("3.0")});
  CHECK(unlisted->download_bytes == 5000);
}

TEST_CASE("a chain starts from the slot whose subvolume the first delta names, and from a nearer slot when cheaper") {
  auto m = line_of_releases(0);
  auto infos = std::vector<ReleaseInfo>{rel("2.0"), rel("3.0")};
  // The slot of 1.0 was not received from this publisher: no delta applies to it.
  auto foreign = plan_fetch(forward_to_4_0(), m[2], {slot("1.0", "other-uuid")}, {m[0], m[1]}, infos);
  CHECK(foreign->download_bytes == 5000);
  // Booted 1.0, but a retained 2.0 slot is nearer.
  auto nearer = plan_fetch(forward_to_4_0(), m[2], {slot("1.0", "uuid-of-1.0"), slot("2.0", "uuid-of-2.0")}, {m[0], m[1]}, infos);
  REQUIRE(nearer);
  CHECK(nearer->download_bytes == 200);
  CHECK(nearer->chain == std::vector<PlanLink>{{"2.0"_v, "3.0"_v, 100}, {"3.0"_v, "4.0"_v, 100}});
}

TEST_CASE("a host with nothing to start from takes an earlier release's full stream and the deltas after it when the target has none") {
  auto m = line_of_releases(0);
  m[1].artifacts.erase(m[1].artifacts.begin());  // 3.0 and 4.0 were published with --no-full
  m[2].artifacts.erase(m[2].artifacts.begin());
  auto infos = std::vector<ReleaseInfo>{rel("1.0"), rel("2.0"), rel("3.0"), rel("4.0")};
  auto plan = plan_fetch(forward_to_4_0(), m[2], {}, {m[0], m[1]}, infos);
  REQUIRE(plan);
  CHECK_FALSE(plan->delta_from);
  CHECK(plan->download_bytes == 5200);
  CHECK(plan->chain == std::vector<PlanLink>{{std::nullopt, "2.0"_v, 5000}, {"2.0"_v, "3.0"_v, 100}, {"3.0"_v, "4.0"_v, 100}});
  CHECK(planned_link(plan->chain[0], m[0])->is_full());
  CHECK(planned_artifact(*plan, m[2])->from == "3.0"_v);
  // A host on 1.0 still takes its deltas: the chain from its slot is cheaper.
  auto updating = plan_fetch(forward_to_4_0(), m[2], {slot("1.0", "uuid-of-1.0")}, {m[0], m[1]}, infos);
  REQUIRE(updating);
  CHECK(updating->delta_from == "1.0"_v);
  CHECK(updating->download_bytes == 300);
}

TEST_CASE("an earlier full stream and its deltas win over the target's own full stream only when fewer bytes") {
  auto m = line_of_releases(0);
  auto infos = std::vector<ReleaseInfo>{rel("2.0"), rel("3.0"), rel("4.0")};
  m[0].artifacts[0].size = 4000;  // 2.0's full stream compressed harder
  auto harder = plan_fetch(forward_to_4_0(), m[2], {}, {m[0], m[1]}, infos);
  REQUIRE(harder);
  CHECK(harder->download_bytes == 4200);
  CHECK(harder->chain.front() == PlanLink{std::nullopt, "2.0"_v, 4000});
  m[0].artifacts[0].size = 4900;  // 5100 with the deltas: the target's own 5000 wins
  auto own = plan_fetch(forward_to_4_0(), m[2], {}, {m[0], m[1]}, infos);
  REQUIRE(own);
  CHECK(own->chain.empty());
  CHECK_FALSE(own->delta_from);
  CHECK(own->download_bytes == 5000);
}

TEST_CASE("a release without a full stream that no chain reaches from a full stream or a slot has no plan") {
  auto m = line_of_releases(0);
  for (auto& r : m) r.artifacts.erase(r.artifacts.begin());  // no release has a full stream
  auto infos = std::vector<ReleaseInfo>{rel("2.0"), rel("3.0"), rel("4.0")};
  auto none = plan_fetch(forward_to_4_0(), m[2], {}, {m[0], m[1]}, infos);
  REQUIRE_FALSE(none);
  CHECK(none.error().code == "plan.no-artifact");
  // The only full stream is in a revoked release: no chain starts there.
  auto only = line_of_releases(0);
  only[1].artifacts.erase(only[1].artifacts.begin());
  only[2].artifacts.erase(only[2].artifacts.begin());
  auto revoked = rel("2.0");
  revoked.revoked = true;
  auto cut = plan_fetch(forward_to_4_0(), only[2], {}, {only[0], only[1]}, {revoked, rel("3.0"), rel("4.0")});
  REQUIRE_FALSE(cut);
  CHECK(cut.error().code == "plan.no-artifact");
}
