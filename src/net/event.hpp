// A single-waiter wake-up for coroutines on one executor. set() before wait() is remembered, so a
// notification is never lost; several set() calls before a wait() count as one.
//
// wait() parks on a wake_channel, so set() costs a posted completion; wait_until() needs a timer
// for its deadline and parks on timer_, which set() then cancels (as before). Either wait returns
// normally, also when the wait is cancelled; not thread-safe.
#pragma once

#include "net/asio.hpp"
#include "net/wake_channel.hpp"

namespace switchboard::net {

class event {
 public:
  explicit event(const asio::any_io_executor& ex) : parked_(ex, 0), timer_(ex) {}

  awaitable<void> wait() {
    if (!set_) co_await parked_.async_receive(asio::as_tuple(use_awaitable));
    set_ = false;
  }
  // Like wait(), but gives up at `deadline`. True if notified.
  awaitable<bool> wait_until(asio::steady_timer::time_point deadline) {
    if (!set_) {
      timer_.expires_at(deadline);
      timed_wait_ = true;
      co_await timer_.async_wait(asio::as_tuple(use_awaitable));
      timed_wait_ = false;
    }
    return_value_ = set_;
    set_ = false;
    co_return return_value_;
  }
  void set() {
    set_ = true;
    if (timed_wait_) {
      timer_.cancel();
    } else {
      parked_.try_send(error_code{});  // false if nobody waits: set_ remembers it
    }
  }

 private:
  wake_channel parked_;       // where wait() parks
  asio::steady_timer timer_;  // where wait_until() parks
  bool set_ = false;
  bool timed_wait_ = false;  // the waiter (if any) is in wait_until()
  bool return_value_ = false;
};

}  // namespace switchboard::net

namespace switchboard::net {

// Wakes every waiter at once; waiters re-check their condition in a loop. Nothing is remembered:
// on one executor no notification can slip between a waiter's check and its wait.
class broadcast {
 public:
  explicit broadcast(const asio::any_io_executor& ex)
      : timer_(ex, asio::steady_timer::time_point::max()) {}

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
