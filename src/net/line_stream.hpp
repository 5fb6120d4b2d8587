// One line's byte stream: a TCP socket, optionally with TLS.
//
// The TLS handshake is driven directly by OpenSSL on the non-blocking socket and Asio only waits
// for readiness. Once it is done, a line whose context captures traffic secrets (all of ours:
// net/tls.hpp) frees its SSL object and carries the TLS 1.3 records itself (net/tls_records.hpp):
// an idle TLS line then holds about 250 bytes of keys instead of OpenSSL's ~13 KiB, and no record
// buffer. Asio's ssl::stream, for comparison, keeps two 17 KiB buffers per connection for its
// whole life. A line whose context keeps OpenSSL's records (keep_openssl_records) goes on with
// SSL_read/SSL_write, with record buffers released while idle (SSL_MODE_RELEASE_BUFFERS).
//
// Concurrency contract: at most one read operation and one write operation in flight at a time
// (writers serialise with an async_mutex), all on the executor of the line's socket.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <span>

#include "net/asio.hpp"
#include "net/record_gatherer.hpp"
#include "net/tls_records.hpp"

namespace switchboard::net {

struct ssl_deleter {
  void operator()(SSL* s) const { SSL_free(s); }
};

class line_stream {
 public:
  // Plaintext line. Sets TCP_NODELAY and non-blocking mode.
  explicit line_stream(tcp::socket socket);
  // TLS line; call handshake() before anything else. `ctx` only needs to outlive the constructor.
  line_stream(tcp::socket socket, SSL_CTX* ctx, bool is_server);

  line_stream(line_stream&&) = default;
  line_stream& operator=(line_stream&&) = default;

  // TLS handshake (no-op for plaintext). Throws system_error on failure.
  awaitable<void> handshake();
  // Reads what is available, at least one byte. Returns 0 at a clean end of stream. On TLS it
  // returns every record OpenSSL holds (read-ahead), up to buf's size, without another read(2).
  awaitable<std::size_t> read_some(asio::mutable_buffer buf);
  // Fills buf completely; throws asio::error::eof if the stream ends first.
  awaitable<void> read_exact(asio::mutable_buffer buf);
  // Writes every byte of every buffer, in order. On TLS a small first buffer (under 512 bytes,
  // e.g. a frame header) is sent in one record with the start of the next buffers, and the
  // records of a write longer than one record are gathered and sent together (record_gatherer).
  awaitable<void> write_all(std::span<const asio::const_buffer> bufs);
  // A coroutine itself (not a forwarding call), so `buf` lives in its frame while the write runs.
  awaitable<void> write_all(asio::const_buffer buf) {
    co_await write_all(std::span<const asio::const_buffer>(&buf, 1));
  }

  // True if the line holds bytes a read_some would return without touching the socket (TLS
  // records, or the plaintext read-ahead). A reader that sees false may wait for readiness first
  // (socket().async_wait(wait_read)), holding no read buffer or read coroutine while the line is
  // idle; one that reads the socket itself (splice) takes buffered_bytes() first.
  bool read_buffered() const {
    if (ahead_pos_ < ahead_end_) return true;
    if (records_) return records_->readable();
    return ssl_ && SSL_has_pending(ssl_.get()) == 1;
  }

  // Plaintext read-ahead, on by default: a read_some of fewer than read_ahead_size bytes (a frame
  // header, a small payload) takes up to read_ahead_size bytes in one recv(2), so that a header
  // and the small payload behind it cost one system call, and keeps the rest for the next reads.
  // Off, reads take exactly what they ask for: forward_path::forward turns it off before the
  // header of a frame whose payload it may splice, so that the payload stays in the socket. The
  // buffer is lent from a per-thread pool only while it holds bytes (and while wait_readable
  // waits).
  static constexpr std::size_t read_ahead_size = 8192;
  void set_read_ahead(bool on) { read_ahead_ = on; }
  bool read_ahead() const { return read_ahead_; }
  // The read-ahead's bytes: what the line delivers next, before anything still in the socket.
  std::span<const std::uint8_t> buffered_bytes() const;
  // Drops the first n of buffered_bytes() (n at most their number): a splicing reader sent them.
  void consume_buffered(std::size_t n);

  // Waits until a read_some would find bytes (or the end, or an error) without waiting, and
  // returns the wait's error (operation_aborted if cancelled through `slot`). With read-ahead on,
  // a plaintext line reads into its read-ahead buffer here (one recv(2) instead of a readiness
  // wait, which costs Asio an epoll_ctl, and then a recv(2)); the buffer is held while waiting, so
  // this is for paired lines and the agent's few lines, not for the relay's idle lines.
  awaitable<boost::system::error_code> wait_readable(asio::cancellation_slot slot);

