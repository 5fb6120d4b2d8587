// Reloading the relay's configuration while it runs (hub::reconfigure, docs/configuration.md
// "Reloading"): new limits and rate-limit figures apply to what happens next, and lines already
// logged in stay as they are.
#include "relay/harness.hpp"

namespace switchboard::test {
namespace {

TEST(Reload, ALoweredWaitingLimitAppliesToTheNextConnection) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto waiting = co_await raw_client::connect(env.endpoint);
    CO_WAIT_UNTIL(env.hub().admission().waiting() == 1, 5s);
    auto logged_in = co_await raw_client::connect(env.endpoint);
    co_await logged_in.login("alice", password_of("alice"));
    auto next = env.hub().config();
    next.max_waiting_per_address = 1;
    env.hub().reconfigure(next);
    EXPECT_EQ(env.hub().config().max_waiting_per_address, 1u);
    auto refused = co_await raw_client::connect(env.endpoint);
    co_await refused.expect_closed();
    EXPECT_EQ(env.counters().refused_connections, 1u);
    co_await logged_in.expect_alive(1);  // a logged-in line is not touched
  });
}

TEST(Reload, ALoweredFailedLoginBurstAppliesAtOnce) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto next = env.hub().config();
    next.login_failure_burst = 1;
    next.login_failure_refill_s = 600;
    env.hub().reconfigure(next);
    auto first = co_await raw_client::connect(env.endpoint);
    const auto wrong = login_message("alice", "wrong password");
    co_await first.send(wrong);
    co_await first.expect_fail(err::bad_credentials);
    // The address's only token is spent: the next attempt is not even checked.
    auto second = co_await raw_client::connect(env.endpoint);
    const auto wrong_again = login_message("bob", "wrong password");
    co_await second.send(wrong_again);
    co_await second.expect_fail(err::rate_limited);
  });
}

}  // namespace
}  // namespace switchboard::test
