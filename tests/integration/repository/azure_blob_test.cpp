// The repository in Azure Blob Storage: Azurite (Microsoft's emulator, from tests/interop; run
// `npm ci` there first) over HTTPS with a throwaway certificate and OAuth on, a container with no
// anonymous access, the repository uploaded with @azure/storage-blob. `ballast fetch` receives a
// full release and a delta from it with a managed identity (tokens from a protocol-following IMDS
// token server on a loopback address) and with a SAS made by generateBlobSASQueryParameters;
// without credentials it fails with a clear 403 and receives nothing; a token the service
// refuses is refreshed and the fetch goes on.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "common/file.hpp"
#include "common/process.hpp"
#include "tests/integration/snapshot/tree_builders.hpp"
#include "tests/integration/support/ballast_cli.hpp"
#include "tests/integration/support/http_servers.hpp"
#include "tests/integration/support/loop_btrfs.hpp"

using namespace ballast;
using namespace ballast::testing;
using namespace std::chrono_literals;

namespace {

const std::string kInterop = std::string(BALLAST_SOURCE_ROOT) + "/tests/interop";

void sh(const std::vector<std::string>& argv) {
  auto r = run_checked(argv);
  INFO((r ? std::string() : r.error().describe()));
  REQUIRE(r);
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Waits for `pred` while a child starts up; the test fails after a generous bound.
template <class Pred>
void wait_for(Pred pred, const char* what) {
  for (int i = 0; i < 600 && !pred(); ++i) std::this_thread::sleep_for(100ms);
  INFO(what);
  REQUIRE(pred());
}

struct Azurite {
  std::string dir = *make_temp_dir("ballast-azurite");
  int port = free_port();
  ChildProcess proc;
  Azurite() {
    REQUIRE(make_test_certificates(dir));
    auto p = ChildProcess::spawn({"node", kInterop + "/node_modules/azurite/dist/src/blob/main.js", "--blobHost",
                                  "127.0.0.1", "--blobPort", std::to_string(port), "--cert", dir + "/server.pem",
                                  "--key", dir + "/server.key", "--oauth", "basic", "--inMemoryPersistence",
                                  "--silent", "--skipApiVersionCheck", "--disableTelemetry"});
    REQUIRE(p);
    proc = std::move(*p);
    wait_for([&] { return run_process({"curl", "-s", "-o", "/dev/null", "--cacert", ca(), endpoint()})->exit_code == 0; },
             "azurite answers");
  }
  ~Azurite() {
    proc.stop();
    (void)remove_tree(dir);
  }
  std::string ca() const { return dir + "/ca.pem"; }
  std::string endpoint() const { return "https://127.0.0.1:" + std::to_string(port) + "/devstoreaccount1"; }
  std::vector<std::string> node(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {"env", "NODE_EXTRA_CA_CERTS=" + ca(), "node", kInterop + "/azure_blob.mjs"};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
};

struct TokenServer {
  std::string dir = *make_temp_dir("ballast-imds");
  ChildProcess proc;
  explicit TokenServer(const std::string& mode = "") {
    std::vector<std::string> argv = {"node", kInterop + "/imds-token-server.mjs", dir + "/port"};
    if (!mode.empty()) argv.push_back(mode);
    auto p = ChildProcess::spawn(argv);
    REQUIRE(p);
    proc = std::move(*p);
    auto listening = wait_for_port_file(dir + "/port");
    INFO("the token server listens");
    REQUIRE(listening);
    port = *listening;
  }
  ~TokenServer() {
    proc.stop();
    (void)remove_tree(dir);
  }
  int port = 0;
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
  int issued() const { return std::stoi(run_checked({"curl", "-s", url() + "/issued"})->out); }
};

struct Published {
  std::unique_ptr<LoopBtrfs> fs;
  std::string top, src, repo, keys;
  // with_1_1 = false: release 1.0 only; add_1_1() publishes 1.1 (with a delta from 1.0) later.
  explicit Published(bool with_1_1 = true) {
    auto f = LoopBtrfs::create();
    REQUIRE(f);
    fs = std::move(*f);
    top = fs->mount_point();
    src = top + "/src";
    repo = fs->base_dir() + "/repo";
    keys = fs->base_dir() + "/keys";
    REQUIRE(make_dirs(src));
    sh({"btrfs", "-q", "subvolume", "create", src + "/work"});
    build_tree_v1(src + "/work");
    write_image_version(src + "/work", "1.0");
    sh({"btrfs", "-q", "subvolume", "snapshot", "-r", src + "/work", src + "/1.0"});
    change_tree_v2(src + "/work");
    write_image_version(src + "/work", "1.1");
    sh({"btrfs", "-q", "subvolume", "snapshot", "-r", src + "/work", src + "/1.1"});
    run_ballast_ok({"repo", "init", repo, "--keys", keys});
    run_ballast_ok({"repo", "add", repo, "--keys", keys, "--version", "1.0", "--subvolume", src + "/1.0", "--zstd-level", "3"});
    if (with_1_1) add_1_1();
  }
  void add_1_1() const {
    run_ballast_ok({"repo", "add", repo, "--keys", keys, "--version", "1.1", "--subvolume", src + "/1.1", "--delta-from",
                    "1.0", "--zstd-level", "3"});
  }
};

// A host: its own state, a config dir, a destination for received subvolumes.
struct Host {
  std::string base, state, conf, dst;
  Host(const Published& p, const std::string& name, const std::string& config) {
    base = p.top + "/" + name;
    state = p.fs->base_dir() + "/" + name + "-state";
    conf = p.fs->base_dir() + "/" + name + "-conf";
    dst = base;
    REQUIRE(make_dirs(dst + "/next"));
    REQUIRE(make_dirs(conf));
    REQUIRE(write_file_atomic(conf + "/10-azure.toml", config));
  }
  ProcessResult fetch(const Published& p, const std::string& url, std::vector<std::string> tail) const {
    std::vector<std::string> a = {"--json", "--config-dir", conf, "--state-dir", state, "fetch", "--repo", url, "--root",
                                  p.repo + "/metadata/1.root.json"};
    a.insert(a.end(), tail.begin(), tail.end());
    return run_ballast(a);
  }
  // The full release, then the delta on top of it.
  void fetch_full_and_delta(const Published& p, const std::string& url) const {
    auto full = fetch(p, url, {"--version", "1.0", dst});
    REQUIRE(full.success());
    CHECK(nlohmann::json::parse(full.out)["artifact"] == "full");
    auto delta = fetch(p, url, {"--from-subvolume", dst + "/1.0", dst + "/next"});
    REQUIRE(delta.success());
    CHECK(nlohmann::json::parse(delta.out)["artifact"] == "delta");
    CHECK(*read_file(dst + "/next/1.1/usr/lib/os-release") == *read_file(p.src + "/1.1/usr/lib/os-release"));
  }
};

std::string config_text(const Azurite& az, const std::string& auth_lines) {
  return "[repository]\nca_bundle = \"" + az.ca() + "\"\n" + auth_lines;
}

}  // namespace

TEST_CASE("a host fetches a release and a delta from a private Blob container with a managed identity or a SAS, "
          "and without credentials gets a clear 403 and nothing",
          "[repository][azure][interop]") {
  INFO("the npm peers are missing: run `npm ci` in " << kInterop);
  REQUIRE(path_exists(kInterop + "/node_modules/azurite/package.json"));
  Published p;
  Azurite az;
  sh(az.node({"upload", az.endpoint(), "releases", p.repo}));
  const std::string url = az.endpoint() + "/releases";

  SECTION("no credentials: a 403 that names the missing setting, nothing received") {
    Host h(p, "anonymous", config_text(az, ""));
    auto r = h.fetch(p, url, {"--version", "1.0", h.dst});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("403") != std::string::npos);
    CHECK(r.err.find("repository.auth") != std::string::npos);
    CHECK_FALSE(path_exists(h.dst + "/1.0"));
  }
  SECTION("a managed identity's token from IMDS") {
    TokenServer imds;
    Host h(p, "identity", config_text(az, "auth = \"managed-identity\"\n[azure]\nimds_endpoint = \"" + imds.url() + "\"\n"));
    h.fetch_full_and_delta(p, url);
    CHECK(imds.issued() == 2);  // one token per process, cached across all of its requests
  }
  SECTION("a token the service refuses is refreshed once and the fetch goes on") {
    TokenServer imds("--first-expired");
    Host h(p, "refreshed", config_text(az, "auth = \"managed-identity\"\n[azure]\nimds_endpoint = \"" + imds.url() + "\"\n"));
    auto full = h.fetch(p, url, {"--version", "1.0", h.dst});
    REQUIRE(full.success());
    CHECK(imds.issued() == 2);
    CHECK(path_exists(h.dst + "/1.0/usr"));
  }
  SECTION("a SAS made by generateBlobSASQueryParameters") {
    auto sas = run_checked(az.node({"sas", az.endpoint(), "releases"}));
    REQUIRE(sas);
    Host h(p, "sas", "");
    REQUIRE(write_file_atomic(h.conf + "/sas", sas->out));
    REQUIRE(write_file_atomic(h.conf + "/10-azure.toml",
                              config_text(az, "auth = \"sas\"\nsas_token_file = \"" + h.conf + "/sas\"\n")));
    h.fetch_full_and_delta(p, url);
  }
  SECTION("an expired SAS: a 403 that says so, nothing received") {
    auto sas = run_checked(az.node({"sas", az.endpoint(), "releases", "-60"}));
    REQUIRE(sas);
    Host h(p, "expired", "");
    REQUIRE(write_file_atomic(h.conf + "/sas", sas->out));
    REQUIRE(write_file_atomic(h.conf + "/10-azure.toml",
                              config_text(az, "auth = \"sas\"\nsas_token_file = \"" + h.conf + "/sas\"\n")));
    auto r = h.fetch(p, url, {"--version", "1.0", h.dst});
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("403") != std::string::npos);
    CHECK(r.err.find("expired") != std::string::npos);
    CHECK_FALSE(path_exists(h.dst + "/1.0"));
  }
}

