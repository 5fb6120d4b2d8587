// Vacant line pools (agent) and the per-user line limit (docs/protocol.md §6, §7).
#include "relay/harness.hpp"

namespace switchboard::test {
namespace {

namespace p = protocol;

class Lines : public ::testing::TestWithParam<transport> {};
INSTANTIATE_TEST_SUITE_P(Transports, Lines, ::testing::Values(transport::plaintext, transport::tls),
                         transport_name);

TEST_P(Lines, AgentHoldsTheConfiguredNumberOfVacantLines) {
  relay_env env(GetParam());
  env.run([&]() -> awaitable<void> {
    auto opts = env.agent_options("bob");
    opts.vacant_lines = 3;
    auto bob = env.make_agent(opts);
    bob->set_incoming(test_services(), echo_handler());
    co_await start_and_settle(bob, 3);
    EXPECT_EQ(bob->stats().lines_open, 3u);
    EXPECT_EQ(bob->stats().lines_vacant, 3u);
    EXPECT_EQ(env.hub().lines_of("bob"), 3u);
    EXPECT_EQ(env.hub().line_count(), 3u);
  });
}

TEST_P(Lines, PairedLineIsReplacedByANewVacantLine) {
  relay_env env(GetParam());
  env.run([&]() -> awaitable<void> {
    auto bob = env.make_agent("bob");
    bob->set_incoming(test_services(), echo_handler());
    co_await start_and_settle(bob, 2);
    auto alice = env.make_agent("alice");
    co_await start_and_settle(alice, 2);
    const auto bob_ticket_logins = bob->stats().ticket_logins;

    auto s = co_await alice->call("bob", "echo");
    // bob: one line paired, and a new one opened so that two are vacant again.
    CO_WAIT_UNTIL(bob->stats().lines_open == 3 && bob->stats().lines_vacant == 2, 10s);
    CO_WAIT_UNTIL(env.hub().lines_of("bob") == 3, 10s);
    // The new line logged in with the instance's ticket, not the password.
    EXPECT_GT(bob->stats().ticket_logins, bob_ticket_logins);
    // Same on the caller's side.
    CO_WAIT_UNTIL(alice->stats().lines_open == 3 && alice->stats().lines_vacant == 2, 10s);
    co_await s.close();
  });
}

// docs/protocol.md §5 step 9: after a session, the released line is vacant again next to the line
// opened while it was paired; the surplus one is closed once it has been idle for surplus_idle.
TEST_P(Lines, SurplusVacantLineIsClosedAfterItsIdleTime) {
  relay_env env(GetParam());
  env.run([&]() -> awaitable<void> {
    auto opts = env.agent_options("bob");
    opts.surplus_idle = 300ms;
    auto bob = env.make_agent(opts);
    bob->set_incoming(test_services(), echo_handler());
    co_await start_and_settle(bob, 2);
    auto alice = env.make_agent("alice");
    co_await start_and_settle(alice, 2);
    auto s = co_await alice->call("bob", "echo");
    CO_WAIT_UNTIL(bob->stats().lines_open == 3 && bob->stats().lines_vacant == 2, 10s);
    co_await s.close();
    // Released: three vacant for a moment, then back to the configured two, at the relay too.
    CO_WAIT_UNTIL(bob->stats().lines_open == 2 && bob->stats().lines_vacant == 2, 10s);
    CO_WAIT_UNTIL(env.hub().lines_of("bob") == 2, 10s);
    EXPECT_EQ(bob->stats().lines_lost, 0u) << "closing a surplus line is not a lost line";
    // bob can still be called on what is left.
    auto again = co_await alice->call("bob", "echo");
    co_await again.close();
  });
}

// An idle agent does not poll its pool: its maintenance loop runs when a line changes, when a
// back-off or a surplus line's idle time ends, and otherwise once a second (it ran every 10 ms,
// about 100 wake-ups a second per idle device).
TEST_P(Lines, AnIdleAgentWakesAtMostOnceASecond) {
  relay_env env(GetParam());
  env.run([&]() -> awaitable<void> {
    auto bob = env.make_agent("bob");
    bob->set_incoming(test_services(), echo_handler());
    co_await start_and_settle(bob, 2);
    const auto before = bob->stats().maintenance_passes;
    asio::steady_timer idle(env.io);
    idle.expires_after(2s);
    co_await idle.async_wait(use_awaitable);
    const auto passes = bob->stats().maintenance_passes - before;
    EXPECT_GE(passes, 1u) << "the loop still runs once a second";
    EXPECT_LE(passes, 4u) << "the pool is polled";
    EXPECT_EQ(bob->stats().lines_vacant, 2u);
  });
}

TEST(Lines, MaxLinesIsEnforcedWithTooManyLines) {
  relay_env env;
  env.users->set_max_lines("bob", 2);
  env.run([&]() -> awaitable<void> {
    auto first = co_await raw_client::connect(env.endpoint);
    const auto ok = co_await first.login("bob", password_of("bob"));
    EXPECT_EQ(ok.max_lines, 2u);
    auto second = co_await raw_client::connect(env.endpoint);
    const auto reply2 = co_await second.ticket_login(first);
    CO_ASSERT_TRUE(std::holds_alternative<p::login_ok>(reply2));
    auto third = co_await raw_client::connect(env.endpoint);
    const auto reply3 = co_await third.ticket_login(first);
    const auto* fail = std::get_if<p::fail>(&reply3);
    CO_ASSERT_TRUE(fail != nullptr);
    EXPECT_EQ(fail->code, err::too_many_lines);
    co_await third.expect_closed();
    // The limit counts every instance of the user: a password login of another instance fails too.
    auto other = co_await raw_client::connect(env.endpoint);
    const auto m = login_message("bob", password_of("bob"), 25'000, false);
    co_await other.send(m);
    co_await other.expect_fail(err::too_many_lines);
    EXPECT_EQ(env.hub().lines_of("bob"), 2u);
    // A line that closes makes room again.
    second.close();
    CO_WAIT_UNTIL(env.hub().lines_of("bob") == 1, 5s);
    auto again = co_await raw_client::connect(env.endpoint);
    const auto reply4 = co_await again.ticket_login(first);
    EXPECT_TRUE(std::holds_alternative<p::login_ok>(reply4));
  });
}

TEST_P(Lines, AgentStaysWithinMaxLines) {
  relay_env env(GetParam());
  env.users->set_max_lines("bob", 2);
  env.run([&]() -> awaitable<void> {
    auto opts = env.agent_options("bob");
    opts.vacant_lines = 4;
    auto bob = env.make_agent(opts);
    bob->set_incoming(test_services(), echo_handler());
    bob->start();
    co_await bob->wait_ready();
    CO_WAIT_UNTIL(env.hub().lines_of("bob") == 2, 10s);
    CO_EXPECT_HOLDS(env.hub().lines_of("bob") <= 2, 500ms);
    // Still serving calls on the lines it has.
    auto alice = env.make_agent("alice");
    co_await start_and_settle(alice, 2);
    const auto outcome = co_await try_call(alice, "bob", "echo");
    EXPECT_EQ(outcome.code, err::ok) << outcome.message;
  });
}

}  // namespace
}  // namespace switchboard::test
