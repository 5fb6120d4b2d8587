// The device agent as a library: stays logged in to a relay with a pool of lines, calls peers,
// and answers calls. Everything runs on one executor; the public methods must be called there.
//
//   agent a(io.get_executor(), opts);
//   a.set_incoming({"ssh"}, [](incoming_call c) -> awaitable<answer> { ... });
//   a.start();
//   co_await a.wait_ready();
//   session s = co_await a.call("bob", "ssh");
//
// Lines come in two kinds (docs/protocol.md §7): lines the relay may ring (kept vacant_lines
// ready while the agent answers services, and opened in parallel when the relay says demands wait
// for them, NEED-LINES) and lines the agent places calls on (never rung; vacant_lines kept ready
// by an agent that only calls, else opened for calls as they come). Surplus vacant lines close
// after surplus_idle.
//
// Liveness: each line pings at the keep-alive interval and is replaced when the relay stops
// answering (docs/protocol.md §8); lost lines are reopened with exponential back-off and jitter,
// until the relay refuses the password or logs the device out for good (BAD_CREDENTIALS,
// DUPLICATE_LOGIN); a one-shot agent gives up at its first failed attempt instead. Each failure
// is named (failure.hpp): the first of a cause and then about one a minute are logged.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "agent/failure.hpp"
#include "agent/options.hpp"
#include "agent/session.hpp"
#include "net/event.hpp"
#include "net/tls.hpp"
#include "protocol/messages.hpp"

namespace switchboard::agent {

struct incoming_call {
  incoming_call(std::string c, std::string s) : caller(std::move(c)), service(std::move(s)) {}
  std::string caller;  // authenticated by the relay
  std::string service;
};

// The answer to an incoming call. code == OK accepts, and `serve` then owns the session.
struct answer {
  protocol::error_code code = protocol::error_code::ok;
  std::string reason;
  std::function<awaitable<void>(session)> serve;

  static answer reject(protocol::error_code c, std::string why) { return {c, std::move(why), {}}; }
};

using incoming_handler = std::function<awaitable<answer>(incoming_call)>;

// A demand, login or query the relay refused, with its code and message.
class call_error : public agent_error {
 public:
  call_error(protocol::error_code code, const std::string& message);
  protocol::error_code code() const { return code_; }

 private:
  protocol::error_code code_;
};

struct agent_stats {
  std::uint64_t password_logins = 0;
  std::uint64_t ticket_logins = 0;
  std::uint64_t lines_lost = 0;  // lines that died or were replaced
  std::uint64_t sessions = 0;    // calls placed plus calls accepted
  // Passes of the pool's maintenance loop: one per change of a line, per back-off or surplus
  // deadline, and at most one per second otherwise (an idle agent does not poll).
  std::uint64_t maintenance_passes = 0;
  std::uint64_t need_lines = 0;     // NEED-LINES frames received
  std::uint64_t services_lost = 0;  // services taken over by another instance
  std::size_t lines_open = 0;
  std::size_t lines_vacant = 0;
};

class agent : public std::enable_shared_from_this<agent> {
 public:
  agent(asio::any_io_executor ex, agent_options opts);
  ~agent();

  // The services this instance answers and the handler of their calls; none: it only calls.
  // While running, a changed list is announced to the relay (ANNOUNCE), which routes demands for
  // these services here from then on.
  void set_incoming(std::vector<std::string> services, incoming_handler h);
  const std::vector<std::string>& services() const { return services_; }
  // Opens the pool of lines; they are kept until stop().
  void start();
  // Closes every line (no LOGOUT: the relay sees the lines go). Sessions end with PEER_LOST.
  void stop();
  // LOGOUT on one line: the relay ends every session and closes every line of this device.
  awaitable<void> logout();

  // Until a line is logged in. Throws what ended the agent (fatal()), or agent_error with the last
  // attempt's cause if no line logged in within 3 connect timeouts.
  awaitable<void> wait_ready();
  // Until the agent gives up for good (a refused password, the device logged out by the relay
  // for good, or any failed attempt of a one-shot agent), and returns why; returns null if
  // stop() came first.
  awaitable<std::exception_ptr> wait_fatal();
  // What wait_fatal() returns, now: null while the agent has not given up.
  std::exception_ptr fatal() const { return fatal_; }
  // Calls PEER:SERVICE. Throws call_error with the relay's or the peer's code.
  awaitable<session> call(std::string peer, std::string service);
  // Logged-in devices this user may call, each with the services it answers.
  awaitable<std::vector<protocol::peer_entry>> peers();

