#include "net/tls_records.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace switchboard::net::tls13 {

namespace {

constexpr std::uint8_t type_alert = 21;
constexpr std::uint8_t type_handshake = 22;
constexpr std::uint8_t type_application_data = 23;
constexpr std::uint8_t handshake_finished = 20;
constexpr std::uint8_t handshake_new_session_ticket = 4;
constexpr std::uint8_t handshake_key_update = 24;
constexpr std::uint8_t alert_close_notify = 0;
constexpr std::uint8_t alert_user_canceled = 90;

[[noreturn]] void fail(record_error e, const std::string& what) {
  throw boost::system::system_error(make_error_code(e), "TLS record: " + what);
}

class record_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "tls13 record"; }
  std::string message(int e) const override {
    switch (static_cast<record_error>(e)) {
      case record_error::bad_record_mac:
        return "bad_record_mac: a TLS record failed authentication";
      case record_error::record_overflow:
        return "record_overflow: a TLS record over the length limit";
      case record_error::unexpected_outer_type:
        return "unexpected_message: an outer content type other than application_data";
      case record_error::bad_legacy_version:
        return "decode_error: bad legacy record version";
      case record_error::record_too_short:
        return "decode_error: a TLS record too short for its tag";
      case record_error::no_content_type:
        return "unexpected_message: a TLS record without a content type";
      case record_error::unexpected_content_type:
        return "unexpected_message: unknown inner content type";
      case record_error::malformed_alert:
        return "decode_error: malformed alert";
      case record_error::alert_received:
        return "alert from the peer";
      case record_error::empty_handshake_record:
        return "unexpected_message: a handshake record of no bytes";
      case record_error::fragmented_handshake:
        return "unexpected_message: a handshake message split across records";
      case record_error::malformed_handshake:
        return "decode_error: truncated handshake message";
      case record_error::malformed_key_update:
        return "decode_error: malformed KeyUpdate";
      case record_error::unexpected_handshake:
        return "unexpected_message: a handshake message not allowed after the handshake";
      case record_error::client_session_ticket:
        return "unexpected_message: a NewSessionTicket from a client";
      case record_error::key_update_flood:
        return "too many KeyUpdates per interval";
      case record_error::no_data_flood:
        return "too many TLS records without application data per interval";
      case record_error::crypto_failure:
        return "TLS key derivation or AEAD setup failed";
    }
    return "unknown TLS record error";
  }
};

struct suite_traits {
  const char* digest;
  std::uint8_t hash_size;
  std::uint8_t key_size;
  const EVP_CIPHER* (*cipher)();
};

suite_traits traits(suite s) {
  switch (s) {
    case suite::aes_128_gcm_sha256:
      return {"SHA256", 32, 16, EVP_aes_128_gcm};
    case suite::aes_256_gcm_sha384:
      return {"SHA384", 48, 32, EVP_aes_256_gcm};
    case suite::chacha20_poly1305_sha256:
      return {"SHA256", 32, 32, EVP_chacha20_poly1305};
  }
  throw std::logic_error("tls13: unknown suite");
}

// HKDF-Expand-Label(secret, label, "", length) of RFC 8446 §7.1, with OpenSSL's HKDF.
void expand_label(suite s, std::span<const std::uint8_t> secret, std::string_view label,
                  std::span<std::uint8_t> out) {
  // HkdfLabel: uint16 length, opaque label<7..255> = "tls13 " + label, opaque context<0..255>.
  std::array<std::uint8_t, 32> info{};
  const std::string_view prefix = "tls13 ";
  std::size_t n = 0;
  info[n++] = static_cast<std::uint8_t>(out.size() >> 8);
  info[n++] = static_cast<std::uint8_t>(out.size());
  info[n++] = static_cast<std::uint8_t>(prefix.size() + label.size());
  n = std::copy(prefix.begin(), prefix.end(), info.begin() + n) - info.begin();
  n = std::copy(label.begin(), label.end(), info.begin() + n) - info.begin();
  info[n++] = 0;  // empty context

  static EVP_KDF* const hkdf = EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_HKDF, nullptr);
  if (hkdf == nullptr) fail(record_error::crypto_failure, "HKDF is not available");
  const std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)> ctx(EVP_KDF_CTX_new(hkdf),
                                                                      &EVP_KDF_CTX_free);
  int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(traits(s).digest),
                                       0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                        const_cast<std::uint8_t*>(secret.data()), secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), n),
      OSSL_PARAM_construct_end()};
  if (!ctx || EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
    fail(record_error::crypto_failure, "HKDF-Expand-Label failed");
  }
}

