// DEMAND and its outcomes (docs/protocol.md §5 steps 1-3): every FAIL code, the order of the
// checks, and what the target is told (INCOMING).
#include <map>

#include "agent/bridge.hpp"
#include "relay/harness.hpp"

namespace switchboard::test {
namespace {

namespace p = protocol;

class Demand : public ::testing::TestWithParam<transport> {};
INSTANTIATE_TEST_SUITE_P(Transports, Demand,
                         ::testing::Values(transport::plaintext, transport::tls), transport_name);

awaitable<std::shared_ptr<agent::agent>> echo_agent(relay_env& env, std::string user,
                                                    std::size_t vacant = 2) {
  auto opts = env.agent_options(user);
  opts.vacant_lines = vacant;
  auto a = env.make_agent(opts);
  a->set_incoming(test_services(), echo_handler());
  co_await start_and_settle(a, vacant);
  co_return a;
}

awaitable<std::shared_ptr<agent::agent>> caller_agent(relay_env& env, std::string user) {
  auto a = env.make_agent(user);
  co_await start_and_settle(a, 2);
  co_return a;
}

TEST_P(Demand, UnknownOrLoggedOutTargetIsOffline) {
  relay_env env(GetParam());
  env.run([&]() -> awaitable<void> {
    auto alice = co_await caller_agent(env, "alice");
    const auto unknown = co_await try_call(alice, "nobody", "echo");
    EXPECT_EQ(unknown.code, err::target_offline) << unknown.message;
    const auto absent = co_await try_call(alice, "carol", "echo");
    EXPECT_EQ(absent.code, err::target_offline) << absent.message;
    // An instance that only places calls does not make its user reachable.
    auto carol = co_await caller_agent(env, "carol");
    const auto call_only = co_await try_call(alice, "carol", "echo");
    EXPECT_EQ(call_only.code, err::target_offline) << call_only.message;
  });
}

TEST_P(Demand, TargetWhoseOnlyLineIsPairedIsBusy) {
  relay_env env(GetParam());
  env.users->set_max_lines("bob", 1);  // bob cannot open a replacement line
  env.run([&]() -> awaitable<void> {
    auto bob = co_await echo_agent(env, "bob", 1);
    auto alice = co_await caller_agent(env, "alice");
    auto carol = co_await caller_agent(env, "carol");
    auto first = co_await alice->call("bob", "echo");
    const auto second = co_await try_call(carol, "bob", "echo");
    EXPECT_EQ(second.code, err::target_busy) << second.message;
    EXPECT_EQ(env.hub().lines_of("bob"), 1u);
    co_await first.close();
    // Once released, the line takes calls again.
    CO_WAIT_UNTIL(bob->stats().lines_vacant == 1, 5s);
    const auto third = co_await try_call(carol, "bob", "echo");
    EXPECT_EQ(third.code, err::ok) << third.message;
  });
}

// docs/protocol.md §5 step 1: the demand waits for a line (NEED-LINES) instead of TARGET_BUSY.
TEST(Demand, TargetWhoseOnlyLineIsRingingIsAskedForALine) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto bob = co_await raw_client::connect(env.endpoint);
    co_await bob.login("bob", password_of("bob"));
    auto alice = co_await raw_client::connect(env.endpoint);
    co_await alice.login("alice", password_of("alice"));
    const p::demand d("bob", "echo");
    co_await alice.send(d);
    co_await bob.expect<p::incoming>();  // ringing; bob does not answer yet
    auto carol = co_await caller_agent(env, "carol");
    bool done = false;
    call_outcome outcome;
    asio::co_spawn(
        env.io,
        [&]() -> awaitable<void> {
          outcome = co_await try_call(carol, "bob", "echo");
          done = true;
        },
        asio::detached);
    const auto need = co_await bob.expect<p::need_lines>();
    EXPECT_EQ(need.count, 1);
    auto bob2 = co_await raw_client::connect(env.endpoint);
    const auto ok = co_await bob2.ticket_login(bob);
    CO_ASSERT_TRUE(std::holds_alternative<p::login_ok>(ok));
    const auto in = co_await bob2.expect<p::incoming>();
    EXPECT_EQ(in.caller, "carol");
    const p::message yes = p::accept{in.session};
    co_await bob2.send(yes);
    CO_WAIT_UNTIL(done, 5s);
    EXPECT_EQ(outcome.code, err::ok) << outcome.message;
  });
}