  agent_stats stats() const;
  const agent_options& options() const { return opts_; }
  asio::any_io_executor executor() const { return ex_; }

  // --- used by agent_line ---
  struct login_credentials {
    protocol::auth_method auth;
    std::string secret;
  };
  login_credentials credentials() const;
  void logged_in(agent_line& l, const protocol::login_ok& ok, protocol::auth_method how);
  void login_refused(protocol::error_code code, const std::string& message, bool used_ticket);
  void line_changed();  // a line's state changed: the pool may need a new line
  // `failure`: why the line could not log in (null if it did, or was closed on purpose).
  void line_ended(agent_line& l, std::exception_ptr failure);
  void lines_needed(std::uint16_t count);  // NEED-LINES
  void services_lost(const std::vector<std::string>& lost, const std::string& message);
  const protocol::instance_id& instance() const { return instance_; }
  SSL_CTX* tls_context() const { return tls_.get(); }
  const incoming_handler& incoming() const { return incoming_; }
  void count_session() { ++stats_.sessions; }

 private:
  awaitable<void> maintain();
  // Retires vacant lines beyond vacant_lines that have been idle for surplus_idle; returns when
  // the next of the others becomes due, if any.
  std::optional<std::chrono::steady_clock::time_point> retire_surplus(
      std::chrono::steady_clock::time_point now);
  // A vacant line to place a call (or query, or announce) on, opened if need be.
  awaitable<std::shared_ptr<agent_line>> vacant_line();
  std::chrono::milliseconds next_backoff();
  // Opens the lines the pool lacks now.
  void open_lines();
  void open_line(bool calls_only);
  struct kind_count {
    std::size_t vacant = 0;
    std::size_t connecting = 0;
  };
  kind_count count(bool calls_only) const;
  // How many vacant (or connecting) lines of a kind the pool keeps.
  std::size_t ready_target(bool calls_only) const;
  awaitable<void> announce_services();
  // When half of the ticket's remaining life (by its expires_at and our clock) will have passed.
  std::chrono::steady_clock::time_point renew_time(const protocol::ticket& t) const;
  void attempt_failed(const std::exception_ptr& failure, std::chrono::steady_clock::time_point now);
  void give_up(std::exception_ptr why);

  asio::any_io_executor ex_;
  agent_options opts_;
  net::ssl_ctx_ptr tls_;
  protocol::instance_id instance_{};
  // The newest ticket a LOGIN-OK brought (docs/protocol.md §6); kept when lines are lost (it
  // outlives a relay restart), dropped when the relay refuses it and at logout.
  std::optional<protocol::ticket> ticket_;
  // When to open one more line only to renew ticket_ (so an idle device's never expires).
  std::chrono::steady_clock::time_point ticket_renew_at_{};
  incoming_handler incoming_;
  std::vector<std::string> services_;  // sorted
  std::uint16_t max_lines_ = 0;        // from LOGIN-OK; 0 until the first login
  std::size_t requested_ = 0;          // lines the relay asked for (NEED-LINES) not opened yet
  std::size_t waiting_callers_ = 0;    // calls waiting in vacant_line()
  std::list<std::shared_ptr<agent_line>> lines_;
  net::event pool_changed_;       // wakes maintain()
  net::broadcast lines_changed_;  // wakes everyone waiting for a usable line
  bool running_ = false;
  std::exception_ptr fatal_;  // why the agent gave up; set once
  std::string last_failure_;  // the last failed attempt's cause, for wait_ready
  failure_digest failure_log_;
  unsigned failures_ = 0;  // consecutive failed attempt waves; reset by a successful login
  // When the next line may be opened. One failed wave of lines moves it once, however many
  // lines of the wave fail.
  std::chrono::steady_clock::time_point next_attempt_{};
  // Set when the relay refused our ticket (expired, password changed), until the next line
  // is opened: that line logs in with the password at once instead of after a back-off, however
  // the endings of the refused wave's lines interleave with the refusals.
  bool retry_at_once_ = false;
  std::minstd_rand rng_;
  agent_stats stats_;
};

}  // namespace switchboard::agent
