// When the agent last reached its update repository, and since when it fails to: the outcome of
// every TUF refresh (HostReleaseSource::check, the one place the daemon contacts the repository on
// its own) is recorded in <state>/repository.json, so that `ballast health --npd` can tell a
// repository unreachable for longer than health.repository_unreachable_after.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "common/result.hpp"

namespace ballast::agent {

struct RepositoryContact {
  using TimePoint = std::chrono::system_clock::time_point;
  std::optional<TimePoint> last_success;
  std::optional<TimePoint> failing_since;  // the first failure after the last success
  std::string last_error;                  // the stable code of the last failure
};

// The record after one attempt: a success clears the failure, the first failure after a success
// (or ever) starts it, a later one only updates the error.
// `failure`: nullopt when the repository was reached.
RepositoryContact next_contact(RepositoryContact contact, const std::optional<Error>& failure, RepositoryContact::TimePoint now);

// <state>/repository.json; none yet is an empty record.
Result<RepositoryContact> load_repository_contact(const std::string& state_dir);
// Loads, applies next_contact() and writes the record atomically.
Status record_repository_contact(const std::string& state_dir, const std::optional<Error>& failure,
                                 RepositoryContact::TimePoint now);

// The problem, when the repository has not been reached for longer than `threshold`:
// "repository unreachable since <RFC 3339> (<N> min): <last error code>".
std::optional<std::string> repository_unreachable(const RepositoryContact& contact, RepositoryContact::TimePoint now,
                                                  std::chrono::milliseconds threshold);

}  // namespace ballast::agent
