#include "relay/line.hpp"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <array>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "net/framed.hpp"
#include "net/offload.hpp"
#include "protocol/names.hpp"
#include "protocol/sniff.hpp"

namespace switchboard::relay {

namespace p = protocol;
using p::error_code;

const char* state_name(line_state s) {
  switch (s) {
    case line_state::auth:
      return "auth";
    case line_state::vacant:
      return "vacant";
    case line_state::calling:
      return "calling";
    case line_state::ringing:
      return "ringing";
    case line_state::paired:
      return "paired";
    case line_state::releasing:
      return "releasing";
    case line_state::closed:
      return "closed";
  }
  return "?";
}

namespace {

// Errors with which a line ends when the agent closed it or its process went away. A TLS line
// closed without close_notify reads as connection_aborted, like a TLS failure: after login that
// is nearly always the former, before it (handshake) possibly the latter.
bool routine_loss(const boost::system::error_code& ec, bool logged_in) {
  if (ec == asio::error::eof || ec == asio::error::connection_reset) return true;
  return logged_in && (ec == asio::error::connection_aborted || ec == asio::error::broken_pipe);
}

// One info line per paired session, when the last of its two lines has left it.
void log_session_end(hub& h, const session& s) {
  auto& c = h.counters();
  ++c.sessions_ended;
  const auto to_target = s.bytes_to_target();
  const auto to_caller = s.bytes_to_caller();
  c.ended_bytes_to_targets += to_target;
  c.ended_bytes_to_callers += to_caller;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - s.paired_at);
  const session_end e = s.ended.value_or(session_end{"relay", "ended", error_code::ok});
  spdlog::info(
      "session {} ended: {} -> {}:{}, {} bytes to target, {} bytes to caller, {}.{:03} s, by {}: "
      "{} {}",
      s.id, s.caller_user, s.target_user, s.service, to_target, to_caller, ms.count() / 1000,
      ms.count() % 1000, e.by, e.how, p::error_name(e.code));
}

}  // namespace

line::line(hub& h, net::line_stream stream, std::string remote, std::string address_key)
    : hub_(h),
      stream_(std::move(stream)),
      remote_(std::move(remote)),
      address_key_(std::move(address_key)),
      id_(h.next_line_id()),
      accepted_at_(clock::now()) {
  hub_.add_line(this);
  hub_.admission().arrive(*this, address_key_);
}

line::~line() = default;

std::string line::tag() const {
  return fmt::format("{}/line#{}", user_.empty() ? remote_ : user_, id_);
}

void line::set_state(line_state s, clock::time_point deadline) {
  state_ = s;
  // A stint forwards for paired lines only (the reader also ends it after a frame it handled).
  if (s != line_state::paired && offload_ && offload_->running()) offload_->stop();
  state_deadline_ = deadline;
  arm_deadline();
}

// --- lifetime ---------------------------------------------------------------------------------

awaitable<void> line::run() {
  auto self = shared_from_this();
  arm_deadline();  // the login deadline
  try {
    if (co_await transport_matches()) {
      co_await stream_.handshake();
      co_await authenticate();
      if (state_ != line_state::auth && !closing_) co_await serve();
    }
  } catch (const p::protocol_violation& e) {
    spdlog::warn("{}: protocol error: {}", tag(), e.what());
    close(error_code::protocol_error, e.what());
  } catch (const boost::system::system_error& e) {
    if (!closing_) {
      // An agent that closes its line (surplus line retired, program exited) is routine; any
      // other failure is worth an operator's look.
      const auto level = routine_loss(e.code(), state_ != line_state::auth) ? spdlog::level::debug
                                                                            : spdlog::level::info;
      spdlog::log(level, "{}: line lost: {}", tag(), e.code().message());
    }
  } catch (const std::exception& e) {
    spdlog::error("{}: {}", tag(), e.what());
    close(error_code::busy, "internal error");
  }
  co_await teardown();
}

