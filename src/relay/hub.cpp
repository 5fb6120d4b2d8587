#include "relay/hub.hpp"

#include <spdlog/spdlog.h>

#include <malloc.h>

#include <algorithm>

#include "relay/line.hpp"

namespace switchboard::relay {

namespace p = protocol;

hub::hub(asio::any_io_executor ex, relay_config cfg, store::user_store& users, ticket_key key)
    : ex_(std::move(ex)),
      cfg_(std::move(cfg)),
      users_(users),
      forwarders_(cfg_.forward_threads),
      auth_pool_(std::max(1u, cfg_.auth_threads)),
      ticket_key_(key),
      deadline_timer_(ex_),
      trim_timer_(ex_),
      settings_timer_(ex_) {}

hub::~hub() {
  auth_pool_.join();
  store_pool_.join();
}

void hub::remove_line(line* l) {
  all_lines_.erase(l);
  if (!all_lines_.empty()) return;
  // Every queued entry is stale now; without a pending timer the io_context can run out of work.
  deadlines_ = {};
  timer_at_ = time_point::max();
  deadline_timer_.cancel();
  trim_timer_.cancel();
  trim_pending_ = false;
}

// --- deadlines --------------------------------------------------------------------------------

void hub::schedule_deadline(line* l, time_point at) {
  deadlines_.push(deadline_entry{at, l->id(), l});
  if (!sweeping_ && at < timer_at_) {
    timer_at_ = at;
    wait_for_deadline();
  }
}

void hub::wait_for_deadline() {
  // Replaces any earlier wait; that handler then sees operation_aborted and does nothing.
  deadline_timer_.expires_at(timer_at_);
  deadline_timer_.async_wait([this, alive = std::weak_ptr<int>(alive_)](const error_code& ec) {
    if (ec || alive.expired()) return;
    on_deadline_timer();
  });
}

void hub::on_deadline_timer() {
  sweeping_ = true;
  const auto now = std::chrono::steady_clock::now();
  while (!deadlines_.empty() && deadlines_.top().at <= now) {
    const deadline_entry e = deadlines_.top();
    deadlines_.pop();
    // A line that is gone was removed from all_lines_ in its teardown; a new line at the same
    // address has another id.
    if (all_lines_.contains(e.target) && e.target->id() == e.line_id) e.target->deadline_due(e.at);
  }
  sweeping_ = false;
  timer_at_ = deadlines_.empty() ? time_point::max() : deadlines_.top().at;
  if (!deadlines_.empty()) wait_for_deadline();
}

// --- returning freed memory -------------------------------------------------------------------

namespace {
constexpr auto trim_settle = std::chrono::seconds(2);  // no trim while logins keep arriving
constexpr std::uint64_t trim_min_logins = 256;         // a few logins leave little to return
// malloc_trim walks every free chunk of the heap with the arena locked, on the control thread:
// about 1.5 s for the 190 MiB a flood of waiting TLS handshakes leaves. Above this much free heap
// the trim is skipped (the pages stay for the next logins), so it never holds the thread for
// more than a fraction of a second.
constexpr std::size_t trim_max_free = std::size_t{48} << 20;
}  // namespace

void hub::note_login() {
  ++logins_since_trim_;
  // Each login pushes the trim back: it runs once the burst is over.
  trim_pending_ = true;
  trim_timer_.expires_after(trim_settle);
  trim_timer_.async_wait([this, alive = std::weak_ptr<int>(alive_)](const error_code& ec) {
    if (ec || alive.expired()) return;
    on_trim_timer();
  });
}

void hub::on_trim_timer() {
  trim_pending_ = false;
  if (logins_since_trim_ < trim_min_logins) return;
  logins_since_trim_ = 0;
  if (const auto free_bytes = ::mallinfo2().fordblks; free_bytes > trim_max_free) {
    ++heap_trims_skipped_;
    spdlog::debug("heap trim skipped: {} MiB free", free_bytes >> 20);
    return;
  }
  ++heap_trims_;
  ::malloc_trim(0);
}

p::ticket hub::issue_ticket(const device& d) const {
  const auto expires = unix_now() + static_cast<std::uint64_t>(cfg_.ticket_lifetime.count());
  return make_ticket(ticket_key_, d.user, d.instance, expires, d.credential);
}

void hub::revoke_tickets(const device& d) {
  revoked_.revoke(d.user, d.instance,
                  unix_now() + static_cast<std::uint64_t>(cfg_.ticket_lifetime.count()) + 1);
}

device* hub::find_device(const std::string& user, const p::instance_id& instance) {
  auto it = devices_.find(user);
  if (it == devices_.end()) return nullptr;
  for (auto& d : it->second) {
    if (d->instance == instance) return d.get();
  }
  return nullptr;
}

const device* hub::answering(const std::string& user) const {
  auto it = devices_.find(user);
  if (it == devices_.end()) return nullptr;
  for (const auto& d : it->second) {
    if (d->answers) return d.get();
  }
  return nullptr;
}

device& hub::claim_device(const std::string& user, const p::instance_id& instance,
                          const store::user_settings& settings, std::uint64_t credential,
                          bool answers) {
  if (device* d = find_device(user, instance)) {
    d->settings = settings;  // a password or ticket login brings the store's settings
    d->credential = credential;
    return *d;
  }
  if (answers) {
    if (const device* old = answering(user)) {
      spdlog::info("{}: a new answering agent instance replaces the old one", user);
      evict_device(const_cast<device*>(old), p::error_code::duplicate_login,
                   "the same user ID logged in from another agent instance that answers calls");
    }
  }
  auto d = std::make_unique<device>();
  d->user = user;
  d->instance = instance;
  d->answers = answers;
  d->settings = settings;
  d->credential = credential;
  auto& list = devices_[user];
  list.push_back(std::move(d));
  return *list.back();
}

admit_result hub::admit(line& l, const p::login& m, const login_verdict& v) {
  const std::uint16_t max_lines = v.settings.max_lines;
  if (lines_after_login(m.user, m.instance, m.answers) >= max_lines) {
    return {p::error_code::too_many_lines, fmt::format("at most {} lines per user", max_lines)};
  }
  // No suspension since admission's check: what the hub applied from the store so far is known.
  if (v.generation) note_settings_read(*v.generation);
  device& d = claim_device(m.user, m.instance, v.settings, v.credential, m.answers);
  d.lines.push_back(&l);
  admission_.leave(l);
  note_login();
  return {p::error_code::ok, {}, &d};
}

std::size_t hub::lines_of(const std::string& user) const {
  auto it = devices_.find(user);
  std::size_t n = 0;
  if (it != devices_.end()) {
    for (const auto& d : it->second) n += d->lines.size();
  }
  return n;
}

std::size_t hub::lines_after_login(const std::string& user, const p::instance_id& instance,
                                   bool answers) const {
  std::size_t n = lines_of(user);
  if (const device* old = answering(user); answers && old && old->instance != instance) {
    n -= old->lines.size();
  }
  return n;
}

void hub::detach_from_device(line* l) {
  device* d = l->owner();
  if (!d) return;
  std::erase(d->lines, l);
  if (!d->lines.empty()) return;
  // The device goes with its last line; its tickets stay valid (another line, a restart).
  auto it = devices_.find(d->user);
  std::erase_if(it->second, [d](const auto& p) { return p.get() == d; });
  if (it->second.empty()) devices_.erase(it);
}

void hub::evict_device(device* d, p::error_code code, const std::string& text) {
  if (!d) return;
  auto it = devices_.find(d->user);
  if (it == devices_.end()) return;
  auto& list = it->second;
  auto pos = std::find_if(list.begin(), list.end(), [d](const auto& p) { return p.get() == d; });
  if (pos == list.end()) return;
  const std::unique_ptr<device> gone = std::move(*pos);
  list.erase(pos);
  if (list.empty()) devices_.erase(it);
  for (line* l : gone->lines) l->evicted(code, text);
}

bool device::allows(const std::string& caller) const {
  return settings.allow.empty() ||
         std::find(settings.allow.begin(), settings.allow.end(), caller) != settings.allow.end();
}

route_result hub::route(const device& caller, const std::string& target_user) {
  if (target_user == caller.user) return {p::error_code::self_call, nullptr, {}};
  const device* d = answering(target_user);
  if (!d) return {p::error_code::target_offline, nullptr, {}};
  if (!d->allows(caller.user)) return {p::error_code::not_allowed, nullptr, {}};
  // The vacant line that heard from its agent most recently is the least likely to be dead.
  line* best = nullptr;
  std::size_t held = 0;  // the target's lines this caller holds ringing or paired
  for (line* l : d->lines) {
    if (l->closing()) continue;
    if (l->state() == line_state::vacant) {
      if (!best || l->last_rx() > best->last_rx()) best = l;
    } else if ((l->state() == line_state::ringing || l->state() == line_state::paired) &&
               l->called_by() == caller.user) {
      ++held;
    }
  }
  const auto share = std::max<std::size_t>(
      1, static_cast<std::size_t>(cfg_.caller_line_share * d->settings.max_lines));
  if (held >= share) {
    ++counters_.caller_share_refusals;
    return {p::error_code::target_busy, nullptr,
            fmt::format("you already hold {} of {}'s lines, the most one caller may", held,
                        target_user)};
  }
  if (!best) return {p::error_code::target_busy, nullptr, {}};
  return {p::error_code::ok, best, {}};
}

p::peers hub::peers_for(const device& caller) const {
  p::peers out;
  std::size_t bytes = p::peers_fixed_bytes;
  for (const auto& [user, list] : devices_) {  // std::map: already sorted by user ID
    const device* d = answering(user);
    if (user == caller.user || !d || !d->allows(caller.user)) continue;
    if (out.users.size() == p::max_peers_listed ||
        bytes + 1 + user.size() > p::max_control_payload) {
      out.truncated = true;
      break;
    }
    bytes += 1 + user.size();
    out.users.push_back(user);
  }
  return out;
}

}  // namespace switchboard::relay
