#include <catch2/catch.hpp>

#include <sys/stat.h>

#include "common/file.hpp"
#include "repository/credentials.hpp"

using namespace ballast;
using namespace ballast::repository;

namespace {

struct SecretDir {
  std::string path = *make_temp_dir("credentials-unit");
  ~SecretDir() { (void)remove_tree(path); }
};

}  // namespace

TEST_CASE("a SAS token from its file goes into every request's query and is re-read when the file changes",
          "[credentials]") {
  SecretDir d;
  const std::string file = d.path + "/sas";
  REQUIRE(write_file_atomic(file, "?sv=2021-08-06&sig=first\n"));
  auto sas = sas_credentials(file);
  auto a = sas->authorize();
  REQUIRE(a);
  CHECK(a->query == "sv=2021-08-06&sig=first");
  CHECK(a->headers.empty());
  CHECK(with_query("https://acct.blob.core.windows.net/c/metadata/timestamp.json", a->query) ==
        "https://acct.blob.core.windows.net/c/metadata/timestamp.json?sv=2021-08-06&sig=first");
  CHECK(with_query("https://h/x?a=1#f", "b=2") == "https://h/x?a=1&b=2#f");
  CHECK(with_query("https://h/x", "") == "https://h/x");

  REQUIRE(write_file_atomic(file, "sv=2021-08-06&sig=second-and-longer"));  // a rename: a new inode
  CHECK(sas->authorize()->query == "sv=2021-08-06&sig=second-and-longer");

  REQUIRE(remove_if_exists(file));
  auto gone = sas->authorize();
  REQUIRE_FALSE(gone);
  CHECK(gone.error().code == "auth.unreadable");
  CHECK(sas->forbidden_hint().find("expired") != std::string::npos);
}

TEST_CASE("a bearer token or an Event Grid key is read from its file at every request", "[credentials]") {
  SecretDir d;
  const std::string file = d.path + "/token";
  REQUIRE(write_file_atomic(file, "t0ken\n"));
  auto bearer = bearer_file_credentials(file);
  CHECK(bearer->authorize()->headers == std::vector<std::string>{"Authorization: Bearer t0ken"});
  REQUIRE(write_file_atomic(file, "rotated"));
  CHECK(bearer->authorize()->headers == std::vector<std::string>{"Authorization: Bearer rotated"});
  auto key = header_file_credentials("aeg-sas-key: ", file, "Event Grid access key");
  CHECK(key->authorize()->headers == std::vector<std::string>{"aeg-sas-key: rotated"});
  REQUIRE(write_file_atomic(file, "two\nlines"));
  CHECK(key->authorize().error().code == "auth.malformed");
  REQUIRE(write_file_atomic(file, "\n"));
  CHECK(bearer->authorize().error().code == "auth.empty");
  CHECK(no_credentials()->authorize()->headers.empty());
}

TEST_CASE("a 403 names the likely cause: a missing role assignment, an expired SAS, no credentials", "[credentials]") {
  const std::string url = "https://acct.blob.core.windows.net/c/metadata/timestamp.json";
  auto role = forbidden_message(
      url, "<?xml version=\"1.0\"?><Error><Code>AuthorizationPermissionMismatch</Code><Message>x</Message></Error>",
      nullptr);
  CHECK(role.find("AuthorizationPermissionMismatch") != std::string::npos);
  CHECK(role.find("Storage Blob Data Reader") != std::string::npos);
  SecretDir d;
  auto sas = sas_credentials(d.path + "/sas");
  auto expired = forbidden_message(url, "<Error><Code>AuthenticationFailed</Code></Error>", sas.get());
  CHECK(expired.find("AuthenticationFailed") != std::string::npos);
  CHECK(expired.find("SAS token") != std::string::npos);
  auto anonymous = forbidden_message(url, "", no_credentials().get());
  CHECK(anonymous.find("repository.auth") != std::string::npos);
  CHECK(anonymous.rfind(url + ": HTTP 403", 0) == 0);
}
