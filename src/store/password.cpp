// Argon2id password hashing over libsodium's crypto_pwhash_str* (see password.hpp).
#include "store/password.hpp"

#include <sodium.h>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

#include "protocol/names.hpp"

namespace switchboard::store {

namespace {

// sodium_init() once per process; the function-local static makes the first call thread-safe.
void ensure_sodium() {
  static const int rc = sodium_init();
  if (rc < 0) throw std::runtime_error("libsodium could not be initialised");
}

struct pwhash_limits {
  unsigned long long ops;
  std::size_t mem;
};

pwhash_limits limits_for(hash_cost cost) {
  switch (cost) {
    case hash_cost::minimum:
      return {crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN};
    case hash_cost::interactive:
      return {crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE};
    case hash_cost::moderate:
      return {crypto_pwhash_OPSLIMIT_MODERATE, crypto_pwhash_MEMLIMIT_MODERATE};
  }
  throw std::invalid_argument("unknown hash_cost");
}

bool valid_password_length(std::string_view password) {
  return !password.empty() && password.size() <= protocol::max_password;
}

}  // namespace

std::string hash_password(std::string_view password, hash_cost cost) {
  if (!valid_password_length(password)) {
    throw std::invalid_argument("password must be 1.." + std::to_string(protocol::max_password) +
                                " bytes, got " + std::to_string(password.size()));
  }
  ensure_sodium();
  const pwhash_limits limits = limits_for(cost);
  char encoded[crypto_pwhash_STRBYTES] = {};
  if (crypto_pwhash_str_alg(encoded, password.data(), password.size(), limits.ops, limits.mem,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    throw std::runtime_error("Argon2id hashing failed (out of memory)");
  }
  return std::string(encoded);
}

bool verify_password(std::string_view encoded_hash, std::string_view password) {
  // A password hash_password() would refuse can never match a stored hash.
  if (!valid_password_length(password)) return false;
  // libsodium wants a NUL-terminated string shorter than crypto_pwhash_STRBYTES; anything else
  // (too long, embedded NUL) is malformed.
  if (encoded_hash.size() >= crypto_pwhash_STRBYTES ||
      encoded_hash.find('\0') != std::string_view::npos) {
    return false;
  }
  ensure_sodium();
  const std::string terminated(encoded_hash);
  return crypto_pwhash_str_verify(terminated.c_str(), password.data(), password.size()) == 0;
}

}  // namespace switchboard::store
