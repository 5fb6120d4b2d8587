// A running relay follows changes to its user store (relay/settings_watch.cpp,
// docs/configuration.md): made through the relay's own store object or, as `switchboard-relay user
// ...` does, through another connection to the same database.
#include "relay/harness.hpp"

namespace switchboard::test {
namespace {

namespace p = protocol;

relay::relay_config polling_config() {
  auto c = test_config();
  c.settings_poll = 100ms;
  return c;
}

// The command line's view of the relay's database: another connection.
std::unique_ptr<store::user_store> command_line_store(relay_env& env) {
  return store::open_sqlite_store(env.dir.path() / "users.db", store::hash_cost::minimum);
}

// Calls until the outcome is `want` (every 50 ms, 5 s at most); returns the last outcome.
awaitable<call_outcome> call_until(std::shared_ptr<agent::agent> caller, std::string peer,
                                   err want) {
  asio::steady_timer pause(co_await asio::this_coro::executor);
  call_outcome last;
  for (int i = 0; i < 100; ++i) {
    last = co_await try_call(caller, peer, "echo");
    if (last.code == want) break;
    pause.expires_after(50ms);
    co_await pause.async_wait(use_awaitable);
  }
  co_return last;
}

awaitable<std::shared_ptr<agent::agent>> started(relay_env& env, std::string user, bool answers) {
  auto a = env.make_agent(user);
  if (answers) a->set_incoming(test_services(), echo_handler());
  co_await start_and_settle(a, 2);
  co_return a;
}

TEST(Settings, AllowListChangeReachesALoggedInTarget) {
  relay_env env(transport::plaintext, polling_config());
  env.run([&]() -> awaitable<void> {
    auto bob = co_await started(env, "bob", true);
    auto alice = co_await started(env, "alice", false);
    auto carol = co_await started(env, "carol", false);
    const auto before = co_await try_call(alice, "bob", "echo");
    EXPECT_EQ(before.code, err::ok) << before.message;
    const auto logins = env.counters().password_logins;

    auto cli = command_line_store(env);
    cli->set_allow_list("bob", {"carol"});
    const auto refused = co_await call_until(alice, "bob", err::not_allowed);
    EXPECT_EQ(refused.code, err::not_allowed) << refused.message;
    const auto allowed = co_await try_call(carol, "bob", "echo");
    EXPECT_EQ(allowed.code, err::ok) << allowed.message;

    env.users->set_allow_list("bob", {});  // the relay's own store object: anyone again
    const auto again = co_await call_until(alice, "bob", err::ok);
    EXPECT_EQ(again.code, err::ok) << again.message;
    EXPECT_EQ(env.counters().password_logins, logins) << "applied without a new login";
    EXPECT_GE(env.hub().settings_reloads(), 2u);
  });
}

TEST(Settings, RemovedUserIsLoggedOutAndStaysOut) {
  relay_env env(transport::plaintext, polling_config());
  env.run([&]() -> awaitable<void> {
    auto bob = co_await raw_client::connect(env.endpoint);
    co_await bob.login("bob", password_of("bob"));
    auto alice = co_await raw_client::connect(env.endpoint);
    co_await alice.login("alice", password_of("alice"));

    auto cli = command_line_store(env);
    CO_ASSERT_TRUE(cli->remove_user("bob"));
    co_await bob.expect_logged_out(err::bad_credentials, 5s);
    // Its ticket went with the user's credential, and its password with the user.
    auto again = co_await raw_client::connect(env.endpoint);
    const auto token_reply = co_await again.ticket_login(bob);
    const auto* refused = std::get_if<p::fail>(&token_reply);
    CO_ASSERT_TRUE(refused != nullptr);  // a token login of a removed user is refused
    EXPECT_EQ(refused->code, err::bad_credentials);
    auto retry = co_await raw_client::connect(env.endpoint);
    const auto m = login_message("bob", password_of("bob"));
    co_await retry.send(m);
    co_await retry.expect_fail(err::bad_credentials);
    co_await alice.expect_alive(7);  // others are untouched
  });
}

TEST(Settings, PasswordChangeLogsOutTheDevicesThatUsedTheOldOne) {
  relay_env env(transport::plaintext, polling_config());
  env.run([&]() -> awaitable<void> {
    auto bob = co_await raw_client::connect(env.endpoint);
    co_await bob.login("bob", password_of("bob"));
    auto bob_second_line = co_await raw_client::connect(env.endpoint);
    const auto token_reply = co_await bob_second_line.ticket_login(bob);
    CO_ASSERT_TRUE(std::holds_alternative<p::login_ok>(token_reply));
    auto alice = co_await raw_client::connect(env.endpoint);
    co_await alice.login("alice", password_of("alice"));

    auto cli = command_line_store(env);
    cli->set_password("bob", "a new password");
    co_await bob.expect_logged_out(err::bad_credentials, 5s);
    co_await bob_second_line.expect_logged_out(err::bad_credentials, 5s);
    auto renewed = co_await raw_client::connect(env.endpoint);
    co_await renewed.login("bob", "a new password");
    // Logged in with the new password: the next polls leave it alone.
    asio::steady_timer pause(co_await asio::this_coro::executor);
    pause.expires_after(400ms);
    co_await pause.async_wait(use_awaitable);
    co_await renewed.expect_alive(9);
    co_await alice.expect_alive(9);
  });
}

// An agent logged out for BAD_CREDENTIALS (its user removed, or its password changed) gives up:
// it ends with that code and tries no login again, so a removed device cannot empty its address's
// rate-limit bucket for the devices behind it (docs/configuration.md).
TEST(Settings, AnAgentLoggedOutForBadCredentialsGivesUp) {
  relay_env env(transport::plaintext, polling_config());
  env.run([&]() -> awaitable<void> {
    auto bob = co_await started(env, "bob", true);
    auto cli = command_line_store(env);
    CO_ASSERT_TRUE(cli->remove_user("bob"));
    CO_WAIT_UNTIL(bob->fatal() != nullptr, 10s);
    std::optional<err> code;
    try {
      std::rethrow_exception(bob->fatal());
    } catch (const agent::call_error& e) {
      code = e.code();
    }
    EXPECT_EQ(code, err::bad_credentials);
    CO_WAIT_UNTIL(bob->stats().lines_open == 0 && env.hub().line_count() == 0, 10s);
    EXPECT_EQ(env.counters().failed_logins, 0u) << "the agent tried its password again";
    EXPECT_EQ(env.counters().failed_ticket_logins, 0u) << "the agent tried its ticket again";
  });
}

// Unchanged settings are not read again: the generation check alone, every poll.
TEST(Settings, NoChangeNoReload) {
  relay_env env(transport::plaintext, polling_config());
  env.run([&]() -> awaitable<void> {
    auto bob = co_await started(env, "bob", true);
    asio::steady_timer pause(co_await asio::this_coro::executor);
    // The first polls bring the devices to the current generation: wait until three polls in a
    // row read nothing (5 s at most), however slowly a loaded machine runs them.
    auto reloads = env.hub().settings_reloads();
    for (int i = 0; i < 16; ++i) {
      pause.expires_after(300ms);
      co_await pause.async_wait(use_awaitable);
      const auto now = env.hub().settings_reloads();
      if (now == reloads) break;
      reloads = now;
    }
    pause.expires_after(500ms);  // five more polls
    co_await pause.async_wait(use_awaitable);
    EXPECT_EQ(env.hub().settings_reloads(), reloads);
  });
}

}  // namespace
}  // namespace switchboard::test
