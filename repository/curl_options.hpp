// HttpSettings as libcurl options: the one translation every transfer of the repository's
// client goes through (the metadata client in http.cpp and the chunk fetcher alike), so a
// setting (CA bundle, client certificate, timeouts, bandwidth) cannot apply to one and not the other.
#pragma once

#include <curl/curl.h>

#include <cstdint>

#include "repository/http.hpp"

namespace ballast::repository {

// Sets `url`, the allowed protocols (https, http, file; no redirects), no signals, and every
// field of `settings` on `handle`. `max_recv_speed` replaces settings.max_bandwidth for a
// transfer that shares the budget with others (0: unlimited).
void apply_http_settings(CURL* handle, const std::string& url, const HttpSettings& settings, uint64_t max_recv_speed);

}  // namespace ballast::repository
