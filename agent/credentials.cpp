#include "agent/credentials.hpp"

#include "agent/azure/managed_identity.hpp"

namespace ballast::agent {
namespace {

class Misconfigured final : public repository::CredentialProvider {
 public:
  explicit Misconfigured(std::string why) : why_(std::move(why)) {}
  Result<repository::Authorization> authorize() override { return fail("config.auth", why_); }

 private:
  std::string why_;
};

bool azure_auth(const std::string& auth) { return auth == "sas" || auth == "managed-identity"; }

}  // namespace

std::shared_ptr<repository::CredentialProvider> credentials_from_config(const Config& config,
                                                                       const std::string& section) {
  const std::string auth = config.get_string(section + ".auth");
  auto file_key = [&](const std::string& key) -> std::string {
    // Not every section has every key (the repository has no aeg_sas_key_file).
    return config.entries().count(section + "." + key) ? config.get_string(section + "." + key) : "";
  };
  if (auth == "bearer-file") {
    auto path = file_key("bearer_token_file");
    return path.empty() ? repository::no_credentials() : repository::bearer_file_credentials(path);
  }
  if (auth == "sas") {
    auto path = file_key("sas_token_file");
    if (path.empty()) return std::make_shared<Misconfigured>(section + ".auth = \"sas\" needs " + section + ".sas_token_file");
    return repository::sas_credentials(path);
  }
  if (auth == "aeg-sas-key") {
    auto path = file_key("aeg_sas_key_file");
    if (path.empty())
      return std::make_shared<Misconfigured>(section + ".auth = \"aeg-sas-key\" needs " + section + ".aeg_sas_key_file");
    return repository::header_file_credentials("aeg-sas-key: ", path, "Event Grid access key");
  }
  if (auth == "managed-identity") {
    static const SystemClock clock;
    azure::ManagedIdentityOptions o;
    o.imds_endpoint = config.get_string("azure.imds_endpoint");
    o.resource = section == "report" ? azure::kEventGridAudience : azure::kStorageAudience;
    o.client_id = file_key("identity_client_id");
    return std::make_shared<azure::ManagedIdentityCredentials>(o, azure::make_imds_http_client(), clock);
  }
  return repository::no_credentials();
}

repository::HttpSettings repository_http_settings(const Config& cfg) {
  repository::HttpSettings s;
  s.ca_bundle = cfg.get_string("repository.ca_bundle");
  s.client_cert = cfg.get_string("repository.client_cert");
  s.client_key = cfg.get_string("repository.client_key");
  s.max_bandwidth = static_cast<uint64_t>(cfg.get_int("repository.max_bandwidth"));
  s.low_speed_limit = static_cast<uint64_t>(cfg.get_int("repository.low_speed_limit"));
  s.low_speed_time = std::chrono::duration_cast<std::chrono::seconds>(cfg.get_duration("repository.low_speed_time"));
  s.retries = static_cast<int>(cfg.get_int("repository.retries"));
  s.credentials = credentials_from_config(cfg, "repository");
  if (azure_auth(cfg.get_string("repository.auth"))) s.headers.push_back(repository::kBlobApiVersionHeader);
  return s;
}

}  // namespace ballast::agent
