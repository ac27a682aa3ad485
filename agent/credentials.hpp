// The credentials the configuration names, decided once here for every caller: the repository's
// (`repository.auth`: the TUF client, the chunk fetcher, `ballast tuf`, `ballast fetch`, the
// daemon) and the event outbox's (`report.auth`). Azure's managed identity comes from
// agent/azure; the engines only see repository::CredentialProvider.
#pragma once

#include <memory>
#include <string>

#include "common/config.hpp"
#include "repository/credentials.hpp"
#include "repository/http.hpp"

namespace ballast::agent {

// The provider `<section>.auth` names, `section` being "repository" or "report":
//   none; bearer-file (<section>.bearer_token_file; empty: nothing sent); sas
//   (<section>.sas_token_file); aeg-sas-key (report.aeg_sas_key_file, Event Grid's key header);
//   managed-identity (IMDS at azure.imds_endpoint, <section>.identity_client_id, the audience of
//   Blob Storage for the repository, of Event Grid for reports).
// A setting that cannot work (sas without a file) fails every request with a clear error.
std::shared_ptr<repository::CredentialProvider> credentials_from_config(const Config& config,
                                                                       const std::string& section);

// repository.* as the HTTP settings of every repository request (TLS, timeouts, retries,
// bandwidth, credentials; Azure's REST version header when the auth is Azure's).
repository::HttpSettings repository_http_settings(const Config& config);

}  // namespace ballast::agent
