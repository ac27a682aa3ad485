#include "agent/azure/managed_identity.hpp"

#include <nlohmann/json.hpp>

#include "common/clock.hpp"
#include "repository/url.hpp"

namespace ballast::agent::azure {
namespace {

std::string trim_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

// expires_on is a string of Unix seconds from IMDS (a number from some emulators). A time before
// 1970 or beyond what the clock can hold is no expiry.
std::optional<int64_t> unix_seconds(const nlohmann::json& v) {
  int64_t seconds = -1;
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() < static_cast<uint64_t>(kLatestUnixSeconds)) seconds = v.get<int64_t>();
  } else if (v.is_number_integer()) {
    seconds = v.get<int64_t>();
  } else if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (s.empty() || s.size() > 12 || s.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    seconds = std::stoll(s);
  }
  if (seconds < 0 || seconds >= kLatestUnixSeconds) return std::nullopt;
  return seconds;
}

}  // namespace

ManagedIdentityCredentials::ManagedIdentityCredentials(ManagedIdentityOptions options,
                                                       std::shared_ptr<repository::HttpClient> imds,
                                                       const Clock& clock)
    : options_(std::move(options)), imds_(std::move(imds)), clock_(clock) {}

std::string ManagedIdentityCredentials::token_url() const {
  std::string url = trim_slash(options_.imds_endpoint) +
                    "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" +
                    repository::percent_encode(options_.resource);
  if (!options_.client_id.empty()) url += "&client_id=" + repository::percent_encode(options_.client_id);
  return url;
}

Result<repository::Authorization> ManagedIdentityCredentials::authorize() {
  std::lock_guard lock(mu_);
  auto now = clock_.now();
  if (token_.empty() || now + options_.refresh_margin >= expires_) {
    // The response holds the token: its body never goes into an error or a log line.
    auto resp = imds_->get(token_url(), 1 << 20, {"Metadata: true"});
    if (!resp)
      return fail("auth.managed-identity", "no managed identity token for " + options_.resource + " from IMDS: " +
                                               resp.error().describe() +
                                               " (is a managed identity assigned to this VM?)");
    auto doc = nlohmann::json::parse(resp->body, nullptr, false);
    if (!doc.is_object() || !doc.contains("access_token") || !doc["access_token"].is_string() ||
        !doc.contains("expires_on"))
      return fail("auth.managed-identity", "IMDS's token response for " + options_.resource + " is not a token");
    auto expires_on = unix_seconds(doc["expires_on"]);
    if (!expires_on)
      return fail("auth.managed-identity", "IMDS's token response for " + options_.resource + " has no valid expires_on");
    token_ = doc["access_token"].get<std::string>();
    expires_ = time_point_of_unix_seconds(*expires_on);
  }
  return repository::Authorization{{"Authorization: Bearer " + token_}, ""};
}

bool ManagedIdentityCredentials::refresh_after_unauthorized() {
  std::lock_guard lock(mu_);
  token_.clear();
  return true;
}

std::string ManagedIdentityCredentials::forbidden_hint() const {
  std::string who = options_.client_id.empty() ? "the VM's system-assigned managed identity"
                                               : "the managed identity with client id " + options_.client_id;
  return who + " has no role assignment allowing this (Storage Blob Data Reader on the container to read; "
               "EventGrid Data Sender on the topic to report)";
}

std::shared_ptr<repository::HttpClient> make_imds_http_client() {
  repository::HttpSettings s;
  s.connect_timeout = std::chrono::seconds(3);
  s.no_proxy = true;  // IMDS answers only on the link itself; a proxy from the environment must not see it
  s.retries = 4;  // IMDS asks for retries on 429 and 5xx (it throttles at 5 requests per second)
  s.backoff_base = std::chrono::milliseconds(500);
  s.backoff_max = std::chrono::seconds(8);
  return repository::make_curl_http_client(s);
}

}  // namespace ballast::agent::azure
