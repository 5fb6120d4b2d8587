// A single-waiter wake-up for coroutines on one executor. set() before wait() is remembered, so a
// notification is never lost; several set() calls before a wait() count as one.
#pragma once

#include "net/asio.hpp"

namespace switchboard::net {

class event {
 public:
  explicit event(const asio::any_io_executor& ex) : timer_(ex) {}

  awaitable<void> wait() {
    if (!set_) {
      timer_.expires_at(asio::steady_timer::time_point::max());
      co_await timer_.async_wait(asio::as_tuple(use_awaitable));
    }
    set_ = false;
  }
  // Like wait(), but gives up at `deadline`. True if notified.
  awaitable<bool> wait_until(asio::steady_timer::time_point deadline) {
    if (!set_) {
      timer_.expires_at(deadline);
      co_await timer_.async_wait(asio::as_tuple(use_awaitable));
    }
    return_value_ = set_;
    set_ = false;
    co_return return_value_;
  }
  void set() {
    set_ = true;
    timer_.cancel();
  }

 private:
  asio::steady_timer timer_;
  bool set_ = false;
  bool return_value_ = false;
};

}  // namespace switchboard::net

namespace switchboard::net {

// Wakes every waiter at once; waiters re-check their condition in a loop. Nothing is remembered:
// on one executor no notification can slip between a waiter's check and its wait.
class broadcast {
 public:
  explicit broadcast(const asio::any_io_executor& ex) : timer_(ex, asio::steady_timer::time_point::max()) {}

  // True if notified, false if the deadline passed first.
  awaitable<bool> wait_until(asio::steady_timer::time_point deadline) {
    asio::steady_timer limit(timer_.get_executor(), deadline);
    using namespace asio::experimental::awaitable_operators;
    const auto r = co_await (timer_.async_wait(asio::as_tuple(use_awaitable)) ||
                             limit.async_wait(asio::as_tuple(use_awaitable)));
    co_return r.index() == 0;
  }
  void notify_all() { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
};

}  // namespace switchboard::net
