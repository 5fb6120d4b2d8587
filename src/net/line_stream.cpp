#include "net/line_stream.hpp"

#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "net/recycled.hpp"

namespace switchboard::net {

namespace {
// Plaintext bytes of one full TLS record: the first record of a multi-buffer write is gathered
// in such a buffer (per-thread free list) when the write starts with a small buffer.
using record_buffers = buffer_pool<SSL3_RT_MAX_PLAIN_LENGTH>;
constexpr std::size_t coalesce_below = 512;
// Where the records of one large write are gathered: a 256 KiB DATA frame and its header fit
// whole (17 records, each with 22 bytes of framing), so it leaves in one send(2).
using gather_buffers = buffer_pool<std::size_t{272} * 1024, 8>;
// Plaintext read-ahead buffers (line_stream::read_ahead_size), lent while they hold bytes.
using ahead_buffers = buffer_pool<line_stream::read_ahead_size, 64>;
// Room for the records of a write of at most one record's plaintext, and a KeyUpdate before it.
using seal_buffers =
    buffer_pool<tls13::max_plaintext + tls13::record_overhead + tls13::record_layer::min_seal_room>;

// Lends a gather buffer to the gatherer for one write; gives it back (and forgets what was not
// sent: the write failed then) however the write ends.
class gathering_scope {
 public:
  explicit gathering_scope(record_gatherer& g) : g_(g) {
    g_.start(buf_->get(), gather_buffers::size);
  }
  gathering_scope(const gathering_scope&) = delete;
  gathering_scope& operator=(const gathering_scope&) = delete;
  ~gathering_scope() { g_.stop(); }

 private:
  record_gatherer& g_;
  recycled<gather_buffers> buf_;
};

// Counts an SSL_write in flight for as long as it lives.
class ssl_write_scope {
 public:
  explicit ssl_write_scope(unsigned& count) : count_(count) { ++count_; }
  ssl_write_scope(const ssl_write_scope&) = delete;
  ssl_write_scope& operator=(const ssl_write_scope&) = delete;
  ~ssl_write_scope() { --count_; }

 private:
  unsigned& count_;
};

void prepare(tcp::socket& s) {
  s.set_option(tcp::no_delay(true));
  s.non_blocking(true);
}

[[noreturn]] void throw_ssl(const char* what) {
  char text[256] = "unknown TLS error";
  if (unsigned long e = ERR_get_error(); e != 0) ERR_error_string_n(e, text, sizeof text);
  ERR_clear_error();
  throw boost::system::system_error(asio::error::connection_aborted,
                                    std::string("TLS ") + what + ": " + text);
}
}  // namespace

line_stream::line_stream(tcp::socket socket) : socket_(std::move(socket)) {
  prepare(socket_);
}

line_stream::line_stream(tcp::socket socket, SSL_CTX* ctx, bool is_server)
    : socket_(std::move(socket)),
      gatherer_(std::make_unique<record_gatherer>(socket_.native_handle())),
      ssl_(SSL_new(ctx)) {
  if (!ssl_) throw_ssl("SSL_new");
  prepare(socket_);
  // Reads through OpenSSL's socket BIO, writes through the gatherer; the SSL owns both BIOs.
  BIO* wbio = gatherer_->make_bio();
  BIO* rbio = BIO_new_socket(socket_.native_handle(), BIO_NOCLOSE);
  if (rbio == nullptr) {
    BIO_free(wbio);
    throw_ssl("BIO_new_socket");
  }
  SSL_set_bio(ssl_.get(), rbio, wbio);
  if (SSL_CTX_get_keylog_callback(ctx) != nullptr) {
    // The line takes the records over after the handshake: OpenSSL must then hold no bytes read
    // past the handshake, so it reads exactly one record at a time until then (no read-ahead).
    secrets_ = std::make_unique<tls13::traffic_secrets>();
    tls13::capture_into(ssl_.get(), secrets_.get());
    SSL_set_read_ahead(ssl_.get(), 0);
  }
  if (is_server) {
    SSL_set_accept_state(ssl_.get());
  } else {
    SSL_set_connect_state(ssl_.get());
  }
}

awaitable<void> line_stream::wait_for_ssl(int ssl_result, const char* what) {
  switch (SSL_get_error(ssl_.get(), ssl_result)) {
    case SSL_ERROR_WANT_READ:
      co_await socket_.async_wait(tcp::socket::wait_read, use_awaitable);
      co_return;
    case SSL_ERROR_WANT_WRITE:
      co_await socket_.async_wait(tcp::socket::wait_write, use_awaitable);
      co_return;
    case SSL_ERROR_ZERO_RETURN:
      throw boost::system::system_error(asio::error::eof);
    case SSL_ERROR_SYSCALL:
      if (ERR_peek_error() == 0) {
        throw boost::system::system_error(asio::error::connection_reset,
                                          std::string("TLS ") + what);
      }
      [[fallthrough]];
    default:
      throw_ssl(what);
  }
}

awaitable<void> line_stream::handshake() {
  if (!ssl_) co_return;
  for (;;) {
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl_.get());
    if (r == 1) break;
    co_await wait_for_ssl(r, "handshake");
  }
  take_over_records();
}

