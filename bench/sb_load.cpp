// sb_load: load generator and target services for the benchmarks (bench/run.sh).
//
//   sb_load echo-server --listen 127.0.0.1:0 --port-file F     target: echoes, keeps half-close
//   sb_load sink-server --listen 127.0.0.1:0 --port-file F     target: discards; at the client's
//                                                              EOF answers the byte count (u64 LE)
//                                                              (--length-prefix: after the length
//                                                              the client announced first)
//   sb_load bulk     --connect A:P --bytes 2Gi --streams 64    Gbit/s, end to end (sink confirms)
//   sb_load pingpong --connect A:P --count 20000 --size 64     round trip p50/p99 in µs
//   sb_load rate     --connect A:P --seconds 5 --parallel 8    connect + 1 byte echo + close, per s
//   sb_load idle     --connect A:P --count 5000 --hold-seconds 60 --ready-file F
//   sb_load sb-idle-lines --count 15000 --relay ... --user ...  logged-in idle lines, no sessions
//   sb_load sb-target --relay ... --user ...   target agent: answers calls for "echo" and "sink"
//                                              in-process (the relay hop alone: no local TCP hop)
//
// Every client workload also runs "relay hop alone": with --relay HOST:PORT --user U
// --password-env VAR --peer P --service S (--plaintext or --fingerprint FP) each stream is an
// agent call() to P:S through the relay instead of a TCP connect. With --turn HOST:PORT
// --turn-user U --turn-password-env VAR --turn-peer ADDR:PORT each stream is a TURN-TCP
// connection (RFC 6062: Connect + ConnectionBind on one allocation) to the peer instead.
//
// Each client command prints exactly one JSON object on the last line of stdout (idle prints a
// "ready" line first). Every loop is bounded in count and time; --timeout ends the whole command.
//
// GCC 12 coroutine rule (docs/architecture.md): no aggregate temporaries with non-trivial members
// and no capturing lambda temporaries inside co_await expressions; they are bound to named locals.
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "agent/agent.hpp"
#include "agent/session.hpp"
#include "net/asio.hpp"
#include "net/endpoint.hpp"
#include "turn_client.hpp"

using namespace switchboard;
using json = nlohmann::json;
using clk = std::chrono::steady_clock;

namespace {

double seconds_since(clk::time_point t0) {
  return std::chrono::duration<double>(clk::now() - t0).count();
}

// The sink's byte count and the length prefix travel as u64 little-endian.
std::array<std::uint8_t, 8> u64_le(std::uint64_t v) {
  std::array<std::uint8_t, 8> b{};
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(v >> (8 * i));
  return b;
}
std::uint64_t from_u64_le(const std::uint8_t (&b)[8]) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | b[i];
  return v;
}

// "2Gi", "512Mi", "64Ki", "1G", "1000" -> bytes (Ki/Mi/Gi binary, K/M/G decimal).
std::uint64_t parse_size(const std::string& text) {
  std::size_t pos = 0;
  const double v = std::stod(text, &pos);
  const std::string unit = text.substr(pos);
  double mult = 1;
  if (unit.empty() || unit == "B")
    mult = 1;
  else if (unit == "Ki" || unit == "KiB")
    mult = 1024.0;
  else if (unit == "Mi" || unit == "MiB")
    mult = 1024.0 * 1024;
  else if (unit == "Gi" || unit == "GiB")
    mult = 1024.0 * 1024 * 1024;
  else if (unit == "K" || unit == "KB")
    mult = 1e3;
  else if (unit == "M" || unit == "MB")
    mult = 1e6;
  else if (unit == "G" || unit == "GB")
    mult = 1e9;
  else
    throw std::invalid_argument("bad size unit in '" + text + "'");
  return static_cast<std::uint64_t>(v * mult);
}

void print_json(const json& j) {
  std::cout << j.dump() << std::endl;
}

void raise_fd_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
}

// --- latency statistics
// ---------------------------------------------------------------------------

json latency_json(std::vector<double> us) {
  json j;
  if (us.empty()) return j;
  std::sort(us.begin(), us.end());
  const auto pct = [&](double p) {
    const auto i = static_cast<std::size_t>(p / 100.0 * static_cast<double>(us.size() - 1) + 0.5);
    return us[std::min(i, us.size() - 1)];
  };
  double sum = 0;
  for (double v : us) sum += v;
  j["samples"] = us.size();
  j["min_us"] = us.front();
  j["p50_us"] = pct(50);
  j["p90_us"] = pct(90);
  j["p99_us"] = pct(99);
  j["p999_us"] = pct(99.9);
  j["max_us"] = us.back();
  j["mean_us"] = sum / static_cast<double>(us.size());
  return j;
}

// --- byte streams: a TCP connection or a relayed session ----------------------------------------

class stream_base {
 public:
  virtual ~stream_base() = default;
  // Some bytes, or 0 at EOF (or, for a session, when it ended).
  virtual awaitable<std::size_t> read_some(asio::mutable_buffer b) = 0;
  virtual awaitable<void> write(asio::const_buffer b) = 0;
  virtual awaitable<void> shutdown_write() = 0;
  virtual awaitable<void> close() = 0;
  // False if the path does not carry a half-close to the server (TURN-TCP: coturn closes the
  // peer connection on the client's FIN). Bulk sink streams then announce their length first.
  virtual bool half_close() const { return true; }
};

