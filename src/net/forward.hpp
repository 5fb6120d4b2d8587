// Moving one DATA frame's payload from one line to another: the relay's data path.
//
// Plaintext to plaintext goes through a pipe with splice(2): payload bytes never enter user space.
// Any TLS end goes through one user-space chunk buffer. Either way the relay reads the 4-byte
// header itself, so it still sees every PING, EOF, TERMINATE and RELEASE between DATA frames.
//
// Ownership: a relay session owns one forward_path per direction, made when two lines pair and
// destroyed when the session ends; idle lines hold none.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include "net/line_stream.hpp"
#include "net/recycled.hpp"
#include "net/splice_pipe.hpp"
#include "protocol/frame.hpp"

namespace switchboard::net {

// What the source line's watchdog needs to know while forwarding is under way. Written by the
// thread that forwards (a relay forwarding thread while a session is offloaded) and read by the
// relay's control thread when a deadline is due: hence atomics (relaxed; each field is a fact of
// its own, nothing is published through them).
struct liveness {
  using clock = std::chrono::steady_clock;
  std::atomic<clock::time_point> last_rx{clock::now()};
  // True while the source waits for the destination to accept bytes (the destination's flow
  // control, judged on the destination's own line).
  std::atomic<bool> blocked_on_peer{false};

  void heard() { last_rx.store(clock::now(), std::memory_order_relaxed); }
  clock::time_point heard_at() const { return last_rx.load(std::memory_order_relaxed); }
  void set_blocked(bool b) { blocked_on_peer.store(b, std::memory_order_relaxed); }
  bool blocked() const { return blocked_on_peer.load(std::memory_order_relaxed); }
};

// Bytes one direction may hold between reading and writing (pipe capacity or chunk size).
constexpr std::size_t forward_chunk = std::size_t{256} * 1024;

class forward_path {
 public:
  // Splice pipe and a small_payload buffer if both ends are plaintext, else a forward_chunk
  // buffer; pipes and forward_chunk buffers are recycled (net/recycled.hpp). Throws system_error
  // if a pipe cannot be created (fd limit).
  explicit forward_path(bool splice);
  forward_path(const forward_path&) = delete;
  forward_path& operator=(const forward_path&) = delete;

  // Writes a DATA header for `length` to `to`, then moves exactly `length` payload bytes from
  // `from`. If `to` is null or fails, the payload is still consumed from `from` (framing stays
  // intact) and false is returned; errors reading `from` throw.
  // Sets `from`'s read-ahead for the next frame: off after a payload this path spliced (more
  // than small_payload, to a working destination), so that the next header is read alone and a
  // large payload behind it stays in the socket for splice(2); on otherwise.
  awaitable<bool> forward(line_stream& from, line_stream* to, std::uint32_t length,
                          liveness& from_state);

  bool splicing() const { return pipe_.has_value(); }
  // Payload bytes of the DATA frames this path delivered to their destination (not those
  // dropped because the destination was gone). Written only by the thread forwarding this
  // direction (the control thread, or a forwarding thread during a stint), one add per frame;
  // readable from any thread at any time (relaxed: a count, nothing is published through it).
  std::uint64_t delivered_bytes() const { return delivered_.load(std::memory_order_relaxed); }

 private:
  awaitable<bool> forward_payload(line_stream& from, line_stream* to, std::uint32_t length,
                                  liveness& from_state);
  awaitable<bool> splice_payload(line_stream& from, line_stream& to, std::size_t n, liveness& st);
  awaitable<bool> copy_payload(line_stream& from, line_stream* to, std::size_t n, liveness& st);

  using chunk_pool = buffer_pool<protocol::header_size + forward_chunk>;
  using small_pool = buffer_pool<protocol::header_size + small_payload>;

  // Where copied payloads go, after room for their header: chunk_ or small_.
  std::uint8_t* copy_buffer() { return chunk_ ? (*chunk_)->get() : (*small_)->get(); }
  std::size_t copy_capacity() const { return chunk_ ? forward_chunk : small_payload; }

  // Exactly one of the two modes' resources is engaged, from construction to destruction.
  std::optional<recycled<pipe_pool>> pipe_;    // splice: the pipe, empty between frames
  std::optional<recycled<small_pool>> small_;  // splice: payloads of at most small_payload
  std::optional<recycled<chunk_pool>> chunk_;  // copy (a TLS end): every payload
  bool broken_ = false;  // the destination failed; the pipe may hold stale bytes
  std::atomic<std::uint64_t> delivered_{0};  // one writer at a time: see delivered_bytes()
};

}  // namespace switchboard::net
