// The byte stream a T.38 call runs over: a TCP socket here, a relayed agent::session later.
//
// Contract for implementations:
//  - read_some() returns some bytes, or 0 at the end of the stream; it may throw on errors.
//  - write() writes all bytes or throws.
//  - Both must complete promptly when the awaiting coroutine's cancellation slot is emitted
//    (terminal cancellation), as Asio's socket and timer operations do: run_t38_call() ends its
//    reader and writer that way, and waits for them before it returns.
//  - Used from one coroutine chain at a time: one read and one write may be outstanding together.
#pragma once

#include <concepts>
#include <cstddef>

#include "net/asio.hpp"

namespace switchboard::fax {

class byte_stream {
 public:
  virtual ~byte_stream() = default;
  virtual awaitable<std::size_t> read_some(asio::mutable_buffer buf) = 0;
  virtual awaitable<void> write(asio::const_buffer buf) = 0;
};

// A connected TCP socket (not owned). Sets TCP_NODELAY: T.30 answers are small and time-critical
// (T4 = 3.45 s), they must not wait for Nagle's algorithm.
class tcp_byte_stream final : public byte_stream {
 public:
  explicit tcp_byte_stream(tcp::socket& socket) : socket_(socket) {
    error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
  }

  awaitable<std::size_t> read_some(asio::mutable_buffer buf) override {
    auto [ec, n] = co_await socket_.async_read_some(buf, asio::as_tuple(use_awaitable));
    if (ec == asio::error::eof) co_return 0;
    if (ec) throw boost::system::system_error(ec, "fax: read");
    co_return n;
  }

  awaitable<void> write(asio::const_buffer buf) override {
    co_await asio::async_write(socket_, buf, use_awaitable);
  }

 private:
  tcp::socket& socket_;
};

// Anything with awaitable read_some(mutable_buffer) -> size_t (0 = end) and write(const_buffer),
// such as agent::session: byte_stream_ref<agent::session> stream(session);
template <typename Stream>
concept coroutine_byte_stream = requires(Stream& s, asio::mutable_buffer mb,
                                         asio::const_buffer cb) {
  { s.read_some(mb) } -> std::same_as<awaitable<std::size_t>>;
  { s.write(cb) } -> std::same_as<awaitable<void>>;
};

template <coroutine_byte_stream Stream>
class byte_stream_ref final : public byte_stream {
 public:
  explicit byte_stream_ref(Stream& stream) : stream_(stream) {}
  awaitable<std::size_t> read_some(asio::mutable_buffer buf) override {
    co_return co_await stream_.read_some(buf);
  }
  awaitable<void> write(asio::const_buffer buf) override { co_await stream_.write(buf); }

 private:
  Stream& stream_;
};

}  // namespace switchboard::fax
