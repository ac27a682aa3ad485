#include "agent/daemon/planner.hpp"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <map>
#include <tuple>

#include "common/file.hpp"
#include "common/version.hpp"
#include "repository/chunk_codec.hpp"

namespace ballast::agent {
namespace {

using repository::ReleaseInfo;

bool contains(const std::vector<Version>& v, const Version& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

std::string format_utc(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// When the release opens to a node of this wariness, in unix seconds.
int64_t wave_opens_at(const ReleaseInfo& r, double wariness) {
  if (!r.rollout) return INT64_MIN;
  return r.rollout->start + static_cast<int64_t>(std::floor(wariness * static_cast<double>(r.rollout->duration)));
}

const ReleaseInfo* find(const std::vector<ReleaseInfo>& releases, const Version& version) {
  for (const auto& r : releases)
    if (r.version == version) return &r;
  return nullptr;
}

PlanDecision stay(std::string reason) { return PlanDecision{std::nullopt, false, std::move(reason)}; }

// The newest release newer than the booted one that the automatic rules allow, or why none.
PlanDecision plan_forward(const PlanInput& in) {
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(in.now.time_since_epoch()).count();
  auto newer = [&](const ReleaseInfo& r) { return !in.booted || r.version > *in.booted; };
  std::vector<const ReleaseInfo*> candidates;  // on the channel, newer, not revoked
  for (const auto& r : in.releases)
    if (r.channel == in.channel && !r.revoked && newer(r)) candidates.push_back(&r);
  std::sort(candidates.begin(), candidates.end(),
            [](const ReleaseInfo* a, const ReleaseInfo* b) { return a->version > b->version; });
  if (candidates.empty())
    return stay("up to date: nothing newer than " + (in.booted ? in.booted->str() : std::string("the booted version")) +
                " on channel " + in.channel);

  // A host passes through every barrier: nothing past the oldest barrier newer than the booted version.
  const ReleaseInfo* barrier = nullptr;
  for (const auto* r : candidates)
    if (r->barrier) barrier = r;  // candidates run newest first: the last one seen is the oldest
  std::string skipped;            // why the newest candidates were passed over, for the reason line
  auto note = [&](const std::string& why) {
    if (skipped.empty()) skipped = why;
  };
  for (const auto* r : candidates) {
    if (barrier && r->version > barrier->version) {
      note("barrier " + barrier->version.str() + " first");
      continue;
    }
    if (contains(in.denylist, r->version)) {
      note(r->version.str() + " is denylisted (this host rolled back from it, or it cannot be staged)");
      continue;
    }
    int64_t opens = wave_opens_at(*r, in.wariness);
    if (now < opens) {
      note("waiting for rollout wave of " + r->version.str() + ": opens at " + format_utc(opens));
      continue;
    }
    std::string reason = "newest allowed on channel " + in.channel + ": " + r->version.str();
    if (!skipped.empty()) reason += " (" + skipped + ")";
    return PlanDecision{r->version, false, reason};
  }
  return stay(skipped);
}

}  // namespace

PlanDecision plan_update(const PlanInput& in) {
  if (in.pin) {
    const Version& pin = *in.pin;
    const ReleaseInfo* r = find(in.releases, pin);
    if (pin == in.booted) return stay("pinned to " + pin.str() + ", which is booted");
    if (!r) return stay("pinned to " + pin.str() + ", which the repository does not list");
    if (r->revoked) return stay("pinned to " + pin.str() + ", which has been revoked");
    return PlanDecision{pin, in.booted && pin < *in.booted, "pinned to " + pin.str()};
  }

  const ReleaseInfo* booted = in.booted ? find(in.releases, *in.booted) : nullptr;
  if (booted && booted->revoked) {
    const std::string& was = in.booted->str();
    PlanDecision forward = plan_forward(in);
    if (forward.target) {
      forward.reason = "booted " + was + " is revoked; forward to " + forward.target->str();
      return forward;
    }
    std::optional<Version> back = previous_good_deployment(*in.booted, in.retained, in.denylist, in.releases);
    if (!back) return stay("booted " + was + " is revoked, but there is nothing newer allowed and no older deployment to go back to");
    return PlanDecision{*back, true, "booted " + was + " is revoked; back to the previous good deployment " + back->str()};
  }
  return plan_forward(in);
}

std::optional<ReleasePlan> plan_going_back(const PlanDecision& decision, const std::vector<Version>& retained) {
  if (!decision.target || !decision.backward || !contains(retained, *decision.target)) return std::nullopt;
  return ReleasePlan{*decision.target, true, std::nullopt, 0, decision.reason};
}

namespace {

// The cheapest way found so far to have a version's subvolume on this host.
struct Route {
  uint64_t bytes = 0;
  size_t start = 0;             // index of the slot it starts from; slots.size() for the full stream
  std::vector<PlanLink> links;  // empty: the slot itself
};

// Cheaper by bytes, then fewer streams (the full stream is one), then from an earlier slot (the
// full stream comes last).
bool cheaper(const Route& a, const Route& b) {
  auto streams = [](const Route& r) { return std::max<size_t>(r.links.size(), 1); };
  return std::make_tuple(a.bytes, streams(a), a.start) < std::make_tuple(b.bytes, streams(b), b.start);
}

Result<repository::Artifact> find_planned(const Version& version, const std::optional<Version>& from, uint64_t bytes,
                                          const repository::Manifest& manifest) {
  const repository::Artifact* a = from ? manifest.delta_from(*from) : manifest.full();
  std::string what = from ? "the delta from " + from->str() : std::string("the full stream");
  if (manifest.version != version || !a || a->size != bytes)
    return fail("stage.plan-mismatch", "the trusted manifest of " + version.str() + " no longer holds the planned artifact (" +
                                           what + ", " + std::to_string(bytes) + " bytes); check again");
  return *a;
}

}  // namespace

Result<ReleasePlan> plan_fetch(const PlanDecision& decision, const repository::Manifest& manifest,
                               const std::vector<LocalSlot>& slots, const std::vector<repository::Manifest>& intermediates,
                               const std::vector<ReleaseInfo>& releases) {
  const Version& target = manifest.version;
  std::map<Version, Route> best;
  for (size_t i = 0; i < slots.size(); ++i)
    if (slots[i].version != target && !best.count(slots[i].version)) best[slots[i].version] = Route{0, i, {}};
  // The releases a delta may lead to: the target, and the listed, unrevoked intermediates.
  std::vector<const repository::Manifest*> graph{&manifest};
  for (const auto& m : intermediates) {
    const ReleaseInfo* info = find(releases, m.version);
    if (m.version != target && info && !info->revoked) graph.push_back(&m);
  }
  // An earlier release's full stream may start a chain: a host with no slot the deltas start
  // from, or a target published without a full stream of its own.
  for (size_t i = 1; i < graph.size(); ++i) {
    const repository::Artifact* full = graph[i]->full();
    if (!full || best.count(graph[i]->version)) continue;
    best[graph[i]->version] = Route{full->size, slots.size(), {PlanLink{std::nullopt, graph[i]->version, full->size}}};
  }
  // Bellman-Ford over the few versions involved: at most one link per version in a cheapest route.
  for (size_t round = 0; round <= graph.size(); ++round) {
    bool changed = false;
    for (const auto* m : graph) {
      for (const auto& a : m->artifacts) {
        if (a.is_full()) continue;
        auto from = best.find(*a.from);
        if (from == best.end()) continue;
        const Route& base = from->second;
        // A slot's own subvolume must be the delta's parent; a version received on the way is.
        if (base.links.empty() && !repository::delta_applies_to(a, slots[base.start].subvolume)) continue;
        Route next{base.bytes + a.size, base.start, base.links};
        next.links.push_back(PlanLink{*a.from, m->version, a.size});
        auto it = best.find(m->version);
        if (it == best.end() || cheaper(next, it->second)) {
          best[m->version] = std::move(next);
          changed = true;
        }
      }
    }
    if (!changed) break;
  }
  std::optional<Route> route;
  if (auto it = best.find(target); it != best.end()) route = it->second;
  if (const repository::Artifact* full = manifest.full()) {
    Route whole{full->size, slots.size(), {}};
    if (!route || cheaper(whole, *route)) route = whole;
  }
  if (!route)
    return fail("plan.no-artifact", "release " + target.str() +
                                           " has no full stream, and no chain of deltas reaches it from a slot of this host or from an earlier release's full stream");
  ReleasePlan plan{target, false, std::nullopt, route->bytes, decision.reason};
  if (!route->links.empty()) plan.delta_from = route->links.front().from;
  if (route->links.size() > 1) plan.chain = route->links;
  return plan;
}

Result<repository::Artifact> planned_artifact(const ReleasePlan& plan, const repository::Manifest& manifest) {
  if (!plan.chain.empty()) return planned_link(plan.chain.back(), manifest);
  return find_planned(plan.version, plan.delta_from, plan.download_bytes, manifest);
}

Result<repository::Artifact> planned_link(const PlanLink& link, const repository::Manifest& manifest) {
  return find_planned(link.to, link.from, link.bytes, manifest);
}

std::optional<Version> previous_good_deployment(const Version& booted, const std::vector<Version>& candidates,
                                               const std::vector<Version>& denylist,
                                               const std::vector<ReleaseInfo>& releases) {
  std::optional<Version> back;
  for (const auto& v : candidates) {
    if (v >= booted || contains(denylist, v)) continue;
    if (const ReleaseInfo* info = find(releases, v); info && info->revoked) continue;
    if (!back || v > *back) back = v;
  }
  return back;
}

double wariness_from_node_id(std::string_view node_id) {
  std::string hex = repository::sha256_hex(node_id).substr(0, 16);
  uint64_t n = std::stoull(hex, nullptr, 16);
  return static_cast<double>(n >> 11) / static_cast<double>(uint64_t{1} << 53);
}

Result<std::string> node_id(const Config& cfg, const std::string& machine_id_path, const std::string& platform_id) {
  std::string id = cfg.has("node.id") ? cfg.get_string("node.id") : "";
  if (!id.empty()) return id;
  if (!platform_id.empty()) return platform_id;
  auto text = BALLAST_TRY(with_context(read_file(machine_id_path, 4096), "finding the node id"));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.empty()) return fail("node.no-id", machine_id_path + " is empty and node.id is not set");
  return text;
}

Result<double> node_wariness(const Config& cfg, const std::string& machine_id_path, const std::string& platform_id) {
  if (cfg.has("node.wariness")) {
    double w = cfg.get_number("node.wariness");
    if (!(w >= 0 && w <= 1)) return fail("config.invalid", "node.wariness must be in [0,1], not " + std::to_string(w));
    return w;
  }
  return wariness_from_node_id(BALLAST_TRY(with_context(node_id(cfg, machine_id_path, platform_id), "deriving the rollout wariness")));
}

}  // namespace ballast::agent
