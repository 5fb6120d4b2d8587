#include "net/tls.hpp"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "net/tls_records.hpp"

namespace switchboard::net {

namespace {

namespace fs = std::filesystem;

constexpr std::size_t sha256_size = 32;
using sha256_digest = std::array<std::uint8_t, sha256_size>;

constexpr const char* cert_name = "relay.crt";
constexpr const char* key_name = "relay.key";
constexpr const char* common_name = "switchboard-relay";

// unique_ptr deleters for OpenSSL objects; each pointer owns exactly one reference.
template <auto free_fn>
struct openssl_deleter {
  template <typename T>
  void operator()(T* p) const {
    free_fn(p);
  }
};
using bio_ptr = std::unique_ptr<BIO, openssl_deleter<&BIO_free_all>>;
using bn_ptr = std::unique_ptr<BIGNUM, openssl_deleter<&BN_free>>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, openssl_deleter<&EVP_PKEY_free>>;
using x509_ptr = std::unique_ptr<X509, openssl_deleter<&X509_free>>;
using x509_name_ptr = std::unique_ptr<X509_NAME, openssl_deleter<&X509_NAME_free>>;
using x509_ext_ptr = std::unique_ptr<X509_EXTENSION, openssl_deleter<&X509_EXTENSION_free>>;

// Drains the thread's OpenSSL error queue into one line.
std::string openssl_errors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    std::array<char, 256> text{};
    ERR_error_string_n(e, text.data(), text.size());
    if (!out.empty()) out += "; ";
    out += text.data();
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

[[noreturn]] void throw_openssl(const std::string& what) {
  throw std::runtime_error(what + ": " + openssl_errors());
}

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

// ---- fingerprints -------------------------------------------------------------------------

std::string format_digest(std::span<const std::uint8_t> digest) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(digest.size() * 3);
  for (const std::uint8_t b : digest) {
    if (!out.empty()) out += ':';
    out += hex[b >> 4];
    out += hex[b & 0x0f];
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool starts_with_ignoring_case(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    const char c =
        text[i] >= 'A' && text[i] <= 'Z' ? static_cast<char>(text[i] - 'A' + 'a') : text[i];
    if (c != prefix[i]) return false;
  }
  return true;
}

// Parses 64 hex digits, optionally "sha256:"-prefixed; a ':' may only separate two byte pairs.
sha256_digest parse_fingerprint(std::string_view text) {
  const auto bad = [] {
    return std::invalid_argument(
        "fingerprint must be a SHA-256 digest: 64 hex digits, optionally ':'-separated");
  };
  constexpr std::string_view prefix = "sha256:";
  if (starts_with_ignoring_case(text, prefix)) text.remove_prefix(prefix.size());
  sha256_digest digest{};
  std::size_t nibbles = 0;
  char previous = ':';
  for (const char c : text) {
    if (c == ':') {
      if (previous == ':' || nibbles % 2 != 0) throw bad();
    } else {
      const int v = hex_value(c);
      if (v < 0 || nibbles == sha256_size * 2) throw bad();
      digest[nibbles / 2] |= static_cast<std::uint8_t>(nibbles % 2 == 0 ? v << 4 : v);
      ++nibbles;
    }
    previous = c;
  }
  if (nibbles != sha256_size * 2 || previous == ':') throw bad();
  return digest;
}

sha256_digest digest_of(X509* cert) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha256(), md.data(), &len) != 1 || len != sha256_size) {
    throw_openssl("X509_digest");
  }
  sha256_digest out{};
  std::memcpy(out.data(), md.data(), out.size());
  return out;
}

// ---- identity generation -------------------------------------------------------------------

pkey_ptr generate_p256_key() {
  pkey_ptr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) throw_openssl("generating EC P-256 key");
  return key;
}

// Now plus ten calendar years (29 February maps to 28 February).
std::time_t ten_years_from_now() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const auto today = floor<days>(now);
  year_month_day date{today};
  date += years{10};
  if (!date.ok()) date = date.year() / date.month() / last;
  return system_clock::to_time_t(sys_days{date} + (now - today));
}

void set_random_serial(X509* cert) {
  bn_ptr serial(BN_new());
  if (!serial) throw_openssl("BN_new");
  do {
    if (BN_rand(serial.get(), 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1)
      throw_openssl("BN_rand");
  } while (BN_is_zero(serial.get()));
  if (BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert)) == nullptr) {
    throw_openssl("setting certificate serial");
  }
}

