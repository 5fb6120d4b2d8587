// tls13::record_layer and traffic_keys (net/tls_records.hpp) without sockets: two layers with
// mirrored secrets seal and open each other's records, for every suite, every size around the
// record limit, in any delivery pieces; key updates by count; and what must fail: forged or
// malformed records, a record under other keys; what RFC 8446 refuses (oversized inner plaintext,
// tickets from a client, empty or split handshake messages), each under its own error; the caps on
// records without application bytes. (Interoperation with OpenSSL's own record layer, KeyUpdate
// and close_notify included, is checked in line_stream_test.cpp.)
#include "net/tls_records.hpp"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <stdlib.h>

#include <filesystem>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "net/tls.hpp"
#include "raw_records.hpp"

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
    if (n > 0 || (to.readable() && !to.closed())) continue;
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
  record_layer client_{GetParam(), role::client, server_secret_, client_secret_};
  record_layer server_{GetParam(), role::server, client_secret_, server_secret_};
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
  record_layer sender(GetParam(), role::client, server_secret_, client_secret_, 3);
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
    record_layer client(GetParam(), role::client, server_secret_, client_secret_);
    record_layer server(GetParam(), role::server, client_secret_, server_secret_);
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
  record_layer stranger(GetParam(), role::client, server_secret_, secret_of(GetParam(), 0x33));
  EXPECT_THROW(open_all(server_, seal_all(stranger, pattern(100))), boost::system::system_error);
}

