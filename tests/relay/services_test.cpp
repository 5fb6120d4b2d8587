// Several programs per device (docs/protocol.md §7): demands are routed by (user, service),
// instances of one user coexist when their services differ, and the newest announcement of a
// service wins (SERVICE-LOST to the old holder, which does not take it back).
#include "relay/harness.hpp"

#include <fmt/format.h>

namespace switchboard::test {
namespace {

namespace p = protocol;
using names = std::vector<std::string>;

// Accepts every call and answers it with `tag`, then half-closes: tells which instance answered.
agent::incoming_handler tagged(std::string tag) {
  return [tag](agent::incoming_call) -> awaitable<agent::answer> {
    agent::answer a;
    a.serve = [tag](agent::session s) -> awaitable<void> {
      co_await s.write(asio::buffer(tag));
      co_await s.shutdown_write();
      (void)co_await read_to_end(s);
    };
    co_return a;
  };
}

// Which instance answers caller -> peer:service ("" if the call failed: then `code` says why).
struct answered {
  std::string tag;
  err code = err::ok;
};
awaitable<answered> who_answers(std::shared_ptr<agent::agent> caller, std::string peer,
                                std::string service) {
  answered out;
  try {
    auto s = co_await caller->call(peer, service);
    co_await s.shutdown_write();
    const auto bytes = co_await read_to_end(s);
    out.tag = text_of(bytes);
    co_await s.close();
  } catch (const agent::call_error& e) {
    out.code = e.code();
  }
  co_return out;
}

awaitable<std::shared_ptr<agent::agent>> serving(relay_env& env, std::string user, names services,
                                                 std::string tag) {
  auto a = env.make_agent(user);
  a->set_incoming(std::move(services), tagged(std::move(tag)));
  co_await start_and_settle(a, 2);
  co_return a;
}

const relay::device* device_of(relay_env& env, const std::shared_ptr<agent::agent>& a) {
  return env.hub().find_device(a->options().user, a->instance());
}

TEST(Services, TwoProgramsOfOneUserServeTheirOwnServicesSideBySide) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    const names list1{"ssh", "web"};
    auto expose = co_await serving(env, "bob", list1, "expose");
    const names list2{"fax"};
    auto fax = co_await serving(env, "bob", list2, "fax-daemon");
    auto alice = env.make_agent("alice");
    co_await start_and_settle(alice, 2);
    for (int round = 0; round < 3; ++round) {
      const auto a = co_await who_answers(alice, "bob", "ssh");
      EXPECT_EQ(a.tag, "expose");
      const auto b = co_await who_answers(alice, "bob", "fax");
      EXPECT_EQ(b.tag, "fax-daemon");
      const auto c = co_await who_answers(alice, "bob", "web");
      EXPECT_EQ(c.tag, "expose");
    }
    EXPECT_EQ(expose->stats().services_lost, 0u);
    EXPECT_EQ(fax->stats().services_lost, 0u);
    // Neither knocked the other off: both keep their lines.
    EXPECT_GE(expose->stats().lines_open, 2u);
    EXPECT_GE(fax->stats().lines_open, 2u);
  });
}

TEST(Services, ADemandForAServiceNobodyAnnouncedIsUnknownService) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    const names list3{"ssh"};
    auto bob = co_await serving(env, "bob", list3, "bob");
    auto alice = env.make_agent("alice");
    co_await start_and_settle(alice, 2);
    const auto out = co_await try_call(alice, "bob", "ftp");
    EXPECT_EQ(out.code, err::unknown_service);
    EXPECT_NE(out.message.find("ftp"), std::string::npos) << out.message;
    EXPECT_EQ(env.counters().demands_waited, 0u);
  });
}

// The newest announcement of a service takes it over; the old instance keeps its other services
// and does not take the lost one back when it opens more lines.
TEST(Services, TheNewestInstanceTakesAServiceOverAndTheOldOneKeepsTheRest) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    const names list4{"ssh", "web"};
    auto old_one = co_await serving(env, "bob", list4, "old");
    auto alice = env.make_agent("alice");
    co_await start_and_settle(alice, 2);
    EXPECT_EQ((co_await who_answers(alice, "bob", "ssh")).tag, "old");
    const names list5{"ssh"};
    auto new_one = co_await serving(env, "bob", list5, "new");
    CO_WAIT_UNTIL(old_one->stats().services_lost == 1, 5s);
    EXPECT_EQ(old_one->services(), (names{"web"}));
    EXPECT_EQ(env.counters().services_taken_over, 1u);
    // Make the old instance open more lines (ticket logins carry its list: now without ssh).
    int done = 0;
    for (int i = 0; i < 12; ++i) {
      asio::co_spawn(
          env.io,
          [&]() -> awaitable<void> {
            const auto r = co_await who_answers(alice, "bob", "web");
            EXPECT_EQ(r.tag, "old");
            ++done;
          },
          asio::detached);
    }
    CO_WAIT_UNTIL(done == 12, 20s);
    EXPECT_EQ((co_await who_answers(alice, "bob", "ssh")).tag, "new");
    const auto* d = device_of(env, old_one);
    CO_ASSERT_TRUE(d != nullptr);
    EXPECT_EQ(d->services, (names{"web"}));
    EXPECT_EQ(env.counters().services_taken_over, 1u) << "the old instance took ssh back";
  });
}