// AEAD contexts are per thread, one per suite and direction, and never per line: a line holds
// only its keys. A context is re-keyed when it is next used with another line's key (key_id),
// which costs an AES key schedule (or nothing for ChaCha20) once per batch of records.
class aead_contexts {
 public:
  static EVP_CIPHER_CTX* get(const traffic_keys& k, bool encrypt) {
    thread_local aead_contexts per_thread;
    return per_thread.keyed(k, encrypt);
  }

 private:
  struct slot {
    std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx{nullptr,
                                                                        &EVP_CIPHER_CTX_free};
    std::uint64_t key_id = 0;
  };

  EVP_CIPHER_CTX* keyed(const traffic_keys& k, bool encrypt) {
    slot& s = slots_[static_cast<std::size_t>(k.cipher_suite()) * 2 + (encrypt ? 1 : 0)];
    const int enc = encrypt ? 1 : 0;
    if (!s.ctx) {
      s.ctx.reset(EVP_CIPHER_CTX_new());
      if (!s.ctx || EVP_CipherInit_ex(s.ctx.get(), traits(k.cipher_suite()).cipher(), nullptr,
                                      nullptr, nullptr, enc) != 1) {
        s.ctx.reset();
        fail(record_error::crypto_failure, "cannot make an AEAD context");
      }
    }
    if (s.key_id != k.key_id()) {
      if (EVP_CipherInit_ex(s.ctx.get(), nullptr, nullptr, k.key().data(), nullptr, enc) != 1) {
        s.key_id = 0;
        fail(record_error::crypto_failure, "cannot set the AEAD key");
      }
      s.key_id = k.key_id();
    }
    return s.ctx.get();
  }

  std::array<slot, 6> slots_;
};

std::uint64_t new_key_id() {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

int secrets_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// Copies the hex secret into `to`; returns its size in bytes, or 0 if it is malformed.
std::uint8_t parse_secret(std::string_view hex, std::array<std::uint8_t, 48>& to) {
  if (hex.empty() || hex.size() % 2 != 0 || hex.size() / 2 > to.size()) return 0;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = OPENSSL_hexchar2int(static_cast<unsigned char>(hex[i]));
    const int lo = OPENSSL_hexchar2int(static_cast<unsigned char>(hex[i + 1]));
    if (hi < 0 || lo < 0) return 0;
    to[i / 2] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return static_cast<std::uint8_t>(hex.size() / 2);
}

// The message callback: counts the records OpenSSL seals after our Finished and opens after the
// peer's, which are those under the application traffic keys. A record's header is reported
// before the handshake messages it carries, so the record of a Finished itself is not counted.
void on_message(int write_p, int /*version*/, int content_type, const void* buf, std::size_t len,
                SSL* ssl, void* /*arg*/) {
  auto* sink = static_cast<traffic_secrets*>(SSL_get_ex_data(ssl, secrets_index()));
  if (sink == nullptr) return;
  const bool written = write_p != 0;
  if (content_type == SSL3_RT_HEADER) {
    if (written && sink->finished_written) ++sink->records_written;
    if (!written && sink->finished_read) ++sink->records_read;
  } else if (content_type == SSL3_RT_HANDSHAKE && len > 0 &&
             *static_cast<const std::uint8_t*>(buf) == handshake_finished) {
    (written ? sink->finished_written : sink->finished_read) = true;
  }
}

// The key-log callback: "<LABEL> <client random hex> <secret hex>".
void on_key_log(const SSL* ssl, const char* line) {
  auto* sink = static_cast<traffic_secrets*>(SSL_get_ex_data(ssl, secrets_index()));
  if (sink == nullptr) return;
  const std::string_view text(line);
  const std::size_t first = text.find(' ');
  const std::size_t second = first == std::string_view::npos ? first : text.find(' ', first + 1);
  if (second == std::string_view::npos) return;
  const std::string_view label = text.substr(0, first);
  const std::string_view secret = text.substr(second + 1);
  if (label == "CLIENT_TRAFFIC_SECRET_0") {
    sink->client_size = parse_secret(secret, sink->client);
  } else if (label == "SERVER_TRAFFIC_SECRET_0") {
    sink->server_size = parse_secret(secret, sink->server);
  }
}

std::uint16_t load16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}

}  // namespace

