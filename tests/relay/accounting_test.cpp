// Session accounting (docs/configuration.md "Logs"): the bytes a paired session forwarded each way,
// counted where they are forwarded (net::forward_path) on the control thread and on a forwarding
// thread, and the one info line the relay logs when the session has ended.
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include "relay/harness.hpp"

namespace switchboard::test {
namespace {

namespace p = protocol;
constexpr std::size_t MiB = 1024 * 1024;

// The default logger's output at info and above, for one test: its sinks are swapped for a ring
// buffer and restored (with the level) at the end.
class log_capture {
 public:
  log_capture()
      : logger_(spdlog::default_logger()),
        saved_sinks_(logger_->sinks()),
        saved_level_(logger_->level()),
        ring_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000)) {
    ring_->set_pattern("%v");
    logger_->sinks() = {ring_};
    logger_->set_level(spdlog::level::info);
  }
  log_capture(const log_capture&) = delete;
  log_capture& operator=(const log_capture&) = delete;
  ~log_capture() {
    logger_->sinks() = saved_sinks_;
    logger_->set_level(saved_level_);
  }
  // Captured lines containing `text`.
  std::vector<std::string> lines_with(const std::string& text) const {
    std::vector<std::string> out;
    for (auto& l : ring_->last_formatted()) {
      if (l.find(text) != std::string::npos) out.push_back(l);
    }
    return out;
  }

 private:
  std::shared_ptr<spdlog::logger> logger_;
  std::vector<spdlog::sink_ptr> saved_sinks_;
  spdlog::level::level_enum saved_level_;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> ring_;
};

relay::relay_config forwarding_threads(unsigned threads, std::uint64_t after_frames) {
  auto cfg = test_config();
  cfg.forward_threads = threads;
  cfg.offload_after_frames = after_frames;
  return cfg;
}

// alice sends `to_target` frames to bob and bob `to_caller` frames to alice, each read whole on
// the other side; then alice TERMINATEs and both release. Returns the payload bytes each way.
struct sent_bytes {
  std::uint64_t to_target = 0;
  std::uint64_t to_caller = 0;
};
// DATA frames of the given sizes from `from`, each read whole by `to`; returns the bytes sent.
awaitable<std::uint64_t> send_frames(raw_client& from, raw_client& to,
                                     std::vector<std::size_t> sizes, std::uint64_t seed) {
  std::uint64_t sent = 0;
  for (const std::size_t n : sizes) {
    const auto data = random_bytes(n, seed++);
    co_await from.send_data(data);
    const auto got = co_await to.expect_data();
    EXPECT_EQ(got, data);
    sent += n;
  }
  co_return sent;
}

awaitable<sent_bytes> raw_session(raw_pair& pair, std::vector<std::size_t> to_target,
                                  std::vector<std::size_t> to_caller) {
  sent_bytes sent;
  sent.to_target = co_await send_frames(pair.alice, pair.bob, to_target, 1);
  sent.to_caller = co_await send_frames(pair.bob, pair.alice, to_caller, 100);
  const p::terminate bye{err::ok, "done"};
  co_await pair.alice.send(bye);
  co_await pair.bob.expect_terminate(err::ok);
  const p::release release;
  co_await pair.bob.send(release);
  co_await pair.bob.expect<p::released>();
  co_await pair.alice.send(release);
  co_await pair.alice.expect<p::released>();
  co_return sent;
}

