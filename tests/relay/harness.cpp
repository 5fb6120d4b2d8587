#include "relay/harness.hpp"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstdlib>
#include <random>

#include "net/tls.hpp"

namespace switchboard::test {

namespace p = protocol;
using clock = std::chrono::steady_clock;

namespace {
// Once per process: no SIGPIPE from writes to closed sockets (TLS writes use write(2)), and quiet
// logs unless SB_TEST_LOG names a level ("debug", "info", ...).
const bool process_setup = [] {
  std::signal(SIGPIPE, SIG_IGN);
  const char* level = std::getenv("SB_TEST_LOG");
  spdlog::set_level(level ? spdlog::level::from_str(level) : spdlog::level::off);
  return true;
}();
}  // namespace

// ---- waiting ---------------------------------------------------------------------------------

awaitable<bool> poll_until(std::function<bool()> cond, milliseconds limit) {
  asio::steady_timer tick(co_await asio::this_coro::executor);
  const auto deadline = clock::now() + limit;
  while (!cond()) {
    if (clock::now() >= deadline) co_return false;
    tick.expires_after(10ms);
    co_await tick.async_wait(use_awaitable);
  }
  co_return true;
}

// ---- data ------------------------------------------------------------------------------------

data_train data_frames(std::initializer_list<std::size_t> sizes, std::uint64_t seed) {
  data_train t;
  for (const std::size_t n : sizes) {
    const auto part = random_bytes(n, seed++);
    const auto h =
        protocol::encode_header(protocol::frame_type::data, static_cast<std::uint32_t>(n));
    t.wire.insert(t.wire.end(), h.begin(), h.end());
    t.wire.insert(t.wire.end(), part.begin(), part.end());
    t.payload.insert(t.payload.end(), part.begin(), part.end());
  }
  return t;
}

std::vector<std::uint8_t> random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::vector<std::uint8_t> out(n);
  std::size_t i = 0;
  while (i < n) {
    std::uint64_t v = gen();
    for (int k = 0; k < 8 && i < n; ++k, v >>= 8) out[i++] = static_cast<std::uint8_t>(v);
  }
  return out;
}

std::vector<std::uint8_t> bytes_of(std::string_view text) {
  return {text.begin(), text.end()};
}

std::string text_of(std::span<const std::uint8_t> bytes) {
  return {bytes.begin(), bytes.end()};
}

std::string sha256_hex(std::span<const std::uint8_t> bytes) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md.data(), &len, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("EVP_Digest failed");
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

// ---- relay -----------------------------------------------------------------------------------

std::string transport_name(const ::testing::TestParamInfo<transport>& info) {
  return info.param == transport::tls ? "Tls" : "Plaintext";
}

relay::relay_config test_config() {
  relay::relay_config c;
  c.listen = "127.0.0.1:0";
  c.login_timeout = 5s;
  c.min_keepalive = 100ms;  // keep-alive tests ask for 200 ms
  c.max_keepalive = 25s;
  c.demand_timeout = 5s;
  c.release_timeout = 5s;
  c.drain_timeout = 2s;
  c.auth_threads = 2;
  // SB_TEST_RELAY_THREADS=N runs the suite with N forwarding threads, and every paired session
  // moves there at its first chance (CTest runs the suite both ways: tests/relay/CMakeLists.txt).
  if (const char* n = std::getenv("SB_TEST_RELAY_THREADS"); n && *n) {
    c.forward_threads = static_cast<unsigned>(std::stoul(n));
    c.offload_after_frames = 0;
  }
  return c;
}

temp_dir::temp_dir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "sb-relay-test-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

temp_dir::~temp_dir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

