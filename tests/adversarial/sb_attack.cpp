// sb_attack: hostile clients and a well-behaved probe for the relay (issue 15), written apart from
// the agent library: blocking sockets, one thread per connection where a connection needs one,
// OpenSSL used directly. Frames are encoded and decoded with src/protocol.
//
// TLS: the attack subcommands do not verify the relay's certificate (an attacker has no reason
// to); the probe checks it by its SHA-256 fingerprint when --fingerprint is given.
//
// Every subcommand prints one JSON line of figures on stdout and exits non-zero when one of its
// checks failed (the checks are named in each subcommand's help). Every loop is bounded by
// --seconds; every read has a timeout.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "protocol/errors.hpp"
#include "protocol/frame.hpp"
#include "protocol/messages.hpp"

namespace {

namespace p = switchboard::protocol;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;
using json = nlohmann::json;
using err = p::error_code;

double ms_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

// --- options shared by every subcommand ---------------------------------------------------

struct options {
  std::string relay = "127.0.0.1:7443";
  bool plaintext = false;
  std::string fingerprint;         // probe only: the relay certificate's SHA-256 (hex)
  std::vector<std::string> binds;  // source addresses, used round robin; empty: any
  std::vector<std::string> users;  // acting users (the attacker, the probe, senders)
  std::vector<std::string> password_files;
  std::vector<std::string> peer_users;  // second party (a target, receivers)
  std::vector<std::string> peer_password_files;
  std::string target = "bob";
  std::string service = "echo";
  double seconds = 5;
  int connections = 8;
  unsigned seed = 0;
};

options opt;

std::string read_password(const std::string& file) {
  std::ifstream in(file);
  std::string pw;
  std::getline(in, pw);
  if (pw.empty()) throw std::runtime_error("no password in " + file);
  return pw;
}

// --- one connection: TCP, optionally TLS --------------------------------------------------

SSL_CTX* client_ctx() {
  static SSL_CTX* ctx = [] {
    SSL_CTX* c = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION);
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    return c;
  }();
  return ctx;
}

enum class io { ok, eof, timeout, error };

struct frame {
  p::frame_type type{};
  std::vector<std::uint8_t> payload;
};

std::atomic<unsigned> bind_cursor{0};

// A blocking socket with send and receive timeouts; TLS unless --plaintext. Owned by one thread
// at a time, except shutdown(), which any thread may call to wake the owner.
class conn {
 public:
  conn() = default;
  conn(const conn&) = delete;
  conn& operator=(const conn&) = delete;
  ~conn() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }

  // TCP connect from the next --bind address; rcvbuf > 0 sets SO_RCVBUF before connecting.
  static std::unique_ptr<conn> connect_tcp(int rcvbuf = 0) {
    auto c = std::make_unique<conn>();
    const auto colon = opt.relay.rfind(':');
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<std::uint16_t>(std::stoi(opt.relay.substr(colon + 1))));
    if (::inet_pton(AF_INET, opt.relay.substr(0, colon).c_str(), &to.sin_addr) != 1) {
      throw std::runtime_error("--relay needs an IPv4 ADDR:PORT");
    }
    c->fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd_ < 0) return nullptr;
    if (rcvbuf > 0) ::setsockopt(c->fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if (!opt.binds.empty()) {
      sockaddr_in from{};
      from.sin_family = AF_INET;
      const auto& a = opt.binds[bind_cursor++ % opt.binds.size()];
      ::inet_pton(AF_INET, a.c_str(), &from.sin_addr);
      if (::bind(c->fd_, reinterpret_cast<sockaddr*>(&from), sizeof(from)) != 0) return nullptr;
    }
    const int one = 1;
    ::setsockopt(c->fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->set_timeout(5000ms);
    if (::connect(c->fd_, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) return nullptr;
    return c;
  }

  // connect_tcp, then the TLS handshake unless --plaintext. nullptr on any failure.
  static std::unique_ptr<conn> open(int rcvbuf = 0) {
    auto c = connect_tcp(rcvbuf);
    if (!c || opt.plaintext) return c;
    c->ssl_ = SSL_new(client_ctx());
    SSL_set_fd(c->ssl_, c->fd_);
    if (SSL_connect(c->ssl_) != 1) return nullptr;
    return c;
  }

  int fd() const { return fd_; }
  SSL* ssl() const { return ssl_; }

  void set_timeout(std::chrono::milliseconds t) {
    timeval tv{};
    tv.tv_sec = static_cast<long>(t.count() / 1000);
    tv.tv_usec = static_cast<long>(t.count() % 1000 * 1000);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  }

  // Wakes a thread blocked on this connection; the connection is unusable afterwards.
  void shutdown() { ::shutdown(fd_, SHUT_RDWR); }

  bool write_all(const void* data, std::size_t n) {
    const auto* b = static_cast<const std::uint8_t*>(data);
    while (n > 0) {
      long k = 0;
      if (ssl_ != nullptr) {
        k = SSL_write(ssl_, b, static_cast<int>(std::min<std::size_t>(n, 1 << 30)));
      } else {
        k = ::send(fd_, b, n, MSG_NOSIGNAL);
      }
      if (k <= 0) return false;
      b += k;
      n -= static_cast<std::size_t>(k);
    }
    return true;
  }
  bool write_all(const std::vector<std::uint8_t>& v) { return write_all(v.data(), v.size()); }

  // Bypasses TLS: bytes straight onto the TCP stream.
  bool write_raw(const void* data, std::size_t n) {
    return ::send(fd_, data, n, MSG_NOSIGNAL) == static_cast<long>(n);
  }

  io read_some(void* buf, std::size_t n, std::size_t& got) {
    got = 0;
    errno = 0;
    if (ssl_ != nullptr) {
      const int k = SSL_read(ssl_, buf, static_cast<int>(n));
      if (k > 0) {
        got = static_cast<std::size_t>(k);
        return io::ok;
      }
      const int e = SSL_get_error(ssl_, k);
      if (e == SSL_ERROR_ZERO_RETURN) return io::eof;
      if (e == SSL_ERROR_WANT_READ || errno == EAGAIN || errno == EWOULDBLOCK) return io::timeout;
      if (e == SSL_ERROR_SYSCALL && errno == 0) return io::eof;
      ERR_clear_error();
      return io::error;
    }
    const long k = ::recv(fd_, buf, n, 0);
    if (k > 0) {
      got = static_cast<std::size_t>(k);
      return io::ok;
    }
    if (k == 0) return io::eof;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return io::timeout;
    return io::error;
  }

  io read_exact(void* buf, std::size_t n) {
    auto* b = static_cast<std::uint8_t*>(buf);
    while (n > 0) {
      std::size_t got = 0;
      const io r = read_some(b, n, got);
      if (r != io::ok) return r;
      b += got;
      n -= got;
    }
    return io::ok;
  }

  // The next frame; a frame the relay must never send (unknown type) is io::error.
  io read_frame(frame& f) {
    std::array<std::uint8_t, p::header_size> h{};
    if (const io r = read_exact(h.data(), h.size()); r != io::ok) return r;
    try {
      const auto hdr = p::parse_header(h);
      f.type = hdr.type;
      f.payload.resize(hdr.length);
    } catch (const p::protocol_violation&) {
      return io::error;
    }
    return read_exact(f.payload.data(), f.payload.size());
  }

  bool send(const p::message& m) { return write_all(p::encode(m)); }

  bool send_data(const std::uint8_t* data, std::uint32_t n) {
    const auto h = p::encode_header(p::frame_type::data, n);
    std::vector<std::uint8_t> buf(h.begin(), h.end());
    buf.insert(buf.end(), data, data + n);
    return write_all(buf);
  }

  // Reads until `want` returns true for a control message or `limit` passes; DATA frames are
  // dropped and counted into `data_bytes` (when given). nullopt on timeout, close or error.
  std::optional<p::message> expect(const std::function<bool(const p::message&)>& want,
                                   std::chrono::milliseconds limit,
                                   std::size_t* data_bytes = nullptr) {
    const auto until = clock_type::now() + limit;
    while (clock_type::now() < until) {
      set_timeout(std::max(
          1ms, std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_type::now())));
      frame f;
      if (read_frame(f) != io::ok) return std::nullopt;
      if (f.type == p::frame_type::data) {
        if (data_bytes != nullptr) *data_bytes += f.payload.size();
        continue;
      }
      try {
        auto m = p::decode(f.type, f.payload);
        if (want(m)) return m;
      } catch (const p::protocol_violation&) {
        return std::nullopt;
      }
    }
    return std::nullopt;
  }

  // Reads and drops everything until the relay closes the line: true if it did within `limit`.
  // `logged_out` gets the code of a LOGGED-OUT seen on the way.
  bool await_close(std::chrono::milliseconds limit, std::optional<err>* logged_out = nullptr) {
    const auto until = clock_type::now() + limit;
    std::array<std::uint8_t, 16384> buf{};
    std::vector<std::uint8_t> seen;
    while (clock_type::now() < until) {
      set_timeout(std::max(
          1ms, std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_type::now())));
      std::size_t got = 0;
      const io r = read_some(buf.data(), buf.size(), got);
      if (r == io::eof || r == io::error) break;
      if (r == io::timeout) return false;
      if (seen.size() < 64) seen.insert(seen.end(), buf.begin(), buf.begin() + got);
    }
    if (clock_type::now() >= until) return false;
    if (logged_out != nullptr && seen.size() >= 6 &&
        seen[0] == static_cast<std::uint8_t>(p::frame_type::logged_out)) {
      *logged_out = static_cast<err>(seen[4] << 8 | seen[5]);
    }
    return true;
  }

  // The relay certificate's SHA-256 fingerprint as upper-case hex without colons.
  std::string peer_fingerprint() const {
    if (ssl_ == nullptr) return {};
    X509* cert = SSL_get1_peer_certificate(ssl_);
    if (cert == nullptr) return {};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    X509_digest(cert, EVP_sha256(), md, &len);
    X509_free(cert);
    std::string hex;
    char two[3];
    for (unsigned i = 0; i < len; ++i) {
      std::snprintf(two, sizeof(two), "%02X", md[i]);
      hex += two;
    }
    return hex;
  }

 private:
  int fd_ = -1;
  SSL* ssl_ = nullptr;
};

