// Login tickets (docs/protocol.md §6): what LOGIN-OK hands an agent instance, and what its later
// lines log in with. A ticket is checked with the ticket key and the user's credential stamp
// alone, so it outlives the relay process that issued it, and relay nodes that share the key and
// the user store accept each other's tickets.
//
//   ticket = u64 expires_at (Unix seconds) || HMAC-SHA256(key, "switchboard-ticket-1" ||
//            str8 user || instance[16] || u64 expires_at || u64 credential)
//
// Pure functions, plus the in-memory list of logged-out instances (control thread only).
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>

#include "protocol/messages.hpp"

namespace switchboard::relay {

using ticket_key = std::array<std::uint8_t, 32>;

// 32 bytes from the system's CSPRNG (a relay made in code without a data directory, tests).
ticket_key random_ticket_key();
// DATA_DIR/ticket.key: read if it exists (it must hold exactly 32 bytes), else made with 32
// random bytes and mode 0600. Relays starting at once on one directory all end up with the
// same key (the file appears whole or not at all). Throws std::runtime_error naming the file.
ticket_key load_or_make_ticket_key(const std::filesystem::path& data_dir);

// Seconds since the Unix epoch (the clock tickets expire by).
std::uint64_t unix_now();

// The ticket of `user`'s `instance` whose password stamp is `credential`
// (store::user_record::credential), valid until `expires_at`.
protocol::ticket make_ticket(const ticket_key& key, std::string_view user,
                             const protocol::instance_id& instance, std::uint64_t expires_at,
                             std::uint64_t credential);
// When `t` expires (its first 8 bytes; not authenticated until ticket_matches said so).
std::uint64_t ticket_expiry(const protocol::ticket& t);
// True if `t`'s MAC is the one make_ticket gives for these fields (constant-time compare).
// Expiry and revocation are the caller's checks.
bool ticket_matches(const ticket_key& key, const protocol::ticket& t, std::string_view user,
                    const protocol::instance_id& instance, std::uint64_t credential);

// Instances that logged out: their tickets are refused until the last one issued has expired.
// Bounded: past `most` entries the oldest is forgotten first (a forgotten instance's tickets
// work again until they expire; so do all of them after a restart, docs/protocol.md §6).
class revoked_instances {
 public:
  explicit revoked_instances(std::size_t most = 65536) : most_(most) {}
  // Refuse `user`'s `instance` until `until` (Unix seconds).
  void revoke(std::string_view user, const protocol::instance_id& instance, std::uint64_t until);
  // True if it was revoked and `now` is before its end. Drops entries that have ended.
  bool revoked(std::string_view user, const protocol::instance_id& instance, std::uint64_t now);
  std::size_t size() const { return until_.size(); }

 private:
  static std::string key_of(std::string_view user, const protocol::instance_id& instance);
  void prune(std::uint64_t now);

  std::size_t most_;
  std::unordered_map<std::string, std::uint64_t> until_;
  // Keys in the order they were revoked (all tickets have one lifetime, so also by end); an
  // entry revoked again stays at its first place and is only dropped once its newest end passed.
  std::deque<std::string> order_;
};

}  // namespace switchboard::relay
