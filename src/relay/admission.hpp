// Who may become a logged-in line (docs/protocol.md §6 and §9): the one owner of
// - the caps on connections that have not logged in yet: per source address (IPv6: per /64) and
//   in all, with the oldest waiting connection of the busiest address closed to make room;
// - the failed-login buckets (per address and per user ID), a token taken when a password check
//   starts and given back when the password was right, and the cap on password checks at once;
// - the queue of password checks: auth_threads run at a time; of the others, those of a source
//   address and user ID that logged in with a right password before go first, so a spray of
//   guesses from many addresses cannot make known devices wait behind it;
// - the verdict on a LOGIN's credentials: Argon2id on the hub's auth pool for a password; for a
//   ticket an HMAC, plus one read of the user's record on the hub's store pool when the instance
//   is not known here (after a restart), never Argon2id. A ticket never touches the buckets: one
//   that does not verify is not a guessed password, and its check is cheap.
// A line reads its LOGIN, asks check() and sends what it says; the hub then places the line with
// its device (hub::admit: max_lines, duplicate logins).
//
// Threading: control thread only; password checks run on the hub's auth pool, store reads for
// tickets on its store pool.
// Ownership: owned by the hub; it keeps raw pointers to waiting lines, each removed by leave()
// (login or teardown) before the line can be destroyed.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "net/asio.hpp"
#include "net/event.hpp"
#include "protocol/messages.hpp"
#include "relay/rate_limiter.hpp"
#include "store/user_store.hpp"

namespace switchboard::relay {

class hub;
class line;

// What check() found. code ok: the credentials are right (settings to apply, and when they were
// read from the store, the store generation they were read at).
struct login_verdict {
  protocol::error_code code = protocol::error_code::ok;
  std::string text;  // for the FAIL: why, for people
  store::user_settings settings;
  std::optional<std::uint64_t> generation;
  std::uint64_t credential = 0;  // user_record::credential (known device's ticket: the device's)

  static login_verdict refused(protocol::error_code code, std::string why) {
    login_verdict v;
    v.code = code;
    v.text = std::move(why);
    return v;
  }
  static login_verdict accepted(store::user_settings settings,
                                std::optional<std::uint64_t> generation, std::uint64_t credential) {
    login_verdict v;
    v.settings = std::move(settings);
    v.generation = generation;
    v.credential = credential;
    return v;
  }
};

class admission {
 public:
  explicit admission(hub& h);
  // The hub's configuration changed (reload): its failed-login figures apply from now on.
  void config_changed();

  // The key a source address is counted under: the address itself for IPv4 (and IPv4-mapped
  // IPv6), its /64 prefix for IPv6 (one subscriber's usual allocation).
  static std::string address_key(const asio::ip::address& a);

  // A connection from `key` was accepted. False: refuse it (close at once): its address holds
  // max_waiting_per_address connections that have not logged in, or all the room is taken by
  // addresses holding no more than it does. At the global cap, the oldest waiting line of the
  // address holding the most is closed (LOGGED-OUT BUSY) to make room.
  bool make_room(const std::string& key);
  // `l` (from `key`) waits for its login. Call after make_room() said yes.
  void arrive(line& l, const std::string& key);
  // `l` logged in or closed: it no longer waits. Idempotent.
  void leave(const line& l);
  std::size_t waiting() const { return waiting_.size(); }
  std::size_t waiting_from(const std::string& key) const;

  // The verdict on m's credentials, from line `l` at address `key`. A check still queued when
  // `l` closes does not run.
  awaitable<login_verdict> check(const line& l, const protocol::login& m, const std::string& key);
  // Password checks running or queued.
  std::size_t checks_in_progress() const { return running_checks_ + queued_checks(); }

 private:
  awaitable<login_verdict> check_password(const line& l, const protocol::login& m,
                                          const std::string& key);
  awaitable<login_verdict> check_ticket(const line& l, const protocol::login& m);
  // Waits (if auth_threads checks run) for a turn to run a check; false: `l` closed meanwhile.
  awaitable<bool> take_turn(const line& l, bool known);
  // A check ended: its turn passes to the next queued one, known pairs first.
  void end_turn();
  std::size_t queued_checks() const { return queued_known_.size() + queued_other_.size(); }
  static std::string pair_key(const std::string& address, const std::string& user) {
    return address + '\n' + user;
  }
  void remember_pair(const std::string& pair);

  hub& hub_;
  rate_limiter failures_by_address_;
  rate_limiter failures_by_user_;
  std::size_t running_checks_ = 0;
  std::deque<net::event*> queued_known_;  // each wakes its check's coroutine
  std::deque<net::event*> queued_other_;
  // Address and user ID pairs whose password was right lately, oldest first (bounded).
  std::unordered_set<std::string> known_pairs_;
  std::deque<std::string> known_order_;
  struct waiting_line {
    std::string key;
    std::uint32_t id;
  };
  std::unordered_map<const line*, waiting_line> waiting_;
  // Per address key: its waiting lines by line id, so oldest first.
  std::unordered_map<std::string, std::map<std::uint32_t, line*>> waiting_by_address_;
};

}  // namespace switchboard::relay
