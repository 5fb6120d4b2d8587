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
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <span>

#include "net/asio.hpp"
#include "net/recycled.hpp"

namespace switchboard::net::tls13 {

// Why a record layer gave up on a connection (RFC 8446 alert names where one applies). Thrown as
// boost::system::system_error with a code of record_category(), whose message names the cause.
enum class record_error {
  bad_record_mac = 1,       // a record failed authentication
  record_overflow,          // ciphertext over 2^14 + 256, or inner plaintext over 2^14 + 1 bytes
  unexpected_outer_type,    // an outer content type other than application_data
  bad_legacy_version,       // legacy_record_version is not 0x0303
  record_too_short,         // shorter than a tag and a content type
  no_content_type,          // an inner plaintext of zeros only
  unexpected_content_type,  // an inner content type other than alert, handshake, application_data
  malformed_alert,          // an alert that is not two bytes
  alert_received,           // an alert other than close_notify and user_canceled
  empty_handshake_record,   // a handshake record of no bytes (§5.1)
  fragmented_handshake,     // a handshake message split across records (not reassembled)
  malformed_handshake,      // a handshake header cut short
  malformed_key_update,
  unexpected_handshake,   // a handshake message other than KeyUpdate and NewSessionTicket
  client_session_ticket,  // a NewSessionTicket from a client (§4.6.1: servers never get one)
  key_update_flood,       // more KeyUpdates in an interval than no_data_limits allows
  no_data_flood,          // more other records without application bytes than allowed
  crypto_failure,         // OpenSSL could not derive keys or set up an AEAD context
};
const boost::system::error_category& record_category() noexcept;
inline boost::system::error_code make_error_code(record_error e) noexcept {
  return {static_cast<int>(e), record_category()};
}

// Records without application bytes that a line accepts from its peer per interval: KeyUpdates,
// and the rest together (user_canceled alerts, NewSessionTickets to a client, records of no
// bytes). One more in the same interval fails the line (key_update_flood, no_data_flood).
// Switchboard's own ends send a KeyUpdate after 2^24 records under one key, or to answer one, and
// no other such record; OpenSSL as a server sends its NewSessionTickets (none: no resumption)
// right after the handshake. The defaults leave a wide margin above that and bound the work a
// peer can cause to a few dozen key derivations per second.
struct no_data_limits {
  std::uint32_t key_updates = 32;
  std::uint32_t others = 64;
  std::chrono::steady_clock::duration interval = std::chrono::seconds(1);
};

enum class role : std::uint8_t { client, server };

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
// during the handshake, and the records OpenSSL has carried under them. Wiped when destroyed.
//
// A record layer made from these secrets starts both sequence numbers at 0 (and knows nothing of
// a KeyUpdate OpenSSL made), so it may take over only while OpenSSL has sealed and opened no
// record under them: fresh() says so. records_written counts the records OpenSSL sealed after
// our Finished (the last record under the handshake keys), records_read those it opened after
// the peer's Finished, as OpenSSL's message callback reports them.
struct traffic_secrets {
  std::array<std::uint8_t, 48> client{};
  std::array<std::uint8_t, 48> server{};
  std::uint8_t client_size = 0;
  std::uint8_t server_size = 0;
  bool finished_written = false;
  bool finished_read = false;
  std::uint32_t records_written = 0;
  std::uint32_t records_read = 0;

  traffic_secrets() = default;
  traffic_secrets(const traffic_secrets&) = delete;
  traffic_secrets& operator=(const traffic_secrets&) = delete;
  ~traffic_secrets();
  bool complete() const { return client_size > 0 && server_size > 0; }
  bool fresh() const { return records_written == 0 && records_read == 0; }
};

// Installs the callback on a context: every SSL of it that has a sink (capture_into) gets its
// application traffic secrets copied there. SSLs without a sink are not affected.
void capture_secrets(SSL_CTX* ctx);
// Lines of this context keep OpenSSL's record layer (used by tests and comparisons).
void keep_openssl_records(SSL_CTX* ctx);
// Names where the callback writes the secrets of `ssl`, and has OpenSSL report to `sink` every
// record it seals or opens (SSL_set_msg_callback); `sink` must outlive the handshake, or be unset
// first (nullptr, which also removes the message callback).
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
// close_notify, an unexpected message, too many records without application bytes) throw
// boost::system::system_error with a record_error code and a text naming the fault; the
// connection is then unusable.
//
// Post-handshake handshake messages are taken whole from one record each: a message split across
// records is refused (fragmented_handshake). RFC 8446 allows the split, but neither OpenSSL nor
// this layer sends one, and refusing it needs no reassembly buffer per line.
class record_layer {
 public:
  static constexpr std::size_t receive_buffer_size =
      std::size_t{64} * 1024;  // about four full records
  // One read() opens at most this many records without application bytes before it returns, so
  // that its caller can count them against its budget of work between yields.
  static constexpr unsigned max_no_data_per_read = 16;

  // read_secret: the peer's traffic secret (client's on a server); write_secret: our own. `r` is
  // this end's role (a server refuses NewSessionTickets).
  record_layer(suite s, role r, std::span<const std::uint8_t> read_secret,
               std::span<const std::uint8_t> write_secret,
               std::uint64_t key_update_after = default_key_update_after,
               no_data_limits limits = {});

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
  // True if read() would return bytes, report the close or throw, or open a record without
  // application bytes, without more ciphertext.
  bool readable() const noexcept;
  // Records without application bytes opened since the last call (at most max_no_data_per_read
  // per read()); the count starts again at 0.
  unsigned take_no_data_records() noexcept {
    const unsigned n = no_data_records_;
    no_data_records_ = 0;
    return n;
  }
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
  // What is wrong with the header at data_begin_ (at least header_size bytes held), if anything.
  std::optional<record_error> header_fault() const noexcept;
  // Opens the whole record at data_begin_, if there is one (nullopt if not): into `out` when its
  // inner plaintext fits, else in place, copying what fits and keeping the rest as held
  // plaintext. Returns the application bytes put in `out` (0 for a control record).
  std::optional<std::size_t> open_next(std::span<std::uint8_t> out);
  // Decrypts the record at data_begin_ (size bytes) into dst and consumes it. Returns the
  // content type and the length of its content in dst.
  std::pair<std::uint8_t, std::size_t> open(std::size_t size, std::uint8_t* dst);
  void on_control(std::uint8_t type, std::span<const std::uint8_t> content);
  // Counts a record without application bytes against the limits; throws past them.
  void note_no_data(bool key_update);
  std::size_t seal_record(std::uint8_t type, std::span<const asio::const_buffer> pieces,
                          std::size_t skip, std::size_t n, std::uint8_t* out);

  traffic_keys read_keys_;
  traffic_keys write_keys_;
  std::uint64_t key_update_after_;
  no_data_limits limits_;
  // Records without application bytes in the interval that began at window_start_.
  std::chrono::steady_clock::time_point window_start_{};
  std::uint32_t key_updates_in_window_ = 0;
  std::uint32_t others_in_window_ = 0;
  unsigned no_data_records_ = 0;  // opened since take_no_data_records()
  role role_;
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

template <>
struct boost::system::is_error_code_enum<switchboard::net::tls13::record_error> : std::true_type {};