// ---- errors, suites and secrets -------------------------------------------------------------

const boost::system::error_category& record_category() noexcept {
  static const record_category_impl category;
  return category;
}

std::optional<suite> suite_of(const SSL_CIPHER* cipher) {
  if (cipher == nullptr) return std::nullopt;
  switch (SSL_CIPHER_get_id(cipher)) {
    case TLS1_3_CK_AES_128_GCM_SHA256:
      return suite::aes_128_gcm_sha256;
    case TLS1_3_CK_AES_256_GCM_SHA384:
      return suite::aes_256_gcm_sha384;
    case TLS1_3_CK_CHACHA20_POLY1305_SHA256:
      return suite::chacha20_poly1305_sha256;
    default:
      return std::nullopt;
  }
}

traffic_secrets::~traffic_secrets() {
  OPENSSL_cleanse(client.data(), client.size());
  OPENSSL_cleanse(server.data(), server.size());
}

void capture_secrets(SSL_CTX* ctx) {
  SSL_CTX_set_keylog_callback(ctx, on_key_log);
}
void keep_openssl_records(SSL_CTX* ctx) {
  SSL_CTX_set_keylog_callback(ctx, nullptr);
}

void capture_into(SSL* ssl, traffic_secrets* sink) {
  if (SSL_set_ex_data(ssl, secrets_index(), sink) != 1) {
    fail(record_error::crypto_failure, "SSL_set_ex_data failed");
  }
  SSL_set_msg_callback(ssl, sink == nullptr ? nullptr : on_message);
}

// ---- traffic_keys --------------------------------------------------------------------------

traffic_keys::traffic_keys(suite s, std::span<const std::uint8_t> secret)
    : suite_(s), secret_size_(traits(s).hash_size), key_size_(traits(s).key_size) {
  if (secret.size() != secret_size_) {
    throw std::invalid_argument("tls13: traffic secret of " + std::to_string(secret.size()) +
                                " bytes for a hash of " + std::to_string(secret_size_));
  }
  std::copy(secret.begin(), secret.end(), secret_.begin());
  derive();
}

traffic_keys::~traffic_keys() {
  OPENSSL_cleanse(secret_.data(), secret_.size());
  OPENSSL_cleanse(key_.data(), key_.size());
  OPENSSL_cleanse(iv_.data(), iv_.size());
}

void traffic_keys::derive() {
  const std::span<const std::uint8_t> secret(secret_.data(), secret_size_);
  expand_label(suite_, secret, "key", {key_.data(), key_size_});
  expand_label(suite_, secret, "iv", iv_);
  sequence_ = 0;
  key_id_ = new_key_id();
}

void traffic_keys::update() {
  std::array<std::uint8_t, 48> next{};
  expand_label(suite_, {secret_.data(), secret_size_}, "traffic upd", {next.data(), secret_size_});
  secret_ = next;
  OPENSSL_cleanse(next.data(), next.size());
  derive();
}

std::array<std::uint8_t, 12> traffic_keys::next_nonce() {
  std::array<std::uint8_t, 12> nonce = iv_;
  for (int i = 0; i < 8; ++i) {
    nonce[11 - i] ^= static_cast<std::uint8_t>(sequence_ >> (8 * i));
  }
  ++sequence_;
  return nonce;
}

// ---- record_layer: reading -----------------------------------------------------------------

record_layer::record_layer(suite s, role r, std::span<const std::uint8_t> read_secret,
                           std::span<const std::uint8_t> write_secret,
                           std::uint64_t key_update_after, no_data_limits limits)
    : read_keys_(s, read_secret),
      write_keys_(s, write_secret),
      key_update_after_(std::max<std::uint64_t>(key_update_after, 1)),
      limits_(limits),
      role_(r) {}

