// Any byte string as TUF metadata — parsed as each role type, verified, and served to the full
// client workflow in place of one repository file — is accepted or refused with a coded error;
// never a crash, a hang or an error without a code.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/clock.hpp"
#include "common/file.hpp"
#include "repository/http.hpp"
#include "repository/tuf/canonical_json.hpp"
#include "repository/tuf/client.hpp"
#include "repository/tuf/metadata.hpp"

using namespace ballast;
using namespace ballast::repository;
using namespace ballast::repository::tuf;

namespace {

void require_code(const Status& s) {
  if (!s && s.error().code.empty()) __builtin_trap();
}
template <class T>
void require_code(const Result<T>& r) {
  if (!r && r.error().code.empty()) __builtin_trap();
}

// A valid one-key repository, made once: root v1 trusted, the rest served from memory.
// The client persists with fsync on every iteration; on tmpfs that costs nothing.
std::string state_dir() {
  if (path_exists("/dev/shm")) setenv("TMPDIR", "/dev/shm", 1);
  return *make_temp_dir("fuzz-tuf");
}

struct World {
  FakeClock clock;
  std::string state = state_dir();
  std::string root_bytes;
  std::map<std::string, std::string> files;
  PrivateKey key = *PrivateKey::generate(KeyType::ed25519);

  ~World() { (void)remove_tree(state); }
  World() {
    auto id = key.key_id();
    auto exp = format_time(clock.now() + std::chrono::hours(24));
    nlohmann::json roles;
    for (const char* r : {"root", "timestamp", "snapshot", "targets"}) roles[r] = {{"keyids", {id}}, {"threshold", 1}};
    nlohmann::json root{{"_type", "root"}, {"spec_version", "1.0.31"}, {"version", 1}, {"expires", exp},
                        {"consistent_snapshot", true}, {"keys", {{id, key.public_key().to_json()}}}, {"roles", roles}};
    root_bytes = *sign_metadata(root, {&key});
    nlohmann::json targets{{"_type", "targets"}, {"spec_version", "1.0.31"}, {"version", 1}, {"expires", exp},
                           {"targets", nlohmann::json::object()}};
    auto t = *sign_metadata(targets, {&key});
    nlohmann::json snap{{"_type", "snapshot"}, {"spec_version", "1.0.31"}, {"version", 1}, {"expires", exp},
                        {"meta", {{"targets.json", {{"version", 1}}}}}};
    auto s = *sign_metadata(snap, {&key});
    nlohmann::json ts{{"_type", "timestamp"}, {"spec_version", "1.0.31"}, {"version", 1}, {"expires", exp},
                      {"meta", {{"snapshot.json", {{"version", 1}}}}}};
    files["https://r/m/1.targets.json"] = t;
    files["https://r/m/1.snapshot.json"] = s;
    files["https://r/m/timestamp.json"] = *sign_metadata(ts, {&key});
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World world;
  if (size == 0) return 0;
  // Byte 0 picks the repository file the document replaces; the rest is the document.
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

  auto root = parse_root(input);
  require_code(root);
  if (root) {
    require_code(verify_threshold(root->env, root->keys, root->roles["root"], "root"));
    require_code(check_expiry(root->env, world.clock.now(), "root"));
  }
  require_code(parse_timestamp(input));
  require_code(parse_snapshot(input));
  auto targets = parse_targets(input);
  require_code(targets);
  if (targets && targets->delegations)
    for (const auto& r : targets->delegations->roles) (void)r.matches("releases/1.0/manifest.json");

  static const char* kFiles[] = {"timestamp.json", "1.snapshot.json", "1.targets.json", "2.root.json"};
  FakeHttpClient http;
  for (const auto& [url, body] : world.files) http.files[url] = body;
  http.files[std::string("https://r/m/") + kFiles[data[0] % 4]] = std::string(input);
  (void)remove_tree(world.state);
  (void)make_dirs(world.state);
  (void)write_file_atomic(world.state + "/root.json", world.root_bytes);
  ClientOptions o;
  o.max_metadata_size = 1 << 16;
  auto client = Client::open(world.state, http, world.clock, "https://r/m", "https://r/t", o);
  if (!client) __builtin_trap();  // the trusted root is fixed and valid
  require_code(client->refresh());
  return 0;
}
