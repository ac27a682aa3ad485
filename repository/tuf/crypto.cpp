#include "repository/tuf/crypto.hpp"

#include <memory>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "repository/tuf/canonical_json.hpp"

namespace ballast::repository::tuf {
namespace {

struct PkeyFree { void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); } };
struct CtxFree { void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); } };
struct MdCtxFree { void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); } };
struct BioFree { void operator()(BIO* p) const { BIO_free(p); } };
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using CtxPtr = std::unique_ptr<EVP_PKEY_CTX, CtxFree>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

bool is_ecdsa_keytype(const std::string& t) { return t == "ecdsa" || t == "ecdsa-sha2-nistp256"; }

PkeyPtr public_from_pem(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return nullptr;
  return PkeyPtr(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
}

std::string ec_group_name(EVP_PKEY* pkey) {
  char name[64] = {};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, &len) != 1) return "";
  return std::string(name, len);
}

// Loads the public key a PublicKey describes, checking that the key material is of the type
// the keytype claims: a "ed25519" entry holding an RSA PEM verifies nothing.
PkeyPtr load_public(const PublicKey& k) {
  if (k.keytype == "ed25519" && k.scheme == "ed25519") {
    auto raw = from_hex(k.public_value);
    if (!raw || raw->size() != 32) return nullptr;
    return PkeyPtr(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                               reinterpret_cast<const unsigned char*>(raw->data()), raw->size()));
  }
  if (is_ecdsa_keytype(k.keytype) && k.scheme == "ecdsa-sha2-nistp256") {
    auto p = public_from_pem(k.public_value);
    if (!p || EVP_PKEY_get_base_id(p.get()) != EVP_PKEY_EC || ec_group_name(p.get()) != "prime256v1") return nullptr;
    return p;
  }
  if (k.keytype == "rsa" && k.scheme == "rsassa-pss-sha256") {
    auto p = public_from_pem(k.public_value);
    if (!p || EVP_PKEY_get_base_id(p.get()) != EVP_PKEY_RSA || EVP_PKEY_get_bits(p.get()) < 2048) return nullptr;
    return p;
  }
  return nullptr;
}

}  // namespace

std::string to_hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

Result<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2) return fail("tuf.bad-metadata", "hex string of odd length");
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return fail("tuf.bad-metadata", "not a hex string");
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

Result<std::string> digest_hex(const std::string& algorithm, std::string_view data) {
  const EVP_MD* md = nullptr;
  if (algorithm == "sha256") md = EVP_sha256();
  else if (algorithm == "sha512") md = EVP_sha512();
  else return fail("tuf.unsupported", "unsupported hash algorithm '" + algorithm + "'");
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) != 1) return fail("tuf.crypto", "digest failed");
  return to_hex(std::string_view(reinterpret_cast<const char*>(out), len));
}

std::string sha256_hex(std::string_view data) { return *digest_hex("sha256", data); }

nlohmann::json PublicKey::to_json() const {
  return {{"keytype", keytype}, {"scheme", scheme}, {"keyval", {{"public", public_value}}}};
}

Result<PublicKey> PublicKey::from_json(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("keytype") || !j["keytype"].is_string() || !j.contains("scheme") ||
      !j["scheme"].is_string() || !j.contains("keyval") || !j["keyval"].is_object() ||
      !j["keyval"].contains("public") || !j["keyval"]["public"].is_string())
    return fail("tuf.bad-metadata", "key is not {keytype, scheme, keyval: {public}}");
  return PublicKey{j["keytype"].get<std::string>(), j["scheme"].get<std::string>(),
                   j["keyval"]["public"].get<std::string>()};
}

std::string PublicKey::key_id() const { return sha256_hex(*canonical_json(to_json())); }

bool PublicKey::verify(std::string_view data, std::string_view signature) const {
  auto pkey = load_public(*this);
  if (!pkey) return false;
  MdCtxPtr md(EVP_MD_CTX_new());
  if (!md) return false;
  EVP_PKEY_CTX* pctx = nullptr;
  const EVP_MD* digest = scheme == "ed25519" ? nullptr : EVP_sha256();
  if (EVP_DigestVerifyInit(md.get(), &pctx, digest, nullptr, pkey.get()) != 1) return false;
  if (scheme == "rsassa-pss-sha256") {
    // Signers differ in salt length (securesystemslib: digest length, others: maximum); the
    // salt length carries no security weight, so accept what the signature encodes.
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1)
      return false;
  }
  return EVP_DigestVerify(md.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                          reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
}

