// Elastic lines (docs/protocol.md §5 step 1): a demand for a target with no vacant line waits
// for one instead of failing, the relay asks the target's agent for lines (NEED-LINES), and
// TARGET_BUSY answers only a target at max_lines.
#include "relay/harness.hpp"

namespace switchboard::test {
namespace {

namespace p = protocol;

class Elastic : public ::testing::TestWithParam<transport> {};
INSTANTIATE_TEST_SUITE_P(Transports, Elastic,
                         ::testing::Values(transport::plaintext, transport::tls), transport_name);

// A burst of concurrent calls, far more than the target's vacant lines, all get through with
// default settings: the target's agent opens lines while the demands wait.
TEST_P(Elastic, ABurstOfCallsWaitsForLinesInsteadOfFailing) {
  relay_env env(GetParam());
  env.run([&]() -> awaitable<void> {
    auto agents = co_await start_pair(env, echo_handler());
    constexpr int calls = 100;
    int ok = 0;
    int done = 0;
    std::vector<std::string> failures;
    for (int i = 0; i < calls; ++i) {
      asio::co_spawn(
          env.io,
          [&, i]() -> awaitable<void> {
            try {
              auto s = co_await agents.alice->call("bob", "echo");
              const auto sent = random_bytes(1000 + static_cast<std::size_t>(i), 7 + i);
              const auto back = co_await send_and_read_all(s, sent);
              if (back == sent) ++ok;
              co_await s.close();
            } catch (const std::exception& e) {
              failures.push_back(e.what());
            }
            ++done;
          },
          asio::detached);
    }
    CO_WAIT_UNTIL(done == calls, 30s);
    EXPECT_EQ(ok, calls) << (failures.empty() ? std::string() : failures.front());
    EXPECT_TRUE(failures.empty());
    EXPECT_GT(env.counters().demands_waited, 0u);
    EXPECT_GT(env.counters().need_lines_sent, 0u);
    EXPECT_GT(agents.bob->stats().need_lines, 0u);
  });
}

// The raw view: a target with one line that is ringing gets NEED-LINES(1) for a second demand,
// and the demand rings the target's next line the moment it logs in.
TEST(Elastic, AWaitingDemandRingsTheTargetsNextLine) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto bob = co_await raw_client::connect(env.endpoint);
    co_await bob.login("bob", password_of("bob"));
    auto alice1 = co_await raw_client::connect(env.endpoint);
    co_await alice1.login("alice", password_of("alice"), 25'000, false);
    auto alice2 = co_await raw_client::connect(env.endpoint);
    const auto second = co_await alice2.ticket_login(alice1, false);
    CO_ASSERT_TRUE(std::holds_alternative<p::login_ok>(second));
    const p::message d1 = p::demand{"bob", "echo"};
    co_await alice1.send(d1);
    const auto in1 = co_await bob.expect<p::incoming>();
    const p::message d2 = p::demand{"bob", "echo"};
    co_await alice2.send(d2);
    const auto need = co_await bob.expect<p::need_lines>();
    EXPECT_EQ(need.count, 1);
    auto bob2 = co_await raw_client::connect(env.endpoint);
    const auto ok = co_await bob2.ticket_login(bob);
    CO_ASSERT_TRUE(std::holds_alternative<p::login_ok>(ok));
    const auto in2 = co_await bob2.expect<p::incoming>();
    EXPECT_NE(in2.session, in1.session);
    EXPECT_EQ(in2.caller, "alice");
    const p::message acc = p::accept{in2.session};
    co_await bob2.send(acc);
    const auto c = co_await alice2.expect<p::connected>();
    EXPECT_EQ(c.session, in2.session);
  });
}

// The next INCOMING on `target`, skipping NEED-LINES (how many arrive depends on timing).
awaitable<p::incoming> next_incoming(raw_client& target) {
  for (int i = 0; i < 16; ++i) {
    auto f = co_await target.read();
    if (!f) fail_at(std::source_location::current(), "the relay closed the line");
    if (f->msg && std::holds_alternative<p::need_lines>(*f->msg)) continue;
    if (!f->msg || !std::holds_alternative<p::incoming>(*f->msg)) {
      fail_at(std::source_location::current(), "unexpected frame " + describe(*f));
    }
    co_return std::get<p::incoming>(*f->msg);
  }
  fail_at(std::source_location::current(), "no INCOMING among 16 frames");
}

// Waiting demands take lines in the order they arrived, also a line freed by a REJECT.
TEST(Elastic, WaitingDemandsTakeFreedLinesInOrder) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto bob = co_await raw_client::connect(env.endpoint);
    co_await bob.login("bob", password_of("bob"));
    std::vector<raw_client> callers;
    auto first = co_await raw_client::connect(env.endpoint);
    co_await first.login("alice", password_of("alice"), 25'000, false);
    callers.push_back(std::move(first));
    for (int i = 0; i < 3; ++i) {
      auto c = co_await raw_client::connect(env.endpoint);
      const auto r = co_await c.ticket_login(callers.front(), false);
      CO_ASSERT_TRUE(std::holds_alternative<p::login_ok>(r));
      callers.push_back(std::move(c));
    }
    // Caller 0 rings bob's only line; callers 1, 2 and 3 wait, in that order.
    const p::message d = p::demand{"bob", "echo"};
    co_await callers[0].send(d);
    auto ringing = co_await next_incoming(bob);
    for (int i = 1; i <= 3; ++i) co_await callers[static_cast<std::size_t>(i)].send(d);
    std::uint32_t last = ringing.session;
    for (std::size_t i = 1; i <= 3; ++i) {
      // bob declines the ringing call: the line is vacant again and the next waiter rings it.
      const p::message no = p::reject{ringing.session, err::rejected, "not now"};
      co_await bob.send(no);
      (void)co_await callers[i - 1].expect_fail(err::rejected);
      ringing = co_await next_incoming(bob);
      EXPECT_GT(ringing.session, last) << "demand " << i << " overtaken";
      last = ringing.session;
    }
    const p::message yes = p::accept{ringing.session};
    co_await bob.send(yes);
    const auto c = co_await callers[3].expect<p::connected>();
    EXPECT_EQ(c.session, ringing.session);
  });
}