class tcp_stream final : public stream_base {
 public:
  explicit tcp_stream(tcp::socket s) : s_(std::move(s)) {}
  awaitable<std::size_t> read_some(asio::mutable_buffer b) override {
    auto [ec, n] = co_await s_.async_read_some(b, asio::as_tuple(use_awaitable));
    if (ec == asio::error::eof) co_return 0;
    if (ec) throw boost::system::system_error(ec);
    co_return n;
  }
  awaitable<void> write(asio::const_buffer b) override {
    co_await asio::async_write(s_, b, use_awaitable);
  }
  awaitable<void> shutdown_write() override {
    s_.shutdown(tcp::socket::shutdown_send);
    co_return;
  }
  awaitable<void> close() override {
    error_code ignored;
    s_.close(ignored);
    co_return;
  }

 private:
  tcp::socket s_;
};

class session_stream final : public stream_base {
 public:
  explicit session_stream(agent::session s) : s_(std::move(s)) {}
  awaitable<std::size_t> read_some(asio::mutable_buffer b) override {
    co_return co_await s_.read_some(b);
  }
  awaitable<void> write(asio::const_buffer b) override { co_await s_.write(b); }
  awaitable<void> shutdown_write() override { co_await s_.shutdown_write(); }
  awaitable<void> close() override { co_await s_.close(); }

 private:
  agent::session s_;
};

// Reads exactly buf.size() bytes; false if the stream ended first.
awaitable<bool> read_full(stream_base& s, asio::mutable_buffer buf) {
  while (buf.size() > 0) {
    const std::size_t n = co_await s.read_some(buf);
    if (n == 0) co_return false;
    buf += n;
  }
  co_return true;
}

// --- how a client opens a stream ----------------------------------------------------------------

class dialer {
 public:
  virtual ~dialer() = default;
  virtual awaitable<std::unique_ptr<stream_base>> open() = 0;
  virtual std::string mode() const = 0;
};

class tcp_dialer final : public dialer {
 public:
  explicit tcp_dialer(tcp::endpoint ep) : ep_(ep) {}
  awaitable<std::unique_ptr<stream_base>> open() override {
    tcp::socket sock(co_await asio::this_coro::executor);
    co_await sock.async_connect(ep_, use_awaitable);
    sock.set_option(tcp::no_delay(true));
    co_return std::make_unique<tcp_stream>(std::move(sock));
  }
  std::string mode() const override { return "tcp"; }

 private:
  tcp::endpoint ep_;
};

// TURN-TCP allows one connection per peer address and allocation (RFC 6062 §5.2: 446 otherwise),
// so concurrent streams use one allocation each. Allocations are kept in a pool and reused
// oldest-free first, as a client would keep its allocations between connections.
struct turn_pool {
  bench::turn_options opts;
  std::deque<std::unique_ptr<bench::turn_client>> free;
};

class turn_stream final : public stream_base {
 public:
  turn_stream(tcp::socket s, std::unique_ptr<bench::turn_client> c, std::shared_ptr<turn_pool> p)
      : tcp_(std::move(s)), client_(std::move(c)), pool_(std::move(p)) {}
  ~turn_stream() override { pool_->free.push_back(std::move(client_)); }
  awaitable<std::size_t> read_some(asio::mutable_buffer b) override {
    co_return co_await tcp_.read_some(b);
  }
  awaitable<void> write(asio::const_buffer b) override { co_await tcp_.write(b); }
  awaitable<void> shutdown_write() override { co_await tcp_.shutdown_write(); }
  awaitable<void> close() override { co_await tcp_.close(); }
  bool half_close() const override { return false; }

 private:
  tcp_stream tcp_;
  std::unique_ptr<bench::turn_client> client_;
  std::shared_ptr<turn_pool> pool_;
};

class turn_dialer final : public dialer {
 public:
  explicit turn_dialer(bench::turn_options o) : pool_(std::make_shared<turn_pool>()) {
    pool_->opts = std::move(o);
  }
  awaitable<std::unique_ptr<stream_base>> open() override {
    std::unique_ptr<bench::turn_client> c;
    if (!pool_->free.empty()) {
      c = std::move(pool_->free.front());
      pool_->free.pop_front();
    } else {
      c = co_await bench::turn_client::allocate(pool_->opts);
    }
    tcp::socket s = co_await c->connect_peer();
    co_return std::make_unique<turn_stream>(std::move(s), std::move(c), pool_);
  }
  std::string mode() const override { return "turn"; }

 private:
  std::shared_ptr<turn_pool> pool_;
};

class agent_dialer final : public dialer {
 public:
  agent_dialer(std::shared_ptr<agent::agent> a, std::string peer, std::string service)
      : a_(std::move(a)), peer_(std::move(peer)), service_(std::move(service)) {}
  awaitable<std::unique_ptr<stream_base>> open() override {
    agent::session s = co_await a_->call(peer_, service_);
    co_return std::make_unique<session_stream>(std::move(s));
  }
  std::string mode() const override { return "agent"; }

 private:
  std::shared_ptr<agent::agent> a_;
  std::string peer_;
  std::string service_;
};

// --- connection options shared by every client subcommand ---------------------------------------

