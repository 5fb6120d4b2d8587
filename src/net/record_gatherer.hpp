// The write side of a TLS line: an OpenSSL BIO that either sends each record straight to the
// socket (like OpenSSL's socket BIO) or, while a large write runs, gathers the records in a
// caller's buffer so that they go out in one send(2).
//
// Why: OpenSSL writes every TLS record (at most 16 KiB of plaintext) with its own write(2), and
// on a busy line the per-call cost of the TCP stack (and, on loopback, the receiver's processing
// done in the sender's call) is paid 16 times per 256 KiB. Gathered, a 256 KiB DATA frame leaves
// in one call. Idle lines hold no buffer: line_stream lends one (per-thread free list) for the
// length of one write_all().
//
// Ownership: line_stream owns the gatherer (heap: the BIO points at it, and a line_stream moves);
// the SSL owns the BIO. Used by one thread at a time, like the line.
#pragma once

#include <openssl/bio.h>

#include <cstddef>
#include <cstdint>
#include <span>

namespace switchboard::net {

class record_gatherer {
 public:
  explicit record_gatherer(int fd) : fd_(fd) {}
  record_gatherer(const record_gatherer&) = delete;
  record_gatherer& operator=(const record_gatherer&) = delete;

  // A new BIO that writes through this object (the caller hands it to SSL_set_bio). Throws
  // std::bad_alloc if OpenSSL cannot make it.
  BIO* make_bio();

  // From now on records are appended to buf[0, capacity); a record that does not fit makes the
  // BIO ask for a retry (SSL_ERROR_WANT_WRITE) until unsent() has been sent.
  void start(std::uint8_t* buf, std::size_t capacity) noexcept;
  // Back to sending each record at once; forgets the buffer and anything unsent in it.
  void stop() noexcept;
  bool gathering() const { return buf_ != nullptr; }

  // Gathered bytes not yet sent, and the report that the first n of them were.
  std::span<const std::uint8_t> unsent() const { return {buf_ + sent_, gathered_ - sent_}; }
  void mark_sent(std::size_t n) noexcept;

 private:
  static const BIO_METHOD* method();
  static int write_ex(BIO* bio, const char* data, std::size_t size, std::size_t* written);
  static long ctrl(BIO* bio, int cmd, long num, void* ptr);
  int put(const char* data, std::size_t size, std::size_t* written, BIO* bio);

  int fd_;                       // the line's socket (non-blocking); not owned
  std::uint8_t* buf_ = nullptr;  // while gathering: the lent buffer
  std::size_t capacity_ = 0;
  std::size_t gathered_ = 0;  // bytes of buf_ holding records
  std::size_t sent_ = 0;      // of which sent
};

}  // namespace switchboard::net