using conn_ptr = std::unique_ptr<conn>;

// --- logging in ---------------------------------------------------------------------------

// One agent instance of a user: the first line logs in with the password, the others with the
// line token (as the agent does; concurrent password logins would empty the failure buckets).
// An answering instance announces the services it answers in every LOGIN (docs/protocol.md §7:
// the relay takes them from the instance's first); one with none only places calls.
struct instance {
  std::string user;
  std::string password;
  std::vector<std::string> services;
  p::instance_id id{};
  p::ticket token{};
  bool have_token = false;
  std::mutex mu;

  instance(std::string u, std::string pw, std::vector<std::string> svcs)
      : user(std::move(u)), password(std::move(pw)), services(std::move(svcs)) {
    std::random_device rd;
    for (auto& b : id) b = static_cast<std::uint8_t>(rd());
  }
};

struct login_outcome {
  bool ok = false;
  err code = err::ok;  // the FAIL's code when !ok and the relay answered
  bool answered = false;
};

login_outcome login_on(conn& c, instance& inst, bool with_password,
                       std::chrono::milliseconds limit = 15000ms) {
  p::login m;
  m.user = inst.user;
  m.instance = inst.id;
  m.services = inst.services;
  if (with_password) {
    m.auth = p::auth_method::password;
    m.secret = inst.password;
  } else {
    std::lock_guard lock(inst.mu);
    m.auth = p::auth_method::ticket;
    m.secret.assign(inst.token.begin(), inst.token.end());
  }
  login_outcome out;
  if (!c.send(m)) return out;
  const auto r = c.expect(
      [](const p::message& x) {
        return std::holds_alternative<p::login_ok>(x) || std::holds_alternative<p::fail>(x) ||
               std::holds_alternative<p::logged_out>(x);
      },
      limit);
  if (!r) return out;
  out.answered = true;
  if (const auto* ok = std::get_if<p::login_ok>(&*r)) {
    std::lock_guard lock(inst.mu);
    inst.token = ok->ticket;
    inst.have_token = true;
    out.ok = true;
  } else if (const auto* f = std::get_if<p::fail>(&*r)) {
    out.code = f->code;
  } else {
    out.code = std::get<p::logged_out>(*r).code;
  }
  return out;
}

// A new line of `inst`, logged in with its token (the instance's first line must hold on).
conn_ptr token_line(instance& inst, int rcvbuf = 0) {
  auto c = conn::open(rcvbuf);
  if (!c) return nullptr;
  if (!login_on(*c, inst, false).ok) return nullptr;
  return c;
}

conn_ptr password_line(instance& inst, int rcvbuf = 0) {
  auto c = conn::open(rcvbuf);
  if (!c) return nullptr;
  const auto o = login_on(*c, inst, true);
  if (!o.ok) {
    std::cerr << "login of " << inst.user
              << " failed: " << (o.answered ? std::string(p::error_name(o.code)) : "no answer")
              << "\n";
    return nullptr;
  }
  return c;
}

// The services an instance announces: --service when it answers calls, none when it only calls.
std::vector<std::string> services_if(bool answers) {
  if (!answers) return {};
  return {opt.service};
}

std::unique_ptr<instance> acting(std::size_t i, bool answers) {
  if (opt.users.size() <= i || opt.password_files.size() <= i) {
    throw std::runtime_error("needs --user and --password-file #" + std::to_string(i + 1));
  }
  return std::make_unique<instance>(opt.users[i], read_password(opt.password_files[i]),
                                    services_if(answers));
}

std::unique_ptr<instance> peer(std::size_t i, bool answers) {
  if (opt.peer_users.size() <= i || opt.peer_password_files.size() <= i) {
    throw std::runtime_error("needs --peer-user and --peer-password-file #" +
                             std::to_string(i + 1));
  }
  return std::make_unique<instance>(opt.peer_users[i], read_password(opt.peer_password_files[i]),
                                    services_if(answers));
}

template <typename T>
bool is(const p::message& m) {
  return std::holds_alternative<T>(m);
}

// A predicate for conn::expect: the message is a T.
template <typename T>
auto is_a() {
  return [](const p::message& m) { return std::holds_alternative<T>(m); };
}

// Runs body(i) on n threads and joins them.
void run_threads(int n, const std::function<void(int)>& body) {
  std::vector<std::thread> ts;
  ts.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) ts.emplace_back(body, i);
  for (auto& t : ts) t.join();
}

clock_type::time_point deadline() {
  return clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                                 std::chrono::duration<double>(opt.seconds));
}

int finish(json out, bool ok, const std::string& why = {}) {
  out["ok"] = ok;
  if (!ok) out["failure"] = why;
  std::cout << out.dump() << std::endl;
  return ok ? 0 : 1;
}

// --- probe --------------------------------------------------------------------------------

struct probe_options {
  bool password_calls = false;  // each call's line logs in by password, as a new instance
  int interval_ms = 50;
  int call_every_ms = 1000;
  double max_rtt_ms = 1000;
  std::string ready_file;
};

