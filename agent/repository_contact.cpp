#include "agent/repository_contact.hpp"

#include <nlohmann/json.hpp>

#include "common/file.hpp"
#include "common/json_member.hpp"
#include "repository/tuf/metadata.hpp"

namespace ballast::agent {

namespace {

constexpr const char* kFile = "repository.json";

nlohmann::json time_json(const std::optional<RepositoryContact::TimePoint>& t) {
  return t ? nlohmann::json(repository::tuf::format_time(*t)) : nlohmann::json(nullptr);
}

Result<std::optional<RepositoryContact::TimePoint>> time_from(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return std::optional<RepositoryContact::TimePoint>();
  if (!j[key].is_string()) return fail("state.corrupt", std::string(kFile) + ": " + key + " is not a time");
  return std::optional(BALLAST_TRY(with_context(repository::tuf::parse_time(j[key].get<std::string>()), kFile)));
}

}  // namespace

RepositoryContact next_contact(RepositoryContact contact, const std::optional<Error>& failure, RepositoryContact::TimePoint now) {
  if (!failure) {
    contact.last_success = now;
    contact.failing_since.reset();
    contact.last_error.clear();
  } else {
    if (!contact.failing_since) contact.failing_since = now;
    contact.last_error = failure->code;
  }
  return contact;
}

Result<RepositoryContact> load_repository_contact(const std::string& state_dir) {
  auto text = read_file(path_join(state_dir, kFile), 64 << 10);
  if (!text && text.error().code == "io.not-found") return RepositoryContact{};
  if (!text) return tl::unexpected(text.error());
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object()) return fail("state.corrupt", std::string(kFile) + " is not a JSON object");
  RepositoryContact c;
  c.last_success = BALLAST_TRY(time_from(j, "lastSuccess"));
  c.failing_since = BALLAST_TRY(time_from(j, "failingSince"));
  if (j.contains("lastError") && !j["lastError"].is_string() && !j["lastError"].is_null())
    return fail("state.corrupt", std::string(kFile) + ": lastError is not a string");
  c.last_error = string_member(j, "lastError");
  return c;
}

Status record_repository_contact(const std::string& state_dir, const std::optional<Error>& failure,
                                 RepositoryContact::TimePoint now) {
  auto c = next_contact(BALLAST_TRY(load_repository_contact(state_dir)), failure, now);
  nlohmann::json j{{"lastSuccess", time_json(c.last_success)},
                   {"failingSince", time_json(c.failing_since)},
                   {"lastError", c.last_error}};
  return write_file_atomic(path_join(state_dir, kFile), j.dump() + "\n", 0644);
}

std::optional<std::string> repository_unreachable(const RepositoryContact& contact, RepositoryContact::TimePoint now,
                                                  std::chrono::milliseconds threshold) {
  if (!contact.failing_since || now - *contact.failing_since <= threshold) return std::nullopt;
  auto minutes = std::chrono::duration_cast<std::chrono::minutes>(now - *contact.failing_since).count();
  return "repository unreachable since " + repository::tuf::format_time(*contact.failing_since) + " (" +
         std::to_string(minutes) + " min): " + contact.last_error;
}

}  // namespace ballast::agent
