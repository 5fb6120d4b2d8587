#include "net/record_gatherer.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <new>

namespace switchboard::net {

// One method for every line, made on first use (thread-safe static); never freed.
const BIO_METHOD* record_gatherer::method() {
  static BIO_METHOD* const m = [] {
    BIO_METHOD* made = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "switchboard line");
    if (made != nullptr && (BIO_meth_set_write_ex(made, &record_gatherer::write_ex) != 1 ||
                            BIO_meth_set_ctrl(made, &record_gatherer::ctrl) != 1)) {
      BIO_meth_free(made);
      made = nullptr;
    }
    return made;
  }();
  return m;
}

BIO* record_gatherer::make_bio() {
  const BIO_METHOD* m = method();
  BIO* bio = m == nullptr ? nullptr : BIO_new(m);
  if (bio == nullptr) throw std::bad_alloc();
  BIO_set_data(bio, this);
  BIO_set_init(bio, 1);
  return bio;
}

void record_gatherer::start(std::uint8_t* buf, std::size_t capacity) noexcept {
  buf_ = buf;
  capacity_ = capacity;
  gathered_ = sent_ = 0;
}

void record_gatherer::stop() noexcept {
  buf_ = nullptr;
  capacity_ = gathered_ = sent_ = 0;
}

void record_gatherer::mark_sent(std::size_t n) noexcept {
  sent_ += n;
  if (sent_ == gathered_) gathered_ = sent_ = 0;  // all out: the buffer fills from its start
}

int record_gatherer::write_ex(BIO* bio, const char* data, std::size_t size, std::size_t* written) {
  return static_cast<record_gatherer*>(BIO_get_data(bio))->put(data, size, written, bio);
}

// OpenSSL hands over one record (or the rest of one) per call and expects the BIO's retry flags
// to say "try again later" when it returns 0.
int record_gatherer::put(const char* data, std::size_t size, std::size_t* written, BIO* bio) {
  BIO_clear_retry_flags(bio);
  *written = 0;
  if (gathering()) {
    if (size > capacity_ - gathered_) {
      BIO_set_retry_write(bio);  // the caller sends unsent() and calls SSL_write again
      return 0;
    }
    std::memcpy(buf_ + gathered_, data, size);
    gathered_ += size;
    *written = size;
    return 1;
  }
  for (;;) {
    const ssize_t n = ::send(fd_, data, size, MSG_NOSIGNAL);
    if (n >= 0) {
      *written = static_cast<std::size_t>(n);
      return 1;
    }
    if (errno == EINTR) continue;
    // errno stays set: OpenSSL reports SSL_ERROR_SYSCALL for anything but a retry.
    if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_write(bio);
    return 0;
  }
}

long record_gatherer::ctrl(BIO* bio, int cmd, long /*num*/, void* ptr) {
  auto* self = static_cast<record_gatherer*>(BIO_get_data(bio));
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;  // records go out when line_stream sends unsent(); nothing is held here
    case BIO_CTRL_WPENDING:
      return static_cast<long>(self->gathered_ - self->sent_);
    case BIO_C_GET_FD:
      if (ptr != nullptr) *static_cast<int*>(ptr) = self->fd_;
      return self->fd_;
    default:
      return 0;  // not supported (kTLS queries, push/pop, ...)
  }
}

}  // namespace switchboard::net
