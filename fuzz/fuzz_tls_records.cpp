// tls13::record_layer (net/tls_records.hpp) against an independent TLS 1.3 record protection
// written here from RFC 8446 (§5.2 record format, §5.3 per-record nonce, §7.1 HKDF-Expand-Label
// with OpenSSL's one-shot HMAC, §7.2-7.3 traffic keys and their updates, AEAD through EVP).
//
// The first input byte picks a mode:
//  0 raw: the bytes are ciphertext from the peer, fed in pieces and read in pieces of
//    fuzzer-chosen sizes. Only faults of the documented kind (system_error) may come out, and the
//    reading invariants hold: read() returning 0 leaves nothing readable, receive_space() leaves
//    room for a whole record.
//  1 model: a sequence of records (application data of any size and padding, KeyUpdate,
//    NewSessionTicket, alerts, unknown inner types, forged records, a bad header), sealed by the
//    reference, then mutated (one bit flipped in one record, the stream cut short), fed and read
//    in pieces. The model says what each record must do: deliver its plaintext, be ignored, end
//    the stream (close_notify), fail, or (a cut record) wait for more. The layer must deliver
//    exactly the plaintext of the records before the first one that does not deliver or get
//    ignored, in order, then do what that record must do. A fault is final: readable() stays
//    true and every later read() throws it again.
//  2 seal: the layer seals fuzzer-chosen plaintext, in buffers and output rooms of fuzzer-chosen
//    sizes, with a small key_update_after and possibly a KeyUpdate request from the peer; the
//    reference opens every record and must find the plaintext again, in records of at most 2^14
//    bytes, a KeyUpdate where one is due and never more records under one key than allowed.
#include <fuzzer/FuzzedDataProvider.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <boost/system/system_error.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "check.hpp"
#include "net/tls_records.hpp"

namespace tls = switchboard::net::tls13;
using bytes = std::vector<std::uint8_t>;

namespace {

constexpr std::uint8_t type_alert = 21;
constexpr std::uint8_t type_handshake = 22;
constexpr std::uint8_t type_application_data = 23;
constexpr std::size_t max_inner_plaintext = tls::max_plaintext + 1;  // content + type (+ padding)

std::size_t hash_size(tls::suite s) {
  return s == tls::suite::aes_256_gcm_sha384 ? 48 : 32;
}

// One direction of a TLS 1.3 connection as RFC 8446 describes it; shares no code with the layer.
class reference_keys {
 public:
  reference_keys(tls::suite s, bytes secret) : suite_(s), secret_(std::move(secret)) { derive(); }

  // §7.2: application_traffic_secret_N+1 = HKDF-Expand-Label(secret_N, "traffic upd", "",
  // Hash.length)
  void update() {
    secret_ = expand_label(secret_, "traffic upd", secret_.size());
    derive();
  }

  // TLSCiphertext of TLSInnerPlaintext{content, type, zeros[padding]} (§5.2), nonce of §5.3.
  bytes seal(std::uint8_t inner_type, std::span<const std::uint8_t> content, std::size_t padding) {
    bytes inner(content.begin(), content.end());
    inner.push_back(inner_type);
    inner.resize(inner.size() + padding, 0);
    const std::size_t length = inner.size() + tls::tag_size;
    bytes rec = {type_application_data, 0x03, 0x03, static_cast<std::uint8_t>(length >> 8),
                 static_cast<std::uint8_t>(length)};
    rec.resize(tls::header_size + length);
    const auto nonce = next_nonce();
    cipher_ctx ctx;
    int len = 0;
    bool ok = EVP_EncryptInit_ex(ctx.get(), cipher(), nullptr, key_.data(), nonce.data()) == 1 &&
              EVP_EncryptUpdate(ctx.get(), nullptr, &len, rec.data(), tls::header_size) == 1 &&
              EVP_EncryptUpdate(ctx.get(), rec.data() + tls::header_size, &len, inner.data(),
                                static_cast<int>(inner.size())) == 1;
    int tail = 0;
    ok = ok && EVP_EncryptFinal_ex(ctx.get(), rec.data() + tls::header_size + len, &tail) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, tls::tag_size,
                             rec.data() + tls::header_size + inner.size()) == 1;
    FUZZ_CHECK(ok, "reference seal failed");
    return rec;
  }