void line_stream::take_over_records() {
  const std::unique_ptr<tls13::traffic_secrets> secrets = std::move(secrets_);
  if (!secrets) return;
  tls13::capture_into(ssl_.get(), nullptr);
  const auto suite = tls13::suite_of(SSL_get_current_cipher(ssl_.get()));
  // The record layer starts both directions at sequence 0 under the first application keys: a
  // record OpenSSL sealed or opened under them (a NewSessionTicket of a server, a write that drove
  // the handshake) would make it reuse a nonce or misread the peer, so OpenSSL then keeps them.
  if (!suite || !secrets->complete() || !secrets->fresh() || SSL_has_pending(ssl_.get()) == 1 ||
      ssl_writes_ > 0) {
    SSL_set_read_ahead(ssl_.get(), 1);  // OpenSSL goes on carrying the records
    return;
  }
  const std::span<const std::uint8_t> client(secrets->client.data(), secrets->client_size);
  const std::span<const std::uint8_t> server(secrets->server.data(), secrets->server_size);
  const bool is_server = SSL_is_server(ssl_.get()) == 1;
  records_ = std::make_unique<tls13::record_layer>(
      *suite, is_server ? tls13::role::server : tls13::role::client, is_server ? client : server,
      is_server ? server : client);
  ssl_.reset();  // before the gatherer: the SSL's write BIO points at it
  gatherer_.reset();
}

awaitable<std::size_t> line_stream::read_some(asio::mutable_buffer buf) {
  if (records_) co_return co_await read_records(buf);
  if (!ssl_) co_return co_await read_plain(buf);
  auto* const out = static_cast<std::uint8_t*>(buf.data());
  std::size_t total = 0;
  for (;;) {
    ERR_clear_error();
    std::size_t n = 0;
    const int r = SSL_read_ex(ssl_.get(), out + total, buf.size() - total, &n);
    if (r == 1) {
      total += n;
      // Every record OpenSSL already holds (read-ahead) goes out in this call: one wake-up of
      // the reader per read(2), not per 16 KiB record. No read(2) is tried for more.
      if (total < buf.size() && SSL_has_pending(ssl_.get()) == 1) continue;
      if (--read_budget_ == 0) {
        // sync_budget reads in a row without waiting: let the thread's other lines run.
        read_budget_ = sync_budget;
        co_await asio::post(socket_.get_executor(), use_awaitable);
      }
      co_return total;
    }
    if (total > 0) {
      // What was read is returned first; a lasting condition (end, error) shows on the next call.
      ERR_clear_error();
      co_return total;
    }
    if (SSL_get_error(ssl_.get(), r) == SSL_ERROR_ZERO_RETURN) co_return 0;
    read_budget_ = sync_budget;
    co_await wait_for_ssl(r, "read");
  }
}

