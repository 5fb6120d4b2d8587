// Login tickets (docs/protocol.md §6): checked with the ticket key and the user store alone, so
// they outlive the relay that issued them; dead after a password change, the user's removal,
// their expiry or the instance's logout; a refused one costs no rate-limit token.
#include "relay/tickets.hpp"
#include "relay/harness.hpp"

namespace switchboard::test {
namespace {

namespace p = protocol;

// alice logged in with her password on one raw line (closed again: the relay forgets her device).
awaitable<raw_client> alice_logged_in_once(relay_env& env) {
  auto c = co_await raw_client::connect(env.endpoint);
  co_await c.login("alice", password_of("alice"));
  c.close();
  CO_WAIT_UNTIL(env.hub().line_count() == 0, 5s);
  co_return c;
}

// The reply to a ticket login as `first`'s instance with its ticket, on a new line to `relay`.
awaitable<p::message> ticket_login_at(tcp::endpoint relay, const raw_client& first) {
  auto c = co_await raw_client::connect(relay);
  auto reply = co_await c.ticket_login(first);
  co_return reply;
}

err code_of(const p::message& m) {
  if (std::holds_alternative<p::login_ok>(m)) return err::ok;
  if (const auto* f = std::get_if<p::fail>(&m)) return f->code;
  return err::protocol_error;
}

TEST(Tickets, AcceptedByARestartedRelayWithoutAPasswordCheck) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto first = co_await raw_client::connect(env.endpoint);
    co_await first.login("alice", password_of("alice"));
    co_await env.restart_relay();
    co_await first.expect_logged_out_or_closed(err::relay_shutdown);
    auto second = co_await raw_client::connect(env.endpoint);
    const auto reply = co_await second.ticket_login(first);
    CO_ASSERT_EQ(code_of(reply), err::ok);
    // The new relay knows the device now: its next line costs no store read either.
    auto third = co_await raw_client::connect(env.endpoint);
    const auto reply3 = co_await third.ticket_login(second);
    EXPECT_EQ(code_of(reply3), err::ok);
    EXPECT_EQ(env.counters().password_checks, 0u);
    EXPECT_EQ(env.counters().ticket_logins, 2u);
    EXPECT_EQ(env.counters().ticket_store_reads, 1u);
    EXPECT_EQ(env.hub().lines_of("alice"), 2u);
    // Its settings came from the store: another user may call it.
    auto bob = co_await raw_client::connect(env.endpoint);
    co_await bob.login("bob", password_of("bob"));
    third.close();  // the call goes to the only vacant line left
    CO_WAIT_UNTIL(env.hub().lines_of("alice") == 1, 5s);
    co_await pair_raw(bob, second);
  });
}

// Relay nodes sharing the key and the store accept each other's tickets; another key does not.
TEST(Tickets, AnotherNodeAcceptsThemOnlyWithTheSameKey) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    const auto same_key = env.another_relay(env.ticket_key);
    const auto other_key = env.another_relay(relay::random_ticket_key());
    auto first = co_await raw_client::connect(env.endpoint);
    co_await first.login("alice", password_of("alice"));
    const auto refused = co_await ticket_login_at(other_key, first);
    EXPECT_EQ(code_of(refused), err::bad_credentials);
    const auto accepted = co_await ticket_login_at(same_key, first);
    EXPECT_EQ(code_of(accepted), err::ok);
  });
}

TEST(Tickets, RefusedAfterAPasswordChange) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    const auto first = co_await alice_logged_in_once(env);
    env.users->set_password("alice", "a new password");
    const auto reply = co_await ticket_login_at(env.endpoint, first);
    EXPECT_EQ(code_of(reply), err::bad_credentials);
    EXPECT_EQ(env.counters().failed_ticket_logins, 1u);
  });
}

TEST(Tickets, RefusedAfterTheUserWasRemovedEvenIfAddedAgain) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    const auto first = co_await alice_logged_in_once(env);
    CO_ASSERT_TRUE(env.users->remove_user("alice"));
    const auto removed = co_await ticket_login_at(env.endpoint, first);
    EXPECT_EQ(code_of(removed), err::bad_credentials);
    env.users->add_user("alice", password_of("alice"));  // same password, new stored hash
    const auto again = co_await ticket_login_at(env.endpoint, first);
    EXPECT_EQ(code_of(again), err::bad_credentials);
    EXPECT_EQ(env.counters().failed_ticket_logins, 2u);
  });
}

// Tickets made here with the relay's key: the one that has expired is refused, the same one
// valid a minute longer is taken (so the refusal is the expiry's doing).
TEST(Tickets, RefusedOnceExpired) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    const auto credential = env.users->find_user("alice")->credential;
    const auto instance = random_instance();
    const auto now = relay::unix_now();
    const auto expired = relay::make_ticket(env.ticket_key, "alice", instance, now - 1, credential);
    const auto valid = relay::make_ticket(env.ticket_key, "alice", instance, now + 60, credential);
    auto c1 = co_await raw_client::connect(env.endpoint);
    const auto refused = co_await c1.ticket_login("alice", instance, expired);
    EXPECT_EQ(code_of(refused), err::bad_credentials);
    auto c2 = co_await raw_client::connect(env.endpoint);
    const auto accepted = co_await c2.ticket_login("alice", instance, valid);
    EXPECT_EQ(code_of(accepted), err::ok);
  });
}

