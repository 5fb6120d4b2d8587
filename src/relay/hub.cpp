#include "relay/hub.hpp"

#include <spdlog/spdlog.h>

#include <fmt/ranges.h>
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

device* hub::holder(const std::string& user, std::string_view service) const {
  auto it = devices_.find(user);
  if (it == devices_.end()) return nullptr;
  for (const auto& d : it->second) {
    if (service.empty() ? d->answers() : d->holds(service)) return d.get();
  }
  return nullptr;
}

device& hub::claim_device(const std::string& user, const p::instance_id& instance,
                          const store::user_settings& settings, std::uint64_t credential,
                          const std::vector<std::string>& services) {
  if (device* d = find_device(user, instance)) {
    d->settings = settings;  // a password or ticket login brings the store's settings
    d->credential = credential;
    return *d;
  }
  auto d = std::make_unique<device>();
  d->user = user;
  d->instance = instance;
  d->settings = settings;
  d->credential = credential;
  auto& list = devices_[user];
  list.push_back(std::move(d));
  device& made = *list.back();
  announce(made, services);
  return made;
}

void hub::announce(device& d, std::vector<std::string> services) {
  std::sort(services.begin(), services.end());
  take_over(d, services);
  d.services = std::move(services);
  // Demands waiting for a service the instance no longer announces fail now, not after a ring.
  std::deque<waiting_demand> dropped;
  std::erase_if(d.waiting, [&](const waiting_demand& w) {
    auto caller = w.caller.lock();
    if (!caller || caller->waiting_for() != w.session) return true;
    if (d.holds(caller->demanded_service())) return false;
    dropped.push_back(w);
    return true;
  });
  for (const auto& w : dropped) {
    if (auto caller = w.caller.lock(); caller && caller->waiting_for() == w.session) {
      caller->demand_failed(p::error_code::unknown_service,
                            d.user + " no longer announces that service");
    }
  }
}

void hub::take_over(device& d, const std::vector<std::string>& services) {
  auto it = devices_.find(d.user);
  if (it == devices_.end()) return;
  for (const auto& other : it->second) {
    if (other.get() == &d) continue;
    std::vector<std::string> lost;
    for (const auto& service : services) {
      auto pos = std::find(other->services.begin(), other->services.end(), service);
      if (pos == other->services.end()) continue;
      other->services.erase(pos);
      lost.push_back(service);
      ++counters_.services_taken_over;
      spdlog::info("{}: service '{}' taken over by a newer instance", d.user, service);
      // Demands waiting for the old holder's lines for this service wait for the new one's.
      std::erase_if(other->waiting, [&](const waiting_demand& w) {
        auto caller = w.caller.lock();
        if (!caller || caller->waiting_for() != w.session) return true;
        if (caller->demanded_service() != service) return false;
        d.waiting.push_back(w);
        return true;
      });
    }
    if (lost.empty()) continue;
    // Told in one frame (any state: §5). The text stays within the 1 KiB a message may have.
    if (line* best = notice_line(*other)) {
      std::string why =
          fmt::format("another instance of {} announced {} of its services", d.user, lost.size());
      best->notify(p::service_lost{std::move(lost), std::move(why)});
    }
  }
  if (d.waiting.empty()) return;
  // The moved demands take the new holder's vacant lines, or ask for lines, once the login or
  // ANNOUNCE that took them over is done (the device then holds its new line).
  asio::post(ex_, [this, alive = std::weak_ptr<int>(alive_), user = d.user, instance = d.instance] {
    if (alive.expired()) return;
    device* dd = find_device(user, instance);
    if (!dd) return;
    for (std::size_t i = 0; i < dd->lines.size() && !dd->waiting.empty(); ++i) {
      line_vacant(*dd->lines[i]);
    }
    send_need_lines(user, instance);
  });
}

line* hub::notice_line(const device& d) const {
  // A line that reads what the relay writes: one not paired (a paired line's agent may hold back
  // its reads behind its local service's flow control), else the one that heard from its agent
  // last.
  line* best = nullptr;
  const auto better = [](const line* a, const line* b) {
    const bool a_free = a->state() != line_state::paired;
    const bool b_free = b->state() != line_state::paired;
    if (a_free != b_free) return a_free;
    return a->last_rx() > b->last_rx();
  };
  for (line* l : d.lines) {
    if (!l->closing() && (!best || better(l, best))) best = l;
  }
  return best;
}

