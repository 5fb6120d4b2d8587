// A kernel pipe that moves bytes from one socket to another with splice(2), so that payload
// bytes never enter user space: the plaintext data path of the relay (net/forward.hpp) and of the
// agents' bridges (agent/bridge.cpp).
//
// Both calls are non-blocking; the caller waits for readiness with Asio (async_wait) and calls
// again. Ownership: one forwarding direction owns one pipe while it forwards; an idle line holds
// none. Invariant: held() is the number of bytes spliced in and not yet spliced out.
#pragma once

#include <cstddef>
#include <optional>

namespace switchboard::net {

// Payloads up to this size are copied even where splice(2) could move them: one read and one
// write of a frame's header and payload together cost fewer system calls than a header write,
// a splice in and a splice out.
constexpr std::size_t small_payload = 4096;

class splice_pipe {
 public:
  // Creates the pipe (O_NONBLOCK, O_CLOEXEC) and asks for `capacity` bytes; the system default
  // (64 KiB) stays if pipe-max-size forbids it. Throws system_error if no pipe can be made.
  explicit splice_pipe(std::size_t capacity);
  ~splice_pipe();
  splice_pipe(splice_pipe&& other) noexcept;
  splice_pipe& operator=(splice_pipe&& other) noexcept;
  splice_pipe(const splice_pipe&) = delete;
  splice_pipe& operator=(const splice_pipe&) = delete;

  // Moves up to `max` bytes from descriptor `in` into the pipe. Returns the bytes moved, 0 at the
  // end of `in`'s stream, nullopt if `in` has nothing now or the pipe is full (wait and retry).
  // Throws system_error on a read error.
  std::optional<std::size_t> fill(int in, std::size_t max);

  // Moves up to held() bytes to descriptor `out`; `more` tells the kernel more payload follows
  // (SPLICE_F_MORE). Returns the bytes moved, 0 if `out` cannot take any now (wait and retry).
  // Throws system_error if `out` failed (the bytes stay held).
  std::size_t drain(int out, bool more);

  std::size_t held() const { return held_; }

 private:
  int read_end_ = -1;
  int write_end_ = -1;
  std::size_t held_ = 0;
};

// Pipes of 256 KiB for net::recycled: the data path's pipes, relay and agents alike. A pipe that
// still holds bytes (its destination failed) is closed, never handed on.
struct pipe_pool {
  using type = splice_pipe;
  static constexpr std::size_t capacity = std::size_t{256} * 1024;
  static constexpr std::size_t max_free = 16;  // 32 descriptors per thread
  static splice_pipe make() { return splice_pipe(capacity); }
  static bool reusable(const splice_pipe& p) { return p.held() == 0; }
};

}  // namespace switchboard::net