awaitable<std::size_t> line_stream::read_plain(asio::mutable_buffer buf) {
  if (buf.size() == 0) co_return 0;
  if (ahead_pos_ == ahead_end_) {
    if (!read_ahead_ || buf.size() >= read_ahead_size) {
      const std::size_t n = co_await recv_plain(buf);
      co_return n;
    }
    const std::size_t filled = co_await fill_ahead();
    if (filled == 0) co_return 0;
  } else if (--read_budget_ == 0) {
    // Bytes served from the read-ahead count against the budget too: a reader of a line whose
    // bytes never run out still lets the thread's other lines run.
    read_budget_ = sync_budget;
    co_await asio::post(socket_.get_executor(), use_awaitable);
  }
  co_return take_ahead(buf);
}

awaitable<std::size_t> line_stream::recv_plain(asio::mutable_buffer buf) {
  if (read_budget_ > 0) {
    // The bytes are often there already (a payload behind its header, a reply): take them
    // without a trip through the scheduler, which costs an epoll_wait(0) per completion.
    --read_budget_;
    error_code ec;
    const std::size_t n = socket_.read_some(buf, ec);  // the socket is non-blocking
    if (!ec) co_return n;
    if (ec == asio::error::eof) co_return 0;
    if (ec != asio::error::would_block) throw boost::system::system_error(ec);
  }
  read_budget_ = sync_budget;
  auto [ec, n] = co_await socket_.async_read_some(buf, asio::as_tuple(use_awaitable));
  if (ec == asio::error::eof) co_return 0;
  if (ec) throw boost::system::system_error(ec);
  co_return n;
}

awaitable<std::size_t> line_stream::fill_ahead() {
  for (;;) {
    if (read_budget_ > 0) {
      --read_budget_;
      lend_ahead();
      error_code ec;
      const std::size_t n = socket_.read_some(asio::buffer(ahead_.get(), read_ahead_size), ec);
      if (!ec) {
        ahead_end_ = n;
        co_return n;
      }
      return_ahead();  // an idle line holds no buffer while it waits
      if (ec == asio::error::eof) co_return 0;
      if (ec != asio::error::would_block) throw boost::system::system_error(ec);
    }
    read_budget_ = sync_budget;
    co_await socket_.async_wait(tcp::socket::wait_read, use_awaitable);
  }
}

std::size_t line_stream::take_ahead(asio::mutable_buffer buf) {
  const std::size_t n = std::min(buf.size(), ahead_end_ - ahead_pos_);
  std::memcpy(buf.data(), ahead_.get() + ahead_pos_, n);
  consume_buffered(n);
  return n;
}

std::span<const std::uint8_t> line_stream::buffered_bytes() const {
  if (ahead_pos_ == ahead_end_) return {};
  return {ahead_.get() + ahead_pos_, ahead_end_ - ahead_pos_};
}

void line_stream::consume_buffered(std::size_t n) {
  ahead_pos_ += std::min(n, ahead_end_ - ahead_pos_);
  if (ahead_pos_ == ahead_end_) return_ahead();
}

void line_stream::lend_ahead() {
  if (!ahead_) ahead_ = recycled<ahead_buffers>::take();
  ahead_pos_ = ahead_end_ = 0;
}

void line_stream::return_ahead() noexcept {
  ahead_pos_ = ahead_end_ = 0;
  if (ahead_) recycled<ahead_buffers>::give_back(std::move(ahead_));
}

awaitable<boost::system::error_code> line_stream::wait_readable(asio::cancellation_slot slot) {
  if (read_buffered()) co_return error_code{};
  auto token = asio::bind_cancellation_slot(slot, asio::as_tuple(use_awaitable));
  if (tls() || !read_ahead_) {
    auto [ec] = co_await socket_.async_wait(tcp::socket::wait_read, token);
    co_return ec;
  }
  // Asio tries the read at once and, if the socket is empty, waits for it in the reactor.
  lend_ahead();
  auto [ec, n] =
      co_await socket_.async_read_some(asio::buffer(ahead_.get(), read_ahead_size), token);
  ahead_end_ = n;
  if (n == 0) return_ahead();
  read_budget_ = sync_budget;
  // The end of the stream is for the read that follows to see (recv(2) returns 0 again).
  if (ec == asio::error::eof) co_return error_code{};
  co_return ec;
}

