#include "net/tls.hpp"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace switchboard::net {
namespace {

namespace fs = std::filesystem;

struct ssl_free_deleter {
  void operator()(SSL* s) const { SSL_free(s); }
};
using ssl_ptr = std::unique_ptr<SSL, ssl_free_deleter>;
struct x509_free_deleter {
  void operator()(X509* x) const { X509_free(x); }
};
using x509_ptr = std::unique_ptr<X509, x509_free_deleter>;
struct bio_free_deleter {
  void operator()(BIO* b) const { BIO_free_all(b); }
};
using bio_ptr = std::unique_ptr<BIO, bio_free_deleter>;

// A fresh directory under the system temp dir, removed with everything in it.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "sb-tls-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Sets the process umask for one scope (tests in this binary run on one thread).
class umask_guard {
 public:
  explicit umask_guard(mode_t mask) : old_(::umask(mask)) {}
  umask_guard(const umask_guard&) = delete;
  umask_guard& operator=(const umask_guard&) = delete;
  ~umask_guard() { ::umask(old_); }

 private:
  mode_t old_;
};

x509_ptr read_cert(const fs::path& file) {
  const bio_ptr bio(BIO_new_file(file.c_str(), "r"));
  if (!bio) return nullptr;
  return x509_ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

mode_t file_mode(const fs::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

void write_text(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary);
  out << text;
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string lowercase(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string without_colons(std::string s) {
  std::erase(s, ':');
  return s;
}

// client_tls_options has no default member initializers, so designated initializers that omit
// fields trip -Wmissing-field-initializers; build them field by field instead.
client_tls_options pin_options(std::string fingerprint, std::string server_name = {}) {
  client_tls_options o;
  o.fingerprint = std::move(fingerprint);
  o.server_name = std::move(server_name);
  return o;
}

client_tls_options ca_options(fs::path ca_file, std::string server_name = {}) {
  client_tls_options o;
  o.ca_file = std::move(ca_file);
  o.server_name = std::move(server_name);
  return o;
}

// ---- in-memory connections -----------------------------------------------------------------

// A client and a server SSL joined by an in-memory BIO pair (each SSL owns its end).
struct tls_pair {
  ssl_ptr client;
  ssl_ptr server;
};

tls_pair connect_pair(SSL_CTX* server_ctx, SSL_CTX* client_ctx) {
  tls_pair p{ssl_ptr(SSL_new(client_ctx)), ssl_ptr(SSL_new(server_ctx))};
  if (!p.client || !p.server) throw std::runtime_error("SSL_new failed");
  BIO* client_end = nullptr;
  BIO* server_end = nullptr;
  if (BIO_new_bio_pair(&client_end, 0, &server_end, 0) != 1) {
    throw std::runtime_error("BIO_new_bio_pair failed");
  }
  SSL_set_bio(p.client.get(), client_end, client_end);
  SSL_set_bio(p.server.get(), server_end, server_end);
  SSL_set_connect_state(p.client.get());
  SSL_set_accept_state(p.server.get());
  return p;
}

// One non-blocking step; returns false on a fatal error. `done` is set once the step completes.
bool step(SSL* ssl, bool& done) {
  if (done) return true;
  const int r = SSL_do_handshake(ssl);
  if (r == 1) {
    done = true;
    return true;
  }
  const int e = SSL_get_error(ssl, r);
  return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

// Alternates both sides until both finish or one fails.
bool handshake(tls_pair& p) {
  bool client_done = false;
  bool server_done = false;
  for (int round = 0; round < 100 && !(client_done && server_done); ++round) {
    if (!step(p.client.get(), client_done) || !step(p.server.get(), server_done)) {
      ERR_clear_error();
      return false;
    }
  }
  return client_done && server_done;
}

// Sends `text` from one side to the other and returns what arrived.
std::string transfer(SSL* from, SSL* to, const std::string& text) {
  std::size_t written = 0;
  if (SSL_write_ex(from, text.data(), text.size(), &written) != 1) return "<write failed>";
  std::string got(text.size(), '\0');
  std::size_t n = 0;
  if (SSL_read_ex(to, got.data(), got.size(), &n) != 1) return "<read failed>";
  got.resize(n);
  return got;
}

// ---- fixtures ------------------------------------------------------------------------------

class TlsIdentityTest : public ::testing::Test {
 protected:
  temp_dir dir_;
};

class TlsHandshakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    id_ = ensure_self_signed(dir_.path() / "relay");
    server_ctx_ = make_server_context(id_);
  }

  ssl_ctx_ptr ca_client(const std::string& server_name) {
    return make_client_context(ca_options(id_.cert_file, server_name));
  }

  // CA-mode handshake as an agent does it: context name plus the per-connection call.
  // Returns the client's verification result, or -1 if verification passed but the handshake
  // still failed.
  long ca_handshake(const std::string& server_name) {
    const ssl_ctx_ptr client_ctx = ca_client(server_name);
    tls_pair p = connect_pair(server_ctx_.get(), client_ctx.get());
    set_client_host_name(p.client.get(), server_name);
    const bool ok = handshake(p);
    const long verify = SSL_get_verify_result(p.client.get());
    return ok || verify != X509_V_OK ? verify : -1;
  }

  temp_dir dir_;
  server_identity id_;
  ssl_ctx_ptr server_ctx_;
};

// ---- identity ------------------------------------------------------------------------------

TEST_F(TlsIdentityTest, CreatesDataDirAndBothFiles) {
  const fs::path data = dir_.path() / "a" / "b";
  const server_identity id = ensure_self_signed(data);
  EXPECT_EQ(id.cert_file, data / "relay.crt");
  EXPECT_EQ(id.key_file, data / "relay.key");
  EXPECT_TRUE(fs::is_regular_file(id.cert_file));
  EXPECT_TRUE(fs::is_regular_file(id.key_file));
  EXPECT_NE(read_text(id.cert_file).find("-----BEGIN CERTIFICATE-----"), std::string::npos);
  EXPECT_NE(read_text(id.key_file).find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
}

TEST_F(TlsIdentityTest, NewDataDirIsOwnerOnly) {
  const umask_guard mask(022);
  ensure_self_signed(dir_.path() / "a" / "b");
  EXPECT_EQ(file_mode(dir_.path() / "a" / "b"), 0700u);
  EXPECT_EQ(file_mode(dir_.path() / "a"), 0755u);  // parents as mkdir -p makes them
  ensure_self_signed(dir_.path() / "c" / "");
  EXPECT_EQ(file_mode(dir_.path() / "c"), 0700u);
}

TEST_F(TlsIdentityTest, ExistingDataDirKeepsItsMode) {
  const fs::path data = dir_.path() / "d";
  fs::create_directory(data);
  fs::permissions(data, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
  ensure_self_signed(data);
  EXPECT_EQ(file_mode(data), 0750u);
}

TEST_F(TlsIdentityTest, FindCreatesNothing) {
  EXPECT_FALSE(find_self_signed(dir_.path() / "missing"));
  EXPECT_FALSE(fs::exists(dir_.path() / "missing"));
  EXPECT_FALSE(find_self_signed(dir_.path()));
  EXPECT_TRUE(fs::is_empty(dir_.path()));
  const server_identity made = ensure_self_signed(dir_.path());
  const auto found = find_self_signed(dir_.path());
  ASSERT_TRUE(found);
  EXPECT_EQ(found->cert_file, made.cert_file);
  EXPECT_EQ(found->key_file, made.key_file);
  fs::remove(made.cert_file);
  EXPECT_THROW(find_self_signed(dir_.path()), std::runtime_error);
}

TEST_F(TlsIdentityTest, SecondCallReturnsSameFilesAndFingerprint) {
  const server_identity first = ensure_self_signed(dir_.path());
  const std::string fingerprint = fingerprint_of_cert_file(first.cert_file);
  const std::string key_pem = read_text(first.key_file);
  const server_identity second = ensure_self_signed(dir_.path());
  EXPECT_EQ(second.cert_file, first.cert_file);
  EXPECT_EQ(second.key_file, first.key_file);
  EXPECT_EQ(fingerprint_of_cert_file(second.cert_file), fingerprint);
  EXPECT_EQ(read_text(second.key_file), key_pem);
}

TEST_F(TlsIdentityTest, EachNewIdentityIsDifferent) {
  const server_identity a = ensure_self_signed(dir_.path() / "a");
  const server_identity b = ensure_self_signed(dir_.path() / "b");
  EXPECT_NE(fingerprint_of_cert_file(a.cert_file), fingerprint_of_cert_file(b.cert_file));
  const x509_ptr ca = read_cert(a.cert_file);
  const x509_ptr cb = read_cert(b.cert_file);
  ASSERT_TRUE(ca && cb);
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(ca.get()), X509_get0_serialNumber(cb.get())),
            0);
}

TEST_F(TlsIdentityTest, KeyFileIsPrivateAndCertIsReadable) {
  const umask_guard mask(022);
  const server_identity id = ensure_self_signed(dir_.path());
  EXPECT_EQ(file_mode(id.key_file), 0600u);
  EXPECT_EQ(file_mode(id.cert_file), 0644u);
}

TEST_F(TlsIdentityTest, KeyFileStaysPrivateUnderPermissiveUmask) {
  const umask_guard mask(0);
  const server_identity id = ensure_self_signed(dir_.path());
  EXPECT_EQ(file_mode(id.key_file), 0600u);
}

TEST_F(TlsIdentityTest, LeavesNoTemporaryFiles) {
  ensure_self_signed(dir_.path());
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir_.path())) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"relay.crt", "relay.key"}));
}

