// Running blocking work (Argon2id, SQLite) off the I/O thread.
//
// `fn` runs on `pool`; the awaiting coroutine resumes on its own executor with the result or the
// exception. No coroutine frame crosses threads: only `fn` and the completion handler do, and the
// handler is invoked (and destroyed) on the awaiting coroutine's executor.
#pragma once

#include <exception>
#include <type_traits>
#include <utility>

#include "net/asio.hpp"

namespace switchboard::net {

template <typename F>
awaitable<std::invoke_result_t<F>> offload(asio::thread_pool& pool, F fn) {
  using result = std::invoke_result_t<F>;
  const auto home = co_await asio::this_coro::executor;
  // A named lambda: GCC 12 destroys capturing lambda temporaries inside co_await twice.
  auto initiation = [&pool, home, fn = std::move(fn)](auto handler) mutable {
    asio::post(pool, [home, fn = std::move(fn), handler = std::move(handler)]() mutable {
      std::exception_ptr error;
      result value{};
      try {
        value = fn();
      } catch (...) {
        error = std::current_exception();
      }
      asio::post(home, [handler = std::move(handler), error, value = std::move(value)]() mutable {
        std::move(handler)(error, std::move(value));
      });
    });
  };
  co_return co_await asio::async_initiate<decltype(use_awaitable),
                                          void(std::exception_ptr, result)>(std::move(initiation),
                                                                            use_awaitable);
}

}  // namespace switchboard::net