// A target at max_lines with none vacant: TARGET_BUSY at once, and the message says why.
TEST(Elastic, ATargetAtMaxLinesIsBusy) {
  relay_env env;
  env.users->set_max_lines("bob", 1);
  env.run([&]() -> awaitable<void> {
    auto bob = co_await raw_client::connect(env.endpoint);
    co_await bob.login("bob", password_of("bob"));
    auto alice = co_await raw_client::connect(env.endpoint);
    co_await alice.login("alice", password_of("alice"), 25'000, false);
    auto carol = co_await raw_client::connect(env.endpoint);
    co_await carol.login("carol", password_of("carol"), 25'000, false);
    const p::message d1 = p::demand{"bob", "echo"};
    co_await alice.send(d1);
    (void)co_await bob.expect<p::incoming>();
    const p::message d2 = p::demand{"bob", "echo"};
    co_await carol.send(d2);
    const auto f = co_await carol.expect_fail(err::target_busy);
    EXPECT_NE(f.message.find("max_lines"), std::string::npos) << f.message;
  });
}

// A waiting demand ends with NO_ANSWER at the demand deadline if no line comes, and with
// TARGET_OFFLINE if the target's last line closes meanwhile.
TEST(Elastic, AWaitingDemandEndsAtTheDeadlineOrWhenTheTargetLeaves) {
  relay::relay_config cfg = test_config();
  cfg.demand_timeout = 600ms;
  relay_env env(transport::plaintext, cfg);
  env.run([&]() -> awaitable<void> {
    auto bob = co_await raw_client::connect(env.endpoint);
    co_await bob.login("bob", password_of("bob"));
    auto alice1 = co_await raw_client::connect(env.endpoint);
    co_await alice1.login("alice", password_of("alice"), 25'000, false);
    auto alice2 = co_await raw_client::connect(env.endpoint);
    const auto r = co_await alice2.ticket_login(alice1, false);
    CO_ASSERT_TRUE(std::holds_alternative<p::login_ok>(r));
    const p::message d1 = p::demand{"bob", "echo"};
    co_await alice1.send(d1);
    (void)co_await bob.expect<p::incoming>();
    const p::message d2 = p::demand{"bob", "echo"};
    co_await alice2.send(d2);
    (void)co_await bob.expect<p::need_lines>();
    // bob opens no line: alice2's demand times out (alice1's too: bob never answers).
    const auto f = co_await alice2.expect_fail(err::no_answer, 5s);
    EXPECT_NE(f.message.find("free"), std::string::npos) << f.message;
    (void)co_await alice1.expect_fail(err::no_answer, 5s);
    // Again, and now bob's line closes while the demand waits.
    (void)co_await bob.expect<p::terminate>();
    const p::message rel = p::release{};
    co_await bob.send(rel);
    (void)co_await bob.expect<p::released>();
    co_await alice1.send(d1);
    (void)co_await bob.expect<p::incoming>();
    co_await alice2.send(d2);
    (void)co_await bob.expect<p::need_lines>();
    bob.close();
    (void)co_await alice2.expect_fail(err::target_offline);
  });
}

// Calls-only lines (LOGIN flag bit 0) are never rung, even when they are the only vacant lines.
TEST(Elastic, CallsOnlyLinesAreNeverRung) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto bob = co_await raw_client::connect(env.endpoint);
    co_await bob.login("bob", password_of("bob"));
    auto bob_calls = co_await raw_client::connect(env.endpoint);
    {
      p::login m = login_message("bob", "", 25'000, true, bob.instance());
      m.auth = p::auth_method::ticket;
      m.secret = std::string(bob.ticket().begin(), bob.ticket().end());
      m.calls_only = true;
      co_await bob_calls.send(m);
      (void)co_await bob_calls.expect<p::login_ok>();
    }
    auto alice = co_await raw_client::connect(env.endpoint);
    co_await alice.login("alice", password_of("alice"), 25'000, false);
    auto alice2 = co_await raw_client::connect(env.endpoint);
    const auto r = co_await alice2.ticket_login(alice, false);
    CO_ASSERT_TRUE(std::holds_alternative<p::login_ok>(r));
    const p::message d = p::demand{"bob", "echo"};
    co_await alice.send(d);
    (void)co_await bob.expect<p::incoming>();
    co_await alice2.send(d);
    // bob's calls-only line is vacant, yet the demand waits (NEED-LINES) instead of ringing it.
    CO_WAIT_UNTIL(env.counters().need_lines_sent == 1, 5s);
    // On the calls-only line: at most the NEED-LINES (on whichever line of bob heard last), then
    // the PONG; never an INCOMING.
    const p::message ping = p::ping{7};
    co_await bob_calls.send(ping);
    for (int i = 0; i < 3; ++i) {
      const auto f = co_await bob_calls.read();
      CO_ASSERT_TRUE(f && f->msg);
      if (std::holds_alternative<p::need_lines>(*f->msg)) continue;
      CO_ASSERT_TRUE(std::holds_alternative<p::pong>(*f->msg));
      break;
    }
    EXPECT_EQ(env.counters().sessions_paired, 0u);
  });
}

}  // namespace
}  // namespace switchboard::test