TEST_F(TlsIdentityTest, OnlyCertificateThrowsNamingTheKey) {
  const server_identity id = ensure_self_signed(dir_.path());
  fs::remove(id.key_file);
  try {
    ensure_self_signed(dir_.path());
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("relay.key is missing"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(id.key_file)) << "must not regenerate half an identity";
}

TEST_F(TlsIdentityTest, OnlyKeyThrowsNamingTheCertificate) {
  const server_identity id = ensure_self_signed(dir_.path());
  fs::remove(id.cert_file);
  try {
    ensure_self_signed(dir_.path());
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("relay.crt is missing"), std::string::npos) << e.what();
  }
}

TEST_F(TlsIdentityTest, CertificateHasRequiredFields) {
  const server_identity id = ensure_self_signed(dir_.path());
  const x509_ptr cert = read_cert(id.cert_file);
  ASSERT_TRUE(cert);
  X509* x = cert.get();
  EXPECT_EQ(X509_get_version(x), X509_VERSION_3);

  std::array<char, 64> cn{};
  X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn.data(), cn.size());
  EXPECT_STREQ(cn.data(), "switchboard-relay");
  EXPECT_EQ(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
  EXPECT_EQ(X509_verify(x, X509_get0_pubkey(x)), 1) << "self-signed";
  EXPECT_EQ(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);

  std::array<char, 64> group{};
  std::size_t group_len = 0;
  ASSERT_EQ(EVP_PKEY_get_group_name(X509_get0_pubkey(x), group.data(), group.size(), &group_len),
            1);
  EXPECT_STREQ(group.data(), "prime256v1");

  const ASN1_INTEGER* serial = X509_get0_serialNumber(x);
  BIGNUM* bn = ASN1_INTEGER_to_BN(serial, nullptr);
  ASSERT_NE(bn, nullptr);
  EXPECT_FALSE(BN_is_zero(bn));
  EXPECT_FALSE(BN_is_negative(bn));
  EXPECT_LE(BN_num_bits(bn), 128);
  BN_free(bn);

  const int bc = X509_get_ext_by_NID(x, NID_basic_constraints, -1);
  ASSERT_GE(bc, 0);
  EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(x, bc)), 1);
  EXPECT_EQ(X509_check_ca(x), 0);
  EXPECT_TRUE(X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE);
  EXPECT_FALSE(X509_get_key_usage(x) & KU_KEY_CERT_SIGN);
  EXPECT_TRUE(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
  EXPECT_EQ(X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 0), 1);

  EXPECT_EQ(X509_check_host(x, "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(x, "::1", 0), 1);
  EXPECT_NE(X509_check_host(x, "example.com", 0, 0, nullptr), 1);
}

TEST_F(TlsIdentityTest, ValidFromAnHourAgoForTenYears) {
  const server_identity id = ensure_self_signed(dir_.path());
  const x509_ptr cert = read_cert(id.cert_file);
  ASSERT_TRUE(cert);
  int days = 0;
  int secs = 0;
  // notBefore -> now: about one hour.
  ASSERT_EQ(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert.get()), nullptr), 1);
  EXPECT_EQ(days, 0);
  EXPECT_GE(secs, 3600 - 5);
  EXPECT_LE(secs, 3600 + 60);
  // now -> notAfter: ten calendar years (3652 or 3653 days).
  ASSERT_EQ(ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(cert.get())), 1);
  const double total_days = days + secs / 86400.0;
  EXPECT_GT(total_days, 3651.9);
  EXPECT_LT(total_days, 3653.1);
}

