// `ballast health --npd`: Node Problem Detector's custom-plugin protocol (exit 0: no problem,
// 1: a problem, any other: unknown; the first line of stdout is the condition's message), so a
// custom-plugin-monitor can set a BallastUpdateProblem NodeCondition (README: Kubernetes).
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "agent/health.hpp"
#include "agent/repository_contact.hpp"

namespace ballast::agent::kubernetes {

struct NpdVerdict {
  int exit_code = 0;    // 0 OK, 1 problem, 2 unknown
  std::string message;  // one line
};

// The repository's side: the daemon's record of reaching it (<state>/repository.json; nullopt when
// unreadable), now, and how long it may stay unreachable (health.repository_unreachable_after).
struct RepositoryReach {
  std::optional<RepositoryContact> contact = RepositoryContact{};
  RepositoryContact::TimePoint now{};
  std::chrono::milliseconds threshold{std::chrono::hours(1)};
};

// From the flow record (<state>/flow.json; nullopt when unreadable), the repository's record and
// the health checks run now: a failed update or a rollback still standing (the last finished
// update's result, until a later one commits), a repository unreachable for longer than the
// threshold, or a required health check failing, is a problem.
NpdVerdict npd_verdict(const std::optional<nlohmann::json>& flow, const std::optional<HealthReport>& health,
                       const RepositoryReach& repository = {});

}  // namespace ballast::agent::kubernetes