TEST_P(Demand, CallerMissingFromTheAllowListIsNotAllowed) {
  relay_env env(GetParam());
  env.users->set_allow_list("bob", {"carol"});
  env.run([&]() -> awaitable<void> {
    auto bob = co_await echo_agent(env, "bob");
    auto alice = co_await caller_agent(env, "alice");
    auto carol = co_await caller_agent(env, "carol");
    const auto refused = co_await try_call(alice, "bob", "echo");
    EXPECT_EQ(refused.code, err::not_allowed) << refused.message;
    const auto allowed = co_await try_call(carol, "bob", "echo");
    EXPECT_EQ(allowed.code, err::ok) << allowed.message;
  });
}

TEST_P(Demand, CallingYourselfIsSelfCall) {
  relay_env env(GetParam());
  env.run([&]() -> awaitable<void> {
    auto alice = co_await echo_agent(env, "alice");
    const auto outcome = co_await try_call(alice, "alice", "echo");
    EXPECT_EQ(outcome.code, err::self_call) << outcome.message;
    // Checked before TARGET_OFFLINE: dave has no answering instance.
    auto dave = co_await caller_agent(env, "dave");
    const auto offline_self = co_await try_call(dave, "dave", "echo");
    EXPECT_EQ(offline_self.code, err::self_call) << offline_self.message;
  });
}

TEST(Demand, NotAllowedIsCheckedBeforeTargetBusy) {
  relay_env env;
  env.users->set_allow_list("bob", {"carol"});
  env.run([&]() -> awaitable<void> {
    auto bob = co_await raw_client::connect(env.endpoint);
    co_await bob.login("bob", password_of("bob"));
    auto carol = co_await raw_client::connect(env.endpoint);
    co_await carol.login("carol", password_of("carol"));
    const p::demand d("bob", "echo");
    co_await carol.send(d);
    co_await bob.expect<p::incoming>();  // bob's only line rings: bob is busy
    auto alice = co_await raw_client::connect(env.endpoint);
    co_await alice.login("alice", password_of("alice"));
    co_await alice.send(d);
    co_await alice.expect_fail(err::not_allowed);
  });
}

TEST_P(Demand, TargetsRejectionCarriesItsReason) {
  relay_env env(GetParam());
  env.run([&]() -> awaitable<void> {
    auto bob = env.make_agent("bob");
    bob->set_incoming(test_services(), [](agent::incoming_call c) -> awaitable<agent::answer> {
      if (c.service == "secret") {
        co_return agent::answer::reject(err::rejected, "nothing here for " + c.caller);
      }
      agent::answer a;
      a.serve = &echo;
      co_return a;
    });
    co_await start_and_settle(bob, 2);
    auto alice = co_await caller_agent(env, "alice");
    const auto refused = co_await try_call(alice, "bob", "secret");
    EXPECT_EQ(refused.code, err::rejected);
    EXPECT_NE(refused.message.find("nothing here for alice"), std::string::npos) << refused.message;
    // The rejecting line is vacant again at once.
    co_await settle(bob, 2);
    const auto accepted = co_await try_call(alice, "bob", "echo");
    EXPECT_EQ(accepted.code, err::ok) << accepted.message;
  });
}

TEST(Demand, RawRejectGivesTheCallerRejectedWithTheReason) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto bob = co_await raw_client::connect(env.endpoint);
    co_await bob.login("bob", password_of("bob"));
    auto alice = co_await raw_client::connect(env.endpoint);
    co_await alice.login("alice", password_of("alice"));
    const p::demand d("bob", "echo");
    co_await alice.send(d);
    const auto in = co_await bob.expect<p::incoming>();
    const p::reject no(in.session, err::rejected, "try again tomorrow");
    co_await bob.send(no);
    const auto fail = co_await alice.expect_fail(err::rejected);
    EXPECT_EQ(fail.message, "try again tomorrow");
    // Both lines are vacant again: the same demand rings bob once more.
    co_await alice.send(d);
    co_await bob.expect<p::incoming>();
  });
}

