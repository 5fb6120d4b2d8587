// The relay's shared state: logged-in devices, their lines, sessions and counters.
//
// Threading: the hub and every line's state run on one executor (the control thread); nothing here
// locks. Paired sessions may forward on the forwarding threads (relay/offload.hpp), which touch
// only the two lines' streams, liveness and the session's forward paths.
// Ownership: each line is owned by its own coroutine (shared_ptr); the hub keeps raw pointers and
// every line removes itself in its teardown before it can be destroyed. A session is shared by its
// two lines; it holds strong references to them until each side detaches (RELEASE or death).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <unordered_set>
#include <vector>

#include "net/asio.hpp"
#include "net/forward.hpp"
#include "protocol/messages.hpp"
#include "relay/admission.hpp"
#include "relay/config.hpp"
#include "relay/forward_threads.hpp"
#include "relay/tickets.hpp"
#include "store/user_store.hpp"

namespace switchboard::relay {

class line;

// A demand waiting for a line of its target instance to become vacant (docs/protocol.md §5 step 1).
struct waiting_demand {
  std::weak_ptr<line> caller;
  std::uint32_t session = 0;  // the caller's session it waits for; stale once that ended
  std::string caller_user;
};

// One agent instance logged in as a user (docs/protocol.md §7). Demands are routed by (user,
// service): each service of a user is held by at most one of its instances (the newest
// announcement wins).
struct device {
  std::string user;
  protocol::instance_id instance{};
  std::vector<std::string> services;  // sorted; empty: the instance only places calls
  store::user_settings settings;
  std::uint64_t credential = 0;  // user_record::credential its tickets are bound to
  std::vector<line*> lines;      // every logged-in line of this device, oldest first
  // Demands waiting for one of its lines, in arrival order. Entries whose caller left or whose
  // session ended are stale and dropped when met.
  std::deque<waiting_demand> waiting;
  bool need_notice_queued = false;  // a NEED-LINES is due at the control thread's next turn

  bool answers() const { return !services.empty(); }
  bool holds(std::string_view service) const;
  // The allow-list admits `caller` (an empty list admits everyone).
  bool allows(const std::string& caller) const;
};

// How a paired session ended: the first of its ends that the relay saw (docs/configuration.md
// "Logs").
struct session_end {
  std::string by;   // "caller", "target" or "relay"
  std::string how;  // "TERMINATE", "RELEASE", "line closed", ...
  protocol::error_code code = protocol::error_code::ok;
};

struct session {
  std::uint32_t id = 0;
  std::string service;
  std::string caller_user;  // the caller's user ID, kept after the caller detaches
  std::string target_user;  // the target's user ID, kept after the target detaches
  std::chrono::steady_clock::time_point paired_at{};
  std::optional<session_end> ended;  // set once, by the first end (note_end)
  std::shared_ptr<line> caller;      // reset when that side detaches
  std::shared_ptr<line> target;
  bool paired = false;
  bool terminated = false;
  std::unique_ptr<net::forward_path> to_caller;  // made when the target accepts
  std::unique_ptr<net::forward_path> to_target;
  std::uint64_t data_frames = 0;                    // DATA frames forwarded on the control thread
  std::optional<asio::any_io_executor> forward_on;  // its forwarding thread, once it has one

