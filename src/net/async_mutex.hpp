// A FIFO mutex for coroutines on one executor. Used to keep frames whole: every writer to a line
// holds the line's mutex for exactly one frame.
//
// Invariants: `locked_` is true while an owner exists; ownership passes directly from unlock() to
// the oldest waiter (no barging). An idle mutex owns no heap memory. Not thread-safe: all users
// run on the same executor.
#pragma once

#include <list>
#include <memory>

#include "net/asio.hpp"

namespace switchboard::net {

class async_mutex {
 public:
  class guard {
   public:
    explicit guard(async_mutex* m) : m_(m) {}
    guard(guard&& o) noexcept : m_(std::exchange(o.m_, nullptr)) {}
    guard& operator=(guard&&) = delete;
    ~guard() {
      if (m_) m_->unlock();
    }

   private:
    async_mutex* m_;
  };

  // Completes once the caller owns the mutex; the guard releases it.
  awaitable<guard> lock() {
    if (!locked_) {
      locked_ = true;
      co_return guard(this);
    }
    auto ex = co_await asio::this_coro::executor;
    auto w = std::make_shared<waiter>(ex);
    waiters_.push_back(w);
    co_await w->timer.async_wait(asio::as_tuple(use_awaitable));
    // Only unlock() wakes a waiter, and it hands ownership over before doing so.
    co_return guard(this);
  }

  bool locked() const { return locked_; }

 private:
  struct waiter {
    explicit waiter(const asio::any_io_executor& ex)
        : timer(ex, asio::steady_timer::time_point::max()) {}
    asio::steady_timer timer;
  };

  void unlock() {
    if (waiters_.empty()) {
      locked_ = false;
      return;
    }
    auto w = std::move(waiters_.front());
    waiters_.pop_front();
    w->timer.cancel();  // ownership stays taken: it passes to w
  }

  bool locked_ = false;
  std::list<std::shared_ptr<waiter>> waiters_;
};

}  // namespace switchboard::net
