#include "agent/failure.hpp"

namespace switchboard::agent {

using protocol::error_code;

failure_class class_of(error_code code) {
  switch (code) {
    case error_code::bad_credentials:
    case error_code::too_many_lines:
    case error_code::unsupported_version:
    case error_code::duplicate_login:
      return failure_class::login_refused;
    case error_code::rate_limited:
    case error_code::login_timeout:
    case error_code::relay_shutdown:
    case error_code::busy:
      return failure_class::retry_later;
    case error_code::target_offline:
    case error_code::target_busy:
    case error_code::not_allowed:
    case error_code::self_call:
    case error_code::rejected:
    case error_code::no_answer:
    case error_code::unknown_service:
    case error_code::service_unavailable:
      return failure_class::call_failed;
    case error_code::peer_lost:
    case error_code::peer_logged_out:
    case error_code::keepalive_timeout:
      return failure_class::session_failed;
    default:
      return failure_class::other;
  }
}

int exit_status(failure_class c) {
  switch (c) {
    case failure_class::other:
      return 1;
    case failure_class::unreachable:
      return 3;
    case failure_class::tls:
      return 4;
    case failure_class::login_refused:
      return 5;
    case failure_class::retry_later:
      return 6;
    case failure_class::call_failed:
      return 7;
    case failure_class::session_failed:
      return 8;
  }
  return 1;
}

int exit_status(const std::exception_ptr& failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const agent_error& e) {
    return exit_status(e.kind());
  } catch (const std::invalid_argument&) {
    return usage_exit_status;
  } catch (...) {
    return 1;
  }
}

std::string exit_status_table() {
  return "Exit status:\n"
         "  0  success (pipe: the session ended normally)\n"
         "  1  other failure (a protocol error, a local error)\n"
         "  2  usage: bad option, configuration or password source\n"
         "  3  relay unreachable: host name not resolved, connection refused, unreachable,\n"
         "     no answer within the connect timeout\n"
         "  4  TLS: the relay's certificate failed the --fingerprint or --ca check, or TLS on\n"
         "     one side and --plaintext on the other\n"
         "  5  login refused: wrong password or unknown user (BAD_CREDENTIALS), user removed,\n"
         "     TOO_MANY_LINES, UNSUPPORTED_VERSION, DUPLICATE_LOGIN\n"
         "  6  retry later: RATE_LIMITED, BUSY, RELAY_SHUTDOWN\n"
         "  7  call failed: the relay's or the target's code (TARGET_OFFLINE, NOT_ALLOWED,\n"
         "     REJECTED, UNKNOWN_SERVICE, ...)\n"
         "  8  the session or its line ended abnormally (PEER_LOST, ...)\n";
}

std::optional<failure_digest::report> failure_digest::failed(const std::string& cause,
                                                             clock::time_point now) {
  if (failures_++ == 0) first_at_ = now;
  if (cause != cause_ || now - reported_at_ >= report_every) {
    const report r{cause == cause_ ? unreported_ : 0, now - first_at_};
    cause_ = cause;
    unreported_ = 0;
    reported_at_ = now;
    return r;
  }
  ++unreported_;
  return std::nullopt;
}

std::optional<failure_digest::recovery> failure_digest::logged_in(clock::time_point now) {
  if (failures_ == 0) return std::nullopt;
  const recovery r{failures_, now - first_at_};
  *this = failure_digest{};
  return r;
}

}  // namespace switchboard::agent
