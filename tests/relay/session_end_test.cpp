// Ending sessions (docs/protocol.md §5 steps 5-6): TERMINATE both ways, PEER_LOST, RELEASE and
// RELEASED, the release deadline, and reuse of released lines without new logins.
#include "relay/harness.hpp"

namespace switchboard::test {
namespace {

namespace p = protocol;

class SessionEnd : public ::testing::TestWithParam<transport> {};
INSTANTIATE_TEST_SUITE_P(Transports, SessionEnd,
                         ::testing::Values(transport::plaintext, transport::tls), transport_name);

// What bob's side of a session saw.
struct target_view {
  std::optional<agent::termination> ended;
  bool done = false;
};

// Serves by reading until the session ends, then records how it ended.
agent::incoming_handler recording_reader(std::shared_ptr<target_view> view) {
  return [view](agent::incoming_call) -> awaitable<agent::answer> {
    agent::answer a;
    a.serve = [view](agent::session s) -> awaitable<void> {
      co_await read_to_end(s);
      view->ended = s.terminated();
      view->done = true;
    };
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

TEST_P(SessionEnd, CallersCloseReachesTheTargetWithCodeAndMessage) {
  relay_env env(GetParam());
  auto view = std::make_shared<target_view>();
  env.run([&]() -> awaitable<void> {
    auto bob = co_await settled_agent(env, "bob", recording_reader(view));
    auto alice = co_await settled_agent(env, "alice");
    auto s = co_await alice->call("bob", "any");
    co_await s.close(err::service_unavailable, "alice is done here");
    CO_WAIT_UNTIL(view->done, 10s);
    CO_ASSERT_TRUE(view->ended.has_value());
    EXPECT_EQ(view->ended->code, err::service_unavailable);
    EXPECT_EQ(view->ended->message, "alice is done here");
  });
}

TEST_P(SessionEnd, TargetsCloseReachesTheCallerWithCodeAndMessage) {
  relay_env env(GetParam());
  env.run([&]() -> awaitable<void> {
    auto closer = [](agent::incoming_call) -> awaitable<agent::answer> {
      agent::answer a;
      a.serve = [](agent::session s) -> awaitable<void> {
        const auto hello = bytes_of("bye soon");
        co_await s.write(asio::buffer(hello));
        co_await s.close(err::rejected, "bob hangs up");
      };
      co_return a;
    };
    auto bob = co_await settled_agent(env, "bob", closer);
    auto alice = co_await settled_agent(env, "alice");
    auto s = co_await alice->call("bob", "any");
    const auto got = co_await read_to_end(s);
    EXPECT_EQ(text_of(got), "bye soon");  // data sent before the TERMINATE arrives first
    const auto t = s.terminated();
    CO_ASSERT_TRUE(t.has_value());
    EXPECT_EQ(t->code, err::rejected);
    EXPECT_EQ(t->message, "bob hangs up");
    // The session is over: writing fails.
    bool write_failed = false;
    try {
      const auto more = bytes_of("more");
      co_await s.write(asio::buffer(more));
    } catch (const boost::system::system_error&) {
      write_failed = true;
    }
    EXPECT_TRUE(write_failed);
  });
}

TEST_P(SessionEnd, StoppedTargetAgentGivesTheCallerPeerLost) {
  relay_env env(GetParam());
  env.run([&]() -> awaitable<void> {
    auto bob = co_await settled_agent(env, "bob", echo_handler());
    auto alice = co_await settled_agent(env, "alice");
    auto s = co_await alice->call("bob", "echo");
    bob->stop();  // its lines just close, no LOGOUT
    const auto got = co_await read_to_end(s);
    EXPECT_TRUE(got.empty());
    const auto t = s.terminated();
    CO_ASSERT_TRUE(t.has_value());
    EXPECT_EQ(t->code, err::peer_lost) << t->message;
    // The survivor's line is released and vacant again.
    co_await settle(alice, 2);
    EXPECT_EQ(alice->stats().lines_lost, 0u);
  });
}

TEST_P(SessionEnd, StoppedCallerAgentGivesTheTargetPeerLost) {
  relay_env env(GetParam());
  auto view = std::make_shared<target_view>();
  env.run([&]() -> awaitable<void> {
    auto bob = co_await settled_agent(env, "bob", recording_reader(view));
    auto alice = co_await settled_agent(env, "alice");
    auto s = co_await alice->call("bob", "any");
    alice->stop();
    CO_WAIT_UNTIL(view->done, 10s);
    CO_ASSERT_TRUE(view->ended.has_value());
    EXPECT_EQ(view->ended->code, err::peer_lost);
    co_await settle(bob, 2);
    EXPECT_EQ(bob->stats().lines_lost, 0u);
  });
}

TEST(SessionEnd, ClosedRawSocketGivesThePeerPeerLost) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto [alice, bob] = co_await paired_raw(env.endpoint);
    bob.close();
    co_await alice.expect_terminate(err::peer_lost);
    const p::release release;
    co_await alice.send(release);
    co_await alice.expect<p::released>();
  });
}

TEST(SessionEnd, ReleaseAloneGivesThePeerTerminateOk) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto [alice, bob] = co_await paired_raw(env.endpoint);
    const p::release release;
    co_await alice.send(release);
    co_await alice.expect<p::released>();
    co_await bob.expect_terminate(err::ok);
    co_await bob.send(release);
    co_await bob.expect<p::released>();
  });
}