namespace {
// Reads and drops what the client sent that is already here (a few hundred bytes of a LOGIN or
// ClientHello; at most 16 KiB), so that closing the socket sends FIN rather than RST, and the
// client reads the frame written before.
void drop_unread(tcp::socket& socket) {
  std::array<std::uint8_t, 4096> scratch{};
  for (int i = 0; i < 4; ++i) {
    const ssize_t n = ::recv(socket.native_handle(), scratch.data(), scratch.size(), MSG_DONTWAIT);
    if (n <= 0) return;
  }
}
}  // namespace

awaitable<bool> line::transport_matches() {
  // docs/protocol.md §1: the client's first bytes tell a plaintext agent at a TLS relay (a LOGIN
  // frame) and a TLS agent at a plaintext relay (a TLS record); both are answered with
  // LOGGED-OUT(PROTOCOL_ERROR) in plaintext, which the agent shows. Nothing is consumed here.
  auto& socket = stream_.socket();
  auto [ec] = co_await socket.async_wait(tcp::socket::wait_read, asio::as_tuple(use_awaitable));
  if (ec || closing_) co_return true;  // the handshake or the first read reports it
  std::array<std::uint8_t, 2> first{};
  const ssize_t n = ::recv(socket.native_handle(), first.data(), first.size(), MSG_PEEK);
  if (n <= 0) co_return true;
  const std::span<const std::uint8_t> seen(first.data(), static_cast<std::size_t>(n));
  const char* answer = nullptr;
  if (stream_.tls() && p::looks_like_login_frame(seen)) {
    spdlog::info("{}: client spoke plaintext (an agent with --plaintext?); this relay requires TLS",
                 remote_);
    answer = "this relay requires TLS";
  } else if (!stream_.tls() && p::looks_like_tls_record(seen)) {
    spdlog::info("{}: client spoke TLS; this relay runs without TLS (--plaintext)", remote_);
    answer = "this relay runs without TLS (--plaintext)";
  } else {
    co_return true;
  }
  closing_ = true;
  close_code_ = error_code::protocol_error;
  drop_unread(socket);
  // Written on the socket itself, bypassing TLS: the client reads plaintext frames.
  const auto frame = p::encode(p::logged_out{error_code::protocol_error, answer});
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer limit(hub_.executor(), std::chrono::seconds(1));
  co_await (asio::async_write(socket, asio::buffer(frame), asio::as_tuple(use_awaitable)) ||
            limit.async_wait(asio::as_tuple(use_awaitable)));
  drop_unread(socket);
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_send, ignored);
  stream_.close();
  co_return false;
}

void line::close(error_code code, std::string text, error_code peer_code) {
  if (closing_) return;
  closing_ = true;
  close_code_ = code;
  peer_code_ = peer_code;
  if (code != error_code::ok || !text.empty()) {
    // Logout and shutdown close every line of a device or relay: said once elsewhere.
    const bool routine = code == error_code::ok || code == error_code::relay_shutdown;
    spdlog::log(routine ? spdlog::level::debug : spdlog::level::info, "{}: closing: {} ({})", tag(),
                p::error_name(code), text);
  }
  if (offload_ && offload_->running()) {
    // The stint holds the write mutex and the socket: closed on the forwarding thread.
    offload_->close_line(this);
    return;
  }
  if (write_mutex_.locked() || !stream_.is_open() || state_ == line_state::closed) {
    stream_.close();
    return;
  }
  // Best effort: the agent learns why, unless it does not read within a second.
  asio::co_spawn(
      hub_.executor(),
      [self = shared_from_this(),
       m = p::message(p::logged_out{code, std::move(text)})]() -> awaitable<void> {
        using namespace asio::experimental::awaitable_operators;
        asio::steady_timer limit(co_await asio::this_coro::executor, std::chrono::seconds(1));
        try {
          co_await (self->send(m) || limit.async_wait(use_awaitable));
        } catch (const std::exception&) {
        }
        self->stream_.close();
      },
      asio::detached);
}

