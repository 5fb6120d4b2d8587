// line_stream (net/line_stream.hpp) on TLS, with each end carrying its records itself after the
// handshake (net/tls_records.hpp) or leaving them to OpenSSL, in all four pairings (so each
// record layer is checked against the other): which end freed its SSL, records returned together
// by one read_some, a small first buffer sharing its record with what follows, bytes read before
// an abrupt end returned before the error, KeyUpdate and close_notify between the two layers, a
// server whose OpenSSL sealed records before the takeover; and a peer flooding a line with
// records that carry no application bytes (the reader still yields, and the line fails at the
// cap).
// Record counts are checked through the ciphertext bytes waiting in the receiver's socket (each
// TLS 1.3 record adds 22 bytes: 5 of header, 1 of content type, 16 of AEAD tag).
#include "net/line_stream.hpp"

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <stdlib.h>

#include <array>
#include <filesystem>
#include <iterator>
#include <numeric>
#include <string>
#include <vector>

#include "net/tls.hpp"
#include "raw_records.hpp"

namespace switchboard::net {
namespace {

namespace fs = std::filesystem;
constexpr std::size_t record_overhead = 22;
constexpr std::size_t record_size = 16384;

// Which ends carry their records themselves after the handshake.
enum class records { own, openssl, own_server, own_client };

std::string name_of(const ::testing::TestParamInfo<records>& info) {
  switch (info.param) {
    case records::own:
      return "OwnRecords";
    case records::openssl:
      return "OpensslRecords";
    case records::own_server:
      return "OwnServerOpensslClient";
    case records::own_client:
      return "OpensslServerOwnClient";
  }
  return "unknown";
}

class LineStreamTlsTest : public ::testing::TestWithParam<records> {
 protected:
  bool server_owns() const {
    return GetParam() == records::own || GetParam() == records::own_server;
  }
  bool client_owns() const {
    return GetParam() == records::own || GetParam() == records::own_client;
  }

  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "sb-line-stream-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    const server_identity id = ensure_self_signed(dir_);
    server_ctx_ = make_server_context(id);
    client_ctx_ = make_client_context({.fingerprint = fingerprint_of_cert_file(id.cert_file)});
    if (!server_owns()) tls13::keep_openssl_records(server_ctx_.get());
    if (!client_owns()) tls13::keep_openssl_records(client_ctx_.get());
    tcp::acceptor acceptor(io_, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    tcp::socket c(io_);
    c.connect(acceptor.local_endpoint());
    client_.emplace(std::move(c), client_ctx_.get(), false);
    server_.emplace(acceptor.accept(), server_ctx_.get(), true);
    run([this]() -> awaitable<void> {
      using namespace asio::experimental::awaitable_operators;
      co_await (client_->handshake() && server_->handshake());
    });
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  // Runs one coroutine to its end (rethrowing what it threw).
  template <typename F>
  void run(F f) {
    std::exception_ptr failure;
    asio::co_spawn(io_, f(), [&](std::exception_ptr e) { failure = e; });
    io_.run();
    io_.restart();
    if (failure) std::rethrow_exception(failure);
  }

  // Ciphertext bytes waiting in the server's socket (loopback delivers within write(2)).
  std::size_t waiting() { return server_->socket().available(); }

  static std::vector<std::uint8_t> pattern(std::size_t n) {
    std::vector<std::uint8_t> v(n);
    std::iota(v.begin(), v.end(), std::uint8_t{7});
    return v;
  }

  fs::path dir_;
  asio::io_context io_;
  ssl_ctx_ptr server_ctx_;
  ssl_ctx_ptr client_ctx_;
  std::optional<line_stream> client_;
  std::optional<line_stream> server_;
};

// An end that carries its records has freed its SSL; an end that does not keeps OpenSSL with
// read-ahead and AES-128-GCM.
TEST_P(LineStreamTlsTest, EachEndKeepsItsSslOnlyIfOpensslCarriesTheRecords) {
  for (line_stream* end : {&*server_, &*client_}) {
    const bool owns = end == &*server_ ? server_owns() : client_owns();
    EXPECT_TRUE(end->tls());
    EXPECT_EQ(end->own_records(), owns);
    EXPECT_EQ(end->ssl() == nullptr, owns);
    if (!owns) {
      EXPECT_STREQ(SSL_get_cipher_name(end->ssl()), "TLS_AES_128_GCM_SHA256");
      EXPECT_EQ(SSL_get_read_ahead(end->ssl()), 1);
    }
    EXPECT_FALSE(end->read_buffered());
  }
}

TEST_P(LineStreamTlsTest, OneReadSomeReturnsEveryRecordReadAheadBrought) {
  const auto data = pattern(3 * record_size);
  run([&]() -> awaitable<void> { co_await client_->write_all(asio::buffer(data)); });
  ASSERT_EQ(waiting(), data.size() + 3 * record_overhead);  // three full records
  std::vector<std::uint8_t> got(256 * 1024);
  std::size_t n = 0;
  run([&]() -> awaitable<void> { n = co_await server_->read_some(asio::buffer(got)); });
  // Without read-ahead and the loop over held records this would be one record (16384).
  ASSERT_EQ(n, data.size());
  got.resize(n);
  EXPECT_EQ(got, data);
  EXPECT_FALSE(server_->read_buffered());  // nothing left behind for an idle line to miss
}

TEST_P(LineStreamTlsTest, ReadSomeStopsAtTheBufferAndKeepsTheRestBuffered) {
  const auto data = pattern(2 * record_size);
  run([&]() -> awaitable<void> { co_await client_->write_all(asio::buffer(data)); });
  std::vector<std::uint8_t> got(data.size());
  std::size_t first = 0;
  run([&]() -> awaitable<void> {
    first = co_await server_->read_some(asio::buffer(got.data(), 1000));
  });
  EXPECT_EQ(first, 1000u);
  EXPECT_TRUE(server_->read_buffered());  // a reader must not wait for the socket now
  EXPECT_EQ(waiting(), 0u);               // read-ahead took both records in one read(2)
  run([&]() -> awaitable<void> {
    co_await server_->read_exact(asio::buffer(got.data() + first, got.size() - first));
  });
  EXPECT_EQ(got, data);
  EXPECT_FALSE(server_->read_buffered());
}

TEST_P(LineStreamTlsTest, SmallFirstBufferSharesItsRecord) {
  const std::vector<std::uint8_t> header{1, 2, 3, 4, 5, 6, 7, 8};
  const auto body = pattern(100);
  run([&]() -> awaitable<void> {
    const asio::const_buffer parts[] = {asio::buffer(header), asio::buffer(body)};
    co_await client_->write_all(parts);
  });
  EXPECT_EQ(waiting(), header.size() + body.size() + record_overhead);  // one record, not two
  std::vector<std::uint8_t> got(header.size() + body.size());
  run([&]() -> awaitable<void> { co_await server_->read_exact(asio::buffer(got)); });
  std::vector<std::uint8_t> want = header;
  want.insert(want.end(), body.begin(), body.end());
  EXPECT_EQ(got, want);
}

TEST_P(LineStreamTlsTest, SmallFirstBufferThenLargeBodyKeepsOrderAcrossRecords) {
  const std::vector<std::uint8_t> header{9, 8, 7};
  const auto body = pattern(40'000);
  const auto tail = pattern(5);
  run([&]() -> awaitable<void> {
    const asio::const_buffer parts[] = {asio::buffer(header), asio::buffer(body),
                                        asio::buffer(tail)};
    co_await client_->write_all(parts);
  });
  const std::size_t total = header.size() + body.size() + tail.size();
  // Full first record (header + start of body), the rest of the body, then the tail: 4 records
  // from OpenSSL (unmerged, the header alone would have taken one more); the own record layer
  // packs the whole write as one stream (16384 + 16384 + 7240): 3.
  EXPECT_EQ(waiting(), total + (client_owns() ? 3 : 4) * record_overhead);
  std::vector<std::uint8_t> got(total);
  run([&]() -> awaitable<void> { co_await server_->read_exact(asio::buffer(got)); });
  std::vector<std::uint8_t> want = header;
  want.insert(want.end(), body.begin(), body.end());
  want.insert(want.end(), tail.begin(), tail.end());
  EXPECT_EQ(got, want);
}

// Writes longer than one record are gathered (record_gatherer) and sent in large pieces; with
// small socket buffers and a reader that starts late, the sends must wait for room again and
// again, mid-buffer, and with a header first and several buffers: every byte arrives in order.
TEST_P(LineStreamTlsTest, LargeGatheredWritesPastAFullWindowArriveInOrder) {
  client_->socket().set_option(asio::socket_base::send_buffer_size(16 * 1024));
  server_->socket().set_option(asio::socket_base::receive_buffer_size(16 * 1024));
  const std::vector<std::uint8_t> header{1, 2, 3, 4, 5, 6, 7, 8};
  const auto body = pattern(600 * 1024 + 17);  // several gather buffers' worth
  const auto second = pattern(3 * record_size + 1);
  std::vector<std::uint8_t> want = header;
  want.insert(want.end(), body.begin(), body.end());
  want.insert(want.end(), second.begin(), second.end());
  std::vector<std::uint8_t> got(want.size());
  bool written = false;
  run([&]() -> awaitable<void> {
    using namespace asio::experimental::awaitable_operators;
    auto writer = [&]() -> awaitable<void> {
      const asio::const_buffer parts[] = {asio::buffer(header), asio::buffer(body)};
      co_await client_->write_all(parts);
      co_await client_->write_all(asio::buffer(second));
      written = true;
    };
    auto reader = [&]() -> awaitable<void> {
      asio::steady_timer late(co_await asio::this_coro::executor, std::chrono::milliseconds(50));
      co_await late.async_wait(use_awaitable);  // the writer fills the window first
      EXPECT_FALSE(written);
      co_await server_->read_exact(asio::buffer(got));
    };
    co_await (writer() && reader());
  });
  EXPECT_TRUE(written);
  EXPECT_TRUE(got == want);
}

TEST_P(LineStreamTlsTest, BytesBeforeAnAbruptEndComeFirstThenTheError) {
  const auto data = pattern(3000);
  run([&]() -> awaitable<void> { co_await client_->write_all(asio::buffer(data)); });
  // The start of a next record's header, then FIN without close_notify: read-ahead takes the
  // whole record and the 3 bytes, so the read after the record fails with bytes in hand.
  const std::uint8_t partial[] = {0x17, 0x03, 0x03};
  asio::write(client_->socket(), asio::buffer(partial));
  client_->socket().shutdown(tcp::socket::shutdown_send);
  std::vector<std::uint8_t> got(8192);
  std::size_t n = 0;
  run([&]() -> awaitable<void> { n = co_await server_->read_some(asio::buffer(got)); });
  ASSERT_EQ(n, data.size());
  got.resize(n);
  EXPECT_EQ(got, data);
  EXPECT_THROW(run([&]() -> awaitable<void> { co_await server_->read_some(asio::buffer(got)); }),
               boost::system::system_error);
}

// The OpenSSL end asks for a key update; the own end follows it and answers with a KeyUpdate of
// its own before its next data (RFC 8446 §4.6.3): 27 bytes more on the wire than the data's
// record. Both ends then go on under the new keys, both ways.
TEST_P(LineStreamTlsTest, AKeyUpdateAskedByOpensslIsFollowedAndAnswered) {
  if (server_owns() == client_owns()) GTEST_SKIP() << "needs one end on each record layer";
  line_stream& openssl_end = server_owns() ? *client_ : *server_;
  line_stream& own_end = server_owns() ? *server_ : *client_;
  ASSERT_EQ(SSL_key_update(openssl_end.ssl(), SSL_KEY_UPDATE_REQUESTED), 1);
  auto send = [&](line_stream& from, line_stream& to, std::size_t size) {
    const auto data = pattern(size);
    std::vector<std::uint8_t> got(size);
    run([&]() -> awaitable<void> { co_await from.write_all(asio::buffer(data)); });
    const std::size_t on_the_wire = to.socket().available();
    run([&]() -> awaitable<void> { co_await to.read_exact(asio::buffer(got)); });
    EXPECT_EQ(got, data);
    return on_the_wire;
  };
  send(openssl_end, own_end, 1000);  // KeyUpdate(update_requested), then data under the new key
  EXPECT_EQ(send(own_end, openssl_end, 2000), 2000 + record_overhead + 27);
  EXPECT_EQ(send(openssl_end, own_end, 3000), 3000 + record_overhead);
  EXPECT_EQ(send(own_end, openssl_end, 4000), 4000 + record_overhead);  // answered once only
}

// A write may start before the handshake is done (the relay closes a line that is still shaking
// hands): SSL_write then drives the handshake as well, and the SSL stays for as long as that
// write runs even if the handshake coroutine finishes first.
TEST_P(LineStreamTlsTest, AWriteStartedDuringTheHandshakeArrives) {
  tcp::acceptor acceptor(io_, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  tcp::socket c(io_);
  c.connect(acceptor.local_endpoint());
  line_stream client(std::move(c), client_ctx_.get(), false);
  line_stream server(acceptor.accept(), server_ctx_.get(), true);
  const auto data = pattern(3000);
  std::vector<std::uint8_t> got(data.size());
  run([&]() -> awaitable<void> {
    using namespace asio::experimental::awaitable_operators;
    co_await (server.handshake() && server.write_all(asio::buffer(data)) && client.handshake());
    co_await client.read_exact(asio::buffer(got));
  });
  EXPECT_EQ(got, data);
  EXPECT_EQ(client.own_records(), client_owns());
}

// A server that sends tickets seals them through OpenSSL under its first application key, during
// its handshake: a record layer taking over at sequence 0 would reuse their nonces (and its
// client would fail to open its first record). Such a server keeps OpenSSL's records.
TEST_P(LineStreamTlsTest, AServerWhoseOpensslSealedRecordsKeepsThem) {
  ASSERT_EQ(SSL_CTX_set_num_tickets(server_ctx_.get(), 2), 1);
  tcp::acceptor acceptor(io_, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  tcp::socket c(io_);
  c.connect(acceptor.local_endpoint());
  line_stream client(std::move(c), client_ctx_.get(), false);
  line_stream server(acceptor.accept(), server_ctx_.get(), true);
  const auto data = pattern(3000);
  std::vector<std::uint8_t> got(data.size());
  std::vector<std::uint8_t> back(data.size());
  run([&]() -> awaitable<void> {
    using namespace asio::experimental::awaitable_operators;
    co_await (server.handshake() && client.handshake());
    co_await server.write_all(asio::buffer(data));
    co_await client.read_exact(asio::buffer(got));
    co_await client.write_all(asio::buffer(data));
    co_await server.read_exact(asio::buffer(back));
  });
  EXPECT_EQ(got, data);
  EXPECT_EQ(back, data);
  EXPECT_FALSE(server.own_records());
  EXPECT_EQ(client.own_records(), client_owns());  // it opened nothing before it took over
}

// A close_notify from an OpenSSL end is a clean end of stream for either reader.
TEST_P(LineStreamTlsTest, CloseNotifyEndsTheStreamCleanly) {
  if (client_owns()) GTEST_SKIP() << "the own record layer does not send close_notify";
  const auto data = pattern(500);
  run([&]() -> awaitable<void> { co_await client_->write_all(asio::buffer(data)); });
  ASSERT_EQ(SSL_shutdown(client_->ssl()), 0);  // close_notify sent, the peer's not yet seen
  std::vector<std::uint8_t> got(data.size());
  std::vector<std::uint8_t> more(100);
  std::size_t after = 1;
  run([&]() -> awaitable<void> {
    co_await server_->read_exact(asio::buffer(got));
    after = co_await server_->read_some(asio::buffer(more));
  });
  EXPECT_EQ(got, data);
  EXPECT_EQ(after, 0u);
}

// Forged or malformed records end the line with an error, whichever layer reads them.
TEST_P(LineStreamTlsTest, AForgedRecordFailsAuthentication) {
  std::vector<std::uint8_t> forged{0x17, 0x03, 0x03, 0x00, 0x20};
  forged.resize(5 + 0x20, 0xab);
  asio::write(client_->socket(), asio::buffer(forged));
  std::vector<std::uint8_t> got(100);
  EXPECT_THROW(run([&]() -> awaitable<void> { co_await server_->read_some(asio::buffer(got)); }),
               boost::system::system_error);
}

TEST_P(LineStreamTlsTest, ARecordOverTheMaximumLengthIsRefused) {
  const std::uint8_t header[] = {0x17, 0x03, 0x03, 0x48, 0x01};  // 18,433 > 2^14 + 256
  asio::write(client_->socket(), asio::buffer(header));
  std::vector<std::uint8_t> got(100);
  EXPECT_THROW(run([&]() -> awaitable<void> { co_await server_->read_some(asio::buffer(got)); }),
               boost::system::system_error);
}

// A reader whose bytes never run out still lets the other coroutines of its thread run: reads
// that find bytes at once are done without the scheduler, but not more than a bounded number in
// a row. `stream` reads 1 KiB at a time from bytes that are all there already; a coroutine
// posted at the start must run long before the reader is through them.
void expect_reader_yields(asio::io_context& io, line_stream& stream, std::size_t available) {
  std::size_t reads = 0;
  std::size_t reads_when_other_ran = 0;
  bool other_ran = false;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        std::vector<std::uint8_t> buf(1024);
        std::size_t got = 0;
        while (got < available) {
          got += co_await stream.read_some(asio::buffer(buf));
          ++reads;
        }
      },
      asio::detached);
  asio::post(io, [&] {
    other_ran = true;
    reads_when_other_ran = reads;
  });
  io.run();
  io.restart();
  ASSERT_TRUE(other_ran);
  EXPECT_GE(reads, available / 1024);
  EXPECT_LE(reads_when_other_ran, 64u) << "of " << reads << " reads";
}

TEST_P(LineStreamTlsTest, AReaderThatNeverWaitsStillLetsOthersRun) {
  // Socket buffers large enough for the whole write, which then needs no reader to finish.
  client_->socket().set_option(asio::socket_base::send_buffer_size(1 << 20));
  server_->socket().set_option(asio::socket_base::receive_buffer_size(1 << 20));
  const auto data = pattern(128 * 1024);
  run([&]() -> awaitable<void> { co_await client_->write_all(asio::buffer(data)); });
  expect_reader_yields(io_, *server_, data.size());
}

INSTANTIATE_TEST_SUITE_P(RecordLayers, LineStreamTlsTest,
                         ::testing::Values(records::own, records::openssl, records::own_server,
                                           records::own_client),
                         name_of);

// ---- records without application bytes -------------------------------------------------------

// A server line carrying its own records, and a raw OpenSSL client whose traffic secret the test
// holds, so that it can send any record (tls13::testing::raw_sealer) on the socket directly.
class LineStreamNoDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "sb-no-data-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    const server_identity id = ensure_self_signed(dir_);
    server_ctx_ = make_server_context(id);
    client_ctx_ = make_client_context({.fingerprint = fingerprint_of_cert_file(id.cert_file)});
    tcp::acceptor acceptor(io_, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    raw_.connect(acceptor.local_endpoint());
    raw_.set_option(tcp::no_delay(true));
    raw_.set_option(asio::socket_base::send_buffer_size(1 << 20));
    server_.emplace(acceptor.accept(), server_ctx_.get(), true);
    server_->socket().set_option(asio::socket_base::receive_buffer_size(1 << 20));
    raw_.non_blocking(true);
    ssl_.reset(SSL_new(client_ctx_.get()));
    ASSERT_EQ(SSL_set_fd(ssl_.get(), raw_.native_handle()), 1);  // the socket stays open
    SSL_set_connect_state(ssl_.get());
    tls13::capture_into(ssl_.get(), &secrets_);
    std::exception_ptr failure;
    asio::co_spawn(
        io_,
        [this]() -> awaitable<void> {
          using namespace asio::experimental::awaitable_operators;
          co_await (client_handshake() && server_->handshake());
        },
        [&](std::exception_ptr e) { failure = e; });
    io_.run();
    io_.restart();
    if (failure) std::rethrow_exception(failure);
    tls13::capture_into(ssl_.get(), nullptr);
    ASSERT_TRUE(server_->own_records());
    const auto suite = tls13::suite_of(SSL_get_current_cipher(ssl_.get()));
    ASSERT_TRUE(suite.has_value());
    sealer_.emplace(*suite,
                    std::span<const std::uint8_t>(secrets_.client.data(), secrets_.client_size));
    raw_.non_blocking(false);
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  awaitable<void> client_handshake() {
    for (int i = 0; i < 100; ++i) {
      const int r = SSL_do_handshake(ssl_.get());
      if (r == 1) co_return;
      const int e = SSL_get_error(ssl_.get(), r);
      if (e != SSL_ERROR_WANT_READ) throw std::runtime_error("client handshake failed");
      co_await raw_.async_wait(tcp::socket::wait_read, use_awaitable);
    }
    throw std::runtime_error("client handshake did not finish");
  }

  // Appends `count` records made by `make`, in that order.
  template <typename F>
  static void append(std::vector<std::uint8_t>& wire, int count, F make) {
    for (int i = 0; i < count; ++i) {
      const auto r = make();
      wire.insert(wire.end(), r.begin(), r.end());
    }
  }
  // In one write, so that all of it is in the line's socket before the reader starts (it fits
  // in the socket buffers).
  void send(const std::vector<std::uint8_t>& wire) { asio::write(raw_, asio::buffer(wire)); }

  struct outcome {
    std::size_t bytes = 0;            // what the first read_some returned
    boost::system::error_code error;  // or how it failed
    unsigned other_turns = 0;         // turns another coroutine had before the read ended
  };
  // One read_some of the server line, while another coroutine (started first) counts its turns
  // of the scheduler: one per yield of the reader, none for a reader that never yields. A read
  // still running after 10 s is ended by closing the line.
  // Ciphertext still in the line's socket (0 once the line is closed).
  std::size_t unread() {
    error_code ec;
    const std::size_t n = server_->socket().available(ec);
    return ec ? 0 : n;
  }

  outcome read_while_counting_turns() {
    outcome o;
    bool done = false;
    asio::steady_timer limit(io_, std::chrono::seconds(10));
    limit.async_wait([&](error_code ec) {
      if (!ec) server_->close();
    });
    asio::co_spawn(
        io_,
        [&]() -> awaitable<void> {
          for (int i = 0; i < 100'000 && !done; ++i) {
            co_await asio::post(io_, use_awaitable);
            if (!done) ++o.other_turns;
          }
        },
        asio::detached);
    asio::co_spawn(
        io_,
        [&]() -> awaitable<void> {
          std::array<std::uint8_t, 1024> buf{};
          try {
            o.bytes = co_await server_->read_some(asio::buffer(buf));
          } catch (const boost::system::system_error& e) {
            o.error = e.code();
          }
          done = true;
          limit.cancel();
        },
        asio::detached);
    io_.run();
    io_.restart();
    EXPECT_TRUE(done);
    return o;
  }

  fs::path dir_;
  asio::io_context io_;
  ssl_ctx_ptr server_ctx_;
  ssl_ctx_ptr client_ctx_;
  tcp::socket raw_{io_};
  tls13::traffic_secrets secrets_;
  std::unique_ptr<SSL, ssl_deleter> ssl_;
  std::optional<line_stream> server_;
  std::optional<tls13::testing::raw_sealer> sealer_;
};

// A long run of records without bytes (under the caps) before the first application byte: the
// reader yields every line_stream::sync_budget of them, then returns the bytes.
TEST_F(LineStreamNoDataTest, AReaderOfRecordsWithoutBytesStillLetsOthersRun) {
  const std::vector<std::uint8_t> hello{'h', 'e', 'l', 'l', 'o'};
  int i = 0;
  std::vector<std::uint8_t> wire;
  append(wire, 60, [&] { return ++i % 2 == 0 ? sealer_->empty_data() : sealer_->user_canceled(); });
  append(wire, 1, [&] { return sealer_->data(hello); });
  send(wire);
  const outcome o = read_while_counting_turns();
  ASSERT_FALSE(o.error) << o.error.message();
  EXPECT_EQ(o.bytes, hello.size());
  EXPECT_GE(o.other_turns, 3u);  // 60 records, a yield after each 16
}

// A KeyUpdate flood: the reader yields while it follows them, and the line fails at the cap
// (tls13::no_data_limits: 32 per second), long before the flood ends.
TEST_F(LineStreamNoDataTest, AKeyUpdateFloodFailsTheLineAtTheCap) {
  std::vector<std::uint8_t> wire;
  append(wire, 4000, [&] { return sealer_->key_update(); });  // 108 KB: more than one recv takes
  send(wire);
  const outcome o = read_while_counting_turns();
  EXPECT_EQ(o.error, tls13::record_error::key_update_flood) << o.error.message();
  EXPECT_GE(o.other_turns, 2u);  // yields after the 16th and the 32nd
  EXPECT_GT(unread(), 0u);       // most of the flood was never read
}

// user_canceled alerts and empty records: their own cap (64 per second).
TEST_F(LineStreamNoDataTest, AFloodOfAlertsAndEmptyRecordsFailsTheLineAtTheCap) {
  int i = 0;
  std::vector<std::uint8_t> wire;
  append(wire, 4000,
         [&] { return ++i % 2 == 0 ? sealer_->empty_data() : sealer_->user_canceled(); });
  send(wire);
  const outcome o = read_while_counting_turns();
  EXPECT_EQ(o.error, tls13::record_error::no_data_flood) << o.error.message();
  EXPECT_GE(o.other_turns, 4u);  // yields after each 16 of the first 64
  EXPECT_GT(unread(), 0u);
}

// A server line refuses a NewSessionTicket from its client (RFC 8446 §4.6.1).
TEST_F(LineStreamNoDataTest, ATicketFromTheClientFailsTheLine) {
  std::vector<std::uint8_t> wire;
  append(wire, 1, [&] { return sealer_->new_session_ticket(); });
  append(wire, 1, [&] { return sealer_->data(std::vector<std::uint8_t>(3, 1)); });
  send(wire);
  const outcome o = read_while_counting_turns();
  EXPECT_EQ(o.error, tls13::record_error::client_session_ticket) << o.error.message();
}

class LineStreamPlainTest : public ::testing::Test {
 protected:
  LineStreamPlainTest() {
    tcp::acceptor acceptor(io_, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    tcp::socket c(io_);
    c.connect(acceptor.local_endpoint());
    raw_ = std::move(c);
    stream_.emplace(acceptor.accept());
    raw_.set_option(asio::socket_base::send_buffer_size(1 << 20));
    stream_->socket().set_option(asio::socket_base::receive_buffer_size(1 << 20));
  }
  asio::io_context io_;
  tcp::socket raw_{io_};
  std::optional<line_stream> stream_;
};

TEST_F(LineStreamPlainTest, AReaderThatNeverWaitsStillLetsOthersRun) {
  const std::vector<std::uint8_t> data(256 * 1024, 0x5a);
  asio::write(raw_, asio::buffer(data));  // fits in loopback socket buffers: all there at once
  expect_reader_yields(io_, *stream_, data.size());
}

TEST_F(LineStreamPlainTest, WritesAndReadsKeepOrderAcrossTheDirectAndTheAsioPath) {
  // More writes than sync_budget in a row, each with a small first buffer: every byte arrives
  // once and in order whichever path a write took.
  std::vector<std::uint8_t> sent;
  asio::co_spawn(
      io_,
      [&]() -> awaitable<void> {
        for (std::uint8_t i = 0; i < 100; ++i) {
          const std::uint8_t head[] = {i, i};
          const std::vector<std::uint8_t> body(1000 + i, i);
          const asio::const_buffer parts[] = {asio::buffer(head), asio::buffer(body)};
          co_await stream_->write_all(parts);
          sent.insert(sent.end(), std::begin(head), std::end(head));
          sent.insert(sent.end(), body.begin(), body.end());
        }
        stream_->socket().shutdown(tcp::socket::shutdown_send);
      },
      asio::detached);
  io_.run();
  io_.restart();
  std::vector<std::uint8_t> got(sent.size());
  asio::read(raw_, asio::buffer(got));
  EXPECT_EQ(got, sent);
  std::uint8_t extra = 0;
  error_code ec;
  raw_.read_some(asio::buffer(&extra, 1), ec);
  EXPECT_EQ(ec, asio::error::eof);
}

// --- plaintext read-ahead ------------------------------------------------------------------------

// Bytes [0, n) of a recognisable sequence.
std::vector<std::uint8_t> counting(std::size_t n) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(i * 7 + 3);
  return v;
}

class LineStreamReadAheadTest : public LineStreamPlainTest {
 protected:
  // Reads exactly `n` bytes with read_some calls of at most `piece` bytes.
  std::vector<std::uint8_t> read_in_pieces(std::size_t n, std::size_t piece) {
    std::vector<std::uint8_t> got;
    asio::co_spawn(
        io_,
        [&]() -> awaitable<void> {
          std::vector<std::uint8_t> buf(piece);
          while (got.size() < n) {
            const std::size_t want = std::min(piece, n - got.size());
            const std::size_t k = co_await stream_->read_some(asio::buffer(buf.data(), want));
            if (k == 0) co_return;
            got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(k));
          }
        },
        asio::detached);
    io_.run();
    io_.restart();
    return got;
  }
  std::size_t in_socket() { return stream_->socket().available(); }
};

TEST_F(LineStreamReadAheadTest, ASmallReadTakesWhatFollowsInTheSameRecv) {
  const auto data = counting(300);
  asio::write(raw_, asio::buffer(data));
  const auto head = read_in_pieces(4, 4);
  ASSERT_EQ(head.size(), 4u);
  EXPECT_TRUE(std::equal(head.begin(), head.end(), data.begin()));
  // Everything else came with the header: the socket is empty, the line holds the rest.
  EXPECT_EQ(in_socket(), 0u);
  EXPECT_TRUE(stream_->read_buffered());
  ASSERT_EQ(stream_->buffered_bytes().size(), 296u);
  EXPECT_TRUE(std::equal(data.begin() + 4, data.end(), stream_->buffered_bytes().begin()));
  const auto rest = read_in_pieces(296, 1000);
  EXPECT_TRUE(std::equal(rest.begin(), rest.end(), data.begin() + 4));
  EXPECT_FALSE(stream_->read_buffered());
  EXPECT_TRUE(stream_->buffered_bytes().empty());
}

TEST_F(LineStreamReadAheadTest, OffItReadsExactlyWhatIsAskedFor) {
  const auto data = counting(300);
  asio::write(raw_, asio::buffer(data));
  stream_->set_read_ahead(false);
  const auto head = read_in_pieces(4, 4);
  ASSERT_EQ(head.size(), 4u);
  EXPECT_EQ(in_socket(), 296u);
  EXPECT_FALSE(stream_->read_buffered());
}

TEST_F(LineStreamReadAheadTest, AReadOfAtLeastTheReadAheadSizeGoesStraightToTheCaller) {
  const auto data = counting(line_stream::read_ahead_size * 3);
  asio::write(raw_, asio::buffer(data));
  const auto first = read_in_pieces(line_stream::read_ahead_size, line_stream::read_ahead_size);
  EXPECT_FALSE(stream_->read_buffered());
  EXPECT_EQ(in_socket(), data.size() - first.size());
  EXPECT_TRUE(std::equal(first.begin(), first.end(), data.begin()));
}

TEST_F(LineStreamReadAheadTest, ConsumedBytesAreSkippedAndTheRestStaysInOrder) {
  const auto data = counting(100);
  asio::write(raw_, asio::buffer(data));
  read_in_pieces(4, 4);
  stream_->consume_buffered(10);
  ASSERT_EQ(stream_->buffered_bytes().size(), 86u);
  EXPECT_EQ(stream_->buffered_bytes()[0], data[14]);
  stream_->consume_buffered(1000);  // more than held: all of it
  EXPECT_FALSE(stream_->read_buffered());
  const auto later = counting(20);
  asio::write(raw_, asio::buffer(later));
  const auto got = read_in_pieces(20, 4);
  EXPECT_EQ(got, later);
}

TEST_F(LineStreamReadAheadTest, ManySmallReadsOfAHeldStreamStillLetOthersRun) {
  // Served from the read-ahead, 100-byte reads of 256 KiB never wait; the budget still yields.
  const std::vector<std::uint8_t> data(256 * 1024, 0x33);
  asio::write(raw_, asio::buffer(data));
  std::size_t reads = 0;
  std::size_t reads_when_other_ran = 0;
  asio::co_spawn(
      io_,
      [&]() -> awaitable<void> {
        std::array<std::uint8_t, 100> buf{};
        std::size_t got = 0;
        while (got < data.size()) {
          got += co_await stream_->read_some(asio::buffer(buf));
          ++reads;
        }
      },
      asio::detached);
  asio::post(io_, [&] { reads_when_other_ran = reads; });
  io_.run();
  EXPECT_GE(reads, data.size() / 100);
  EXPECT_LE(reads_when_other_ran, 64u) << "of " << reads << " reads";
}

TEST_F(LineStreamReadAheadTest, WaitReadableReadsAheadAndTheNextReadTakesIt) {
  boost::system::error_code waited = asio::error::would_block;
  asio::co_spawn(
      io_,
      [&]() -> awaitable<void> {
        waited = co_await stream_->wait_readable(asio::cancellation_slot());
      },
      asio::detached);
  io_.poll();  // the wait is pending: nothing to read yet
  io_.restart();
  EXPECT_EQ(waited, asio::error::would_block);
  EXPECT_FALSE(stream_->read_buffered());
  const auto data = counting(64);
  asio::write(raw_, asio::buffer(data));
  io_.run();
  io_.restart();
  EXPECT_FALSE(waited) << waited.message();
  EXPECT_TRUE(stream_->read_buffered());
  EXPECT_EQ(in_socket(), 0u);
  EXPECT_EQ(read_in_pieces(64, 64), data);
}

TEST_F(LineStreamReadAheadTest, ACancelledWaitTakesNothingFromTheLine) {
  asio::cancellation_signal cancel;
  boost::system::error_code waited;
  asio::co_spawn(
      io_, [&]() -> awaitable<void> { waited = co_await stream_->wait_readable(cancel.slot()); },
      asio::detached);
  io_.poll();
  cancel.emit(asio::cancellation_type::terminal);
  io_.run();
  io_.restart();
  EXPECT_EQ(waited, asio::error::operation_aborted);
  EXPECT_FALSE(stream_->read_buffered());
  const auto data = counting(32);
  asio::write(raw_, asio::buffer(data));
  EXPECT_EQ(read_in_pieces(32, 4), data);
}

TEST_F(LineStreamReadAheadTest, WaitReadableAtTheEndLeavesTheEndToTheRead) {
  raw_.shutdown(tcp::socket::shutdown_send);
  boost::system::error_code waited = asio::error::would_block;
  std::size_t n = 99;
  asio::co_spawn(
      io_,
      [&]() -> awaitable<void> {
        waited = co_await stream_->wait_readable(asio::cancellation_slot());
        std::array<std::uint8_t, 4> buf{};
        n = co_await stream_->read_some(asio::buffer(buf));
      },
      asio::detached);
  io_.run();
  EXPECT_FALSE(waited) << waited.message();
  EXPECT_EQ(n, 0u);
}

}  // namespace
}  // namespace switchboard::net
