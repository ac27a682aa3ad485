// Credentials for HTTP requests, one place for them: the TUF metadata client, the chunk fetcher
// and the event outbox all ask a CredentialProvider how to authorize a request. The engines only
// know this interface and the providers that need no platform (none, bearer-file, sas); agent/
// plugs in the cloud's (agent/azure/managed_identity.hpp). Secrets never reach a log line: an
// Authorization is applied to the request and dropped.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace ballast::repository {

// How one request is authorized.
struct Authorization {
  std::vector<std::string> headers;  // "Name: value", e.g. "Authorization: Bearer …"
  std::string query;                 // appended to the URL's query (a SAS token), without '?'
};

class CredentialProvider {
 public:
  virtual ~CredentialProvider() = default;
  // What the next request carries; a failure (no token file, the token service down) is the
  // request's failure.
  virtual Result<Authorization> authorize() = 0;
  // The server answered 401: forget what is cached. True when a fresh authorize() may succeed
  // where the last one failed, so the request is repeated once.
  virtual bool refresh_after_unauthorized() { return false; }
  // Appended to a 403's error: the likely cause for this kind of credential.
  virtual std::string forbidden_hint() const { return ""; }
};

// Anonymous requests (auth = "none").
std::shared_ptr<CredentialProvider> no_credentials();
// "Authorization: Bearer <token>" with the token read from `path` at every request, so a rotated
// token is picked up (auth = "bearer-file"): header_file_credentials with that prefix.
std::shared_ptr<CredentialProvider> bearer_file_credentials(std::string path);
// "<prefix><secret>" as a header, the secret read from `path` at every request (Event Grid's
// "aeg-sas-key: " key); `what` names the secret in errors.
std::shared_ptr<CredentialProvider> header_file_credentials(std::string prefix, std::string path, std::string what);
// A SAS token from `path` appended to every request's query; the file is read again when it
// changes (auth = "sas"). A leading '?' in the file is ignored.
std::shared_ptr<CredentialProvider> sas_credentials(std::string path);

// `url` with `query` appended ('?' or '&' as needed); `url` itself when `query` is empty.
std::string with_query(const std::string& url, const std::string& query);

// Whether the server rejected the credential itself (so a refreshed one may pass): a 401, or a
// 403 whose Azure error code is AuthenticationFailed (Azurite's answer to an expired token,
// where Azure Storage answers 401) — not a missing permission.
bool credentials_rejected(long status, const std::string& body);

// The error of a 403 from `url`: the service's error code when the body names one (Azure
// Storage's <Code>), and the likely cause: a missing role assignment when the code says so,
// else what `credentials` suggests (an expired SAS, no credentials at all).
std::string forbidden_message(const std::string& url, const std::string& body, const CredentialProvider* credentials);

// The header a Blob Storage request carries: the REST API version bearer tokens need
// (Azure Storage refuses OAuth before 2017-11-09). Harmless to any other server.
inline constexpr const char* kBlobApiVersionHeader = "x-ms-version: 2021-08-06";

// For tests: hands out `authorization`; counts calls; refresh_after_unauthorized() returns
// `refreshable` and counts too.
class FakeCredentialProvider final : public CredentialProvider {
 public:
  Authorization authorization;
  bool refreshable = false;
  int authorized = 0, refreshed = 0;
  Result<Authorization> authorize() override {
    ++authorized;
    return authorization;
  }
  bool refresh_after_unauthorized() override {
    ++refreshed;
    return refreshable;
  }
};

}  // namespace ballast::repository