awaitable<void> line_stream::read_exact(asio::mutable_buffer buf) {
  while (buf.size() > 0) {
    const std::size_t n = co_await read_some(buf);
    if (n == 0) throw boost::system::system_error(asio::error::eof);
    buf += n;
  }
}

awaitable<void> line_stream::write_all(std::span<const asio::const_buffer> bufs) {
  if (records_) {
    co_await write_records(bufs);
    co_return;
  }
  if (!ssl_) {
    std::size_t sent = 0;
    if (write_budget_ > 0) {
      // Usually the whole write fits in the socket buffer: sent here, no scheduler trip.
      --write_budget_;
      error_code ec;
      sent = socket_.write_some(bufs, ec);  // the socket is non-blocking
      if (ec && ec != asio::error::would_block) throw boost::system::system_error(ec);
      if (sent == asio::buffer_size(bufs)) co_return;
    } else {
      write_budget_ = sync_budget;
    }
    if (sent == 0) {
      co_await asio::async_write(socket_, bufs, use_awaitable);
      co_return;
    }
    // Partly sent: the rest goes through Asio (rare: the peer's window is full).
    std::vector<asio::const_buffer> rest;
    for (asio::const_buffer b : bufs) {
      const std::size_t skip = std::min(sent, b.size());
      sent -= skip;
      if (b.size() > skip) rest.push_back(b + skip);
    }
    co_await asio::async_write(socket_, rest, use_awaitable);
    co_return;
  }
  // A write may start before the handshake is done (a line closed while it shakes hands): then
  // SSL_write drives the handshake too, and the SSL must outlive the write (take_over_records).
  const ssl_write_scope in_flight(ssl_writes_);
  std::optional<gathering_scope> gathering;
  if (asio::buffer_size(bufs) > SSL3_RT_MAX_PLAIN_LENGTH) gathering.emplace(*gatherer_);
  std::size_t skip = 0;  // leading bytes of bufs already sent in the first record
  if (bufs.size() > 1 && bufs[0].size() < coalesce_below) {
    // A small first buffer (a frame header) shares its record with what follows: one record and
    // one write(2) instead of two, and no 22 bytes of record framing for an 8-byte header.
    recycled<record_buffers> record;
    std::uint8_t* const rec = record->get();
    for (asio::const_buffer b : bufs) {
      const std::size_t take = std::min(b.size(), record_buffers::size - skip);
      std::memcpy(rec + skip, b.data(), take);
      skip += take;
      if (skip == record_buffers::size) break;
    }
    co_await write_tls(asio::buffer(rec, skip));
  }
  for (asio::const_buffer b : bufs) {
    const std::size_t sent = std::min(skip, b.size());
    skip -= sent;
    co_await write_tls(b + sent);
  }
  if (gathering) co_await send_gathered();
}

awaitable<void> line_stream::write_tls(asio::const_buffer b) {
  while (b.size() > 0) {
    ERR_clear_error();
    std::size_t n = 0;
    const int r = SSL_write_ex(ssl_.get(), b.data(), b.size(), &n);
    if (r == 1) {
      b += n;
    } else if (!gatherer_->unsent().empty() &&
               SSL_get_error(ssl_.get(), r) == SSL_ERROR_WANT_WRITE) {
      co_await send_gathered();  // the gather buffer is full; OpenSSL retries the record
    } else {
      co_await wait_for_ssl(r, "write");
    }
  }
}

awaitable<void> line_stream::send_gathered() {
  const auto rest = gatherer_->unsent();
  co_await send_bytes(asio::buffer(rest.data(), rest.size()));
  gatherer_->mark_sent(rest.size());
}