// ---- fingerprints --------------------------------------------------------------------------

TEST(TlsFingerprintTest, KnownDigestOfEmptyInput) {
  EXPECT_EQ(fingerprint_of_der({}),
            "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:"
            "27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55");
}

TEST_F(TlsIdentityTest, FingerprintFormat) {
  const server_identity id = ensure_self_signed(dir_.path());
  const std::string fp = fingerprint_of_cert_file(id.cert_file);
  ASSERT_EQ(fp.size(), 95u);
  for (std::size_t i = 0; i < fp.size(); ++i) {
    if (i % 3 == 2) {
      EXPECT_EQ(fp[i], ':') << i;
    } else {
      EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(fp[i])) || (fp[i] >= 'A' && fp[i] <= 'F'))
          << i;
    }
  }
  EXPECT_EQ(normalize_fingerprint(fp), fp);
}

TEST_F(TlsIdentityTest, FingerprintOfFileEqualsFingerprintOfDer) {
  const server_identity id = ensure_self_signed(dir_.path());
  const x509_ptr cert = read_cert(id.cert_file);
  ASSERT_TRUE(cert);
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert.get(), &der);
  ASSERT_GT(len, 0);
  const std::string from_der = fingerprint_of_der(
      {reinterpret_cast<const std::uint8_t*>(der), static_cast<std::size_t>(len)});
  OPENSSL_free(der);
  EXPECT_EQ(from_der, fingerprint_of_cert_file(id.cert_file));
}

