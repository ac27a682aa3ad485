// Azure managed identity as a CredentialProvider: an OAuth token for `resource` from the
// Instance Metadata Service's token endpoint, the way every Azure SDK gets one on a VM:
//   GET {imds}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=R[&client_id=C]
//   header "Metadata: true" → {"access_token":…, "expires_on":"<unix seconds>", …}
// No secret lives on the disk. The token is cached until `refresh_margin` before expires_on,
// dropped on a 401 (the request is then repeated once with a new one), and never logged. IMDS's
// 429 and 5xx are retried with backoff by the HttpClient it is given (repository/retry_policy.hpp).
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "common/clock.hpp"
#include "repository/credentials.hpp"
#include "repository/http.hpp"

namespace ballast::agent::azure {

// Audiences (IMDS's `resource`) of the services ballast talks to.
inline constexpr const char* kStorageAudience = "https://storage.azure.com/";
inline constexpr const char* kEventGridAudience = "https://eventgrid.azure.net";

struct ManagedIdentityOptions {
  std::string imds_endpoint = "http://169.254.169.254";  // config azure.imds_endpoint
  std::string resource;                                  // the audience, e.g. kStorageAudience
  std::string client_id;  // a user-assigned identity's client id; empty: the system-assigned one
  std::chrono::seconds refresh_margin{std::chrono::minutes(5)};
};

class ManagedIdentityCredentials final : public repository::CredentialProvider {
 public:
  // `imds` must not itself carry credentials: it is the token's source.
  ManagedIdentityCredentials(ManagedIdentityOptions options, std::shared_ptr<repository::HttpClient> imds,
                             const Clock& clock);
  Result<repository::Authorization> authorize() override;
  bool refresh_after_unauthorized() override;
  std::string forbidden_hint() const override;

  // The token endpoint's URL for these options (no secret in it).
  std::string token_url() const;

 private:
  ManagedIdentityOptions options_;
  std::shared_ptr<repository::HttpClient> imds_;
  const Clock& clock_;
  std::mutex mu_;
  std::string token_;
  std::chrono::system_clock::time_point expires_{};
};

// An HttpClient for IMDS: plain HTTP on a link-local address, short timeouts, retries with backoff.
std::shared_ptr<repository::HttpClient> make_imds_http_client();

}  // namespace ballast::agent::azure