relay_env::relay_env(transport m, relay::relay_config cfg) : mode(m) {
  users = store::open_sqlite_store(dir.path() / "users.db", store::hash_cost::minimum);
  for (const auto& u : test_users()) users->add_user(u, password_of(u));
  if (mode == transport::tls) {
    const auto id = net::ensure_self_signed(dir.path() / "tls");
    fingerprint = net::fingerprint_of_cert_file(id.cert_file);
  }
  cfg.plaintext = mode == transport::plaintext;
  cfg.data_dir = dir.path();
  config = cfg;
  server = std::make_unique<relay::server>(io, config, *users, make_tls(), ticket_key);
  endpoint = server->listen(tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  server->start();
}

net::ssl_ctx_ptr relay_env::make_tls() const {
  if (mode != transport::tls) return nullptr;
  return net::make_server_context(net::ensure_self_signed(dir.path() / "tls"));
}

awaitable<void> relay_env::restart_relay() {
  server->stop();
  relay::hub& old = server->state();
  other_relays_.push_back(std::move(server));
  CO_WAIT_UNTIL(old.line_count() == 0, 10s);
  server = std::make_unique<relay::server>(io, config, *users, make_tls(), ticket_key);
  endpoint = server->listen(endpoint);
  server->start();
}

tcp::endpoint relay_env::another_relay(const relay::ticket_key& key) {
  auto cfg = config;
  cfg.plaintext = true;
  auto& s =
      other_relays_.emplace_back(std::make_unique<relay::server>(io, cfg, *users, nullptr, key));
  const tcp::endpoint ep = s->listen(tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  s->start();
  return ep;
}

relay_env::~relay_env() {
  for (const auto& a : agents_) a->stop();
  if (server) server->stop();
  for (const auto& s : other_relays_) s->stop();
  if (abandoned_) return;  // a suspended body may refer to the test's locals: never resume it
  io.run_for(10s);
  if (!io.stopped()) {
    ADD_FAILURE() << "the relay and the agents did not wind down within 10 s of stopping";
  }
}

void relay_env::run(std::function<awaitable<void>()> body, milliseconds limit) {
  struct outcome {
    bool done = false;
    std::exception_ptr error;
  };
  auto result = std::make_shared<outcome>();
  auto& fn = bodies_.emplace_back(std::move(body));
  asio::co_spawn(io, fn(), [result](std::exception_ptr e) {
    result->done = true;
    result->error = e;
  });
  const auto deadline = clock::now() + limit;
  while (!result->done && clock::now() < deadline) {
    io.run_one_until(deadline);
    if (io.stopped()) io.restart();
  }
  if (!result->done) {
    abandoned_ = true;
    ADD_FAILURE() << "the test body did not finish within " << limit.count() << " ms";
    return;
  }
  if (!result->error) return;
  try {
    std::rethrow_exception(result->error);
  } catch (const test_failure& e) {
    ADD_FAILURE_AT(e.file(), e.line()) << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "the test body threw: " << e.what();
  }
}

agent::agent_options relay_env::agent_options(const std::string& user) const {
  agent::agent_options o;
  o.relay_host = "127.0.0.1";
  o.relay_port = endpoint.port();
  o.user = user;
  o.password = password_of(user);
  o.plaintext = mode == transport::plaintext;
  if (!o.plaintext) o.tls.fingerprint = fingerprint;
  o.keepalive = 2s;
  o.vacant_lines = 2;
  o.connect_timeout = 5s;
  o.backoff_initial = 50ms;
  o.backoff_max = 500ms;
  return o;
}

std::shared_ptr<agent::agent> relay_env::make_agent(const agent::agent_options& opts) {
  auto a = std::make_shared<agent::agent>(io.get_executor(), opts);
  agents_.push_back(a);
  return a;
}

awaitable<void> settle(std::shared_ptr<agent::agent> a, std::size_t vacant) {
  CO_WAIT_UNTIL(
      a->stats().lines_vacant >= vacant && a->stats().lines_vacant == a->stats().lines_open, 10s);
}

awaitable<pair_of_agents> start_pair(relay_env& env, agent::incoming_handler handler) {
  pair_of_agents pa;
  pa.bob = env.make_agent("bob");
  pa.bob->set_incoming(test_services(), std::move(handler));
  co_await start_and_settle(pa.bob, 2);
  pa.alice = env.make_agent("alice");
  co_await start_and_settle(pa.alice, 2);
  co_return pa;
}

awaitable<void> start_and_settle(std::shared_ptr<agent::agent> a, std::size_t vacant) {
  a->start();
  co_await a->wait_ready();
  co_await settle(a, vacant);
}

// ---- services --------------------------------------------------------------------------------

awaitable<void> echo(agent::session s) {
  std::vector<std::uint8_t> buf(64 * 1024);
  for (;;) {
    const std::size_t n = co_await s.read_some(asio::buffer(buf));
    if (n == 0) break;
    co_await s.write(asio::buffer(buf.data(), n));
  }
  if (!s.terminated()) co_await s.shutdown_write();
}

agent::incoming_handler echo_handler() {
  return [](agent::incoming_call) -> awaitable<agent::answer> {
    agent::answer a;
    a.serve = &echo;
    co_return a;
  };
}

awaitable<std::vector<std::uint8_t>> read_to_end(agent::session& s) {
  std::vector<std::uint8_t> out;
  std::vector<std::uint8_t> buf(64 * 1024);
  for (;;) {
    const std::size_t n = co_await s.read_some(asio::buffer(buf));
    if (n == 0) break;
    out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
  }
  co_return out;
}

awaitable<void> write_then_eof(agent::session& s, std::span<const std::uint8_t> data,
                               std::size_t chunk) {
  for (std::size_t off = 0; off < data.size(); off += chunk) {
    const std::size_t n = std::min(chunk, data.size() - off);
    co_await s.write(asio::buffer(data.data() + off, n));
  }
  co_await s.shutdown_write();
}

awaitable<std::vector<std::uint8_t>> send_and_read_all(agent::session& s,
                                                       std::span<const std::uint8_t> data) {
  using namespace asio::experimental::awaitable_operators;
  co_return co_await (write_then_eof(s, data) && read_to_end(s));
}

awaitable<call_outcome> try_call(std::shared_ptr<agent::agent> a, std::string peer,
                                 std::string service) {
  std::optional<call_outcome> failed;
  try {
    agent::session s = co_await a->call(peer, service);
    co_await s.close();
  } catch (const agent::call_error& e) {
    failed.emplace(e.code(), e.what());
  }
  if (failed) co_return *failed;
  co_return call_outcome(err::ok, "");
}

// ---- raw client ------------------------------------------------------------------------------

std::string describe(const raw_frame& f) {
  std::string out = p::frame_name(f.type);
  if (f.type == p::frame_type::data)
    return out + "(" + std::to_string(f.payload.size()) + " bytes)";
  const auto coded = [&](err c, const std::string& m) {
    out += "(" + std::string(p::error_name(c)) + ": " + m + ")";
  };
  if (const auto* m = std::get_if<p::fail>(&*f.msg)) coded(m->code, m->message);
  if (const auto* m = std::get_if<p::logged_out>(&*f.msg)) coded(m->code, m->message);
  if (const auto* m = std::get_if<p::terminate>(&*f.msg)) coded(m->code, m->message);
  return out;
}

p::instance_id random_instance() {
  static std::mt19937_64 gen(std::random_device{}());
  p::instance_id id{};
  for (auto& b : id) b = static_cast<std::uint8_t>(gen());
  return id;
}

p::login login_message(const std::string& user, const std::string& secret,
                       std::uint32_t keepalive_ms, bool answers, const p::instance_id& instance) {
  p::login m;
  m.user = user;
  m.secret = secret;
  m.instance = instance;
  m.keepalive_ms = keepalive_ms;
  if (answers) m.services = test_services();
  return m;
}

std::optional<asio::ip::address> other_loopback(int last_octet) {
  const auto a = asio::ip::make_address("127.0.0." + std::to_string(last_octet));
  asio::io_context io;
  tcp::socket s(io);
  error_code ec;
  s.open(tcp::v4(), ec);
  if (!ec) s.bind(tcp::endpoint(a, 0), ec);
  if (ec) return std::nullopt;
  return a;
}

awaitable<raw_client> raw_client::connect(tcp::endpoint relay, asio::ip::address local) {
  tcp::socket s(co_await asio::this_coro::executor);
  s.open(relay.protocol());
  if (!local.is_unspecified()) s.bind(tcp::endpoint(local, 0));
  co_await s.async_connect(relay, use_awaitable);
  s.set_option(tcp::no_delay(true));
  co_return raw_client(std::move(s));
}

awaitable<void> raw_client::send(const p::message& m) {
  const auto frame = p::encode(m);
  co_await asio::async_write(socket_, asio::buffer(frame), use_awaitable);
}

awaitable<void> raw_client::send_bytes(std::span<const std::uint8_t> bytes) {
  co_await asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()), use_awaitable);
}