// An agent whose every service was taken over stops (DUPLICATE_LOGIN), instead of staying
// logged in, silently serving nothing.
TEST(Services, AnAgentThatLostEveryServiceStops) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    const names list6{"ssh"};
    auto old_one = co_await serving(env, "bob", list6, "old");
    const names list7{"ssh"};
    auto new_one = co_await serving(env, "bob", list7, "new");
    CO_WAIT_UNTIL(old_one->stats().lines_open == 0, 5s);
    bool stopped = false;
    try {
      co_await old_one->wait_ready();
    } catch (const agent::call_error& e) {
      stopped = e.code() == err::duplicate_login;
    }
    EXPECT_TRUE(stopped);
    auto alice = env.make_agent("alice");
    co_await start_and_settle(alice, 2);
    EXPECT_EQ((co_await who_answers(alice, "bob", "ssh")).tag, "new");
  });
}

// A running agent announces a changed list (ANNOUNCE): new services are routed to it at once.
TEST(Services, ARunningAgentAnnouncesAChangedList) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    const names list8{"ssh"};
    auto bob = co_await serving(env, "bob", list8, "bob");
    auto alice = env.make_agent("alice");
    co_await start_and_settle(alice, 2);
    EXPECT_EQ((co_await who_answers(alice, "bob", "web")).code, err::unknown_service);
    bob->set_incoming({"ssh", "web"}, tagged("bob2"));
    CO_WAIT_UNTIL(device_of(env, bob) && device_of(env, bob)->services == (names{"ssh", "web"}),
                  5s);
    EXPECT_EQ((co_await who_answers(alice, "bob", "web")).tag, "bob2");
    bob->set_incoming({"web"}, tagged("bob3"));
    CO_WAIT_UNTIL(device_of(env, bob)->services == (names{"web"}), 5s);
    EXPECT_EQ((co_await who_answers(alice, "bob", "ssh")).code, err::unknown_service);
  });
}

// The raw view: SERVICE-LOST names the service, on a line of the old instance.
TEST(Services, ServiceLostIsSentToTheOldHolder) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto old_line = co_await raw_client::connect(env.endpoint);
    co_await old_line.login("bob", password_of("bob"));  // test_services()
    auto new_line = co_await raw_client::connect(env.endpoint);
    p::login m = login_message("bob", password_of("bob"), 25'000, false);
    m.services = {"ssh", "zzz"};
    co_await new_line.send(m);
    (void)co_await new_line.expect<p::login_ok>();
    const auto lost = co_await old_line.expect<p::service_lost>();
    EXPECT_EQ(lost.services, (names{"ssh"}));
    co_await old_line.expect_alive(3);
  });
}

// A takeover of 32 services with long names is told in one SERVICE-LOST whose text stays within
// the 1 KiB a message may carry; the old instance's line keeps working.
TEST(Services, ATakeoverOfManyLongServicesIsToldInOneFrame) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    names many;
    for (int i = 0; i < 32; ++i) many.push_back(fmt::format("service-with-a-long-name-{:05}", i));
    auto old_line = co_await raw_client::connect(env.endpoint);
    p::login first = login_message("bob", password_of("bob"), 25'000, false);
    first.services = many;
    co_await old_line.send(first);
    (void)co_await old_line.expect<p::login_ok>();
    auto new_line = co_await raw_client::connect(env.endpoint);
    p::login second = login_message("bob", password_of("bob"), 25'000, false);
    second.services = many;
    co_await new_line.send(second);
    (void)co_await new_line.expect<p::login_ok>();
    const auto lost = co_await old_line.expect<p::service_lost>();
    EXPECT_EQ(lost.services.size(), 32u);
    co_await old_line.expect_alive(9);
  });
}

// An ANNOUNCE that drops a service fails the demands waiting for it (UNKNOWN_SERVICE) at once.
TEST(Services, AnAnnounceThatDropsAServiceFailsItsWaitingDemands) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto bob = co_await raw_client::connect(env.endpoint);
    p::login m = login_message("bob", password_of("bob"), 25'000, false);
    m.services = {"echo", "web"};
    co_await bob.send(m);
    const auto ok = co_await bob.expect<p::login_ok>();
    auto bob_calls = co_await raw_client::connect(env.endpoint);
    {
      p::login c = login_message("bob", "", 25'000, false, m.instance);
      c.auth = p::auth_method::ticket;
      c.secret = std::string(ok.ticket.begin(), ok.ticket.end());
      c.calls_only = true;
      co_await bob_calls.send(c);
      (void)co_await bob_calls.expect<p::login_ok>();
    }
    auto alice = co_await raw_client::connect(env.endpoint);
    co_await alice.login("alice", password_of("alice"), 25'000, false);
    auto alice2 = co_await raw_client::connect(env.endpoint);
    const auto r = co_await alice2.ticket_login(alice, false);
    CO_ASSERT_TRUE(std::holds_alternative<p::login_ok>(r));
    const p::message d1 = p::demand{"bob", "echo"};
    co_await alice.send(d1);
    (void)co_await bob.expect<p::incoming>();
    const p::message d2 = p::demand{"bob", "web"};
    co_await alice2.send(d2);  // waits: bob's only line that may ring is ringing
    CO_WAIT_UNTIL(env.counters().demands_waited == 1, 5s);
    p::announce a;
    a.services = {"echo"};
    const p::message drop = std::move(a);
    co_await bob_calls.send(drop);
    const auto f = co_await alice2.expect_fail(err::unknown_service);
    EXPECT_NE(f.message.find("no longer"), std::string::npos) << f.message;
  });
}

}  // namespace
}  // namespace switchboard::test
