// PEERS? / PEERS (docs/protocol.md §3, §7): who a user may call right now.
#include "relay/harness.hpp"

namespace switchboard::test {
namespace {

namespace p = protocol;
using names = std::vector<std::string>;

class Presence : public ::testing::TestWithParam<transport> {};
INSTANTIATE_TEST_SUITE_P(Transports, Presence,
                         ::testing::Values(transport::plaintext, transport::tls), transport_name);

awaitable<std::shared_ptr<agent::agent>> answering(relay_env& env, std::string user) {
  auto a = env.make_agent(user);
  a->set_incoming(echo_handler());
  co_await start_and_settle(a, 2);
  co_return a;
}

awaitable<std::shared_ptr<agent::agent>> call_only(relay_env& env, std::string user) {
  auto a = env.make_agent(user);
  co_await start_and_settle(a, 2);
  co_return a;
}

TEST_P(Presence, ListsAnsweringUsersExceptSelf) {
  relay_env env(GetParam());
  env.run([&]() -> awaitable<void> {
    auto alice = co_await answering(env, "alice");
    auto bob = co_await answering(env, "bob");
    auto carol = co_await answering(env, "carol");
    auto dave = co_await call_only(env, "dave");  // places calls only: not listed
    const names seen_by_alice = co_await alice->peers();
    EXPECT_EQ(seen_by_alice, (names{"bob", "carol"}));
    const names seen_by_bob = co_await bob->peers();
    EXPECT_EQ(seen_by_bob, (names{"alice", "carol"}));
    const names seen_by_dave = co_await dave->peers();
    EXPECT_EQ(seen_by_dave, (names{"alice", "bob", "carol"}));
  });
}

TEST_P(Presence, RespectsAllowLists) {
  relay_env env(GetParam());
  env.users->set_allow_list("carol", {"bob"});  // read at carol's password login
  env.run([&]() -> awaitable<void> {
    auto alice = co_await answering(env, "alice");
    auto bob = co_await answering(env, "bob");
    auto carol = co_await answering(env, "carol");
    const names seen_by_alice = co_await alice->peers();
    EXPECT_EQ(seen_by_alice, (names{"bob"}));
    const names seen_by_bob = co_await bob->peers();
    EXPECT_EQ(seen_by_bob, (names{"alice", "carol"}));
    const names seen_by_carol = co_await carol->peers();
    EXPECT_EQ(seen_by_carol,
              (names{"alice", "bob"}));  // her list limits callers, not whom she sees
  });
}

TEST_P(Presence, UserWhoseAgentStoppedDisappears) {
  relay_env env(GetParam());
  env.run([&]() -> awaitable<void> {
    auto alice = co_await answering(env, "alice");
    auto bob = co_await answering(env, "bob");
    const names before = co_await alice->peers();
    EXPECT_EQ(before, (names{"bob"}));
    bob->stop();
    CO_WAIT_UNTIL(env.hub().lines_of("bob") == 0, 5s);
    const names after = co_await alice->peers();
    EXPECT_EQ(after, names{});
  });
}

TEST(Presence, RawPeersRequestIsAnsweredOnAVacantLine) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto bob = co_await raw_client::connect(env.endpoint);
    co_await bob.login("bob", password_of("bob"));
    auto carol = co_await raw_client::connect(env.endpoint);
    co_await carol.login("carol", password_of("carol"), 25'000, false);  // call-only
    auto alice = co_await raw_client::connect(env.endpoint);
    co_await alice.login("alice", password_of("alice"));
    const p::peers_request request;
    co_await alice.send(request);
    const auto list = co_await alice.expect<p::peers>();
    EXPECT_FALSE(list.truncated);
    EXPECT_EQ(list.users, (names{"bob"}));
  });
}

}  // namespace
}  // namespace switchboard::test