TEST_F(TlsIdentityTest, FingerprintMatchesOpensslCli) {
  constexpr const char* cli = "/usr/bin/openssl";
  if (::access(cli, X_OK) != 0) GTEST_SKIP() << cli << " not available";
  const server_identity id = ensure_self_signed(dir_.path());
  const std::string command =
      std::string(cli) + " x509 -noout -fingerprint -sha256 -in '" + id.cert_file.string() + "'";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  std::array<char, 256> buf{};
  while (std::fgets(buf.data(), static_cast<int>(buf.size()), pipe) != nullptr)
    output += buf.data();
  ASSERT_EQ(::pclose(pipe), 0) << output;
  // "sha256 Fingerprint=AB:CD:...\n"
  const std::size_t eq = output.find('=');
  ASSERT_NE(eq, std::string::npos) << output;
  std::string cli_fp = output.substr(eq + 1);
  while (!cli_fp.empty() && (cli_fp.back() == '\n' || cli_fp.back() == '\r')) cli_fp.pop_back();
  EXPECT_EQ(fingerprint_of_cert_file(id.cert_file), cli_fp);
}

TEST_F(TlsIdentityTest, FingerprintOfBadFileThrows) {
  EXPECT_THROW(fingerprint_of_cert_file(dir_.path() / "missing.crt"), std::runtime_error);
  write_text(dir_.path() / "junk.crt", "not a certificate\n");
  EXPECT_THROW(fingerprint_of_cert_file(dir_.path() / "junk.crt"), std::runtime_error);
  EXPECT_EQ(ERR_peek_error(), 0u) << "error queue drained";
}