void add_extension(X509* cert, int nid, const char* value) {
  X509V3_CTX v3{};
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
  const x509_ext_ptr ext(X509V3_EXT_nconf_nid(nullptr, &v3, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    throw_openssl(std::string("adding certificate extension ") + OBJ_nid2sn(nid));
  }
}

x509_ptr make_self_signed(EVP_PKEY* key) {
  x509_ptr cert(X509_new());
  if (!cert) throw_openssl("X509_new");
  x509_name_ptr name(X509_NAME_new());
  if (!name || X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_ASC,
                                          reinterpret_cast<const unsigned char*>(common_name), -1,
                                          -1, 0) != 1) {
    throw_openssl("building certificate name");
  }
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      X509_set_subject_name(cert.get(), name.get()) != 1 ||
      X509_set_issuer_name(cert.get(), name.get()) != 1 ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), ten_years_from_now()) == nullptr ||
      X509_set_pubkey(cert.get(), key) != 1) {
    throw_openssl("building certificate");
  }
  set_random_serial(cert.get());
  add_extension(cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_extension(cert.get(), NID_key_usage, "critical,digitalSignature");
  add_extension(cert.get(), NID_ext_key_usage, "serverAuth");
  add_extension(cert.get(), NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1");
  if (X509_sign(cert.get(), key, EVP_sha256()) == 0) throw_openssl("signing certificate");
  return cert;
}

// Serializes with `write` into memory so nothing touches the disk before it is complete.
template <typename Write>
std::string to_pem(Write write, const char* what) {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  if (!bio || write(bio.get()) != 1) throw_openssl(std::string("writing PEM ") + what);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  if (len <= 0 || data == nullptr) throw_openssl(std::string("reading PEM ") + what);
  return {data, static_cast<std::size_t>(len)};
}

// A fully written and synced file under a temporary name in the target's directory; removed
// unless commit() renames it onto the target.
class temp_file {
 public:
  temp_file(fs::path target, std::string_view data, mode_t mode);
  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;
  ~temp_file() {
    if (!committed_) ::unlink(path_.c_str());
  }
  void commit();

 private:
  void write_all(int fd, std::string_view data);

  fs::path target_;
  fs::path path_;
  bool committed_ = false;
};

temp_file::temp_file(fs::path target, std::string_view data, mode_t mode)
    : target_(std::move(target)) {
  std::array<std::uint8_t, 8> nonce{};
  if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1) throw_openssl("RAND_bytes");
  std::string suffix = ".tmp-" + format_digest(nonce);
  std::erase(suffix, ':');
  path_ = target_;
  path_ += suffix;
  // O_EXCL with the final mode: the file is never visible with wider permissions.
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) throw_errno("creating " + path_.string());
  // The destructor does not run if this constructor throws, so clean up here.
  try {
    write_all(fd, data);
  } catch (...) {
    ::close(fd);
    ::unlink(path_.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    const int saved = errno;
    ::unlink(path_.c_str());
    errno = saved;
    throw_errno("closing " + path_.string());
  }
}

void temp_file::write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw_errno("writing " + path_.string());
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  if (::fsync(fd) != 0) throw_errno("syncing " + path_.string());
}

void temp_file::commit() {
  if (::rename(path_.c_str(), target_.c_str()) != 0) throw_errno("renaming to " + target_.string());
  committed_ = true;
}

// Best effort: makes the renames durable.
void sync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

void write_identity(const server_identity& id) {
  const pkey_ptr key = generate_p256_key();
  const x509_ptr cert = make_self_signed(key.get());
  const std::string key_pem = to_pem(
      [&](BIO* b) {
        return PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
      },
      "private key");
  const std::string cert_pem =
      to_pem([&](BIO* b) { return PEM_write_bio_X509(b, cert.get()); }, "certificate");
  temp_file key_file(id.key_file, key_pem, 0600);
  temp_file cert_file(id.cert_file, cert_pem, 0644);
  key_file.commit();
  try {
    cert_file.commit();
  } catch (...) {
    std::error_code ignored;
    fs::remove(id.key_file, ignored);  // leave neither file rather than half an identity
    throw;
  }
  sync_directory(id.key_file.parent_path());
}

// ---- contexts ------------------------------------------------------------------------------