std::span<std::uint8_t> record_layer::receive_space() {
  if (!buffer_) buffer_.emplace();
  std::uint8_t* const base = (**buffer_).get();
  if (plain_begin_ == plain_end_ && data_begin_ > 0 &&
      receive_buffer_size - data_end_ < header_size + max_ciphertext) {
    // Move the start of a record to the front so that a whole record fits after it.
    std::memmove(base, base + data_begin_, data_end_ - data_begin_);
    data_end_ -= data_begin_;
    data_begin_ = 0;
    plain_begin_ = plain_end_ = 0;
  }
  return {base + data_end_, receive_buffer_size - data_end_};
}

void record_layer::received(std::size_t n) {
  data_end_ += static_cast<std::uint32_t>(n);
}

std::optional<record_error> record_layer::header_fault() const noexcept {
  const std::uint8_t* h = (**buffer_).get() + data_begin_;
  if (h[0] != type_application_data) return record_error::unexpected_outer_type;
  if (h[1] != 0x03 || h[2] != 0x03) return record_error::bad_legacy_version;
  const std::size_t length = load16(h + 3);
  // §5.2 allows 2^14 + 256 bytes of ciphertext, but §5.4 limits the TLSInnerPlaintext (content,
  // type and padding) to 2^14 + 1 bytes, and every suite here adds exactly tag_size.
  if (length > max_plaintext + 1 + tag_size) return record_error::record_overflow;
  if (length < tag_size + 1) return record_error::record_too_short;
  return std::nullopt;
}

std::size_t record_layer::whole_record() const {
  const std::size_t held = data_end_ - data_begin_;
  if (held < header_size) return 0;
  if (const auto fault = header_fault()) {
    const std::uint8_t* h = (**buffer_).get() + data_begin_;
    fail(*fault, "bad record header (type " + std::to_string(h[0]) + ", length " +
                     std::to_string(load16(h + 3)) + ")");
  }
  const std::size_t size = header_size + load16((**buffer_).get() + data_begin_ + 3);
  return held >= size ? size : 0;
}

bool record_layer::readable() const noexcept {
  if (closed_ || failure_ || plain_end_ > plain_begin_) return true;
  if (!buffer_ || data_end_ - data_begin_ < header_size) return false;
  // A bad header is readable: read() reports it without touching the socket.
  if (header_fault()) return true;
  return data_end_ - data_begin_ >= header_size + load16((**buffer_).get() + data_begin_ + 3);
}

void record_layer::trim() {
  if (buffer_ && plain_begin_ == plain_end_ && data_begin_ == data_end_) {
    buffer_.reset();
    plain_begin_ = plain_end_ = data_begin_ = data_end_ = 0;
  }
}

std::pair<std::uint8_t, std::size_t> record_layer::open(std::size_t size, std::uint8_t* dst) {
  std::uint8_t* const rec = (**buffer_).get() + data_begin_;
  const std::size_t sealed_size = size - header_size - tag_size;
  const auto nonce = read_keys_.next_nonce();
  EVP_CIPHER_CTX* const ctx = aead_contexts::get(read_keys_, false);
  int len = 0;
  int tail = 0;
  if (EVP_CipherInit_ex(ctx, nullptr, nullptr, nullptr, nonce.data(), 0) != 1 ||
      EVP_CipherUpdate(ctx, nullptr, &len, rec, header_size) != 1 ||
      EVP_CipherUpdate(ctx, dst, &len, rec + header_size, static_cast<int>(sealed_size)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, tag_size, rec + size - tag_size) != 1 ||
      EVP_CipherFinal_ex(ctx, dst + len, &tail) != 1) {
    fail(record_error::bad_record_mac, "a record failed authentication");
  }
  data_begin_ += static_cast<std::uint32_t>(size);
  // §5.4: the whole TLSInnerPlaintext (content, type, padding) is at most 2^14 + 1 bytes.
  if (sealed_size > max_plaintext + 1) {
    fail(record_error::record_overflow,
         "inner plaintext of " + std::to_string(sealed_size) + " bytes");
  }
  // TLSInnerPlaintext: content, then the real content type, then zero padding (§5.2).
  std::size_t end = sealed_size;
  while (end > 0 && dst[end - 1] == 0) --end;
  if (end == 0) fail(record_error::no_content_type, "a record of zeros only");
  return {dst[end - 1], end - 1};
}

