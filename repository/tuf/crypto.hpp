// TUF keys and signatures through OpenSSL 3 EVP: ed25519 (hex public key), ecdsa-sha2-nistp256
// and rsassa-pss-sha256 (PEM public keys), the key formats of the TUF specification and
// securesystemslib, so metadata made by other TUF tooling verifies here and the other way round.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace ballast::repository::tuf {

std::string to_hex(std::string_view bytes);
Result<std::string> from_hex(std::string_view hex);  // "tuf.bad-metadata" on odd length or non-hex

// Digest of `data` as lowercase hex; algorithm "sha256" or "sha512" ("tuf.unsupported" otherwise).
Result<std::string> digest_hex(const std::string& algorithm, std::string_view data);
std::string sha256_hex(std::string_view data);

// A public key as metadata lists it: {"keytype", "scheme", "keyval": {"public"}}.
struct PublicKey {
  std::string keytype;  // "ed25519", "ecdsa" / "ecdsa-sha2-nistp256", "rsa"
  std::string scheme;   // "ed25519", "ecdsa-sha2-nistp256", "rsassa-pss-sha256"
  std::string public_value;

  nlohmann::json to_json() const;
  static Result<PublicKey> from_json(const nlohmann::json& j);  // "tuf.bad-metadata"
  // sha256 of the canonical JSON of to_json(): the key id.
  std::string key_id() const;
  // True when `signature` (raw bytes) is a valid signature of `data` under this key. Unknown
  // schemes and malformed keys verify nothing.
  bool verify(std::string_view data, std::string_view signature) const;
};

enum class KeyType { ed25519, ecdsa_p256, rsa_pss };
Result<KeyType> parse_key_type(const std::string& name);  // "ed25519", "ecdsa-sha2-nistp256", "rsassa-pss-sha256"

// A private key, held as an OpenSSL EVP_PKEY; stored on disk as unencrypted PKCS#8 PEM.
class PrivateKey {
 public:
  PrivateKey() = default;
  PrivateKey(PrivateKey&&) noexcept;
  PrivateKey& operator=(PrivateKey&&) noexcept;
  PrivateKey(const PrivateKey&) = delete;
  PrivateKey& operator=(const PrivateKey&) = delete;
  ~PrivateKey();

  static Result<PrivateKey> generate(KeyType type);
  static Result<PrivateKey> from_pem(std::string_view pem);  // "tuf.bad-key"
  Result<std::string> to_pem() const;

  const PublicKey& public_key() const { return public_; }
  std::string key_id() const { return public_.key_id(); }
  Result<std::string> sign(std::string_view data) const;  // raw signature bytes

 private:
  void* pkey_ = nullptr;  // EVP_PKEY*, kept opaque so OpenSSL headers stay out of users
  PublicKey public_;
  Status derive_public();
};

}  // namespace ballast::repository::tuf