awaitable<void> raw_client::send_data(std::span<const std::uint8_t> payload) {
  const auto h = p::encode_header(p::frame_type::data, static_cast<std::uint32_t>(payload.size()));
  const std::array<asio::const_buffer, 2> parts{asio::buffer(h),
                                                asio::buffer(payload.data(), payload.size())};
  co_await asio::async_write(socket_, parts, use_awaitable);
}

awaitable<std::optional<raw_frame>> raw_client::read_frame() {
  std::array<std::uint8_t, p::header_size> h{};
  auto [ec, n] = co_await asio::async_read(socket_, asio::buffer(h), asio::as_tuple(use_awaitable));
  if ((ec == asio::error::eof && n == 0) || ec == asio::error::connection_reset) {
    co_return std::nullopt;
  }
  if (ec) throw boost::system::system_error(ec, "reading a frame header");
  const auto header = p::parse_header(h);
  raw_frame f;
  f.type = header.type;
  f.payload.resize(header.length);
  if (header.length > 0) {
    auto [ec2, n2] =
        co_await asio::async_read(socket_, asio::buffer(f.payload), asio::as_tuple(use_awaitable));
    if (ec2) throw boost::system::system_error(ec2, "reading a frame payload");
  }
  if (f.type != p::frame_type::data) f.msg = p::decode(f.type, f.payload);
  co_return f;
}