struct conn_options {
  std::string connect;  // ADDR:PORT (plain TCP)
  std::string relay;    // HOST:PORT (agent mode)
  std::string user;
  std::string password_env = "SWITCHBOARD_PASSWORD";
  std::string peer;
  std::string service;
  std::string fingerprint;
  bool plaintext = false;
  int vacant_lines = 0;       // 0: chosen by the workload
  double wait_target_s = 30;  // agent mode: retry the first call this long (target logging in)
  double timeout_s = 300;     // the whole command
  std::string log_level = "warn";
  std::string turn;  // HOST:PORT of a TURN server (TURN-TCP mode)
  std::string turn_user;
  std::string turn_password_env = "SB_TURN_PASSWORD";
  std::string turn_peer;  // ADDR:PORT the TURN server connects each stream to

  bool agent_mode() const { return !relay.empty(); }
};

void add_conn_options(CLI::App* app, conn_options& o) {
  app->add_option("--connect", o.connect, "ADDR:PORT to connect to (plain TCP)");
  app->add_option("--relay", o.relay, "relay HOST:PORT: each stream is an agent call instead");
  app->add_option("--user", o.user, "agent mode: user ID to log in as");
  app->add_option("--password-env", o.password_env,
                  "agent mode: environment variable with the password")
      ->capture_default_str();
  app->add_option("--peer", o.peer, "agent mode: user ID to call");
  app->add_option("--service", o.service, "agent mode: service to call");
  app->add_option("--fingerprint", o.fingerprint,
                  "agent mode: relay certificate fingerprint (TLS)");
  app->add_flag("--plaintext", o.plaintext, "agent mode: relay runs with --plaintext");
  app->add_option("--vacant-lines", o.vacant_lines,
                  "agent mode: lines kept ready (default: per workload)");
  app->add_option("--wait-target", o.wait_target_s,
                  "agent mode: retry the first call for this long (s)")
      ->capture_default_str();
  app->add_option("--timeout", o.timeout_s, "give up the whole command after this long (s)")
      ->capture_default_str();
  app->add_option("--log-level", o.log_level, "agent library log level")->capture_default_str();
  app->add_option("--turn", o.turn, "TURN server HOST:PORT: each stream is a TURN-TCP connection");
  app->add_option("--turn-user", o.turn_user, "TURN mode: long-term credential user");
  app->add_option("--turn-password-env", o.turn_password_env,
                  "TURN mode: environment variable with the password")
      ->capture_default_str();
  app->add_option("--turn-peer", o.turn_peer, "TURN mode: peer ADDR:PORT (IPv4)");
}

awaitable<std::unique_ptr<dialer>> make_turn_dialer(const conn_options& o) {
  if (o.turn_user.empty() || o.turn_peer.empty()) {
    throw std::runtime_error("TURN mode needs --turn-user and --turn-peer");
  }
  const char* pw = std::getenv(o.turn_password_env.c_str());
  if (!pw) throw std::runtime_error("environment variable " + o.turn_password_env + " is not set");
  bench::turn_options t;
  t.server = net::parse_endpoint(o.turn);
  t.user = o.turn_user;
  t.password = pw;
  t.peer = net::parse_endpoint(o.turn_peer);
  auto d = std::make_unique<turn_dialer>(std::move(t));
  auto probe = co_await d->open();  // fails here, with the server's reason, if TURN does not work
  co_await probe->close();
  co_return d;
}

agent::agent_options make_agent_options(const conn_options& o, std::size_t vacant) {
  agent::agent_options a;
  const auto hp = net::parse_host_port(o.relay);
  a.relay_host = hp.host;
  a.relay_port = hp.port;
  a.user = o.user;
  const char* pw = std::getenv(o.password_env.c_str());
  if (!pw) throw std::runtime_error("environment variable " + o.password_env + " is not set");
  a.password = pw;
  a.plaintext = o.plaintext;
  if (!o.plaintext) {
    if (o.fingerprint.empty())
      throw std::runtime_error("agent mode needs --plaintext or --fingerprint");
    a.tls.fingerprint = o.fingerprint;
    a.tls.server_name = a.relay_host;
  }
  a.vacant_lines = std::max<std::size_t>(1, vacant);
  a.surplus_idle = std::chrono::hours(1);
  a.one_shot = true;
  a.connect_timeout = std::chrono::seconds(20);
  return a;
}

// Waits until the agent holds `want` vacant lines (or `limit` passed): the pool is set up before
// the clock starts, as a long-running agent's would be.
awaitable<std::size_t> wait_vacant(agent::agent& a, std::size_t want, std::chrono::seconds limit) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  const auto deadline = clk::now() + limit;
  while (a.stats().lines_vacant < want && clk::now() < deadline) {
    t.expires_after(std::chrono::milliseconds(20));
    co_await t.async_wait(use_awaitable);
  }
  co_return a.stats().lines_vacant;
}

// Until one stream opens (the target agent may still be logging in), then closes it.
awaitable<void> probe_target(dialer& d, double limit_s) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  const auto deadline = clk::now() + std::chrono::milliseconds(static_cast<long>(limit_s * 1000));
  for (;;) {
    std::string failure;
    try {
      auto s = co_await d.open();
      co_await s->close();
      co_return;
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (clk::now() >= deadline) throw std::runtime_error("target not reachable: " + failure);
    t.expires_after(std::chrono::milliseconds(100));
    co_await t.async_wait(use_awaitable);
  }
}

// Runs make(i) for i in [0, n) concurrently and waits for all; rethrows the first failure.
struct join_state {
  explicit join_state(const asio::any_io_executor& ex, std::size_t n)
      : done(ex, asio::steady_timer::time_point::max()), left(n) {}
  asio::steady_timer done;
  std::size_t left;
  std::exception_ptr error;
};

