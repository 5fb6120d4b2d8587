#include "net/forward.hpp"

#include "net/framed.hpp"
#include "protocol/frame.hpp"

namespace switchboard::net {

forward_path::forward_path(bool splice) {
  if (splice) {
    pipe_.emplace();
    small_.emplace();
  } else {
    chunk_.emplace();
  }
}

awaitable<bool> forward_path::forward(line_stream& from, line_stream* to, std::uint32_t length,
                                      liveness& from_state) {
  const bool delivered = co_await forward_payload(from, to, length, from_state);
  // A plain load and store, not a read-modify-write: only one thread forwards this direction.
  if (delivered)
    delivered_.store(delivered_.load(std::memory_order_relaxed) + length,
                     std::memory_order_relaxed);
  // The next payload is likely as large as this one (bulk transfer comes in full frames). Once
  // payloads are only dropped (no destination, or it broke), nothing is spliced any more.
  const bool spliced = splicing() && to && !broken_ && length > small_payload;
  from.set_read_ahead(!spliced);
  co_return delivered;
}

awaitable<bool> forward_path::forward_payload(line_stream& from, line_stream* to,
                                              std::uint32_t length, liveness& from_state) {
  // Once a splicing destination broke, payloads are only dropped.
  if (broken_) to = nullptr;
  if (!splicing() || !to || length <= small_payload) {
    co_return co_await copy_payload(from, to, length, from_state);
  }
  // What the source's read-ahead took of the payload leaves with the header; the rest is spliced.
  const auto held = from.buffered_bytes();
  const auto first = held.first(std::min<std::size_t>(held.size(), length));
  bool ok = true;
  try {
    co_await write_data_header(*to, length, first);
  } catch (const boost::system::system_error&) {
    ok = false;
  }
  if (ok) {
    from.consume_buffered(first.size());
    const bool delivered = co_await splice_payload(from, *to, length - first.size(), from_state);
    co_return delivered;
  }
  broken_ = true;
  co_return co_await copy_payload(from, nullptr, length, from_state);
}

awaitable<bool> forward_path::splice_payload(line_stream& from, line_stream& to, std::size_t n,
                                             liveness& st) {
  const int in = from.socket().native_handle();
  const int out = to.socket().native_handle();
  splice_pipe& pipe = **pipe_;
  while (n > 0 || pipe.held() > 0) {
    bool progressed = false;
    if (n > 0) {
      const auto got = pipe.fill(in, n);
      if (got && *got == 0) throw boost::system::system_error(asio::error::eof);
      if (got) {
        n -= *got;
        st.heard();
        progressed = true;
      }
    }
    if (pipe.held() > 0) {
      std::size_t put = 0;
      try {
        put = pipe.drain(out, n > 0);
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
    if (pipe.held() > 0) {
      st.set_blocked(true);
      auto [ec] =
          co_await to.socket().async_wait(tcp::socket::wait_write, asio::as_tuple(use_awaitable));
      st.set_blocked(false);
      st.heard();  // silence is judged afresh after a block
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
  std::uint8_t* const head = copy_buffer();
  std::uint8_t* const buf = head + protocol::header_size;
  const std::size_t cap = copy_capacity();
  bool first = true;
  const std::size_t total = n;
  while (n > 0) {
    const std::size_t got = co_await from.read_some(asio::buffer(buf, std::min(n, cap)));
    if (got == 0) throw boost::system::system_error(asio::error::eof);
    n -= got;
    st.heard();
    if (!to) continue;
    try {
      st.set_blocked(true);
      if (first) {
        // Header and first chunk leave in one write (one TLS record on a TLS line).
        const auto h =
            protocol::encode_header(protocol::frame_type::data, static_cast<std::uint32_t>(total));
        std::copy(h.begin(), h.end(), head);
        co_await to->write_all(asio::buffer(head, protocol::header_size + got));
      } else {
        co_await to->write_all(asio::buffer(buf, got));
      }
      st.set_blocked(false);
      st.heard();  // silence is judged afresh after a block
    } catch (const boost::system::system_error&) {
      st.set_blocked(false);
      st.heard();
      to = nullptr;
    }
    first = false;
  }
  co_return to != nullptr;
}

}  // namespace switchboard::net
