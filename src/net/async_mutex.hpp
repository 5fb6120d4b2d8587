// A FIFO mutex for coroutines on one executor. Used to keep frames whole: every writer to a line
// holds the line's mutex for exactly one frame.
//
// Invariants: `locked_` is true while an owner exists; ownership passes directly from unlock() to
// the oldest waiter (no barging). Waiters park on a wake_channel made at the first contention
// (with the waiter's executor) and kept; a mutex never contended owns no heap memory. A lock()
// whose wait is cancelled throws operation_aborted and owns nothing. Not thread-safe: all users
// run on the same executor.
#pragma once

#include <memory>

#include "net/asio.hpp"
#include "net/wake_channel.hpp"

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
    if (!parked_) parked_ = std::make_unique<wake_channel>(co_await asio::this_coro::executor, 0);
    auto [ec] = co_await parked_->async_receive(asio::as_tuple(use_awaitable));
    // Success: unlock() handed ownership over (locked_ stayed true). Otherwise the wait was
    // cancelled and this waiter left the queue without owning.
    if (ec) throw boost::system::system_error(asio::error::operation_aborted);
    co_return guard(this);
  }

  bool locked() const { return locked_; }

 private:
  void unlock() {
    // Ownership stays taken if it passes to the oldest waiter; else the mutex is free.
    if (!parked_ || !parked_->try_send(error_code{})) locked_ = false;
  }

  bool locked_ = false;
  std::unique_ptr<wake_channel> parked_;  // owned; null until the first contention
};

}  // namespace switchboard::net