awaitable<std::optional<raw_frame>> raw_client::read(milliseconds limit, std::source_location loc) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(co_await asio::this_coro::executor, limit);
  auto r = co_await (read_frame() || timer.async_wait(use_awaitable));
  if (r.index() == 1) {
    throw timeout_error(loc,
                        "no frame from the relay within " + std::to_string(limit.count()) + " ms");
  }
  co_return std::get<0>(std::move(r));
}

awaitable<void> raw_client::expect_alive(std::uint64_t nonce, milliseconds limit,
                                         std::source_location loc) {
  co_await send(p::ping{nonce});
  const auto pong = co_await expect<p::pong>(limit, loc);
  if (pong.nonce != nonce) {
    fail_at(loc, "PONG " + std::to_string(pong.nonce) + " for PING " + std::to_string(nonce));
  }
}

awaitable<p::fail> raw_client::expect_fail(err code, milliseconds limit, std::source_location loc) {
  auto m = co_await expect<p::fail>(limit, loc);
  if (m.code != code) {
    fail_at(loc, "expected FAIL " + std::string(p::error_name(code)) + ", got FAIL " +
                     std::string(p::error_name(m.code)) + " (" + m.message + ")");
  }
  co_return m;
}

awaitable<p::logged_out> raw_client::expect_logged_out(err code, milliseconds limit,
                                                       std::source_location loc) {
  auto m = co_await expect<p::logged_out>(limit, loc);
  if (m.code != code) {
    fail_at(loc, "expected LOGGED-OUT " + std::string(p::error_name(code)) + ", got LOGGED-OUT " +
                     std::string(p::error_name(m.code)) + " (" + m.message + ")");
  }
  co_return m;
}

awaitable<p::terminate> raw_client::expect_terminate(err code, milliseconds limit,
                                                     std::source_location loc) {
  auto m = co_await expect<p::terminate>(limit, loc);
  if (m.code != code) {
    fail_at(loc, "expected TERMINATE " + std::string(p::error_name(code)) + ", got TERMINATE " +
                     std::string(p::error_name(m.code)) + " (" + m.message + ")");
  }
  co_return m;
}

awaitable<std::vector<std::uint8_t>> raw_client::expect_data(milliseconds limit,
                                                             std::source_location loc) {
  auto f = co_await read(limit, loc);
  if (!f) fail_at(loc, "expected DATA, but the relay closed the line");
  if (f->type != p::frame_type::data) fail_at(loc, "expected DATA, got " + describe(*f));
  co_return std::move(f->payload);
}

awaitable<void> raw_client::expect_closed(milliseconds limit, std::source_location loc) {
  auto f = co_await read(limit, loc);
  if (f) fail_at(loc, "expected the relay to close the line, got " + describe(*f));
}