awaitable<void> line::teardown() {
  auto self = shared_from_this();
  const line_state was = state_;
  const bool notified_close = closing_;
  closing_ = true;
  state_ = line_state::closed;  // queued deadline entries are ignored from now on
  // A reader that ended during a stint (an exception while handling one of its frames): the
  // stint closes the socket, which is still on the forwarding thread.
  bool stream_elsewhere = false;
  if (offload_) {
    stream_elsewhere = offload_->running();
    if (stream_elsewhere) offload_->close_line(this);
    offload_.reset();
  }
  if (!notified_close && !stream_elsewhere) stream_.close();
  hub_.admission().leave(*this);
  hub_.detach_from_device(this);
  device_ = nullptr;
  if (auto s = session_) {
    auto peer = s->peer_of(this);
    if (was == line_state::paired && !s->terminated) {
      if (!notified_close) {
        s->note_end(s->side_of(this), "line lost", error_code::peer_lost);
      } else if (close_code_ == error_code::ok && peer_code_ == error_code::peer_logged_out) {
        s->note_end(s->side_of(this), "logout", error_code::ok);
      } else {
        s->note_end(s->side_of(this), "line closed", close_code_);
      }
    }
    detach_session();
    const error_code code = notified_close ? peer_code_ : error_code::peer_lost;
    if (peer) {
      if (was == line_state::ringing) {
        peer->demand_failed(error_code::target_offline,
                            "the target's line closed before it answered");
      } else if (was == line_state::calling) {
        peer->notify_terminated(code, "the caller's line closed");
      } else if (!s->terminated) {
        s->terminated = true;
        peer->notify_terminated(code, std::string(p::error_text(code)));
      }
    }
  }
  hub_.remove_line(this);
  spdlog::debug("{}: closed", tag());
  co_return;
}

// --- deadlines --------------------------------------------------------------------------------

line::clock::time_point line::next_deadline() const {
  if (state_ == line_state::auth) return accepted_at_ + hub_.config().login_timeout;
  const auto now = clock::now();
  // While forwarding waits for the peer's flow control, silence is judged on the peer's line.
  const auto silence = live_.blocked() ? now + 3 * keepalive_ : live_.heard_at() + 3 * keepalive_;
  return std::min(silence, state_deadline_);
}

void line::arm_deadline() {
  if (closing_ || state_ == line_state::closed) return;
  const auto at = next_deadline();
  if (at >= armed_at_) return;  // an entry at or before `at` is queued; it re-arms when it fires
  armed_at_ = at;
  hub_.schedule_deadline(this, at);
}

void line::deadline_due(clock::time_point at) {
  if (at != armed_at_) return;  // superseded by a newer entry
  armed_at_ = clock::time_point::max();
  if (closing_ || state_ == line_state::closed) return;
  if (clock::now() < next_deadline()) {
    arm_deadline();  // keep-alives arrived meanwhile, or the state changed
    return;
  }
  asio::co_spawn(
      hub_.executor(), [self = shared_from_this()] { return self->on_deadline(); }, asio::detached);
}

awaitable<void> line::on_deadline() {
  const auto now = clock::now();
  if (state_ == line_state::auth) {
    close(error_code::login_timeout, "no LOGIN within the login deadline");
  } else if (!live_.blocked() && now >= live_.heard_at() + 3 * keepalive_) {
    close(error_code::keepalive_timeout, "no keep-alive for 3 intervals");
  } else if (state_ == line_state::calling && now >= state_deadline_) {
    ++hub_.counters().ring_timeouts;
    const auto target = session_->target;
    // Both lines change state before either is written to: a late ACCEPT finds the target
    // releasing while the FAIL waits for the caller's flow control.
    if (target) {
      target->notify_terminated(error_code::no_answer, "the caller gave up");
      demand_failed(error_code::no_answer, "the target did not answer in time");
    } else {
      demand_failed(error_code::no_answer, "no line of the target became free in time");
    }
  } else if (state_ == line_state::releasing && now >= state_deadline_) {
    close(error_code::protocol_error, "did not RELEASE within the release deadline");
  }
  arm_deadline();  // the line lives on (or closed: then a no-op)
  co_return;
}

// --- login ------------------------------------------------------------------------------------

