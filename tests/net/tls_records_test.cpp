// tls13::record_layer and traffic_keys (net/tls_records.hpp) without sockets: two layers with
// mirrored secrets seal and open each other's records, for every suite, every size around the
// record limit, in any delivery pieces; key updates by count; and what must fail: forged or
// malformed records, a record under other keys. (Interoperation with OpenSSL's own record layer,
// KeyUpdate and close_notify included, is checked in line_stream_test.cpp.)
#include "net/tls_records.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <numeric>
#include <stdexcept>
#include <vector>

namespace switchboard::net::tls13 {
namespace {

std::vector<std::uint8_t> secret_of(suite s, std::uint8_t fill) {
  return std::vector<std::uint8_t>(s == suite::aes_256_gcm_sha384 ? 48 : 32, fill);
}

std::vector<std::uint8_t> pattern(std::size_t n) {
  std::vector<std::uint8_t> v(n);
  std::iota(v.begin(), v.end(), std::uint8_t{3});
  return v;
}

// Seals all of `data` (given as `pieces` buffers) in buffers of `room` bytes.
std::vector<std::uint8_t> seal_all(record_layer& from, const std::vector<std::uint8_t>& data,
                                   std::size_t pieces = 1, std::size_t room = 300 * 1024) {
  std::vector<asio::const_buffer> bufs;
  const std::size_t step = data.empty() ? 1 : (data.size() + pieces - 1) / pieces;
  for (std::size_t at = 0; at < data.size(); at += step) {
    bufs.push_back(asio::buffer(data.data() + at, std::min(step, data.size() - at)));
  }
  std::vector<std::uint8_t> wire;
  std::vector<std::uint8_t> out(room);
  std::size_t done = 0;
  do {
    const auto s = from.seal(bufs, done, out);
    done += s.consumed;
    wire.insert(wire.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>(s.written));
  } while (done < data.size());
  return wire;
}

// Feeds `wire` to `to` in pieces of at most `feed` bytes and reads with a buffer of `chunk`.
std::vector<std::uint8_t> open_all(record_layer& to, const std::vector<std::uint8_t>& wire,
                                   std::size_t feed = 1 << 20, std::size_t chunk = 1 << 20) {
  std::vector<std::uint8_t> got;
  std::vector<std::uint8_t> buf(chunk);
  std::size_t fed = 0;
  for (;;) {
    const std::size_t n = to.read(buf);
    got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    if (n > 0) continue;
    if (fed == wire.size()) break;
    const auto space = to.receive_space();
    const std::size_t take = std::min({feed, space.size(), wire.size() - fed});
    std::copy_n(wire.begin() + static_cast<std::ptrdiff_t>(fed), take, space.begin());
    to.received(take);
    fed += take;
  }
  return got;
}

class RecordLayerTest : public ::testing::TestWithParam<suite> {
 protected:
  std::vector<std::uint8_t> client_secret_ = secret_of(GetParam(), 0x11);
  std::vector<std::uint8_t> server_secret_ = secret_of(GetParam(), 0x22);
  record_layer client_{GetParam(), server_secret_, client_secret_};
  record_layer server_{GetParam(), client_secret_, server_secret_};
};

TEST_P(RecordLayerTest, RoundTripsEverySizeAroundTheRecordLimit) {
  for (std::size_t size : {std::size_t{1}, std::size_t{100}, max_plaintext - 1, max_plaintext,
                           max_plaintext + 1, std::size_t{300'000}}) {
    const auto data = pattern(size);
    const auto wire = seal_all(client_, data, 3);
    const std::size_t records = (size + max_plaintext - 1) / max_plaintext;
    EXPECT_EQ(wire.size(), size + records * record_overhead) << size;
    EXPECT_EQ(open_all(server_, wire), data) << size;
    EXPECT_EQ(open_all(client_, seal_all(server_, data)), data) << size;  // the other way
  }
  EXPECT_FALSE(server_.holds_buffer());  // all read: the receive buffer went back
  EXPECT_FALSE(server_.readable());
}

TEST_P(RecordLayerTest, AnyDeliveryPiecesAndReadSizesGiveTheSameBytes) {
  const auto data = pattern(70'000);
  const auto wire = seal_all(client_, data, 7);
  EXPECT_EQ(open_all(server_, wire, 1000, 333), data);  // in place and copied out
  const auto wire2 = seal_all(client_, data, 1, record_layer::min_seal_room);  // small records
  EXPECT_GT(wire2.size(), data.size() + 5 * record_overhead);
  EXPECT_EQ(open_all(server_, wire2, 7, 70'000), data);
}

TEST_P(RecordLayerTest, ASmallReadLeavesTheRestReadable) {
  const auto data = pattern(5000);
  const auto wire = seal_all(client_, data);
  const auto space = server_.receive_space();
  std::copy(wire.begin(), wire.end(), space.begin());
  server_.received(wire.size());
  std::vector<std::uint8_t> got(10);
  EXPECT_EQ(server_.read(got), 10u);
  EXPECT_TRUE(server_.readable());
  EXPECT_TRUE(server_.holds_buffer());
  std::vector<std::uint8_t> rest(data.size());
  EXPECT_EQ(server_.read(rest), data.size() - 10);
  EXPECT_FALSE(server_.readable());
  EXPECT_FALSE(server_.holds_buffer());
}

TEST_P(RecordLayerTest, APartialRecordIsNotReadable) {
  const auto wire = seal_all(client_, pattern(100));
  const auto space = server_.receive_space();
  std::copy(wire.begin(), wire.end() - 1, space.begin());
  server_.received(wire.size() - 1);
  EXPECT_FALSE(server_.readable());
  EXPECT_TRUE(server_.holds_partial_record());
  std::vector<std::uint8_t> got(200);
  EXPECT_EQ(server_.read(got), 0u);
  EXPECT_TRUE(server_.holds_buffer());  // the partial record stays
}

TEST_P(RecordLayerTest, KeysMoveOnAfterTheLimitAndTheReaderFollows) {
  record_layer sender(GetParam(), server_secret_, client_secret_, 3);
  const auto data = pattern(10 * max_plaintext);
  const auto wire = seal_all(sender, data);
  // 10 records; a KeyUpdate (27 bytes) before the 4th, 7th and 10th.
  EXPECT_EQ(wire.size(), data.size() + 10 * record_overhead + 3 * 27);
  EXPECT_EQ(open_all(server_, wire), data);
  EXPECT_EQ(open_all(server_, seal_all(sender, pattern(10))), pattern(10));
}

TEST_P(RecordLayerTest, AFlippedBitFailsAuthentication) {
  // A header byte, a ciphertext byte, a tag byte (the record is 5 + 100 + 1 + 16 = 122 bytes).
  for (std::size_t at : {std::size_t{1}, std::size_t{10}, std::size_t{120}}) {
    record_layer client(GetParam(), server_secret_, client_secret_);
    record_layer server(GetParam(), client_secret_, server_secret_);
    auto wire = seal_all(client, pattern(100));
    wire[at] ^= 0x01;
    EXPECT_THROW(open_all(server, wire), boost::system::system_error) << at;
  }
}

// Good records, then a forged one, all held at once: the good bytes come first, the fault with
// the next read, and every read after it.
TEST_P(RecordLayerTest, BytesBeforeABadRecordComeFirstThenTheFault) {
  const auto data = pattern(3000);
  auto wire = seal_all(client_, data);
  auto bad = seal_all(client_, pattern(50));
  bad[20] ^= 0x80;
  wire.insert(wire.end(), bad.begin(), bad.end());
  const auto space = server_.receive_space();
  std::copy(wire.begin(), wire.end(), space.begin());
  server_.received(wire.size());
  std::vector<std::uint8_t> got(10'000);
  ASSERT_EQ(server_.read(got), data.size());
  EXPECT_TRUE(std::equal(data.begin(), data.end(), got.begin()));
  EXPECT_TRUE(server_.readable());  // a reader must come back for the fault, not wait
  EXPECT_THROW(server_.read(got), boost::system::system_error);
  EXPECT_THROW(server_.read(got), boost::system::system_error);
}

TEST_P(RecordLayerTest, RecordsUnderOtherKeysFail) {
  record_layer stranger(GetParam(), server_secret_, secret_of(GetParam(), 0x33));
  EXPECT_THROW(open_all(server_, seal_all(stranger, pattern(100))), boost::system::system_error);
}

TEST_P(RecordLayerTest, ARecordReplayedOrReorderedFails) {
  const auto first = seal_all(client_, pattern(100));
  const auto second = seal_all(client_, pattern(200));
  EXPECT_EQ(open_all(server_, first), pattern(100));
  EXPECT_THROW(open_all(server_, first), boost::system::system_error);  // sequence moved on
  record_layer fresh(GetParam(), client_secret_, server_secret_);
  EXPECT_THROW(open_all(fresh, second), boost::system::system_error);  // sealed as the second
}

// A record of any inner content type and content, sealed under `keys` with AES-128-GCM, as a peer
// may send it (record_layer itself seals only application data and KeyUpdate).
std::vector<std::uint8_t> seal_inner(traffic_keys& keys, std::uint8_t type,
                                     const std::vector<std::uint8_t>& content) {
  std::vector<std::uint8_t> inner = content;
  inner.push_back(type);
  const std::size_t length = inner.size() + tag_size;
  std::vector<std::uint8_t> rec(header_size + length);
  rec[0] = 0x17;
  rec[1] = 0x03;
  rec[2] = 0x03;
  rec[3] = static_cast<std::uint8_t>(length >> 8);
  rec[4] = static_cast<std::uint8_t>(length);
  const auto nonce = keys.next_nonce();
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int len = 0;
  const bool ok =
      EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), nullptr, keys.key().data(), nonce.data()) == 1 &&
      EVP_EncryptUpdate(ctx, nullptr, &len, rec.data(), header_size) == 1 &&
      EVP_EncryptUpdate(ctx, rec.data() + header_size, &len, inner.data(),
                        static_cast<int>(inner.size())) == 1 &&
      EVP_EncryptFinal_ex(ctx, rec.data() + header_size + len, &len) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, tag_size,
                          rec.data() + header_size + inner.size()) == 1;
  EVP_CIPHER_CTX_free(ctx);
  EXPECT_TRUE(ok);
  return rec;
}

// A fault in a record that is consumed when it is opened (a fatal alert, an unexpected content
// type, a malformed KeyUpdate) is final: the good records after it are never delivered.
TEST(RecordLayer, AFaultIsFinalEvenWhenItsRecordWasConsumed) {
  const std::vector<std::uint8_t> secret(32, 0x44);
  const std::vector<std::vector<std::uint8_t>> bad_inner = {
      {0x02, 40, 21},         // fatal alert handshake_failure
      {1, 2, 3, 24},          // heartbeat content type
      {24, 0, 0, 1, 7, 22}};  // KeyUpdate with request_update 7
  for (const auto& bad : bad_inner) {
    record_layer layer(suite::aes_128_gcm_sha256, secret, secret);
    traffic_keys peer(suite::aes_128_gcm_sha256, secret);
    auto wire = seal_inner(peer, bad.back(), {bad.begin(), bad.end() - 1});
    const auto good = seal_inner(peer, 23, pattern(100));
    wire.insert(wire.end(), good.begin(), good.end());
    const auto space = layer.receive_space();
    std::copy(wire.begin(), wire.end(), space.begin());
    layer.received(wire.size());
    std::vector<std::uint8_t> got(200);
    EXPECT_THROW(layer.read(got), boost::system::system_error) << int{bad.back()};
    EXPECT_TRUE(layer.readable());
    EXPECT_THROW(layer.read(got), boost::system::system_error) << int{bad.back()};
  }
}

INSTANTIATE_TEST_SUITE_P(Suites, RecordLayerTest,
                         ::testing::Values(suite::aes_128_gcm_sha256, suite::aes_256_gcm_sha384,
                                           suite::chacha20_poly1305_sha256));

TEST(RecordLayer, MalformedHeadersAreReadableAndRefusedBeforeAnyDecryption) {
  const std::vector<std::uint8_t> secret(32, 0x44);
  const std::vector<std::vector<std::uint8_t>> headers = {
      {0x16, 0x03, 0x03, 0x00, 0x20},  // handshake outer type after the handshake
      {0x15, 0x03, 0x03, 0x00, 0x20},  // plaintext alert
      {0x17, 0x03, 0x01, 0x00, 0x20},  // legacy version
      {0x17, 0x03, 0x03, 0x41, 0x01},  // 16,641 > 2^14 + 256
      {0x17, 0x03, 0x03, 0x40, 0x12},  // 16,402: inner plaintext over 2^14 + 1 (§5.4)
      {0x17, 0x03, 0x03, 0x00, 0x10},  // shorter than a tag and a content type
  };
  for (const auto& h : headers) {
    record_layer layer(suite::aes_128_gcm_sha256, secret, secret);
    const auto space = layer.receive_space();
    std::copy(h.begin(), h.end(), space.begin());
    layer.received(h.size());
    // Readable (a reader must not wait for the socket): read() reports the fault at once.
    EXPECT_TRUE(layer.readable());
    std::vector<std::uint8_t> got(10);
    EXPECT_THROW(layer.read(got), boost::system::system_error) << int{h[0]} << " " << int{h[4]};
  }
}

TEST(RecordLayer, SealNeedsRoom) {
  const std::vector<std::uint8_t> secret(32, 0x44);
  record_layer layer(suite::aes_128_gcm_sha256, secret, secret);
  std::vector<std::uint8_t> out(record_layer::min_seal_room - 1);
  const auto data = pattern(10);
  const asio::const_buffer b = asio::buffer(data);
  EXPECT_THROW(layer.seal({&b, 1}, 0, out), std::invalid_argument);
}

TEST(TrafficKeys, SecretSizeMustMatchTheSuitesHash) {
  EXPECT_THROW(traffic_keys(suite::aes_128_gcm_sha256, std::vector<std::uint8_t>(48)),
               std::invalid_argument);
  EXPECT_THROW(traffic_keys(suite::aes_256_gcm_sha384, std::vector<std::uint8_t>(32)),
               std::invalid_argument);
  EXPECT_NO_THROW(traffic_keys(suite::aes_256_gcm_sha384, std::vector<std::uint8_t>(48)));
}

TEST(TrafficKeys, NoncesFollowTheSequenceAndAnUpdateStartsAgain) {
  traffic_keys k(suite::aes_128_gcm_sha256, std::vector<std::uint8_t>(32, 0x55));
  const auto key0 = std::vector<std::uint8_t>(k.key().begin(), k.key().end());
  const auto n0 = k.next_nonce();
  const auto n1 = k.next_nonce();
  EXPECT_EQ(k.sequence(), 2u);
  // The IV XOR the sequence, big-endian in the last bytes (RFC 8446 §5.3).
  EXPECT_EQ(n0[11] ^ n1[11], 1);
  EXPECT_TRUE(std::equal(n0.begin(), n0.begin() + 11, n1.begin()));
  const std::uint64_t id = k.key_id();
  k.update();
  EXPECT_EQ(k.sequence(), 0u);
  EXPECT_NE(k.key_id(), id);
  EXPECT_NE(std::vector<std::uint8_t>(k.key().begin(), k.key().end()), key0);
  EXPECT_NE(k.next_nonce(), n0);  // a new IV too
}

}  // namespace
}  // namespace switchboard::net::tls13