std::size_t record_layer::read(std::span<std::uint8_t> out) {
  if (failure_) std::rethrow_exception(failure_);
  std::size_t n = 0;
  if (plain_end_ > plain_begin_) {
    n = std::min<std::size_t>(out.size(), plain_end_ - plain_begin_);
    std::memcpy(out.data(), (**buffer_).get() + plain_begin_, n);
    plain_begin_ += static_cast<std::uint32_t>(n);
  }
  const unsigned no_data_before = no_data_records_;
  while (n < out.size() && !closed_ && buffer_ &&
         no_data_records_ - no_data_before < max_no_data_per_read) {
    try {
      const std::optional<std::size_t> got = open_next(out.subspan(n));
      if (!got) break;
      n += *got;
    } catch (const boost::system::system_error&) {
      // The fault is final: every later read reports it again, even when the record that caused
      // it was consumed (an alert, a bad KeyUpdate) and good records follow. What was read
      // before the fault is returned first.
      failure_ = std::current_exception();
      if (n == 0) throw;
      break;
    }
  }
  trim();
  return n;
}

std::optional<std::size_t> record_layer::open_next(std::span<std::uint8_t> out) {
  const std::size_t size = whole_record();
  if (size == 0) return std::nullopt;
  const std::size_t sealed_size = size - header_size - tag_size;
  // Straight into the caller's buffer when the whole inner plaintext fits; in place otherwise.
  const bool direct = out.size() >= sealed_size;
  std::uint8_t* const base = (**buffer_).get();
  std::uint8_t* const dst = direct ? out.data() : base + data_begin_ + header_size;
  const auto [type, length] = open(size, dst);
  if (type != type_application_data) {
    on_control(type, {dst, length});
    return 0;
  }
  if (length == 0) {
    note_no_data(false);  // §5.4 allows application_data records of no bytes
    return 0;
  }
  if (direct) return length;
  const std::size_t take = std::min(out.size(), length);
  std::memcpy(out.data(), dst, take);
  plain_begin_ = static_cast<std::uint32_t>(dst - base + take);
  plain_end_ = static_cast<std::uint32_t>(dst - base + length);
  return take;
}

void record_layer::on_control(std::uint8_t type, std::span<const std::uint8_t> content) {
  if (type == type_alert) {
    if (content.size() != 2) {
      fail(record_error::malformed_alert, "alert of " + std::to_string(content.size()) + " bytes");
    }
    if (content[1] == alert_close_notify) {
      closed_ = true;
    } else if (content[1] == alert_user_canceled) {
      note_no_data(false);
    } else {
      fail(record_error::alert_received, "alert " + std::to_string(content[1]) + " from the peer");
    }
    return;
  }
  if (type != type_handshake) {
    fail(record_error::unexpected_content_type, "content type " + std::to_string(type));
  }
  // §5.1: handshake records are never empty, and this layer takes each message from one record.
  if (content.empty()) fail(record_error::empty_handshake_record, "handshake record of 0 bytes");
  while (!content.empty()) {
    if (content.size() < 4) {
      fail(record_error::malformed_handshake,
           "handshake header cut short at " + std::to_string(content.size()) + " bytes");
    }
    const std::size_t length = std::size_t{content[1]} << 16 | load16(content.data() + 2);
    if (content.size() - 4 < length) {
      fail(record_error::fragmented_handshake,
           "handshake message " + std::to_string(content[0]) + " of " + std::to_string(length) +
               " bytes in a record with " + std::to_string(content.size() - 4));
    }
    if (content[0] == handshake_key_update) {
      // §4.6.3: must be the record's last message; 0 = update_not_requested, 1 = requested.
      if (length != 1 || content.size() != 5 || content[4] > 1) {
        fail(record_error::malformed_key_update,
             "KeyUpdate of " + std::to_string(length) + " bytes");
      }
      note_no_data(true);  // before the key derivation it would cost
      read_keys_.update();
      key_update_due_ = key_update_due_ || content[4] == 1;
      return;
    }
    if (content[0] != handshake_new_session_ticket) {
      fail(record_error::unexpected_handshake, "handshake message " + std::to_string(content[0]));
    }
    if (role_ == role::server) fail(record_error::client_session_ticket, "NewSessionTicket");
    content = content.subspan(4 + length);  // a ticket: lines never resume
  }
  note_no_data(false);
}