awaitable<void> raw_client::expect_logged_out_or_closed(err code, milliseconds limit,
                                                        std::source_location loc) {
  auto f = co_await read(limit, loc);
  if (!f) co_return;
  const auto* m = f->msg ? std::get_if<p::logged_out>(&*f->msg) : nullptr;
  if (!m || m->code != code) {
    fail_at(loc, "expected LOGGED-OUT " + std::string(p::error_name(code)) + " or the close, got " +
                     describe(*f));
  }
  co_await expect_closed(limit, loc);
}

awaitable<p::login_ok> raw_client::login(std::string user, std::string password,
                                         std::uint32_t keepalive_ms, bool answers,
                                         std::source_location loc) {
  instance_ = random_instance();
  user_ = user;
  const p::login m = login_message(user, password, keepalive_ms, answers, instance_);
  co_await send(m);
  auto f = co_await read(default_wait, loc);
  if (!f) fail_at(loc, "login as " + user + ": the relay closed the line");
  if (!f->msg || !std::holds_alternative<p::login_ok>(*f->msg)) {
    fail_at(loc, "login as " + user + ": got " + describe(*f));
  }
  const auto ok = std::get<p::login_ok>(*f->msg);
  ticket_ = ok.ticket;
  co_return ok;
}

awaitable<p::message> raw_client::ticket_login(const raw_client& first, bool answers) {
  auto reply = co_await ticket_login(first.user_, first.instance_, first.ticket_, answers);
  co_return reply;
}