admit_result hub::admit(line& l, const p::login& m, const login_verdict& v) {
  const std::uint16_t max_lines = v.settings.max_lines;
  if (lines_of(m.user) >= max_lines) {
    return {p::error_code::too_many_lines, fmt::format("at most {} lines per user", max_lines)};
  }
  // No suspension since admission's check: what the hub applied from the store so far is known.
  if (v.generation) note_settings_read(*v.generation);
  device& d = claim_device(m.user, m.instance, v.settings, v.credential, m.services);
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

void hub::detach_from_device(line* l) {
  device* d = l->owner();
  if (!d) return;
  std::erase(d->lines, l);
  if (!d->lines.empty()) return;
  // The device goes with its last line (its tickets stay valid: another line, a restart), and
  // so do the demands waiting for it.
  fail_waiting(*d, p::error_code::target_offline, "the target's last line closed");
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
  fail_waiting(*gone, p::error_code::target_offline, "the target logged out");
}

void hub::fail_waiting(device& d, p::error_code code, const std::string& text) {
  auto waiting = std::move(d.waiting);
  d.waiting.clear();
  for (const auto& w : waiting) {
    if (auto caller = w.caller.lock(); caller && caller->waiting_for() == w.session) {
      caller->demand_failed(code, text);
    }
  }
}

bool device::holds(std::string_view service) const {
  return std::binary_search(services.begin(), services.end(), service);
}

bool device::allows(const std::string& caller) const {
  return settings.allow.empty() ||
         std::find(settings.allow.begin(), settings.allow.end(), caller) != settings.allow.end();
}

std::size_t hub::live_waiting(device& d) {
  std::erase_if(d.waiting, [](const waiting_demand& w) {
    auto caller = w.caller.lock();
    return !caller || caller->waiting_for() != w.session;
  });
  return d.waiting.size();
}

route_result hub::route(const device& caller, const std::string& target_user,
                        const std::string& service) {
  if (target_user == caller.user) return {p::error_code::self_call, nullptr, nullptr, {}};
  const device* any = holder(target_user, {});
  if (!any) return {p::error_code::target_offline, nullptr, nullptr, {}};
  if (!any->allows(caller.user)) return {p::error_code::not_allowed, nullptr, nullptr, {}};
  device* d = holder(target_user, service);
  if (!d) {
    return {p::error_code::unknown_service, nullptr, nullptr,
            fmt::format("{} announces no service '{}'", target_user, service)};
  }
  const std::size_t waiting = live_waiting(*d);
  // The vacant line that heard from its agent most recently is the least likely to be dead.
  line* best = nullptr;
  std::size_t held = 0;  // the target's lines this caller holds ringing or paired, or waits for
  for (line* l : d->lines) {
    if (l->closing()) continue;
    if (l->state() == line_state::vacant && !l->calls_only()) {
      if (!best || l->last_rx() > best->last_rx()) best = l;
    } else if ((l->state() == line_state::ringing || l->state() == line_state::paired) &&
               l->called_by() == caller.user) {
      ++held;
    }
  }
  for (const auto& w : d->waiting) held += w.caller_user == caller.user;
  const std::size_t max_lines = d->settings.max_lines;
  const auto share =
      std::max<std::size_t>(1, static_cast<std::size_t>(cfg_.caller_line_share * max_lines));
  if (held >= share) {
    ++counters_.caller_share_refusals;
    return {p::error_code::target_busy, nullptr, nullptr,
            fmt::format("you already hold {} of {}'s lines, the most one caller may", held,
                        target_user)};
  }
  if (best && waiting == 0) return {p::error_code::ok, best, nullptr, {}};
  const std::size_t lines = lines_of(target_user);
  if (lines + waiting < max_lines) return {p::error_code::ok, nullptr, d, {}};
  return {p::error_code::target_busy, nullptr, nullptr,
          fmt::format("{} holds {} lines, its max_lines, and none is vacant", target_user, lines)};
}

void hub::wait_for_line(device& d, line& caller) {
  ++counters_.demands_waited;
  d.waiting.push_back({caller.weak_from_this(), caller.waiting_for(), caller.user()});
  // A vacant line the queue has not been offered yet (none, as a rule) takes the first waiter.
  for (std::size_t i = 0; i < d.lines.size() && !d.waiting.empty(); ++i) line_vacant(*d.lines[i]);
  if (live_waiting(d) == 0 || d.need_notice_queued) return;
  d.need_notice_queued = true;
  // One NEED-LINES for all the demands that arrive in this turn of the control thread.
  asio::post(ex_, [this, alive = std::weak_ptr<int>(alive_), user = d.user, instance = d.instance] {
    if (!alive.expired()) send_need_lines(user, instance);
  });
}

void hub::send_need_lines(const std::string& user, const p::instance_id& instance) {
  device* d = find_device(user, instance);
  if (!d) return;
  d->need_notice_queued = false;
  const std::size_t n = live_waiting(*d);
  if (n == 0) return;
  line* best = notice_line(*d);
  if (!best) return;
  ++counters_.need_lines_sent;
  best->notify_need_lines(static_cast<std::uint16_t>(std::min<std::size_t>(n, 0xffff)));
}

void hub::line_vacant(line& l) {
  device* d = l.owner();
  if (!d || l.calls_only() || l.closing() || l.state() != line_state::vacant || draining_) return;
  while (!d->waiting.empty()) {
    const waiting_demand w = std::move(d->waiting.front());
    d->waiting.pop_front();
    auto caller = w.caller.lock();
    if (!caller || caller->waiting_for() != w.session) continue;  // stale
    caller->line_found(l);
    return;
  }
}

p::peers hub::peers_for(const device& caller) const {
  p::peers out;
  std::size_t bytes = p::peers_fixed_bytes;
  for (const auto& [user, list] : devices_) {  // std::map: already sorted by user ID
    if (user == caller.user) continue;
    p::peer_entry e{user, {}};
    for (const auto& d : list)
      e.services.insert(e.services.end(), d->services.begin(), d->services.end());
    if (e.services.empty() || !list.front()->allows(caller.user)) continue;
    std::sort(e.services.begin(), e.services.end());
    if (e.services.size() > 0xff) e.services.resize(0xff);
    const std::size_t size = p::encoded_size(e);
    if (out.users.size() == p::max_peers_listed || bytes + size > p::max_control_payload) {
      out.truncated = true;
      break;
    }
    bytes += size;
    out.users.push_back(std::move(e));
  }
  return out;
}

}  // namespace switchboard::relay