// A well-behaved device: one line PINGs every interval and times each PONG; every
// call_every_ms a new line (token login) places a call to --target:--service, sends a few
// bytes, expects them echoed, RELEASEs and closes. Fails if a PONG took longer than max_rtt_ms
// (or never came), or a call failed.
int run_probe(const probe_options& po) {
  auto me = acting(0, false);
  auto ping_line = password_line(*me);
  if (!ping_line) return finish({{"probe", "login failed"}}, false, "probe could not log in");
  if (!opt.fingerprint.empty()) {
    std::string want;
    for (char ch : opt.fingerprint) {
      if (ch != ':') want += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    }
    if (ping_line->peer_fingerprint() != want) {
      return finish({}, false, "relay fingerprint does not match --fingerprint");
    }
  }
  if (!po.ready_file.empty()) std::ofstream(po.ready_file) << "ready\n";
  std::cerr << "probe: logged in as " << me->user << std::endl;

  const auto until = deadline();
  std::vector<double> rtts;
  std::atomic<bool> ping_failed{false};
  std::string ping_error;
  std::thread pinger([&] {
    std::uint64_t nonce = 0;
    auto next = clock_type::now();
    while (clock_type::now() < until) {
      const auto t0 = clock_type::now();
      const p::ping ping{++nonce};
      if (!ping_line->send(ping)) {
        ping_error = "PING write failed";
        ping_failed = true;
        return;
      }
      const auto limit = std::chrono::milliseconds(static_cast<int>(po.max_rtt_ms * 5) + 1000);
      const auto got = ping_line->expect(
          [&](const p::message& m) {
            const auto* pong = std::get_if<p::pong>(&m);
            return pong != nullptr && pong->nonce == nonce;
          },
          limit);
      if (!got) {
        ping_error = "no PONG within " + std::to_string(limit.count()) + " ms";
        ping_failed = true;
        return;
      }
      const double rtt = ms_since(t0);
      rtts.push_back(rtt);
      if (rtt > po.max_rtt_ms / 4) {
        // Wall-clock time of the PING, to match with the relay's log.
        const auto sent = std::chrono::system_clock::now() -
                          std::chrono::duration_cast<std::chrono::system_clock::duration>(
                              std::chrono::duration<double, std::milli>(rtt));
        const auto t = std::chrono::system_clock::to_time_t(sent);
        const auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(sent.time_since_epoch()).count() %
            1000;
        char when[32];
        std::strftime(when, sizeof(when), "%H:%M:%S", std::gmtime(&t));
        std::fprintf(stderr, "probe: PING sent at %s.%03d UTC took %.1f ms\n", when,
                     static_cast<int>(ms), rtt);
      }
      next += std::chrono::milliseconds(po.interval_ms);
      std::this_thread::sleep_until(std::max(next, clock_type::now()));
    }
  });

  int calls_ok = 0;
  int calls_failed = 0;
  double max_call_ms = 0;
  std::vector<std::string> call_errors;
  auto next_call = clock_type::now();
  std::uint64_t call_no = 0;
  while (clock_type::now() + 500ms < until && !ping_failed) {
    std::this_thread::sleep_until(next_call);
    next_call += std::chrono::milliseconds(po.call_every_ms);
    const auto t0 = clock_type::now();
    std::string error;
    [&] {
      conn_ptr line;
      if (po.password_calls) {
        instance fresh(me->user, me->password, {});
        line = conn::open();
        const auto o = line ? login_on(*line, fresh, true) : login_outcome{};
        if (!o.ok) {
          error = "password login failed: " +
                  (o.answered ? std::string(p::error_name(o.code)) : std::string("no answer"));
          return;
        }
      } else {
        line = token_line(*me);
      }
      if (!line) {
        error = "connect or token login failed";
        return;
      }
      const p::demand d(opt.target, opt.service);
      if (!line->send(d)) {
        error = "DEMAND write failed";
        return;
      }
      const auto answer = line->expect(
          [](const p::message& m) { return is<p::connected>(m) || is<p::fail>(m); }, 15000ms);
      if (!answer) {
        error = "no answer to DEMAND";
        return;
      }
      if (const auto* f = std::get_if<p::fail>(&*answer)) {
        error = "FAIL " + std::string(p::error_name(f->code)) + ": " + f->message;
        return;
      }
      const std::string word = "probe-call-" + std::to_string(++call_no);
      if (!line->send_data(reinterpret_cast<const std::uint8_t*>(word.data()),
                           static_cast<std::uint32_t>(word.size()))) {
        error = "DATA write failed";
        return;
      }
      std::string echoed;
      line->set_timeout(10000ms);
      while (echoed.size() < word.size()) {
        frame f;
        if (line->read_frame(f) != io::ok) {
          error = "echo not received (line closed or timed out)";
          return;
        }
        if (f.type == p::frame_type::data) {
          echoed.append(f.payload.begin(), f.payload.end());
        } else if (f.type != p::frame_type::pong) {
          error = std::string("unexpected ") + p::frame_name(f.type) + " before the echo";
          return;
        }
      }
      if (echoed != word) {
        error = "echo mismatch: '" + echoed + "'";
        return;
      }
      const p::release rel;
      if (!line->send(rel) || !line->expect(is_a<p::released>(), 10000ms)) {
        error = "no RELEASED";
        return;
      }
    }();
    const double took = ms_since(t0);
    max_call_ms = std::max(max_call_ms, took);
    if (error.empty()) {
      ++calls_ok;
    } else {
      ++calls_failed;
      if (call_errors.size() < 5) call_errors.push_back(error);
      std::cerr << "probe: call failed: " << error << std::endl;
    }
  }
  pinger.join();

  std::sort(rtts.begin(), rtts.end());
  const double max_rtt = rtts.empty() ? 0 : rtts.back();
  const double p99 = rtts.empty() ? 0 : rtts[std::min(rtts.size() - 1, rtts.size() * 99 / 100)];
  json out{{"probe", me->user},
           {"pings", rtts.size()},
           {"max_rtt_ms", std::round(max_rtt * 10) / 10},
           {"p99_rtt_ms", std::round(p99 * 10) / 10},
           {"calls_ok", calls_ok},
           {"calls_failed", calls_failed},
           {"max_call_ms", std::round(max_call_ms)},
           {"call_errors", call_errors}};
  if (ping_failed) return finish(out, false, ping_error);
  if (rtts.empty()) return finish(out, false, "no PING round trip");
  if (max_rtt > po.max_rtt_ms) return finish(out, false, "a PING round trip exceeded the bound");
  if (calls_failed > 0) return finish(out, false, "a call failed");
  if (calls_ok == 0) return finish(out, false, "no call was placed");
  return finish(out, true);
}

// --- garbage and oversized lengths --------------------------------------------------------

// Random bytes, in three places: straight onto TCP (the TLS layer meets them), inside TLS
// before LOGIN (the frame parser meets them), and inside TLS after a LOGIN. Check: the relay
// closes every such connection within 3 s (well before the 10 s login deadline).
int run_garbage() {
  auto inst = acting(0, false);
  auto holder = password_line(*inst);
  if (!holder) return finish({}, false, "attacker could not log in");
  const auto until = deadline();
  std::atomic<int> sent{0}, closed{0}, hung{0}, connect_failed{0};
  std::mutex mu;
  double max_close_ms = 0;
  run_threads(opt.connections, [&](int t) {
    std::mt19937_64 rng(opt.seed + static_cast<unsigned>(t));
    for (int round = 0; clock_type::now() < until; ++round) {
      const int where = (t + round) % 3;
      conn_ptr c = where == 0 ? conn::connect_tcp() : where == 1 ? conn::open() : token_line(*inst);
      if (!c) {
        ++connect_failed;
        std::this_thread::sleep_for(50ms);
        continue;
      }
      // Random bytes, then 0xFF (no frame type, no TLS record type) past the longest control
      // payload or TLS record the random bytes may have announced: a frame or record left
      // incomplete would make the relay wait for its bytes, which it rightly does.
      std::vector<std::uint8_t> junk(4096 + rng() % 61440);
      for (auto& b : junk) b = static_cast<std::uint8_t>(rng());
      junk.insert(junk.end(), 17 * 1024 + 8, 0xFF);
      const auto t0 = clock_type::now();
      if (where == 0) {
        c->write_raw(junk.data(), junk.size());
      } else {
        c->write_all(junk);
      }
      ++sent;
      if (c->await_close(3000ms)) {
        ++closed;
        std::lock_guard lock(mu);
        max_close_ms = std::max(max_close_ms, ms_since(t0));
      } else {
        ++hung;
        std::lock_guard lock(mu);
        std::fprintf(stderr,
                     "garbage: still open after 3 s (%s), first bytes %02x %02x %02x %02x\n",
                     where == 0   ? "raw TCP"
                     : where == 1 ? "TLS, before LOGIN"
                                  : "TLS, after LOGIN",
                     junk[0], junk[1], junk[2], junk[3]);
      }
    }
  });
  json out{{"attack", "garbage"},
           {"connections_sent_garbage", sent.load()},
           {"closed_by_relay", closed.load()},
           {"still_open_after_3s", hung.load()},
           {"connect_failed", connect_failed.load()},
           {"max_close_ms", std::round(max_close_ms)}};
  if (sent == 0) return finish(out, false, "no garbage was sent");
  if (hung > 0) return finish(out, false, "the relay kept a connection that sent garbage");
  return finish(out, true);
}

