// HTTP servers for repository tests, each a child process on 127.0.0.1 with its files in a
// private temp directory, stopped and removed by the destructor:
// - FaultyHttpServer: tests/integration/support/faulty_http_server.py, which misbehaves per
//   file as a rules file says and logs every request (for counting the bytes served);
// - NginxHttps: nginx over HTTPS (HTTP/2 and HTTP/1.1) with a throwaway CA made by the
//   openssl CLI, optionally requiring a client certificate.
#pragma once

#include <sys/types.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace ballast::testing {

// A child process killed (SIGTERM, then SIGKILL) and reaped by the destructor.
class ChildProcess {
 public:
  // `stderr_path`: where its stderr goes (created or truncated); empty: the test's own.
  static Result<ChildProcess> spawn(const std::vector<std::string>& argv, const std::string& stderr_path = "");
  ChildProcess() = default;
  ChildProcess(ChildProcess&& o) noexcept : pid_(o.pid_) { o.pid_ = -1; }
  ChildProcess& operator=(ChildProcess&& o) noexcept;
  ~ChildProcess() { stop(); }
  void stop();
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

// A throwaway CA (ca.pem, ca.key), a server certificate for localhost and 127.0.0.1 (server.pem,
// server.key) and a client certificate (client.pem, client.key) signed by it, made in `dir`.
Status make_test_certificates(const std::string& dir);

// The port a test server wrote to `port_file` once it listened (a server that never writes it fails after 60 s).
Result<int> wait_for_port_file(const std::string& port_file);

class FaultyHttpServer {
 public:
  // Serves `root`.
  static Result<std::unique_ptr<FaultyHttpServer>> start(const std::string& root);
  ~FaultyHttpServer();
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }
  // {"<file name or *>": ["action", …]}; see the script for the actions. Takes effect at once.
  Status set_rules(const nlohmann::json& rules);
  // Every request so far, oldest first.
  std::vector<nlohmann::json> requests() const;
  uint64_t bytes_served() const;

 private:
  std::string dir_;
  int port_ = 0;
  ChildProcess proc_;
};

class NginxHttps {
 public:
  struct Options {
    bool require_client_cert = false;
  };
  static Result<std::unique_ptr<NginxHttps>> start(const std::string& root);
  static Result<std::unique_ptr<NginxHttps>> start(const std::string& root, const Options& opts);
  ~NginxHttps();
  std::string url() const { return "https://localhost:" + std::to_string(port_) + "/"; }
  int port() const { return port_; }
  std::string ca_cert() const { return dir_ + "/ca.pem"; }
  std::string client_cert() const { return dir_ + "/client.pem"; }  // signed by the CA
  std::string client_key() const { return dir_ + "/client.key"; }
  // Bytes of response bodies nginx sent, from its access log (written per request).
  uint64_t body_bytes_sent() const;
  // The serial numbers of the connections requests came over, from the same log.
  std::set<std::string> connections_used() const;

 private:
  std::string dir_;
  int port_ = 0;
  ChildProcess proc_;
};

}  // namespace ballast::testing