template <typename Make>
awaitable<void> run_all(std::size_t n, const Make& make) {
  const auto ex = co_await asio::this_coro::executor;
  auto st = std::make_shared<join_state>(ex, n);
  for (std::size_t i = 0; i < n; ++i) {
    asio::co_spawn(ex, make(i), [st](std::exception_ptr e) {
      if (e && !st->error) st->error = e;
      if (--st->left == 0) st->done.cancel();
    });
  }
  if (st->left > 0) co_await st->done.async_wait(asio::as_tuple(use_awaitable));
  if (st->error) std::rethrow_exception(st->error);
}

// --- workloads ----------------------------------------------------------------------------------

// One bulk stream. Sink mode: send, half-close, read the sink's u64 count. Echo mode: send and
// read everything back at the same time.
awaitable<std::uint64_t> bulk_writer(stream_base& s, std::uint64_t bytes,
                                     const std::vector<std::uint8_t>& buf) {
  std::uint64_t left = bytes;
  while (left > 0) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size()));
    co_await s.write(asio::buffer(buf.data(), n));
    left -= n;
  }
  if (s.half_close()) co_await s.shutdown_write();
  co_return bytes;
}

awaitable<std::uint64_t> bulk_reader(stream_base& s, std::uint64_t bytes, std::size_t chunk) {
  std::vector<std::uint8_t> buf(chunk);
  std::uint64_t got = 0;
  for (;;) {
    const std::size_t n = co_await s.read_some(asio::buffer(buf));
    if (n == 0) break;
    got += n;
  }
  if (got != bytes) {
    throw std::runtime_error("echo returned " + std::to_string(got) + " of " +
                             std::to_string(bytes) + " bytes");
  }
  co_return got;
}

awaitable<void> bulk_stream(dialer& d, std::uint64_t bytes, const std::vector<std::uint8_t>& buf,
                            bool echo) {
  auto s = co_await d.open();
  if (echo) {
    using namespace asio::experimental::awaitable_operators;
    co_await (bulk_writer(*s, bytes, buf) && bulk_reader(*s, bytes, buf.size()));
  } else {
    if (!s->half_close()) {
      // The sink learns the length up front (sink-server --length-prefix) instead of at EOF.
      const auto prefix = u64_le(bytes);
      co_await s->write(asio::buffer(prefix));
    }
    co_await bulk_writer(*s, bytes, buf);
    std::uint8_t reply[8] = {};
    const bool whole = co_await read_full(*s, asio::buffer(reply));
    if (!whole) throw std::runtime_error("sink closed without reporting its byte count");
    const std::uint64_t counted = from_u64_le(reply);
    if (counted != bytes) {
      throw std::runtime_error("sink counted " + std::to_string(counted) + " of " +
                               std::to_string(bytes) + " bytes");
    }
  }
  co_await s->close();
}

awaitable<json> run_bulk(dialer& d, std::uint64_t total, std::size_t streams, std::size_t chunk,
                         bool echo) {
  std::vector<std::uint8_t> buf(chunk);
  for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<std::uint8_t>(i * 131 + 7);
  const std::uint64_t per = total / streams;
  const auto t0 = clk::now();
  const auto make = [&](std::size_t) { return bulk_stream(d, per, buf, echo); };
  co_await run_all(streams, make);
  const double secs = seconds_since(t0);
  const std::uint64_t moved = per * streams;
  json j;
  j["bytes"] = moved;
  j["streams"] = streams;
  j["echo"] = echo;
  j["seconds"] = secs;
  j["gbps"] = static_cast<double>(moved) * 8 / secs / 1e9;
  co_return j;
}

awaitable<json> run_pingpong(dialer& d, std::size_t count, std::size_t size, std::size_t warmup) {
  auto s = co_await d.open();
  std::vector<std::uint8_t> out(size, 0x5a), in(size);
  std::vector<double> us;
  us.reserve(count);
  const auto t0 = clk::now();
  for (std::size_t i = 0; i < warmup + count; ++i) {
    const auto a = clk::now();
    co_await s->write(asio::buffer(out));
    if (!co_await read_full(*s, asio::buffer(in))) throw std::runtime_error("echo closed early");
    if (i >= warmup)
      us.push_back(std::chrono::duration<double, std::micro>(clk::now() - a).count());
  }
  const double secs = seconds_since(t0);
  co_await s->shutdown_write();
  co_await s->close();
  json j = latency_json(std::move(us));
  j["size"] = size;
  j["seconds"] = secs;
  co_return j;
}

struct rate_state {
  clk::time_point deadline;
  std::uint64_t max_sessions = 0;
  std::uint64_t started = 0;
  std::uint64_t ok = 0;
  std::uint64_t errors = 0;
  std::string last_error;
  std::vector<double> us;
};

awaitable<void> rate_worker(dialer& d, rate_state& st) {
  asio::steady_timer pause(co_await asio::this_coro::executor);
  while (clk::now() < st.deadline && st.started < st.max_sessions && st.errors < 1000) {
    ++st.started;
    const auto a = clk::now();
    bool failed = false;
    try {
      auto s = co_await d.open();
      std::uint8_t b = 'x';
      co_await s->write(asio::buffer(&b, 1));
      if (!co_await read_full(*s, asio::buffer(&b, 1))) throw std::runtime_error("no echo");
      co_await s->close();
      ++st.ok;
      st.us.push_back(std::chrono::duration<double, std::micro>(clk::now() - a).count());
    } catch (const std::exception& e) {
      ++st.errors;
      st.last_error = e.what();
      failed = true;
    }
    if (failed) {  // e.g. out of ports or lines: back off a little instead of spinning
      pause.expires_after(std::chrono::milliseconds(10));
      co_await pause.async_wait(use_awaitable);
    }
  }
}