// docs/protocol.md §5 step 2: TARGET_BUSY, UNKNOWN_SERVICE and SERVICE_UNAVAILABLE from the target
// reach the caller as they are; any other code (here NOT_ALLOWED, which only the relay decides)
// becomes REJECTED.
TEST(Demand, AgentChosenCodesPassOthersBecomeRejected) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto bob = co_await raw_client::connect(env.endpoint);
    co_await bob.login("bob", password_of("bob"));
    auto alice = co_await raw_client::connect(env.endpoint);
    co_await alice.login("alice", password_of("alice"));
    const std::pair<err, err> cases[] = {{err::target_busy, err::target_busy},
                                         {err::unknown_service, err::unknown_service},
                                         {err::service_unavailable, err::service_unavailable},
                                         {err::not_allowed, err::rejected}};
    for (const auto& [sent, seen] : cases) {
      const p::demand d("bob", "fax");
      co_await alice.send(d);
      const auto in = co_await bob.expect<p::incoming>();
      const p::reject no(in.session, sent, "on another call");
      co_await bob.send(no);
      const auto fail = co_await alice.expect_fail(seen);
      EXPECT_EQ(fail.message, "on another call");
    }
  });
}

TEST_P(Demand, UnexposedServiceIsUnknownService) {
  relay_env env(GetParam());
  env.run([&]() -> awaitable<void> {
    tcp_echo_server local_echo(env.io);
    std::map<std::string, net::host_port> services;
    services["echo"] = net::host_port{"127.0.0.1", local_echo.port()};
    auto bob = env.make_agent("bob");
    bob->set_incoming(test_services(), agent::expose_services(services));
    co_await start_and_settle(bob, 2);
    auto alice = co_await caller_agent(env, "alice");
    const auto unknown = co_await try_call(alice, "bob", "ftp");
    EXPECT_EQ(unknown.code, err::unknown_service) << unknown.message;
    // The exposed one works, end to end through bob's local TCP service.
    auto s = co_await alice->call("bob", "echo");
    const auto payload = random_bytes(100'000, 7);
    const auto back = co_await send_and_read_all(s, payload);
    EXPECT_TRUE(back == payload);
  });
}

TEST_P(Demand, UnreachableLocalServiceIsServiceUnavailable) {
  relay_env env(GetParam());
  env.run([&]() -> awaitable<void> {
    std::uint16_t closed_port = 0;
    {
      tcp::acceptor probe(env.io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
      closed_port = probe.local_endpoint().port();
    }
    std::map<std::string, net::host_port> services;
    services["web"] = net::host_port{"127.0.0.1", closed_port};
    auto bob = env.make_agent("bob");
    bob->set_incoming(test_services(), agent::expose_services(services));
    co_await start_and_settle(bob, 2);
    auto alice = co_await caller_agent(env, "alice");
    const auto outcome = co_await try_call(alice, "bob", "web");
    EXPECT_EQ(outcome.code, err::service_unavailable) << outcome.message;
  });
}

relay::relay_config short_demand_deadline() {
  auto cfg = test_config();
  cfg.demand_timeout = 500ms;
  return cfg;
}

TEST(Demand, TargetThatNeverAnswersGivesNoAnswer) {
  relay_env env(transport::plaintext, short_demand_deadline());
  env.run([&]() -> awaitable<void> {
    auto bob = co_await raw_client::connect(env.endpoint);
    co_await bob.login("bob", password_of("bob"));
    auto alice = co_await raw_client::connect(env.endpoint);
    co_await alice.login("alice", password_of("alice"));
    const p::demand d("bob", "echo");
    co_await alice.send(d);
    const auto in = co_await bob.expect<p::incoming>();
    // Bob stays silent: the caller gets NO_ANSWER, bob TERMINATE(NO_ANSWER).
    co_await alice.expect_fail(err::no_answer, 10s);
    co_await bob.expect_terminate(err::no_answer, 10s);
    // A late ACCEPT is stale and ignored; RELEASE brings RELEASED.
    p::accept late;
    late.session = in.session;
    co_await bob.send(late);
    const p::release release;
    co_await bob.send(release);
    co_await bob.expect<p::released>();
    // Both lines are vacant: a new demand rings bob again.
    co_await alice.send(d);
    const auto again = co_await bob.expect<p::incoming>();
    EXPECT_NE(again.session, in.session);
  });
}

awaitable<void> stay_silent_then_release(raw_client& target) {
  co_await target.expect<p::incoming>();
  co_await target.expect_terminate(err::no_answer, 10s);
  const p::release release;
  co_await target.send(release);
  co_await target.expect<p::released>();
}

TEST(Demand, AgentCallToATargetThatNeverAnswersFailsWithNoAnswer) {
  relay_env env(transport::plaintext, short_demand_deadline());
  env.run([&]() -> awaitable<void> {
    auto bob = co_await raw_client::connect(env.endpoint);
    co_await bob.login("bob", password_of("bob"));
    auto alice = co_await caller_agent(env, "alice");
    using namespace asio::experimental::awaitable_operators;
    const auto outcome = co_await (try_call(alice, "bob", "echo") && stay_silent_then_release(bob));
    EXPECT_EQ(outcome.code, err::no_answer) << outcome.message;
  });
}

TEST(Demand, SecondDemandWhileCallingIsAProtocolError) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto bob = co_await raw_client::connect(env.endpoint);
    co_await bob.login("bob", password_of("bob"));
    auto alice = co_await raw_client::connect(env.endpoint);
    co_await alice.login("alice", password_of("alice"));
    const p::demand d("bob", "echo");
    co_await alice.send(d);
    co_await bob.expect<p::incoming>();
    co_await alice.send(d);  // only one demand may be outstanding on a line
    co_await alice.expect_logged_out_or_closed(err::protocol_error);
    // The ringing target learns that the caller went away.
    co_await bob.expect_terminate(err::peer_lost);
  });
}

