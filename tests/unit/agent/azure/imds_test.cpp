// The IMDS documents as Microsoft documents them, parsed; and the approval body.
#include "agent/azure/imds.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/unit/agent/reboot/time_support.hpp"

using namespace ballast;
using namespace ballast::agent::azure;

TEST_CASE("a scheduled events document is read with every documented field") {
  auto doc = parse_scheduled_events(R"({
    "DocumentIncarnation": 3,
    "Events": [
      {"EventId": "602d9444-d2cd-49c7-8624-8643e7171297", "EventType": "Reboot", "ResourceType": "VirtualMachine",
       "Resources": ["vm-a", "vm-b"], "EventStatus": "Scheduled", "NotBefore": "Mon, 19 Sep 2016 18:29:47 GMT",
       "Description": "Virtual machine is going to be restarted as requested by authorized user.",
       "EventSource": "User", "DurationInSeconds": 5},
      {"EventId": "B7B1B8A5-3B9A-4C48-8E21-3E5F0E8D2D63", "EventType": "Freeze", "ResourceType": "VirtualMachine",
       "Resources": ["vm-a"], "EventStatus": "Started", "NotBefore": "", "Description": "", "EventSource": "Platform",
       "DurationInSeconds": -1}
    ]})");
  REQUIRE(doc);
  CHECK(doc->incarnation == 3);
  REQUIRE(doc->events.size() == 2);
  const auto& r = doc->events[0];
  CHECK(r.id == "602d9444-d2cd-49c7-8624-8643e7171297");
  CHECK(r.type == "Reboot");
  CHECK(r.resource_type == "VirtualMachine");
  CHECK(r.resources == std::vector<std::string>{"vm-a", "vm-b"});
  CHECK(r.status == "Scheduled");
  CHECK(r.not_before == ballast::testing::utc(2016, 9, 19, 18, 29) + std::chrono::seconds(47));
  CHECK(r.source == "User");
  CHECK(r.duration_seconds == 5);
  CHECK_THAT(r.description, Catch::Contains("restarted"));
  CHECK_FALSE(doc->events[1].not_before);  // started: no NotBefore
  CHECK(doc->events[1].duration_seconds == -1);
}

TEST_CASE("an empty scheduled events document has no events") {
  auto doc = parse_scheduled_events(R"({"DocumentIncarnation": 1, "Events": []})");
  REQUIRE(doc);
  CHECK(doc->events.empty());
}

TEST_CASE("scheduled events documents that are not the documented shape are refused") {
  for (const char* bad : {"", "[]", R"({"Events": []})", R"({"DocumentIncarnation": 1})",
                          R"({"DocumentIncarnation": 1, "Events": [{"EventType": "Reboot", "EventStatus": "Scheduled", "Resources": []}]})",
                          R"({"DocumentIncarnation": 1, "Events": [{"EventId": "x", "EventType": "Reboot", "EventStatus": "Scheduled"}]})",
                          R"({"DocumentIncarnation": 1, "Events": [{"EventId": "x", "EventType": "Reboot", "EventStatus": "Scheduled", "Resources": [], "NotBefore": "tomorrow"}]})"}) {
    INFO(bad);
    auto doc = parse_scheduled_events(bad);
    REQUIRE_FALSE(doc);
    CHECK(doc.error().code == "imds.bad-document");
  }
  // Past 2262 the clock's nanoseconds overflow: such a date is refused before it becomes a time.
  auto far = parse_scheduled_events(R"({"DocumentIncarnation": 1, "Events": [{"EventId": "x", "EventType": "Reboot",)"
                                    R"( "EventStatus": "Scheduled", "Resources": [], "NotBefore": "Fri, 31 Dec 9999 23:59:59 GMT"}]})");
  REQUIRE_FALSE(far);
  CHECK(far.error().code == "imds.bad-document");
  CHECK_THAT(far.error().describe(), Catch::Contains("out of range"));
}

TEST_CASE("the instance document gives the VM's name, ids, place, size and security profile") {
  auto id = parse_instance(R"({
    "compute": {"name": "vm-a", "vmId": "02aab8a4-74ef-476e-8182-f6d2ba4166a6",
                "resourceId": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/vm-a",
                "location": "westeurope", "zone": "2", "vmSize": "Standard_D2s_v5",
                "securityProfile": {"secureBootEnabled": "true", "virtualTpmEnabled": "false"}},
    "network": {"interface": []}})");
  REQUIRE(id);
  CHECK(id->name == "vm-a");
  CHECK(id->vm_id == "02aab8a4-74ef-476e-8182-f6d2ba4166a6");
  CHECK_THAT(id->resource_id, Catch::EndsWith("/virtualMachines/vm-a"));
  CHECK(id->location == "westeurope");
  CHECK(id->zone == "2");
  CHECK(id->vm_size == "Standard_D2s_v5");
  CHECK(id->secure_boot);
  CHECK_FALSE(id->virtual_tpm);
  CHECK_FALSE(parse_instance(R"({"compute": {"name": "vm-a"}})"));  // no vmId
  CHECK_FALSE(parse_instance(R"({"network": {}})"));
}

TEST_CASE("an approval names each event in StartRequests") {
  auto body = nlohmann::json::parse(start_requests_body({"a", "b"}));
  CHECK(body == nlohmann::json::parse(R"({"StartRequests": [{"EventId": "a"}, {"EventId": "b"}]})"));
}