// Frame and record headers whose lengths break the limits, each on a new connection: the relay
// must close the line from the header alone (it never gets the announced bytes). Check: every
// one is closed within 2 s.
int run_oversized() {
  auto inst = acting(0, false);
  auto holder = password_line(*inst);
  if (!holder) return finish({}, false, "attacker could not log in");
  struct kase {
    const char* name;
    bool logged_in;
    bool raw;  // bytes straight onto TCP, not through TLS
    std::vector<std::uint8_t> bytes;
  };
  auto header = [](std::uint8_t type, std::uint32_t len) {
    return std::vector<std::uint8_t>{type, static_cast<std::uint8_t>(len >> 16),
                                     static_cast<std::uint8_t>(len >> 8),
                                     static_cast<std::uint8_t>(len)};
  };
  std::vector<kase> cases = {
      {"DATA 16 MiB before LOGIN", false, false, header(0x10, 0xFFFFFF)},
      {"LOGIN 16 KiB + 1", false, false, header(0x01, 16385)},
      {"PING 16 MiB after LOGIN", true, false, header(0x02, 0xFFFFFF)},
      {"DATA 1 MiB + 1 after LOGIN", true, false, header(0x10, (1u << 20) + 1)},
      {"PEERS? 16 KiB + 1 after LOGIN", true, false, header(0x03, 16385)},
  };
  if (!opt.plaintext) {
    // TLS record headers longer than 2^14 + 256: during the handshake and after LOGIN.
    cases.push_back({"TLS handshake record of 65535", false, true, {0x16, 0x03, 0x01, 0xFF, 0xFF}});
    cases.push_back(
        {"TLS record of 2^14+257 after LOGIN", true, true, {0x17, 0x03, 0x03, 0x41, 0x01}});
  }
  const auto until = deadline();
  std::mutex mu;
  json per_case = json::object();
  std::vector<int> closed(cases.size()), hung(cases.size());
  std::vector<double> worst(cases.size());
  std::atomic<int> connect_failed{0};
  run_threads(opt.connections, [&](int t) {
    for (int round = 0; clock_type::now() < until; ++round) {
      const std::size_t k = static_cast<std::size_t>(t + round) % cases.size();
      const auto& cs = cases[k];
      conn_ptr c;
      if (cs.raw && !cs.logged_in) {
        c = conn::connect_tcp();
      } else {
        c = cs.logged_in ? token_line(*inst) : conn::open();
      }
      if (!c) {
        ++connect_failed;
        std::this_thread::sleep_for(50ms);
        continue;
      }
      const auto t0 = clock_type::now();
      if (cs.raw) {
        c->write_raw(cs.bytes.data(), cs.bytes.size());
      } else {
        c->write_all(cs.bytes);
      }
      const bool ok = c->await_close(2000ms);
      std::lock_guard lock(mu);
      if (ok) {
        ++closed[k];
        worst[k] = std::max(worst[k], ms_since(t0));
      } else {
        ++hung[k];
      }
    }
  });
  bool all_ok = true;
  int total = 0;
  for (std::size_t k = 0; k < cases.size(); ++k) {
    per_case[cases[k].name] = {
        {"closed", closed[k]}, {"hung", hung[k]}, {"max_close_ms", std::round(worst[k])}};
    total += closed[k] + hung[k];
    if (hung[k] > 0) all_ok = false;
  }
  json out{{"attack", "oversized"},
           {"attempts", total},
           {"connect_failed", connect_failed.load()},
           {"cases", per_case}};
  if (total < static_cast<int>(cases.size())) return finish(out, false, "not every case ran");
  if (!all_ok) return finish(out, false, "a line with an oversized length stayed open for 2 s");
  return finish(out, true);
}

// --- connections that never log in -------------------------------------------------------

// The ClientHello a fresh client would send, as bytes (drip-fed by slowloris-tls).
std::vector<std::uint8_t> client_hello_bytes() {
  SSL* ssl = SSL_new(client_ctx());
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, rbio, wbio);
  SSL_set_connect_state(ssl);
  SSL_do_handshake(ssl);
  std::vector<std::uint8_t> out(static_cast<std::size_t>(BIO_pending(wbio)));
  BIO_read(wbio, out.data(), static_cast<int>(out.size()));
  SSL_free(ssl);
  return out;
}

enum class hold_mode { silent_tcp, drip_client_hello, after_handshake };

// Holds --connections connections that never log in, reopening those the relay closes, for
// --seconds. Check: no connection outlives the login deadline (--login-deadline-s) by more than
// 3 s. Figures: opened, refused (closed within 200 ms of the connect: a cap), closed later, and
// the longest life of a connection the relay closed.
int run_hold(hold_mode mode, double login_deadline_s) {
  const auto hello = client_hello_bytes();
  struct held {
    conn_ptr c;
    clock_type::time_point opened;
    std::size_t dripped = 0;
  };
  std::vector<held> hs(static_cast<std::size_t>(opt.connections));
  const auto until = deadline();
  int opened = 0, refused = 0, closed_later = 0, connect_failed = 0, overlived = 0;
  double max_life_s = 0;
  const double limit_s = login_deadline_s + 3;
  auto open_one = [&](held& h) {
    h.c = mode == hold_mode::after_handshake ? conn::open() : conn::connect_tcp();
    h.opened = clock_type::now();
    h.dripped = 0;
    if (h.c) {
      ++opened;
    } else {
      ++connect_failed;
    }
  };
  auto next_drip = clock_type::now();
  auto next_reopen = clock_type::now();
  std::vector<pollfd> fds;
  while (clock_type::now() < until) {
    // (Re)open at most 256 connections per 50 ms, so a cap that closes at accept is not a busy
    // loop.
    if (clock_type::now() >= next_reopen) {
      int budget = 256;
      for (auto& h : hs) {
        if (!h.c && budget-- > 0) open_one(h);
      }
      next_reopen = clock_type::now() + 50ms;
    }
    if (mode == hold_mode::drip_client_hello && clock_type::now() >= next_drip) {
      for (auto& h : hs) {
        if (h.c && h.dripped < hello.size()) h.c->write_raw(&hello[h.dripped++], 1);
      }
      next_drip += 1s;
    }
    fds.clear();
    for (auto& h : hs) {
      if (h.c) fds.push_back({h.c->fd(), POLLIN | POLLRDHUP, 0});
    }
    ::poll(fds.data(), fds.size(), 50);
    std::size_t j = 0;
    for (auto& h : hs) {
      if (!h.c) continue;
      const auto& pf = fds[j++];
      const double life_s = ms_since(h.opened) / 1000;
      if (life_s > limit_s) {
        ++overlived;
        h.c.reset();  // counted once; reopened
        continue;
      }
      if (pf.revents == 0) continue;
      // Anything from the relay on a connection that says nothing is its end (an alert, a
      // LOGGED-OUT) or the close itself.
      h.c.reset();
      if (life_s < 0.2) {
        ++refused;
      } else {
        ++closed_later;
        max_life_s = std::max(max_life_s, life_s);
      }
    }
  }
  // Settle: 500 ms more without opening anything, so that closes the relay made (a cap's
  // refusals, evictions) are seen; what is still open then is what the relay holds, at most.
  const auto settle_until = clock_type::now() + 500ms;
  while (clock_type::now() < settle_until) {
    fds.clear();
    for (auto& h : hs) {
      if (h.c) fds.push_back({h.c->fd(), POLLIN | POLLRDHUP, 0});
    }
    ::poll(fds.data(), fds.size(), 50);
    std::size_t j = 0;
    for (auto& h : hs) {
      if (!h.c) continue;
      if (fds[j++].revents != 0) h.c.reset();
    }
  }
  int still_open = 0;
  for (auto& h : hs) still_open += h.c ? 1 : 0;
  const char* name = mode == hold_mode::silent_tcp          ? "half-open"
                     : mode == hold_mode::drip_client_hello ? "slowloris-tls"
                                                            : "slowloris-login";
  json out{{"attack", name},
           {"connections", opt.connections},
           {"opened", opened},
           {"refused_at_once", refused},
           {"closed_later", closed_later},
           {"still_open_at_end", still_open},
           {"connect_failed", connect_failed},
           {"max_life_s", std::round(max_life_s * 10) / 10},
           {"outlived_login_deadline", overlived}};
  if (opened == 0) return finish(out, false, "no connection opened");
  if (overlived > 0) return finish(out, false, "a connection outlived the login deadline + 3 s");
  return finish(out, true);
}

