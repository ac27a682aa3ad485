#include "tests/integration/support/http_servers.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <sstream>
#include <thread>

#include "common/file.hpp"
#include "common/process.hpp"

extern char** environ;

namespace ballast::testing {

using namespace std::chrono_literals;

namespace {

bool port_open(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool okc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return okc;
}

// A port nothing listens on right now (the kernel's pick for an ephemeral bind).
Result<int> free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return fail_errno("test.port", errno, "cannot find a free port");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace

Result<ChildProcess> ChildProcess::spawn(const std::vector<std::string>& argv, const std::string& stderr_path) {
  ChildProcess c;
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (!stderr_path.empty()) posix_spawn_file_actions_addopen(&fa, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int rc = posix_spawnp(&c.pid_, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    c.pid_ = -1;
    return fail_errno("test.spawn", rc, "cannot start " + argv[0]);
  }
  return c;
}

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
  if (this != &o) {
    stop();
    pid_ = o.pid_;
    o.pid_ = -1;
  }
  return *this;
}

void ChildProcess::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(20ms);
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

Result<std::unique_ptr<FaultyHttpServer>> FaultyHttpServer::start(const std::string& root) {
  auto s = std::unique_ptr<FaultyHttpServer>(new FaultyHttpServer());
  s->dir_ = BALLAST_TRY(make_temp_dir("ballast-faulty-http"));
  BALLAST_CHECK(s->set_rules(nlohmann::json::object()));
  std::string port_file = s->dir_ + "/port";
  s->proc_ = BALLAST_TRY(ChildProcess::spawn({"python3", BALLAST_SOURCE_ROOT "/tests/integration/support/faulty_http_server.py",
                                              "--root", root, "--rules", s->dir_ + "/rules.json", "--log",
                                              s->dir_ + "/requests.log", "--port-file", port_file}));
  s->port_ = BALLAST_TRY(with_context(wait_for_port_file(port_file), "the faulty HTTP server did not start"));
  return s;
}

FaultyHttpServer::~FaultyHttpServer() {
  proc_.stop();
  if (!dir_.empty()) (void)remove_tree(dir_);
}

Status FaultyHttpServer::set_rules(const nlohmann::json& rules) {
  return write_file_atomic(dir_ + "/rules.json", rules.dump());
}

std::vector<nlohmann::json> FaultyHttpServer::requests() const {
  std::vector<nlohmann::json> out;
  auto text = read_file(dir_ + "/requests.log");
  if (!text) return out;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

uint64_t FaultyHttpServer::bytes_served() const {
  uint64_t n = 0;
  for (const auto& r : requests()) n += r["bytes"].get<uint64_t>();
  return n;
}

Result<int> wait_for_port_file(const std::string& port_file) {
  // The servers write the file by rename, but one that creates it in place (or an old one) can be
  // seen empty: only a whole port number counts. The bound only guards a server that never starts.
  for (int i = 0; i < 6000; ++i) {
    if (auto text = read_file(port_file)) {
      std::string digits = *text;
      while (!digits.empty() && std::isspace(static_cast<unsigned char>(digits.back()))) digits.pop_back();
      if (!digits.empty() && digits.size() <= 5 && std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c) != 0; }))
        return std::stoi(digits);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return fail("test.server-not-started", "no port number in " + port_file + " after 60 s");
}

Status make_test_certificates(const std::string& d) {
  auto ossl = [&](std::vector<std::string> args) -> Status {
    args.insert(args.begin(), "openssl");
    BALLAST_CHECK(run_checked(args, SpawnOptions{.cwd = d}));
    return ok();
  };
  BALLAST_CHECK(ossl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                      "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=ballast test CA"}));
  BALLAST_CHECK(write_file_atomic(d + "/server.ext",
                                  "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"));
  BALLAST_CHECK(write_file_atomic(d + "/client.ext", "extendedKeyUsage=clientAuth\n"));
  for (const std::string who : {"server", "client"}) {
    BALLAST_CHECK(ossl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                        who + ".key", "-out", who + ".csr", "-subj", "/CN=" + (who == "server" ? std::string("localhost") : "ballast client")}));
    BALLAST_CHECK(ossl({"x509", "-req", "-in", who + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                        "-out", who + ".pem", "-days", "2", "-extfile", who + ".ext"}));
  }
  return ok();
}

