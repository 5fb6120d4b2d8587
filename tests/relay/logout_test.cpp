// LOGOUT, and instances of one user announcing the same services (docs/protocol.md §7).
#include "relay/harness.hpp"

namespace switchboard::test {
namespace {

namespace p = protocol;

class Logout : public ::testing::TestWithParam<transport> {};
INSTANTIATE_TEST_SUITE_P(Transports, Logout,
                         ::testing::Values(transport::plaintext, transport::tls), transport_name);

// Accepts every call, counts it under `served`, and echoes.
agent::incoming_handler counting_echo(std::shared_ptr<int> served) {
  return [served](agent::incoming_call) -> awaitable<agent::answer> {
    ++*served;
    agent::answer a;
    a.serve = &echo;
    co_return a;
  };
}

awaitable<std::shared_ptr<agent::agent>> settled_agent(relay_env& env, std::string user,
                                                       agent::incoming_handler handler = {}) {
  auto a = env.make_agent(user);
  if (handler) a->set_incoming(test_services(), std::move(handler));
  co_await start_and_settle(a, 2);
  co_return a;
}

// The code a refused agent reports from `wait_ready()` / `call()` (OK if it did not throw).
awaitable<err> wait_ready_code(std::shared_ptr<agent::agent> a) {
  std::optional<err> code;
  try {
    co_await a->wait_ready();
  } catch (const agent::call_error& e) {
    code = e.code();
  }
  co_return code.value_or(err::ok);
}

TEST_P(Logout, EndsTheDevicesSessionsAndClosesAllItsLines) {
  relay_env env(GetParam());
  env.run([&]() -> awaitable<void> {
    auto bob = co_await settled_agent(env, "bob", echo_handler());
    auto alice = co_await settled_agent(env, "alice");
    auto s = co_await alice->call("bob", "echo");
    CO_WAIT_UNTIL(env.hub().lines_of("bob") == 3, 10s);  // two vacant, one paired
    co_await bob->logout();
    const auto got = co_await read_to_end(s);
    EXPECT_TRUE(got.empty());
    const auto t = s.terminated();
    CO_ASSERT_TRUE(t.has_value());
    EXPECT_EQ(t->code, err::peer_logged_out) << t->message;
    CO_WAIT_UNTIL(env.hub().lines_of("bob") == 0, 10s);
    CO_WAIT_UNTIL(bob->stats().lines_open == 0, 10s);
    // A logged-out agent stays out.
    CO_EXPECT_HOLDS(env.hub().lines_of("bob") == 0, 500ms);
    EXPECT_EQ(env.hub().line_count(), env.hub().lines_of("alice"));
    const auto offline = co_await try_call(alice, "bob", "echo");
    EXPECT_EQ(offline.code, err::target_offline);
  });
}

TEST(Logout, RawLogoutClosesEveryLineOfTheInstanceOnly) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto first = co_await raw_client::connect(env.endpoint);
    co_await first.login("bob", password_of("bob"));
    auto second = co_await raw_client::connect(env.endpoint);
    const auto reply = co_await second.ticket_login(first);
    CO_ASSERT_TRUE(std::holds_alternative<p::login_ok>(reply));
    auto other_instance = co_await raw_client::connect(env.endpoint);
    co_await other_instance.login("bob", password_of("bob"), 25'000, false);  // call-only

    const p::logout logout;
    co_await second.send(logout);
    co_await first.expect_logged_out(err::ok);
    co_await first.expect_closed();
    co_await second.expect_logged_out(err::ok);
    co_await second.expect_closed();
    co_await other_instance.expect_alive(5);  // the user's other instance stays logged in
    EXPECT_EQ(env.hub().lines_of("bob"), 1u);
  });
}