void record_layer::note_no_data(bool key_update) {
  ++no_data_records_;
  const auto now = std::chrono::steady_clock::now();
  if (now - window_start_ >= limits_.interval) {
    window_start_ = now;
    key_updates_in_window_ = 0;
    others_in_window_ = 0;
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(limits_.interval).count();
  if (key_update) {
    if (++key_updates_in_window_ > limits_.key_updates) {
      fail(record_error::key_update_flood, "more than " + std::to_string(limits_.key_updates) +
                                               " KeyUpdates in " + std::to_string(ms) + " ms");
    }
  } else if (++others_in_window_ > limits_.others) {
    fail(record_error::no_data_flood, "more than " + std::to_string(limits_.others) +
                                          " records without application data in " +
                                          std::to_string(ms) + " ms");
  }
}

// ---- record_layer: writing -----------------------------------------------------------------

std::size_t record_layer::seal_record(std::uint8_t type, std::span<const asio::const_buffer> bufs,
                                      std::size_t skip, std::size_t n, std::uint8_t* out) {
  const std::size_t sealed_size = n + 1 + tag_size;
  out[0] = type_application_data;
  out[1] = 0x03;
  out[2] = 0x03;
  out[3] = static_cast<std::uint8_t>(sealed_size >> 8);
  out[4] = static_cast<std::uint8_t>(sealed_size);
  const auto nonce = write_keys_.next_nonce();
  EVP_CIPHER_CTX* const ctx = aead_contexts::get(write_keys_, true);
  int len = 0;
  bool ok = EVP_CipherInit_ex(ctx, nullptr, nullptr, nullptr, nonce.data(), 1) == 1 &&
            EVP_CipherUpdate(ctx, nullptr, &len, out, header_size) == 1;
  std::uint8_t* p = out + header_size;
  for (const asio::const_buffer& b : bufs) {
    if (n == 0 || !ok) break;
    if (skip >= b.size()) {
      skip -= b.size();
      continue;
    }
    const std::size_t take = std::min(b.size() - skip, n);
    ok = EVP_CipherUpdate(ctx, p, &len, static_cast<const std::uint8_t*>(b.data()) + skip,
                          static_cast<int>(take)) == 1;
    p += len;
    n -= take;
    skip = 0;
  }
  ok = ok && n == 0 && EVP_CipherUpdate(ctx, p, &len, &type, 1) == 1;
  p += len;
  ok = ok && EVP_CipherFinal_ex(ctx, p, &len) == 1;
  p += len;
  ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, tag_size, p) == 1;
  if (!ok) fail(record_error::crypto_failure, "sealing a record failed");
  return header_size + sealed_size;
}

record_layer::sealed record_layer::seal(std::span<const asio::const_buffer> bufs, std::size_t skip,
                                        std::span<std::uint8_t> out) {
  if (out.size() < min_seal_room) throw std::invalid_argument("tls13: seal buffer too small");
  const std::size_t total = asio::buffer_size(bufs) - std::min(skip, asio::buffer_size(bufs));
  sealed result{0, 0};
  while (result.consumed < total) {
    if (key_update_due_ || write_keys_.sequence() >= key_update_after_) {
      if (out.size() - result.written < min_seal_room) break;
      const std::uint8_t key_update[] = {handshake_key_update, 0, 0, 1, 0};  // not requested
      const asio::const_buffer body(key_update, sizeof key_update);
      result.written += seal_record(type_handshake, {&body, 1}, 0, sizeof key_update,
                                    out.data() + result.written);
      write_keys_.update();
      key_update_due_ = false;
    }
    const std::size_t room = out.size() - result.written;
    if (room < record_overhead + 1) break;
    const std::size_t n =
        std::min({total - result.consumed, max_plaintext, room - record_overhead});
    // A short record only to fill the end of the buffer is not worth its 22 bytes of framing.
    if (n < total - result.consumed && n < 4096 && result.written > 0) break;
    result.written += seal_record(type_application_data, bufs, skip + result.consumed, n,
                                  out.data() + result.written);
    result.consumed += n;
  }
  return result;
}

}  // namespace switchboard::net::tls13
