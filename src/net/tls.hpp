// TLS identities and OpenSSL contexts for lines. TLS 1.3 only.
//
// Ownership: contexts are reference counted by OpenSSL; ssl_ctx_ptr holds one reference. Each
// SSL object made from a context holds another, so a context may be dropped while lines live.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace switchboard::net {

struct ssl_ctx_deleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using ssl_ctx_ptr = std::unique_ptr<SSL_CTX, ssl_ctx_deleter>;

struct server_identity {
  std::filesystem::path cert_file;  // PEM certificate
  std::filesystem::path key_file;   // PEM private key, mode 0600
};

// Returns data_dir/relay.crt and data_dir/relay.key, creating them first if neither exists:
// a self-signed EC P-256 certificate (CN=switchboard-relay, SAN DNS:localhost, IP:127.0.0.1,
// IP:::1), valid 10 years, key written with mode 0600; data_dir, if missing, is made with mode
// 0700 (its parents with the default mode). Throws std::runtime_error if only one of the two
// files exists or generation/writing fails.
server_identity ensure_self_signed(const std::filesystem::path& data_dir);
// The same files if both exist, nullopt if neither does; creates nothing. Throws
// std::runtime_error if only one of the two exists.
std::optional<server_identity> find_self_signed(const std::filesystem::path& data_dir);

// SHA-256 of the DER certificate as uppercase hex pairs joined by ':' (95 characters).
std::string fingerprint_of_der(std::span<const std::uint8_t> der);
// Same, for the first certificate in a PEM file. Throws std::runtime_error if unreadable.
std::string fingerprint_of_cert_file(const std::filesystem::path& pem_file);
// Accepts hex with or without ':' separators, any case, optional "sha256:" prefix; returns the
// canonical form above. Throws std::invalid_argument if it is not 32 bytes of hex.
std::string normalize_fingerprint(std::string_view text);

// Both contexts: AES-128-GCM preferred (the server's order decides), then AES-256-GCM and
// ChaCha20-Poly1305; read-ahead on with a read buffer of this many bytes (about four records),
// allocated only while it holds bytes.
inline constexpr const char* tls_ciphersuites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
inline constexpr std::size_t tls_read_buffer = std::size_t{64} * 1024;

// Server context: TLS 1.3 only, SSL_MODE_RELEASE_BUFFERS (idle lines hold no record buffers),
// no session tickets (lines never resume). Throws std::runtime_error naming the file on a bad cert
// or key.
ssl_ctx_ptr make_server_context(const server_identity& id);

struct client_tls_options {
  // Exactly one of the two must be set.
  std::string fingerprint{};        // canonical or any form normalize_fingerprint accepts
  std::filesystem::path ca_file{};  // PEM CA bundle; the relay's name is then verified
  std::string server_name{};        // host name (or IP) for SNI and the CA-mode name check
};

// Client context: TLS 1.3 only, SSL_MODE_RELEASE_BUFFERS, peer verification on. In fingerprint mode
// the handshake fails unless the leaf certificate's SHA-256 matches; in CA mode the chain must
// verify against ca_file. Throws std::invalid_argument if neither or both are set.
ssl_ctx_ptr make_client_context(const client_tls_options& opts);

// For CA mode: sets SNI and the expected host name on a new SSL object made from such a context.
// (No-op for an empty name.) Throws std::runtime_error on OpenSSL failure.
void set_client_host_name(SSL* ssl, const std::string& server_name);

// After a client handshake failed: why the relay's certificate was not accepted, or nullopt if
// the certificate check did not fail. Pinned: "certificate fingerprint mismatch: expected X, the
// relay presented Y"; CA mode: OpenSSL's verify error text.
std::optional<std::string> certificate_failure(SSL* ssl);

// The header of the first TLS record a client read (or what stood in its place): filled in by
// OpenSSL's message callback during the handshake, so that a failed handshake can tell what the
// other side sent. size is 0 until a record header was read.
struct first_record {
  std::array<std::uint8_t, 5> header{};
  std::size_t size = 0;
};
// Records the first record header `ssl` reads into `*out`, which must outlive the handshake (or
// until stop_watching_records). Call before the handshake.
void watch_first_record(SSL* ssl, first_record* out);
void stop_watching_records(SSL* ssl);

}  // namespace switchboard::net