namespace {

// `ballast repo push` as a publisher runs it: its own config dir (the CA of Azurite's throwaway
// certificate, the IMDS endpoint of the test's token server).
struct Pusher {
  std::string conf = *make_temp_dir("ballast-pusher");
  Pusher(const Azurite& az, const TokenServer& imds) {
    REQUIRE(write_file_atomic(conf + "/10-azure.toml",
                              config_text(az, "[azure]\nimds_endpoint = \"" + imds.url() + "\"\n")));
  }
  ~Pusher() { (void)remove_tree(conf); }
  std::vector<std::string> argv(const std::string& dir, const std::string& url, std::vector<std::string> tail) const {
    std::vector<std::string> a = {"--json", "--config-dir", conf, "repo", "push", dir, "--to", url};
    a.insert(a.end(), tail.begin(), tail.end());
    return a;
  }
  nlohmann::json push(const std::string& dir, const std::string& url, std::vector<std::string> tail) const {
    return nlohmann::json::parse(run_ballast_ok(argv(dir, url, std::move(tail))).out);
  }
};

size_t files_below(const std::string& dir) {
  auto listing = run_checked({"find", dir, "-type", "f"})->out;
  return static_cast<size_t>(std::count(listing.begin(), listing.end(), '\n'));
}

// The gate of tests/interop/blob-gate.mjs: forwards `limit` PUTs to Azurite, holds the rest.
struct Gate {
  std::string dir = *make_temp_dir("ballast-gate");
  ChildProcess proc;
  Gate(const Azurite& az, int limit) {
    auto p = ChildProcess::spawn({"env", "NODE_EXTRA_CA_CERTS=" + az.ca(), "node", kInterop + "/blob-gate.mjs", dir,
                                  "https://127.0.0.1:" + std::to_string(az.port), std::to_string(limit)});
    REQUIRE(p);
    proc = std::move(*p);
    auto listening = wait_for_port_file(dir + "/port");
    INFO("the gate listens");
    REQUIRE(listening);
    port = *listening;
  }
  ~Gate() {
    proc.stop();
    (void)remove_tree(dir);
  }
  int port = 0;
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port) + "/devstoreaccount1"; }
  std::string forwarded() const { return run_checked({"curl", "-s", "http://127.0.0.1:" + std::to_string(port) + "/gate/puts"})->out; }
};

}  // namespace

