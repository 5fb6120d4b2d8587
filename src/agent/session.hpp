// A relayed byte stream: what call() returns and what an incoming handler is given.
//
// Flow control is end to end: read_some() pulls payload bytes straight from the line's socket
// when the application asks, so a slow reader slows the sender through the relay. (At most the
// line's read-ahead and one small frame in the session's inbox are read before it asks.)
// A session is a handle to a paired line; the line goes back to the vacant pool after close()
// (or the handle's destruction) once the relay confirms with RELEASED.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "net/asio.hpp"
#include "protocol/errors.hpp"

namespace switchboard::net {
class splice_pipe;
}

namespace switchboard::agent {

class agent_line;
struct session_core;

struct termination {
  protocol::error_code code = protocol::error_code::ok;
  std::string message;
};

class session {
 public:
  session() = default;
  explicit session(std::shared_ptr<session_core> core);
  session(session&&) noexcept = default;
  session& operator=(session&&) noexcept;
  session(const session&) = delete;
  session& operator=(const session&) = delete;
  ~session();  // closes the session if still open

  // Some bytes, or 0 when the peer sent EOF or the session ended (see terminated()). A buffer of
  // size 0 reads nothing and returns 0 at once.
  awaitable<std::size_t> read_some(asio::mutable_buffer buf);
  // All bytes, as DATA frames. Throws system_error(broken_pipe) once the session has ended.
  awaitable<void> write(asio::const_buffer buf);
  // Half-close: the peer reads 0 after the bytes already written; reading goes on.
  awaitable<void> shutdown_write();
  // TERMINATE(code, message) + RELEASE. Idempotent; returns at once if the session already ended.
  awaitable<void> close(protocol::error_code code = protocol::error_code::ok,
                        std::string message = {});

  // Zero-copy forms of read_some() and write() for a plaintext line: payload moves between the
  // line's socket and a local socket through `pipe` with splice(2), never through user space.
  // Only when zero_copy() is true. The caller keeps one pipe per direction for the session.
  bool zero_copy() const;
  // Moves payload bytes to `sink`; returns how many, or 0 as read_some() does.
  awaitable<std::size_t> read_into(tcp::socket& sink, net::splice_pipe& pipe);
  // Sends what `source` has now (waiting for at least one byte) as one DATA frame; returns how
  // many bytes, 0 at the end of `source`'s stream. Throws as write() does.
  awaitable<std::size_t> write_from(tcp::socket& source, net::splice_pipe& pipe);

  // Set once the session ended: by the peer, the relay, or close().
  std::optional<termination> terminated() const;
  const std::string& peer() const;
  const std::string& service() const;
  std::uint32_t id() const;
  bool valid() const { return core_ != nullptr; }

 private:
  std::shared_ptr<session_core> core_;
};

}  // namespace switchboard::agent
