#include "net/splice_pipe.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <boost/system/system_error.hpp>
#include <cerrno>
#include <utility>

namespace switchboard::net {

namespace {
[[noreturn]] void throw_errno(const char* what) {
  throw boost::system::system_error(
      boost::system::error_code(errno, boost::system::system_category()), what);
}
}  // namespace

splice_pipe::splice_pipe(std::size_t capacity) {
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) throw_errno("pipe2");
  read_end_ = fds[0];
  write_end_ = fds[1];
  // A larger pipe means fewer wake-ups per MiB; refusal leaves the default, which still works.
  (void)::fcntl(write_end_, F_SETPIPE_SZ, static_cast<int>(capacity));
}

splice_pipe::~splice_pipe() {
  if (read_end_ >= 0) ::close(read_end_);
  if (write_end_ >= 0) ::close(write_end_);
}

splice_pipe::splice_pipe(splice_pipe&& other) noexcept
    : read_end_(std::exchange(other.read_end_, -1)),
      write_end_(std::exchange(other.write_end_, -1)),
      held_(std::exchange(other.held_, 0)) {}

splice_pipe& splice_pipe::operator=(splice_pipe&& other) noexcept {
  if (this != &other) {
    splice_pipe old(std::move(*this));
    read_end_ = std::exchange(other.read_end_, -1);
    write_end_ = std::exchange(other.write_end_, -1);
    held_ = std::exchange(other.held_, 0);
  }
  return *this;
}

std::optional<std::size_t> splice_pipe::fill(int in, std::size_t max) {
  const ssize_t got =
      ::splice(in, nullptr, write_end_, nullptr, max, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
  if (got < 0) {
    if (errno == EAGAIN) return std::nullopt;
    throw_errno("splice in");
  }
  held_ += static_cast<std::size_t>(got);
  return static_cast<std::size_t>(got);
}

std::size_t splice_pipe::drain(int out, bool more) {
  if (held_ == 0) return 0;
  const unsigned flags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK | (more ? SPLICE_F_MORE : 0u);
  const ssize_t put = ::splice(read_end_, nullptr, out, nullptr, held_, flags);
  if (put < 0) {
    if (errno == EAGAIN) return 0;
    throw_errno("splice out");
  }
  held_ -= static_cast<std::size_t>(put);
  return static_cast<std::size_t>(put);
}

}  // namespace switchboard::net