TEST(Tickets, RevokedByLogout) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto first = co_await raw_client::connect(env.endpoint);
    co_await first.login("alice", password_of("alice"));
    auto second = co_await raw_client::connect(env.endpoint);
    const auto reply = co_await second.ticket_login(first);
    CO_ASSERT_EQ(code_of(reply), err::ok);
    co_await first.send(p::logout{});
    co_await first.expect_logged_out(err::ok);
    co_await second.expect_logged_out(err::ok);
    CO_WAIT_UNTIL(env.hub().line_count() == 0, 5s);
    const auto first_again = co_await ticket_login_at(env.endpoint, first);
    EXPECT_EQ(code_of(first_again), err::bad_credentials);
    const auto second_again = co_await ticket_login_at(env.endpoint, second);
    EXPECT_EQ(code_of(second_again), err::bad_credentials);
    // Other instances of the user are not affected.
    auto other = co_await raw_client::connect(env.endpoint);
    co_await other.login("alice", password_of("alice"));
    const auto other_again = co_await ticket_login_at(env.endpoint, other);
    EXPECT_EQ(code_of(other_again), err::ok);
  });
}

// Refused tickets (expired, and with a wrong MAC) from one address, more than a bucket holds,
// spend no token: ten wrong passwords after them are still checked, not RATE_LIMITED.
TEST(Tickets, RefusedTicketsSpendNoRateLimitToken) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    const auto credential = env.users->find_user("alice")->credential;
    const auto expired =
        relay::make_ticket(env.ticket_key, "alice", random_instance(), 1, credential);
    p::ticket forged = relay::make_ticket(env.ticket_key, "alice", random_instance(),
                                          relay::unix_now() + 60, credential);
    forged.back() ^= 1;
    for (int i = 0; i < 12; ++i) {
      auto c = co_await raw_client::connect(env.endpoint);
      const p::ticket& t = i % 2 ? forged : expired;
      const auto reply = co_await c.ticket_login("alice", random_instance(), t);
      EXPECT_EQ(code_of(reply), err::bad_credentials);
    }
    EXPECT_EQ(env.counters().password_checks, 0u);
    for (int i = 0; i < 10; ++i) {
      auto c = co_await raw_client::connect(env.endpoint);
      const auto m = login_message("alice", "a wrong password");
      co_await c.send(m);
      co_await c.expect_fail(err::bad_credentials);
    }
    EXPECT_EQ(env.counters().password_checks, 10u);
  });
}

// Agents come back after a relay restart with their tickets: no password check on the new relay,
// not even for an agent's first line, and calls work again.
TEST(Tickets, AgentsComeBackAfterARestartWithoutPasswordChecks) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto [alice, bob] = co_await start_pair(env, echo_handler());
    const auto before = co_await try_call(alice, "bob", "echo");
    EXPECT_EQ(before.code, err::ok) << before.message;
    co_await env.restart_relay();
    CO_WAIT_UNTIL(env.hub().lines_of("alice") >= 2 && env.hub().lines_of("bob") >= 2, 10s);
    co_await settle(alice, 2);
    co_await settle(bob, 2);
    const auto after = co_await try_call(alice, "bob", "echo");
    EXPECT_EQ(after.code, err::ok) << after.message;
    EXPECT_EQ(env.counters().password_checks, 0u);
    EXPECT_EQ(env.counters().failed_logins, 0u);
    EXPECT_GE(env.counters().ticket_logins, 4u);
    // Each agent's device was unknown to the new relay: read from the store, not checked again.
    EXPECT_GE(env.counters().ticket_store_reads, 2u);
    EXPECT_LE(env.counters().ticket_store_reads, env.counters().ticket_logins);
  });
}

// An idle agent renews its ticket before it expires (one more line logs in with it), so after a
// restart long past its first ticket's expiry it still comes back without a password check.
TEST(Tickets, AnIdleAgentRenewsItsTicketBeforeItExpires) {
  auto cfg = test_config();
  cfg.ticket_lifetime = std::chrono::seconds(4);
  relay_env env(transport::plaintext, cfg);
  env.run([&]() -> awaitable<void> {
    auto opts = env.agent_options("bob");
    opts.ticket_renew_min = 500ms;
    opts.surplus_idle = 500ms;
    auto bob = env.make_agent(opts);
    bob->set_incoming(test_services(), echo_handler());
    co_await start_and_settle(bob, 2);
    const auto first_login = relay::unix_now();
    // Its first ticket expires 4 s after first_login (3 s at least, in whole seconds).
    CO_WAIT_UNTIL(relay::unix_now() >= first_login + 5, 10s);
    EXPECT_GE(env.counters().ticket_logins, 3u) << "renewals";
    EXPECT_EQ(bob->stats().lines_lost, 0u);
    co_await env.restart_relay();
    CO_WAIT_UNTIL(env.hub().lines_of("bob") >= 2, 10s);
    EXPECT_EQ(env.counters().password_checks, 0u);
    EXPECT_EQ(env.counters().failed_ticket_logins, 0u);
  });
}

}  // namespace
}  // namespace switchboard::test
