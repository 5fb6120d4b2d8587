// PEERS? / PEERS (docs/protocol.md §3, §7): who a user may call right now.
#include "relay/harness.hpp"

namespace switchboard::test {
namespace {

namespace p = protocol;

std::vector<std::string> test_services_sorted() {
  auto s = test_services();
  std::sort(s.begin(), s.end());
  return s;
}
using names = std::vector<std::string>;

names user_names(const std::vector<p::peer_entry>& list) {
  names out;
  for (const auto& e : list) out.push_back(e.user);
  return out;
}

class Presence : public ::testing::TestWithParam<transport> {};
INSTANTIATE_TEST_SUITE_P(Transports, Presence,
                         ::testing::Values(transport::plaintext, transport::tls), transport_name);

awaitable<std::shared_ptr<agent::agent>> answering(relay_env& env, std::string user) {
  auto a = env.make_agent(user);
  a->set_incoming(test_services(), echo_handler());
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
    const auto seen_by_alice_list = co_await alice->peers();
    const names seen_by_alice = user_names(seen_by_alice_list);
    EXPECT_EQ(seen_by_alice, (names{"bob", "carol"}));
    const auto seen_by_bob_list = co_await bob->peers();
    const names seen_by_bob = user_names(seen_by_bob_list);
    EXPECT_EQ(seen_by_bob, (names{"alice", "carol"}));
    const auto seen_by_dave_list = co_await dave->peers();
    const names seen_by_dave = user_names(seen_by_dave_list);
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
    const auto seen_by_alice_list = co_await alice->peers();
    const names seen_by_alice = user_names(seen_by_alice_list);
    EXPECT_EQ(seen_by_alice, (names{"bob"}));
    const auto seen_by_bob_list = co_await bob->peers();
    const names seen_by_bob = user_names(seen_by_bob_list);
    EXPECT_EQ(seen_by_bob, (names{"alice", "carol"}));
    const auto seen_by_carol_list = co_await carol->peers();
    const names seen_by_carol = user_names(seen_by_carol_list);
    EXPECT_EQ(seen_by_carol,
              (names{"alice", "bob"}));  // her list limits callers, not whom she sees
  });
}

TEST_P(Presence, UserWhoseAgentStoppedDisappears) {
  relay_env env(GetParam());
  env.run([&]() -> awaitable<void> {
    auto alice = co_await answering(env, "alice");
    auto bob = co_await answering(env, "bob");
    const auto before_list = co_await alice->peers();
    const names before = user_names(before_list);
    EXPECT_EQ(before, (names{"bob"}));
    bob->stop();
    CO_WAIT_UNTIL(env.hub().lines_of("bob") == 0, 5s);
    const auto after_list = co_await alice->peers();
    const names after = user_names(after_list);
    EXPECT_EQ(after, names{});
  });
}

// Each user is listed with the services of all its instances (docs/protocol.md §7).
TEST(Presence, ListsEachUserWithTheServicesOfAllItsInstances) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto ssh = env.make_agent("bob");
    ssh->set_incoming({"ssh"}, echo_handler());
    co_await start_and_settle(ssh, 2);
    auto fax = env.make_agent("bob");
    fax->set_incoming({"fax", "t38"}, echo_handler());
    co_await start_and_settle(fax, 2);
    auto alice = co_await call_only(env, "alice");
    const auto list = co_await alice->peers();
    CO_ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0].user, "bob");
    EXPECT_EQ(list[0].services, (names{"fax", "ssh", "t38"}));
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
    EXPECT_EQ(user_names(list.users), (names{"bob"}));
    EXPECT_EQ(list.users.front().services, test_services_sorted());
  });
}

}  // namespace
}  // namespace switchboard::test