// Settings shared by both sides: TLS 1.3 only, no renegotiation, no session cache.
ssl_ctx_ptr new_context(const SSL_METHOD* method) {
  ssl_ctx_ptr ctx(SSL_CTX_new(method));
  if (!ctx) throw_openssl("SSL_CTX_new");
  if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx.get(), TLS1_3_VERSION) != 1) {
    throw_openssl("restricting to TLS 1.3");
  }
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                                  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  // AES-128-GCM first: with AES-NI the cheapest AEAD (10 rounds against AES-256's 14; the relay
  // decrypts and re-encrypts every byte), the strength ssh's aes128-gcm offers too.
  if (SSL_CTX_set_ciphersuites(ctx.get(), tls_ciphersuites) != 1) {
    throw_openssl("setting TLS 1.3 cipher suites");
  }
  // Read-ahead: one read(2) takes up to tls_read_buffer bytes (several records) instead of a
  // 5-byte header and then the body of each record; line_stream::read_some returns every record
  // OpenSSL then holds. With SSL_MODE_RELEASE_BUFFERS the buffer is freed whenever it is empty,
  // so an idle line still holds none (readers must ask line_stream::read_buffered() before
  // waiting for the socket: SSL_has_pending counts read-ahead bytes too).
  SSL_CTX_set_read_ahead(ctx.get(), 1);
  SSL_CTX_set_default_read_buffer_len(ctx.get(), tls_read_buffer);
  // After the handshake, lines free the SSL and carry the records themselves
  // (net/tls_records.hpp); OpenSSL hands the traffic secrets over through its key-log callback.
  tls13::capture_secrets(ctx.get());
  return ctx;
}

// The pinned leaf digest lives in the context's ex_data, which frees it with the context.
struct pinned_leaf {
  sha256_digest sha256;
};

void free_pin(void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/,
              void* /*argp*/) {
  delete static_cast<pinned_leaf*>(ptr);
}

int pin_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_pin);
  if (index < 0) throw_openssl("SSL_CTX_get_ex_new_index");
  return index;
}

// Replaces chain verification: the peer is trusted iff its leaf matches the pin.
int verify_pinned_leaf(X509_STORE_CTX* store, void* arg) {
  const auto* pin = static_cast<const pinned_leaf*>(arg);
  X509* leaf = X509_STORE_CTX_get0_cert(store);
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  if (leaf != nullptr && X509_digest(leaf, EVP_sha256(), md.data(), &len) == 1 &&
      len == sha256_size && CRYPTO_memcmp(md.data(), pin->sha256.data(), sha256_size) == 0) {
    X509_STORE_CTX_set_error(store, X509_V_OK);
    return 1;
  }
  X509_STORE_CTX_set_current_cert(store, leaf);
  X509_STORE_CTX_set_error_depth(store, 0);
  X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
  return 0;
}

void pin_leaf(SSL_CTX* ctx, const sha256_digest& digest) {
  auto pin = std::make_unique<pinned_leaf>(pinned_leaf{digest});
  if (SSL_CTX_set_ex_data(ctx, pin_index(), pin.get()) != 1) throw_openssl("SSL_CTX_set_ex_data");
  pinned_leaf* const owned_by_ctx = pin.release();
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_cert_verify_callback(ctx, &verify_pinned_leaf, owned_by_ctx);
}

bool is_ip_literal(const std::string& name) {
  std::array<unsigned char, 16> addr{};
  return ::inet_pton(AF_INET, name.c_str(), addr.data()) == 1 ||
         ::inet_pton(AF_INET6, name.c_str(), addr.data()) == 1;
}

// Expects `name` as a DNS name or, for an IP literal, as an IP SAN; clears the other kind.
bool expect_peer_name(X509_VERIFY_PARAM* param, const std::string& name) {
  if (is_ip_literal(name)) {
    return X509_VERIFY_PARAM_set1_host(param, nullptr, 0) == 1 &&
           X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) == 1;
  }
  return X509_VERIFY_PARAM_set1_ip(param, nullptr, 0) == 1 &&
         X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size()) == 1;
}

void trust_ca_file(SSL_CTX* ctx, const client_tls_options& opts) {
  if (SSL_CTX_load_verify_file(ctx, opts.ca_file.c_str()) != 1) {
    throw_openssl("loading CA file " + opts.ca_file.string());
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx);  // owned by ctx
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  // Default for every SSL made from ctx; set_client_host_name sets it again per connection.
  if (!opts.server_name.empty() && !expect_peer_name(param, opts.server_name)) {
    throw_openssl("setting expected host name " + opts.server_name);
  }
}

}  // namespace

std::optional<server_identity> find_self_signed(const std::filesystem::path& data_dir) {
  server_identity id{data_dir / cert_name, data_dir / key_name};
  const bool have_cert = fs::exists(id.cert_file);
  const bool have_key = fs::exists(id.key_file);
  if (have_cert && have_key) return id;
  if (have_cert || have_key) {
    const fs::path& missing = have_cert ? id.key_file : id.cert_file;
    const fs::path& present = have_cert ? id.cert_file : id.key_file;
    throw std::runtime_error("TLS identity incomplete: " + present.string() + " exists but " +
                             missing.string() + " is missing; restore it or remove both");
  }
  return std::nullopt;
}