awaitable<void> line::authenticate() {
  auto h = co_await net::read_header(stream_);
  if (!h) co_return;
  if (h->type != p::frame_type::login) {
    throw p::protocol_violation(std::string("expected LOGIN, got ") + p::frame_name(h->type));
  }
  const auto msg = co_await net::read_control(stream_, *h);
  // Closed while the LOGIN was arriving (relay stopping, login deadline): the LOGGED-OUT that
  // close() sends is this line's last word, not an answer to the LOGIN.
  if (closing_) co_return;
  const auto& m = std::get<p::login>(msg);
  live_.heard();
  user_ = m.user;
  const login_verdict v = co_await hub_.admission().check(*this, m, address_key_);
  // Closed during the check (login deadline, relay stopping): not admitted, so it cannot evict
  // the device's current instance either.
  if (closing_) co_return;
  if (v.code != error_code::ok) co_return co_await refuse_login(m, v.code, v.text);
  const admit_result placed = hub_.admit(*this, m, v);
  if (placed.code != error_code::ok) co_return co_await refuse_login(m, placed.code, placed.text);
  device_ = placed.dev;
  calls_only_ = m.calls_only;
  const auto& cfg = hub_.config();
  keepalive_ =
      std::clamp(std::chrono::milliseconds(m.keepalive_ms), cfg.min_keepalive, cfg.max_keepalive);
  set_state(line_state::vacant);
  spdlog::info("{}: logged in from {} ({}, keep-alive {} ms)", tag(), remote_,
               m.auth == p::auth_method::ticket ? "ticket" : "password", keepalive_.count());
  co_await send(p::login_ok{id_, static_cast<std::uint32_t>(keepalive_.count()),
                            device_->settings.max_lines, hub_.issue_ticket(*device_)});
  hub_.line_vacant(*this);
}

awaitable<void> line::refuse_login(const p::login& m, error_code code, std::string text) {
  spdlog::info("{} from {}: login refused: {}", m.user, remote_, p::error_name(code));
  co_await send(p::fail{code, std::move(text)});
  // FAIL said why (docs/protocol.md §5: FAIL, then close): no LOGGED-OUT after it.
  closing_ = true;
  stream_.close();
}

// --- serving a logged-in line -----------------------------------------------------------------

awaitable<void> line::serve() {
  while (!closing_) {
    std::optional<p::frame_header> h;
    if (offload_candidate()) {
      const next_frame next = co_await offload_or_wait();
      if (next.what == next_frame::again) continue;
      if (next.what == next_frame::end) co_return;
      if (next.what == next_frame::frame) h = next.header;
    } else if (state_ != line_state::paired && !stream_.read_buffered()) {
      // An idle line waits here for readiness only: no read_header/read_some frames, no read
      // operation and no buffer are held until the agent sends something. A paired line reads
      // at once: its next frame is often there already, and a readiness wait costs an epoll_ctl
      // (Asio re-arms the descriptor for every wait).
      co_await stream_.socket().async_wait(tcp::socket::wait_read, use_awaitable);
    }
    if (!h) h = co_await net::read_header(stream_);
    if (!h || closing_) co_return;  // after close() nothing more is read or answered
    live_.heard();
    if (h->type == p::frame_type::data) {
      switch (rule_for(state_, p::frame_type::data)) {
        case frame_rule::handle:
          co_await on_data(h->length);
          break;
        case frame_rule::discard:
          co_await skip_data(h->length);
          break;
        case frame_rule::violation:
          throw p::protocol_violation(std::string("DATA in state ") + state_name(state_));
      }
      continue;
    }
    const auto msg = co_await net::read_control(stream_, *h);
    co_await dispatch(msg);
  }
}

awaitable<void> line::dispatch(const p::message& msg) {
  const p::frame_type type = p::type_of(msg);
  const line_state row = closing_ ? line_state::closed : state_;
  switch (rule_for(row, type)) {
    case frame_rule::handle:
      co_await std::visit([this](const auto& m) { return on(m); }, msg);
      break;
    case frame_rule::discard:
      break;
    case frame_rule::violation:
      throw p::protocol_violation(std::string(p::frame_name(type)) +
                                  " is not allowed from an agent in state " + state_name(row));
  }
}

// --- forwarding threads -----------------------------------------------------------------------

bool line::offload_candidate() const {
  return state_ == line_state::paired && session_ && !session_->terminated &&
         hub_.forward_thread_count() > 0;
}

