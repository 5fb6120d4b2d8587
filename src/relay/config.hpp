// Relay settings with their defaults (docs/protocol.md §9, docs/configuration.md).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace switchboard::relay {

using std::chrono::milliseconds;

struct relay_config {
  std::string log_level = "info";  // for the program's log (the hub does not read it)
  std::string listen = "0.0.0.0:7443";
  std::filesystem::path data_dir = "./switchboard-data";
  bool plaintext = false;           // TLS off: only when asked for explicitly
  std::filesystem::path cert_file;  // empty: self-signed in data_dir
  std::filesystem::path key_file;

  milliseconds login_timeout{10'000};
  milliseconds max_keepalive{25'000};  // most a line's keep-alive interval may be
  milliseconds min_keepalive{1'000};
  milliseconds demand_timeout{30'000};
  // How long a target's line may ring before the demand fails with NO_ANSWER (at most the demand
  // deadline): agents answer in milliseconds, and a ringing line is one nobody else can reach.
  milliseconds ring_timeout{10'000};
  milliseconds release_timeout{10'000};
  milliseconds drain_timeout{30'000};  // SIGTERM: how long sessions may finish
  // How long a login ticket stays valid (docs/protocol.md §6): each LOGIN-OK gives a fresh one.
  std::chrono::seconds ticket_lifetime{86'400};

  double login_failure_burst = 10;       // failed logins allowed per address and per user ID...
  double login_failure_refill_s = 6;     // ...then one more every this many seconds
  std::size_t max_pending_logins = 256;  // password checks queued at once; beyond: FAIL(BUSY)
  // Connections that have not logged in yet (TLS handshake or no LOGIN yet), per source address
  // (IPv6: per /64) and in all. A waiting line holds about 46 KiB during its TLS handshake, so
  // the global cap bounds that memory near 190 MiB; the per-address cap still lets hundreds of
  // devices behind one NAT address log in at once.
  std::size_t max_waiting_per_address = 1024;
  std::size_t max_waiting = 4096;
  unsigned auth_threads = 2;  // Argon2id verifications run here, not on I/O threads
  // Threads that forward paired sessions' DATA (0: the control thread forwards everything).
  // switchboard-relay defaults to auto_forward_threads(); a relay_config made in code to 0.
  unsigned forward_threads = 0;
  // A session moves to a forwarding thread once it has forwarded this many DATA frames on the
  // control thread: short sessions never pay for the move.
  std::uint64_t offload_after_frames = 16;
  // One caller (user ID, all its instances) may hold at most this share of a target's max_lines
  // ringing or paired at once (at least one line): the rest stay for other callers.
  double caller_line_share = 0.75;
  // How often the user store is asked whether users or settings changed (user_store::generation);
  // a change reaches logged-in devices within about this long.
  milliseconds settings_poll{1'000};
};

// One forwarding thread per core, or none on a single core (the control thread would compete).
unsigned auto_forward_threads();
// "auto" or a count from 0 to 256; throws std::runtime_error naming `where` otherwise.
unsigned parse_forward_threads(const std::string& text, const std::string& where);
// One of trace, debug, info, warn, error, critical, off.
bool valid_log_level(const std::string& level);
inline constexpr const char* log_levels = "trace, debug, info, warn, error, critical, off";

}  // namespace switchboard::relay
