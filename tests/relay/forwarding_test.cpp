// Paired lines (docs/protocol.md §5 step 4): DATA and EOF travel unchanged, in order, both ways;
// half-close; end-to-end flow control.
#include "relay/harness.hpp"

#include <fstream>

namespace switchboard::test {
namespace {

namespace p = protocol;
constexpr std::size_t MiB = 1024 * 1024;

class Forwarding : public ::testing::TestWithParam<transport> {};
INSTANTIATE_TEST_SUITE_P(Transports, Forwarding,
                         ::testing::Values(transport::plaintext, transport::tls), transport_name);

TEST_P(Forwarding, ManyRoundTrips) {
  relay_env env(GetParam());
  env.run([&]() -> awaitable<void> {
    auto agents = co_await start_pair(env, echo_handler());
    auto s = co_await agents.alice->call("bob", "echo");
    std::vector<std::uint8_t> buf(8192);
    for (std::size_t i = 0; i < 300; ++i) {
      const auto msg = random_bytes(1 + (i * 37) % 4000, i);
      co_await s.write(asio::buffer(msg));
      std::size_t got = 0;
      while (got < msg.size()) {
        const std::size_t n =
            co_await s.read_some(asio::buffer(buf.data() + got, buf.size() - got));
        CO_ASSERT_TRUE(n > 0);
        got += n;
      }
      CO_ASSERT_TRUE(std::equal(msg.begin(), msg.end(), buf.begin()));
    }
    co_await s.close();
  });
}

TEST_P(Forwarding, TargetMaySpeakFirst) {
  relay_env env(GetParam());
  env.run([&]() -> awaitable<void> {
    auto greeter = [](agent::incoming_call) -> awaitable<agent::answer> {
      agent::answer a;
      a.serve = [](agent::session s) -> awaitable<void> {
        const auto banner = bytes_of("SSH-2.0-switchboard\r\n");
        co_await s.write(asio::buffer(banner));  // right after ACCEPT
        co_await echo(std::move(s));
      };
      co_return a;
    };
    auto agents = co_await start_pair(env, greeter);
    auto s = co_await agents.alice->call("bob", "ssh");
    const auto back = co_await send_and_read_all(s, bytes_of("client hello"));
    EXPECT_EQ(text_of(back), "SSH-2.0-switchboard\r\nclient hello");
  });
}

// Target side of the bulk test: reads everything while sending its own bytes, then reports.
struct bulk_target {
  std::vector<std::uint8_t> to_send;
  std::vector<std::uint8_t> received;
  bool done = false;
};

TEST_P(Forwarding, MebibytesEachWayArriveIntact) {
  relay_env env(GetParam());
  auto target = std::make_shared<bulk_target>();
  target->to_send = random_bytes(4 * MiB + 123, 2);
  const auto from_caller = random_bytes(4 * MiB + 321, 1);
  env.run([&]() -> awaitable<void> {
    auto handler = [target](agent::incoming_call) -> awaitable<agent::answer> {
      agent::answer a;
      a.serve = [target](agent::session s) -> awaitable<void> {
        target->received = co_await send_and_read_all(s, target->to_send);
        target->done = true;
      };
      co_return a;
    };
    auto agents = co_await start_pair(env, handler);
    auto s = co_await agents.alice->call("bob", "bulk");
    const auto at_caller = co_await send_and_read_all(s, from_caller);
    CO_WAIT_UNTIL(target->done, 10s);
    EXPECT_EQ(at_caller.size(), target->to_send.size());
    EXPECT_EQ(sha256_hex(at_caller), sha256_hex(target->to_send));
    EXPECT_EQ(target->received.size(), from_caller.size());
    EXPECT_EQ(sha256_hex(target->received), sha256_hex(from_caller));
  });
}

// DATA frames on both sides of the relay's small-payload threshold (copied up to 4 KiB, spliced
// above on plaintext lines) alternate: they must arrive in order, each byte once.
TEST_P(Forwarding, FramesAcrossTheCopySpliceThresholdKeepTheirOrder) {
  relay_env env(GetParam());
  env.run([&]() -> awaitable<void> {
    auto agents = co_await start_pair(env, echo_handler());
    auto s = co_await agents.alice->call("bob", "echo");
    const std::size_t sizes[] = {1, 4096, 4097, 100'000, 3, 4095, 70'000, 1, 8192, 5, 300'000, 2};
    std::vector<std::uint8_t> sent;
    std::uint64_t seed = 40;
    for (const std::size_t n : sizes) {
      const auto part = random_bytes(n, seed++);
      sent.insert(sent.end(), part.begin(), part.end());
    }
    // One write() per size, so each becomes its own DATA frame(s).
    auto writer = [&s, &sizes, &sent]() -> awaitable<void> {
      std::size_t at = 0;
      for (const std::size_t n : sizes) {
        co_await s.write(asio::buffer(sent.data() + at, n));
        at += n;
      }
      co_await s.shutdown_write();
    };
    using namespace asio::experimental::awaitable_operators;
    auto back = co_await (writer() && read_to_end(s));
    EXPECT_EQ(back.size(), sent.size());
    EXPECT_EQ(sha256_hex(back), sha256_hex(sent));
  });
}

TEST_P(Forwarding, HalfCloseKeepsTheOtherDirectionOpen) {
  relay_env env(GetParam());
  env.run([&]() -> awaitable<void> {
    // Reads the whole request (to EOF), and only then answers.
    auto responder = [](agent::incoming_call) -> awaitable<agent::answer> {
      agent::answer a;
      a.serve = [](agent::session s) -> awaitable<void> {
        const auto request = co_await read_to_end(s);
        if (s.terminated()) co_return;  // not an EOF: nobody to answer
        const auto reply = bytes_of("after EOF: got " + std::to_string(request.size()) + " bytes");
        co_await s.write(asio::buffer(reply));
        co_await s.shutdown_write();
      };
      co_return a;
    };
    auto agents = co_await start_pair(env, responder);
    auto s = co_await agents.alice->call("bob", "req");
    const auto request = random_bytes(300'000, 5);
    co_await write_then_eof(s, request);
    const auto reply = co_await read_to_end(s);
    EXPECT_EQ(text_of(reply), "after EOF: got 300000 bytes");
  });
}

// Flow control: a target that does not read stalls the caller's writes.
struct paused_reader {
  bool go = false;
  std::vector<std::uint8_t> received;
  bool done = false;
};

awaitable<void> write_counting(agent::session& s, std::span<const std::uint8_t> data,
                               std::size_t& written) {
  constexpr std::size_t chunk = 64 * 1024;
  for (std::size_t off = 0; off < data.size(); off += chunk) {
    const std::size_t n = std::min(chunk, data.size() - off);
    co_await s.write(asio::buffer(data.data() + off, n));
    written += n;
  }
  co_await s.shutdown_write();
}

// The third field of a tcp_rmem/tcp_wmem sysctl (the most a socket buffer autotunes to), or
// `fallback` if it cannot be read.
std::size_t sysctl_max(const char* file, std::size_t fallback) {
  std::ifstream in(file);
  std::size_t lo = 0, def = 0, max = 0;
  return (in >> lo >> def >> max) ? max : fallback;
}

// Most bytes a paused reader's path can hold before the writer blocks: the two receive buffers
// (relay from alice, bob from the relay) and the two send buffers (alice, the relay to bob) at
// their autotuning maximum, one 256 KiB chunk or pipe inside the relay, and 4 MiB for the
// agents' own buffers and skb overhead. 6 MiB + 4 MiB per direction by default; 32 MiB receive
// buffers on some machines (seen failing a fixed 32 MiB bound there).
std::size_t buffering_bound() {
  const std::size_t rmem = sysctl_max("/proc/sys/net/ipv4/tcp_rmem", 6 * MiB);
  const std::size_t wmem = sysctl_max("/proc/sys/net/ipv4/tcp_wmem", 4 * MiB);
  return 2 * rmem + 2 * wmem + 256 * 1024 + 4 * MiB;
}

// Waits until `written` stops growing for `quiet` (bounded), checks it, then lets the reader go.
awaitable<void> expect_stall_then_release(const std::size_t& written, std::size_t total,
                                          std::shared_ptr<paused_reader> reader) {
  asio::steady_timer tick(co_await asio::this_coro::executor);
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  std::size_t last = written;
  auto last_change = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - last_change < 500ms &&
         std::chrono::steady_clock::now() < deadline && written < total) {
    tick.expires_after(20ms);
    co_await tick.async_wait(use_awaitable);
    if (written != last) {
      last = written;
      last_change = std::chrono::steady_clock::now();
    }
  }
  // What the writer got rid of sits in kernel socket buffers plus at most one 256 KiB chunk or
  // pipe inside the relay (buffering_bound(); up to 19.6 MiB was seen on a 32 MiB-tcp_rmem
  // machine under load). `total` is larger than that bound: the writer cannot have finished.
  EXPECT_LT(written, total) << "the writer was not held back by the paused reader";
  EXPECT_LE(written, buffering_bound());
  reader->go = true;
}

TEST_P(Forwarding, SlowReaderThrottlesTheWriter) {
  relay_env env(GetParam());
  auto reader = std::make_shared<paused_reader>();
  const auto data = random_bytes(buffering_bound() + 16 * MiB, 9);
  env.run(
      [&]() -> awaitable<void> {
        auto handler = [reader](agent::incoming_call) -> awaitable<agent::answer> {
          agent::answer a;
          a.serve = [reader](agent::session s) -> awaitable<void> {
            std::function<bool()> released = [&] { return reader->go || s.terminated(); };
            if (!co_await poll_until(released, 60s)) co_return;
            reader->received = co_await read_to_end(s);
            reader->done = true;
          };
          co_return a;
        };
        auto agents = co_await start_pair(env, handler);
        auto s = co_await agents.alice->call("bob", "sink");
        std::size_t written = 0;
        using namespace asio::experimental::awaitable_operators;
        co_await (write_counting(s, data, written) &&
                  expect_stall_then_release(written, data.size(), reader));
        CO_WAIT_UNTIL(reader->done, 30s);
        EXPECT_EQ(reader->received.size(), data.size());
        EXPECT_TRUE(reader->received == data);
      },
      60s);
}

// Flow control is not silence: a target that stops reading for many keep-alive intervals keeps
// its session (docs/protocol.md §8: lines held up by flow control are judged by the path).
TEST_P(Forwarding, ReaderPausedForManyKeepAliveIntervalsKeepsItsSession) {
  relay_env env(GetParam());
  auto reader = std::make_shared<paused_reader>();
  const auto data = random_bytes(32 * MiB, 10);
  env.run(
      [&]() -> awaitable<void> {
        auto handler = [reader](agent::incoming_call) -> awaitable<agent::answer> {
          agent::answer a;
          a.serve = [reader](agent::session s) -> awaitable<void> {
            std::function<bool()> released = [&] { return reader->go || s.terminated(); };
            if (!co_await poll_until(released, 60s)) co_return;
            reader->received = co_await read_to_end(s);
            reader->done = true;
          };
          co_return a;
        };
        auto bob_opts = env.agent_options("bob");
        bob_opts.keepalive = 200ms;
        auto bob = env.make_agent(bob_opts);
        bob->set_incoming(test_services(), handler);
        co_await start_and_settle(bob, 2);
        auto alice_opts = env.agent_options("alice");
        alice_opts.keepalive = 200ms;
        auto alice = env.make_agent(alice_opts);
        co_await start_and_settle(alice, 2);
        auto s = co_await alice->call("bob", "sink");
        std::size_t written = 0;
        const auto pause_reader = [&]() -> awaitable<void> {
          std::function<bool()> stalled_long = [&] { return written > 0; };
          co_await poll_until(stalled_long, 10s);
          // Ten keep-alive intervals with the reader paused and the writer blocked.
          std::function<bool()> never = [] { return false; };
          co_await poll_until(never, 2s);
          reader->go = true;
        };
        using namespace asio::experimental::awaitable_operators;
        co_await (write_counting(s, data, written) && pause_reader());
        CO_WAIT_UNTIL(reader->done, 30s);
        EXPECT_EQ(reader->received.size(), data.size());
        EXPECT_TRUE(reader->received == data);
        // Nothing was cut: no line was lost or replaced on either side.
        EXPECT_EQ(alice->stats().lines_lost, 0u);
        EXPECT_EQ(bob->stats().lines_lost, 0u);
        if (const auto t = s.terminated()) {
          EXPECT_EQ(t->code, err::ok) << t->message;
        }
      },
      60s);
}

TEST(Forwarding, RawFramesTravelUnchangedAndPingIsAnsweredLocally) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto [alice, bob] = co_await paired_raw(env.endpoint);

    // Frame boundaries are kept: the smallest and the largest DATA frame arrive as sent.
    const auto one = random_bytes(1, 1);
    const auto max = random_bytes(p::max_data_payload, 2);
    co_await alice.send_data(one);
    co_await alice.send_data(max);
    const auto got_one = co_await bob.expect_data();
    EXPECT_TRUE(got_one == one);
    const auto got_max = co_await bob.expect_data();
    EXPECT_TRUE(got_max == max);

    // A PING on a paired line is answered by the relay and never reaches the peer.
    const p::ping ping{77};
    co_await bob.send(ping);
    const auto after_ping = bytes_of("after ping");
    co_await bob.send_data(after_ping);
    const auto pong = co_await bob.expect<p::pong>();
    EXPECT_EQ(pong.nonce, 77u);
    const auto got_after_ping = co_await alice.expect_data();
    EXPECT_EQ(text_of(got_after_ping), "after ping");

    // EOF is forwarded and the other direction goes on.
    const p::eof eof;
    co_await alice.send(eof);
    co_await bob.expect<p::eof>();
    const auto late = bytes_of("still talking");
    co_await bob.send_data(late);
    const auto got_late = co_await alice.expect_data();
    EXPECT_EQ(text_of(got_late), "still talking");
    co_await bob.send(eof);
    co_await alice.expect<p::eof>();
  });
}

