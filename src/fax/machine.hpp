// The software fax machine on top of the agent library: answers calls for the service "fax"
// into the inbox, and works the outgoing queue. What `switchboard-fax daemon` runs.
//
// Both run on the agent's executor (one thread): spandsp state is never shared across threads.
// Document rendering for the inbox (PDF, PNG) runs on a worker pool, not on the I/O thread.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "agent/agent.hpp"
#include "fax/byte_stream.hpp"
#include "fax/queue.hpp"
#include "fax/t38_call.hpp"
#include "net/endpoint.hpp"
#include "net/event.hpp"

namespace switchboard::fax {

inline constexpr const char* fax_service = "fax";

struct machine_options {
  std::filesystem::path spool;        // queue.db, docq/, inbox/, tmp/, log/
  std::string ident = "switchboard";  // T.30 station identity (TSI/CSI), up to 20 characters
  bool ecm = true;
  bool paced = false;  // real-time pacing of IFP packets, for T.38 gateways (t38_call.hpp)
  int t38_version = 0;
  int max_calls = 1;  // incoming calls at once; more are refused as busy
  std::chrono::milliseconds call_timeout = std::chrono::minutes(30);
};

// A job's destination that is not a user ID but a raw T.38/TCP peer outside the relay:
// "t38:HOST:PORT". Returns the address part, or nullopt for a user ID.
std::optional<net::host_port> raw_t38_address(const std::string& to);

// The receiving side of one fax machine, whichever way calls arrive: relayed sessions for the
// service "fax" and raw T.38/TCP connections. Every call is received into SPOOL/inbox. At most
// opts.max_calls calls run at once: a further relayed call is rejected with TARGET_BUSY (the
// sender's queue retries it later); a further raw connection is closed at once.
// Lives as long as the handler or a listen() coroutine holds it; runs on one executor.
class receiver : public std::enable_shared_from_this<receiver> {
 public:
  receiver(machine_options opts, asio::thread_pool& render_pool);

  // For agent::set_incoming(). "fax" calls are received; other services are rejected.
  agent::incoming_handler handler();
  // Accepts raw T.38/TCP connections (TPKT-framed IFP) until the acceptor is closed or the
  // coroutine is cancelled. The sender is named "t38:ADDR:PORT" in the inbox and the log.
  awaitable<void> listen(tcp::acceptor& acceptor);

  int active_calls() const { return active_; }

 private:
  awaitable<void> receive_relayed(agent::session s);
  awaitable<void> receive_raw(tcp::socket socket, std::string sender);
  // Runs the T.38 call into a temporary file; the transport is closed by the caller, then
  // commit() moves a complete fax into the inbox.
  awaitable<fax_result> run_call(byte_stream& stream, const std::filesystem::path& rx);
  awaitable<void> commit(const fax_result& r, const std::string& sender,
                         const std::filesystem::path& rx, std::int64_t started);

  machine_options opts_;
  asio::thread_pool& render_pool_;  // not owned; outlives every call
  int active_ = 0;
};

// The incoming handler of a receiver made for it (no raw listener).
agent::incoming_handler fax_receiver(machine_options opts, asio::thread_pool& render_pool);

// Works the queue: one job at a time, each try a call to the receiver's "fax" service, or a TCP
// connection for a "t38:HOST:PORT" destination.
class queue_worker : public std::enable_shared_from_this<queue_worker> {
 public:
  queue_worker(std::shared_ptr<agent::agent> a, std::shared_ptr<job_queue> q, machine_options opts);

  // Until stop(). Recovers jobs a killed daemon left running before the first take.
  awaitable<void> run();
  void stop();
  // A new job was queued (send wakes the daemon through the queue file; this is for tests).
  void wake() { wake_.set(); }

 private:
  awaitable<void> attempt(job j);
  awaitable<void> attempt_raw(job j, net::host_port to);
  // The T.38 part of one try on an open transport; the caller closes the transport, then calls
  // finish() with what this returned (an empty `refused` unless the job cannot be sent at all).
  awaitable<std::pair<fax_result, std::string>> send_call(const job& j, byte_stream& stream);
  void finish(const job& j, const fax_result& r, const std::string& refused);
  void retry_or_fail(const job& j, const std::string& why, bool retryable);

  std::shared_ptr<agent::agent> agent_;
  std::shared_ptr<job_queue> queue_;
  machine_options opts_;
  net::event wake_;
  bool running_ = true;
};

// Appends one accounting line to SPOOL/log/xferfax.log (HylaFAX's xferfaxlog, tab-separated):
// time, direction (SEND/RECV), job or inbox ID, peer, pages, duration s, bytes, bit rate, coding,
// result.
void account(const std::filesystem::path& spool, const std::string& line);

}  // namespace switchboard::fax
