// In-process integration harness for the relay: a relay on 127.0.0.1:0 with its own io_context,
// user store and (optionally) TLS identity, agents talking to it, a raw protocol client, and
// helpers to run a coroutine test body with a deadline.
//
// Everything of one test runs on one io_context on the test's thread. Test bodies are coroutines:
// use EXPECT_* freely; for a fatal check use CO_ASSERT_* (they throw test_failure, which ends the
// body and is reported at the line of the check). Every wait is bounded.
//
// GCC 12 rule (docs/architecture.md): never put an aggregate-initialised temporary with
// non-trivial members, or a capturing lambda temporary, inside a co_await expression. Bind it to a
// named local first.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <list>
#include <memory>
#include <optional>
#include <ostream>
#include <source_location>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "agent/agent.hpp"
#include "net/asio.hpp"
#include "protocol/messages.hpp"
#include "relay/config.hpp"
#include "relay/hub.hpp"
#include "relay/server.hpp"
#include "store/user_store.hpp"

namespace switchboard::protocol {
// Readable gtest output for error codes: "TARGET_BUSY(11)".
inline void PrintTo(error_code c, std::ostream* os) {
  *os << error_name(c) << '(' << static_cast<int>(c) << ')';
}
}  // namespace switchboard::protocol

namespace switchboard::test {

// The services the test agents that answer announce: every service name the tests call.
inline std::vector<std::string> test_services() {
  return {"a",    "any",  "bulk",  "digest",  "echo",    "f",      "fax",   "files",    "ftp",
          "late", "more", "rude",  "req",     "s",       "silent", "sink",  "sleeping", "ssh",
          "web",  "k",    "guess", "nothing", "partial", "slow",   "secret"};
}

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using err = protocol::error_code;  // the wire error codes: err::target_busy, ...

// ---- failures inside coroutines --------------------------------------------------------------

// Thrown by CO_ASSERT_* and the helpers below; run() reports it at `file:line`.
class test_failure : public std::runtime_error {
 public:
  test_failure(std::source_location loc, const std::string& what)
      : std::runtime_error(what), file_(loc.file_name()), line_(static_cast<int>(loc.line())) {}
  const char* file() const { return file_; }
  int line() const { return line_; }