awaitable<void> line_stream::send_bytes(asio::const_buffer b) {
  while (b.size() > 0) {
    error_code ec;
    const std::size_t n = socket_.write_some(b, ec);  // the socket is non-blocking
    if (!ec) {
      b += n;
    } else if (ec == asio::error::would_block) {
      co_await socket_.async_wait(tcp::socket::wait_write, use_awaitable);
    } else {
      throw boost::system::system_error(ec, "TLS write");
    }
  }
}

awaitable<std::size_t> line_stream::read_records(asio::mutable_buffer buf) {
  tls13::record_layer& records = *records_;
  if (buf.size() == 0) co_return 0;
  const std::span<std::uint8_t> out(static_cast<std::uint8_t*>(buf.data()), buf.size());
  for (;;) {
    const std::size_t n = records.read(out);
    // A read that returned bytes costs one unit of the budget, and so does every record without
    // application bytes it opened (KeyUpdates, alerts, tickets, empty records): a peer that sends
    // only those cannot keep this loop from yielding, whether or not bytes ever follow.
    const unsigned cost = (n > 0 ? 1 : 0) + records.take_no_data_records();
    if (cost >= read_budget_) {
      read_budget_ = sync_budget;
      co_await asio::post(socket_.get_executor(), use_awaitable);
    } else {
      read_budget_ -= cost;
    }
    if (n > 0) co_return n;
    if (records.closed()) co_return 0;  // close_notify
    if (records.readable()) continue;   // whole records held: read() stopped at its limit
    const std::span<std::uint8_t> space = records.receive_space();
    const ssize_t got = ::recv(socket_.native_handle(), space.data(), space.size(), 0);
    if (got > 0) {
      records.received(static_cast<std::size_t>(got));
    } else if (got == 0) {
      records.trim();
      throw boost::system::system_error(asio::error::connection_aborted,
                                        "TLS read: the peer ended the connection without "
                                        "close_notify");
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      records.trim();  // an idle line holds no receive buffer
      read_budget_ = sync_budget;
      co_await socket_.async_wait(tcp::socket::wait_read, use_awaitable);
    } else if (errno != EINTR) {
      throw boost::system::system_error(
          boost::system::error_code(errno, boost::system::system_category()), "TLS read");
    }
  }
}

awaitable<void> line_stream::write_records(std::span<const asio::const_buffer> bufs) {
  if (asio::buffer_size(bufs) <= tls13::max_plaintext) {
    recycled<seal_buffers> out;
    co_await seal_and_send(bufs, {out->get(), seal_buffers::size});
  } else {
    // Up to 272 KiB of records leave in one send(2), as record_gatherer does for OpenSSL.
    recycled<gather_buffers> out;
    co_await seal_and_send(bufs, {out->get(), gather_buffers::size});
  }
}

awaitable<void> line_stream::seal_and_send(std::span<const asio::const_buffer> bufs,
                                           std::span<std::uint8_t> out) {
  const std::size_t total = asio::buffer_size(bufs);
  std::size_t done = 0;
  do {
    const tls13::record_layer::sealed s = records_->seal(bufs, done, out);
    done += s.consumed;
    co_await send_bytes(asio::buffer(out.data(), s.written));
  } while (done < total);
}

void line_stream::rebind(const asio::any_io_executor& ex) noexcept {
  if (!socket_.is_open()) return;
  error_code ec;
  const auto protocol = socket_.local_endpoint(ec).protocol();
  const int fd = ec ? -1 : socket_.release(ec);
  if (ec) {
    close();
    return;
  }
  // The descriptor keeps O_NONBLOCK and TCP_NODELAY; the new socket object is told about the
  // first, or Asio's synchronous write_some (used above) would wait for room instead of failing.
  socket_ = tcp::socket(ex);
  socket_.assign(protocol, fd, ec);
  if (!ec) socket_.non_blocking(true, ec);
  if (ec) {
    if (!socket_.is_open()) ::close(fd);
    close();
  }
}

void line_stream::close() noexcept {
  error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace switchboard::net
