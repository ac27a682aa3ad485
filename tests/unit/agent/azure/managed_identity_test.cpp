#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "agent/azure/managed_identity.hpp"
#include "common/log.hpp"

using namespace ballast;
using namespace ballast::agent::azure;
using namespace std::chrono_literals;

namespace {

struct TokenServer {
  std::shared_ptr<repository::FakeHttpClient> http = std::make_shared<repository::FakeHttpClient>();
  FakeClock clock;
  int issued = 0;
  std::vector<long> statuses;  // answered first, one per request, before tokens are issued
  TokenServer() {
    http->on_get = [this](const std::string&, const std::vector<std::string>& headers) -> Result<repository::HttpResponse> {
      if (std::find(headers.begin(), headers.end(), "Metadata: true") == headers.end())
        return repository::HttpResponse{400, "{\"error\":\"invalid_request\"}"};
      if (!statuses.empty()) {
        long s = statuses.front();
        statuses.erase(statuses.begin());
        return repository::HttpResponse{s, ""};
      }
      ++issued;
      auto expires = std::chrono::duration_cast<std::chrono::seconds>((clock.now() + 1h).time_since_epoch()).count();
      nlohmann::json j{{"access_token", "token-" + std::to_string(issued)},
                       {"expires_on", std::to_string(expires)},
                       {"resource", "https://storage.azure.com/"},
                       {"token_type", "Bearer"}};
      return repository::HttpResponse{200, j.dump()};
    };
  }
  ManagedIdentityCredentials provider(std::string client_id = "") {
    ManagedIdentityOptions o;
    o.imds_endpoint = "http://127.0.0.9:1234/";
    o.resource = kStorageAudience;
    o.client_id = std::move(client_id);
    return ManagedIdentityCredentials(o, http, clock);
  }
};

}  // namespace

TEST_CASE("a managed identity token comes from IMDS's token endpoint with Metadata: true", "[azure][credentials]") {
  TokenServer s;
  auto p = s.provider("11111111-2222");
  auto a = p.authorize();
  REQUIRE(a);
  CHECK(a->headers == std::vector<std::string>{"Authorization: Bearer token-1"});
  CHECK(a->query.empty());
  REQUIRE(s.http->requests.size() == 1);
  CHECK(s.http->requests[0] ==
        "http://127.0.0.9:1234/metadata/identity/oauth2/token?api-version=2018-02-01"
        "&resource=https%3A%2F%2Fstorage.azure.com%2F&client_id=11111111-2222");
  CHECK(p.forbidden_hint().find("11111111-2222") != std::string::npos);
}

TEST_CASE("a managed identity token is cached until a few minutes before it expires", "[azure][credentials]") {
  TokenServer s;
  auto p = s.provider();
  CHECK(p.authorize()->headers[0] == "Authorization: Bearer token-1");
  s.clock.advance(50min);
  CHECK(p.authorize()->headers[0] == "Authorization: Bearer token-1");
  CHECK(s.issued == 1);
  s.clock.advance(6min);  // 4 minutes before expires_on: inside the margin
  CHECK(p.authorize()->headers[0] == "Authorization: Bearer token-2");
  CHECK(s.issued == 2);
}

TEST_CASE("a 401 drops the cached managed identity token so the repeat carries a new one", "[azure][credentials]") {
  TokenServer s;
  auto p = s.provider();
  CHECK(p.authorize()->headers[0] == "Authorization: Bearer token-1");
  CHECK(p.refresh_after_unauthorized());
  CHECK(p.authorize()->headers[0] == "Authorization: Bearer token-2");
}

TEST_CASE("without a token from IMDS the request fails with a clear error that holds no token", "[azure][credentials]") {
  TokenServer s;
  auto p = s.provider();
  SECTION("IMDS refuses") {
    s.statuses = {400};
    auto a = p.authorize();
    REQUIRE_FALSE(a);
    CHECK(a.error().code == "auth.managed-identity");
    CHECK(a.error().describe().find("managed identity") != std::string::npos);
  }
  SECTION("IMDS answers something that is not a token") {
    s.http->on_get = [](const std::string&, const std::vector<std::string>&) -> Result<repository::HttpResponse> {
      return repository::HttpResponse{200, "{\"access_token\":\"secret-value\",\"expires_on\":\"soon\"}"};
    };
    auto a = p.authorize();
    REQUIRE_FALSE(a);
    CHECK(a.error().code == "auth.managed-identity");
    CHECK(a.error().describe().find("secret-value") == std::string::npos);
  }
  SECTION("IMDS answers an expiry before 1970 or beyond what the clock can hold (2262)") {
    auto expires_on = GENERATE(as<nlohmann::json>{}, "999999999999999999", "253402300800", "32503680000",
                               18446744073709551615ull, 9223372036854775807ll, 9223372037ll, -1);
    s.http->on_get = [expires_on](const std::string&, const std::vector<std::string>&) -> Result<repository::HttpResponse> {
      return repository::HttpResponse{200, nlohmann::json{{"access_token", "secret-value"}, {"expires_on", expires_on}}.dump()};
    };
    auto a = p.authorize();
    REQUIRE_FALSE(a);
    CHECK(a.error().code == "auth.managed-identity");
    CHECK_THAT(a.error().describe(), Catch::Contains("expires_on"));
  }
}