bool line::can_offload_with(const line& peer) const {
  const auto free = [](const line& l) {
    return !l.closing_ && !l.offload_ && !l.pong_queued_ && !l.write_mutex_.locked() &&
           l.stream_.is_open();
  };
  return peer.parked_ && peer.state_ == line_state::paired && free(*this) && free(peer) &&
         session_->data_frames >= hub_.config().offload_after_frames;
}

awaitable<line::next_frame> line::offload_or_wait() {
  auto s = session_;
  if (auto peer = s->peer_of(this); peer && can_offload_with(*peer)) {
    if (!s->forward_on) s->forward_on = hub_.forwarders().next();
    ++hub_.counters().offloads;
    offload::start(s, *this, *peer, *s->forward_on);
    co_return co_await after_offload();
  }
  // Park at this frame boundary so that the peer can start the stint: until the socket is
  // readable, or for one turn of the scheduler if OpenSSL already holds the next bytes
  // (read-ahead: nearly always so for a TLS line in a bulk transfer), where a readiness wait
  // could last forever. A stint started meanwhile takes such bytes along (its pump reads them
  // first).
  parked_ = true;
  boost::system::error_code ec;
  if (stream_.read_buffered()) {
    co_await asio::post(stream_.socket().get_executor(), use_awaitable);
  } else {
    auto [waited] =
        co_await stream_.socket().async_wait(tcp::socket::wait_read, asio::as_tuple(use_awaitable));
    ec = waited;
  }
  parked_ = false;
  if (offload_) co_return co_await after_offload();  // the peer started a stint meanwhile
  if (ec == asio::error::operation_aborted) co_return next_frame{next_frame::again};
  if (ec) throw boost::system::system_error(ec);
  co_return next_frame{next_frame::read_here};
}

awaitable<line::next_frame> line::after_offload() {
  // Control frames the stint's pump read from this line, handled here as always.
  for (;;) {
    std::optional<p::message> msg = co_await offload_->next_message(this);
    if (!msg) break;
    ++hub_.counters().offload_frames;
    co_await dispatch(*msg);
    offload_->resume(this, state_ == line_state::paired && !closing_);
  }
  const offload::outcome out = offload_->outcome_of(this);
  offload_.reset();
  if (out.delivery_failed && session_) {
    if (auto peer = session_->peer_of(this)) peer->close(error_code::peer_lost, "write failed");
  }
  switch (out.what) {
    case offload::result::stopped:
      break;
    case offload::result::end:
      co_return next_frame{next_frame::end};
    case offload::result::failed:
      throw boost::system::system_error(out.error);
    case offload::result::violation:
      throw p::protocol_violation(out.text);
  }
  co_return next_frame{next_frame::again};
}

awaitable<bool> line::send(const p::message& m) {
  auto guard = co_await write_mutex_.lock();
  if (offload_ && offload_->running()) {
    // The socket is on a forwarding thread: the frame is written there.
    const auto stint = offload_;  // the reader may drop its reference meanwhile
    const auto r = co_await stint->write(this, m);
    if (r != offload::write_result::not_here) co_return r == offload::write_result::written;
  }
  if (!stream_.is_open()) co_return false;
  try {
    co_await net::write_message(stream_, m);
    co_return true;
  } catch (const boost::system::system_error&) {
    co_return false;
  }
}

template <typename M>
awaitable<void> line::on(const M&) {
  throw std::logic_error(std::string("no handler for ") + p::frame_name(p::type_of(M{})) +
                         ", which the state table let through");
  co_return;
}

// The reader never waits to answer a PING: the peer's forwarding may hold this line's write mutex
// for as long as this agent's flow control allows, and the other direction must not stall behind
// it. At most one PONG is queued; it carries the newest nonce (an agent has one PING outstanding).
awaitable<void> line::on(const p::ping& m) {
  pong_nonce_ = m.nonce;
  if (!pong_queued_) {
    pong_queued_ = true;
    asio::co_spawn(
        hub_.executor(), [self = shared_from_this()] { return self->send_pong(); }, asio::detached);
  }
  co_return;
}