TEST(TlsFingerprintTest, NormalizeAcceptsVariants) {
  const std::string canonical = fingerprint_of_der({});
  EXPECT_EQ(normalize_fingerprint(canonical), canonical);
  EXPECT_EQ(normalize_fingerprint(lowercase(canonical)), canonical);
  EXPECT_EQ(normalize_fingerprint(without_colons(canonical)), canonical);
  EXPECT_EQ(normalize_fingerprint(lowercase(without_colons(canonical))), canonical);
  EXPECT_EQ(normalize_fingerprint("sha256:" + canonical), canonical);
  EXPECT_EQ(normalize_fingerprint("SHA256:" + without_colons(canonical)), canonical);
  EXPECT_EQ(normalize_fingerprint("sha256:" + lowercase(canonical)), canonical);
}

TEST(TlsFingerprintTest, NormalizeRejectsBadInput) {
  const std::string canonical = fingerprint_of_der({});
  const std::string bare = without_colons(canonical);
  const std::vector<std::string> bad = {
      "",
      "sha256:",
      ":",
      bare.substr(0, 62),                                    // 31 bytes
      bare + "00",                                           // 33 bytes
      bare.substr(0, 63),                                    // odd number of digits
      bare.substr(0, 63) + "G",                              // not hex
      canonical.substr(0, 94) + "Z",                         // not hex, with colons
      ":" + canonical,                                       // leading separator
      canonical + ":",                                       // trailing separator
      "E3::" + canonical.substr(3),                          // doubled separator
      "E:3" + bare.substr(2),                                // separator inside a byte
      " " + canonical,                                       // whitespace
      "sha1:" + bare,                                        // other algorithm
      "sha256:sha256:" + bare,                               // prefix twice
      canonical.substr(0, 47) + "-" + canonical.substr(48),  // other separator
  };
  for (const std::string& text : bad) {
    EXPECT_THROW(normalize_fingerprint(text), std::invalid_argument) << '"' << text << '"';
  }
}

// ---- contexts ------------------------------------------------------------------------------

TEST_F(TlsIdentityTest, ServerContextSettings) {
  const ssl_ctx_ptr ctx = make_server_context(ensure_self_signed(dir_.path()));
  ASSERT_TRUE(ctx);
  EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx.get()), TLS1_3_VERSION);
  EXPECT_EQ(SSL_CTX_get_max_proto_version(ctx.get()), TLS1_3_VERSION);
  const long mode = SSL_CTX_get_mode(ctx.get());
  EXPECT_TRUE(mode & SSL_MODE_RELEASE_BUFFERS);
  EXPECT_TRUE(mode & SSL_MODE_ENABLE_PARTIAL_WRITE);
  EXPECT_TRUE(mode & SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  EXPECT_TRUE(SSL_CTX_get_options(ctx.get()) & SSL_OP_NO_RENEGOTIATION);
  EXPECT_EQ(SSL_CTX_get_num_tickets(ctx.get()), 0u);
  EXPECT_EQ(SSL_CTX_get_session_cache_mode(ctx.get()), SSL_SESS_CACHE_OFF);
}

TEST_F(TlsIdentityTest, ClientContextSettings) {
  const server_identity id = ensure_self_signed(dir_.path());
  const ssl_ctx_ptr pinned =
      make_client_context(pin_options(fingerprint_of_cert_file(id.cert_file)));
  const ssl_ctx_ptr with_ca = make_client_context(ca_options(id.cert_file));
  for (SSL_CTX* ctx : {pinned.get(), with_ca.get()}) {
    EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx), TLS1_3_VERSION);
    EXPECT_EQ(SSL_CTX_get_max_proto_version(ctx), TLS1_3_VERSION);
    EXPECT_TRUE(SSL_CTX_get_mode(ctx) & SSL_MODE_RELEASE_BUFFERS);
    EXPECT_EQ(SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_PEER, SSL_VERIFY_PEER);
    EXPECT_EQ(SSL_CTX_get_session_cache_mode(ctx), SSL_SESS_CACHE_OFF);
  }
}

