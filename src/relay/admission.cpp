#include "relay/admission.hpp"

#include <spdlog/spdlog.h>

#include <functional>

#include "net/offload.hpp"
#include "protocol/names.hpp"
#include "relay/hub.hpp"
#include "relay/line.hpp"

namespace switchboard::relay {

namespace p = protocol;
using p::error_code;

admission::admission(hub& h)
    : hub_(h),
      failures_by_address_(h.config().login_failure_burst, h.config().login_failure_refill_s),
      failures_by_user_(h.config().login_failure_burst, h.config().login_failure_refill_s) {}

void admission::config_changed() {
  const auto& cfg = hub_.config();
  failures_by_address_.set_rates(cfg.login_failure_burst, cfg.login_failure_refill_s);
  failures_by_user_.set_rates(cfg.login_failure_burst, cfg.login_failure_refill_s);
}

std::string admission::address_key(const asio::ip::address& a) {
  if (a.is_v4()) return a.to_string();
  const auto v6 = a.to_v6();
  if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string();
  auto bytes = v6.to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return asio::ip::address_v6(bytes).to_string() + "/64";
}

// --- connections that have not logged in --------------------------------------------------------

std::size_t admission::waiting_from(const std::string& key) const {
  auto it = waiting_by_address_.find(key);
  return it == waiting_by_address_.end() ? 0 : it->second.size();
}

bool admission::make_room(const std::string& key) {
  const auto& cfg = hub_.config();
  const std::size_t mine = waiting_from(key);
  if (mine >= cfg.max_waiting_per_address) {
    ++hub_.counters().refused_connections;
    return false;
  }
  if (waiting_.size() < cfg.max_waiting) return true;
  // Full: the address holding the most gives up its oldest waiting line, if it holds more than
  // this one would; a crowd of addresses each below that share waits out the login deadline.
  const std::map<std::uint32_t, line*>* busiest = nullptr;
  for (const auto& [k, lines] : waiting_by_address_) {
    if (!busiest || lines.size() > busiest->size()) busiest = &lines;
  }
  if (!busiest || busiest->size() <= mine + 1) {
    ++hub_.counters().refused_connections;
    return false;
  }
  line* victim = busiest->begin()->second;
  leave(*victim);
  ++hub_.counters().evicted_waiting;
  victim->close(error_code::busy, "too many connections waiting to log in");
  return true;
}

void admission::arrive(line& l, const std::string& key) {
  waiting_.emplace(&l, waiting_line{key, l.id()});
  waiting_by_address_[key].emplace(l.id(), &l);
}

void admission::leave(const line& l) {
  auto it = waiting_.find(&l);
  if (it == waiting_.end()) return;
  auto by = waiting_by_address_.find(it->second.key);
  by->second.erase(it->second.id);
  if (by->second.empty()) waiting_by_address_.erase(by);
  waiting_.erase(it);
}

// --- credentials --------------------------------------------------------------------------------

awaitable<login_verdict> admission::check(const line& l, const p::login& m,
                                          const std::string& key) {
  if (m.version != p::protocol_version) {
    co_return login_verdict::refused(
        error_code::unsupported_version,
        fmt::format("this relay speaks protocol version {}, the agent {}", p::protocol_version,
                    m.version));
  }
  if (hub_.draining())
    co_return login_verdict::refused(error_code::relay_shutdown, "relay is stopping");
  if (m.auth == p::auth_method::ticket) {
    login_verdict v = co_await check_ticket(l, m);
    co_return v;
  }
  login_verdict v = co_await check_password(l, m, key);
  co_return v;
}

namespace {
// The user's record as the store has it now, and the store generation read before it.
struct store_read {
  std::uint64_t generation = 0;
  std::optional<store::user_record> record;
};

login_verdict refused_ticket(hub_counters& c) {
  ++c.failed_logins;
  ++c.failed_ticket_logins;
  return login_verdict::refused(error_code::bad_credentials,
                                std::string(p::error_text(error_code::bad_credentials)));
}
}  // namespace

awaitable<login_verdict> admission::check_ticket(const line& l, const p::login& m) {
  p::ticket t{};
  std::copy(m.secret.begin(), m.secret.end(), t.begin());  // 40 bytes: the codec checked
  const std::uint64_t now = unix_now();
  if (ticket_expiry(t) <= now || hub_.tickets_revoked(m.user, m.instance, now)) {
    co_return refused_ticket(hub_.counters());
  }
  if (const device* d = hub_.find_device(m.user, m.instance)) {
    if (!ticket_matches(hub_.tickets_key(), t, m.user, m.instance, d->credential)) {
      co_return refused_ticket(hub_.counters());
    }
    ++hub_.counters().ticket_logins;
    co_return login_verdict::accepted(d->settings, std::nullopt, d->credential);
  }
  // An instance this relay does not know (it restarted, or the ticket comes from another node):
  // the user's current record says which credential the ticket must be bound to.
  ++hub_.counters().ticket_store_reads;
  store::user_store& users = hub_.users();
  auto read = [&users, user = m.user] {
    store_read r;
    r.generation = users.generation();  // before the read: a change after it is seen as one
    r.record = users.find_user(user);
    return r;
  };
  const store_read found = co_await net::offload(hub_.store_pool(), std::move(read));
  if (l.closing()) co_return login_verdict::refused(error_code::login_timeout, "the line closed");
  if (!found.record ||
      !ticket_matches(hub_.tickets_key(), t, m.user, m.instance, found.record->credential)) {
    co_return refused_ticket(hub_.counters());
  }
  ++hub_.counters().ticket_logins;
  co_return login_verdict::accepted(found.record->settings, found.generation,
                                    found.record->credential);
}

namespace {
// What the auth pool's password check found, and the store generation it read the settings at.
struct auth_result {
  std::uint64_t generation = 0;
  std::optional<store::user_record> record;
};

std::function<auth_result()> auth_job(store::user_store& users, std::string user, std::string pw) {
  return [&users, user = std::move(user), pw = std::move(pw)] {
    auth_result r;
    r.generation = users.generation();  // before the read: a change after it is seen as one
    // An ID the store refuses is a wrong login like any other.
    if (protocol::valid_user_id(user)) r.record = users.authenticate(user, pw);
    return r;
  };
}
}  // namespace

namespace {
constexpr std::size_t max_known_pairs = 65536;
}  // namespace

void admission::remember_pair(const std::string& pair) {
  if (!known_pairs_.insert(pair).second) return;
  known_order_.push_back(pair);
  if (known_order_.size() > max_known_pairs) {
    known_pairs_.erase(known_order_.front());
    known_order_.pop_front();
  }
}

awaitable<bool> admission::take_turn(const line& l, bool known) {
  if (running_checks_ < std::max(1u, hub_.config().auth_threads)) {
    ++running_checks_;
    co_return true;
  }
  net::event turn(hub_.executor());
  auto& queue = known ? queued_known_ : queued_other_;
  queue.push_back(&turn);
  co_await turn.wait();  // end_turn() counted this check as running before it woke us
  if (!l.closing()) co_return true;
  end_turn();  // nobody waits for the verdict: the turn passes on
  co_return false;
}

void admission::end_turn() {
  --running_checks_;
  auto& queue = !queued_known_.empty() ? queued_known_ : queued_other_;
  if (queue.empty()) return;
  net::event* next = queue.front();
  queue.pop_front();
  ++running_checks_;
  next->set();
}

awaitable<login_verdict> admission::check_password(const line& l, const p::login& m,
                                                   const std::string& key) {
  // Known devices have a queue of their own, so a flood of other checks cannot fill it.
  const std::string pair = pair_key(key, m.user);
  const bool known = known_pairs_.contains(pair);
  const std::size_t most = hub_.config().max_pending_logins;
  if (known ? queued_known_.size() >= most : checks_in_progress() >= most) {
    co_return login_verdict::refused(error_code::busy, "too many logins at once; retry later");
  }
  // Tokens are taken before the check, so that concurrent attempts cannot outrun the buckets.
  if (!failures_by_address_.try_take(key)) {
    co_return login_verdict::refused(error_code::rate_limited,
                                     "too many failed logins from this address; retry later");
  }
  if (!failures_by_user_.try_take(m.user)) {
    failures_by_address_.give_back(key);
    co_return login_verdict::refused(error_code::rate_limited,
                                     "too many failed logins for this user ID; retry later");
  }
  const bool turn = co_await take_turn(l, known);
  if (!turn) {
    failures_by_address_.give_back(key);
    failures_by_user_.give_back(m.user);
    co_return login_verdict::refused(error_code::login_timeout, "the line closed");
  }
  ++hub_.counters().password_checks;
  auth_result found;
  try {
    auto job = auth_job(hub_.users(), m.user, m.secret);
    found = co_await net::offload(hub_.auth_pool(), std::move(job));
  } catch (...) {
    end_turn();
    failures_by_address_.give_back(key);
    failures_by_user_.give_back(m.user);
    throw;
  }
  end_turn();
  if (!found.record) {
    ++hub_.counters().failed_logins;
    co_return login_verdict::refused(error_code::bad_credentials,
                                     std::string(p::error_text(error_code::bad_credentials)));
  }
  failures_by_address_.give_back(key);
  failures_by_user_.give_back(m.user);
  remember_pair(pair);
  ++hub_.counters().password_logins;
  co_return login_verdict::accepted(found.record->settings, found.generation,
                                    found.record->credential);
}

}  // namespace switchboard::relay
