#include "net/forward.hpp"

#include "net/framed.hpp"
#include "protocol/frame.hpp"

namespace switchboard::net {

forward_path::forward_path(bool splice)
    : chunk_size_(splice ? small_payload : forward_chunk),
      chunk_(std::make_unique_for_overwrite<std::uint8_t[]>(protocol::header_size + chunk_size_)) {
  if (splice) pipe_.emplace(forward_chunk);
}

awaitable<bool> forward_path::forward(line_stream& from, line_stream* to, std::uint32_t length,
                                      liveness& from_state) {
  // Once a splicing destination broke, payloads are only dropped.
  if (broken_) to = nullptr;
  if (!splicing() || !to || length <= small_payload) {
    co_return co_await copy_payload(from, to, length, from_state);
  }
  bool ok = true;
  try {
    co_await write_data_header(*to, length);
  } catch (const boost::system::system_error&) {
    ok = false;
  }
  if (ok) co_return co_await splice_payload(from, *to, length, from_state);
  broken_ = true;
  co_return co_await copy_payload(from, nullptr, length, from_state);
}

awaitable<bool> forward_path::splice_payload(line_stream& from, line_stream& to, std::size_t n,
                                             liveness& st) {
  const int in = from.socket().native_handle();
  const int out = to.socket().native_handle();
  while (n > 0 || pipe_->held() > 0) {
    bool progressed = false;
    if (n > 0) {
      const auto got = pipe_->fill(in, n);
      if (got && *got == 0) throw boost::system::system_error(asio::error::eof);
      if (got) {
        n -= *got;
        st.last_rx = std::chrono::steady_clock::now();
        progressed = true;
      }
    }
    if (pipe_->held() > 0) {
      std::size_t put = 0;
      try {
        put = pipe_->drain(out, n > 0);
      } catch (const boost::system::system_error&) {
        broken_ = true;
      }
      if (broken_) {
        // The destination is gone: the rest of the payload is read and dropped.
        co_await copy_payload(from, nullptr, n, st);
        co_return false;
      }
      progressed = progressed || put > 0;
    }
    if (progressed) continue;
    if (pipe_->held() > 0) {
      st.blocked_on_peer = true;
      auto [ec] =
          co_await to.socket().async_wait(tcp::socket::wait_write, asio::as_tuple(use_awaitable));
      st.blocked_on_peer = false;
      st.last_rx = std::chrono::steady_clock::now();  // silence is judged afresh after a block
      if (ec) {
        broken_ = true;
        co_await copy_payload(from, nullptr, n, st);
        co_return false;
      }
    } else {
      co_await from.socket().async_wait(tcp::socket::wait_read, use_awaitable);
    }
  }
  co_return true;
}

awaitable<bool> forward_path::copy_payload(line_stream& from, line_stream* to, std::size_t n,
                                           liveness& st) {
  std::uint8_t* buf = chunk_.get() + protocol::header_size;
  bool first = true;
  const std::size_t total = n;
  while (n > 0) {
    const std::size_t got = co_await from.read_some(asio::buffer(buf, std::min(n, chunk_size_)));
    if (got == 0) throw boost::system::system_error(asio::error::eof);
    n -= got;
    st.last_rx = std::chrono::steady_clock::now();
    if (!to) continue;
    try {
      st.blocked_on_peer = true;
      if (first) {
        // Header and first chunk leave in one write (one TLS record on a TLS line).
        const auto h =
            protocol::encode_header(protocol::frame_type::data, static_cast<std::uint32_t>(total));
        std::copy(h.begin(), h.end(), chunk_.get());
        co_await to->write_all(asio::buffer(chunk_.get(), protocol::header_size + got));
      } else {
        co_await to->write_all(asio::buffer(buf, got));
      }
      st.blocked_on_peer = false;
      st.last_rx = std::chrono::steady_clock::now();  // silence is judged afresh after a block
    } catch (const boost::system::system_error&) {
      st.blocked_on_peer = false;
      st.last_rx = std::chrono::steady_clock::now();
      to = nullptr;
    }
    first = false;
  }
  co_return to != nullptr;
}

}  // namespace switchboard::net