// --- floods on logged-in lines ------------------------------------------------------------

// Each connection pipelines PEERS? as fast as it can while a second thread reads the answers.
// Check: the answers keep coming (at least one per connection per second of the attack).
int run_peers_flood() {
  auto inst = acting(0, false);
  auto holder = password_line(*inst);
  if (!holder) return finish({}, false, "attacker could not log in");
  const auto until = deadline();
  std::atomic<long> requests{0}, answers{0}, lines_lost{0};
  run_threads(opt.connections, [&](int) {
    auto c = token_line(*inst);
    if (!c) {
      ++lines_lost;
      return;
    }
    // OpenSSL forbids concurrent SSL_read and SSL_write on one SSL: write a batch, read its
    // answers.
    const auto one = p::encode(p::peers_request{});
    std::vector<std::uint8_t> batch;
    for (int i = 0; i < 64; ++i) batch.insert(batch.end(), one.begin(), one.end());
    while (clock_type::now() < until) {
      if (!c->write_all(batch)) {
        ++lines_lost;
        return;
      }
      requests += 64;
      for (int i = 0; i < 64; ++i) {
        if (!c->expect(is_a<p::peers>(), 5000ms)) {
          ++lines_lost;
          return;
        }
        ++answers;
      }
    }
  });
  json out{{"attack", "peers-flood"},
           {"requests", requests.load()},
           {"answers", answers.load()},
           {"answers_per_s", std::round(static_cast<double>(answers) / opt.seconds)},
           {"lines_lost", lines_lost.load()}};
  if (lines_lost > 0) return finish(out, false, "the relay dropped a line that sent only PEERS?");
  if (answers < static_cast<long>(opt.connections * opt.seconds)) {
    return finish(out, false, "PEERS answers stalled");
  }
  return finish(out, true);
}

// Each connection places demand after demand: to --target:--service (releasing each call at once),
// to a user that does not exist, and to itself. Check: every demand is answered within 15 s.
int run_demand_flood() {
  auto inst = acting(0, false);
  auto holder = password_line(*inst);
  if (!holder) return finish({}, false, "attacker could not log in");
  const auto until = deadline();
  std::mutex mu;
  std::map<std::string, long> outcomes;
  std::atomic<long> unanswered{0};
  run_threads(opt.connections, [&](int t) {
    auto c = token_line(*inst);
    if (!c) {
      ++unanswered;
      return;
    }
    for (long round = 0; clock_type::now() < until; ++round) {
      const int kind = static_cast<int>((t + round) % 3);
      const p::demand d(kind == 0   ? opt.target
                        : kind == 1 ? std::string("nobody-") + std::to_string(t)
                                    : inst->user,
                        opt.service);
      if (!c->send(d)) {
        ++unanswered;
        return;
      }
      const auto a = c->expect(
          [](const p::message& m) { return is<p::connected>(m) || is<p::fail>(m); }, 15000ms);
      if (!a) {
        ++unanswered;
        return;
      }
      std::string key = "CONNECTED";
      if (const auto* f = std::get_if<p::fail>(&*a)) key = std::string(p::error_name(f->code));
      {
        std::lock_guard lock(mu);
        ++outcomes[key];
      }
      if (key == "CONNECTED") {
        const p::release rel;
        if (!c->send(rel) || !c->expect(is_a<p::released>(), 15000ms)) {
          ++unanswered;
          return;
        }
      }
    }
  });
  long total = 0;
  for (const auto& [k, v] : outcomes) total += v;
  json out{{"attack", "demand-flood"},
           {"demands", total},
           {"outcomes", outcomes},
           {"demands_per_s", std::round(static_cast<double>(total) / opt.seconds)},
           {"unanswered", unanswered.load()}};
  if (unanswered > 0) return finish(out, false, "a demand or release went unanswered");
  if (total == 0) return finish(out, false, "no demand was answered");
  return finish(out, true);
}

// Each connection sends KeyUpdate records (no application bytes) as fast as it can, half of
// them after LOGIN, half before, half with update_requested (the relay owes an answer to
// each); a line the relay ends is replaced. Check: the relay ends every
// flooding line within 3 s (its cap is 32 KeyUpdates per second).
int run_keyupdate_flood() {
  if (opt.plaintext) return finish({}, false, "keyupdate-flood needs TLS");
  auto inst = acting(0, false);
  auto holder = password_line(*inst);
  if (!holder) return finish({}, false, "attacker could not log in");
  const auto until = deadline();
  std::atomic<long> sent{0}, lines_ended{0}, survived{0}, open_failed{0};
  std::mutex mu;
  double max_life_ms = 0;
  run_threads(opt.connections, [&](int t) {
    for (int round = 0; clock_type::now() < until; ++round) {
      const bool logged_in = (t + round) % 2 == 0;
      // Every other thread asks the relay to answer each KeyUpdate with its own.
      const int kind = t % 2 == 0 ? SSL_KEY_UPDATE_NOT_REQUESTED : SSL_KEY_UPDATE_REQUESTED;
      auto c = logged_in ? token_line(*inst) : conn::open();
      if (!c) {
        ++open_failed;
        std::this_thread::sleep_for(50ms);
        continue;
      }
      c->set_timeout(1000ms);
      const auto t0 = clock_type::now();
      bool ended = false;
      while (clock_type::now() < until && ms_since(t0) < 3000) {
        if (SSL_key_update(c->ssl(), kind) != 1 || SSL_do_handshake(c->ssl()) != 1) {
          ERR_clear_error();
          ended = true;
          break;
        }
        ++sent;
      }
      if (!ended && ms_since(t0) >= 3000) {
        ++survived;
      } else if (ended) {
        ++lines_ended;
        std::lock_guard lock(mu);
        max_life_ms = std::max(max_life_ms, ms_since(t0));
      }
    }
  });
  json out{{"attack", "keyupdate-flood"},
           {"keyupdates_written", sent.load()},
           {"lines_ended_by_relay", lines_ended.load()},
           {"lines_alive_after_3s", survived.load()},
           {"open_failed", open_failed.load()},
           {"max_line_life_ms", std::round(max_life_ms)}};
  if (survived > 0) return finish(out, false, "a line flooding KeyUpdates survived 3 s");
  if (lines_ended == 0) return finish(out, false, "no flooding line was ended");
  return finish(out, true);
}

