// TLS 1.3 records after the handshake (RFC 8446 §5.1-5.5, §4.6.3, §7.1-7.3), carried by the line
// itself so that OpenSSL's SSL object (about 13 KiB per connection, kept for the connection's
// whole life) can be freed as soon as the handshake is done: an idle TLS line then holds its two
// traffic secrets and keys (about 250 bytes) and no record buffer.
//
// OpenSSL still does the handshake and every cryptographic operation (EVP AEAD, HKDF); this file
// frames records, forms the per-record nonces, derives keys from the traffic secrets that
// OpenSSL hands over through its key-log callback, and answers the post-handshake messages a
// TLS 1.3 peer may send: KeyUpdate (followed), NewSessionTicket (ignored: lines never resume),
// close_notify (end of stream) and other alerts (errors). It is what kernel TLS does in the
// kernel, for a kernel that has no kTLS (this one lists no "tls" in tcp_available_ulp).
//
// Pure: no I/O. line_stream (net/line_stream.hpp) moves the bytes.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <span>

#include "net/asio.hpp"
#include "net/recycled.hpp"

namespace switchboard::net::tls13 {

enum class suite : std::uint8_t {
  aes_128_gcm_sha256,
  aes_256_gcm_sha384,
  chacha20_poly1305_sha256
};

// The suite of a negotiated cipher, or nullopt for one this layer does not carry.
std::optional<suite> suite_of(const SSL_CIPHER* cipher);

inline constexpr std::size_t header_size = 5;
inline constexpr std::size_t tag_size = 16;
inline constexpr std::size_t max_plaintext = 16384;                         // 2^14
inline constexpr std::size_t max_ciphertext = max_plaintext + 256;          // §5.2
inline constexpr std::size_t record_overhead = header_size + 1 + tag_size;  // no padding is sent
// Records sealed under one key before the sender moves to the next (§5.5 allows 2^24.5 full
// records for AES-GCM; ChaCha20-Poly1305 more).
inline constexpr std::uint64_t default_key_update_after = std::uint64_t{1} << 24;

// The application traffic secrets of one connection, as the key-log callback reports them
// during the handshake. Wiped when destroyed.
struct traffic_secrets {
  std::array<std::uint8_t, 48> client{};
  std::array<std::uint8_t, 48> server{};
  std::uint8_t client_size = 0;
  std::uint8_t server_size = 0;

  traffic_secrets() = default;
  traffic_secrets(const traffic_secrets&) = delete;
  traffic_secrets& operator=(const traffic_secrets&) = delete;
  ~traffic_secrets();
  bool complete() const { return client_size > 0 && server_size > 0; }
};

// Installs the callback on a context: every SSL of it that has a sink (capture_into) gets its
// application traffic secrets copied there. SSLs without a sink are not affected.
void capture_secrets(SSL_CTX* ctx);
// Lines of this context keep OpenSSL's record layer (used by tests and comparisons).
void keep_openssl_records(SSL_CTX* ctx);
// Names where the callback writes the secrets of `ssl`; `sink` must outlive the handshake, or be
// unset first (nullptr).
void capture_into(SSL* ssl, traffic_secrets* sink);

// One direction's keys: the current traffic secret, the AEAD key and IV derived from it, and
// the sequence number of the next record.
class traffic_keys {
 public:
  // Throws std::invalid_argument if the secret's size is not the suite's hash size.
  traffic_keys(suite s, std::span<const std::uint8_t> secret);
  traffic_keys(const traffic_keys&) = delete;
  traffic_keys& operator=(const traffic_keys&) = delete;
  ~traffic_keys();

  // The next generation (§7.2): secret = HKDF-Expand-Label(secret, "traffic upd", "", Hash.length),
  // new key and IV, sequence back to 0.
  void update();

  suite cipher_suite() const { return suite_; }
  std::uint64_t sequence() const { return sequence_; }
  // The nonce of the next record (§5.3), and the sequence advanced past it.
  std::array<std::uint8_t, 12> next_nonce();
  // Unique per key (a new one after each update): lets per-thread AEAD contexts skip re-keying.
  std::uint64_t key_id() const { return key_id_; }
  std::span<const std::uint8_t> key() const { return {key_.data(), key_size_}; }

 private:
  void derive();