TEST_F(TlsIdentityTest, ClientNeedsExactlyOneTrustSource) {
  const server_identity id = ensure_self_signed(dir_.path());
  client_tls_options both = pin_options(fingerprint_of_cert_file(id.cert_file));
  both.ca_file = id.cert_file;
  EXPECT_THROW(make_client_context({}), std::invalid_argument);
  EXPECT_THROW(make_client_context(pin_options("", "localhost")), std::invalid_argument);
  EXPECT_THROW(make_client_context(both), std::invalid_argument);
  EXPECT_THROW(make_client_context(pin_options("not hex")), std::invalid_argument);
}

TEST_F(TlsIdentityTest, ClientRejectsUnreadableCaFile) {
  try {
    make_client_context(ca_options(dir_.path() / "nope.pem"));
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("nope.pem"), std::string::npos) << e.what();
  }
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST_F(TlsIdentityTest, ServerRejectsMissingFiles) {
  const server_identity id{dir_.path() / "none.crt", dir_.path() / "none.key"};
  try {
    make_server_context(id);
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("none.crt"), std::string::npos) << e.what();
  }
  const server_identity real = ensure_self_signed(dir_.path());
  try {
    make_server_context({real.cert_file, dir_.path() / "none.key"});
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("none.key"), std::string::npos) << e.what();
  }
}

TEST_F(TlsIdentityTest, ServerRejectsMismatchedKey) {
  const server_identity a = ensure_self_signed(dir_.path() / "a");
  const server_identity b = ensure_self_signed(dir_.path() / "b");
  try {
    make_server_context({a.cert_file, b.key_file});
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(b.key_file.string()), std::string::npos) << e.what();
  }
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST_F(TlsIdentityTest, ServerRejectsGarbageCertificate) {
  const server_identity id = ensure_self_signed(dir_.path());
  write_text(id.cert_file, "garbage\n");
  EXPECT_THROW(make_server_context(id), std::runtime_error);
}

// ---- handshakes ----------------------------------------------------------------------------

TEST_F(TlsHandshakeTest, PinnedFingerprintSucceedsWithTls13) {
  const ssl_ctx_ptr client_ctx =
      make_client_context(pin_options(fingerprint_of_cert_file(id_.cert_file)));
  tls_pair p = connect_pair(server_ctx_.get(), client_ctx.get());
  ASSERT_TRUE(handshake(p));
  EXPECT_EQ(SSL_version(p.client.get()), TLS1_3_VERSION);
  EXPECT_EQ(SSL_version(p.server.get()), TLS1_3_VERSION);
  EXPECT_EQ(SSL_get_verify_result(p.client.get()), X509_V_OK);
  EXPECT_EQ(transfer(p.client.get(), p.server.get(), "LOGIN"), "LOGIN");
  EXPECT_EQ(transfer(p.server.get(), p.client.get(), "LOGIN-OK"), "LOGIN-OK");
}

TEST_F(TlsHandshakeTest, PinnedFingerprintInOtherFormsSucceeds) {
  const std::string fp = fingerprint_of_cert_file(id_.cert_file);
  for (const std::string& form : {lowercase(fp), without_colons(fp), "sha256:" + fp}) {
    const ssl_ctx_ptr client_ctx = make_client_context(pin_options(form));
    tls_pair p = connect_pair(server_ctx_.get(), client_ctx.get());
    EXPECT_TRUE(handshake(p)) << form;
  }
}

TEST_F(TlsHandshakeTest, WrongFingerprintFails) {
  const server_identity other = ensure_self_signed(dir_.path() / "other");
  const ssl_ctx_ptr client_ctx =
      make_client_context(pin_options(fingerprint_of_cert_file(other.cert_file)));
  tls_pair p = connect_pair(server_ctx_.get(), client_ctx.get());
  EXPECT_FALSE(handshake(p));
  EXPECT_EQ(SSL_get_verify_result(p.client.get()), X509_V_ERR_CERT_REJECTED);
}

TEST_F(TlsHandshakeTest, PinnedModeIgnoresServerName) {
  // The pin is the trust: a name the certificate does not carry does not matter.
  const ssl_ctx_ptr client_ctx =
      make_client_context(pin_options(fingerprint_of_cert_file(id_.cert_file), "example.com"));
  tls_pair p = connect_pair(server_ctx_.get(), client_ctx.get());
  set_client_host_name(p.client.get(), "example.com");
  EXPECT_TRUE(handshake(p));
}

