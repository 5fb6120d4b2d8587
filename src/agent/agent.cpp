#include "agent/agent.hpp"

#include <fmt/chrono.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <fmt/ranges.h>

#include <algorithm>

#include "agent/line.hpp"
#include "protocol/names.hpp"
#include "protocol/printable.hpp"

namespace switchboard::agent {

namespace p = protocol;
using p::error_code;
using clock = std::chrono::steady_clock;

call_error::call_error(error_code code, const std::string& message)
    : agent_error(class_of(code), std::string(p::error_name(code)) + ": " + message), code_(code) {}

namespace {
// The class and text of a failure; anything but agent_error is `other`.
std::pair<failure_class, std::string> describe(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const agent_error& a) {
    return {a.kind(), p::printable(a.what())};
  } catch (const std::exception& x) {
    return {failure_class::other, p::printable(x.what())};
  }
}

std::string seconds_text(clock::duration d) {
  return fmt::format("{:.1f} s", std::chrono::duration<double>(d).count());
}

// The local wall-clock time `from_now` ahead, as HH:MM:SS (as the log's own time stamps).
std::string wall_time_in(clock::duration from_now) {
  const auto at = std::chrono::system_clock::now() +
                  std::chrono::duration_cast<std::chrono::system_clock::duration>(from_now);
  return fmt::format("{:%H:%M:%S}", fmt::localtime(std::chrono::system_clock::to_time_t(at)));
}
}  // namespace

