// line_stream (net/line_stream.hpp) on TLS: the negotiated cipher suite, records returned together
// by one read_some (read-ahead), a small first buffer sharing its record with what follows, and
// bytes read before an abrupt end returned before the error. Record counts are checked through
// the ciphertext bytes waiting in the receiver's socket (each TLS 1.3 record adds 22 bytes: 5 of
// header, 1 of content type, 16 of AEAD tag).
#include "net/line_stream.hpp"

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <stdlib.h>

#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "net/tls.hpp"

namespace switchboard::net {
namespace {

namespace fs = std::filesystem;
constexpr std::size_t record_overhead = 22;
constexpr std::size_t record_size = 16384;

class LineStreamTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "sb-line-stream-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    const server_identity id = ensure_self_signed(dir_);
    server_ctx_ = make_server_context(id);
    client_ctx_ = make_client_context({.fingerprint = fingerprint_of_cert_file(id.cert_file)});
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

TEST_F(LineStreamTlsTest, NegotiatesAes128Gcm) {
  EXPECT_STREQ(SSL_get_cipher_name(server_->ssl()), "TLS_AES_128_GCM_SHA256");
  EXPECT_STREQ(SSL_get_cipher_name(client_->ssl()), "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(SSL_get_read_ahead(server_->ssl()), 1);
}

TEST_F(LineStreamTlsTest, OneReadSomeReturnsEveryRecordReadAheadBrought) {
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

TEST_F(LineStreamTlsTest, ReadSomeStopsAtTheBufferAndKeepsTheRestBuffered) {
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

TEST_F(LineStreamTlsTest, SmallFirstBufferSharesItsRecord) {
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

TEST_F(LineStreamTlsTest, SmallFirstBufferThenLargeBodyKeepsOrderAcrossRecords) {
  const std::vector<std::uint8_t> header{9, 8, 7};
  const auto body = pattern(40'000);
  const auto tail = pattern(5);
  run([&]() -> awaitable<void> {
    const asio::const_buffer parts[] = {asio::buffer(header), asio::buffer(body),
                                        asio::buffer(tail)};
    co_await client_->write_all(parts);
  });
  const std::size_t total = header.size() + body.size() + tail.size();
  // Full first record (header + start of body), the rest of the body, then the tail: 4 records.
  // Unmerged, the header alone would have taken one more.
  EXPECT_EQ(waiting(), total + 4 * record_overhead);
  std::vector<std::uint8_t> got(total);
  run([&]() -> awaitable<void> { co_await server_->read_exact(asio::buffer(got)); });
  std::vector<std::uint8_t> want = header;
  want.insert(want.end(), body.begin(), body.end());
  want.insert(want.end(), tail.begin(), tail.end());
  EXPECT_EQ(got, want);
}

TEST_F(LineStreamTlsTest, BytesBeforeAnAbruptEndComeFirstThenTheError) {
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

}  // namespace
}  // namespace switchboard::net