  // Moves the socket to the reactor of another executor (an io_context's): the relay offloads a
  // paired session to a forwarding thread and back. Operations pending on the old reactor
  // complete there with operation_aborted; nothing is read or lost. The caller guarantees that no
  // operation of this stream is running and that, from here on, only `ex`'s thread uses it. A
  // closed socket stays closed; if the move fails, the socket is closed.
  void rebind(const asio::any_io_executor& ex) noexcept;

  // Closes the socket; pending operations complete with operation_aborted. Idempotent.
  void close() noexcept;
  bool is_open() const { return socket_.is_open(); }
  bool tls() const { return ssl_ != nullptr || records_ != nullptr; }
  // True once a TLS line carries its records itself (its SSL object is gone).
  bool own_records() const { return records_ != nullptr; }
  tcp::socket& socket() { return socket_; }
  // The SSL object: until the handshake is done, and after it only if OpenSSL keeps the records.
  SSL* ssl() const { return ssl_.get(); }

 private:
  // SSL_write until every byte of b is sent (or, while gathering, is in the gatherer).
  awaitable<void> write_tls(asio::const_buffer b);
  // Sends what the gatherer holds, waiting for room as often as needed.
  awaitable<void> send_gathered();
  // Sends every byte of b, waiting for room as often as needed.
  awaitable<void> send_bytes(asio::const_buffer b);
  // After the handshake: frees the SSL and carries the records, if the secrets were captured,
  // the suite is one tls13 knows, OpenSSL holds no bytes and no write through the SSL is in
  // flight (one started before the handshake was done); else OpenSSL keeps the records.
  void take_over_records();
  // read_some and write_all of a line that carries its own records.
  awaitable<std::size_t> read_records(asio::mutable_buffer buf);
  awaitable<void> write_records(std::span<const asio::const_buffer> bufs);
  awaitable<void> seal_and_send(std::span<const asio::const_buffer> bufs,
                                std::span<std::uint8_t> out);
  // Waits until the socket is ready for what OpenSSL asked for, or throws for a real error.
  awaitable<void> wait_for_ssl(int ssl_result, const char* what);
  // Plaintext reads: from the read-ahead, into it, or straight into buf (read_some's contract).
  awaitable<std::size_t> read_plain(asio::mutable_buffer buf);
  // One read from the socket into buf, directly while the budget lasts, else through Asio.
  awaitable<std::size_t> recv_plain(asio::mutable_buffer buf);
  // Reads into the read-ahead buffer (empty before); returns the bytes read, 0 at the end of the
  // stream. Waits for readiness without holding the buffer.
  awaitable<std::size_t> fill_ahead();
  // Copies read-ahead bytes into buf; gives the buffer back once it is empty.
  std::size_t take_ahead(asio::mutable_buffer buf);
  void lend_ahead();
  void return_ahead() noexcept;

  // Plaintext reads and writes are first tried directly on the non-blocking socket; after
  // sync_budget such tries in a row one goes through Asio (and the scheduler's queue), so that a
  // line whose bytes never run out cannot keep the other lines of the thread waiting. TLS reads
  // (always direct: SSL_read on the non-blocking socket) yield once per sync_budget likewise; on
  // a line that carries its own records every record without application bytes counts as one
  // such read too (tls13::record_layer::take_no_data_records).
  static constexpr unsigned sync_budget = 16;

  tcp::socket socket_;
  // TLS only: the SSL's write BIO writes through it. Declared before ssl_ so that it outlives
  // the SSL (members are destroyed in reverse order).
  std::unique_ptr<record_gatherer> gatherer_;
  // TLS, until the handshake is done: where OpenSSL's key-log callback puts the traffic secrets
  // (the SSL points at it, so it is declared before ssl_ and outlives it).
  std::unique_ptr<tls13::traffic_secrets> secrets_;
  std::unique_ptr<SSL, ssl_deleter> ssl_;         // null for plaintext, and once records_ is set
  std::unique_ptr<tls13::record_layer> records_;  // TLS after the handshake, without the SSL
  unsigned ssl_writes_ = 0;  // writes through the SSL in flight (at most one by the contract)
  // Plaintext read-ahead: bytes [ahead_pos_, ahead_end_) of ahead_ are unread. ahead_ is set
  // only while it holds bytes or a read into it is under way; pos == end otherwise.
  std::unique_ptr<std::uint8_t[]> ahead_;
  std::size_t ahead_pos_ = 0;
  std::size_t ahead_end_ = 0;
  bool read_ahead_ = true;
  unsigned read_budget_ = sync_budget;
  unsigned write_budget_ = sync_budget;
};

}  // namespace switchboard::net