// --opt.connections concurrent wrong-password logins for --target (one user), from --bind, for
// --seconds (with --spray: a new user ID per guess, see below). Check: the BAD_CREDENTIALS answers
// (each one a password check) in any window of one refill period are at most burst + 1 (the
// bucket's burst and the one token a refill period adds), and in all at most burst + seconds /
// refill + 1.
int run_brute_force(double burst, double refill_s, bool spray) {
  const auto until = deadline();
  std::mutex mu;
  std::vector<double> bad_at;  // seconds since the start
  std::map<std::string, long> answers;
  const auto t_start = clock_type::now();
  run_threads(opt.connections, [&](int t) {
    for (int round = 0; clock_type::now() < until; ++round) {
      auto c = conn::open();
      if (!c) {
        std::lock_guard lock(mu);
        ++answers["connect_failed"];
        std::this_thread::sleep_for(50ms);
        continue;
      }
      // --spray: a new user ID each time, so only the per-address buckets hold it back.
      const std::string user =
          spray ? opt.target + "-" + std::to_string(t) + "-" + std::to_string(round) : opt.target;
      instance guess(user, "guess-" + std::to_string(t) + "-" + std::to_string(round), {});
      const auto o = login_on(*c, guess, true);
      std::lock_guard lock(mu);
      if (o.ok) {
        ++answers["LOGIN_OK"];
      } else if (!o.answered) {
        ++answers["no_answer"];
      } else {
        ++answers[std::string(p::error_name(o.code))];
        if (o.code == err::bad_credentials) bad_at.push_back(ms_since(t_start) / 1000);
      }
    }
  });
  std::sort(bad_at.begin(), bad_at.end());
  std::size_t max_window = 0;
  for (std::size_t i = 0, j = 0; i < bad_at.size(); ++i) {
    while (bad_at[i] - bad_at[j] >= refill_s) ++j;
    max_window = std::max(max_window, i - j + 1);
  }
  const double allowed_total = burst + std::floor(opt.seconds / refill_s) + 1;
  json out{{"attack", "brute-force"},
           {"target", opt.target},
           {"answers", answers},
           {"bad_credentials", bad_at.size()},
           {"max_bad_credentials_in_one_refill_period", max_window},
           {"allowed_per_period", burst + 1},
           {"allowed_total", allowed_total}};
  if (answers.count("LOGIN_OK") > 0) return finish(out, false, "a guessed password logged in");
  if (spray) {
    // Per address: burst + one token per refill period; the addresses add up.
    const double per_address = burst + std::floor(opt.seconds / refill_s) + 1;
    const double n = static_cast<double>(std::max<std::size_t>(1, opt.binds.size()));
    out["allowed_total"] = per_address * n;
    if (static_cast<double>(bad_at.size()) > per_address * n) {
      return finish(out, false, "more password checks than the address buckets allow");
    }
    return finish(out, true);
  }
  if (static_cast<double>(max_window) > burst + 1) {
    return finish(out, false, "more password checks in one refill period than the bucket holds");
  }
  if (static_cast<double>(bad_at.size()) > allowed_total) {
    return finish(out, false, "more password checks than the bucket allows");
  }
  if (answers["RATE_LIMITED"] == 0) return finish(out, false, "never RATE_LIMITED");
  return finish(out, true);
}

// --opt.connections threads log in with the right password (each login a new call-only
// instance, so each one is a whole Argon2id check) and close, again and again, for --seconds.
// Right passwords take nothing from the failure buckets. Figures: logins per second, the
// answers, the slowest login. Check: every login was answered.
int run_login_flood() {
  auto me = acting(0, false);
  const auto until = deadline();
  std::mutex mu;
  std::map<std::string, long> answers;
  double slowest_ms = 0;
  run_threads(opt.connections, [&](int) {
    while (clock_type::now() < until) {
      auto c = conn::open();
      if (!c) {
        std::lock_guard lock(mu);
        ++answers["connect_failed"];
        continue;
      }
      instance fresh(me->user, me->password, {});
      const auto t0 = clock_type::now();
      const auto o = login_on(*c, fresh, true);
      std::lock_guard lock(mu);
      slowest_ms = std::max(slowest_ms, ms_since(t0));
      if (o.ok) {
        ++answers["LOGIN_OK"];
      } else if (!o.answered) {
        ++answers["no_answer"];
      } else {
        ++answers[std::string(p::error_name(o.code))];
      }
    }
  });
  long total = 0;
  for (const auto& [k, v] : answers) total += v;
  json out{{"attack", "login-flood"},
           {"answers", answers},
           {"logins_ok_per_s", std::round(static_cast<double>(answers["LOGIN_OK"]) / opt.seconds)},
           {"slowest_login_ms", std::round(slowest_ms)}};
  if (answers["no_answer"] > 0) return finish(out, false, "a LOGIN went unanswered");
  if (total == 0) return finish(out, false, "no login was answered");
  return finish(out, true);
}

// --connections token logins of one instance, as fast as 4 threads make them (each line closed
// at once), then nothing until --seconds: a burst of logins, then quiet. (The relay trims its
// heap 2 s after a burst of at least 256 logins has ended.) Check: every login succeeded.
int run_login_burst() {
  auto inst = acting(0, false);
  auto holder = password_line(*inst);
  if (!holder) return finish({}, false, "attacker could not log in");
  const auto until = deadline();
  const auto t0 = clock_type::now();
  std::atomic<int> next{0}, ok{0}, failed{0};
  run_threads(4, [&](int) {
    while (next++ < opt.connections && clock_type::now() < until) {
      if (token_line(*inst)) {
        ++ok;
      } else {
        ++failed;
      }
    }
  });
  const double burst_s = ms_since(t0) / 1000;
  std::this_thread::sleep_until(until);
  json out{{"attack", "login-burst"},
           {"logins", ok.load()},
           {"failed", failed.load()},
           {"burst_s", std::round(burst_s * 100) / 100}};
  if (failed > 0 || ok < opt.connections) return finish(out, false, "a token login failed");
  return finish(out, true);
}

// --- the two crash sequences --------------------------------------------------------------

// Crash 1 (TLS): the caller (--user) stops reading and floods PINGs until the relay's writes to
// it are stuck, then DEMANDs the target (--peer-user, a raw answering line here); the target
// ACCEPTs only after the ring limit (--ring-wait-s). Check: the target gets TERMINATE(NO_ANSWER),
// its RELEASE is answered RELEASED, and its line still answers PING.
int run_crash1(double ring_wait_s) {
  auto caller = acting(0, false);
  auto target = peer(0, true);
  auto t_line = password_line(*target);
  auto c_line = conn::open(16384);  // a small receive window: unread PONGs fill it quickly
  if (!t_line || !c_line || !login_on(*c_line, *caller, true).ok) {
    return finish({}, false, "could not log in caller and target");
  }
  // Flood PINGs without reading until what the caller has unread stops growing for 500 ms.
  std::vector<std::uint8_t> batch;
  std::uint64_t nonce = 0;
  std::size_t last = 0;
  auto still_since = clock_type::now();
  const auto give_up = clock_type::now() + 20s;
  bool stuck = false;
  c_line->set_timeout(2000ms);
  while (clock_type::now() < give_up) {
    batch.clear();
    for (int i = 0; i < 256; ++i) {
      const auto f = p::encode(p::ping{++nonce});
      batch.insert(batch.end(), f.begin(), f.end());
    }
    if (!c_line->write_all(batch)) break;  // our own writes block: the relay stopped reading
    std::this_thread::sleep_for(5ms);
    int unread = 0;
    ::ioctl(c_line->fd(), FIONREAD, &unread);
    if (static_cast<std::size_t>(unread) != last) {
      last = static_cast<std::size_t>(unread);
      still_since = clock_type::now();
    } else if (clock_type::now() - still_since > 500ms) {
      stuck = true;
      break;
    }
  }
  json out{{"attack", "crash1"}, {"pings_sent", nonce}, {"caller_unread_bytes", last}};
  if (!stuck) return finish(out, false, "the relay's writes to the caller never stalled");
  c_line->set_timeout(5000ms);
  const p::demand d(target->user, opt.service);
  if (!c_line->write_all(p::encode(d))) return finish(out, false, "DEMAND write failed");
  const auto in = t_line->expect(is_a<p::incoming>(), 10000ms);
  if (!in) return finish(out, false, "the target got no INCOMING");
  std::this_thread::sleep_for(std::chrono::duration<double>(ring_wait_s));
  p::accept late;
  late.session = std::get<p::incoming>(*in).session;
  const auto t0 = clock_type::now();
  if (!t_line->send(late)) return finish(out, false, "late ACCEPT write failed");
  const auto term = t_line->expect(
      [](const p::message& m) { return is<p::terminate>(m) || is<p::logged_out>(m); }, 10000ms);
  if (!term || !is<p::terminate>(*term)) return finish(out, false, "target got no TERMINATE");
  out["target_terminate"] = std::string(p::error_name(std::get<p::terminate>(*term).code));
  const p::release rel;
  if (!t_line->send(rel) || !t_line->expect(is_a<p::released>(), 5000ms)) {
    return finish(out, false, "the target's RELEASE was not answered");
  }
  const p::ping ping{4242};
  if (!t_line->send(ping) || !t_line->expect(is_a<p::pong>(), 2000ms)) {
    return finish(out, false, "the target's line does not answer PING");
  }
  out["after_late_accept_ms"] = std::round(ms_since(t0));
  if (std::get<p::terminate>(*term).code != err::no_answer) {
    return finish(out, false, "TERMINATE was not NO_ANSWER");
  }
  c_line->shutdown();
  return finish(out, true);
}

