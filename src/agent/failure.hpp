// Why an agent could not reach its relay, was refused or was ended, in classes a program can act
// on; the exit statuses of the one-shot commands (docs/configuration.md); and how a long-running
// agent reports repeated failures without flooding its log.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>

#include "protocol/errors.hpp"

namespace switchboard::agent {

enum class failure_class {
  other,           // a protocol error of the relay, a local failure
  unreachable,     // host name not resolved, connection refused, unreachable, timed out
  tls,             // certificate check failed, or TLS on one side and plaintext on the other
  login_refused,   // wrong password or unknown user, user removed, replaced by another instance
  retry_later,     // rate limited, relay busy or stopping
  call_failed,     // the relay or the target refused a call
  session_failed,  // a session or its line ended abnormally
};

// The class of a relay's or a peer's error code (FAIL, LOGGED-OUT, TERMINATE, REJECT).
failure_class class_of(protocol::error_code code);

// Exit status of the one-shot commands for each class; 0 is success and usage_exit_status a
// command line or configuration the program cannot use.
inline constexpr int usage_exit_status = 2;
int exit_status(failure_class c);
// The table of exit statuses, one per line, for --help and docs/configuration.md.
std::string exit_status_table();

// The exit status for what ended a command: the class of an agent_error, usage_exit_status for
// std::invalid_argument (a bad value given by the user), 1 for anything else. Not null.
int exit_status(const std::exception_ptr& failure);

// A failure with its class; call_error (agent.hpp) adds the relay's code.
class agent_error : public std::runtime_error {
 public:
  agent_error(failure_class kind, const std::string& message)
      : std::runtime_error(message), kind_(kind) {}
  failure_class kind() const { return kind_; }

 private:
  failure_class kind_;
};

// Collapses repeated failures of a long-running agent's attempts into few log lines: the first
// failure of a cause is reported, the same cause again only once report_every has passed since
// its last report (with the number of failures in between), and the first login after failures
// is reported with their count. Pure: the caller logs the lines.
class failure_digest {
 public:
  using clock = std::chrono::steady_clock;
  static constexpr std::chrono::seconds report_every{60};

  struct report {
    unsigned unreported;          // failures of this cause since its last report, before this one
    clock::duration since_first;  // since the first failure of the current run of failures
  };
  // A failed attempt with `cause` at `now`: what to report, or nullopt to stay quiet.
  std::optional<report> failed(const std::string& cause, clock::time_point now);
  struct recovery {
    unsigned failures;
    clock::duration after;  // since the first failure
  };
  // A successful login at `now`: nullopt if no attempt failed since the last one.
  std::optional<recovery> logged_in(clock::time_point now);

 private:
  std::string cause_;
  unsigned failures_ = 0;    // since the last login
  unsigned unreported_ = 0;  // failures of cause_ since it was last reported
  clock::time_point first_at_{};
  clock::time_point reported_at_{};
};

}  // namespace switchboard::agent
