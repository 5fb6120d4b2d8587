#include "agent/line.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <cstring>
#include <optional>
#include <span>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "net/framed.hpp"
#include "net/tcp_path.hpp"
#include "protocol/printable.hpp"
#include "protocol/sniff.hpp"

namespace switchboard::agent {

namespace p = protocol;
using p::error_code;

namespace {
constexpr std::size_t max_frame_write =
    std::size_t{256} * 1024;  // DATA frames we send (limit is 1 MiB)

boost::system::system_error line_gone(const std::string& why) {
  return boost::system::system_error(asio::error::broken_pipe, why);
}

// Writes to the non-blocking `sink` what it takes now of `bytes`; nullopt if it takes nothing
// yet (would block). Other errors throw.
std::optional<std::size_t> try_send(tcp::socket& sink, std::span<const std::uint8_t> bytes) {
  boost::system::error_code ec;
  const std::size_t put = sink.write_some(asio::buffer(bytes.data(), bytes.size()), ec);
  if (ec == asio::error::would_block) return std::nullopt;
  if (ec) throw boost::system::system_error(ec);
  return put;
}
}  // namespace

std::size_t session_core::take_inbox(asio::mutable_buffer buf) {
  const std::size_t n = std::min(buf.size(), inbox.size() - inbox_pos);
  std::memcpy(buf.data(), inbox.data() + inbox_pos, n);
  inbox_pos += n;
  return n;
}

agent_line::agent_line(std::shared_ptr<agent> owner, bool calls_only)
    : owner_(std::move(owner)),
      reply_ready_(owner_->executor()),
      data_ready_(owner_->executor()),
      data_consumed_(owner_->executor()),
      keepalive_timer_(owner_->executor()),
      calls_only_(calls_only) {}

agent_line::~agent_line() = default;

void agent_line::set_state(line_state s) {
  state_ = s;
  if (s == line_state::vacant) vacant_since_ = clock::now();
  owner_->line_changed();
}

void agent_line::close() {
  // A closed line carries no session any more: the session's handle sees it ended, and the
  // line <-> session link is broken now, not only when run() ends (it never does if the
  // io_context is stopped first, as the programs do after agent::stop()).
  if (current_) {
    if (!current_->ended) current_->ended = termination{error_code::peer_lost, "line closed"};
    current_.reset();
  }
  if (stream_) stream_->close();
  keepalive_timer_.cancel();
}

// --- lifetime ---------------------------------------------------------------------------------

awaitable<void> agent_line::run() {
  auto self = shared_from_this();
  const auto& opts = owner_->options();
  std::exception_ptr attempt_failure;  // why connect_and_login failed
  try {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer limit(owner_->executor(), opts.connect_timeout);
    // operator|| waits for the first *success*: a failed attempt must complete as a value, or
    // the line would wait for the whole connect_timeout before it noticed.
    const auto r = co_await (attempt_login() || limit.async_wait(use_awaitable));
    if (r.index() == 1) {
      attempt_failure = std::make_exception_ptr(agent_error(
          failure_class::unreachable,
          fmt::format("no answer from the relay at {}:{} within the connect timeout of {} ms "
                      "(while {})",
                      opts.relay_host, opts.relay_port, opts.connect_timeout.count(), stage_)));
    } else {
      attempt_failure = std::get<0>(r);
    }
    if (attempt_failure) std::rethrow_exception(attempt_failure);
    asio::co_spawn(
        owner_->executor(), [self] { return self->keepalive(); }, asio::detached);
    co_await read_loop();
    error_ = "relay closed the line";
  } catch (const call_error& e) {
    error_ = e.what();
    logged_out_ = e.code() == error_code::ok;  // after this agent's LOGOUT
  } catch (const agent_error& e) {
    error_ = e.what();
  } catch (const p::protocol_violation& e) {
    error_ = std::string("protocol error from relay: ") + e.what();
    spdlog::warn("line to relay: {}", error_);
  } catch (const boost::system::system_error& e) {
    error_ = e.what();
  } catch (const std::exception& e) {
    error_ = e.what();
    spdlog::error("line to relay: {}", error_);
  }
  const bool was_logged_in = logged_in_;
  if (current_ && !current_->ended) current_->ended = termination{error_code::peer_lost, error_};
  // The session's handle keeps the line alive (session_core::line); dropping the line's side of
  // that link here breaks the cycle line -> session -> line, so both are freed once the
  // application lets go of the handle. A handle of a dead line reads 0 and sees `ended`.
  current_.reset();
  state_ = line_state::dead;
  close();
  reply_ready_.set();
  data_ready_.set();
  data_consumed_.set();
  if (was_logged_in) {
    // A surplus line this agent retired, or the relay closing its lines after our LOGOUT, is
    // routine.
    const bool routine = retired_ || logged_out_;
    spdlog::log(routine ? spdlog::level::debug : spdlog::level::info, "line to relay {}: {}",
                routine ? "closed" : "lost", p::printable(error_));
  }
  owner_->line_ended(*this, was_logged_in ? nullptr : attempt_failure);
}

awaitable<std::exception_ptr> agent_line::attempt_login() {
  std::exception_ptr failure;
  try {
    co_await connect_and_login();
  } catch (...) {
    failure = std::current_exception();
  }
  co_return failure;
}

awaitable<void> agent_line::connect_and_login() {
  const auto& opts = owner_->options();
  co_await connect();
  stage_ = "logging in";
  const auto creds = owner_->credentials();
  p::login m;
  m.auth = creds.auth;
  m.user = opts.user;
  m.secret = creds.secret;
  m.instance = owner_->instance();
  m.keepalive_ms = static_cast<std::uint32_t>(opts.keepalive.count());
  m.services = owner_->services();
  m.calls_only = calls_only_;
  co_await net::write_message(*stream_, m);

  if (!stream_->tls()) co_await expect_plaintext_answer();
  const auto h = co_await net::read_header(*stream_);
  if (!h) {
    // The relay closes a line at once, without a word, when its address has too many lines
    // waiting to log in (docs/protocol.md §10).
    throw agent_error(failure_class::retry_later,
                      "the relay closed the line during login (too many connections waiting to "
                      "log in from this address?)");
  }
  const auto reply = co_await net::read_control(*stream_, *h);
  if (const auto* f = std::get_if<p::fail>(&reply)) {
    owner_->login_refused(f->code, "login refused: " + f->message,
                          creds.auth == p::auth_method::ticket);
    throw call_error(f->code, "login refused: " + f->message);
  }
  if (const auto* lo = std::get_if<p::logged_out>(&reply)) {
    if (!stream_->tls() && lo->code == error_code::protocol_error) {
      throw agent_error(failure_class::tls,
                        "TLS mismatch: this agent runs with --plaintext and the relay refused "
                        "the plaintext line: PROTOCOL_ERROR: " +
                            p::printable(lo->message) +
                            " (drop --plaintext and give --fingerprint or --ca)");
    }
    const std::string text = "relay logged the line out during login: " + lo->message;
    owner_->login_refused(lo->code, text, creds.auth == p::auth_method::ticket);
    throw call_error(lo->code, text);
  }
  const auto* ok = std::get_if<p::login_ok>(&reply);
  if (!ok) throw p::protocol_violation("expected LOGIN-OK or FAIL");
  keepalive_ = std::chrono::milliseconds(std::max<std::uint32_t>(ok->keepalive_ms, 100));
  logged_in_ = true;
  last_ping_ = clock::now();
  owner_->logged_in(*this, *ok, creds.auth);
  set_state(line_state::vacant);
}

awaitable<void> agent_line::connect() {
  const auto& opts = owner_->options();
  const auto ex = owner_->executor();
  const std::string relay = opts.relay_host + ":" + std::to_string(opts.relay_port);
  stage_ = "resolving the relay's host name";
  tcp::resolver resolver(ex);
  auto [rec, endpoints] = co_await resolver.async_resolve(
      opts.relay_host, std::to_string(opts.relay_port), asio::as_tuple(use_awaitable));
  if (rec) {
    throw agent_error(failure_class::unreachable, "cannot resolve the relay's host name '" +
                                                      opts.relay_host + "': " + rec.message());
  }
  stage_ = "connecting";
  tcp::socket socket(ex);
  auto [cec, ep] = co_await asio::async_connect(socket, endpoints, asio::as_tuple(use_awaitable));
  if (cec == asio::error::connection_refused) {
    throw agent_error(failure_class::unreachable,
                      "connection to the relay at " + relay +
                          " refused (is the relay running, and listening on that port?)");
  }
  if (cec == asio::error::host_unreachable || cec == asio::error::network_unreachable) {
    throw agent_error(failure_class::unreachable,
                      "the relay at " + relay + " is unreachable: " + cec.message());
  }
  if (cec) {
    throw agent_error(failure_class::unreachable,
                      "cannot connect to the relay at " + relay + ": " + cec.message());
  }
  SSL_CTX* ctx = owner_->tls_context();
  if (!ctx) {
    stream_.emplace(std::move(socket));
    co_return;
  }
  stage_ = "in the TLS handshake";
  stream_.emplace(std::move(socket), ctx, false);
  if (!opts.tls.ca_file.empty()) net::set_client_host_name(stream_->ssl(), opts.relay_host);
  net::watch_first_record(stream_->ssl(), &first_record_);
  std::optional<std::string> failed;
  try {
    co_await stream_->handshake();
  } catch (const boost::system::system_error& e) {
    failed = e.what();
  }
  if (failed) throw handshake_failure(*failed);
  net::stop_watching_records(stream_->ssl());
}

agent_error agent_line::handshake_failure(const std::string& what) const {
  const auto& opts = owner_->options();
  const std::string relay = opts.relay_host + ":" + std::to_string(opts.relay_port);
  if (const auto cert = stream_->ssl() ? net::certificate_failure(stream_->ssl()) : std::nullopt) {
    std::string text = "the relay at " + relay + " failed the certificate check: " + *cert;
    if (!opts.tls.ca_file.empty()) {
      text += " (CA file " + opts.tls.ca_file.string() + ", host name checked: " + opts.relay_host +
              ")";
    }
    return agent_error(failure_class::tls, text);
  }
  const std::span<const std::uint8_t> first(first_record_.header.data(), first_record_.size);
  if (p::looks_like_relay_frame(first)) {
    return agent_error(
        failure_class::tls,
        "TLS mismatch: the relay at " + relay +
            " runs without TLS (--plaintext): it answered the TLS handshake "
            "with a Switchboard frame (give --plaintext, or run the relay with TLS)");
  }
  return agent_error(failure_class::tls,
                     "TLS handshake with the relay at " + relay + " failed: " + what);
}

awaitable<void> agent_line::expect_plaintext_answer() {
  // The first bytes of the answer to LOGIN tell a TLS server (an alert or a handshake record)
  // from a relay; they stay in the line's read-ahead for read_header.
  const asio::cancellation_slot none;
  const boost::system::error_code ec = co_await stream_->wait_readable(none);
  if (ec) co_return;  // read_header reports it
  if (p::looks_like_tls_record(stream_->buffered_bytes())) {
    const auto& opts = owner_->options();
    throw agent_error(failure_class::tls,
                      "TLS mismatch: this agent runs with --plaintext but the relay at " +
                          opts.relay_host + ":" + std::to_string(opts.relay_port) +
                          " speaks TLS (drop --plaintext and give --fingerprint or --ca)");
  }
}

// --- keep-alive -------------------------------------------------------------------------------

bool agent_line::path_silent() const {
  // On a paired line the relay may be held up by the peer's flow control; then TCP tells whether
  // the path is alive (net::path_dead: lost segments, or bytes the kernel cannot send at all).
  // TCP's view is needed: a PING that the relay's kernel is still acknowledging late (delayed ACK,
  // up to 200 ms, when no PONG can carry the ACK because the line's writes wait behind the peer's
  // flow control) looked like a dead path right after an idle spell: seen replacing paired lines
  // under load with a 200 ms keep-alive.
  if (!stream_) return true;
  const int fd = const_cast<net::line_stream&>(*stream_).socket().native_handle();
  const auto t = net::read_tcp_path(fd);
  return !t || net::path_dead(*t, static_cast<std::uint32_t>(keepalive_.count()));
}

awaitable<void> agent_line::keepalive() {
  auto self = shared_from_this();
  while (state_ != line_state::dead) {
    keepalive_timer_.expires_after(keepalive_ / 4);
    co_await keepalive_timer_.async_wait(asio::as_tuple(use_awaitable));
    if (state_ == line_state::dead) co_return;
    const auto now = clock::now();
    if (ping_outstanding_ && now - ping_written_at_ > keepalive_) {
      const bool relaxed = state_ == line_state::paired || state_ == line_state::releasing;
      if (!relaxed || path_silent()) {
        spdlog::warn("relay did not answer a keep-alive within {} ms: replacing the line",
                     keepalive_.count());
        error_ = "keep-alive answer late";
        close();
        co_return;
      }
    }
    // PING at every interval whatever the state (docs/protocol.md §8): on a paired line the PONG
    // may be held up behind the session's flow control, and the relay judges this line's silence
    // by what it reads from it.
    const bool relaxed = state_ == line_state::paired || state_ == line_state::releasing;
    if ((!ping_outstanding_ || relaxed) && !ping_in_flight_ && now - last_ping_ >= keepalive_) {
      asio::co_spawn(
          owner_->executor(), [self] { return self->send_ping(); }, asio::detached);
    }
  }
}

awaitable<void> agent_line::send_ping() {
  auto self = shared_from_this();
  ping_in_flight_ = true;
  last_ping_ = clock::now();
  const bool ok = co_await send(p::ping{++ping_nonce_});
  ping_in_flight_ = false;
  if (ok && !ping_outstanding_) {  // the late-answer check runs from the oldest unanswered PING
    ping_outstanding_ = true;
    ping_written_at_ = clock::now();
  }
}

awaitable<bool> agent_line::send(const p::message& m) {
  auto guard = co_await write_mutex_.lock();
  if (state_ == line_state::dead || !stream_) co_return false;
  try {
    co_await net::write_message(*stream_, m);
    co_return true;
  } catch (const boost::system::system_error&) {
    close();
    co_return false;
  }
}

// --- reading ----------------------------------------------------------------------------------

awaitable<void> agent_line::read_loop() {
  for (;;) {
    if (!stream_->read_buffered()) {
      // On a plaintext line the wait reads the next frame (often a header and its small payload)
      // into the line's read-ahead: one recv(2) for both, and no readiness re-arm.
      const asio::cancellation_slot none;  // the line ends the wait by closing its socket
      const boost::system::error_code ec = co_await stream_->wait_readable(none);
      if (ec) throw boost::system::system_error(ec);
    }
    const auto h = co_await net::read_header(*stream_);
    if (!h) co_return;
    if (h->type == p::frame_type::data) {
      co_await on_data(h->length);
      continue;
    }
    const auto m = co_await net::read_control(*stream_, *h);
    if (const auto* lo = std::get_if<p::logged_out>(&m)) {
      const std::string text = "relay logged the line out: " + lo->message;
      owner_->login_refused(lo->code, text, false);
      throw call_error(lo->code, text);
    }
    if (const auto* need = std::get_if<p::need_lines>(&m)) {
      owner_->lines_needed(need->count);  // in any state (docs/protocol.md §5)
      continue;
    }
    if (const auto* lost = std::get_if<p::service_lost>(&m)) {
      owner_->services_lost(lost->services, lost->message);
      continue;
    }
    if (const auto* in = std::get_if<p::incoming>(&m)) {
      if (state_ != line_state::vacant || calls_only_) {
        throw p::protocol_violation("INCOMING on a line that is not vacant or places calls");
      }
      ringing_session_ = in->session;
      set_state(line_state::ringing);
      asio::co_spawn(
          owner_->executor(), [self = shared_from_this(), m = *in] { return self->answer(m); },
          asio::detached);
      continue;
    }
    handle(m);
  }
}

void agent_line::handle(const p::message& m) {
  if (const auto* pong = std::get_if<p::pong>(&m)) {
    if (pong->nonce == ping_nonce_) ping_outstanding_ = false;
  } else if (const auto* c = std::get_if<p::connected>(&m)) {
    if (state_ != line_state::calling) throw p::protocol_violation("CONNECTED without a demand");
    current_ = std::make_shared<session_core>();
    current_->line = shared_from_this();
    current_->id = c->session;
    current_->peer = c->target;
    state_ = line_state::paired;
    reply_ = m;
    reply_ready_.set();
  } else if (std::holds_alternative<p::fail>(m) || std::holds_alternative<p::peers>(m)) {
    if (state_ != line_state::calling && state_ != line_state::querying) {
      throw p::protocol_violation("unexpected FAIL or PEERS");
    }
    reply_ = m;
    reply_ready_.set();
  } else if (const auto* t = std::get_if<p::terminate>(&m)) {
    on_terminate(*t);
  } else if (std::holds_alternative<p::eof>(m)) {
    if (state_ == line_state::paired && current_) {
      current_->eof_received = true;
      data_ready_.set();
    }
  } else if (std::holds_alternative<p::released>(m)) {
    if (state_ != line_state::releasing) throw p::protocol_violation("RELEASED without RELEASE");
    current_.reset();
    stream_->set_read_ahead(true);  // the session's last payload may have turned it off
    set_state(line_state::vacant);
  } else {
    throw p::protocol_violation(std::string("unexpected ") + p::frame_name(p::type_of(m)));
  }
}

void agent_line::on_terminate(const p::terminate& t) {
  if (state_ == line_state::releasing) return;  // crossed our own TERMINATE
  if (state_ != line_state::paired && state_ != line_state::ringing) {
    throw p::protocol_violation("TERMINATE outside a session");
  }
  if (current_ && !current_->ended) current_->ended = termination{t.code, t.message};
  state_ = line_state::releasing;
  data_ready_.set();
  // The message lives in the spawned function object for as long as send() runs.
  asio::co_spawn(
      owner_->executor(),
      [self = shared_from_this(), m = p::message(p::release{})] { return self->send(m); },
      asio::detached);
}

awaitable<void> agent_line::on_data(std::uint32_t length) {
  // After a payload large enough to splice the next header is read alone, so that the next
  // payload stays in the socket for splice_payload().
  auto s = current_;
  const bool discard = state_ != line_state::paired || !s || s->ended;  // after our RELEASE
  stream_->set_read_ahead(discard || length <= net::small_payload);  // nothing discarded is spliced
  if (discard) co_return co_await net::skip_payload(*stream_, length);
  if (const auto held = stream_->buffered_bytes();
      length <= net::small_payload && held.size() >= length && s->inbox_empty()) {
    // The whole payload came with its header: hand it over and read on.
    s->inbox.assign(held.begin(), held.begin() + length);
    s->inbox_pos = 0;
    stream_->consume_buffered(length);
    data_ready_.set();
    // The application runs first (often to answer); the wait for the next frame comes after it,
    // unless that frame is here already.
    if (!stream_->read_buffered()) co_await asio::post(owner_->executor(), use_awaitable);
    co_return;
  }
  pending_data_ = length;
  data_ready_.set();
  while (pending_data_ > 0 && !s->ended && state_ != line_state::dead) {
    co_await data_consumed_.wait();
  }
  if (pending_data_ > 0 && state_ != line_state::dead) {
    const std::uint32_t rest = std::exchange(pending_data_, 0);
    co_await net::skip_payload(*stream_, rest);
  }
}

// --- calls ------------------------------------------------------------------------------------

awaitable<p::message> agent_line::await_reply(line_state waiting_state) {
  const auto deadline = clock::now() + owner_->options().call_timeout;
  while (!reply_ && state_ != line_state::dead) {
    if (!co_await reply_ready_.wait_until(deadline) && !reply_) {
      close();
      throw call_error(error_code::no_answer, "no answer from the relay in time");
    }
  }
  if (!reply_) throw call_error(error_code::peer_lost, "line to the relay lost: " + error_);
  auto m = std::move(*reply_);
  reply_.reset();
  if (state_ == waiting_state) set_state(line_state::vacant);
  co_return m;
}

awaitable<session> agent_line::demand(const std::string& peer, const std::string& service) {
  auto self = shared_from_this();
  set_state(line_state::calling);
  if (!co_await send(p::demand{peer, service})) throw call_error(error_code::peer_lost, error_);
  const auto m = co_await await_reply(line_state::calling);
  if (const auto* f = std::get_if<p::fail>(&m)) throw call_error(f->code, f->message);
  current_->service = service;
  owner_->count_session();
  owner_->line_changed();
  co_return session(current_);
}

awaitable<std::vector<p::peer_entry>> agent_line::query_peers() {
  auto self = shared_from_this();
  set_state(line_state::querying);
  if (!co_await send(p::peers_request{})) throw call_error(error_code::peer_lost, error_);
  auto m = co_await await_reply(line_state::querying);
  if (const auto* f = std::get_if<p::fail>(&m)) throw call_error(f->code, f->message);
  co_return std::move(std::get<p::peers>(m).users);
}

awaitable<void> agent_line::send_logout() {
  auto self = shared_from_this();
  co_await send(p::logout{});
}

awaitable<void> agent_line::send_announce(const std::vector<std::string>& services) {
  auto self = shared_from_this();
  p::announce m;
  m.services = services;
  const p::message msg = std::move(m);
  if (!co_await send(msg)) throw call_error(error_code::peer_lost, error_);
}

awaitable<void> agent_line::answer(p::incoming m) {
  auto self = shared_from_this();
  const auto& handler = owner_->incoming();
  struct answer a = answer::reject(error_code::unknown_service, "no services exposed");
  if (handler) {
    try {
      a = co_await handler(incoming_call(m.caller, m.service));
    } catch (const std::exception& e) {
      a = answer::reject(error_code::service_unavailable, e.what());
    }
  }
  if (state_ != line_state::ringing || ringing_session_ != m.session) co_return;  // cancelled
  if (a.code != error_code::ok) {
    spdlog::info("call from {} for '{}' rejected: {}", m.caller, m.service, a.reason);
    set_state(line_state::vacant);
    co_await send(p::reject{m.session, a.code, a.reason});
    co_return;
  }
  current_ = std::make_shared<session_core>();
  current_->line = self;
  current_->id = m.session;
  current_->peer = m.caller;
  current_->service = m.service;
  state_ = line_state::paired;
  owner_->count_session();
  if (!co_await send(p::accept{m.session})) co_return;
  spdlog::info("session {}: accepted call from {} for '{}'", m.session, m.caller, m.service);
  try {
    co_await a.serve(session(current_));
  } catch (const std::exception& e) {
    spdlog::warn("session {}: service handler failed: {}", m.session, e.what());
  }
}

// --- session data -----------------------------------------------------------------------------

awaitable<std::size_t> agent_line::read_payload(session_core& s, asio::mutable_buffer buf) {
  auto self = shared_from_this();
  if (buf.size() == 0) co_return 0;
  for (;;) {
    if (!s.inbox_empty()) co_return s.take_inbox(buf);
    if (!current(s) || state_ == line_state::dead) co_return 0;
    if (pending_data_ > 0) {
      const std::size_t want = std::min<std::size_t>(buf.size(), pending_data_);
      const std::size_t n = co_await stream_->read_some(asio::buffer(buf.data(), want));
      if (n == 0) throw line_gone("relay closed the line");
      pending_data_ -= static_cast<std::uint32_t>(n);
      if (pending_data_ == 0) data_consumed_.set();
      co_return n;
    }
    if (s.eof_received || s.ended) co_return 0;
    co_await data_ready_.wait();
  }
}

awaitable<void> agent_line::write_data(session_core& s, asio::const_buffer buf) {
  auto self = shared_from_this();
  while (buf.size() > 0) {
    const std::size_t n = std::min(buf.size(), max_frame_write);
    auto guard = co_await write_mutex_.lock();
    // Checked under the mutex: no DATA may follow our RELEASE.
    if (!can_send(s)) throw line_gone("session ended");
    const auto h = p::encode_header(p::frame_type::data, static_cast<std::uint32_t>(n));
    const asio::const_buffer parts[] = {asio::buffer(h), asio::buffer(buf.data(), n)};
    co_await stream_->write_all(parts);
    buf += n;
  }
}

awaitable<std::size_t> agent_line::splice_payload(session_core& s, tcp::socket& sink,
                                                  net::splice_pipe& pipe) {
  auto self = shared_from_this();
  for (;;) {
    // What the pipe holds goes to the sink first: it is the session's, even if the line died.
    if (pipe.held() > 0) {
      if (const std::size_t put = pipe.drain(sink.native_handle(), false); put > 0) co_return put;
      co_await sink.async_wait(tcp::socket::wait_write, use_awaitable);
      continue;
    }
    if (!s.inbox_empty()) {
      // A small payload the line's reader took whole (session_core::inbox): sent as it is.
      const auto put = try_send(sink, std::span(s.inbox).subspan(s.inbox_pos));
      if (!put) {
        co_await sink.async_wait(tcp::socket::wait_write, use_awaitable);
        continue;
      }
      s.inbox_pos += *put;
      co_return *put;
    }
    if (!current(s) || state_ == line_state::dead) co_return 0;
    if (pending_data_ > 0 && stream_->read_buffered()) {
      // The payload's first bytes came with its header (the line's read-ahead): sent as they are.
      const auto held = stream_->buffered_bytes();
      const auto put =
          try_send(sink, held.first(std::min<std::size_t>(held.size(), pending_data_)));
      if (!put) {
        co_await sink.async_wait(tcp::socket::wait_write, use_awaitable);
        continue;
      }
      stream_->consume_buffered(*put);
      pending_data_ -= static_cast<std::uint32_t>(*put);
      if (pending_data_ == 0) data_consumed_.set();
      co_return *put;
    }
    if (pending_data_ > 0) {
      const auto got = pipe.fill(stream_->socket().native_handle(), pending_data_);
      if (!got) {
        co_await stream_->socket().async_wait(tcp::socket::wait_read, use_awaitable);
        continue;
      }
      if (*got == 0) throw line_gone("relay closed the line");
      pending_data_ -= static_cast<std::uint32_t>(*got);
      if (pending_data_ == 0) data_consumed_.set();
      continue;
    }
    if (s.eof_received || s.ended) co_return 0;
    co_await data_ready_.wait();
  }
}

awaitable<std::size_t> agent_line::splice_data(session_core& s, tcp::socket& source,
                                               net::splice_pipe& pipe) {
  auto self = shared_from_this();
  // The pipe is empty between calls: each call sends what it took in as one DATA frame.
  std::optional<std::size_t> got;
  for (;;) {
    got = pipe.fill(source.native_handle(), max_frame_write);
    if (got) break;
    if (!can_send(s)) throw line_gone("session ended");
    co_await source.async_wait(tcp::socket::wait_read, use_awaitable);
  }
  if (*got == 0) co_return 0;
  auto guard = co_await write_mutex_.lock();
  // Checked under the mutex: no DATA may follow our RELEASE.
  if (!can_send(s)) throw line_gone("session ended");
  try {
    co_await net::write_data_header(*stream_, static_cast<std::uint32_t>(*got));
    auto& line_socket = stream_->socket();
    while (pipe.held() > 0) {
      if (pipe.drain(line_socket.native_handle(), false) == 0) {
        co_await line_socket.async_wait(tcp::socket::wait_write, use_awaitable);
      }
    }
  } catch (const boost::system::system_error&) {
    close();  // a frame cut short leaves the line's framing broken
    throw line_gone("line to the relay failed while sending");
  }
  co_return *got;
}

awaitable<void> agent_line::send_eof(session_core& s) {
  auto self = shared_from_this();
  auto guard = co_await write_mutex_.lock();
  if (!can_send(s)) co_return;
  s.eof_sent = true;
  co_await net::write_message(*stream_, p::eof{});
}

awaitable<void> agent_line::end_session(session_core& s, error_code code, std::string message) {
  auto self = shared_from_this();
  if (!current(s) || s.ended || state_ != line_state::paired) co_return;
  s.ended = termination{code, message.empty() ? "closed locally" : message};
  state_ = line_state::releasing;
  s.inbox.clear();  // what the application did not read is dropped
  s.inbox_pos = 0;
  data_consumed_.set();  // the reader drops what the application did not read
  data_ready_.set();     // a read_payload waiting on this session returns 0 (ended)
  auto guard = co_await write_mutex_.lock();
  if (state_ == line_state::dead) co_return;
  try {
    co_await net::write_message(*stream_, p::terminate{code, std::move(message)});
    co_await net::write_message(*stream_, p::release{});
  } catch (const boost::system::system_error&) {
    close();
  }
}

}  // namespace switchboard::agent