TEST_CASE("repo push publishes a repository into a private container that a host then fetches from, and a second "
          "push uploads nothing",
          "[repository][azure][interop][push]") {
  REQUIRE(path_exists(kInterop + "/node_modules/azurite/package.json"));
  Published p;
  Azurite az;
  TokenServer imds;
  sh(az.node({"create", az.endpoint(), "releases"}));
  const std::string url = az.endpoint() + "/releases";
  Pusher pusher(az, imds);
  // What hosts read; the publisher's own ballast-repo.json stays home.
  const size_t files = files_below(p.repo + "/metadata") + files_below(p.repo + "/targets");

  auto first = pusher.push(p.repo, url, {"--auth", "managed-identity"});
  CHECK(first["uploaded"] == files);
  CHECK(first["skipped"] == 0);
  Host h(p, "pushed", config_text(az, "auth = \"managed-identity\"\n[azure]\nimds_endpoint = \"" + imds.url() + "\"\n"));
  h.fetch_full_and_delta(p, url);

  SECTION("again with a token file such as az account get-access-token writes: nothing uploaded") {
    auto token = run_checked({"curl", "-s", "-H", "Metadata: true",
                              imds.url() + "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com/"});
    REQUIRE(token);
    REQUIRE(write_file_atomic(pusher.conf + "/token", nlohmann::json::parse(token->out)["access_token"].get<std::string>()));
    auto second = pusher.push(p.repo, url, {"--auth", "azure-cli-token-file", "--token-file", pusher.conf + "/token"});
    CHECK(second["uploaded"] == 0);
    CHECK(second["skipped"] == files);
  }
  SECTION("with a SAS that may write: nothing uploaded; with a read-only SAS into a new container: a 403 that names "
          "the missing permission") {
    auto rw = run_checked(az.node({"sas", az.endpoint(), "releases", "3600", "rcwl"}));
    REQUIRE(rw);
    REQUIRE(write_file_atomic(pusher.conf + "/sas", rw->out));
    auto second = pusher.push(p.repo, url, {"--auth", "sas", "--sas-token-file", pusher.conf + "/sas"});
    CHECK(second["uploaded"] == 0);

    sh(az.node({"create", az.endpoint(), "readonly"}));
    auto ro = run_checked(az.node({"sas", az.endpoint(), "readonly"}));
    REQUIRE(ro);
    REQUIRE(write_file_atomic(pusher.conf + "/sas", ro->out));
    auto refused = run_ballast(pusher.argv(p.repo, az.endpoint() + "/readonly", {"--auth", "sas", "--sas-token-file", pusher.conf + "/sas"}));
    CHECK(refused.exit_code == 1);
    CHECK(refused.err.find("403") != std::string::npos);
    CHECK(refused.err.find("AuthorizationPermissionMismatch") != std::string::npos);
  }
  SECTION("bad input: no repository, no timestamp, no container in the URL: an error and nothing uploaded") {
    auto missing = run_ballast(pusher.argv(p.top + "/nothing", url, {"--auth", "managed-identity"}));
    CHECK(missing.exit_code == 1);
    CHECK(missing.err.find("not a repository") != std::string::npos);
    auto bad_url = run_ballast(pusher.argv(p.repo, az.endpoint().substr(0, az.endpoint().rfind('/')), {"--auth", "managed-identity"}));
    CHECK(bad_url.exit_code == 1);
    CHECK(bad_url.err.find("no container") != std::string::npos);
    CHECK(imds.issued() == 3);  // the first push and the host's two fetches: the refused pushes asked for none
  }
}