  // The inner plaintext (with type and padding) of one whole record, or nullopt if it does not
  // authenticate.
  std::optional<bytes> open(std::span<const std::uint8_t> rec) {
    if (rec.size() < tls::header_size + tls::tag_size) return std::nullopt;
    const std::size_t inner_size = rec.size() - tls::header_size - tls::tag_size;
    bytes inner(inner_size + 1);
    const auto nonce = next_nonce();
    cipher_ctx ctx;
    int len = 0;
    int tail = 0;
    bytes tag(rec.end() - tls::tag_size, rec.end());
    const bool ok =
        EVP_DecryptInit_ex(ctx.get(), cipher(), nullptr, key_.data(), nonce.data()) == 1 &&
        EVP_DecryptUpdate(ctx.get(), nullptr, &len, rec.data(), tls::header_size) == 1 &&
        EVP_DecryptUpdate(ctx.get(), inner.data(), &len, rec.data() + tls::header_size,
                          static_cast<int>(inner_size)) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, tls::tag_size, tag.data()) == 1 &&
        EVP_DecryptFinal_ex(ctx.get(), inner.data() + len, &tail) == 1;
    if (!ok) return std::nullopt;
    inner.resize(inner_size);
    return inner;
  }

 private:
  struct cipher_ctx {
    EVP_CIPHER_CTX* p = EVP_CIPHER_CTX_new();
    ~cipher_ctx() { EVP_CIPHER_CTX_free(p); }
    EVP_CIPHER_CTX* get() const { return p; }
  };

  const EVP_CIPHER* cipher() const {
    switch (suite_) {
      case tls::suite::aes_128_gcm_sha256:
        return EVP_aes_128_gcm();
      case tls::suite::aes_256_gcm_sha384:
        return EVP_aes_256_gcm();
      case tls::suite::chacha20_poly1305_sha256:
        return EVP_chacha20_poly1305();
    }
    return nullptr;
  }
  const EVP_MD* digest() const {
    return suite_ == tls::suite::aes_256_gcm_sha384 ? EVP_sha384() : EVP_sha256();
  }

  // HKDF-Expand-Label(secret, label, "", length) for length <= Hash.length: one HMAC block,
  // T(1) = HMAC(secret, HkdfLabel || 0x01) (RFC 5869 §2.3).
  bytes expand_label(const bytes& secret, std::string_view label, std::size_t length) const {
    const std::string full = "tls13 " + std::string(label);
    bytes info = {static_cast<std::uint8_t>(length >> 8), static_cast<std::uint8_t>(length),
                  static_cast<std::uint8_t>(full.size())};
    info.insert(info.end(), full.begin(), full.end());
    info.push_back(0);  // empty context
    info.push_back(1);  // HKDF-Expand's block counter
    std::uint8_t out[EVP_MAX_MD_SIZE];
    unsigned out_len = 0;
    FUZZ_CHECK(HMAC(digest(), secret.data(), static_cast<int>(secret.size()), info.data(),
                    info.size(), out, &out_len) != nullptr &&
                   out_len >= length,
               "HMAC failed");
    return bytes(out, out + length);
  }

  void derive() {
    key_ = expand_label(secret_, "key", suite_ == tls::suite::aes_128_gcm_sha256 ? 16 : 32);
    iv_ = expand_label(secret_, "iv", 12);
    sequence_ = 0;
  }

  bytes next_nonce() {
    bytes nonce = iv_;
    for (int i = 0; i < 8; ++i) nonce[11 - i] ^= static_cast<std::uint8_t>(sequence_ >> (8 * i));
    ++sequence_;
    return nonce;
  }

  tls::suite suite_;
  bytes secret_;
  bytes key_;
  bytes iv_;
  std::uint64_t sequence_ = 0;
};

tls::suite pick_suite(FuzzedDataProvider& in) {
  return static_cast<tls::suite>(in.ConsumeIntegralInRange<int>(0, 2));
}

bytes make_secret(tls::suite s, std::uint8_t fill) {
  return bytes(hash_size(s), fill);
}