// Frames that reach the relay in one segment: the relay reads a small frame's header with what
// follows it (its read-ahead), so the next, large frame starts in user space and ends in the
// socket, where it is spliced from. Sent four times, so that the session's later rounds run on a
// forwarding thread. Every frame must arrive whole, in order, with its boundaries.
TEST(Forwarding, FramesArrivingTogetherAreForwardedWholeAcrossCopyAndSplice) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto [alice, bob] = co_await paired_raw(env.endpoint);
    const std::size_t sizes[] = {5, 100'000, 3, 4096, 4097, 70'000, 1, 9000, 2};
    std::uint64_t seed = 500;
    for (int round = 0; round < 4; ++round) {
      std::vector<std::vector<std::uint8_t>> payloads;
      std::vector<std::uint8_t> wire;
      for (const std::size_t n : sizes) {
        payloads.push_back(random_bytes(n, seed++));
        const auto h = p::encode_header(p::frame_type::data, static_cast<std::uint32_t>(n));
        wire.insert(wire.end(), h.begin(), h.end());
        wire.insert(wire.end(), payloads.back().begin(), payloads.back().end());
      }
      co_await alice.send_bytes(wire);
      for (const auto& want : payloads) {
        const auto got = co_await bob.expect_data();
        CO_ASSERT_EQ(got.size(), want.size());
        CO_ASSERT_TRUE(got == want);
      }
    }
  });
}

TEST(Forwarding, DataBeforePairingIsAProtocolError) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto alice = co_await raw_client::connect(env.endpoint);
    co_await alice.login("alice", password_of("alice"));
    const auto payload = bytes_of("too early");
    co_await alice.send_data(payload);
    co_await alice.expect_logged_out_or_closed(err::protocol_error);
  });
}

}  // namespace
}  // namespace switchboard::test