awaitable<json> run_rate(dialer& d, double seconds, std::size_t parallel,
                         std::uint64_t max_sessions) {
  rate_state st;
  st.max_sessions = max_sessions;
  st.us.reserve(100000);
  const auto t0 = clk::now();
  st.deadline = t0 + std::chrono::milliseconds(static_cast<long>(seconds * 1000));
  const auto make = [&](std::size_t) { return rate_worker(d, st); };
  co_await run_all(parallel, make);
  const double secs = seconds_since(t0);
  json j;
  j["sessions"] = st.ok;
  j["errors"] = st.errors;
  if (!st.last_error.empty()) j["last_error"] = st.last_error;
  j["parallel"] = parallel;
  j["seconds"] = secs;
  j["per_second"] = static_cast<double>(st.ok) / secs;
  j["latency"] = latency_json(std::move(st.us));
  co_return j;
}

// --- idle connections ---------------------------------------------------------------------------

struct idle_state {
  std::vector<std::unique_ptr<stream_base>> open;
  std::size_t next = 0;
  std::size_t count = 0;
  std::size_t failed = 0;
  std::string last_error;
  bool ping = true;
};

awaitable<void> idle_opener(dialer& d, idle_state& st) {
  while (st.next < st.count && st.failed < 100) {
    ++st.next;
    try {
      auto s = co_await d.open();
      if (st.ping) {
        std::uint8_t b = 'i';
        co_await s->write(asio::buffer(&b, 1));
        if (!co_await read_full(*s, asio::buffer(&b, 1))) throw std::runtime_error("no echo");
      }
      st.open.push_back(std::move(s));
    } catch (const std::exception& e) {
      ++st.failed;
      st.last_error = e.what();
    }
  }
}

// Waits `hold` seconds, or until SIGTERM/SIGINT.
awaitable<void> hold_for(double hold_s) {
  const auto ex = co_await asio::this_coro::executor;
  asio::signal_set signals(ex, SIGINT, SIGTERM);
  asio::steady_timer t(ex, std::chrono::milliseconds(static_cast<long>(hold_s * 1000)));
  using namespace asio::experimental::awaitable_operators;
  co_await (t.async_wait(asio::as_tuple(use_awaitable)) ||
            signals.async_wait(asio::as_tuple(use_awaitable)));
}

void announce_ready(const json& j, const std::string& ready_file) {
  print_json(j);
  if (!ready_file.empty()) std::ofstream(ready_file) << j.dump() << '\n';
}

awaitable<json> run_idle(dialer& d, std::size_t count, std::size_t batch, bool ping, double hold_s,
                         const std::string& ready_file) {
  idle_state st;
  st.count = count;
  st.ping = ping;
  st.open.reserve(count);
  const auto t0 = clk::now();
  const auto make = [&](std::size_t) { return idle_opener(d, st); };
  co_await run_all(std::min(batch, count), make);
  const double open_s = seconds_since(t0);
  json j;
  j["event"] = "ready";
  j["open"] = st.open.size();
  j["failed"] = st.failed;
  if (!st.last_error.empty()) j["last_error"] = st.last_error;
  j["open_seconds"] = open_s;
  announce_ready(j, ready_file);
  co_await hold_for(hold_s);
  for (auto& s : st.open) co_await s->close();
  j["event"] = "done";
  j["held_seconds"] = seconds_since(t0) - open_s;
  co_return j;
}

// Logs in `count` idle lines with `instances` call-only agent instances, one instance at a time.
awaitable<json> run_idle_lines(asio::io_context& io, const conn_options& o, std::size_t count,
                               std::size_t instances, double hold_s,
                               const std::string& ready_file) {
  std::vector<std::shared_ptr<agent::agent>> agents;
  const auto t0 = clk::now();
  std::size_t total = 0;
  instances = std::max<std::size_t>(1, std::min(instances, count));
  std::string failure;
  for (std::size_t i = 0; i < instances; ++i) {
    const std::size_t want = count / instances + (i < count % instances ? 1 : 0);
    auto a = std::make_shared<agent::agent>(io.get_executor(), make_agent_options(o, want));
    agents.push_back(a);
    a->start();
    try {
      co_await a->wait_ready();
    } catch (const std::exception& e) {
      failure = e.what();
      break;
    }
    const std::size_t got = co_await wait_vacant(*a, want, std::chrono::seconds(60));
    total += got;
    if (got < want) {
      failure = "instance " + std::to_string(i) + " got " + std::to_string(got) + " of " +
                std::to_string(want) + " lines";
      break;
    }
  }
  json j;
  j["event"] = "ready";
  j["lines"] = total;
  j["instances"] = agents.size();
  j["open_seconds"] = seconds_since(t0);
  if (!failure.empty()) j["error"] = failure;
  announce_ready(j, ready_file);
  co_await hold_for(hold_s);
  std::size_t still = 0;
  for (auto& a : agents) {
    still += a->stats().lines_vacant;
    a->stop();
  }
  j["event"] = "done";
  j["lines_at_end"] = still;
  co_return j;
}