// Read and feed sizes cycled through while reading; small pieces split headers and records.
struct pieces {
  std::vector<std::size_t> reads;
  std::vector<std::size_t> feeds;
  explicit pieces(FuzzedDataProvider& in) {
    for (int i = 0; i < 4; ++i) {
      reads.push_back(in.ConsumeIntegralInRange<std::size_t>(1, 3 * tls::max_plaintext));
      feeds.push_back(in.ConsumeIntegralInRange<std::size_t>(1, 70'000));
    }
  }
};

struct read_result {
  bytes got;
  bool threw = false;
  std::size_t fed = 0;
};

// Feeds `wire` to the layer and reads until it faults, closes, or has read everything fed.
read_result drive(tls::record_layer& layer, const bytes& wire, const pieces& p) {
  read_result r;
  bytes buf;
  // Every turn reads at least one byte, feeds at least one byte, or ends.
  const std::size_t max_turns = 2 * wire.size() + 16;
  for (std::size_t turn = 0;; ++turn) {
    FUZZ_CHECK(turn < max_turns, "reading makes no progress");
    buf.resize(p.reads[turn % p.reads.size()]);
    std::size_t n = 0;
    try {
      n = layer.read(buf);
    } catch (const boost::system::system_error&) {
      r.threw = true;
      break;
    }
    FUZZ_CHECK(n <= buf.size(), "read past the buffer");
    r.got.insert(r.got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    if (n > 0) continue;
    if (layer.closed()) break;
    // One read opens at most max_no_data_per_read records without bytes; the rest stay readable.
    if (layer.readable()) continue;
    if (r.fed == wire.size()) break;
    const auto space = layer.receive_space();
    FUZZ_CHECK(
        space.size() >= tls::header_size + tls::max_ciphertext || layer.holds_partial_record(),
        "no room for a whole record");
    FUZZ_CHECK(!space.empty(), "no receive space");
    const std::size_t take =
        std::min({p.feeds[turn % p.feeds.size()], space.size(), wire.size() - r.fed});
    std::memcpy(space.data(), wire.data() + r.fed, take);
    layer.received(take);
    r.fed += take;
  }
  if (r.threw) {
    // A fault is final: readable (a reader comes back for it) and thrown again, never bytes.
    FUZZ_CHECK(layer.readable(), "a fault is not readable");
    buf.resize(tls::max_plaintext);
    bool again = false;
    try {
      layer.read(buf);
    } catch (const boost::system::system_error&) {
      again = true;
    }
    FUZZ_CHECK(again, "a fault was not thrown again");
  }
  return r;
}

// The model's modes count no records without bytes: no cap applies. A client ignores tickets.
const tls::no_data_limits unlimited{std::numeric_limits<std::uint32_t>::max(),
                                    std::numeric_limits<std::uint32_t>::max(),
                                    std::chrono::hours(1)};

// ---- mode 0 ----------------------------------------------------------------------------------

void raw(FuzzedDataProvider& in) {
  const tls::suite s = pick_suite(in);
  const pieces p(in);
  const bytes rs = make_secret(s, 0x11);
  const bytes ws = make_secret(s, 0x22);
  // The relay's side, with its caps on records without application bytes.
  tls::record_layer layer(s, tls::role::server, rs, ws);
  const bytes wire = in.ConsumeRemainingBytes<std::uint8_t>();
  drive(layer, wire, p);
}

// ---- mode 1 ----------------------------------------------------------------------------------

enum class outcome { delivers, ignored, closes, fails, fails_or_waits, waits };

struct planned {
  bytes wire;
  bytes plain;  // what it delivers (application data)
  outcome must;
  bool header_ok = true;  // a cut record with a bad header fails once its 5 header bytes are in
  bool header_flipped = false;  // a flipped header bit may also repair a bad header
};

bytes content_of(FuzzedDataProvider& in, std::size_t n) {
  bytes b = in.ConsumeBytes<std::uint8_t>(n);
  for (std::size_t i = b.size(); i < n; ++i) b.push_back(static_cast<std::uint8_t>(i * 7 + 1));
  return b;
}

planned plan_record(FuzzedDataProvider& in, reference_keys& peer) {
  planned r;
  switch (in.ConsumeIntegralInRange<int>(0, 11)) {
    case 0:
    case 1:
    case 2:
    case 3: {  // application data, within or beyond the limit of §5.4
      const bool big = in.ConsumeBool();
      const std::size_t n =
          in.ConsumeIntegralInRange<std::size_t>(0, big ? tls::max_plaintext + 40 : 300);
      const std::size_t padding =
          in.ConsumeBool() ? in.ConsumeIntegralInRange<std::size_t>(0, 300) : 0;
      r.plain = content_of(in, n);
      r.wire = peer.seal(type_application_data, r.plain, padding);
      r.must = n + 1 + padding <= max_inner_plaintext ? outcome::delivers : outcome::fails;
      if (r.must == outcome::fails) r.plain.clear();
      break;
    }
    case 4: {  // KeyUpdate (§4.6.3): request_update 0 or 1; anything else, or more after it, fails
      const std::uint8_t request = in.ConsumeIntegralInRange<std::uint8_t>(0, 2);
      bytes body = {24, 0, 0, 1, request};
      const bool trailing = in.ConsumeIntegralInRange<int>(0, 7) == 0;
      if (trailing) body.insert(body.end(), {4, 0, 0, 0});
      r.wire = peer.seal(type_handshake, body, in.ConsumeIntegralInRange<std::size_t>(0, 3));
      r.must = request <= 1 && !trailing ? outcome::ignored : outcome::fails;
      if (r.must == outcome::ignored) peer.update();
      break;
    }
    case 5: {  // NewSessionTicket(s), possibly followed by a KeyUpdate in the same record
      bytes body;
      const int tickets = in.ConsumeIntegralInRange<int>(1, 3);
      for (int i = 0; i < tickets; ++i) {
        const std::size_t n = in.ConsumeIntegralInRange<std::size_t>(0, 40);
        body.insert(body.end(), {4, 0, 0, static_cast<std::uint8_t>(n)});
        const bytes t = content_of(in, n);
        body.insert(body.end(), t.begin(), t.end());
      }
      const bool update = in.ConsumeBool();
      if (update) body.insert(body.end(), {24, 0, 0, 1, 0});
      // A message that claims more than the record holds (split across records) is refused.
      const bool split = in.ConsumeIntegralInRange<int>(0, 7) == 0;
      if (split) body.insert(body.end(), {4, 0, 0, 9, 1, 2});
      r.wire = peer.seal(type_handshake, body, 0);
      r.must = split ? outcome::fails : outcome::ignored;
      if (update && !split) peer.update();
      break;
    }
    case 6: {  // alerts (§6): close_notify ends the stream, user_canceled is ignored
      const std::uint8_t level = in.ConsumeBool() ? 1 : 2;
      const std::uint8_t desc = in.PickValueInArray<std::uint8_t>({0, 90, 10, 20, 40, 80});
      bytes body = {level, desc};
      const bool malformed = in.ConsumeIntegralInRange<int>(0, 5) == 0;
      if (malformed) body.push_back(0xAA);
      r.wire = peer.seal(type_alert, body, in.ConsumeIntegralInRange<std::size_t>(0, 2));
      r.must = malformed    ? outcome::fails
               : desc == 0  ? outcome::closes
               : desc == 90 ? outcome::ignored
                            : outcome::fails;
      break;
    }
    case 7: {  // an inner content type other than alert, handshake, application data
      const std::uint8_t type = in.PickValueInArray<std::uint8_t>({20, 24, 1, 255});
      r.wire = peer.seal(type, content_of(in, in.ConsumeIntegralInRange<std::size_t>(0, 20)), 0);
      r.must = outcome::fails;
      break;
    }
    case 8: {  // no content type at all: the inner plaintext is all zeros
      const bytes zeros(in.ConsumeIntegralInRange<std::size_t>(0, 20), 0);
      r.wire = peer.seal(0, zeros, 0);
      r.must = outcome::fails;
      break;
    }
    case 9: {  // a forged record: a good header, a body that was never sealed
      const std::size_t n = in.ConsumeIntegralInRange<std::size_t>(tls::tag_size + 1, 400);
      r.wire = {type_application_data, 3, 3, static_cast<std::uint8_t>(n >> 8),
                static_cast<std::uint8_t>(n)};
      const bytes body = content_of(in, n);
      r.wire.insert(r.wire.end(), body.begin(), body.end());
      r.must = outcome::fails;
      peer.seal(type_application_data, {}, 0);  // the sequence number it took
      break;
    }
    case 10: {  // a bad header: outer type, version, or a length out of range
      r.wire = {type_application_data, 3, 3, 0, 40};
      switch (in.ConsumeIntegralInRange<int>(0, 3)) {
        case 0:
          r.wire[0] = in.PickValueInArray<std::uint8_t>({20, 21, 22, 24, 0});
          break;
        case 1:
          r.wire[2] = 1;
          break;
        case 2:
          r.wire[3] = 0x41;  // 16640 + 1 + ...
          r.wire[4] = 0x01;
          break;
        case 3:
          r.wire[4] = static_cast<std::uint8_t>(in.ConsumeIntegralInRange<int>(0, 16));
          break;
      }
      r.wire.resize(r.wire.size() + 40, 0x5A);
      r.must = outcome::fails;
      r.header_ok = false;
      break;
    }
    default: {  // a record sealed for the next sequence number (a lost record): fails
      peer.seal(type_application_data, {}, 0);
      r.wire = peer.seal(type_application_data, content_of(in, 5), 0);
      r.must = outcome::fails;
      break;
    }
  }
  return r;
}

void model(FuzzedDataProvider& in) {
  const tls::suite s = pick_suite(in);
  bytes rs = in.ConsumeBytes<std::uint8_t>(hash_size(s));
  rs.resize(hash_size(s), 0x33);
  const bytes ws = make_secret(s, 0x44);
  tls::record_layer layer(s, tls::role::client, rs, ws, tls::default_key_update_after, unlimited);
  reference_keys peer(s, rs);
  const pieces p(in);

  std::vector<planned> records;
  const int count = in.ConsumeIntegralInRange<int>(1, 24);
  for (int i = 0; i < count && in.remaining_bytes() > 0; ++i) {
    records.push_back(plan_record(in, peer));
  }
  if (records.empty()) return;
  // Mutations: one bit of one record, and/or the stream cut inside the last record.
  if (in.ConsumeBool()) {
    planned& r = records[in.ConsumeIntegralInRange<std::size_t>(0, records.size() - 1)];
    const std::size_t at = in.ConsumeIntegralInRange<std::size_t>(0, r.wire.size() - 1);
    r.wire[at] ^= static_cast<std::uint8_t>(1u << in.ConsumeIntegralInRange<int>(0, 7));
    // A changed length may make the record swallow what follows and wait for more bytes.
    r.must = at == 3 || at == 4 ? outcome::fails_or_waits : outcome::fails;
    r.header_flipped = at < tls::header_size;
    r.plain.clear();
  }
  if (in.ConsumeBool()) {
    planned& r = records.back();
    const std::size_t keep = in.ConsumeIntegralInRange<std::size_t>(0, r.wire.size() - 1);
    r.wire.resize(keep);
    if (keep == 0) {
      r.must = outcome::ignored;  // nothing of it is sent
    } else if (keep >= tls::header_size && r.header_flipped) {
      r.must = outcome::fails_or_waits;
    } else if (r.must != outcome::fails_or_waits) {
      r.must = !r.header_ok && keep >= tls::header_size ? outcome::fails : outcome::waits;
    }
    r.plain.clear();
  }

  bytes wire;
  bytes expected;
  std::optional<outcome> end;  // what the first record that neither delivers nor is ignored does
  for (const planned& r : records) {
    wire.insert(wire.end(), r.wire.begin(), r.wire.end());
    if (end) continue;
    if (r.must == outcome::delivers) {
      expected.insert(expected.end(), r.plain.begin(), r.plain.end());
    } else if (r.must != outcome::ignored) {
      end = r.must;
    }
  }

  const read_result got = drive(layer, wire, p);
  if (std::getenv("SB_FUZZ_DEBUG") != nullptr) {  // explains a failing input when rerun
    for (const planned& r : records) {
      std::fprintf(stderr, "record: %zu bytes, outcome %d, plaintext %zu\n", r.wire.size(),
                   static_cast<int>(r.must), r.plain.size());
    }
    std::fprintf(stderr, "expected %zu bytes, got %zu, threw %d, closed %d, partial %d\n",
                 expected.size(), got.got.size(), got.threw, layer.closed(),
                 layer.holds_partial_record());
  }
  FUZZ_CHECK(got.got == expected, "delivered bytes differ from the records' plaintext");
  switch (end.value_or(outcome::delivers)) {
    case outcome::delivers:
    case outcome::ignored:
      FUZZ_CHECK(!got.threw && !layer.closed() && !layer.holds_partial_record(),
                 "valid records did not read cleanly");
      break;
    case outcome::closes:
      FUZZ_CHECK(!got.threw && layer.closed(), "close_notify did not end the stream");
      break;
    case outcome::fails:
      FUZZ_CHECK(got.threw, "a bad record was not refused");
      break;
    case outcome::fails_or_waits:
      FUZZ_CHECK(got.threw || layer.holds_partial_record(),
                 "a record with a changed length was neither refused nor waited for");
      break;
    case outcome::waits:
      FUZZ_CHECK(!got.threw && layer.holds_partial_record(), "a cut record was not waited for");
      break;
  }
}

// ---- mode 2 ----------------------------------------------------------------------------------

void seal(FuzzedDataProvider& in) {
  const tls::suite s = pick_suite(in);
  const bytes rs = make_secret(s, 0x55);
  bytes ws = in.ConsumeBytes<std::uint8_t>(hash_size(s));
  ws.resize(hash_size(s), 0x66);
  const std::uint64_t update_after = in.ConsumeIntegralInRange<std::uint64_t>(1, 9);
  tls::record_layer layer(s, tls::role::client, rs, ws, update_after, unlimited);
  reference_keys reader(s, ws);

  // The peer asks for a KeyUpdate: the next records we send must start with one.
  const bool requested = in.ConsumeBool();
  if (requested) {
    reference_keys peer(s, rs);
    const bytes body = {24, 0, 0, 1, 1};
    const bytes rec = peer.seal(type_handshake, body, 0);
    const auto space = layer.receive_space();
    std::memcpy(space.data(), rec.data(), rec.size());
    layer.received(rec.size());
    bytes buf(16);
    FUZZ_CHECK(layer.read(buf) == 0, "a KeyUpdate delivered bytes");
  }

  bytes plain;
  std::vector<bytes> parts(in.ConsumeIntegralInRange<std::size_t>(0, 5));
  for (bytes& part : parts) {
    const std::size_t n = in.ConsumeIntegralInRange<std::size_t>(0, 40'000);
    part = content_of(in, n);
    plain.insert(plain.end(), part.begin(), part.end());
  }
  std::vector<boost::asio::const_buffer> bufs;
  for (const bytes& part : parts) bufs.emplace_back(part.data(), part.size());
  std::vector<std::size_t> rooms;
  for (int i = 0; i < 3; ++i) {
    rooms.push_back(
        in.ConsumeIntegralInRange<std::size_t>(tls::record_layer::min_seal_room, 80'000));
  }

  bytes wire;
  std::size_t done = 0;
  for (std::size_t turn = 0; done < plain.size(); ++turn) {
    FUZZ_CHECK(turn <= 2 * plain.size(), "sealing makes no progress");
    bytes out(rooms[turn % rooms.size()]);
    const auto r = layer.seal(bufs, done, out);
    FUZZ_CHECK(r.written <= out.size(), "sealed past the buffer");
    FUZZ_CHECK(r.consumed <= plain.size() - done, "sealing consumed more than it was given");
    // A call may send only a due KeyUpdate when the room left is small; the next one goes on.
    FUZZ_CHECK(r.consumed > 0 || r.written > 0, "sealing did nothing");
    done += r.consumed;
    wire.insert(wire.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>(r.written));
  }

  // Open every record with the reference.
  bytes opened;
  std::uint64_t under_key = 0;  // application records under the current key
  bool first = true;
  std::span<const std::uint8_t> rest(wire);
  while (!rest.empty()) {
    FUZZ_CHECK(rest.size() >= tls::header_size, "a cut record header");
    FUZZ_CHECK(rest[0] == type_application_data && rest[1] == 3 && rest[2] == 3,
               "bad record header");
    const std::size_t length = std::size_t{rest[3]} << 8 | rest[4];
    FUZZ_CHECK(length <= max_inner_plaintext + tls::tag_size, "record over the limit");
    FUZZ_CHECK(rest.size() >= tls::header_size + length, "a cut record");
    const auto inner = reader.open(rest.first(tls::header_size + length));
    FUZZ_CHECK(inner.has_value(), "a sealed record does not authenticate");
    FUZZ_CHECK(!inner->empty() && inner->back() != 0, "the layer sent padding or no type");
    const std::uint8_t type = inner->back();
    if (type == type_application_data) {
      FUZZ_CHECK(!(first && requested), "the requested KeyUpdate did not come first");
      FUZZ_CHECK(under_key < update_after, "more records under one key than allowed");
      opened.insert(opened.end(), inner->begin(), inner->end() - 1);
      ++under_key;
    } else {
      const bytes update = {24, 0, 0, 1, 0, type_handshake};
      FUZZ_CHECK(*inner == update, "the layer sent something other than KeyUpdate(0)");
      reader.update();
      under_key = 0;
    }
    first = false;
    rest = rest.subspan(tls::header_size + length);
  }
  FUZZ_CHECK(opened == plain, "sealed records do not hold the plaintext");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  FuzzedDataProvider in(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      raw(in);
      break;
    case 1:
      model(in);
      break;
    default:
      seal(in);
      break;
  }
  return 0;
}
