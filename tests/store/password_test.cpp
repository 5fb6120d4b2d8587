// Argon2id password hashing (store/password.hpp).
#include "store/password.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <stdexcept>
#include <string>

namespace {

using namespace switchboard::store;
using namespace std::string_literals;

// The "m=" (KiB) parameter of an encoded hash, or 0 if absent.
long memory_kib(const std::string& encoded) {
  const auto pos = encoded.find("$m=");
  if (pos == std::string::npos) return 0;
  return std::stol(encoded.substr(pos + 3));
}

TEST(Password, HashIsArgon2idEncoded) {
  const std::string hash = hash_password("correct horse", hash_cost::minimum);
  EXPECT_EQ(hash.rfind("$argon2id$v=19$m=", 0), 0u) << hash;
}

TEST(Password, VerifiesRightPassword) {
  const std::string hash = hash_password("correct horse", hash_cost::minimum);
  EXPECT_TRUE(verify_password(hash, "correct horse"));
}

TEST(Password, RejectsWrongPassword) {
  const std::string hash = hash_password("correct horse", hash_cost::minimum);
  EXPECT_FALSE(verify_password(hash, "correct horsE"));
  EXPECT_FALSE(verify_password(hash, "correct hors"));
  EXPECT_FALSE(verify_password(hash, "correct horse "));
  EXPECT_FALSE(verify_password(hash, "x"));
}

TEST(Password, SaltsEachHash) {
  const std::string a = hash_password("same", hash_cost::minimum);
  const std::string b = hash_password("same", hash_cost::minimum);
  EXPECT_NE(a, b);
  EXPECT_TRUE(verify_password(a, "same"));
  EXPECT_TRUE(verify_password(b, "same"));
}

TEST(Password, BinaryPasswordsWork) {
  const std::string pw = "a\0b\xff"s;
  const std::string hash = hash_password(pw, hash_cost::minimum);
  EXPECT_TRUE(verify_password(hash, pw));
  EXPECT_FALSE(verify_password(hash, "a"));
  EXPECT_FALSE(verify_password(hash, "a\0b"s));
}

TEST(Password, MalformedHashIsFalse) {
  const std::string good = hash_password("pw", hash_cost::minimum);
  EXPECT_FALSE(verify_password("", "pw"));
  EXPECT_FALSE(verify_password("not a hash", "pw"));
  EXPECT_FALSE(verify_password("$argon2id$", "pw"));
  EXPECT_FALSE(verify_password("$argon2id$v=19$m=8,t=1,p=1$$", "pw"));
  EXPECT_FALSE(verify_password(good.substr(0, good.size() / 2), "pw"));
  EXPECT_FALSE(verify_password(good.substr(0, good.size() - 1), "pw"));
  EXPECT_FALSE(verify_password(good + "AAAA", "pw"));
  EXPECT_FALSE(verify_password(good + std::string(200, 'A'), "pw"));
  EXPECT_FALSE(verify_password(good + "\0"s, "pw"));
  EXPECT_FALSE(verify_password("\0"s + good, "pw"));
  std::string corrupted = good;
  corrupted[corrupted.size() - 3] = corrupted[corrupted.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(verify_password(corrupted, "pw"));
  EXPECT_TRUE(verify_password(good, "pw"));  // the original is still fine
}

TEST(Password, LengthLimits) {
  EXPECT_THROW(hash_password("", hash_cost::minimum), std::invalid_argument);
  EXPECT_THROW(hash_password(std::string(1025, 'p'), hash_cost::minimum), std::invalid_argument);
  const std::string longest(1024, 'p');
  const std::string hash = hash_password(longest, hash_cost::minimum);
  EXPECT_TRUE(verify_password(hash, longest));
  EXPECT_TRUE(verify_password(hash_password("p", hash_cost::minimum), "p"));
  // A password hash_password() would refuse never verifies (and does not throw).
  EXPECT_FALSE(verify_password(hash, ""));
  EXPECT_FALSE(verify_password(hash, longest + "p"));
}

TEST(Password, CostSetsMemoryParameter) {
  const std::string minimum = hash_password("pw", hash_cost::minimum);
  const std::string interactive = hash_password("pw", hash_cost::interactive);
  EXPECT_GT(memory_kib(minimum), 0);
  EXPECT_EQ(memory_kib(interactive), 64 * 1024);  // libsodium's MEMLIMIT_INTERACTIVE, 64 MiB
  EXPECT_LT(memory_kib(minimum), memory_kib(interactive));
  EXPECT_TRUE(verify_password(interactive, "pw"));
  EXPECT_FALSE(verify_password(interactive, "pW"));
}

}  // namespace
