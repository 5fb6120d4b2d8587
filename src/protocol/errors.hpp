// The error code space shared by FAIL, REJECT, TERMINATE and LOGGED-OUT (docs/protocol.md §4).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace switchboard::protocol {

enum class error_code : std::uint16_t {
  ok = 0,
  bad_credentials = 1,
  rate_limited = 2,
  too_many_lines = 3,
  unsupported_version = 4,
  login_timeout = 5,
  target_offline = 10,
  target_busy = 11,
  not_allowed = 12,
  self_call = 13,
  rejected = 14,
  no_answer = 15,
  unknown_service = 16,
  service_unavailable = 17,
  protocol_error = 20,
  peer_lost = 21,
  peer_logged_out = 22,
  duplicate_login = 23,
  relay_shutdown = 24,
  keepalive_timeout = 25,
  busy = 26,
};

// Stable upper-case name, e.g. "TARGET_OFFLINE"; "UNKNOWN" for a code this build does not know.
std::string_view error_name(error_code code);
// One sentence for people, e.g. "target unknown or not logged in".
std::string_view error_text(error_code code);

// Thrown by the codec for a frame that violates docs/protocol.md. The relay answers it with
// LOGGED-OUT(PROTOCOL_ERROR) and closes the line.
class protocol_violation : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace switchboard::protocol
