// imds_server.py (IMDS as Microsoft documents it, on 127.0.0.1) in a private directory; the
// ChildProcess member kills it whatever the test does. set_events() changes the platform's
// events; log() is every request it answered (also the CloudEvents posted to /events).
#pragma once

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sstream>
#include <thread>

#include "common/file.hpp"
#include "tests/integration/support/http_servers.hpp"

namespace ballast::testing {

struct ImdsServer {
  std::string dir = make_temp_dir("ballast-imds").value();
  ChildProcess proc;
  int port = 0;
  nlohmann::json compute = {
      {"name", "vm-a"},
      {"vmId", "02aab8a4-74ef-476e-8182-f6d2ba4166a6"},
      {"resourceId", "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-a"},
      {"location", "westeurope"},
      {"zone", "2"},
      {"vmSize", "Standard_D2s_v5"},
      {"securityProfile", {{"secureBootEnabled", "true"}, {"virtualTpmEnabled", "true"}}}};

  ImdsServer() {
    using namespace std::chrono_literals;
    set_events({});
    std::string port_file = dir + "/port";
    auto p = ChildProcess::spawn({"python3", BALLAST_SOURCE_ROOT "/tests/integration/agent/azure/imds_server.py", "--state",
                                  dir + "/state.json", "--log", dir + "/log.jsonl", "--port-file", port_file});
    REQUIRE(p);
    proc = std::move(*p);
    auto listening = wait_for_port_file(port_file);
    REQUIRE(listening);
    port = *listening;
  }
  ~ImdsServer() {
    proc.stop();
    (void)remove_tree(dir);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }

  // The platform's events now; the document's incarnation grows with each change.
  void set_events(const std::vector<nlohmann::json>& events) {
    static int incarnation = 1;
    REQUIRE(write_file_atomic(dir + "/state.json",
                              nlohmann::json{{"incarnation", ++incarnation}, {"events", nlohmann::json(events)}, {"compute", compute}}.dump()));
  }
  // An event as IMDS documents it, for this VM.
  static nlohmann::json event(const std::string& id, const std::string& type, const std::string& status = "Scheduled",
                              const std::string& source = "Platform") {
    return {{"EventId", id},
            {"EventType", type},
            {"ResourceType", "VirtualMachine"},
            {"Resources", {"vm-a"}},
            {"EventStatus", status},
            {"NotBefore", status == "Scheduled" ? "Mon, 19 Sep 2033 18:29:47 GMT" : ""},
            {"Description", "Host server is undergoing maintenance."},
            {"EventSource", source},
            {"DurationInSeconds", type == "Freeze" ? 9 : -1}};
  }
  std::vector<nlohmann::json> log() const {
    std::vector<nlohmann::json> out;
    auto text = read_file(dir + "/log.jsonl");
    if (!text) return out;
    std::istringstream in(*text);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) out.push_back(nlohmann::json::parse(line));
    return out;
  }
  std::vector<nlohmann::json> approvals() const {
    std::vector<nlohmann::json> out;
    for (const auto& r : log())
      if (r["method"] == "POST" && r["path"].get<std::string>().rfind("/metadata/scheduledevents", 0) == 0)
        out.push_back(r);
    return out;
  }
  // The CloudEvents of `type` (dev.ballast.<type>) the agent posted.
  std::vector<nlohmann::json> cloud_events(const std::string& type) const {
    std::vector<nlohmann::json> out;
    for (const auto& r : log()) {
      if (r["path"] != "/events") continue;
      auto body = nlohmann::json::parse(r["body"].get<std::string>());
      for (const auto& e : body.is_array() ? body : nlohmann::json::array({body}))
        if (e["type"] == "dev.ballast." + type) out.push_back(e);
    }
    return out;
  }
};

}  // namespace ballast::testing