  std::shared_ptr<line> peer_of(const line* l) const { return l == caller.get() ? target : caller; }
  // "caller" or "target": which side `l` is (the line must still be attached).
  const char* side_of(const line* l) const { return l == caller.get() ? "caller" : "target"; }
  // Records how the session ended, unless an earlier end was recorded.
  void note_end(std::string by, std::string how, protocol::error_code code) {
    if (!ended) ended = session_end{std::move(by), std::move(how), code};
  }
  // Payload bytes delivered each way so far (the forward paths' counters; 0 before pairing).
  std::uint64_t bytes_to_target() const { return to_target ? to_target->delivered_bytes() : 0; }
  std::uint64_t bytes_to_caller() const { return to_caller ? to_caller->delivered_bytes() : 0; }
  net::forward_path* path_to(const line* dst) const {
    return dst == caller.get() ? to_caller.get() : to_target.get();
  }
};

struct hub_counters {
  std::uint64_t password_logins = 0;     // successful Argon2id logins
  std::uint64_t ticket_logins = 0;       // successful ticket logins
  std::uint64_t password_checks = 0;     // Argon2id checks started (right or wrong)
  std::uint64_t ticket_store_reads = 0;  // ticket logins of instances not known here (a restart)
  std::uint64_t failed_logins = 0;
  std::uint64_t failed_ticket_logins = 0;   // of failed_logins: with a ticket that did not verify
  std::uint64_t refused_connections = 0;    // closed at accept: too many waiting to log in
  std::uint64_t evicted_waiting = 0;        // waiting lines closed to make room for another address
  std::uint64_t caller_share_refusals = 0;  // demands refused: the caller holds its share
  std::uint64_t ring_timeouts = 0;          // demands that failed because the target did not answer
  std::uint64_t peers_paced = 0;            // PEERS? answers that waited for the line's pacing
  std::uint64_t sessions_paired = 0;
  std::uint64_t sessions_ended = 0;  // paired sessions both of whose lines have left them
  // Payload bytes the ended sessions delivered, each way (live sessions: session::bytes_to_*).
  std::uint64_t ended_bytes_to_targets = 0;
  std::uint64_t ended_bytes_to_callers = 0;
  std::uint64_t demands = 0;
  std::uint64_t offloads = 0;        // stints of paired sessions on forwarding threads
  std::uint64_t offload_frames = 0;  // control frames handled while their line was in a stint
  std::uint64_t demands_waited = 0;  // demands that waited for a line of their target
  std::uint64_t need_lines_sent = 0;
  std::uint64_t services_taken_over = 0;
};

// Where a demand goes: ok with `target` (ring that line now) or with `wait_on` (queue for a line
// of that instance); any other code refuses it.
struct route_result {
  protocol::error_code code = protocol::error_code::ok;
  line* target = nullptr;
  device* wait_on = nullptr;
  std::string text;  // why, when code is not ok
};

// What hub::admit did with a line whose credentials were accepted.
struct admit_result {
  protocol::error_code code = protocol::error_code::ok;
  std::string text;
  device* dev = nullptr;  // ok: the device now holding the line
};

class hub {
 public:
  // `key` signs and checks login tickets (docs/protocol.md §6): relays sharing it and the user
  // store accept each other's tickets.
  hub(asio::any_io_executor ex, relay_config cfg, store::user_store& users,
      ticket_key key = random_ticket_key());
  ~hub();

  const relay_config& config() const { return cfg_; }
  // Reload (SIGHUP): `next` replaces the configuration; the caller kept the settings that need a
  // restart (relay::plan_reload). Control thread only, like every reader of config(): none holds
  // a reference across a suspension. Limits, timeouts and rate-limit figures apply to what
  // happens from now on (a granted keep-alive, a deadline already running stay as they are).
  void reconfigure(relay_config next);
  // The control thread's executor: every line's coroutines run here.
  const asio::any_io_executor& executor() const { return ex_; }
  forward_threads& forwarders() { return forwarders_; }
  std::size_t forward_thread_count() const { return forwarders_.size(); }
  store::user_store& users() { return users_; }
  hub_counters& counters() { return counters_; }
  relay::admission& admission() { return admission_; }
  asio::thread_pool& auth_pool() { return auth_pool_; }
  // One thread for short store reads (a ticket login of an instance not known here): they never
  // wait behind the Argon2id checks on the auth pool.
  asio::thread_pool& store_pool() { return store_pool_; }