// ---- the notification (INCOMING) -------------------------------------------------------------

class Notification : public ::testing::TestWithParam<transport> {};
INSTANTIATE_TEST_SUITE_P(Transports, Notification,
                         ::testing::Values(transport::plaintext, transport::tls), transport_name);

TEST_P(Notification, CarriesTheCallersAuthenticatedIdAndTheService) {
  relay_env env(GetParam());
  struct seen {
    std::vector<std::string> callers, services, session_peers, session_services;
  };
  auto log = std::make_shared<seen>();
  env.run([&]() -> awaitable<void> {
    auto bob = env.make_agent("bob");
    bob->set_incoming(test_services(), [log](agent::incoming_call c) -> awaitable<agent::answer> {
      log->callers.push_back(c.caller);
      log->services.push_back(c.service);
      agent::answer a;
      a.serve = [log](agent::session s) -> awaitable<void> {
        log->session_peers.push_back(s.peer());
        log->session_services.push_back(s.service());
        co_await echo(std::move(s));
      };
      co_return a;
    });
    co_await start_and_settle(bob, 2);
    auto alice = co_await caller_agent(env, "alice");
    auto s = co_await alice->call("bob", "files");
    EXPECT_EQ(s.peer(), "bob");
    EXPECT_EQ(s.service(), "files");
    const auto back = co_await send_and_read_all(s, bytes_of("hello"));
    EXPECT_EQ(text_of(back), "hello");
    EXPECT_EQ(log->callers, std::vector<std::string>{"alice"});
    EXPECT_EQ(log->services, std::vector<std::string>{"files"});
    EXPECT_EQ(log->session_peers, std::vector<std::string>{"alice"});
    EXPECT_EQ(log->session_services, std::vector<std::string>{"files"});
  });
}

TEST(Notification, RawIncomingAndConnectedNameTheOtherSide) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto bob = co_await raw_client::connect(env.endpoint);
    co_await bob.login("bob", password_of("bob"));
    auto alice = co_await raw_client::connect(env.endpoint);
    co_await alice.login("alice", password_of("alice"));
    const auto session = co_await pair_raw(alice, bob, "ssh");  // checks INCOMING and CONNECTED
    EXPECT_NE(session, 0u);
    EXPECT_EQ(env.counters().sessions_paired, 1u);
  });
}

}  // namespace
}  // namespace switchboard::test