server_identity ensure_self_signed(const std::filesystem::path& data_dir) {
  if (!fs::exists(data_dir)) {
    const fs::path dir = data_dir.has_filename() ? data_dir : data_dir.parent_path();  // "d/"
    if (dir.has_parent_path()) fs::create_directories(dir.parent_path());
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) throw_errno("creating " + dir.string());
  }
  if (auto found = find_self_signed(data_dir)) return *found;
  server_identity id{data_dir / cert_name, data_dir / key_name};
  write_identity(id);
  return id;
}

std::string fingerprint_of_der(std::span<const std::uint8_t> der) {
  sha256_digest digest{};
  unsigned int len = 0;
  if (EVP_Digest(der.data(), der.size(), digest.data(), &len, EVP_sha256(), nullptr) != 1 ||
      len != sha256_size) {
    throw_openssl("SHA-256");
  }
  return format_digest(digest);
}

std::string fingerprint_of_cert_file(const std::filesystem::path& pem_file) {
  const bio_ptr bio(BIO_new_file(pem_file.c_str(), "r"));
  if (!bio) throw_openssl("opening certificate " + pem_file.string());
  const x509_ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) throw_openssl("reading certificate " + pem_file.string());
  return format_digest(digest_of(cert.get()));
}

std::string normalize_fingerprint(std::string_view text) {
  return format_digest(parse_fingerprint(text));
}

ssl_ctx_ptr make_server_context(const server_identity& id) {
  ssl_ctx_ptr ctx = new_context(TLS_server_method());
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), id.cert_file.c_str()) != 1) {
    throw_openssl("loading certificate " + id.cert_file.string());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), id.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    throw_openssl("loading private key " + id.key_file.string());
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    throw_openssl("private key " + id.key_file.string() + " does not match certificate " +
                  id.cert_file.string());
  }
  // Lines never resume, so issue no TLS 1.3 session tickets at all.
  if (SSL_CTX_set_num_tickets(ctx.get(), 0) != 1) throw_openssl("SSL_CTX_set_num_tickets");
  return ctx;
}

ssl_ctx_ptr make_client_context(const client_tls_options& opts) {
  const bool pinned = !opts.fingerprint.empty();
  const bool with_ca = !opts.ca_file.empty();
  if (pinned == with_ca) {
    throw std::invalid_argument("client TLS needs exactly one of a fingerprint and a CA file");
  }
  const sha256_digest digest = pinned ? parse_fingerprint(opts.fingerprint) : sha256_digest{};
  ssl_ctx_ptr ctx = new_context(TLS_client_method());
  if (pinned) {
    pin_leaf(ctx.get(), digest);
  } else {
    trust_ca_file(ctx.get(), opts);
  }
  return ctx;
}

std::optional<std::string> certificate_failure(SSL* ssl) {
  const long result = SSL_get_verify_result(ssl);
  if (result == X509_V_OK) return std::nullopt;
  const auto* pin =
      static_cast<const pinned_leaf*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), pin_index()));
  if (pin != nullptr) {
    std::string presented = "no certificate";
    // The chain the relay sent is kept even when it failed the check; the leaf comes first.
    if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl);
        chain != nullptr && sk_X509_num(chain) > 0) {
      presented = format_digest(digest_of(sk_X509_value(chain, 0)));
    }
    return "certificate fingerprint mismatch: expected " + format_digest(pin->sha256) +
           ", the relay presented " + presented;
  }
  return std::string("certificate verification failed: ") + X509_verify_cert_error_string(result);
}

namespace {
void on_record(int write_p, int /*version*/, int content_type, const void* buf, std::size_t len,
               SSL* /*ssl*/, void* arg) {
  auto* out = static_cast<first_record*>(arg);
  if (write_p != 0 || content_type != SSL3_RT_HEADER || out->size > 0) return;
  out->size = std::min(len, out->header.size());
  std::memcpy(out->header.data(), buf, out->size);
}
}  // namespace

void watch_first_record(SSL* ssl, first_record* out) {
  SSL_set_msg_callback_arg(ssl, out);
  SSL_set_msg_callback(ssl, &on_record);
}

void stop_watching_records(SSL* ssl) {
  if (ssl == nullptr) return;
  SSL_set_msg_callback(ssl, nullptr);
  SSL_set_msg_callback_arg(ssl, nullptr);
}

void set_client_host_name(SSL* ssl, const std::string& server_name) {
  if (server_name.empty()) return;
  if (ssl == nullptr) throw std::runtime_error("set_client_host_name: no SSL object");
  // SNI carries DNS names only (RFC 6066); an IP literal is checked against IP SANs instead.
  if (!is_ip_literal(server_name) && SSL_set_tlsext_host_name(ssl, server_name.c_str()) != 1) {
    throw_openssl("setting SNI " + server_name);
  }
  if (!expect_peer_name(SSL_get0_param(ssl), server_name)) {
    throw_openssl("setting expected host name " + server_name);
  }
}

}  // namespace switchboard::net
