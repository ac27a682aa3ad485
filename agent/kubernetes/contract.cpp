#include "agent/kubernetes/contract.hpp"

#include <algorithm>
#include <iterator>

namespace ballast::agent::kubernetes {

using nlohmann::json;

namespace {
constexpr const char* kOperations[] = {"stage", "reboot", "rollback", "pin", "unpin"};
constexpr const char* kPhases[] = {"Idle",     "Checking",  "Staging",   "Staged",     "WaitingToReboot",
                                   "Rebooting", "Verifying", "Committed", "RolledBack", "Failed"};

tl::unexpected<Error> bad(const std::string& message) { return fail("kubernetes.bad-request", message); }
}  // namespace

const char* to_string(Operation o) { return kOperations[static_cast<int>(o)]; }
const char* to_string(Phase p) { return kPhases[static_cast<int>(p)]; }

std::optional<Phase> phase_from_string(const std::string& s) {
  for (int i = 0; i < static_cast<int>(std::size(kPhases)); ++i)
    if (s == kPhases[i]) return static_cast<Phase>(i);
  return std::nullopt;
}

bool is_terminal(Phase p) {
  return p == Phase::Staged || p == Phase::Committed || p == Phase::RolledBack || p == Phase::Failed;
}

Result<UpdateRequest> parse_request(const std::string& text) {
  auto j = json::parse(text, nullptr, false);
  if (!j.is_object()) return bad(std::string(kRequestAnnotation) + " is not a JSON object");
  if (!j.contains("schemaVersion") || !j["schemaVersion"].is_number_integer() || j["schemaVersion"] != 1)
    return bad("schemaVersion must be 1");
  UpdateRequest r;
  if (!j.contains("operationId") || !j["operationId"].is_string()) return bad("operationId is missing");
  r.operation_id = j["operationId"];
  if (r.operation_id.empty() || r.operation_id.size() > 128) return bad("operationId must have 1 to 128 characters");
  for (unsigned char c : r.operation_id)
    if (c < 0x21 || c > 0x7e) return bad("operationId must be printable ASCII without spaces");
  if (!j.contains("operation") || !j["operation"].is_string()) return bad("operation is missing");
  std::string op = j["operation"];
  auto it = std::find(std::begin(kOperations), std::end(kOperations), op);
  if (it == std::end(kOperations)) return bad("operation \"" + op + "\" is not one of stage, reboot, rollback, pin, unpin");
  r.operation = static_cast<Operation>(it - std::begin(kOperations));
  if (j.contains("version") && !j["version"].is_null()) {
    if (!j["version"].is_string()) return bad("version must be a string");
    auto v = Version::parse(j["version"].get<std::string>());
    if (!v) return bad("version: " + v.error().message);
    r.version = *v;
  }
  if (r.operation == Operation::pin && !r.version) return bad("pin needs a version");
  if ((r.operation == Operation::rollback || r.operation == Operation::unpin) && r.version)
    return bad(std::string(to_string(r.operation)) + " takes no version");
  return r;
}

Phase phase_after(FlowState to, Phase previous, std::optional<Operation> operation) {
  switch (to) {
    case FlowState::idle: return is_terminal(previous) ? previous : Phase::Idle;
    case FlowState::checking: return Phase::Checking;
    case FlowState::staging: return Phase::Staging;
    case FlowState::staged: return Phase::Staged;
    case FlowState::waiting_to_reboot:
      return operation == Operation::stage ? Phase::Staged : Phase::WaitingToReboot;
    case FlowState::rebooting:
    case FlowState::reverting: return Phase::Rebooting;
    case FlowState::verifying: return Phase::Verifying;
    case FlowState::committed: return Phase::Committed;
    case FlowState::rolled_back: return Phase::RolledBack;
    case FlowState::failed: return Phase::Failed;
  }
  return previous;
}

json error_json(const std::string& described) {
  // The code is the last "[area.what]"; the flow may append a note after it.
  std::string code = "flow.failed";
  auto open = described.rfind(" [");
  auto close = open == std::string::npos ? open : described.find(']', open);
  if (close != std::string::npos) code = described.substr(open + 2, close - open - 2);
  return {{"code", code}, {"message", described}};
}

}  // namespace ballast::agent::kubernetes
