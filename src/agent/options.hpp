// Settings of an agent (device side), with their defaults (docs/configuration.md).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "net/tls.hpp"

namespace switchboard::agent {

using std::chrono::milliseconds;

struct agent_options {
  std::string relay_host = "127.0.0.1";
  std::uint16_t relay_port = 7443;
  std::string user;
  std::string password;
  bool plaintext = false;       // must match the relay; never a fallback
  net::client_tls_options tls;  // fingerprint or CA file (TLS only)

  milliseconds keepalive{25'000};        // requested; the relay may grant less
  std::size_t vacant_lines = 2;          // idle lines kept ready to be called and to call
  milliseconds surplus_idle{60'000};     // surplus vacant lines idle this long are closed
  milliseconds connect_timeout{10'000};  // TCP + TLS + LOGIN of one line
  milliseconds call_timeout{45'000};     // local guard on top of the relay's demand deadline
  milliseconds backoff_initial{250};
  milliseconds backoff_max{30'000};
  // One-shot commands (peers, pipe) give up at the first failed attempt to open a line, whatever
  // its cause (a refused line token excepted: that falls back to the password at once); the
  // long-running agent retries with back-off, except after a refused password.
  bool one_shot = false;
};

}  // namespace switchboard::agent