TEST_F(TlsHandshakeTest, ContextMayBeDroppedWhileConnectionsLive) {
  ssl_ctx_ptr client_ctx =
      make_client_context(pin_options(fingerprint_of_cert_file(id_.cert_file)));
  tls_pair p = connect_pair(server_ctx_.get(), client_ctx.get());
  client_ctx.reset();
  server_ctx_.reset();
  ASSERT_TRUE(handshake(p));
  EXPECT_EQ(transfer(p.client.get(), p.server.get(), "PING"), "PING");
}

TEST_F(TlsHandshakeTest, NoResumableSession) {
  const ssl_ctx_ptr client_ctx =
      make_client_context(pin_options(fingerprint_of_cert_file(id_.cert_file)));
  tls_pair p = connect_pair(server_ctx_.get(), client_ctx.get());
  ASSERT_TRUE(handshake(p));
  // Tickets would arrive after the handshake; exchange data both ways so they could.
  EXPECT_EQ(transfer(p.server.get(), p.client.get(), "x"), "x");
  EXPECT_EQ(transfer(p.client.get(), p.server.get(), "y"), "y");
  EXPECT_EQ(SSL_SESSION_is_resumable(SSL_get0_session(p.client.get())), 0);
}

// An idle relay line holds no record buffers: every SSL made from the server context inherits
// SSL_MODE_RELEASE_BUFFERS (which frees the read-ahead buffer whenever it is empty), and nothing
// stays pending once a record has been read.
TEST_F(TlsHandshakeTest, ServerConnectionsReleaseBuffersAndHoldNothingPendingWhenIdle) {
  const ssl_ctx_ptr client_ctx =
      make_client_context(pin_options(fingerprint_of_cert_file(id_.cert_file)));
  tls_pair p = connect_pair(server_ctx_.get(), client_ctx.get());
  EXPECT_TRUE(SSL_get_mode(p.server.get()) & SSL_MODE_RELEASE_BUFFERS);
  ASSERT_TRUE(handshake(p));
  EXPECT_EQ(transfer(p.client.get(), p.server.get(), "PING"), "PING");
  EXPECT_EQ(SSL_has_pending(p.server.get()), 0);
  EXPECT_EQ(SSL_get_read_ahead(p.server.get()), 1);
}

TEST_F(TlsHandshakeTest, CaModeWithMatchingNameSucceeds) {
  EXPECT_EQ(ca_handshake("localhost"), X509_V_OK);
}

TEST_F(TlsHandshakeTest, CaModeWithOtherNameFails) {
  const ssl_ctx_ptr client_ctx = ca_client("example.com");
  tls_pair p = connect_pair(server_ctx_.get(), client_ctx.get());
  set_client_host_name(p.client.get(), "example.com");
  EXPECT_FALSE(handshake(p));
  EXPECT_EQ(SSL_get_verify_result(p.client.get()), X509_V_ERR_HOSTNAME_MISMATCH);
}

TEST_F(TlsHandshakeTest, CaModeWithIpLiterals) {
  EXPECT_EQ(ca_handshake("127.0.0.1"), X509_V_OK);
  EXPECT_EQ(ca_handshake("::1"), X509_V_OK);
  EXPECT_EQ(ca_handshake("127.0.0.2"), X509_V_ERR_IP_ADDRESS_MISMATCH);
  EXPECT_EQ(ca_handshake("::2"), X509_V_ERR_IP_ADDRESS_MISMATCH);
  EXPECT_EQ(ca_handshake("localhost.example"), X509_V_ERR_HOSTNAME_MISMATCH);
}

TEST_F(TlsHandshakeTest, CaModeContextNameAppliesWithoutPerConnectionCall) {
  for (const auto& [name, ok] : {std::pair{"localhost", true}, std::pair{"example.com", false},
                                 std::pair{"127.0.0.1", true}, std::pair{"10.0.0.1", false}}) {
    const ssl_ctx_ptr client_ctx = ca_client(name);
    tls_pair p = connect_pair(server_ctx_.get(), client_ctx.get());
    EXPECT_EQ(handshake(p), ok) << name;
  }
}

