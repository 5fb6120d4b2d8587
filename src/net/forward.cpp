#include "net/forward.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "net/framed.hpp"
#include "protocol/frame.hpp"

namespace switchboard::net {

namespace {
[[noreturn]] void throw_errno(const char* what) {
  throw boost::system::system_error(error_code(errno, boost::system::system_category()), what);
}
}  // namespace

forward_path::forward_path(bool splice) {
  if (!splice) {
    chunk_ = std::make_unique<std::uint8_t[]>(protocol::header_size + forward_chunk);
    return;
  }
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) throw_errno("pipe2");
  pipe_r_ = fds[0];
  pipe_w_ = fds[1];
  // A larger pipe means fewer wake-ups per MiB; the default (64 KiB) is kept if the system's
  // pipe-max-size forbids it.
  (void)::fcntl(pipe_w_, F_SETPIPE_SZ, static_cast<int>(forward_chunk));
}

forward_path::~forward_path() {
  if (pipe_r_ >= 0) ::close(pipe_r_);
  if (pipe_w_ >= 0) ::close(pipe_w_);
}

awaitable<bool> forward_path::forward(line_stream& from, line_stream* to, std::uint32_t length,
                                      liveness& from_state) {
  if (splicing()) {
    // Built for plaintext on both ends. Once the destination broke, payloads are only dropped.
    if (!to || broken_) co_return co_await copy_payload(from, nullptr, length, from_state);
    const auto h = protocol::encode_header(protocol::frame_type::data, length);
    bool ok = true;
    try {
      // MSG_MORE lets the kernel put the header in the same segment as the spliced payload.
      auto& sock = to->socket();
      ssize_t sent = ::send(sock.native_handle(), h.data(), h.size(), MSG_MORE | MSG_NOSIGNAL);
      if (sent < 0 && errno != EAGAIN) throw_errno("send");
      sent = std::max<ssize_t>(sent, 0);
      if (static_cast<std::size_t>(sent) < h.size()) {
        co_await to->write_all(asio::buffer(h) + static_cast<std::size_t>(sent));
      }
    } catch (const boost::system::system_error&) {
      ok = false;
    }
    if (ok) co_return co_await splice_payload(from, *to, length, from_state);
    broken_ = true;
    co_return co_await copy_payload(from, nullptr, length, from_state);
  }
  co_return co_await copy_payload(from, to, length, from_state);
}

awaitable<bool> forward_path::splice_payload(line_stream& from, line_stream& to, std::size_t n,
                                             liveness& st) {
  const int in = from.socket().native_handle();
  const int out = to.socket().native_handle();
  while (n > 0 || in_pipe_ > 0) {
    bool progressed = false;
    if (n > 0) {
      const ssize_t got =
          ::splice(in, nullptr, pipe_w_, nullptr, n, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (got == 0) throw boost::system::system_error(asio::error::eof);
      if (got < 0 && errno != EAGAIN) throw_errno("splice from line");
      if (got > 0) {
        n -= static_cast<std::size_t>(got);
        in_pipe_ += static_cast<std::size_t>(got);
        st.last_rx = std::chrono::steady_clock::now();
        progressed = true;
      }
    }
    if (in_pipe_ > 0) {
      const unsigned more = n > 0 ? SPLICE_F_MORE : 0;
      const ssize_t put = ::splice(pipe_r_, nullptr, out, nullptr, in_pipe_,
                                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK | more);
      if (put < 0 && errno != EAGAIN) {
        // The destination is gone: the rest of the payload is read and dropped.
        broken_ = true;
        co_await copy_payload(from, nullptr, n, st);
        co_return false;
      }
      if (put > 0) {
        in_pipe_ -= static_cast<std::size_t>(put);
        progressed = true;
      }
    }
    if (progressed) continue;
    if (in_pipe_ > 0) {
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
  std::uint8_t sink[4096];
  const bool has_chunk = chunk_ != nullptr;
  std::uint8_t* buf = has_chunk ? chunk_.get() + protocol::header_size : sink;
  const std::size_t cap = has_chunk ? forward_chunk : sizeof sink;
  bool first = true;
  const std::size_t total = n;
  while (n > 0) {
    const std::size_t got = co_await from.read_some(asio::buffer(buf, std::min(n, cap)));
    if (got == 0) throw boost::system::system_error(asio::error::eof);
    n -= got;
    st.last_rx = std::chrono::steady_clock::now();
    if (!to) continue;
    try {
      st.blocked_on_peer = true;
      if (first && has_chunk) {
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