TEST_CASE("a push killed half-way leaves a repository that hosts read consistently, and the next push completes it",
          "[repository][azure][interop][push]") {
  REQUIRE(path_exists(kInterop + "/node_modules/azurite/package.json"));
  Published p(false);
  Azurite az;
  TokenServer imds;
  sh(az.node({"create", az.endpoint(), "releases"}));
  Pusher pusher(az, imds);
  pusher.push(p.repo, az.endpoint() + "/releases", {"--auth", "managed-identity"});
  Host h(p, "reader", config_text(az, "auth = \"managed-identity\"\n[azure]\nimds_endpoint = \"" + imds.url() + "\"\n"));

  p.add_1_1();
  {
    Gate gate(az, 1);  // one new chunk goes through, the next upload hangs until the kill
    auto child = ChildProcess::spawn([&] {
      auto a = pusher.argv(p.repo, gate.endpoint() + "/releases", {"--auth", "managed-identity", "--parallel", "1"});
      a.insert(a.begin(), kBallastExecutable);
      return a;
    }());
    REQUIRE(child);
    wait_for([&] { return path_exists(gate.dir + "/held"); }, "the push reaches its second upload");
    ::kill(child->pid(), SIGKILL);
    child->stop();
    CHECK(gate.forwarded().find("/devstoreaccount1/releases/targets/chunks/") == 0);
    CHECK(read_file(gate.dir + "/held")->find("/devstoreaccount1/releases/targets/chunks/") == 0);
  }
  const std::string url = az.endpoint() + "/releases";
  auto old = h.fetch(p, url, {h.dst});
  REQUIRE(old.success());
  CHECK(nlohmann::json::parse(old.out)["version"] == "1.0");

  auto rest = pusher.push(p.repo, url, {"--auth", "managed-identity"});
  CHECK(rest["uploaded"] > 0);
  CHECK(rest["skipped"] > 0);  // release 1.0's files and the chunk that went through before the kill
  auto next = h.fetch(p, url, {"--from-subvolume", h.dst + "/1.0", h.dst + "/next"});
  REQUIRE(next.success());
  CHECK(nlohmann::json::parse(next.out)["version"] == "1.1");
}
