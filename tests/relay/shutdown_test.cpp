// Graceful stop (docs/protocol.md §9): idle lines get LOGGED-OUT(RELAY_SHUTDOWN) at once, running
// sessions may finish within the drain timeout, the rest are ended.
#include "relay/harness.hpp"

namespace switchboard::test {
namespace {

namespace p = protocol;

class Shutdown : public ::testing::TestWithParam<transport> {};
INSTANTIATE_TEST_SUITE_P(Transports, Shutdown,
                         ::testing::Values(transport::plaintext, transport::tls), transport_name);

TEST_P(Shutdown, StopClosesIdleLinesAndLetsARunningSessionFinish) {
  auto cfg = test_config();
  cfg.drain_timeout = 20s;
  relay_env env(GetParam(), cfg);
  env.run([&]() -> awaitable<void> {
    auto bob = env.make_agent("bob");
    bob->set_incoming(test_services(), echo_handler());
    co_await start_and_settle(bob, 2);
    auto alice = env.make_agent("alice");
    co_await start_and_settle(alice, 2);
    auto s = co_await alice->call("bob", "echo");
    std::optional<raw_client> idle;  // a raw idle line too (raw clients speak plaintext only)
    if (env.mode == transport::plaintext) {
      auto c = co_await raw_client::connect(env.endpoint);
      co_await c.login("carol", password_of("carol"));
      idle.emplace(std::move(c));
    }

    env.server->stop();
    if (idle) {
      co_await idle->expect_logged_out(err::relay_shutdown);
      co_await idle->expect_closed();
    }
    // Only the two paired lines are left (the agents cannot reconnect: nothing accepts).
    CO_WAIT_UNTIL(env.hub().line_count() == 2, 10s);
    // The session still works...
    const auto payload = random_bytes(200'000, 4);
    const auto back = co_await send_and_read_all(s, payload);
    EXPECT_TRUE(back == payload);
    co_await s.close();
    // ...and once it is released its lines are closed too.
    CO_WAIT_UNTIL(env.hub().line_count() == 0, 10s);
    const auto t = s.terminated();
    CO_ASSERT_TRUE(t.has_value());
    EXPECT_EQ(t->code, err::ok) << t->message;
  });
}

TEST(Shutdown, LineNotYetLoggedInIsClosedOnStop) {
  auto cfg = test_config();
  cfg.drain_timeout = 20s;
  relay_env env(transport::plaintext, cfg);
  env.run([&]() -> awaitable<void> {
    // A connection accepted before the stop, logging in after it.
    auto late = co_await raw_client::connect(env.endpoint);
    CO_WAIT_UNTIL(env.hub().line_count() == 1, 5s);
    env.server->stop();
    const auto m = login_message("alice", password_of("alice"));
    co_await late.send(m);
    co_await late.expect_logged_out_or_closed(err::relay_shutdown);
  });
}

TEST(Shutdown, SessionsOutlivingTheDrainTimeoutAreEnded) {
  auto cfg = test_config();
  cfg.drain_timeout = 300ms;
  relay_env env(transport::plaintext, cfg);
  env.run([&]() -> awaitable<void> {
    auto [alice, bob] = co_await paired_raw(env.endpoint);
    env.server->stop();
    // Nobody ends the session: after the drain timeout the relay ends it.
    for (auto* c : {&alice, &bob}) {
      const auto f = co_await c->read(10s);
      CO_ASSERT_TRUE(f.has_value());
      const auto* t = f->msg ? std::get_if<p::terminate>(&*f->msg) : nullptr;
      const auto* lo = f->msg ? std::get_if<p::logged_out>(&*f->msg) : nullptr;
      CO_ASSERT_TRUE(t != nullptr || lo != nullptr);
      EXPECT_EQ(t ? t->code : lo->code, err::relay_shutdown) << describe(*f);
    }
    CO_WAIT_UNTIL(env.hub().line_count() == 0, 10s);
  });
}

// docs/protocol.md §9: sessions still running after the drain timeout end with
// TERMINATE(RELAY_SHUTDOWN), which the application sees as the session's termination reason.
TEST_P(Shutdown, SessionsOutlivingTheDrainTimeoutEndWithRelayShutdown) {
  auto cfg = test_config();
  cfg.drain_timeout = 300ms;
  relay_env env(GetParam(), cfg);
  env.run([&]() -> awaitable<void> {
    auto bob = env.make_agent("bob");
    bob->set_incoming(test_services(), echo_handler());
    co_await start_and_settle(bob, 2);
    auto alice = env.make_agent("alice");
    co_await start_and_settle(alice, 2);
    auto s = co_await alice->call("bob", "echo");
    env.server->stop();
    co_await read_to_end(s);
    const auto t = s.terminated();
    CO_ASSERT_TRUE(t.has_value());
    EXPECT_EQ(t->code, err::relay_shutdown) << t->message;
  });
}

}  // namespace
}  // namespace switchboard::test