Result<std::unique_ptr<NginxHttps>> NginxHttps::start(const std::string& root) { return start(root, Options{}); }

Result<std::unique_ptr<NginxHttps>> NginxHttps::start(const std::string& root, const Options& opts) {
  auto s = std::unique_ptr<NginxHttps>(new NginxHttps());
  s->dir_ = BALLAST_TRY(make_temp_dir("ballast-nginx"));
  const std::string& d = s->dir_;
  BALLAST_CHECK(make_test_certificates(d));
  s->port_ = BALLAST_TRY(free_port());
  BALLAST_CHECK(make_dirs(d + "/tmp"));
  std::string conf =
      "daemon off;\nmaster_process on;\nworker_processes 1;\nuser root;\n"
      "pid " + d + "/nginx.pid;\nerror_log " + d + "/error.log warn;\n"
      "events { worker_connections 256; }\n"
      "http {\n"
      "  default_type application/octet-stream;\n  types { application/json json; }\n"
      "  sendfile on;\n  tcp_nopush on;\n"
      "  log_format bytes '$request_uri $status $body_bytes_sent $server_protocol $connection';\n"
      "  access_log " + d + "/access.log bytes;\n"
      "  client_body_temp_path " + d + "/tmp/body;\n  proxy_temp_path " + d + "/tmp/proxy;\n"
      "  fastcgi_temp_path " + d + "/tmp/fastcgi;\n  uwsgi_temp_path " + d + "/tmp/uwsgi;\n"
      "  scgi_temp_path " + d + "/tmp/scgi;\n"
      "  server {\n"
      "    listen 127.0.0.1:" + std::to_string(s->port_) + " ssl http2;\n"
      "    ssl_certificate " + d + "/server.pem;\n    ssl_certificate_key " + d + "/server.key;\n" +
      (opts.require_client_cert ? "    ssl_client_certificate " + d + "/ca.pem;\n    ssl_verify_client on;\n" : "") +
      "    root " + root + ";\n"
      "  }\n"
      "}\n";
  BALLAST_CHECK(write_file_atomic(d + "/nginx.conf", conf));
  s->proc_ = BALLAST_TRY(ChildProcess::spawn({"nginx", "-p", d, "-c", d + "/nginx.conf", "-e", d + "/error.log"}));
  for (int i = 0; i < 500 && !port_open(s->port_); ++i) std::this_thread::sleep_for(10ms);
  if (!port_open(s->port_)) {
    auto log = read_file(d + "/error.log");
    return fail("test.nginx", "nginx did not start: " + (log ? *log : std::string("no log")));
  }
  return s;
}

NginxHttps::~NginxHttps() {
  proc_.stop();
  if (!dir_.empty()) (void)remove_tree(dir_);
}

uint64_t NginxHttps::body_bytes_sent() const {
  uint64_t n = 0;
  auto text = read_file(dir_ + "/access.log");
  if (!text) return 0;
  std::istringstream in(*text);
  std::string uri, status, proto, connection;
  uint64_t bytes;
  while (in >> uri >> status >> bytes >> proto >> connection) n += bytes;
  return n;
}

std::set<std::string> NginxHttps::connections_used() const {
  std::set<std::string> used;
  auto text = read_file(dir_ + "/access.log");
  if (!text) return used;
  std::istringstream in(*text);
  std::string uri, status, bytes, proto, connection;
  while (in >> uri >> status >> bytes >> proto >> connection) used.insert(connection);
  return used;
}

}  // namespace ballast::testing
