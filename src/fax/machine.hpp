// The software fax machine on top of the agent library: answers calls for the service "fax"
// into the inbox, and works the outgoing queue. What `switchboard-fax daemon` runs.
//
// Both run on the agent's executor (one thread): spandsp state is never shared across threads.
// Document rendering for the inbox (PDF, PNG) runs on a worker pool, not on the I/O thread.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "agent/agent.hpp"
#include "fax/queue.hpp"
#include "net/event.hpp"

namespace switchboard::fax {

inline constexpr const char* fax_service = "fax";

struct machine_options {
  std::filesystem::path spool;        // queue.db, docq/, inbox/, tmp/, log/
  std::string ident = "switchboard";  // T.30 station identity (TSI/CSI), up to 20 characters
  bool ecm = true;
  int t38_version = 0;
  std::chrono::milliseconds call_timeout = std::chrono::minutes(30);
};

// The incoming handler: "fax" calls are received into SPOOL/inbox; other services are rejected.
agent::incoming_handler fax_receiver(machine_options opts, asio::thread_pool& render_pool);

// Works the queue: one job at a time, each try a call to the receiver's "fax" service.
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