agent::agent(asio::any_io_executor ex, agent_options opts)
    : ex_(std::move(ex)),
      opts_(std::move(opts)),
      pool_changed_(ex_),
      lines_changed_(ex_),
      rng_(std::random_device{}()) {
  if (!opts_.plaintext) tls_ = net::make_client_context(opts_.tls);
  if (RAND_bytes(instance_.data(), static_cast<int>(instance_.size())) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
}

agent::~agent() = default;

void agent::start() {
  if (running_) return;
  running_ = true;
  asio::co_spawn(
      ex_, [self = shared_from_this()] { return self->maintain(); }, asio::detached);
}

void agent::stop() {
  running_ = false;
  for (const auto& l : lines_) l->close();
  // Each line's coroutine owns its line (and the line owns this agent) until it ends; the pool's
  // references are dropped now, so that an io_context stopped before those coroutines finish
  // frees everything when it destroys them, instead of leaving agent <-> line cycles behind.
  lines_.clear();
  pool_changed_.set();
  lines_changed_.notify_all();
}

awaitable<void> agent::logout() {
  auto self = shared_from_this();
  running_ = false;
  for (const auto& l : lines_) {
    if (l->logged_in() && l->state() != line_state::dead) {
      co_await l->send_logout();
      break;
    }
  }
  ticket_.reset();  // the relay revoked it (docs/protocol.md §6)
  pool_changed_.set();
}

agent::login_credentials agent::credentials() const {
  if (ticket_) return {p::auth_method::ticket, std::string(ticket_->begin(), ticket_->end())};
  return {p::auth_method::password, opts_.password};
}

void agent::set_incoming(std::vector<std::string> services, incoming_handler h) {
  std::sort(services.begin(), services.end());
  services.erase(std::unique(services.begin(), services.end()), services.end());
  const bool changed = services != services_;
  services_ = std::move(services);
  incoming_ = std::move(h);
  if (changed && running_ && ticket_) {
    asio::co_spawn(
        ex_, [self = shared_from_this()] { return self->announce_services(); }, asio::detached);
  }
  pool_changed_.set();
}

awaitable<void> agent::announce_services() {
  auto self = shared_from_this();
  try {
    auto l = co_await vacant_line();
    co_await l->send_announce(services_);
    spdlog::info("announced services: {}", fmt::join(services_, ", "));
  } catch (const std::exception& e) {
    spdlog::warn("could not announce services: {}", p::printable(e.what()));
  }
}

void agent::lines_needed(std::uint16_t count) {
  ++stats_.need_lines;
  requested_ = count;
  pool_changed_.set();
}

void agent::services_lost(const std::vector<std::string>& lost, const std::string& message) {
  for (const auto& service : lost) {
    if (std::erase(services_, service) == 0) continue;
    ++stats_.services_lost;
    spdlog::warn(
        "service '{}' is served by another instance of {} now ({}); this agent no longer "
        "serves it",
        service, opts_.user, p::printable(message));
  }
  if (services_.empty() && opts_.stop_without_services && !fatal_) {
    // LOGOUT: the relay ends this instance's sessions (PEER_LOGGED_OUT) and closes its lines.
    asio::co_spawn(
        ex_,
        [self = shared_from_this()]() -> awaitable<void> {
          co_await self->logout();
          self->stop();
        },
        asio::detached);
    give_up(std::make_exception_ptr(call_error(
        error_code::duplicate_login,
        "every service of this agent was taken over by a newer instance of " + opts_.user)));
  }
}

void agent::logged_in(agent_line& l, const p::login_ok& ok, p::auth_method how) {
  ticket_ = ok.ticket;  // the newest: it expires last
  ticket_renew_at_ = renew_time(ok.ticket);
  max_lines_ = ok.max_lines;
  if (!l.calls_only() && requested_ > 0) --requested_;
  failures_ = 0;
  if (const auto back = failure_log_.logged_in(clock::now())) {
    spdlog::info("logged in to the relay at {}:{} again after {} failed attempts over {}",
                 opts_.relay_host, opts_.relay_port, back->failures, seconds_text(back->after));
  }
  if (how == p::auth_method::ticket) {
    ++stats_.ticket_logins;
  } else {
    ++stats_.password_logins;
  }
}

void agent::login_refused(error_code code, const std::string& message, bool used_ticket) {
  if (used_ticket && code == error_code::bad_credentials) {
    ticket_.reset();  // expired or revoked: log in with the password again, at once
    retry_at_once_ = true;
    return;
  }
  // A refused password, or a logged-in line told LOGGED-OUT(BAD_CREDENTIALS) (user removed,
  // password changed), or another instance took over: trying again cannot help, and failed
  // password logins empty the address's rate-limit bucket for the other devices behind it.
  if (code == error_code::bad_credentials) ticket_.reset();
  if (code == error_code::bad_credentials || code == error_code::duplicate_login) {
    give_up(std::make_exception_ptr(call_error(code, message)));
  }
}

void agent::give_up(std::exception_ptr why) {
  if (fatal_) return;
  if (!opts_.one_shot) {
    spdlog::error("giving up on the relay at {}: {}", opts_.relay_host, describe(why).second);
  }
  fatal_ = std::move(why);
  running_ = false;
  pool_changed_.set();
  lines_changed_.notify_all();
}

void agent::attempt_failed(const std::exception_ptr& failure, clock::time_point now) {
  const auto [kind, text] = describe(failure);
  last_failure_ = text;
  if (retry_at_once_) {
    spdlog::debug("the relay refused our ticket: logging in with the password");
    return;
  }
  if (opts_.one_shot) {
    give_up(failure);
    return;
  }
  if (!running_) return;
  const auto retry_in = std::max(next_attempt_ - now, clock::duration::zero());
  if (const auto r = failure_log_.failed(text, now)) {
    std::string repeats;
    if (r->unreported > 0) {
      repeats = fmt::format(" ({} more failures like this in the last {})", r->unreported,
                            seconds_text(failure_digest::report_every));
    }
    spdlog::warn("cannot log in to the relay at {}:{}: {}; next try at {} (in {}){}",
                 opts_.relay_host, opts_.relay_port, text, wall_time_in(retry_in),
                 seconds_text(retry_in), repeats);
  } else {
    spdlog::debug("cannot log in to the relay at {}:{}: {}; next try in {}", opts_.relay_host,
                  opts_.relay_port, text, seconds_text(retry_in));
  }
}

void agent::line_changed() {
  pool_changed_.set();
  lines_changed_.notify_all();
}

void agent::line_ended(agent_line& l, std::exception_ptr failure) {
  const bool was_logged_in = l.logged_in();
  lines_.remove_if([&](const auto& p) { return p.get() == &l; });
  if (running_) {
    if (!l.retired()) ++stats_.lines_lost;
    const auto now = clock::now();
    if (retry_at_once_) {
      next_attempt_ = now;  // every line of the refused wave ends here, in any order
    } else if (!was_logged_in && next_attempt_ <= now) {
      next_attempt_ = now + next_backoff();
    } else if (was_logged_in && !l.retired() && next_attempt_ <= now) {
      // Spread: after a relay restart its devices do not all come back in the same instant.
      std::uniform_int_distribution<long> spread(0, opts_.reconnect_spread.count());
      next_attempt_ = now + std::chrono::milliseconds(spread(rng_));
    }
    if (!was_logged_in && failure) attempt_failed(failure, now);
  }
  line_changed();
}

std::chrono::milliseconds agent::next_backoff() {
  const unsigned shift = std::min(failures_++, 16u);
  const auto base = std::min(opts_.backoff_initial * (1u << shift), opts_.backoff_max);
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  return std::chrono::milliseconds(
      static_cast<long>(static_cast<double>(base.count()) * jitter(rng_)));
}

agent::kind_count agent::count(bool calls_only) const {
  kind_count c;
  for (const auto& l : lines_) {
    if (l->calls_only() != calls_only) continue;
    c.vacant += l->state() == line_state::vacant;
    c.connecting += l->state() == line_state::connecting;
  }
  return c;
}

clock::time_point agent::renew_time(const p::ticket& t) const {
  std::uint64_t expires = 0;
  for (std::size_t i = 0; i < 8; ++i) expires = (expires << 8) | t[i];  // docs/protocol.md §6
  const auto unix_now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  const auto left = std::chrono::seconds(
      expires > static_cast<std::uint64_t>(unix_now)
          ? std::min<std::uint64_t>(expires - static_cast<std::uint64_t>(unix_now), 1u << 30)
          : 0);
  return clock::now() + std::max<clock::duration>(left / 2, opts_.ticket_renew_min);
}

void agent::open_line(bool calls_only) {
  auto l = std::make_shared<agent_line>(shared_from_this(), calls_only);
  lines_.push_back(l);
  retry_at_once_ = false;  // a new wave: its own failures back off again
  asio::co_spawn(
      ex_, [l] { return l->run(); }, asio::detached);
}

std::size_t agent::ready_target(bool calls_only) const {
  const bool answering = !services_.empty();
  if (calls_only) return (answering ? 0 : opts_.vacant_lines) + waiting_callers_;
  return answering ? opts_.vacant_lines + requested_ : 0;
}

void agent::open_lines() {
  // Without a ticket every line would cost the relay an Argon2id check: one line logs in with
  // the password first, the others once its LOGIN-OK brought the ticket.
  const bool first_login_pending =
      !ticket_ && std::any_of(lines_.begin(), lines_.end(),
                              [](const auto& l) { return l->state() == line_state::connecting; });
  if (first_login_pending) return;
  std::size_t connecting = count(true).connecting + count(false).connecting;
  for (const bool calls_only : {false, true}) {
    const kind_count c = count(calls_only);
    std::size_t have = c.vacant + c.connecting;
    while (running_ && have < ready_target(calls_only) && connecting < opts_.max_connecting &&
           (max_lines_ == 0 || lines_.size() < max_lines_)) {
      open_line(calls_only);
      ++have;
      ++connecting;
      if (!ticket_) return;
    }
  }
}

// Keeps the lines of each kind the pool needs vacant or on their way, closes surplus lines idle
// too long.
awaitable<void> agent::maintain() {
  auto self = shared_from_this();
  while (running_) {
    const auto now = clock::now();
    if (now >= next_attempt_) {
      open_lines();
      // Renewal: one more line logs in with the ticket and brings a fresh one; it is surplus and
      // retires after surplus_idle like any other. Its own LOGIN-OK sets the next renewal.
      // Long-running agents only: a one-shot command ends long before, and must not risk a
      // refusal (TOO_MANY_LINES) that would end it.
      if (running_ && ticket_ && !opts_.one_shot && now >= ticket_renew_at_) {
        ticket_renew_at_ = now + opts_.ticket_renew_min;  // if this line fails, later again
        open_line(services_.empty());
      }
    }
    ++stats_.maintenance_passes;
    const auto retire_next = retire_surplus(now);
    // No polling: every change of a line wakes this loop (line_changed), so it sleeps until the
    // back-off ends, the next surplus line has idled long enough, or at most a second (10 ms at
    // least, so that a time just past cannot make it spin).
    auto wake = now + std::chrono::seconds(1);
    if (next_attempt_ > now) wake = std::min(wake, next_attempt_);
    if (retire_next) wake = std::min(wake, *retire_next);
    co_await pool_changed_.wait_until(std::max(wake, now + std::chrono::milliseconds(10)));
  }
}

std::optional<clock::time_point> agent::retire_surplus(clock::time_point now) {
  std::optional<clock::time_point> next;
  for (const bool calls_only : {false, true}) {
    std::size_t vacant = count(calls_only).vacant;
    const std::size_t keep = ready_target(calls_only);
    for (const auto& l : lines_) {
      if (vacant <= keep) break;
      if (l->calls_only() != calls_only || l->state() != line_state::vacant) continue;
      const auto due = l->vacant_since() + opts_.surplus_idle;
      if (now > due) {
        l->retire();
        --vacant;
      } else if (!next || due < *next) {
        next = due;
      }
    }
  }
  return next;
}

awaitable<void> agent::wait_ready() {
  auto self = shared_from_this();
  const auto deadline = clock::now() + opts_.connect_timeout * 3;
  for (;;) {
    if (fatal_) std::rethrow_exception(fatal_);
    for (const auto& l : lines_) {
      if (l->logged_in() && l->state() != line_state::dead) co_return;
    }
    if (!running_) throw call_error(error_code::busy, "agent is stopped");
    if (!co_await lines_changed_.wait_until(deadline) && clock::now() >= deadline) {
      throw agent_error(failure_class::unreachable,
                        "no line to the relay at " + opts_.relay_host + ":" +
                            std::to_string(opts_.relay_port) + " could be opened" +
                            (last_failure_.empty() ? "" : ": " + last_failure_));
    }
  }
}

awaitable<std::exception_ptr> agent::wait_fatal() {
  auto self = shared_from_this();
  while (!fatal_ && running_) co_await lines_changed_.wait_until(clock::time_point::max());
  co_return fatal_;
}

awaitable<std::shared_ptr<agent_line>> agent::vacant_line() {
  const auto deadline = clock::now() + opts_.connect_timeout;
  // Counted while it waits: the pool opens a line for each waiting call, in parallel.
  struct waiting {
    std::size_t& n;
    explicit waiting(std::size_t& c) : n(++c) {}
    ~waiting() { --n; }
  } counted(waiting_callers_);
  for (;;) {
    if (fatal_) std::rethrow_exception(fatal_);
    for (const auto& l : lines_) {
      if (l->calls_only() && l->state() == line_state::vacant) co_return l;
    }
    if (!running_) throw call_error(error_code::busy, "agent is stopped");
    pool_changed_.set();
    if (!co_await lines_changed_.wait_until(deadline) && clock::now() >= deadline) {
      throw call_error(error_code::busy, "no vacant line to the relay at " + opts_.relay_host +
                                             ":" + std::to_string(opts_.relay_port));
    }
  }
}

awaitable<session> agent::call(std::string peer, std::string service) {
  auto self = shared_from_this();
  if (!p::valid_user_id(peer)) throw std::invalid_argument("invalid user ID '" + peer + "'");
  if (!p::valid_service_name(service)) {
    throw std::invalid_argument("invalid service name '" + service + "'");
  }
  auto l = co_await vacant_line();
  co_return co_await l->demand(peer, service);
}

awaitable<std::vector<p::peer_entry>> agent::peers() {
  auto self = shared_from_this();
  auto l = co_await vacant_line();
  co_return co_await l->query_peers();
}

agent_stats agent::stats() const {
  agent_stats s = stats_;
  s.lines_open = lines_.size();
  s.lines_vacant =
      static_cast<std::size_t>(std::count_if(lines_.begin(), lines_.end(), [](const auto& l) {
        return l->state() == line_state::vacant;
      }));
  return s;
}

}  // namespace switchboard::agent
