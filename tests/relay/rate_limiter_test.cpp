// relay::rate_limiter: tokens taken when a check starts, given back when it succeeded, refilled
// over time (explicit time points: no waiting).
#include "relay/rate_limiter.hpp"

#include <gtest/gtest.h>

namespace switchboard::relay {
namespace {

using namespace std::chrono_literals;

TEST(RateLimiter, TakesNoMoreThanTheBurstAtOnce) {
  rate_limiter r(3, 6);
  const auto t = rate_limiter::clock::now();
  EXPECT_TRUE(r.try_take("a", t));
  EXPECT_TRUE(r.try_take("a", t));
  EXPECT_TRUE(r.try_take("a", t));
  EXPECT_FALSE(r.try_take("a", t));
  EXPECT_FALSE(r.allowed("a", t));
  EXPECT_TRUE(r.try_take("b", t)) << "another key has its own bucket";
}

TEST(RateLimiter, AGivenBackTokenCanBeTakenAgain) {
  rate_limiter r(2, 6);
  const auto t = rate_limiter::clock::now();
  EXPECT_TRUE(r.try_take("a", t));
  EXPECT_TRUE(r.try_take("a", t));
  r.give_back("a", t);
  EXPECT_TRUE(r.try_take("a", t));
  EXPECT_FALSE(r.try_take("a", t));
}

TEST(RateLimiter, GivingBackNeverFillsAboveTheBurst) {
  rate_limiter r(2, 6);
  const auto t = rate_limiter::clock::now();
  EXPECT_TRUE(r.try_take("a", t));
  r.give_back("a", t);
  r.give_back("a", t);
  EXPECT_TRUE(r.try_take("a", t));
  EXPECT_TRUE(r.try_take("a", t));
  EXPECT_FALSE(r.try_take("a", t));
}

TEST(RateLimiter, RefillsOneTokenPerInterval) {
  rate_limiter r(1, 6);
  const auto t = rate_limiter::clock::now();
  EXPECT_TRUE(r.try_take("a", t));
  EXPECT_FALSE(r.try_take("a", t + 5s));
  EXPECT_TRUE(r.try_take("a", t + 6s));
}

TEST(RateLimiter, FullBucketsArePrunedSoMemoryStaysBounded) {
  rate_limiter r(1, 1);
  const auto t = rate_limiter::clock::now();
  for (int i = 0; i < 5000; ++i) EXPECT_TRUE(r.try_take("k" + std::to_string(i), t));
  // An hour later every bucket is full again: the next take prunes them all.
  EXPECT_TRUE(r.try_take("fresh", t + 1h));
  EXPECT_EQ(r.tracked(), 1u);
}

}  // namespace
}  // namespace switchboard::relay