TEST(SessionEnd, TerminateIsForwardedUnchangedAndBothSidesGetReleased) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto [alice, bob] = co_await paired_raw(env.endpoint);
    const p::terminate bye(err::service_unavailable, "printer on fire");
    co_await bob.send(bye);
    const p::release release;
    co_await bob.send(release);
    co_await bob.expect<p::released>();
    const auto t = co_await alice.expect_terminate(err::service_unavailable);
    EXPECT_EQ(t.message, "printer on fire");
    // Between TERMINATE and RELEASE, DATA from alice is discarded, not an error.
    const auto late = bytes_of("late");
    co_await alice.send_data(late);
    co_await alice.send(release);
    co_await alice.expect<p::released>();
    // Both lines are vacant: they pair again.
    co_await pair_raw(alice, bob);
  });
}

TEST(SessionEnd, LineThatDoesNotReleaseInTimeIsClosed) {
  auto cfg = test_config();
  cfg.release_timeout = 300ms;
  relay_env env(transport::plaintext, cfg);
  env.run([&]() -> awaitable<void> {
    auto [alice, bob] = co_await paired_raw(env.endpoint);
    const p::release release;
    co_await alice.send(release);
    co_await alice.expect<p::released>();
    co_await bob.expect_terminate(err::ok);
    // bob never sends RELEASE.
    co_await bob.expect_logged_out(err::protocol_error, 10s);
    co_await bob.expect_closed();
  });
}

// A writer held back by its peer's flow control for many keep-alive intervals is not "silent":
// when the peer then goes, it is told so (TERMINATE) like any survivor, not cut off.
enum class peer_exit { dies, logs_out };

awaitable<void> stall_then_lose_peer(raw_client& writer, raw_client& peer, peer_exit how,
                                     bool& stop, const std::size_t& sent) {
  // Until the writer's sends stop making progress, then five more keep-alive intervals.
  co_await until_stalled(sent);
  std::function<bool()> never = [] { return false; };
  co_await poll_until(never, 1500ms);
  if (how == peer_exit::dies) {
    peer.close();
    co_await writer.expect_terminate(err::peer_lost);
  } else {
    const p::logout logout;
    co_await peer.send(logout);  // read by the relay although the peer reads nothing
    co_await writer.expect_terminate(err::peer_logged_out);
  }
  stop = true;
}