awaitable<p::message> raw_client::ticket_login(const std::string& user,
                                               const p::instance_id& instance, const p::ticket& t,
                                               bool answers) {
  instance_ = instance;
  user_ = user;
  p::login m = login_message(user_, std::string(t.begin(), t.end()), 25'000, answers, instance_);
  m.auth = p::auth_method::ticket;
  co_await send(m);
  auto f = co_await read();
  if (!f) fail_at(std::source_location::current(), "ticket login: the relay closed the line");
  if (const auto* ok = std::get_if<p::login_ok>(&*f->msg)) ticket_ = ok->ticket;
  co_return std::move(*f->msg);
}

void raw_client::close() {
  error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

awaitable<void> flood(raw_client& c, const bool& stop, std::size_t& sent) {
  const auto chunk = random_bytes(64 * 1024, 1);
  while (!stop) {
    co_await c.send_data(chunk);
    sent += chunk.size();
  }
}

awaitable<void> until_stalled(const std::size_t& sent) {
  asio::steady_timer tick(co_await asio::this_coro::executor);
  std::size_t last = sent;
  auto last_change = std::chrono::steady_clock::now();
  const auto give_up = last_change + 20s;
  while (std::chrono::steady_clock::now() - last_change < 300ms &&
         std::chrono::steady_clock::now() < give_up) {
    tick.expires_after(20ms);
    co_await tick.async_wait(use_awaitable);
    if (sent != last) {
      last = sent;
      last_change = std::chrono::steady_clock::now();
    }
  }
}

awaitable<std::uint32_t> pair_raw(raw_client& caller, raw_client& target, std::string service) {
  const p::demand d(target.user(), service);
  co_await caller.send(d);
  const auto in = co_await target.expect<p::incoming>();
  CO_ASSERT_EQ(in.caller, caller.user());
  CO_ASSERT_EQ(in.service, service);
  p::accept acc;
  acc.session = in.session;
  co_await target.send(acc);
  const auto c = co_await caller.expect<p::connected>();
  CO_ASSERT_EQ(c.session, in.session);
  CO_ASSERT_EQ(c.target, target.user());
  co_return in.session;
}

awaitable<raw_pair> paired_raw(tcp::endpoint relay) {
  auto bob = co_await raw_client::connect(relay);
  co_await bob.login("bob", password_of("bob"));
  auto alice = co_await raw_client::connect(relay);
  co_await alice.login("alice", password_of("alice"));
  co_await pair_raw(alice, bob);
  co_return raw_pair{std::move(alice), std::move(bob)};
}

awaitable<raw_client> raw_call(tcp::endpoint relay, std::string target, std::string service) {
  auto alice = co_await raw_client::connect(relay);
  co_await alice.login("alice", password_of("alice"));
  const protocol::demand d(std::move(target), std::move(service));
  co_await alice.send(d);
  co_await alice.expect<protocol::connected>();
  co_return alice;
}

// ---- mute relay ------------------------------------------------------------------------------

mute_relay::mute_relay(asio::io_context& io, std::uint32_t keepalive_ms)
    : acceptor_(
          std::make_shared<tcp::acceptor>(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0))),
      state_(std::make_shared<state>()),
      endpoint_(acceptor_->local_endpoint()) {
  asio::co_spawn(io, accept_loop(acceptor_, state_, keepalive_ms), asio::detached);
}

mute_relay::~mute_relay() {
  stop();
}

void mute_relay::stop() {
  state_->stopped = true;
  error_code ignored;
  acceptor_->close(ignored);
  for (const auto& w : state_->sockets) {
    if (auto s = w.lock()) s->close(ignored);
  }
}

awaitable<void> mute_relay::accept_loop(std::shared_ptr<tcp::acceptor> acceptor,
                                        std::shared_ptr<state> st, std::uint32_t keepalive_ms) {
  while (!st->stopped) {
    auto [ec, socket] = co_await acceptor->async_accept(asio::as_tuple(use_awaitable));
    if (ec || st->stopped) co_return;
    auto s = std::make_shared<tcp::socket>(std::move(socket));
    st->sockets.push_back(s);
    asio::co_spawn(acceptor->get_executor(), serve(s, st, keepalive_ms), asio::detached);
  }
}

awaitable<void> mute_relay::serve(std::shared_ptr<tcp::socket> s, std::shared_ptr<state> st,
                                  std::uint32_t keepalive_ms) {
  std::vector<std::uint8_t> payload;
  for (;;) {
    std::array<std::uint8_t, p::header_size> h{};
    auto [ec, n] = co_await asio::async_read(*s, asio::buffer(h), asio::as_tuple(use_awaitable));
    if (ec) co_return;
    const auto header = p::parse_header(h);
    payload.resize(header.length);
    auto [ec2, n2] =
        co_await asio::async_read(*s, asio::buffer(payload), asio::as_tuple(use_awaitable));
    if (ec2) co_return;
    if (header.type != p::frame_type::login) continue;  // PINGs and everything else: dropped
    ++st->logins;
    p::login_ok ok;
    ok.line = static_cast<std::uint32_t>(st->logins);
    ok.keepalive_ms = keepalive_ms;
    ok.max_lines = 64;
    const auto frame = p::encode(ok);
    auto [ec3, n3] =
        co_await asio::async_write(*s, asio::buffer(frame), asio::as_tuple(use_awaitable));
    if (ec3) co_return;
  }
}

// ---- TCP echo server -------------------------------------------------------------------------

tcp_echo_server::tcp_echo_server(asio::io_context& io)
    : acceptor_(
          std::make_shared<tcp::acceptor>(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0))),
      port_(acceptor_->local_endpoint().port()) {
  asio::co_spawn(io, accept_loop(acceptor_), asio::detached);
}

tcp_echo_server::~tcp_echo_server() {
  error_code ignored;
  acceptor_->close(ignored);
}

awaitable<void> tcp_echo_server::accept_loop(std::shared_ptr<tcp::acceptor> acceptor) {
  for (;;) {
    auto [ec, socket] = co_await acceptor->async_accept(asio::as_tuple(use_awaitable));
    if (ec) co_return;
    const auto serve = [](tcp::socket s) -> awaitable<void> {
      std::vector<std::uint8_t> buf(64 * 1024);
      for (;;) {
        auto [rec, n] =
            co_await s.async_read_some(asio::buffer(buf), asio::as_tuple(use_awaitable));
        if (n > 0) {
          auto [wec, w] = co_await asio::async_write(s, asio::buffer(buf.data(), n),
                                                     asio::as_tuple(use_awaitable));
          if (wec) co_return;
        }
        if (rec == asio::error::eof) {
          error_code ignored;
          s.shutdown(tcp::socket::shutdown_send, ignored);
          co_return;
        }
        if (rec) co_return;
      }
    };
    asio::co_spawn(acceptor->get_executor(), serve(std::move(socket)), asio::detached);
  }
}

}  // namespace switchboard::test