// Crash 2: two lines of one instance of the caller (password + token login); one pairs with
// the target (--peer-user, raw answering line) and forwards 40 DATA frames each way (so the
// session moves to a forwarding thread); then LOGOUT on the idle line and at once on the paired
// one, in both orders, for --rounds. Check per round: the target gets
// TERMINATE(PEER_LOGGED_OUT) and RELEASED, both caller lines end, the target answers PING.
int run_crash2(int rounds) {
  auto target = peer(0, true);
  auto t_line = password_line(*target);
  if (!t_line) return finish({}, false, "target could not log in");
  std::vector<std::uint8_t> payload(512, 0x5a);
  int done = 0;
  json out{{"attack", "crash2"}};
  for (int round = 0; round < rounds; ++round) {
    auto caller = acting(0, false);
    auto idle = password_line(*caller);
    auto paired = idle ? token_line(*caller) : nullptr;
    if (!paired)
      return finish(out, false, "caller could not log in (round " + std::to_string(round) + ")");
    const p::demand d(target->user, opt.service);
    paired->send(d);
    const auto in = t_line->expect(is_a<p::incoming>(), 5000ms);
    if (!in) return finish(out, false, "no INCOMING");
    p::accept acc;
    acc.session = std::get<p::incoming>(*in).session;
    t_line->send(acc);
    if (!paired->expect(is_a<p::connected>(), 5000ms)) return finish(out, false, "no CONNECTED");
    for (int i = 0; i < 40; ++i) paired->send_data(payload.data(), 512);
    std::size_t got = 0;
    t_line->set_timeout(5000ms);
    while (got < 40 * 512) {
      frame f;
      if (t_line->read_frame(f) != io::ok) return finish(out, false, "target lost the DATA");
      if (f.type == p::frame_type::data) got += f.payload.size();
    }
    for (int i = 0; i < 40; ++i) t_line->send_data(payload.data(), 512);
    got = 0;
    paired->set_timeout(5000ms);
    while (got < 40 * 512) {
      frame f;
      if (paired->read_frame(f) != io::ok) return finish(out, false, "caller lost the DATA");
      if (f.type == p::frame_type::data) got += f.payload.size();
    }
    const auto lo = p::encode(p::logout{});
    if (round % 2 == 0) {
      idle->write_all(lo);
      paired->write_all(lo);
    } else {
      paired->write_all(lo);
      idle->write_all(lo);
    }
    const auto term = t_line->expect(is_a<p::terminate>(), 5000ms);
    if (!term)
      return finish(out, false, "target got no TERMINATE (round " + std::to_string(round) + ")");
    if (std::get<p::terminate>(*term).code != err::peer_logged_out) {
      return finish(
          out, false,
          "TERMINATE was " + std::string(p::error_name(std::get<p::terminate>(*term).code)));
    }
    const p::release rel;
    if (!t_line->send(rel) || !t_line->expect(is_a<p::released>(), 5000ms)) {
      return finish(out, false, "no RELEASED (round " + std::to_string(round) + ")");
    }
    if (!idle->await_close(5000ms) || !paired->await_close(5000ms)) {
      return finish(out, false, "a caller line stayed open after LOGOUT");
    }
    const p::ping ping{static_cast<std::uint64_t>(round)};
    if (!t_line->send(ping) || !t_line->expect(is_a<p::pong>(), 2000ms)) {
      return finish(out, false, "the target's line does not answer PING");
    }
    ++done;
  }
  out["rounds"] = done;
  return finish(out, true);
}

// --- a caller holding a target's lines ----------------------------------------------------

// One caller (--user) demands --target:--service again and again on new lines and holds every
// accepted call idle (PINGs only) for --seconds. Check: it never holds more than --max-held
// (the caller share of the target's lines, 48 of 64 by default), and the relay says TARGET_BUSY.
int run_hold_lines(int max_held) {
  auto inst = acting(0, false);
  auto holder = password_line(*inst);
  if (!holder) return finish({}, false, "attacker could not log in");
  const auto until = deadline();
  std::vector<conn_ptr> held;
  std::map<std::string, long> outcomes;
  int attempts = 0;
  while (clock_type::now() < until && attempts < opt.connections) {
    ++attempts;
    auto c = token_line(*inst);
    if (!c) {
      ++outcomes["line_refused"];
      std::this_thread::sleep_for(100ms);
      continue;
    }
    const p::demand d(opt.target, opt.service);
    c->send(d);
    const auto a = c->expect(
        [](const p::message& m) { return is<p::connected>(m) || is<p::fail>(m); }, 15000ms);
    if (!a) {
      ++outcomes["no_answer"];
      continue;
    }
    if (const auto* f = std::get_if<p::fail>(&*a)) {
      ++outcomes[std::string(p::error_name(f->code))];
      std::this_thread::sleep_for(50ms);
      continue;
    }
    ++outcomes["CONNECTED"];
    held.push_back(std::move(c));
  }
  // Hold until the end; PINGs keep the lines alive.
  while (clock_type::now() < until) {
    std::this_thread::sleep_for(1s);
    for (auto& c : held) {
      const p::ping ping{1};
      c->send(ping);
    }
  }
  json out{{"attack", "hold-lines"},
           {"held", held.size()},
           {"outcomes", outcomes},
           {"max_held", max_held}};
  if (static_cast<int>(held.size()) > max_held) {
    return finish(out, false, "the caller holds more than its share of the target's lines");
  }
  if (outcomes["TARGET_BUSY"] == 0) return finish(out, false, "never TARGET_BUSY");
  return finish(out, true);
}

// --- slow readers -------------------------------------------------------------------------