TEST_P(RecordLayerTest, ARecordReplayedOrReorderedFails) {
  const auto first = seal_all(client_, pattern(100));
  const auto second = seal_all(client_, pattern(200));
  EXPECT_EQ(open_all(server_, first), pattern(100));
  EXPECT_THROW(open_all(server_, first), boost::system::system_error);  // sequence moved on
  record_layer fresh(GetParam(), role::server, client_secret_, server_secret_);
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
    record_layer layer(suite::aes_128_gcm_sha256, role::server, secret, secret);
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
    record_layer layer(suite::aes_128_gcm_sha256, role::server, secret, secret);
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
  record_layer layer(suite::aes_128_gcm_sha256, role::server, secret, secret);
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

// ---- what RFC 8446 refuses, and the caps on records without application bytes --------------

using testing::raw_sealer;

std::vector<std::uint8_t> joined(std::initializer_list<std::vector<std::uint8_t>> records) {
  std::vector<std::uint8_t> wire;
  for (const auto& r : records) wire.insert(wire.end(), r.begin(), r.end());
  return wire;
}

// Opening `wire` fails with `e`, named in the error's message.
void expect_fault(record_layer& to, const std::vector<std::uint8_t>& wire, record_error e) {
  try {
    open_all(to, wire);
    ADD_FAILURE() << "no fault, expected " << make_error_code(e).message();
  } catch (const boost::system::system_error& x) {
    EXPECT_EQ(x.code(), make_error_code(e)) << x.what();
    EXPECT_NE(std::string(x.what()).find(make_error_code(e).message()), std::string::npos);
  }
}

class RecordRulesTest : public ::testing::TestWithParam<suite> {
 protected:
  std::vector<std::uint8_t> client_secret_ = secret_of(GetParam(), 0x11);
  std::vector<std::uint8_t> server_secret_ = secret_of(GetParam(), 0x22);
  raw_sealer from_client_{GetParam(), client_secret_};
  raw_sealer from_server_{GetParam(), server_secret_};
  // A server reads the client's records, a client the server's; no caps unless a test sets them.
  record_layer server(no_data_limits limits = {1000, 1000, std::chrono::hours(1)}) {
    return record_layer(GetParam(), role::server, client_secret_, server_secret_,
                        default_key_update_after, limits);
  }
  record_layer client(no_data_limits limits = {1000, 1000, std::chrono::hours(1)}) {
    return record_layer(GetParam(), role::client, server_secret_, client_secret_,
                        default_key_update_after, limits);
  }
};

// §5.4: TLSInnerPlaintext (content, type, padding) is at most 2^14 + 1 bytes, although the
// ciphertext may be 2^14 + 256.
TEST_P(RecordRulesTest, AnInnerPlaintextOverTwoToTheFourteenPlusOneIsRecordOverflow) {
  const auto full = pattern(max_plaintext);
  {
    auto layer = server();
    EXPECT_EQ(open_all(layer, from_client_.data(full)), full);  // exactly 2^14 + 1
  }
  {
    auto layer = server();
    raw_sealer sealer(GetParam(), client_secret_);
    expect_fault(layer, sealer.seal(testing::content_application_data, full, 1),
                 record_error::record_overflow);
  }
  {
    auto layer = server();
    raw_sealer sealer(GetParam(), client_secret_);
    expect_fault(layer, sealer.seal(testing::content_application_data, pattern(100), 16'300),
                 record_error::record_overflow);  // padding counts
  }
}

// §4.6.1: only a server sends NewSessionTicket; a client ignores them (lines never resume).
TEST_P(RecordRulesTest, ANewSessionTicketIsIgnoredByAClientAndRefusedByAServer) {
  auto c = client();
  EXPECT_EQ(open_all(c, joined({from_server_.new_session_ticket(), from_server_.data(pattern(9))})),
            pattern(9));
  auto s = server();
  expect_fault(s, joined({from_client_.new_session_ticket(), from_client_.data(pattern(9))}),
               record_error::client_session_ticket);
}

// §5.1: zero-length fragments of the handshake type must not be sent.
TEST_P(RecordRulesTest, AnEmptyHandshakeRecordIsRefused) {
  auto s = server();
  expect_fault(s, from_client_.seal(testing::content_handshake, {}),
               record_error::empty_handshake_record);
}

// Handshake messages are taken whole from one record (docs/protocol.md §1).
TEST_P(RecordRulesTest, AKeyUpdateSplitAcrossRecordsIsRefused) {
  const std::uint8_t head[] = {24, 0, 0, 1};
  const std::uint8_t body[] = {0};
  auto s = server();
  expect_fault(s,
               joined({from_client_.seal(testing::content_handshake, head),
                       from_client_.seal(testing::content_handshake, body)}),
               record_error::fragmented_handshake);
}

TEST_P(RecordRulesTest, KeyUpdatesPastTheCapFailTheLine) {
  const no_data_limits limits{.key_updates = 32, .others = 1000, .interval = std::chrono::hours(1)};
  std::vector<std::uint8_t> wire;
  for (int i = 0; i < 32; ++i) {
    const auto r = from_client_.key_update();
    wire.insert(wire.end(), r.begin(), r.end());
  }
  const auto data = from_client_.data(pattern(20));
  wire.insert(wire.end(), data.begin(), data.end());
  auto s = server(limits);
  EXPECT_EQ(open_all(s, wire), pattern(20));  // 32 followed
  expect_fault(s, joined({from_client_.key_update(), from_client_.data(pattern(20))}),
               record_error::key_update_flood);
}

// user_canceled alerts, empty records and tickets (to a client) share one cap; close_notify and
// records with bytes count against none.
TEST_P(RecordRulesTest, OtherRecordsWithoutDataPastTheCapFailTheLine) {
  const no_data_limits limits{.key_updates = 1000, .others = 63, .interval = std::chrono::hours(1)};
  std::vector<std::uint8_t> wire;
  for (int i = 0; i < 21; ++i) {
    for (const auto& r : {from_server_.user_canceled(), from_server_.empty_data(),
                          from_server_.new_session_ticket(), from_server_.data(pattern(3))}) {
      wire.insert(wire.end(), r.begin(), r.end());
    }
  }
  auto c = client(limits);
  EXPECT_EQ(open_all(c, wire).size(), 21u * 3);
  expect_fault(c, joined({from_server_.empty_data(), from_server_.data(pattern(3))}),
               record_error::no_data_flood);
}

// One read() opens at most max_no_data_per_read records without bytes and says how many it
// opened, so that its caller can yield between them; the records left stay readable.
TEST_P(RecordRulesTest, OneReadOpensABoundedNumberOfRecordsWithoutData) {
  static_assert(record_layer::max_no_data_per_read == 16);
  std::vector<std::uint8_t> wire;
  for (int i = 0; i < 20; ++i) {
    for (const auto& r : {from_client_.empty_data(), from_client_.key_update()}) {
      wire.insert(wire.end(), r.begin(), r.end());
    }
  }
  const auto data = from_client_.data(pattern(100));
  wire.insert(wire.end(), data.begin(), data.end());
  auto s = server();
  const auto space = s.receive_space();
  ASSERT_GE(space.size(), wire.size());
  std::copy(wire.begin(), wire.end(), space.begin());
  s.received(wire.size());
  std::vector<std::uint8_t> got(1000);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(s.read(got), 0u) << i;
    EXPECT_EQ(s.take_no_data_records(), 16u) << i;
    EXPECT_EQ(s.take_no_data_records(), 0u);
    EXPECT_TRUE(s.readable()) << i;  // a reader must come back without waiting for the socket
  }
  EXPECT_EQ(s.read(got), 100u);
  EXPECT_EQ(s.take_no_data_records(), 8u);
  EXPECT_TRUE(std::equal(got.begin(), got.begin() + 100, pattern(100).begin()));
}

INSTANTIATE_TEST_SUITE_P(Suites, RecordRulesTest,
                         ::testing::Values(suite::aes_128_gcm_sha256, suite::aes_256_gcm_sha384,
                                           suite::chacha20_poly1305_sha256));

TEST(RecordError, EveryFaultHasItsOwnName) {
  std::set<std::string> names;
  for (int e = static_cast<int>(record_error::bad_record_mac);
       e <= static_cast<int>(record_error::crypto_failure); ++e) {
    const std::string name = make_error_code(static_cast<record_error>(e)).message();
    EXPECT_TRUE(names.insert(name).second) << name;
  }
  EXPECT_EQ(names.size(), 18u);
  EXPECT_STREQ(record_category().name(), "tls13 record");
}

// ---- records OpenSSL carried under the application keys (traffic_secrets::fresh) ----------

struct ssl_free_deleter {
  void operator()(SSL* s) const { SSL_free(s); }
};

// A client and a server SSL over a BIO pair, each reporting into its own traffic_secrets.
class OpensslRecordCountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "sb-records-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    const server_identity id = ensure_self_signed(dir_);
    server_ctx_ = make_server_context(id);
    client_ctx_ = make_client_context({.fingerprint = fingerprint_of_cert_file(id.cert_file)});
  }
  void TearDown() override {
    client_.reset();  // before the sinks they point at
    server_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  void handshake() {
    client_.reset(SSL_new(client_ctx_.get()));
    server_.reset(SSL_new(server_ctx_.get()));
    BIO* c = nullptr;
    BIO* s = nullptr;
    ASSERT_EQ(BIO_new_bio_pair(&c, 0, &s, 0), 1);
    SSL_set_bio(client_.get(), c, c);
    SSL_set_bio(server_.get(), s, s);
    SSL_set_connect_state(client_.get());
    SSL_set_accept_state(server_.get());
    capture_into(client_.get(), &client_sink_);
    capture_into(server_.get(), &server_sink_);
    bool client_done = false;
    bool server_done = false;
    for (int i = 0; i < 20 && !(client_done && server_done); ++i) {
      client_done = client_done || SSL_do_handshake(client_.get()) == 1;
      server_done = server_done || SSL_do_handshake(server_.get()) == 1;
    }
    ASSERT_TRUE(client_done && server_done);
  }

  std::filesystem::path dir_;
  ssl_ctx_ptr server_ctx_;
  ssl_ctx_ptr client_ctx_;
  traffic_secrets client_sink_;
  traffic_secrets server_sink_;
  std::unique_ptr<SSL, ssl_free_deleter> client_;
  std::unique_ptr<SSL, ssl_free_deleter> server_;
};

