// Argon2id password hashing (libsodium crypto_pwhash_str*). Pure CPU, no I/O; slow on purpose.
#pragma once

#include <string>
#include <string_view>

#include "store/user_store.hpp"

namespace switchboard::store {

// Returns the libsodium encoded hash string ("$argon2id$v=19$m=...").
// Throws std::runtime_error if libsodium fails (out of memory).
std::string hash_password(std::string_view password, hash_cost cost);

// True if the password matches the encoded hash. False for a malformed hash.
bool verify_password(std::string_view encoded_hash, std::string_view password);

}  // namespace switchboard::store