// --- target servers -----------------------------------------------------------------------------

awaitable<void> echo_conn(tcp::socket s) {
  s.set_option(tcp::no_delay(true));
  std::vector<std::uint8_t> buf(64 * 1024);
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), asio::as_tuple(use_awaitable));
    if (n > 0) {
      auto [wec, wn] =
          co_await asio::async_write(s, asio::buffer(buf.data(), n), asio::as_tuple(use_awaitable));
      if (wec) break;
    }
    if (ec) break;
  }
  error_code ignored;
  s.shutdown(tcp::socket::shutdown_send, ignored);
  s.close(ignored);
}

// Plain: counts until the client's EOF, then answers the count. Length-prefixed (for paths that
// do not carry a half-close): the first 8 bytes (u64 LE) announce the length, not counted; the
// count is answered once that many bytes arrived.
awaitable<void> sink_conn(tcp::socket s, bool length_prefixed) {
  s.set_option(tcp::no_delay(true));
  std::vector<std::uint8_t> buf(256 * 1024);
  std::uint64_t total = 0;
  std::uint64_t expected = std::numeric_limits<std::uint64_t>::max();
  if (length_prefixed) {
    std::uint8_t prefix[8];
    auto [ec, n] =
        co_await asio::async_read(s, asio::buffer(prefix), asio::as_tuple(use_awaitable));
    if (ec) co_return;
    expected = from_u64_le(prefix);
  }
  for (;;) {
    const std::size_t want = static_cast<std::size_t>(
        std::min<std::uint64_t>(buf.size(), length_prefixed ? expected - total : buf.size()));
    std::size_t n = 0;
    error_code ec;
    if (want > 0) {
      std::tie(ec, n) =
          co_await s.async_read_some(asio::buffer(buf.data(), want), asio::as_tuple(use_awaitable));
    }
    total += n;
    if (ec == asio::error::eof || (length_prefixed && total == expected)) {
      const auto reply = u64_le(total);
      co_await asio::async_write(s, asio::buffer(reply), asio::as_tuple(use_awaitable));
      break;
    }
    if (ec) break;
  }
  if (length_prefixed) {  // the client closes after reading the count
    auto waited = co_await s.async_read_some(asio::buffer(buf), asio::as_tuple(use_awaitable));
    static_cast<void>(waited);
  }
  error_code ignored;
  s.shutdown(tcp::socket::shutdown_send, ignored);
  s.close(ignored);
}

awaitable<void> accept_loop(tcp::acceptor& acc, bool echo, bool length_prefixed) {
  asio::steady_timer backoff(acc.get_executor());
  for (;;) {
    auto [ec, s] = co_await acc.async_accept(asio::as_tuple(use_awaitable));
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {  // out of descriptors: wait instead of spinning
      backoff.expires_after(std::chrono::milliseconds(50));
      co_await backoff.async_wait(asio::as_tuple(use_awaitable));
      continue;
    }
    if (echo) {
      asio::co_spawn(acc.get_executor(), echo_conn(std::move(s)), asio::detached);
    } else {
      asio::co_spawn(acc.get_executor(), sink_conn(std::move(s), length_prefixed), asio::detached);
    }
  }
}

int serve(const std::string& listen, const std::string& port_file, bool echo,
          bool length_prefixed) {
  asio::io_context io(1);
  tcp::acceptor acc(io);
  const auto ep = net::parse_endpoint(listen);
  acc.open(ep.protocol());
  acc.set_option(tcp::acceptor::reuse_address(true));
  acc.bind(ep);
  acc.listen(asio::socket_base::max_listen_connections);
  const auto port = acc.local_endpoint().port();
  if (!port_file.empty()) std::ofstream(port_file) << port << '\n';
  json j;
  j["listening"] = port;
  j["kind"] = echo ? "echo" : "sink";
  print_json(j);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const error_code&, int) { io.stop(); });
  asio::co_spawn(io, accept_loop(acc, echo, length_prefixed), asio::detached);
  io.run();
  return 0;
}

// --- in-process target agent (sb-target)
// ------------------------------------------------------------

// The echo and sink services of the servers above, over the library's session API: a call to this
// agent ends in the agent itself, so the relay is the only forwarder between caller and target.
constexpr std::size_t target_buffer = 256 * 1024;

awaitable<void> echo_session(agent::session s) {
  const auto buf = std::make_unique_for_overwrite<std::uint8_t[]>(target_buffer);
  try {
    for (;;) {
      const std::size_t n = co_await s.read_some(asio::buffer(buf.get(), target_buffer));
      if (n == 0) break;
      co_await s.write(asio::buffer(buf.get(), n));
    }
    if (!s.terminated()) co_await s.shutdown_write();  // the caller's EOF, echoed
  } catch (const boost::system::system_error&) {
    // The session ended under a write: nothing is owed to anyone.
  }
  co_await s.close();
}

awaitable<void> sink_session(agent::session s) {
  const auto buf = std::make_unique_for_overwrite<std::uint8_t[]>(target_buffer);
  std::uint64_t total = 0;
  try {
    for (;;) {
      const std::size_t n = co_await s.read_some(asio::buffer(buf.get(), target_buffer));
      if (n == 0) break;
      total += n;
    }
    if (!s.terminated()) {
      const auto reply = u64_le(total);
      co_await s.write(asio::buffer(reply));
      co_await s.shutdown_write();
    }
  } catch (const boost::system::system_error&) {
  }
  co_await s.close();
}

