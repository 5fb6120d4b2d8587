// sb_micro: Google Benchmark microbenchmarks of the hot small pieces: the frame codec
// (protocol::encode_header / parse_header / encode / decode) and the coroutine primitives every
// frame goes through (net::async_mutex, net::event).
//
//   build/release/bench/sb_micro --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <array>
#include <vector>

#include "net/async_mutex.hpp"
#include "net/event.hpp"
#include "protocol/frame.hpp"
#include "protocol/messages.hpp"

using namespace switchboard;
namespace p = protocol;

namespace {

void BM_encode_header(benchmark::State& state) {
  std::uint32_t len = 1;
  for (auto _ : state) {
    auto h = p::encode_header(p::frame_type::data, len);
    benchmark::DoNotOptimize(h);
    len = (len % 1000000) + 1;
  }
}
BENCHMARK(BM_encode_header);

void BM_parse_header(benchmark::State& state) {
  const auto bytes = p::encode_header(p::frame_type::data, 262144);
  for (auto _ : state) {
    benchmark::DoNotOptimize(bytes);
    auto h = p::parse_header(bytes);
    benchmark::DoNotOptimize(h);
  }
}
BENCHMARK(BM_parse_header);

template <typename M>
void encode_bench(benchmark::State& state, const p::message& m) {
  for (auto _ : state) {
    auto frame = p::encode(m);
    benchmark::DoNotOptimize(frame.data());
  }
}

void BM_encode_ping(benchmark::State& state) {
  encode_bench<p::ping>(state, p::message(p::ping{42}));
}
BENCHMARK(BM_encode_ping);

void BM_encode_demand(benchmark::State& state) {
  const p::message m(p::demand("bob-device", "ssh"));
  encode_bench<p::demand>(state, m);
}
BENCHMARK(BM_encode_demand);

void BM_encode_terminate(benchmark::State& state) {
  const p::message m(p::terminate(p::error_code::ok, "the peer ended the session"));
  encode_bench<p::terminate>(state, m);
}
BENCHMARK(BM_encode_terminate);

void decode_bench(benchmark::State& state, const p::message& m) {
  const auto frame = p::encode(m);
  const auto h =
      p::parse_header(std::span<const std::uint8_t, p::header_size>(frame.data(), p::header_size));
  const std::span<const std::uint8_t> payload(frame.data() + p::header_size,
                                              frame.size() - p::header_size);
  for (auto _ : state) {
    auto out = p::decode(h.type, payload);
    benchmark::DoNotOptimize(out);
  }
}

void BM_decode_pong(benchmark::State& state) {
  decode_bench(state, p::message(p::pong{7}));
}
BENCHMARK(BM_decode_pong);

void BM_decode_demand(benchmark::State& state) {
  decode_bench(state, p::message(p::demand("bob-device", "ssh")));
}
BENCHMARK(BM_decode_demand);

void BM_decode_incoming(benchmark::State& state) {
  decode_bench(state, p::message(p::incoming(17, "alice", "ssh")));
}
BENCHMARK(BM_decode_incoming);

// --- coroutine primitives ---------------------------------------------------------------------

// lock() + unlock() with nobody waiting: the cost every frame write pays.
awaitable<void> uncontended(benchmark::State& state, net::async_mutex& m) {
  for (auto _ : state) {
    auto g = co_await m.lock();
    benchmark::DoNotOptimize(&g);
  }
}

void BM_async_mutex_uncontended(benchmark::State& state) {
  asio::io_context io(1);
  net::async_mutex m;
  asio::co_spawn(io, uncontended(state, m), asio::detached);
  io.run();
}
BENCHMARK(BM_async_mutex_uncontended);

// Two writers alternate: each holds the mutex across a suspension, so every lock() waits and is
// handed over by unlock() (a timer cancel + a completion dispatch).
struct contended_state {
  bool stop = false;
  std::uint64_t handoffs = 0;
};

awaitable<void> contender(net::async_mutex& m, contended_state& st, std::uint64_t limit) {
  while (!st.stop) {
    auto g = co_await m.lock();
    if (++st.handoffs >= limit) st.stop = true;
    co_await asio::post(co_await asio::this_coro::executor, use_awaitable);
  }
}

void BM_async_mutex_handoff(benchmark::State& state) {
  std::uint64_t total = 0;
  for (auto _ : state) {
    asio::io_context io(1);
    net::async_mutex m;
    contended_state st;
    asio::co_spawn(io, contender(m, st, 10000), asio::detached);
    asio::co_spawn(io, contender(m, st, 10000), asio::detached);
    io.run();
    total += st.handoffs;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(total));
}
BENCHMARK(BM_async_mutex_handoff)->Unit(benchmark::kMillisecond);

// net::event set() -> wait() wake-up between two coroutines: what the agent does per DATA frame
// (reader hands the frame to the session, session signals it consumed it).
awaitable<void> ping_side(net::event& mine, net::event& theirs, std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) {
    theirs.set();
    co_await mine.wait();
  }
  theirs.set();
}

void BM_event_pingpong(benchmark::State& state) {
  std::uint64_t total = 0;
  for (auto _ : state) {
    asio::io_context io(1);
    net::event a(io.get_executor()), b(io.get_executor());
    constexpr std::uint64_t n = 10000;
    asio::co_spawn(io, ping_side(a, b, n), asio::detached);
    asio::co_spawn(io, ping_side(b, a, n), asio::detached);
    io.run();
    total += 2 * n;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(total));
}
BENCHMARK(BM_event_pingpong)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