 private:
  const char* file_;
  int line_;
};

[[noreturn]] inline void fail_at(std::source_location loc, const std::string& what) {
  throw test_failure(loc, what);
}

template <typename A, typename B>
void assert_eq(const A& a, const B& b, const char* ea, const char* eb, std::source_location loc) {
  if (a == b) return;
  fail_at(loc, std::string("expected ") + ea + " == " + eb + "\n    left: " +
                   ::testing::PrintToString(a) + "\n   right: " + ::testing::PrintToString(b));
}

#define CO_ASSERT_TRUE(cond)                                                                       \
  do {                                                                                             \
    if (!(cond)) ::switchboard::test::fail_at(std::source_location::current(), "expected " #cond); \
  } while (0)
#define CO_ASSERT_EQ(a, b) \
  ::switchboard::test::assert_eq((a), (b), #a, #b, std::source_location::current())

// Polls `cond` every 10 ms until it holds (true) or `limit` passed (false).
awaitable<bool> poll_until(std::function<bool()> cond, milliseconds limit);

// Waits (bounded) until `cond` holds; fails the test if it does not within `limit`.
#define CO_WAIT_UNTIL(cond, limit)                                                      \
  do {                                                                                  \
    std::function<bool()> sb_cond_ = [&]() -> bool { return static_cast<bool>(cond); }; \
    if (!co_await ::switchboard::test::poll_until(sb_cond_, (limit))) {                 \
      ::switchboard::test::fail_at(std::source_location::current(),                     \
                                   "timed out waiting for " #cond);                     \
    }                                                                                   \
  } while (0)

// Checks (bounded) that `cond` keeps holding for all of `duration`; fails the test as soon as it
// does not. For "nothing goes wrong over N keep-alive intervals" checks.
#define CO_EXPECT_HOLDS(cond, duration)                                                         \
  do {                                                                                          \
    std::function<bool()> sb_broken_ = [&]() -> bool { return !(cond); };                       \
    if (co_await ::switchboard::test::poll_until(sb_broken_, (duration))) {                     \
      ::switchboard::test::fail_at(std::source_location::current(), "stopped holding: " #cond); \
    }                                                                                           \
  } while (0)

// ---- data helpers ----------------------------------------------------------------------------

// Deterministic pseudo-random bytes.
std::vector<std::uint8_t> random_bytes(std::size_t n, std::uint64_t seed);
std::vector<std::uint8_t> bytes_of(std::string_view text);
std::string text_of(std::span<const std::uint8_t> bytes);
std::string sha256_hex(std::span<const std::uint8_t> bytes);

// DATA frames with pseudo-random payloads of the given sizes (seeds seed, seed + 1, ...), back to
// back: what goes on the wire, and the payload bytes they carry.
struct data_train {
  std::vector<std::uint8_t> wire;
  std::vector<std::uint8_t> payload;
};
data_train data_frames(std::initializer_list<std::size_t> sizes, std::uint64_t seed);

// ---- the relay under test --------------------------------------------------------------------

enum class transport { plaintext, tls };
inline void PrintTo(transport t, std::ostream* os) {
  *os << (t == transport::tls ? "tls" : "plaintext");
}
std::string transport_name(const ::testing::TestParamInfo<transport>& info);

// Short deadlines that are still far from anything a loaded machine could trip by accident.
// Tests that check a deadline shorten it themselves.
relay::relay_config test_config();

// Users every relay_env creates, each with password password_of(user).
inline const std::vector<std::string>& test_users() {
  static const std::vector<std::string> users{"alice", "bob", "carol", "dave"};
  return users;
}
inline std::string password_of(const std::string& user) {
  return user + "-password";
}

// A fresh directory under the system temp dir, removed with everything in it.
class temp_dir {
 public:
  temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// One relay with its store, listening on 127.0.0.1 (port 0), and the agents a test made.
class relay_env {
 public:
  explicit relay_env(transport mode = transport::plaintext,
                     relay::relay_config cfg = test_config());
  relay_env(const relay_env&) = delete;
  relay_env& operator=(const relay_env&) = delete;
  // Stops every agent and the relay and lets the io_context drain (bounded).
  ~relay_env();

  // Runs `body` on the io_context until it finishes or `limit` passes (then the test fails).
  // Exceptions from the body fail the test with their message.
  void run(std::function<awaitable<void>()> body, milliseconds limit = 30s);

  // Agent options for `user`: this relay, its transport, short back-off, keep-alive 2 s.
  agent::agent_options agent_options(const std::string& user) const;
  // An agent (not started) that the environment stops at the end of the test.
  std::shared_ptr<agent::agent> make_agent(const agent::agent_options& opts);
  std::shared_ptr<agent::agent> make_agent(const std::string& user) {
    return make_agent(agent_options(user));
  }

  // A relay restart: the running relay stops as at SIGTERM (its lines get LOGGED-OUT
  // RELAY_SHUTDOWN) and, once its lines are gone, a new relay (a new hub that knows no device)
  // listens on the same port with the same store, configuration and ticket key.
  awaitable<void> restart_relay();
  // Another relay node on 127.0.0.1:0 (plaintext) sharing this one's store and configuration,
  // with ticket key `key`; stopped with the environment. Returns where it listens.
  tcp::endpoint another_relay(const relay::ticket_key& key);

  relay::hub& hub() { return server->state(); }
  const relay::hub_counters& counters() { return hub().counters(); }
  // Successful logins of both kinds.
  std::uint64_t logins() { return counters().password_logins + counters().ticket_logins; }

  asio::io_context io;  // first: destroyed last
  temp_dir dir;
  std::unique_ptr<store::user_store> users;
  transport mode;
  std::string fingerprint;  // TLS only
  relay::relay_config config;
  relay::ticket_key ticket_key = relay::random_ticket_key();
  std::unique_ptr<relay::server> server;
  tcp::endpoint endpoint;

 private:
  std::list<std::function<awaitable<void>()>> bodies_;  // kept alive with their coroutines
  std::vector<std::shared_ptr<agent::agent>> agents_;
  net::ssl_ctx_ptr make_tls() const;
  // Relays stopped by restart_relay() and those of another_relay(): their coroutines may still
  // refer to them until the io_context winds down, so they live as long as the environment.
  std::vector<std::unique_ptr<relay::server>> other_relays_;
  bool abandoned_ = false;  // a body timed out: do not resume it during teardown
};

// Starts `a` and waits (bounded) until its pool holds `vacant` vacant lines.
awaitable<void> start_and_settle(std::shared_ptr<agent::agent> a, std::size_t vacant);
// Waits (bounded) until none of the agent's lines is connecting, calling, paired or releasing.
awaitable<void> settle(std::shared_ptr<agent::agent> a, std::size_t vacant);

// bob answers with `handler`, alice only calls; both started and settled with 2 vacant lines.
struct pair_of_agents {
  std::shared_ptr<agent::agent> alice;
  std::shared_ptr<agent::agent> bob;
};
awaitable<pair_of_agents> start_pair(relay_env& env, agent::incoming_handler handler);

// ---- services --------------------------------------------------------------------------------

// Echoes every byte back; on EOF it half-closes too and ends the session.
awaitable<void> echo(agent::session s);
// Accepts every call and serves it with echo().
agent::incoming_handler echo_handler();

// Reads until read_some() returns 0 (EOF or end of session).
awaitable<std::vector<std::uint8_t>> read_to_end(agent::session& s);
// Writes all of `data` in `chunk`-sized writes, then half-closes.
awaitable<void> write_then_eof(agent::session& s, std::span<const std::uint8_t> data,
                               std::size_t chunk = 64 * 1024);
// Both at once (no flow-control deadlock): returns what was read.
awaitable<std::vector<std::uint8_t>> send_and_read_all(agent::session& s,
                                                       std::span<const std::uint8_t> data);

// What a call ended with: OK and a session, or the relay's / peer's error code and message.
struct call_outcome {
  call_outcome() = default;
  call_outcome(err c, std::string m) : code(c), message(std::move(m)) {}
  err code = err::ok;
  std::string message;
};
// Calls peer:service; a session that was made is closed again at once.
awaitable<call_outcome> try_call(std::shared_ptr<agent::agent> a, std::string peer,
                                 std::string service);

// 127.0.0.N, if this host lets sockets bind it (Linux routes 127/8 to lo): connections from a
// second address, for per-address limits.
std::optional<asio::ip::address> other_loopback(int last_octet);

// ---- raw protocol client ---------------------------------------------------------------------

struct raw_frame {
  protocol::frame_type type{};
  std::vector<std::uint8_t> payload;
  std::optional<protocol::message> msg;  // control frames only
};
std::string describe(const raw_frame& f);

class timeout_error : public test_failure {
 public:
  using test_failure::test_failure;
};

protocol::instance_id random_instance();
// A LOGIN message (build it into a named local, then co_await send(m)).
protocol::login login_message(const std::string& user, const std::string& secret,
                              std::uint32_t keepalive_ms = 25'000, bool answers = true,
                              const protocol::instance_id& instance = random_instance());

// Speaks the wire protocol directly over a plain TCP socket (plaintext relays only).
class raw_client {
 public:
  static constexpr milliseconds default_wait = 5s;

  // Connects, optionally from a given local address (e.g. 127.0.0.2 for rate-limit tests).
  static awaitable<raw_client> connect(tcp::endpoint relay,
                                       asio::ip::address local = asio::ip::address());

  explicit raw_client(tcp::socket s) : socket_(std::move(s)) {}
  raw_client(raw_client&&) = default;
  raw_client& operator=(raw_client&&) = default;

  awaitable<void> send(const protocol::message& m);
  awaitable<void> send_bytes(std::span<const std::uint8_t> bytes);
  awaitable<void> send_data(std::span<const std::uint8_t> payload);

  // The next frame; nullopt if the relay closed the line. Throws timeout_error after `limit`.
  awaitable<std::optional<raw_frame>> read(
      milliseconds limit = default_wait,
      std::source_location loc = std::source_location::current());

  // The next frame, which must be an M (fails the test otherwise).
  template <typename M>
  awaitable<M> expect(milliseconds limit = default_wait,
                      std::source_location loc = std::source_location::current()) {
    auto f = co_await read(limit, loc);
    if (!f) fail_at(loc, "expected a frame, but the relay closed the line");
    if (!f->msg || !std::holds_alternative<M>(*f->msg)) {
      fail_at(loc, "unexpected frame " + describe(*f));
    }
    co_return std::get<M>(std::move(*f->msg));
  }
  // Sends PING(nonce); the next frame must be the PONG with that nonce: the line is still served.
  awaitable<void> expect_alive(std::uint64_t nonce, milliseconds limit = default_wait,
                               std::source_location loc = std::source_location::current());
  // The next frame must be FAIL / LOGGED-OUT / TERMINATE with `code`.
  awaitable<protocol::fail> expect_fail(err code, milliseconds limit = default_wait,
                                        std::source_location loc = std::source_location::current());
  awaitable<protocol::logged_out> expect_logged_out(
      err code, milliseconds limit = default_wait,
      std::source_location loc = std::source_location::current());
  awaitable<protocol::terminate> expect_terminate(
      err code, milliseconds limit = default_wait,
      std::source_location loc = std::source_location::current());
  // The next frame must be a DATA frame; returns its payload.
  awaitable<std::vector<std::uint8_t>> expect_data(
      milliseconds limit = default_wait,
      std::source_location loc = std::source_location::current());
  // The relay must close the line before sending any other frame.
  awaitable<void> expect_closed(milliseconds limit = default_wait,
                                std::source_location loc = std::source_location::current());
  // Either LOGGED-OUT(code) and then the close, or the close right away.
  awaitable<void> expect_logged_out_or_closed(
      err code, milliseconds limit = default_wait,
      std::source_location loc = std::source_location::current());

  // Password login as a new instance; fails the test unless LOGIN-OK arrives.
  awaitable<protocol::login_ok> login(std::string user, std::string password,
                                      std::uint32_t keepalive_ms = 25'000, bool answers = true,
                                      std::source_location loc = std::source_location::current());
  // Ticket login as the same instance as `first` (which must have logged in), with its newest
  // ticket; returns the reply.
  awaitable<protocol::message> ticket_login(const raw_client& first, bool answers = true);
  // Ticket login as `user`'s `instance` with `t`, whatever it holds; returns the reply.
  awaitable<protocol::message> ticket_login(const std::string& user,
                                            const protocol::instance_id& instance,
                                            const protocol::ticket& t, bool answers = true);

  const protocol::instance_id& instance() const { return instance_; }
  const protocol::ticket& ticket() const { return ticket_; }
  const std::string& user() const { return user_; }
  tcp::socket& socket() { return socket_; }
  void close();

 private:
  awaitable<std::optional<raw_frame>> read_frame();

  tcp::socket socket_;
  protocol::instance_id instance_{};
  protocol::ticket ticket_{};
  std::string user_;
};

// Pairs two logged-in raw lines: `caller` DEMANDs target.user():service, `target` gets INCOMING
// and ACCEPTs, `caller` gets CONNECTED. Returns the session id.
awaitable<std::uint32_t> pair_raw(raw_client& caller, raw_client& target,
                                  std::string service = "echo");

// bob, then alice, each logged in on one raw line (default settings), and paired: alice called
// bob's "echo". The usual start of a raw forwarding test.
struct raw_pair {
  raw_client alice;
  raw_client bob;
};
awaitable<raw_pair> paired_raw(tcp::endpoint relay);

// alice on one raw line, logged in, having called target:service (an agent) and got CONNECTED.
awaitable<raw_client> raw_call(tcp::endpoint relay, std::string target, std::string service);

// A writer stuck on its peer's flow control: `c` sends 64 KiB DATA frames until `stop`, adding
// each to `sent`; until_stalled() returns once `sent` has not grown for 300 ms (or after 20 s).
awaitable<void> flood(raw_client& c, const bool& stop, std::size_t& sent);
awaitable<void> until_stalled(const std::size_t& sent);

// ---- a relay that never answers PING -----------------------------------------------------------

// Listens on 127.0.0.1:0, answers every LOGIN with LOGIN-OK (keep-alive `keepalive_ms`) and then
// reads and drops everything: agents see their PINGs go unanswered.
class mute_relay {
 public:
  mute_relay(asio::io_context& io, std::uint32_t keepalive_ms);
  ~mute_relay();
  tcp::endpoint endpoint() const { return endpoint_; }
  int logins() const { return state_->logins; }
  void stop();

 private:
  struct state {
    int logins = 0;
    bool stopped = false;
    std::vector<std::weak_ptr<tcp::socket>> sockets;
  };
  static awaitable<void> accept_loop(std::shared_ptr<tcp::acceptor> acceptor,
                                     std::shared_ptr<state> st, std::uint32_t keepalive_ms);
  static awaitable<void> serve(std::shared_ptr<tcp::socket> s, std::shared_ptr<state> st,
                               std::uint32_t keepalive_ms);

  std::shared_ptr<tcp::acceptor> acceptor_;
  std::shared_ptr<state> state_;
  tcp::endpoint endpoint_;
};

// A local TCP echo server on 127.0.0.1:0 (the "real" service behind expose_services()).
class tcp_echo_server {
 public:
  explicit tcp_echo_server(asio::io_context& io);
  ~tcp_echo_server();
  std::uint16_t port() const { return port_; }

 private:
  static awaitable<void> accept_loop(std::shared_ptr<tcp::acceptor> acceptor);
  std::shared_ptr<tcp::acceptor> acceptor_;
  std::uint16_t port_ = 0;
};

}  // namespace switchboard::test