  // Tickets (docs/protocol.md §6). A fresh ticket for device `d`, valid for ticket_lifetime.
  protocol::ticket issue_ticket(const device& d) const;
  const ticket_key& tickets_key() const { return ticket_key_; }
  // LOGOUT: `d`'s instance's tickets are refused until the last one issued has expired.
  void revoke_tickets(const device& d);
  bool tickets_revoked(const std::string& user, const protocol::instance_id& instance,
                       std::uint64_t now) {
    return revoked_.revoked(user, instance, now);
  }

  void add_line(line* l) { all_lines_.insert(l); }
  // Also drops every queued deadline once the last line is gone, so an idle relay holds no
  // deadline timer (the settings watch still ticks, see arm_settings_timer).
  void remove_line(line* l);
  std::size_t line_count() const { return all_lines_.size(); }
  const std::unordered_set<line*>& all_lines() const { return all_lines_; }

  device* find_device(const std::string& user, const protocol::instance_id& instance);
  // Places line `l`, whose LOGIN `m` admission found right (`v`), with its device: TOO_MANY_LINES
  // if the user would hold more than max_lines; else the instance's device (made on its first
  // line; an answering instance evicts the user's previous one) holds the line.
  admit_result admit(line& l, const protocol::login& m, const login_verdict& v);
  // The instance's device, made on its first line with the services of that LOGIN, which it
  // takes over from the user's other instances (SERVICE-LOST to them). Later logins of the
  // instance leave its services as they are.
  device& claim_device(const std::string& user, const protocol::instance_id& instance,
                       const store::user_settings& settings, std::uint64_t credential,
                       const std::vector<std::string>& services);
  // ANNOUNCE: `d`'s services from now on; those another instance held are taken over.
  void announce(device& d, std::vector<std::string> services);
  // Lines the user holds over all its instances (max_lines applies to the sum).
  std::size_t lines_of(const std::string& user) const;
  // Removes `l` from its device; the device goes with its last line, and the demands waiting for
  // it fail (TARGET_OFFLINE).
  void detach_from_device(line* l);
  // Removes the device at once (no demand can reach it any more) and closes its lines with
  // LOGGED-OUT(code); their sessions' peers get TERMINATE(PEER_LOGGED_OUT).
  void evict_device(device* d, protocol::error_code code, const std::string& text);

  // Checks a demand in the order of docs/protocol.md §5 step 1 and picks the freshest vacant line
  // that may be rung of the instance holding the service, or that instance to wait for.
  route_result route(const device& caller, const std::string& target_user,
                     const std::string& service);
  // Queues the demand of `caller` (calling, its session made) for a line of `d`, and has
  // NEED-LINES sent to `d` at the control thread's next turn.
  void wait_for_line(device& d, line& caller);
  // `l` is vacant and its VACANT-making frame (LOGIN-OK, RELEASED) is queued: the first live
  // demand waiting for its device, if any, rings it.
  void line_vacant(line& l);
  // Logged-in users `caller` may call, sorted; at most max_peers_listed (truncated flag set).
  protocol::peers peers_for(const device& caller) const;

  std::uint32_t next_session_id() { return ++last_session_; }
  std::uint32_t next_line_id() { return ++last_line_; }

  // Deadlines of all lines share one timer (a line has no timer or watchdog coroutine of its own):
  // calls l->deadline_due(at) at `at` or soon after, if l is still one of this hub's lines (same
  // address and id). A line may have several entries queued; it ignores all but its newest.
  void schedule_deadline(line* l, std::chrono::steady_clock::time_point at);
  std::size_t queued_deadlines() const { return deadlines_.size(); }

  // A line logged in. After a burst of logins has settled, the allocator's free pages (handshake
  // and login buffers freed between the lines' long-lived objects) are returned to the kernel,
  // unless so much is free that the trim would hold the control thread too long.
  void note_login();
  std::uint64_t heap_trims() const { return heap_trims_; }
  std::uint64_t heap_trims_skipped() const { return heap_trims_skipped_; }

  bool draining() const { return draining_; }
  void set_draining() { draining_ = true; }

