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
  std::size_t vacant_lines = 2;          // idle lines kept ready to be called (or to call)
  std::size_t max_connecting = 64;       // lines logging in at once (a burst opens this many)
  milliseconds surplus_idle{60'000};     // surplus vacant lines idle this long are closed
  milliseconds connect_timeout{10'000};  // TCP + TLS + LOGIN of one line
  milliseconds call_timeout{45'000};     // local guard on top of the relay's demand deadline
  // A logged-in line that was lost is replaced after a random wait of up to this long.
  milliseconds reconnect_spread{250};
  // A ticket is renewed (one more line, which logs in with it) when half its remaining life has
  // passed, but no sooner than this after it came: a skewed clock cannot make it churn.
  milliseconds ticket_renew_min{60'000};
  milliseconds backoff_initial{250};
  milliseconds backoff_max{30'000};
  // One-shot commands (peers, pipe) give up at the first failed attempt to open a line, whatever
  // its cause (a refused line token excepted: that falls back to the password at once); the
  // long-running agent retries with back-off, except after a refused password.
  bool one_shot = false;
  // An agent whose every service was taken over by another instance of its user (SERVICE-LOST)
  // stops, unless it has more to do (forwards place calls).
  bool stop_without_services = true;
};

}  // namespace switchboard::agent