Result<KeyType> parse_key_type(const std::string& name) {
  if (name == "ed25519") return KeyType::ed25519;
  if (name == "ecdsa-sha2-nistp256" || name == "ecdsa") return KeyType::ecdsa_p256;
  if (name == "rsassa-pss-sha256" || name == "rsa") return KeyType::rsa_pss;
  return fail("tuf.unsupported", "unknown key type '" + name + "' (ed25519, ecdsa-sha2-nistp256, rsassa-pss-sha256)");
}

PrivateKey::PrivateKey(PrivateKey&& o) noexcept : pkey_(o.pkey_), public_(std::move(o.public_)) { o.pkey_ = nullptr; }
PrivateKey& PrivateKey::operator=(PrivateKey&& o) noexcept {
  if (this != &o) {
    EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_));
    pkey_ = o.pkey_;
    o.pkey_ = nullptr;
    public_ = std::move(o.public_);
  }
  return *this;
}
PrivateKey::~PrivateKey() { EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_)); }

Result<PrivateKey> PrivateKey::generate(KeyType type) {
  EVP_PKEY* raw = nullptr;
  switch (type) {
    case KeyType::ed25519: raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"); break;
    case KeyType::ecdsa_p256: raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"); break;
    case KeyType::rsa_pss: raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(3072)); break;
  }
  if (!raw) return fail("tuf.crypto", "key generation failed");
  PrivateKey k;
  k.pkey_ = raw;
  BALLAST_CHECK(k.derive_public());
  return k;
}

Result<PrivateKey> PrivateKey::from_pem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return fail("tuf.crypto", "out of memory");
  EVP_PKEY* raw = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (!raw) return fail("tuf.bad-key", "not an unencrypted PEM private key");
  PrivateKey k;
  k.pkey_ = raw;
  BALLAST_CHECK(k.derive_public());
  return k;
}

Result<std::string> PrivateKey::to_pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), static_cast<EVP_PKEY*>(pkey_), nullptr, nullptr, 0, nullptr,
                                       nullptr) != 1)
    return fail("tuf.crypto", "cannot encode private key");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

Status PrivateKey::derive_public() {
  auto* pkey = static_cast<EVP_PKEY*>(pkey_);
  int id = EVP_PKEY_get_base_id(pkey);
  if (id == EVP_PKEY_ED25519) {
    unsigned char raw[32];
    size_t len = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(pkey, raw, &len) != 1 || len != 32) return fail("tuf.bad-key", "bad ed25519 key");
    public_ = {"ed25519", "ed25519", to_hex(std::string_view(reinterpret_cast<char*>(raw), len))};
    return ok();
  }
  if (id != EVP_PKEY_EC && id != EVP_PKEY_RSA) return fail("tuf.bad-key", "key is neither ed25519, EC P-256 nor RSA");
  if (id == EVP_PKEY_EC && ec_group_name(pkey) != "prime256v1") return fail("tuf.bad-key", "EC key is not on P-256");
  if (id == EVP_PKEY_RSA && EVP_PKEY_get_bits(pkey) < 2048) return fail("tuf.bad-key", "RSA key shorter than 2048 bits");
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), pkey) != 1) return fail("tuf.crypto", "cannot encode public key");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  std::string pem(data, static_cast<size_t>(len));
  if (id == EVP_PKEY_EC) public_ = {"ecdsa", "ecdsa-sha2-nistp256", pem};
  else public_ = {"rsa", "rsassa-pss-sha256", pem};
  return ok();
}

Result<std::string> PrivateKey::sign(std::string_view data) const {
  auto* pkey = static_cast<EVP_PKEY*>(pkey_);
  MdCtxPtr md(EVP_MD_CTX_new());
  if (!md) return fail("tuf.crypto", "out of memory");
  EVP_PKEY_CTX* pctx = nullptr;
  const EVP_MD* digest = public_.scheme == "ed25519" ? nullptr : EVP_sha256();
  if (EVP_DigestSignInit(md.get(), &pctx, digest, nullptr, pkey) != 1) return fail("tuf.crypto", "sign init failed");
  if (public_.scheme == "rsassa-pss-sha256" &&
      (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
       EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
       EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1))
    return fail("tuf.crypto", "cannot set RSA-PSS parameters");
  size_t len = 0;
  auto in = reinterpret_cast<const unsigned char*>(data.data());
  if (EVP_DigestSign(md.get(), nullptr, &len, in, data.size()) != 1) return fail("tuf.crypto", "sign failed");
  std::string sig(len, '\0');
  if (EVP_DigestSign(md.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in, data.size()) != 1)
    return fail("tuf.crypto", "sign failed");
  sig.resize(len);
  return sig;
}

}  // namespace ballast::repository::tuf
