// The parking spot of net::event and net::async_mutex: an Asio channel of capacity 0 carrying no
// value. A waiter parks with async_receive(); try_send() hands the wake-up to the oldest parked
// waiter (FIFO) by posting its completion, so the waker never runs the waiter inline, and fails
// when nobody is parked. Cheaper than the steady_timer cancel used before (no timerfd_settime and
// no reactor round trip per wake-up), with the same ownership rules: pending waits are
// operations of the io_context (destroyed at its shutdown) and complete with an error when
// cancelled (per-operation cancellation) or when the channel is destroyed.
#pragma once

#include <list>

#include <boost/asio/experimental/channel.hpp>

#include "net/asio.hpp"

namespace switchboard::net {

// Like asio's default traits for void(error_code), but with std::list as the (unused: capacity 0)
// buffer container: std::deque allocates in its default constructor, std::list does not, so an
// idle channel owns no heap memory.
struct wake_traits {
  template <typename... Signatures>
  struct rebind {
    using other = wake_traits;
  };
  template <typename Element>
  struct container {
    using type = std::list<Element>;
  };
  using receive_cancelled_signature = void(error_code);
  template <typename F>
  static void invoke_receive_cancelled(F f) {
    const error_code e = asio::experimental::error::channel_cancelled;
    static_cast<F&&>(f)(e);
  }
  using receive_closed_signature = void(error_code);
  template <typename F>
  static void invoke_receive_closed(F f) {
    const error_code e = asio::experimental::error::channel_closed;
    static_cast<F&&>(f)(e);
  }
};

using wake_channel =
    asio::experimental::basic_channel<asio::any_io_executor, wake_traits, void(error_code)>;

}  // namespace switchboard::net