TEST_F(OpensslRecordCountTest, AHandshakeAloneLeavesTheApplicationKeysFresh) {
  handshake();
  EXPECT_TRUE(client_sink_.complete());
  EXPECT_TRUE(client_sink_.fresh());
  EXPECT_TRUE(server_sink_.fresh());
}

// A server that sends tickets seals them under its first application key during its handshake;
// the client opens them with its first read. Each is counted, and so is every record after.
TEST_F(OpensslRecordCountTest, RecordsUnderTheApplicationKeysAreCountedBothWays) {
  ASSERT_EQ(SSL_CTX_set_num_tickets(server_ctx_.get(), 2), 1);
  handshake();
  EXPECT_EQ(server_sink_.records_written, 2u);
  EXPECT_FALSE(server_sink_.fresh());
  EXPECT_TRUE(client_sink_.fresh());  // written, not yet read
  std::uint8_t buf[16];
  std::size_t n = 0;
  EXPECT_EQ(SSL_read_ex(client_.get(), buf, sizeof buf, &n), 0);  // tickets only: wants more
  EXPECT_EQ(client_sink_.records_read, 2u);
  EXPECT_FALSE(client_sink_.fresh());
  ASSERT_EQ(SSL_write_ex(client_.get(), "hello", 5, &n), 1);
  EXPECT_EQ(client_sink_.records_written, 1u);
  ASSERT_EQ(SSL_read_ex(server_.get(), buf, sizeof buf, &n), 1);
  EXPECT_EQ(server_sink_.records_read, 1u);
}

}  // namespace
}  // namespace switchboard::net::tls13
