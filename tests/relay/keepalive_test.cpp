// docs/protocol.md §8: PING/PONG, the relay's silence limit, the agent's line replacement.
#include "relay/harness.hpp"

namespace switchboard::test {
namespace {

namespace p = protocol;

TEST(KeepAlive, PingIsAnsweredWithPongEchoingTheNonce) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto c = co_await raw_client::connect(env.endpoint);
    co_await c.login("alice", password_of("alice"));
    for (const std::uint64_t nonce : {std::uint64_t{0}, std::uint64_t{1},
                                      std::uint64_t{0x0123456789abcdef}, ~std::uint64_t{0}}) {
      const p::ping ping{nonce};
      co_await c.send(ping);
      const auto pong = co_await c.expect<p::pong>();
      EXPECT_EQ(pong.nonce, nonce);
    }
  });
}

TEST(KeepAlive, RequestedIntervalIsClampedToTheRelaysLimits) {
  relay_env env;  // test_config(): 100 ms .. 25 s
  env.run([&]() -> awaitable<void> {
    auto fast = co_await raw_client::connect(env.endpoint);
    const auto ok_fast = co_await fast.login("alice", password_of("alice"), 10);
    EXPECT_EQ(ok_fast.keepalive_ms, 100u);
    auto slow = co_await raw_client::connect(env.endpoint);
    const auto ok_slow = co_await slow.login("bob", password_of("bob"), 3'600'000);
    EXPECT_EQ(ok_slow.keepalive_ms, 25'000u);
    auto exact = co_await raw_client::connect(env.endpoint);
    const auto ok_exact = co_await exact.login("carol", password_of("carol"), 1234);
    EXPECT_EQ(ok_exact.keepalive_ms, 1234u);
  });
}

TEST(KeepAlive, SilentLineIsClosedWithKeepaliveTimeout) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto c = co_await raw_client::connect(env.endpoint);
    const auto ok = co_await c.login("alice", password_of("alice"), 200);
    CO_ASSERT_EQ(ok.keepalive_ms, 200u);
    const auto logged_in_at = std::chrono::steady_clock::now();
    co_await c.expect_logged_out(err::keepalive_timeout, 10s);
    co_await c.expect_closed();
    // Not before 3 intervals of silence (with slack for the login's own processing time).
    EXPECT_GE(std::chrono::steady_clock::now() - logged_in_at, 400ms);
    CO_WAIT_UNTIL(env.hub().line_count() == 0, 5s);
  });
}

TEST(KeepAlive, PingingLineStaysOpen) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto c = co_await raw_client::connect(env.endpoint);
    co_await c.login("alice", password_of("alice"), 300);
    // Five intervals' worth of pings, one every third of an interval: every one is answered and
    // the line is never closed.
    asio::steady_timer tick(co_await asio::this_coro::executor);
    for (std::uint64_t i = 0; i < 15; ++i) {
      const p::ping ping{i};
      co_await c.send(ping);
      const auto pong = co_await c.expect<p::pong>();
      EXPECT_EQ(pong.nonce, i);
      tick.expires_after(100ms);
      co_await tick.async_wait(use_awaitable);
    }
    EXPECT_EQ(env.hub().lines_of("alice"), 1u);
  });
}

// The lines' deadlines live in the hub's single timer queue (no timer per line): a pinging line
// keeps a bounded number of queued entries, and the queue is empty once the last line is gone.
TEST(KeepAlive, DeadlineQueueStaysBoundedAndEmptiesWithTheLastLine) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto a = co_await raw_client::connect(env.endpoint);
    co_await a.login("alice", password_of("alice"), 100);
    auto b = co_await raw_client::connect(env.endpoint);
    co_await b.login("bob", password_of("bob"), 100);
    asio::steady_timer tick(co_await asio::this_coro::executor);
    // Ten silence deadlines' worth of pings: each deadline that fires is queued again, later.
    for (std::uint64_t i = 0; i < 30; ++i) {
      const p::ping ping{i};
      co_await a.send(ping);
      co_await a.expect<p::pong>();
      co_await b.send(ping);
      co_await b.expect<p::pong>();
      EXPECT_LE(env.hub().queued_deadlines(), 4u);
      tick.expires_after(30ms);
      co_await tick.async_wait(use_awaitable);
    }
    EXPECT_EQ(env.hub().line_count(), 2u);
    EXPECT_GE(env.hub().queued_deadlines(), 2u);  // one live entry per line at least
    a.close();
    b.close();
    CO_WAIT_UNTIL(env.hub().line_count() == 0, 5s);
    EXPECT_EQ(env.hub().queued_deadlines(), 0u);
  });
}

// A line that never logs in is closed by the same queue (the login deadline is its first entry).
TEST(KeepAlive, LoginDeadlineFiresFromTheSharedQueue) {
  auto cfg = test_config();
  cfg.login_timeout = 300ms;
  relay_env env(transport::plaintext, cfg);
  env.run([&]() -> awaitable<void> {
    auto c = co_await raw_client::connect(env.endpoint);
    CO_WAIT_UNTIL(env.hub().line_count() == 1, 5s);
    EXPECT_GE(env.hub().queued_deadlines(), 1u);
    co_await c.expect_logged_out(err::login_timeout, 10s);
    CO_WAIT_UNTIL(env.hub().line_count() == 0, 5s);
    EXPECT_EQ(env.hub().queued_deadlines(), 0u);
  });
}

TEST(KeepAlive, AgentReplacesALineWhosePingsGoUnanswered) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    mute_relay fake(env.io, 200);
    auto opts = env.agent_options("alice");
    opts.relay_port = fake.endpoint().port();
    opts.keepalive = 200ms;
    opts.vacant_lines = 1;
    auto alice = env.make_agent(opts);
    alice->start();
    co_await alice->wait_ready();
    // Each line logs in, pings, hears nothing, is replaced and reconnected.
    CO_WAIT_UNTIL(alice->stats().lines_lost >= 2 && fake.logins() >= 3, 10s);
    EXPECT_GE(alice->stats().password_logins + alice->stats().ticket_logins, 3u);
  });
}

class KeepAliveFlow : public ::testing::TestWithParam<transport> {};
INSTANTIATE_TEST_SUITE_P(Transports, KeepAliveFlow,
                         ::testing::Values(transport::plaintext, transport::tls), transport_name);

TEST_P(KeepAliveFlow, AgentLinesSurviveManyShortIntervals) {
  relay_env env(GetParam());
  env.run([&]() -> awaitable<void> {
    auto opts = env.agent_options("alice");
    opts.keepalive = 300ms;
    auto alice = env.make_agent(opts);
    co_await start_and_settle(alice, 2);
    const auto logins = env.logins();
    // Several intervals: pings go out and are answered; no line is replaced.
    CO_EXPECT_HOLDS(alice->stats().lines_lost == 0 && env.hub().lines_of("alice") == 2, 2s);
    EXPECT_EQ(env.logins(), logins);
  });
}

}  // namespace
}  // namespace switchboard::test