awaitable<void> line::send_pong() {
  auto guard = co_await write_mutex_.lock();
  if (offload_ && offload_->running()) {
    pong_queued_ = false;
    const p::message pong = p::pong{pong_nonce_};
    const auto stint = offload_;
    if (co_await stint->write(this, pong) != offload::write_result::not_here) co_return;
  }
  pong_queued_ = false;
  if (!stream_.is_open()) co_return;
  try {
    co_await net::write_message(stream_, p::pong{pong_nonce_});
  } catch (const boost::system::system_error&) {
    // the reader sees the failure on its own
  }
}

namespace {
// PEERS? costs the relay a walk over the logged-in users: a line gets peers_burst answers at once,
// then one per peers_interval; a request beyond that waits, and its line's reader with it (TCP
// holds back what the agent sends meanwhile).
constexpr auto peers_interval = std::chrono::milliseconds(250);
constexpr int peers_burst = 4;
}  // namespace

awaitable<void> line::on(const p::peers_request&) {
  const auto now = clock::now();
  peers_due_ = std::max(peers_due_, now) + peers_interval;
  const auto wait = peers_due_ - now - peers_burst * peers_interval;
  if (wait > clock::duration::zero()) {
    ++hub_.counters().peers_paced;
    asio::steady_timer pause(hub_.executor(), wait);
    co_await pause.async_wait(use_awaitable);
    if (closing_) co_return;  // evicted or closed meanwhile: device_ is gone
  }
  co_await send(hub_.peers_for(*device_));
}

awaitable<void> line::on(const p::logout&) {
  spdlog::info("{}: logout", tag());
  hub_.revoke_tickets(*device_);
  hub_.evict_device(device_, error_code::ok, "logged out");
  co_return;
}

awaitable<void> line::on(const p::announce& m) {
  hub_.announce(*device_, m.services);
  co_return;
}

awaitable<void> line::on(const p::demand& m) {
  ++hub_.counters().demands;
  route_result r = hub_.route(*device_, m.target, m.service);
  if (r.code != error_code::ok) {
    spdlog::info("{}: demand {}:{} failed: {}", tag(), m.target, m.service, p::error_name(r.code));
    if (r.text.empty()) r.text = p::error_text(r.code);
    co_await send(p::fail{r.code, std::move(r.text)});
    co_return;
  }
  auto s = std::make_shared<session>();
  s->id = hub_.next_session_id();
  s->service = m.service;
  s->caller_user = user_;
  s->target_user = m.target;
  s->caller = shared_from_this();
  session_ = s;
  const auto& cfg = hub_.config();
  if (r.wait_on) {
    // No vacant line of the target yet: the demand waits, at most the demand deadline.
    set_state(line_state::calling, clock::now() + cfg.demand_timeout);
    spdlog::debug("{}: session {}: demand {}:{} waits for a line", tag(), s->id, m.target,
                  m.service);
    hub_.wait_for_line(*r.wait_on, *this);
    co_return;
  }
  s->target = r.target->shared_from_this();
  // The target's line rings for at most ring_timeout, whatever the demand deadline.
  set_state(line_state::calling, clock::now() + std::min(cfg.demand_timeout, cfg.ring_timeout));
  spdlog::debug("{}: session {}: demand {}:{} on {}", tag(), s->id, m.target, m.service,
                r.target->tag());
  r.target->ring(s, user_);
}

std::uint32_t line::waiting_for() const {
  if (state_ != line_state::calling || closing_ || !session_ || session_->target) return 0;
  return session_->id;
}

std::string_view line::demanded_service() const {
  return session_ ? std::string_view(session_->service) : std::string_view();
}

void line::line_found(line& target) {
  auto s = session_;
  s->target = target.shared_from_this();
  set_state(line_state::calling,
            std::min(state_deadline_, clock::now() + hub_.config().ring_timeout));
  spdlog::debug("{}: session {}: demand {}:{} on {}", tag(), s->id, target.user(), s->service,
                target.tag());
  target.ring(s, user_);
}