TEST_F(TlsHandshakeTest, PerConnectionNameOverridesContextName) {
  const ssl_ctx_ptr client_ctx = ca_client("localhost");
  {
    tls_pair p = connect_pair(server_ctx_.get(), client_ctx.get());
    set_client_host_name(p.client.get(), "example.com");
    EXPECT_FALSE(handshake(p));
  }
  {
    tls_pair p = connect_pair(server_ctx_.get(), client_ctx.get());
    set_client_host_name(p.client.get(), "127.0.0.1");  // switches from DNS to IP check
    EXPECT_TRUE(handshake(p));
  }
}

TEST_F(TlsHandshakeTest, CaModeWithUnrelatedCaFails) {
  const server_identity other = ensure_self_signed(dir_.path() / "other");
  const ssl_ctx_ptr client_ctx = make_client_context(ca_options(other.cert_file, "localhost"));
  tls_pair p = connect_pair(server_ctx_.get(), client_ctx.get());
  set_client_host_name(p.client.get(), "localhost");
  EXPECT_FALSE(handshake(p));
  EXPECT_NE(SSL_get_verify_result(p.client.get()), X509_V_OK);
}

TEST_F(TlsHandshakeTest, SniCarriesDnsNamesOnly) {
  const ssl_ctx_ptr client_ctx = ca_client("localhost");
  {
    tls_pair p = connect_pair(server_ctx_.get(), client_ctx.get());
    set_client_host_name(p.client.get(), "localhost");
    ASSERT_TRUE(handshake(p));
    const char* sni = SSL_get_servername(p.server.get(), TLSEXT_NAMETYPE_host_name);
    ASSERT_NE(sni, nullptr);
    EXPECT_STREQ(sni, "localhost");
  }
  {
    tls_pair p = connect_pair(server_ctx_.get(), client_ctx.get());
    set_client_host_name(p.client.get(), "127.0.0.1");
    ASSERT_TRUE(handshake(p));
    EXPECT_EQ(SSL_get_servername(p.server.get(), TLSEXT_NAMETYPE_host_name), nullptr);
  }
}

TEST_F(TlsHandshakeTest, EmptyHostNameIsNoOp) {
  const ssl_ctx_ptr client_ctx = ca_client("localhost");
  tls_pair p = connect_pair(server_ctx_.get(), client_ctx.get());
  EXPECT_NO_THROW(set_client_host_name(p.client.get(), ""));
  EXPECT_TRUE(handshake(p));  // the context's name still applies
}

TEST_F(TlsHandshakeTest, ServerRefusesTls12) {
  ssl_ctx_ptr old_client(SSL_CTX_new(TLS_client_method()));
  ASSERT_TRUE(old_client);
  SSL_CTX_set_max_proto_version(old_client.get(), TLS1_2_VERSION);
  SSL_CTX_set_verify(old_client.get(), SSL_VERIFY_NONE, nullptr);
  tls_pair p = connect_pair(server_ctx_.get(), old_client.get());
  EXPECT_FALSE(handshake(p));
}

TEST_F(TlsHandshakeTest, ClientRefusesTls12Server) {
  ssl_ctx_ptr old_server(SSL_CTX_new(TLS_server_method()));
  ASSERT_TRUE(old_server);
  SSL_CTX_set_max_proto_version(old_server.get(), TLS1_2_VERSION);
  ASSERT_EQ(SSL_CTX_use_certificate_chain_file(old_server.get(), id_.cert_file.c_str()), 1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey_file(old_server.get(), id_.key_file.c_str(), SSL_FILETYPE_PEM),
            1);
  const ssl_ctx_ptr client_ctx =
      make_client_context(pin_options(fingerprint_of_cert_file(id_.cert_file)));
  tls_pair p = connect_pair(old_server.get(), client_ctx.get());
  EXPECT_FALSE(handshake(p));
}

}  // namespace
}  // namespace switchboard::net
