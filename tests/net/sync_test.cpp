// net::event and net::async_mutex, the coroutine wake-up primitives. Semantics only, no
// timings: ordering and cancellation behaviour.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "net/async_mutex.hpp"
#include "net/event.hpp"

namespace {
using switchboard::awaitable;
using switchboard::net::async_mutex;
using switchboard::net::event;
namespace asio = boost::asio;

void run_all(asio::io_context& io) {
  io.run();
  io.restart();
}
}  // namespace

TEST(Event, SetBeforeWaitIsRememberedAndCountsOnce) {
  asio::io_context io(1);
  event ev(io.get_executor());
  int woken = 0;
  bool timed_out = false;
  ev.set();
  ev.set();
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        co_await ev.wait();  // the remembered set()
        ++woken;
        // The second set() was not remembered separately: this waits until the deadline.
        timed_out = !co_await ev.wait_until(std::chrono::steady_clock::now() +
                                            std::chrono::milliseconds(20));
      },
      asio::detached);
  run_all(io);
  EXPECT_EQ(woken, 1);
  EXPECT_TRUE(timed_out);
}

TEST(Event, SetWakesAParkedWaiterLaterNotInline) {
  asio::io_context io(1);
  event ev(io.get_executor());
  std::vector<int> order;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        co_await ev.wait();
        order.push_back(2);
      },
      asio::detached);
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        ev.set();
        order.push_back(1);  // set() did not run the waiter inline
        co_return;
      },
      asio::detached);
  run_all(io);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(Event, WaitUntilIsWokenBySet) {
  asio::io_context io(1);
  event ev(io.get_executor());
  bool notified = false;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        notified = co_await ev.wait_until(std::chrono::steady_clock::now() + std::chrono::hours(1));
      },
      asio::detached);
  asio::post(io, [&] { ev.set(); });
  run_all(io);
  EXPECT_TRUE(notified);
}

TEST(Event, CancelledWaitReturnsNormally) {
  asio::io_context io(1);
  event ev(io.get_executor());
  asio::steady_timer limit(io, std::chrono::milliseconds(10));
  std::size_t which = 99;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        using namespace asio::experimental::awaitable_operators;
        auto r = co_await (ev.wait() || limit.async_wait(asio::use_awaitable));
        which = r.index();
      },
      asio::detached);
  run_all(io);
  EXPECT_EQ(which, 1u);
  // A later set() is remembered for the next wait.
  ev.set();
  bool woken = false;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        co_await ev.wait();
        woken = true;
      },
      asio::detached);
  run_all(io);
  EXPECT_TRUE(woken);
}

TEST(AsyncMutex, HandsOverInFifoOrder) {
  asio::io_context io(1);
  async_mutex m;
  std::vector<int> order;
  auto worker = [&](int id) -> awaitable<void> {
    auto g = co_await m.lock();
    order.push_back(id);
    co_await asio::post(io, asio::use_awaitable);  // hold it across a suspension
  };
  for (int i = 0; i < 4; ++i) asio::co_spawn(io, worker(i), asio::detached);
  run_all(io);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_FALSE(m.locked());
}

TEST(AsyncMutex, CancelledWaiterDoesNotOwnAndLeavesTheQueue) {
  asio::io_context io(1);
  async_mutex m;
  bool third_got_it = false;
  int holders = 0;
  int max_holders = 0;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        auto g = co_await m.lock();
        max_holders = std::max(max_holders, ++holders);
        asio::steady_timer hold(io, std::chrono::milliseconds(30));
        co_await hold.async_wait(asio::use_awaitable);
        --holders;
      },
      asio::detached);
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        using namespace asio::experimental::awaitable_operators;
        asio::steady_timer limit(io, std::chrono::milliseconds(5));
        // The timer wins; the cancelled lock() throws operation_aborted, which `||` discards.
        co_await (m.lock() || limit.async_wait(asio::use_awaitable));
      },
      asio::detached);
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        auto g = co_await m.lock();
        max_holders = std::max(max_holders, ++holders);
        third_got_it = true;
        --holders;
      },
      asio::detached);
  run_all(io);
  EXPECT_TRUE(third_got_it);
  EXPECT_EQ(max_holders, 1);  // the cancelled waiter never owned, so nobody got in early
  EXPECT_FALSE(m.locked());
}