void line::ring(std::shared_ptr<session> s, const std::string& caller) {
  session_ = s;
  set_state(line_state::ringing);
  notify(p::incoming{s->id, caller, s->service});
}

namespace {
// A line that reads what the relay writes has at most two notices waiting (INCOMING, then a
// TERMINATE or FAIL); one that stops reading while it keeps calling would pile them up.
constexpr std::uint32_t max_pending_notices = 8;
}  // namespace

void line::notify(p::message m) {
  if (closing_) return;
  if (pending_notices_ >= max_pending_notices) {
    // Its writes are stuck: closing the stream ends every send waiting for it, and frees it.
    close(error_code::busy, "the agent does not read what the relay sends");
    return;
  }
  ++pending_notices_;
  asio::co_spawn(
      hub_.executor(),
      [self = shared_from_this(), m = std::move(m)]() -> awaitable<void> {
        co_await self->send(m);
        --self->pending_notices_;
      },
      asio::detached);
}

void line::notify_need_lines(std::uint16_t count) {
  if (closing_) return;
  need_lines_due_ = count;
  if (need_lines_writing_) return;  // the writer below sends this count next
  need_lines_writing_ = true;
  asio::co_spawn(
      hub_.executor(),
      [self = shared_from_this()]() -> awaitable<void> {
        while (self->need_lines_due_ && !self->closing_) {
          const p::message m = p::need_lines{*self->need_lines_due_};
          self->need_lines_due_.reset();
          if (!co_await self->send(m)) break;
        }
        self->need_lines_writing_ = false;
      },
      asio::detached);
}

awaitable<void> line::on(const p::accept& m) {
  if (!session_ || session_->id != m.session) co_return;  // an answer to an earlier call
  auto s = session_;
  auto caller = s->caller;
  if (!caller || caller->closing_ || caller->state_ != line_state::calling ||
      caller->session_ != s) {
    // The call ended on the caller's side already (its line closed); the target is told so.
    notify_terminated(error_code::peer_lost, "the caller is gone");
    co_return;
  }
  const bool splice = !stream_.tls() && !caller->stream_.tls();
  bool made = false;
  try {
    s->to_caller = std::make_unique<net::forward_path>(splice);
    s->to_target = std::make_unique<net::forward_path>(splice);
    made = true;
  } catch (const boost::system::system_error& e) {
    spdlog::error("session {}: cannot pair: {}", s->id, e.what());
  }
  if (!made) {
    caller->demand_failed(error_code::busy, "relay out of resources");
    notify_terminated(error_code::busy, "relay out of resources");
    co_return;
  }
  s->paired = true;
  s->paired_at = clock::now();
  ++hub_.counters().sessions_paired;
  set_state(line_state::paired);
  caller->set_state(line_state::paired);
  spdlog::info("{}: session {} paired with {} ({})", tag(), s->id, caller->tag(),
               splice ? "splice" : "copy");
  // Awaited: the target's DATA must not overtake it. Meanwhile this line's silence is judged on the
  // caller's line, as while forwarding.
  live_.set_blocked(true);
  co_await caller->send(p::connected{s->id, user_});
  live_.set_blocked(false);
  live_.heard();  // silence is judged afresh after a block, as after forwarding
}

awaitable<void> line::on(const p::reject& m) {
  if (!session_ || session_->id != m.session) co_return;  // an answer to an earlier call
  auto caller = session_->caller;
  detach_session();
  set_state(line_state::vacant);
  hub_.line_vacant(*this);
  // Codes an agent may choose and the caller sees as they are; any other code becomes REJECTED.
  const bool passed = m.code == error_code::unknown_service ||
                      m.code == error_code::service_unavailable ||
                      m.code == error_code::target_busy;
  const error_code code = passed ? m.code : error_code::rejected;
  if (caller) {
    // A named local: GCC 12 destroys a conditional's temporary inside co_await twice.
    std::string reason = m.reason.empty() ? std::string(p::error_text(code)) : m.reason;
    caller->demand_failed(code, std::move(reason));
  }
}

bool line::leave_calling() {
  if (state_ != line_state::calling || closing_) return false;
  detach_session();
  set_state(line_state::vacant);
  return true;
}

