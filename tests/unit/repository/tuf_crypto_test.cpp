#include <catch2/catch.hpp>

#include "repository/tuf/canonical_json.hpp"
#include "repository/tuf/crypto.hpp"

using namespace ballast::repository::tuf;

TEST_CASE("each key type signs and verifies and refuses altered data or another key's signature", "[tuf]") {
  auto type = GENERATE(KeyType::ed25519, KeyType::ecdsa_p256, KeyType::rsa_pss);
  auto key = PrivateKey::generate(type);
  REQUIRE(key);
  auto sig = key->sign("signed bytes");
  REQUIRE(sig);
  const auto& pub = key->public_key();
  CHECK(pub.verify("signed bytes", *sig));
  CHECK_FALSE(pub.verify("signed bytez", *sig));
  auto other = PrivateKey::generate(type);
  CHECK_FALSE(other->public_key().verify("signed bytes", *sig));
  // Through PEM and back: the same key.
  auto again = PrivateKey::from_pem(*key->to_pem());
  REQUIRE(again);
  CHECK(again->key_id() == key->key_id());
  CHECK(pub.verify("signed bytes", *again->sign("signed bytes")));
}

TEST_CASE("key ids are the sha256 of the canonical public key", "[tuf]") {
  auto key = PrivateKey::generate(KeyType::ed25519);
  auto pub = key->public_key();
  CHECK(pub.keytype == "ed25519");
  CHECK(pub.public_value.size() == 64);
  CHECK(key->key_id() == sha256_hex(*canonical_json(pub.to_json())));
}

TEST_CASE("a key whose declared type does not match its material verifies nothing", "[tuf]") {
  auto ec = PrivateKey::generate(KeyType::ecdsa_p256);
  auto sig = ec->sign("x");
  auto pub = ec->public_key();
  pub.keytype = "rsa";
  pub.scheme = "rsassa-pss-sha256";
  CHECK_FALSE(pub.verify("x", *sig));
  PublicKey bad{"ed25519", "ed25519", "zz"};
  CHECK_FALSE(bad.verify("x", "sig"));
}

TEST_CASE("an RFC 8032 ed25519 test vector verifies", "[tuf]") {
  // RFC 8032 section 7.1, TEST 2: a one-byte message 0x72.
  PublicKey pub{"ed25519", "ed25519", "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"};
  auto sig = from_hex(
      "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
      "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00");
  REQUIRE(sig);
  CHECK(pub.verify("\x72", *sig));
  CHECK_FALSE(pub.verify("\x73", *sig));
}

TEST_CASE("hex and digests", "[tuf]") {
  CHECK(to_hex("\x01\xab") == "01ab");
  CHECK(*from_hex("01AB") == "\x01\xab");
  CHECK(from_hex("0g").error().code == "tuf.bad-metadata");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(digest_hex("md5", "abc").error().code == "tuf.unsupported");
}
