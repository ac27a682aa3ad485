// Any byte string, read as what a peer or the disk hands the agent (an IMDS Scheduled Events or
// instance document, a Kubernetes Node or its update-request annotation, a release plan, the flow
// record), is either taken or refused with an error code: never a crash, never an exception. A
// plan or flow record that is taken is written back to one that reads back equal.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "agent/azure/imds.hpp"
#include "agent/kubernetes/contract.hpp"
#include "agent/kubernetes/kube_api.hpp"
#include "agent/update_flow.hpp"

namespace {

template <typename T>
void expect_value_or_code(const ballast::Result<T>& r) {
  if (!r && r.error().code.empty()) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ballast::agent;
  const std::string text(reinterpret_cast<const char*>(data), size);
  expect_value_or_code(azure::parse_scheduled_events(text));
  expect_value_or_code(azure::parse_instance(text));
  expect_value_or_code(kubernetes::parse_request(text));
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return 0;
  expect_value_or_code(kubernetes::node_from_json(j));
  auto plan = plan_from_json(j);
  expect_value_or_code(plan);
  if (plan) {
    auto again = plan_from_json(plan_to_json(*plan));
    if (!again || !(*again == *plan)) __builtin_trap();
  }
  auto record = flow_record_from_json(j);
  expect_value_or_code(record);
  if (record) {
    auto again = flow_record_from_json(flow_record_to_json(*record));
    if (!again || !(*again == *record)) __builtin_trap();
  }
  return 0;
}
