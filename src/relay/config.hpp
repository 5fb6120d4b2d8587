// Relay settings with their defaults (docs/protocol.md §9, docs/configuration.md).
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <string>

namespace switchboard::relay {

using std::chrono::milliseconds;

struct relay_config {
  std::string listen = "0.0.0.0:7443";
  std::filesystem::path data_dir = "./switchboard-data";
  bool plaintext = false;           // TLS off: only when asked for explicitly
  std::filesystem::path cert_file;  // empty: self-signed in data_dir
  std::filesystem::path key_file;

  milliseconds login_timeout{10'000};
  milliseconds max_keepalive{25'000};  // most a line's keep-alive interval may be
  milliseconds min_keepalive{1'000};
  milliseconds demand_timeout{30'000};
  milliseconds release_timeout{10'000};
  milliseconds drain_timeout{30'000};  // SIGTERM: how long sessions may finish

  double login_failure_burst = 10;       // failed logins allowed per address and per user ID...
  double login_failure_refill_s = 6;     // ...then one more every this many seconds
  std::size_t max_pending_logins = 256;  // password checks queued at once; beyond: FAIL(BUSY)
  unsigned auth_threads = 2;             // Argon2id verifications run here, not on I/O threads
};

}  // namespace switchboard::relay
