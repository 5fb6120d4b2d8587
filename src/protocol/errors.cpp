#include "protocol/errors.hpp"

namespace switchboard::protocol {

namespace {
struct entry {
  error_code code;
  std::string_view name;
  std::string_view text;
};

constexpr entry entries[] = {
    {error_code::ok, "OK", "normal end"},
    {error_code::bad_credentials, "BAD_CREDENTIALS", "unknown user or wrong password"},
    {error_code::rate_limited, "RATE_LIMITED", "too many failed logins; retry later"},
    {error_code::too_many_lines, "TOO_MANY_LINES", "the user already holds its maximum of lines"},
    {error_code::unsupported_version, "UNSUPPORTED_VERSION", "protocol version not supported"},
    {error_code::login_timeout, "LOGIN_TIMEOUT", "no login within the login deadline"},
    {error_code::target_offline, "TARGET_OFFLINE", "target unknown or not logged in"},
    {error_code::target_busy, "TARGET_BUSY", "target has no vacant line"},
    {error_code::not_allowed, "NOT_ALLOWED", "the target's allow-list does not name the caller"},
    {error_code::self_call, "SELF_CALL", "a device cannot call itself"},
    {error_code::rejected, "REJECTED", "the target rejected the connection"},
    {error_code::no_answer, "NO_ANSWER", "the target did not answer in time"},
    {error_code::unknown_service, "UNKNOWN_SERVICE", "the target does not expose that service"},
    {error_code::service_unavailable, "SERVICE_UNAVAILABLE",
     "the target's local service refused the connection"},
    {error_code::protocol_error, "PROTOCOL_ERROR", "protocol violation"},
    {error_code::peer_lost, "PEER_LOST", "the peer's line died"},
    {error_code::peer_logged_out, "PEER_LOGGED_OUT", "the peer logged out"},
    {error_code::duplicate_login, "DUPLICATE_LOGIN", "the same user logged in elsewhere"},
    {error_code::relay_shutdown, "RELAY_SHUTDOWN", "the relay is shutting down"},
    {error_code::keepalive_timeout, "KEEPALIVE_TIMEOUT", "no keep-alive within 3 intervals"},
    {error_code::busy, "BUSY", "the relay is at a resource limit"},
};

const entry* find(error_code code) {
  for (const auto& e : entries) {
    if (e.code == code) return &e;
  }
  return nullptr;
}
}  // namespace

std::string_view error_name(error_code code) {
  const entry* e = find(code);
  return e ? e->name : "UNKNOWN";
}

std::string_view error_text(error_code code) {
  const entry* e = find(code);
  return e ? e->text : "unknown error";
}

}  // namespace switchboard::protocol
