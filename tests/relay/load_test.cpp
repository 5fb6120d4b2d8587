// Many sessions at once between two agents through one relay.
#include "relay/harness.hpp"

namespace switchboard::test {
namespace {

class Load : public ::testing::TestWithParam<transport> {};
INSTANTIATE_TEST_SUITE_P(Transports, Load, ::testing::Values(transport::plaintext, transport::tls),
                         transport_name);

constexpr int concurrent_sessions = 200;
constexpr std::size_t bytes_per_session = 64 * 1024;

struct tally {
  int finished = 0;
  int intact = 0;
  std::vector<std::string> errors;
};

awaitable<bool> echo_session(std::shared_ptr<agent::agent> caller, int i) {
  auto s = co_await caller->call("bob", "echo");
  const auto payload = random_bytes(bytes_per_session, static_cast<std::uint64_t>(i));
  const auto back = co_await send_and_read_all(s, payload);
  co_return back == payload;
}

TEST_P(Load, TwoHundredConcurrentSessionsAllSucceed) {
  relay_env env(GetParam());
  env.users->set_max_lines("alice", 1000);
  env.users->set_max_lines("bob", 1000);
  auto results = std::make_shared<tally>();
  env.run(
      [&]() -> awaitable<void> {
        // Enough vacant lines on both sides that every demand finds one at once.
        auto bob_opts = env.agent_options("bob");
        bob_opts.vacant_lines = concurrent_sessions;
        auto bob = env.make_agent(bob_opts);
        bob->set_incoming(test_services(), echo_handler());
        co_await start_and_settle(bob, concurrent_sessions);
        auto alice_opts = env.agent_options("alice");
        alice_opts.vacant_lines = concurrent_sessions;
        auto alice = env.make_agent(alice_opts);
        co_await start_and_settle(alice, concurrent_sessions);

        const auto ex = co_await asio::this_coro::executor;
        for (int i = 0; i < concurrent_sessions; ++i) {
          asio::co_spawn(ex, echo_session(alice, i),
                         [results, i](std::exception_ptr e, bool intact) {
                           ++results->finished;
                           if (e) {
                             try {
                               std::rethrow_exception(e);
                             } catch (const std::exception& x) {
                               results->errors.push_back(std::to_string(i) + ": " + x.what());
                             }
                           } else if (intact) {
                             ++results->intact;
                           }
                         });
        }
        CO_WAIT_UNTIL(results->finished == concurrent_sessions, 90s);
        EXPECT_EQ(results->intact, concurrent_sessions);
        for (const auto& e : results->errors) ADD_FAILURE() << e;
        EXPECT_EQ(env.counters().sessions_paired, static_cast<std::uint64_t>(concurrent_sessions));
      },
      120s);
}

}  // namespace
}  // namespace switchboard::test
