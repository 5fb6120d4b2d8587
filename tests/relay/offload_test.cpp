// Paired sessions on forwarding threads (relay/offload.hpp, docs/architecture.md "Threads"): a
// session moves there, control frames are still handled (and answered) while it forwards, it
// comes back when it ends, and its lines are reused. The whole relay suite also runs with
// forwarding threads (the "threads:" tests); these check that stints really happen.
#include "relay/harness.hpp"

namespace switchboard::test {
namespace {

namespace p = protocol;
constexpr std::size_t MiB = 1024 * 1024;

relay::relay_config threaded_config(std::uint64_t after_frames) {
  auto cfg = test_config();
  cfg.forward_threads = 2;
  cfg.offload_after_frames = after_frames;
  return cfg;
}

class Offload : public ::testing::TestWithParam<transport> {};
INSTANTIATE_TEST_SUITE_P(Transports, Offload,
                         ::testing::Values(transport::plaintext, transport::tls), transport_name);

awaitable<void> exchange(raw_client& from, raw_client& to, const std::string& text) {
  const auto bytes = bytes_of(text);
  co_await from.send_data(bytes);
  const auto got = co_await to.expect_data();
  EXPECT_EQ(text_of(got), text);
}

// Raw protocol clients speak plaintext only; the agents' test below covers TLS.
TEST(OffloadRaw, ControlFramesAreHandledWhileTheSessionForwardsOnAnotherThread) {
  relay_env env(transport::plaintext, threaded_config(4));
  env.run([&]() -> awaitable<void> {
    auto [alice, bob] = co_await paired_raw(env.endpoint);
    // Below the threshold the session stays on the control thread.
    for (int i = 0; i < 3; ++i) co_await exchange(alice, bob, "warm-up " + std::to_string(i));
    EXPECT_EQ(env.counters().offloads, 0u);
    // The fourth frame reaches it: the next frame boundary with both readers waiting moves it.
    co_await exchange(bob, alice, "fourth");
    CO_WAIT_UNTIL(env.counters().offloads == 1, 5s);

    // PING is answered and EOF travels while the stint goes on (no second stint is needed).
    const p::ping ping{91};
    co_await bob.send(ping);
    co_await exchange(bob, alice, "after ping");
    const auto pong = co_await bob.expect<p::pong>();
    EXPECT_EQ(pong.nonce, 91u);
    const p::eof eof;
    co_await alice.send(eof);
    co_await bob.expect<p::eof>();
    co_await exchange(bob, alice, "after eof");
    EXPECT_EQ(env.counters().offloads, 1u);
    EXPECT_EQ(env.counters().offload_frames, 2u);

    // TERMINATE ends the stint; both lines release and are vacant on the control thread again.
    const p::terminate bye{err::ok, "done"};
    co_await alice.send(bye);
    co_await bob.expect_terminate(err::ok);
    const p::release release;
    co_await bob.send(release);
    co_await bob.expect<p::released>();
    co_await alice.send(release);
    co_await alice.expect<p::released>();

    // The same lines pair again, and the new session moves too.
    co_await pair_raw(alice, bob);
    for (int i = 0; i < 4; ++i) co_await exchange(alice, bob, "again " + std::to_string(i));
    co_await exchange(bob, alice, "and back");
    CO_WAIT_UNTIL(env.counters().offloads == 2, 5s);
    co_await exchange(alice, bob, "on the forwarding thread");
    EXPECT_EQ(env.counters().sessions_paired, 2u);
  });
}

TEST(OffloadRaw, LogoutOfAPeerThatReadsNothingIsHandledDuringTheStint) {
  relay_env env(transport::plaintext, threaded_config(0));
  env.run([&]() -> awaitable<void> {
    auto [alice, bob] = co_await paired_raw(env.endpoint);
    co_await exchange(alice, bob, "hello");
    CO_WAIT_UNTIL(env.counters().offloads == 1, 5s);
    // alice floods; bob reads nothing, so alice's pump soon waits mid-frame for bob's window.
    bool stop = false;
    std::size_t sent = 0;
    auto logout_when_stuck = [&]() -> awaitable<void> {
      co_await until_stalled(sent);
      // bob's LOGOUT is read and handled although the other direction is stuck on bob.
      const p::logout logout;
      co_await bob.send(logout);
      co_await alice.expect_terminate(err::peer_logged_out);
      stop = true;
    };
    using namespace asio::experimental::awaitable_operators;
    auto flooding = flood(alice, stop, sent);
    auto watching = logout_when_stuck();
    co_await (std::move(flooding) && std::move(watching));
    EXPECT_GT(sent, 0u);
    EXPECT_EQ(env.counters().offloads, 1u);
    const p::release release;
    co_await alice.send(release);
    co_await alice.expect<p::released>();
  });
}

// Bulk both ways through agents: the bytes arrive intact, and the session forwarded on a
// forwarding thread.
TEST_P(Offload, MebibytesEachWayArriveIntactAcrossThreads) {
  relay_env env(GetParam(), threaded_config(16));
  const auto to_target = random_bytes(4 * MiB + 5, 7);
  const auto to_caller = random_bytes(4 * MiB + 9, 8);
  std::vector<std::uint8_t> target_got;
  env.run(
      [&]() -> awaitable<void> {
        auto handler = [&](agent::incoming_call) -> awaitable<agent::answer> {
          agent::answer a;
          a.serve = [&](agent::session s) -> awaitable<void> {
            target_got = co_await send_and_read_all(s, to_caller);
          };
          co_return a;
        };
        auto agents = co_await start_pair(env, handler);
        auto s = co_await agents.alice->call("bob", "bulk");
        const auto caller_got = co_await send_and_read_all(s, to_target);
        EXPECT_TRUE(caller_got == to_caller);
        CO_WAIT_UNTIL(target_got.size() == to_target.size(), 10s);
        EXPECT_TRUE(target_got == to_target);
        EXPECT_GE(env.counters().offloads, 1u);
      },
      60s);
}

}  // namespace
}  // namespace switchboard::test