TEST(Accounting, ControlThreadSessionCountsEachWayAndLogsItsEnd) {
  log_capture log;
  relay_env env(transport::plaintext, forwarding_threads(0, 0));
  env.run([&]() -> awaitable<void> {
    auto pair = co_await paired_raw(env.endpoint);
    // Sizes on both sides of the copy/splice threshold, and a frame of one byte. (Named locals:
    // GCC 12 cannot take an initializer list inside co_await.)
    const std::vector<std::size_t> to_target{1, 100, 70'000, 300'000};
    const std::vector<std::size_t> to_caller{5, 200'000};
    const auto sent = co_await raw_session(pair, to_target, to_caller);
    CO_WAIT_UNTIL(env.counters().sessions_ended == 1, 5s);
    EXPECT_EQ(env.counters().offloads, 0u);
    EXPECT_EQ(env.counters().ended_bytes_to_targets, sent.to_target);
    EXPECT_EQ(env.counters().ended_bytes_to_callers, sent.to_caller);
    const auto ended = log.lines_with(
        "session 1 ended: alice -> bob:echo, 370101 bytes to target, "
        "200005 bytes to caller, ");
    CO_ASSERT_EQ(ended.size(), 1u);
    EXPECT_NE(ended[0].find("by caller: TERMINATE OK"), std::string::npos) << ended[0];
  });
}

TEST(Accounting, SessionOnAForwardingThreadCountsEachWay) {
  relay_env env(transport::plaintext, forwarding_threads(2, 2));
  env.run([&]() -> awaitable<void> {
    auto pair = co_await paired_raw(env.endpoint);
    const std::vector<std::size_t> to_target{10, 20, 1'000'000, 70'000, 3};
    const std::vector<std::size_t> to_caller{40'000, 1, 500'000, 7};
    const auto sent = co_await raw_session(pair, to_target, to_caller);
    CO_WAIT_UNTIL(env.counters().sessions_ended == 1, 5s);
    EXPECT_GE(env.counters().offloads, 1u);  // the later frames went through a stint
    EXPECT_EQ(env.counters().ended_bytes_to_targets, sent.to_target);
    EXPECT_EQ(env.counters().ended_bytes_to_callers, sent.to_caller);
  });
}

// Agents on both transports (TLS: the copy path), mebibytes each way through a forwarding thread;
// the target ends the session by closing its line (PEER_LOST).
class AccountingAgents : public ::testing::TestWithParam<transport> {};
INSTANTIATE_TEST_SUITE_P(Transports, AccountingAgents,
                         ::testing::Values(transport::plaintext, transport::tls), transport_name);

TEST_P(AccountingAgents, BulkBothWaysIsCountedExactly) {
  log_capture log;
  relay_env env(GetParam(), forwarding_threads(2, 16));
  const auto to_target = random_bytes(3 * MiB + 11, 21);
  const auto to_caller = random_bytes(2 * MiB + 5, 22);
  env.run([&]() -> awaitable<void> {
    auto handler = [&](agent::incoming_call) -> awaitable<agent::answer> {
      agent::answer a;
      a.serve = [&](agent::session s) -> awaitable<void> {
        const auto got = co_await send_and_read_all(s, to_caller);
        EXPECT_EQ(got.size(), to_target.size());
      };
      co_return a;
    };
    const auto [alice, bob] = co_await start_pair(env, handler);
    auto s = co_await alice->call("bob", "bulk");
    const auto got = co_await send_and_read_all(s, to_target);
    EXPECT_EQ(got.size(), to_caller.size());
    CO_WAIT_UNTIL(env.counters().sessions_ended == 1, 10s);
    EXPECT_GE(env.counters().offloads, 1u);
    EXPECT_EQ(env.counters().ended_bytes_to_targets, to_target.size());
    EXPECT_EQ(env.counters().ended_bytes_to_callers, to_caller.size());
    const auto ended = log.lines_with("session 1 ended: alice -> bob:bulk, " +
                                      std::to_string(to_target.size()) + " bytes to target, " +
                                      std::to_string(to_caller.size()) + " bytes to caller, ");
    EXPECT_EQ(ended.size(), 1u);
  });
}

TEST(Accounting, ALostLineEndsTheSessionAsLineLostBySide) {
  log_capture log;
  relay_env env(transport::plaintext, forwarding_threads(0, 0));
  env.run([&]() -> awaitable<void> {
    auto pair = co_await paired_raw(env.endpoint);
    const auto data = random_bytes(1000, 3);
    co_await pair.bob.send_data(data);
    co_await pair.alice.expect_data();
    pair.bob.close();
    co_await pair.alice.expect_terminate(err::peer_lost);
    const p::release release;
    co_await pair.alice.send(release);
    co_await pair.alice.expect<p::released>();
    CO_WAIT_UNTIL(env.counters().sessions_ended == 1, 5s);
    const auto ended = log.lines_with(
        "session 1 ended: alice -> bob:echo, 0 bytes to target, "
        "1000 bytes to caller, ");
    CO_ASSERT_EQ(ended.size(), 1u);
    EXPECT_NE(ended[0].find("by target: line lost PEER_LOST"), std::string::npos) << ended[0];
    // A routine line loss is not an info line any more.
    EXPECT_TRUE(log.lines_with("line lost: ").empty());
  });
}

}  // namespace
}  // namespace switchboard::test
