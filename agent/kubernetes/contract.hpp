// The Node contract: what a controller writes (annotation ballast.dev/update-request) and what the
// agent answers (ballast.dev/update-status), and the one mapping from the daemon's flow states to
// the contract's phases. README.md ("Kubernetes") is the user's copy of these tables.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "agent/update_flow.hpp"
#include "common/result.hpp"
#include "common/version.hpp"

namespace ballast::agent::kubernetes {

inline constexpr const char* kRequestAnnotation = "ballast.dev/update-request";
inline constexpr const char* kStatusAnnotation = "ballast.dev/update-status";

enum class Operation { stage, reboot, rollback, pin, unpin };
const char* to_string(Operation o);

struct UpdateRequest {
  std::string operation_id;
  Operation operation = Operation::stage;
  std::optional<Version> version;  // stage, reboot: the version to go to (a pin); pin: required
};

// Parses and validates the annotation's text: schemaVersion 1, an operationId of 1-128 printable
// characters, a known operation, a valid version where one is given (required for pin, refused for
// rollback and unpin). Errors are "kubernetes.bad-request" saying which field is wrong.
Result<UpdateRequest> parse_request(const std::string& text);

enum class Phase { Idle, Checking, Staging, Staged, WaitingToReboot, Rebooting, Verifying, Committed, RolledBack, Failed };
const char* to_string(Phase p);
std::optional<Phase> phase_from_string(const std::string& s);
bool is_terminal(Phase p);  // Staged (armed for the reboot), Committed, RolledBack, Failed

// The phase a flow transition leads to. The flow passes through committed/rolled_back/failed to
// idle at once: idle keeps a terminal answer. A stage request's flow waits for its reboot, held:
// that is its terminal answer Staged, not WaitingToReboot.
Phase phase_after(FlowState to, Phase previous, std::optional<Operation> operation);

// "outer: message [code]" (Error::describe()) → {"code": code, "message": the whole line}; a
// line without a code gets "flow.failed".
nlohmann::json error_json(const std::string& described);

}  // namespace ballast::agent::kubernetes