awaitable<void> blocked_writer_loses_its_peer(relay_env& env, peer_exit how) {
  auto bob = co_await raw_client::connect(env.endpoint);
  co_await bob.login("bob", password_of("bob"));
  auto alice = co_await raw_client::connect(env.endpoint);
  co_await alice.login("alice", password_of("alice"), 300);  // and alice never pings
  co_await pair_raw(alice, bob);
  bool stop = false;
  std::size_t sent = 0;
  using namespace asio::experimental::awaitable_operators;
  co_await (flood(alice, stop, sent) && stall_then_lose_peer(alice, bob, how, stop, sent));
  const p::release release;
  co_await alice.send(release);
  co_await alice.expect<p::released>();
}

TEST(SessionEnd, WriterBlockedByFlowControlGetsPeerLostWhenThePeerDies) {
  relay_env env;
  env.run(
      [&]() -> awaitable<void> { co_await blocked_writer_loses_its_peer(env, peer_exit::dies); });
}

TEST(SessionEnd, WriterBlockedByFlowControlGetsPeerLoggedOutWhenThePeerLogsOut) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    co_await blocked_writer_loses_its_peer(env, peer_exit::logs_out);
  });
}

// ---- reuse -----------------------------------------------------------------------------------

TEST_P(SessionEnd, ReleasedLinesAreReusedWithoutNewLogins) {
  relay_env env(GetParam());
  env.run(
      [&]() -> awaitable<void> {
        auto bob = co_await settled_agent(env, "bob", echo_handler());
        auto alice = co_await settled_agent(env, "alice");
        // A first session grows each pool by the line that replaced the busy one.
        {
          auto s = co_await alice->call("bob", "echo");
          co_await s.close();
        }
        co_await settle(alice, 3);
        co_await settle(bob, 3);
        const auto logins = env.logins();
        const auto lines = env.hub().line_count();
        for (int i = 0; i < 20; ++i) {
          auto s = co_await alice->call("bob", "echo");
          const auto msg = bytes_of("session " + std::to_string(i));
          const auto back = co_await send_and_read_all(s, msg);
          EXPECT_EQ(back, msg);
          co_await s.close();
          co_await settle(alice, 3);
          co_await settle(bob, 3);
        }
        EXPECT_EQ(env.logins(), logins) << "released lines must be reused, not replaced";
        EXPECT_EQ(env.hub().line_count(), lines);
        EXPECT_EQ(env.counters().sessions_paired, 21u);
        EXPECT_EQ(alice->stats().lines_lost, 0u);
        EXPECT_EQ(bob->stats().lines_lost, 0u);
      },
      60s);
}

TEST(SessionEnd, RawLineIsReusedAfterReleased) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto bob = co_await raw_client::connect(env.endpoint);
    co_await bob.login("bob", password_of("bob"));
    auto alice = co_await raw_client::connect(env.endpoint);
    co_await alice.login("alice", password_of("alice"));
    const p::release release;
    for (int i = 0; i < 5; ++i) {
      co_await pair_raw(alice, bob);
      const auto payload = bytes_of("round " + std::to_string(i));
      co_await alice.send_data(payload);
      const auto got = co_await bob.expect_data();
      EXPECT_EQ(got, payload);
      co_await alice.send(release);
      co_await alice.expect<p::released>();
      co_await bob.expect_terminate(err::ok);
      co_await bob.send(release);
      co_await bob.expect<p::released>();
    }
    EXPECT_EQ(env.logins(), 2u);
    EXPECT_EQ(env.counters().sessions_paired, 5u);
  });
}

// ---- what comes before the end ----------------------------------------------------------------

// What bob's reader got: every byte, in the order read, and how the session ended.
struct read_log {
  std::vector<std::uint8_t> bytes;
  std::optional<agent::termination> ended;
  bool ended_before_the_last_bytes = false;  // terminated() was set with `last` bytes unread
  bool done = false;
};