// Logs in with `vacant` lines and answers calls until SIGINT/SIGTERM; other services are refused.
int run_target(const conn_options& o, std::size_t vacant) {
  if (!o.agent_mode() || o.user.empty()) {
    throw std::invalid_argument("sb-target needs --relay and --user");
  }
  asio::io_context io(1);
  auto a = std::make_shared<agent::agent>(io.get_executor(), make_agent_options(o, vacant));
  a->set_incoming({"echo", "sink"}, [](agent::incoming_call c) -> awaitable<agent::answer> {
    agent::answer ans = agent::answer::reject(protocol::error_code::unknown_service,
                                              "sb-target serves echo and sink");
    if (c.service == "echo" || c.service == "sink") {
      ans.code = protocol::error_code::ok;
      ans.serve = c.service == "echo" ? &echo_session : &sink_session;
    }
    co_return ans;
  });
  a->start();
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const error_code&, int) {
    a->stop();
    io.stop();
  });
  print_json(json{{"workload", "sb-target"}, {"user", o.user}, {"vacant_lines", vacant}});
  io.run();
  return 0;
}

// --- running a client command -------------------------------------------------------------------

// Sets up the dialer (TCP or agent), runs `body`, prints its JSON with the common fields.
template <typename Body>
int run_client(const std::string& workload, const conn_options& o, std::size_t default_vacant,
               Body body) {
  asio::io_context io(1);
  int rc = 0;
  // Whole-command limit: print what we know and leave.
  asio::steady_timer limit(io, std::chrono::milliseconds(static_cast<long>(o.timeout_s * 1000)));
  limit.async_wait([&](const error_code& ec) {
    if (ec) return;
    json j;
    j["workload"] = workload;
    j["error"] = "timeout after " + std::to_string(o.timeout_s) + " s";
    print_json(j);
    std::_Exit(3);
  });
  std::shared_ptr<agent::agent> a;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        json j;
        j["workload"] = workload;
        try {
          std::unique_ptr<dialer> d;
          if (o.agent_mode()) {
            if (o.user.empty() || o.peer.empty() || o.service.empty()) {
              throw std::runtime_error("agent mode needs --user, --peer and --service");
            }
            const std::size_t vacant =
                o.vacant_lines > 0 ? static_cast<std::size_t>(o.vacant_lines) : default_vacant;
            a = std::make_shared<agent::agent>(io.get_executor(), make_agent_options(o, vacant));
            a->start();
            co_await a->wait_ready();
            d = std::make_unique<agent_dialer>(a, o.peer, o.service);
            co_await probe_target(*d, o.wait_target_s);
            j["vacant_lines"] = co_await wait_vacant(*a, vacant, std::chrono::seconds(30));
          } else if (!o.turn.empty()) {
            d = co_await make_turn_dialer(o);
          } else {
            if (o.connect.empty())
              throw std::runtime_error("give --connect ADDR:PORT, --relay ... or --turn ...");
            const auto hp = net::parse_host_port(o.connect);
            tcp::resolver r(io);
            const auto eps =
                co_await r.async_resolve(hp.host, std::to_string(hp.port), use_awaitable);
            d = std::make_unique<tcp_dialer>(eps.begin()->endpoint());
          }
          j["mode"] = d->mode();
          json result = co_await body(*d);
          j.update(result);
          if (a) {
            const auto s = a->stats();
            j["agent"] = {{"password_logins", s.password_logins},
                          {"ticket_logins", s.ticket_logins},
                          {"lines_lost", s.lines_lost},
                          {"sessions", s.sessions},
                          {"lines_open", s.lines_open}};
          }
          if (j.contains("errors") && j["errors"].get<std::uint64_t>() > 0) rc = 1;
          if (j.contains("failed") && j["failed"].get<std::uint64_t>() > 0) rc = 1;
        } catch (const std::exception& e) {
          j["error"] = e.what();
          rc = 2;
        }
        print_json(j);
        if (a) a->stop();
        io.stop();
      },
      asio::detached);
  io.run();
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sb_load: load generator and target services for Switchboard benchmarks"};
  app.require_subcommand(1);

  std::string listen = "127.0.0.1:0", port_file;
  auto* echo_cmd = app.add_subcommand("echo-server", "echo every byte back (keeps half-close)");
  auto* sink_cmd =
      app.add_subcommand("sink-server", "discard; at EOF reply the byte count (u64 LE)");
  for (auto* c : {echo_cmd, sink_cmd}) {
    c->add_option("--listen", listen, "ADDR:PORT")->capture_default_str();
    c->add_option("--port-file", port_file, "write the bound port here");
  }
  bool length_prefix = false;
  sink_cmd->add_flag("--length-prefix", length_prefix,
                     "the first 8 bytes (u64 LE) give the length; answer once it arrived");

  conn_options o;
  std::string bytes = "1Gi", chunk = "256Ki";
  std::size_t streams = 1;
  bool echo = false;
  auto* bulk_cmd = app.add_subcommand("bulk", "throughput: K streams share --bytes");
  add_conn_options(bulk_cmd, o);
  bulk_cmd->add_option("--bytes", bytes, "total bytes (suffixes Ki Mi Gi K M G)")
      ->capture_default_str();
  bulk_cmd->add_option("--streams", streams, "concurrent streams")->capture_default_str();
  bulk_cmd->add_option("--chunk", chunk, "write size")->capture_default_str();
  bulk_cmd->add_flag("--echo", echo, "target echoes: send and receive everything (default: sink)");

  std::size_t count = 10000, size = 64, warmup = 200;
  auto* pp_cmd = app.add_subcommand("pingpong", "round-trip latency on one stream");
  add_conn_options(pp_cmd, o);
  pp_cmd->add_option("--count", count, "measured round trips")->capture_default_str();
  pp_cmd->add_option("--size", size, "message size")->capture_default_str();
  pp_cmd->add_option("--warmup", warmup, "unmeasured round trips first")->capture_default_str();

  double seconds = 5;
  std::size_t parallel = 8;
  std::uint64_t max_sessions = 1'000'000;
  auto* rate_cmd =
      app.add_subcommand("rate", "new sessions per second: connect, 1 byte echo, close");
  add_conn_options(rate_cmd, o);
  rate_cmd->add_option("--seconds", seconds, "duration")->capture_default_str();
  rate_cmd->add_option("--parallel", parallel, "concurrent workers")->capture_default_str();
  rate_cmd->add_option("--max-sessions", max_sessions, "stop after this many")
      ->capture_default_str();

  std::size_t batch = 64, instances = 15;
  double hold = 30;
  std::string ready_file;
  bool no_ping = false;
  auto* idle_cmd =
      app.add_subcommand("idle", "open N connections (1 byte echo each) and hold them");
  add_conn_options(idle_cmd, o);
  idle_cmd->add_option("--count", count, "connections")->capture_default_str();
  idle_cmd->add_option("--batch", batch, "opened concurrently")->capture_default_str();
  idle_cmd->add_option("--hold-seconds", hold, "hold this long (or until SIGTERM)")
      ->capture_default_str();
  idle_cmd->add_option("--ready-file", ready_file, "written once all are open");
  idle_cmd->add_flag("--no-ping", no_ping, "do not echo a byte on each connection");

  auto* lines_cmd =
      app.add_subcommand("sb-idle-lines", "log in N idle lines (agent instances, no sessions)");
  add_conn_options(lines_cmd, o);
  lines_cmd->add_option("--count", count, "lines")->capture_default_str();
  lines_cmd->add_option("--instances", instances, "agent instances sharing them (one at a time)")
      ->capture_default_str();
  lines_cmd->add_option("--hold-seconds", hold, "hold this long (or until SIGTERM)")
      ->capture_default_str();
  lines_cmd->add_option("--ready-file", ready_file, "written once all are logged in");

  auto* target_cmd = app.add_subcommand(
      "sb-target", "target agent: answers calls for echo and sink in-process until SIGTERM");
  add_conn_options(target_cmd, o);

  CLI11_PARSE(app, argc, argv);
  std::signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  try {
    spdlog::set_level(spdlog::level::from_str(o.log_level));
    if (*echo_cmd) return serve(listen, port_file, true, false);
    if (*sink_cmd) return serve(listen, port_file, false, length_prefix);
    if (*bulk_cmd) {
      const std::uint64_t total = parse_size(bytes);
      const std::size_t ch = static_cast<std::size_t>(parse_size(chunk));
      if (streams == 0 || total < streams || ch == 0)
        throw std::invalid_argument("bad --bytes/--streams/--chunk");
      return run_client("bulk", o, streams + 2,
                        [&](dialer& d) { return run_bulk(d, total, streams, ch, echo); });
    }
    if (*pp_cmd) {
      if (size == 0 || count == 0) throw std::invalid_argument("bad --size/--count");
      return run_client("pingpong", o, 2,
                        [&](dialer& d) { return run_pingpong(d, count, size, warmup); });
    }
    if (*rate_cmd) {
      if (parallel == 0) throw std::invalid_argument("bad --parallel");
      return run_client("rate", o, parallel + 2,
                        [&](dialer& d) { return run_rate(d, seconds, parallel, max_sessions); });
    }
    if (*idle_cmd) {
      return run_client("idle", o, std::min<std::size_t>(batch + 2, count + 1), [&](dialer& d) {
        return run_idle(d, count, std::max<std::size_t>(1, batch), !no_ping, hold, ready_file);
      });
    }
    if (*target_cmd) {
      return run_target(o, o.vacant_lines > 0 ? static_cast<std::size_t>(o.vacant_lines) : 8);
    }
    if (*lines_cmd) {
      if (!o.agent_mode() || o.user.empty())
        throw std::invalid_argument("sb-idle-lines needs --relay and --user");
      asio::io_context io(1);
      int rc = 0;
      asio::co_spawn(
          io,
          [&]() -> awaitable<void> {
            json j;
            j["workload"] = "sb-idle-lines";
            try {
              j.update(co_await run_idle_lines(io, o, count, instances, hold, ready_file));
              if (j.contains("error")) rc = 1;
            } catch (const std::exception& e) {
              j["error"] = e.what();
              rc = 2;
            }
            print_json(j);
            io.stop();
          },
          asio::detached);
      asio::steady_timer limit(io,
                               std::chrono::milliseconds(static_cast<long>(o.timeout_s * 1000)));
      limit.async_wait([&](const error_code& ec) {
        if (ec) return;
        print_json(json{{"workload", "sb-idle-lines"}, {"error", "timeout"}});
        std::_Exit(3);
      });
      io.run();
      return rc;
    }
  } catch (const std::exception& e) {
    json j;
    j["error"] = e.what();
    print_json(j);
    return 2;
  }
  return 0;
}
