// Moving one DATA frame's payload from one line to another: the relay's data path.
//
// Plaintext to plaintext goes through a pipe with splice(2): payload bytes never enter user space.
// Any TLS end goes through one user-space chunk buffer. Either way the relay reads the 4-byte
// header itself, so it still sees every PING, EOF, TERMINATE and RELEASE between DATA frames.
//
// Ownership: a relay session owns one forward_path per direction, made when two lines pair and
// destroyed when the session ends; idle lines hold none.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include "net/line_stream.hpp"
#include "net/splice_pipe.hpp"

namespace switchboard::net {

// What the source line's watchdog needs to know while forwarding is under way.
struct liveness {
  std::chrono::steady_clock::time_point last_rx = std::chrono::steady_clock::now();
  // True while the source waits for the destination to accept bytes (the destination's flow
  // control, judged on the destination's own line).
  bool blocked_on_peer = false;
};

// Bytes one direction may hold between reading and writing (pipe capacity or chunk size).
constexpr std::size_t forward_chunk = 256 * 1024;

class forward_path {
 public:
  // Splice pipe and a small_payload buffer if both ends are plaintext, else a forward_chunk
  // buffer. Throws system_error if the pipe cannot be created (fd limit).
  explicit forward_path(bool splice);
  forward_path(const forward_path&) = delete;
  forward_path& operator=(const forward_path&) = delete;

  // Writes a DATA header for `length` to `to`, then moves exactly `length` payload bytes from
  // `from`. If `to` is null or fails, the payload is still consumed from `from` (framing stays
  // intact) and false is returned; errors reading `from` throw.
  awaitable<bool> forward(line_stream& from, line_stream* to, std::uint32_t length,
                          liveness& from_state);

  bool splicing() const { return pipe_.has_value(); }

 private:
  awaitable<bool> splice_payload(line_stream& from, line_stream& to, std::size_t n, liveness& st);
  awaitable<bool> copy_payload(line_stream& from, line_stream* to, std::size_t n, liveness& st);

  std::optional<splice_pipe> pipe_;        // splice path only; empty between frames
  bool broken_ = false;                    // the destination failed; the pipe may hold stale bytes
  std::size_t chunk_size_;                 // payload capacity of chunk_
  std::unique_ptr<std::uint8_t[]> chunk_;  // header + payload chunk: every copied payload
};

}  // namespace switchboard::net