// --connections pairs: pair i's sender (user i % #users) calls its receiver (peer user
// i % #peer-users, all of whose lines answer) and pushes DATA frames as fast as it can; the
// receiver reads --read-bytes every --read-interval-ms. For --seconds. Figures: bytes sent and
// received. Check: every pair connected.
int run_slow_readers(std::size_t read_bytes, int read_interval_ms, std::uint32_t frame_bytes,
                     const std::string& ready_file) {
  const std::size_t pairs = static_cast<std::size_t>(opt.connections);
  std::vector<std::unique_ptr<instance>> senders, receivers;
  for (std::size_t i = 0; i < opt.users.size(); ++i) senders.push_back(acting(i, false));
  for (std::size_t i = 0; i < opt.peer_users.size(); ++i) receivers.push_back(peer(i, true));
  if (senders.empty() || receivers.empty()) return finish({}, false, "needs senders and receivers");
  // Each instance's first line logs in with its password, the others with its token.
  std::vector<conn_ptr> r_lines(pairs), s_lines(pairs);
  auto line_of = [](instance& inst) {
    return inst.have_token ? token_line(inst) : password_line(inst);
  };
  for (std::size_t i = 0; i < pairs; ++i) {
    r_lines[i] = line_of(*receivers[i % receivers.size()]);
    s_lines[i] = line_of(*senders[i % senders.size()]);
    if (!r_lines[i] || !s_lines[i]) {
      return finish({}, false, "could not open the lines of pair " + std::to_string(i));
    }
  }
  std::atomic<long> sent{0}, received{0};
  std::atomic<int> connected{0}, accepted{0};
  std::atomic<bool> stop{false};
  const auto t_start = clock_type::now();
  const auto until = deadline();
  std::vector<std::thread> ts;
  for (std::size_t i = 0; i < pairs; ++i) {
    ts.emplace_back([&, i] {  // receiver: whichever call reaches this line
      auto& c = *r_lines[i];
      const auto in = c.expect(is_a<p::incoming>(), 30000ms);
      if (!in) return;
      p::accept acc;
      acc.session = std::get<p::incoming>(*in).session;
      if (!c.send(acc)) return;
      ++accepted;
      c.set_timeout(1000ms);
      std::vector<std::uint8_t> buf(read_bytes);
      while (!stop) {
        std::size_t got = 0;
        const io r = c.read_some(buf.data(), buf.size(), got);
        if (r == io::eof || r == io::error) return;
        received += static_cast<long>(got);
        std::this_thread::sleep_for(std::chrono::milliseconds(read_interval_ms));
      }
    });
  }
  for (std::size_t i = 0; i < pairs; ++i) {
    ts.emplace_back([&, i] {  // sender
      auto& c = *s_lines[i];
      const p::demand d(receivers[i % receivers.size()]->user, opt.service);
      if (!c.send(d) || !c.expect(is_a<p::connected>(), 30000ms)) return;
      ++connected;
      c.set_timeout(60000ms);
      // One DATA frame per write: header and payload in one buffer.
      const auto h = p::encode_header(p::frame_type::data, frame_bytes);
      std::vector<std::uint8_t> framed(h.begin(), h.end());
      framed.resize(h.size() + frame_bytes, 0xa5);
      while (!stop) {
        if (!c.write_all(framed)) return;
        sent += frame_bytes;
      }
    });
  }
  // Ready once every pair is connected (the logins and their Argon2id checks are over): a
  // benchmark takes the relay's RSS here as the base of the growth the slow readers cause.
  while (clock_type::now() < until &&
         (connected < static_cast<int>(pairs) || accepted < static_cast<int>(pairs))) {
    std::this_thread::sleep_for(10ms);
  }
  const double ready_after_s = ms_since(t_start) / 1000;
  if (!ready_file.empty()) std::ofstream(ready_file) << "ready\n";
  std::this_thread::sleep_until(until);
  stop = true;
  for (auto& c : s_lines) c->shutdown();
  for (auto& c : r_lines) c->shutdown();
  for (auto& t : ts) t.join();
  json out{{"attack", "slow-readers"},
           {"pairs", pairs},
           {"connected", connected.load()},
           {"accepted", accepted.load()},
           {"sent_mib", std::round(sent / 1048576.0 * 10) / 10},
           {"received_mib", std::round(received / 1048576.0 * 10) / 10},
           {"all_connected_after_s", std::round(ready_after_s * 10) / 10}};
  if (connected != static_cast<int>(pairs)) return finish(out, false, "not every pair connected");
  return finish(out, true);
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"sb_attack: hostile clients and a probe for the Switchboard relay (loopback tests)"};
  app.require_subcommand(1);
  auto common = [](CLI::App* s) {
    s->add_option("--relay", opt.relay, "relay ADDR:PORT (IPv4)")->required();
    s->add_flag("--plaintext", opt.plaintext, "no TLS");
    s->add_option("--fingerprint", opt.fingerprint, "probe: the relay certificate's SHA-256");
    s->add_option("--bind", opt.binds, "source addresses, used round robin")->delimiter(',');
    s->add_option("--user", opt.users, "acting user(s)")->delimiter(',');
    s->add_option("--password-file", opt.password_files, "their password file(s)")->delimiter(',');
    s->add_option("--peer-user", opt.peer_users, "target or receiver user(s)")->delimiter(',');
    s->add_option("--peer-password-file", opt.peer_password_files, "their password file(s)")
        ->delimiter(',');
    s->add_option("--target", opt.target, "user to call (probe, floods, brute-force)");
    s->add_option("--service", opt.service, "service to call");
    s->add_option("--seconds", opt.seconds, "how long (bound)");
    s->add_option("--connections", opt.connections, "how many connections (bound)");
    s->add_option("--seed", opt.seed, "random seed (garbage)");
  };
  probe_options po;
  auto* probe = app.add_subcommand("probe", "a well-behaved device: PING RTT and calls");
  common(probe);
  probe->add_option("--interval-ms", po.interval_ms, "PING interval");
  probe->add_option("--call-every-ms", po.call_every_ms, "call interval");
  probe->add_option("--max-rtt-ms", po.max_rtt_ms, "fail above this PING round trip");
  probe->add_option("--ready-file", po.ready_file, "written once logged in");
  probe->add_flag("--password-calls", po.password_calls,
                  "each call's line logs in by password (a new instance) instead of the token");

  std::map<std::string, CLI::App*> attacks;
  for (const char* name :
       {"garbage", "oversized", "slowloris-tls", "slowloris-login", "half-open", "peers-flood",
        "demand-flood", "keyupdate-flood", "brute-force", "login-flood", "login-burst", "crash1",
        "crash2", "hold-lines", "slow-readers"}) {
    attacks[name] = app.add_subcommand(name, std::string("attack: ") + name);
    common(attacks[name]);
  }
  double login_deadline_s = 10;
  for (const char* n : {"slowloris-tls", "slowloris-login", "half-open"}) {
    attacks[n]->add_option("--login-deadline-s", login_deadline_s, "the relay's login deadline");
  }
  double burst = 10, refill_s = 6;
  attacks["brute-force"]->add_option("--burst", burst, "the relay's failure bucket size");
  attacks["brute-force"]->add_option("--refill-s", refill_s, "seconds per token refilled");
  bool spray = false;
  attacks["brute-force"]->add_flag("--spray", spray,
                                   "a new user ID (--target-N) per guess: only the address "
                                   "buckets apply; spread over --bind addresses");
  double ring_wait_s = 11;
  attacks["crash1"]->add_option("--ring-wait-s", ring_wait_s, "ACCEPT this late (> ring limit)");
  int rounds = 8;
  attacks["crash2"]->add_option("--rounds", rounds, "rounds (orders alternate)");
  int max_held = 48;
  attacks["hold-lines"]->add_option("--max-held", max_held, "the caller share of the target");
  std::size_t read_bytes = 1024;
  int read_interval_ms = 100;
  std::uint32_t frame_bytes = 16384;
  attacks["slow-readers"]->add_option("--read-bytes", read_bytes, "receiver read size");
  attacks["slow-readers"]->add_option("--read-interval-ms", read_interval_ms, "between reads");
  attacks["slow-readers"]->add_option("--frame-bytes", frame_bytes, "DATA payload per frame");
  std::string ready_file;
  attacks["slow-readers"]->add_option("--ready-file", ready_file,
                                      "written once all pairs are connected");
  CLI11_PARSE(app, argc, argv);
  if (opt.seed == 0) opt.seed = std::random_device{}();
  if (opt.connections < 1 || opt.seconds <= 0 || opt.seconds > 600) {
    std::cerr << "--connections >= 1 and 0 < --seconds <= 600\n";
    return 2;
  }

  try {
    if (*probe) return run_probe(po);
    if (*attacks["garbage"]) return run_garbage();
    if (*attacks["oversized"]) return run_oversized();
    if (*attacks["slowloris-tls"]) return run_hold(hold_mode::drip_client_hello, login_deadline_s);
    if (*attacks["slowloris-login"]) return run_hold(hold_mode::after_handshake, login_deadline_s);
    if (*attacks["half-open"]) return run_hold(hold_mode::silent_tcp, login_deadline_s);
    if (*attacks["peers-flood"]) return run_peers_flood();
    if (*attacks["demand-flood"]) return run_demand_flood();
    if (*attacks["keyupdate-flood"]) return run_keyupdate_flood();
    if (*attacks["brute-force"]) return run_brute_force(burst, refill_s, spray);
    if (*attacks["login-flood"]) return run_login_flood();
    if (*attacks["login-burst"]) return run_login_burst();
    if (*attacks["crash1"]) return run_crash1(ring_wait_s);
    if (*attacks["crash2"]) return run_crash2(rounds);
    if (*attacks["hold-lines"]) return run_hold_lines(max_held);
    if (*attacks["slow-readers"])
      return run_slow_readers(read_bytes, read_interval_ms, frame_bytes, ready_file);
  } catch (const std::exception& e) {
    std::cerr << "sb_attack: " << e.what() << "\n";
    return 2;
  }
  return 2;
}