// docs/protocol.md §7: a second instance announcing the same service takes it over; the first
// is told (SERVICE-LOST) and keeps its line.
TEST(Logout, RawSecondInstanceWithTheSameServiceTakesItOver) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto old_line = co_await raw_client::connect(env.endpoint);
    p::login first = login_message("bob", password_of("bob"), 25'000, false);
    first.services = {"echo"};
    co_await old_line.send(first);
    (void)co_await old_line.expect<p::login_ok>();
    auto new_line = co_await raw_client::connect(env.endpoint);
    co_await new_line.login("bob", password_of("bob"));  // test_services(), echo among them
    const auto lost = co_await old_line.expect<p::service_lost>();
    EXPECT_EQ(lost.services, std::vector<std::string>{"echo"});
    co_await old_line.expect_alive(3);
    EXPECT_EQ(env.hub().lines_of("bob"), 2u);
    // Demands reach the new instance.
    auto alice = co_await raw_client::connect(env.endpoint);
    co_await alice.login("alice", password_of("alice"));
    co_await pair_raw(alice, new_line);
  });
}

TEST_P(Logout, ASecondInstanceWithTheSameServicesMakesTheFirstStop) {
  relay_env env(GetParam());
  auto served_by_first = std::make_shared<int>(0);
  auto served_by_second = std::make_shared<int>(0);
  env.run([&]() -> awaitable<void> {
    auto first = co_await settled_agent(env, "bob", counting_echo(served_by_first));
    auto second = co_await settled_agent(env, "bob", counting_echo(served_by_second));
    // The first instance learns that it lost every service and stops for good.
    const auto code = co_await wait_ready_code(first);
    EXPECT_EQ(code, err::duplicate_login);
    const auto call = co_await try_call(first, "alice", "echo");
    EXPECT_EQ(call.code, err::duplicate_login) << call.message;
    CO_WAIT_UNTIL(first->stats().lines_open == 0, 10s);
    CO_WAIT_UNTIL(env.hub().lines_of("bob") == 2u, 10s);
    // Demands go to the new instance.
    auto alice = co_await settled_agent(env, "alice");
    for (int i = 0; i < 3; ++i) {
      const auto outcome = co_await try_call(alice, "bob", "echo");
      EXPECT_EQ(outcome.code, err::ok) << outcome.message;
    }
    EXPECT_EQ(*served_by_first, 0);
    EXPECT_EQ(*served_by_second, 3);
    // The replaced agent does not come back (no knocking each other off in a loop).
    CO_EXPECT_HOLDS(first->stats().lines_open == 0, 500ms);
    EXPECT_EQ(first->stats().password_logins + first->stats().ticket_logins, 2u);
  });
}

TEST_P(Logout, DuplicateLoginEndsTheOldInstancesSessionsWithPeerLoggedOut) {
  relay_env env(GetParam());
  env.run([&]() -> awaitable<void> {
    auto first = co_await settled_agent(env, "bob", echo_handler());
    auto alice = co_await settled_agent(env, "alice");
    auto s = co_await alice->call("bob", "echo");
    auto second = co_await settled_agent(env, "bob", echo_handler());
    co_await read_to_end(s);
    const auto t = s.terminated();
    CO_ASSERT_TRUE(t.has_value());
    EXPECT_EQ(t->code, err::peer_logged_out) << t->message;
  });
}

TEST_P(Logout, CallOnlyInstanceDoesNotEvictTheAnsweringOne) {
  relay_env env(GetParam());
  auto served = std::make_shared<int>(0);
  env.run([&]() -> awaitable<void> {
    auto bob = co_await settled_agent(env, "bob", counting_echo(served));
    auto alice = co_await settled_agent(env, "alice", echo_handler());
    auto bob_pipe = co_await settled_agent(env, "bob");  // like `switchboard pipe` as bob
    // The call-only instance calls out...
    auto s = co_await bob_pipe->call("alice", "echo");
    const auto back = co_await send_and_read_all(s, bytes_of("from the pipe"));
    EXPECT_EQ(text_of(back), "from the pipe");
    // ...while the answering instance keeps its lines and keeps answering.
    const auto outcome = co_await try_call(alice, "bob", "echo");
    EXPECT_EQ(outcome.code, err::ok) << outcome.message;
    EXPECT_EQ(*served, 1);
    EXPECT_EQ(bob->stats().lines_lost, 0u);
    const auto code = co_await wait_ready_code(bob);
    EXPECT_EQ(code, err::ok);
  });
}

}  // namespace
}  // namespace switchboard::test