bool line::start_releasing() {
  if ((state_ != line_state::paired && state_ != line_state::ringing) || closing_) return false;
  if (session_) session_->terminated = true;
  set_state(line_state::releasing, clock::now() + hub_.config().release_timeout);
  return true;
}

void line::demand_failed(error_code code, std::string text) {
  if (!leave_calling()) return;
  notify(p::fail{code, std::move(text)});
  hub_.line_vacant(*this);  // after the FAIL: notices are written in order
}

void line::notify_terminated(error_code code, std::string text) {
  // Ends a line or agent made were recorded where they happened; what is left is the relay's.
  if (session_ && state_ == line_state::paired) session_->note_end("relay", "TERMINATE", code);
  if (start_releasing()) notify(p::terminate{code, std::move(text)});
}

awaitable<void> line::on(const p::terminate& m) {
  auto s = session_;
  if (state_ == line_state::paired) s->note_end(s->side_of(this), "TERMINATE", m.code);
  set_state(line_state::releasing, clock::now() + hub_.config().release_timeout);
  if (!s->terminated) {
    s->terminated = true;
    if (auto peer = s->peer_of(this)) peer->notify_terminated(m.code, m.message);
  }
  co_return;
}

awaitable<void> line::on(const p::release&) {
  if (session_) {
    spdlog::debug("{}: session {} released", tag(), session_->id);
    if (state_ == line_state::ringing) {
      // Releasing instead of answering declines the call.
      if (auto caller = session_->caller) {
        caller->demand_failed(error_code::rejected, "the target declined");
      }
    } else if (state_ == line_state::paired && !session_->terminated) {
      session_->note_end(session_->side_of(this), "RELEASE", error_code::ok);
      session_->terminated = true;
      if (auto peer = session_->peer_of(this)) {
        peer->notify_terminated(error_code::ok, "the peer ended the session");
      }
    }
  }
  detach_session();
  set_state(line_state::vacant);
  co_await send(p::released{});
  if (hub_.draining()) {
    close(error_code::relay_shutdown, "relay is stopping");
  } else {
    hub_.line_vacant(*this);
  }
}

awaitable<void> line::on(const p::eof&) {
  if (auto peer = session_->peer_of(this)) {
    live_.set_blocked(true);  // as while forwarding: silence is judged on the peer's line
    co_await peer->send(p::eof{});
    live_.set_blocked(false);
    live_.heard();
  }
}

awaitable<void> line::on_data(std::uint32_t length) {
  auto s = session_;
  ++s->data_frames;
  auto peer = s->peer_of(this);
  if (!peer) co_return co_await skip_data(length);
  // No suspension between peer_of() and lock(): a RELEASED for the peer queues behind us.
  auto guard = co_await peer->write_mutex_.lock();
  const bool still_attached = s->peer_of(this) == peer;
  net::line_stream* to = still_attached && peer->stream_.is_open() ? &peer->stream_ : nullptr;
  const bool delivered = co_await s->path_to(peer.get())->forward(stream_, to, length, live_);
  if (to && !delivered) peer->close(error_code::peer_lost, "write failed");
}

awaitable<void> line::skip_data(std::uint32_t length) {
  // Nothing is spliced from here on: reads take up to the read-ahead's size again (forwarding
  // may have turned it off). On the control thread, with no forwarding stint running.
  stream_.set_read_ahead(true);
  co_await net::skip_payload(stream_, length);
}

std::string_view line::called_by() const {
  if (!session_ || session_->target.get() != this) return {};
  return session_->caller_user;
}

void line::detach_session() {
  if (!session_) return;
  stream_.set_read_ahead(true);  // forwarding may have turned it off; control frames come next
  const auto s = std::move(session_);
  if (s->caller.get() == this) s->caller.reset();
  if (s->target.get() == this) s->target.reset();
  // The last side has left: both lines left the paired state before, which ended any stint.
  if (s->paired && !s->caller && !s->target) log_session_end(hub_, *s);
}

void line::evicted(error_code code, std::string text) {
  device_ = nullptr;
  close(code, std::move(text), error_code::peer_logged_out);
}

}  // namespace switchboard::relay