  suite suite_;
  std::uint8_t secret_size_;
  std::uint8_t key_size_;
  std::array<std::uint8_t, 48> secret_{};
  std::array<std::uint8_t, 32> key_{};
  std::array<std::uint8_t, 12> iv_{};
  std::uint64_t sequence_ = 0;
  std::uint64_t key_id_ = 0;
};

// Both directions of one connection after its handshake, with the receive buffer.
//
// Reading: the caller asks receive_space() for room, writes ciphertext there (recv) and reports
// it with received(); read() returns the plaintext of the whole records held. The receive buffer
// is borrowed from a per-thread pool when bytes arrive and given back whenever it holds none, so
// an idle line holds no buffer. Writing: seal() turns a stream of plaintext buffers into records
// in a buffer the caller provides and sends.
//
// Errors (a record that fails authentication, a malformed record, an alert other than
// close_notify, an unexpected message) throw boost::system::system_error with
// asio::error::connection_aborted and a text naming the fault; the connection is then unusable.
class record_layer {
 public:
  static constexpr std::size_t receive_buffer_size =
      std::size_t{64} * 1024;  // about four full records

  // read_secret: the peer's traffic secret (client's on a server); write_secret: our own.
  record_layer(suite s, std::span<const std::uint8_t> read_secret,
               std::span<const std::uint8_t> write_secret,
               std::uint64_t key_update_after = default_key_update_after);

  // ---- reading
  // Room after the bytes held (at least one whole record's worth once they are moved to the
  // front). Borrows the receive buffer if none is held.
  std::span<std::uint8_t> receive_space();
  void received(std::size_t n);
  // Plaintext of the records held, up to out.size() bytes: first what is left of a record opened
  // earlier, then whole records (decrypted straight into `out` when they fit). Returns 0 when no
  // whole record is held, or after the peer's close_notify (closed()). A fault met after some
  // bytes were read is thrown by the next call, so those bytes come first; once thrown, a fault
  // is thrown by every later call.
  std::size_t read(std::span<std::uint8_t> out);
  // True if read() would return bytes, report the close or throw, without more ciphertext.
  bool readable() const noexcept;
  bool closed() const { return closed_; }
  // Bytes of ciphertext held that do not yet make a whole record.
  bool holds_partial_record() const { return data_end_ > data_begin_ && !readable(); }
  // Gives the receive buffer back if it holds nothing.
  void trim();
  bool holds_buffer() const { return buffer_.has_value(); }

  // ---- writing
  struct sealed {
    std::size_t consumed;  // plaintext bytes of `bufs` (after `skip`) now in records
    std::size_t written;   // bytes of records put in `out`
  };
  // Seals bufs' bytes from offset `skip` into as many records as fit in `out` (which must have
  // room for at least min_seal_room bytes), preceded by a KeyUpdate when one is due: asked for
  // by the peer, or after key_update_after records under one key.
  sealed seal(std::span<const asio::const_buffer> bufs, std::size_t skip,
              std::span<std::uint8_t> out);
  static constexpr std::size_t min_seal_room = 256;

 private:
  using receive_buffers = buffer_pool<receive_buffer_size, 8>;

  // Size of the whole record at data_begin_, or 0 if it is not all here. Throws on a bad header.
  std::size_t whole_record() const;
  // What is wrong with the header at data_begin_ (at least header_size bytes held), or nullptr.
  const char* header_fault() const noexcept;
  // Opens the whole record at data_begin_, if there is one (nullopt if not): into `out` when its
  // inner plaintext fits, else in place, copying what fits and keeping the rest as held
  // plaintext. Returns the application bytes put in `out` (0 for a control record).
  std::optional<std::size_t> open_next(std::span<std::uint8_t> out);
  // Decrypts the record at data_begin_ (size bytes) into dst and consumes it. Returns the
  // content type and the length of its content in dst.
  std::pair<std::uint8_t, std::size_t> open(std::size_t size, std::uint8_t* dst);
  void on_control(std::uint8_t type, std::span<const std::uint8_t> content);
  std::size_t seal_record(std::uint8_t type, std::span<const asio::const_buffer> pieces,
                          std::size_t skip, std::size_t n, std::uint8_t* out);

  traffic_keys read_keys_;
  traffic_keys write_keys_;
  std::uint64_t key_update_after_;
  bool key_update_due_ = false;  // the peer asked for one (update_requested)
  bool closed_ = false;
  std::exception_ptr failure_;  // a fault met after bytes were read: thrown by the next read()

  std::optional<recycled<receive_buffers>> buffer_;  // engaged while it holds bytes
  // buffer_ holds plaintext left of an opened record at [plain_begin_, plain_end_) and
  // ciphertext not yet opened at [data_begin_, data_end_), in that order.
  std::uint32_t plain_begin_ = 0;
  std::uint32_t plain_end_ = 0;
  std::uint32_t data_begin_ = 0;
  std::uint32_t data_end_ = 0;
};

}  // namespace switchboard::net::tls13