// Waits 300 ms (the caller's frames are all in the line by then), then reads with read_some()
// calls of at most `piece` bytes until 0. When only the last `last` of the `total` bytes are still
// unread, it pauses 50 ms first (the line's reader runs meanwhile) and notes whether the session
// has already ended.
agent::incoming_handler piecewise_reader(std::shared_ptr<read_log> log, std::size_t piece,
                                         std::size_t total, std::size_t last) {
  return [=](agent::incoming_call) -> awaitable<agent::answer> {
    agent::answer a;
    a.serve = [=](agent::session s) -> awaitable<void> {
      asio::steady_timer pause(co_await asio::this_coro::executor, 300ms);
      co_await pause.async_wait(use_awaitable);
      std::vector<std::uint8_t> buf(piece);
      for (;;) {
        if (log->bytes.size() + last == total) {
          pause.expires_after(50ms);
          co_await pause.async_wait(use_awaitable);
          log->ended_before_the_last_bytes = s.terminated().has_value();
        }
        const std::size_t n = co_await s.read_some(asio::buffer(buf));
        if (n == 0) break;
        log->bytes.insert(log->bytes.end(), buf.begin(), buf.begin() + static_cast<long>(n));
      }
      log->ended = s.terminated();
      log->done = true;
    };
    co_return a;
  };
}

// A raw caller sends many DATA frames, small ones among them, and then EOF or TERMINATE, all in
// one write. On a plaintext line bob's line reader finds a small payload whole behind its header
// and hands it to the session's inbox (agent/line.hpp) so that it can read on; it may then read
// the end of the session before the application has read that payload. The application must
// still read every byte once and in order, and only then see the end. The reader starts late, so
// that the line holds the frames and the end at once. Reads of 7 bytes take a payload in pieces;
// reads of 64 KiB take each payload in one piece. The last two payloads are small and follow a
// large one: the line's reader reads the header after a large payload alone and hands that frame
// over only once the application has read everything before it, so the last payload finds the
// inbox empty, comes with the end in one read, and waits in the inbox while the end is handled
// (the application pauses there, so that this happens whatever the scheduling).
void expect_everything_before_the_end(std::size_t piece, bool terminate) {
  relay_env env;  // plaintext: raw_client speaks no TLS, and TLS lines have no read-ahead
  auto log = std::make_shared<read_log>();
  auto [wire, sent] =
      data_frames({64, 1, 4096, 10, 4097, 64, 64, 30'000, 200, 3, 9000, 10, 64}, 300);
  env.run([&]() -> awaitable<void> {
    auto bob = env.make_agent("bob");
    bob->set_incoming(test_services(), piecewise_reader(log, piece, sent.size(), 64));
    co_await start_and_settle(bob, 2);
    auto alice = co_await raw_call(env.endpoint, "bob", "any");
    const auto end = terminate ? p::encode(p::terminate(err::service_unavailable, "that was all"))
                               : p::encode(p::eof{});
    wire.insert(wire.end(), end.begin(), end.end());
    co_await alice.send_bytes(wire);
    CO_WAIT_UNTIL(log->done, 10s);
    EXPECT_EQ(log->bytes.size(), sent.size());
    EXPECT_TRUE(log->bytes == sent);
    if (terminate) {
      EXPECT_TRUE(log->ended_before_the_last_bytes);  // the case this test is about happened
      CO_ASSERT_TRUE(log->ended.has_value());
      EXPECT_EQ(log->ended->code, err::service_unavailable);
    } else {
      EXPECT_FALSE(log->ended.has_value());  // EOF: a half-close, the session goes on
    }
  });
}

TEST(SessionEnd, SmallFramesAheadOfTerminateAreAllReadFirst) {
  expect_everything_before_the_end(7, true);
  expect_everything_before_the_end(64 * 1024, true);
}

TEST(SessionEnd, SmallFramesAheadOfEofAreAllReadFirst) {
  expect_everything_before_the_end(7, false);
  expect_everything_before_the_end(64 * 1024, false);
}

}  // namespace
}  // namespace switchboard::test