  // Settings from the store (relay/settings_watch.cpp). Every settings_poll (if any device is
  // logged in) the store's generation is checked on the auth pool; when it moved, the logged-in
  // users' settings are read again and applied (allow-list, max_lines: for demands and lines
  // from then on), and devices whose user is no longer in the store, or whose password changed
  // since they logged in, are evicted with LOGGED-OUT(BAD_CREDENTIALS). Runs until
  // stop_settings_watch().
  void start_settings_watch();
  void stop_settings_watch();
  // A password login read its settings at store generation `g` (before its Argon2 check). If
  // that is not the generation the devices were last brought up to, the login may hold settings
  // older than the last reload: the next poll reloads whatever the generation says.
  void note_settings_read(std::uint64_t g) {
    if (g != settings_generation_) settings_stale_ = true;
  }
  std::uint64_t settings_reloads() const { return settings_reloads_; }

 private:
  asio::any_io_executor ex_;
  relay_config cfg_;
  store::user_store& users_;
  // Declared before anything a line refers to, so it is destroyed (threads joined) after them.
  forward_threads forwarders_;
  asio::thread_pool auth_pool_;
  asio::thread_pool store_pool_{1};
  ticket_key ticket_key_;
  revoked_instances revoked_;
  relay::admission admission_{*this};
  // User ID -> its logged-in instances. A user with no instance has no entry.
  std::map<std::string, std::vector<std::unique_ptr<device>>> devices_;
  // The instance of `user` that holds `service`; any instance that answers if service is empty.
  device* holder(const std::string& user, std::string_view service) const;
  // Takes `services` from the user's instances other than `d` (SERVICE-LOST to each), moving
  // their waiting demands for those services to `d`.
  void take_over(device& d, const std::vector<std::string>& services);
  // Drops stale entries from the front and counts the live ones.
  static std::size_t live_waiting(device& d);
  void send_need_lines(const std::string& user, const protocol::instance_id& instance);
  // The line of `d` a notice (NEED-LINES, SERVICE-LOST) goes to; null if none is open.
  line* notice_line(const device& d) const;
  void fail_waiting(device& d, protocol::error_code code, const std::string& text);
  std::unordered_set<line*> all_lines_;

  using time_point = std::chrono::steady_clock::time_point;
  struct deadline_entry {
    time_point at;
    std::uint32_t line_id;
    line* target;  // not owned; checked against all_lines_ and line_id before use
    bool operator>(const deadline_entry& o) const { return at > o.at; }
  };
  void wait_for_deadline();
  void on_deadline_timer();
  void on_trim_timer();
  void arm_settings_timer();
  awaitable<void> reload_settings();
  void apply_settings(const std::vector<std::string>& users,
                      std::vector<std::optional<store::user_record>> records);
  template <typename Pred>
  void evict_all(const std::string& user, Pred which, const std::string& why);
  // Earliest first. Invariant: deadline_timer_ is waiting for deadlines_.top().at (== timer_at_)
  // whenever the queue is not empty, except during a sweep.
  std::priority_queue<deadline_entry, std::vector<deadline_entry>, std::greater<>> deadlines_;
  asio::steady_timer deadline_timer_;
  time_point timer_at_ = time_point::max();
  bool sweeping_ = false;
  asio::steady_timer trim_timer_;
  bool trim_pending_ = false;
  std::uint64_t logins_since_trim_ = 0;
  std::uint64_t heap_trims_ = 0;
  std::uint64_t heap_trims_skipped_ = 0;  // too much free heap: the trim would stall the thread
  asio::steady_timer settings_timer_;
  bool settings_watch_on_ = false;
  std::uint64_t settings_generation_ = 0;  // the store generation devices were last brought to
  bool settings_stale_ = false;            // a login may have brought older settings since
  std::uint64_t settings_reloads_ = 0;
  // Expires with the hub: timer handlers queued before the hub died must not touch it.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  hub_counters counters_;
  std::uint32_t last_session_ = 0;
  std::uint32_t last_line_ = 0;
  bool draining_ = false;
};

}  // namespace switchboard::relay
