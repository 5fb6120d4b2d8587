// The relay's listener: accepts TCP connections and gives each one a line coroutine
// (Beast-style split: server = listener, line = session, hub = shared state).
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include "net/asio.hpp"
#include "net/tls.hpp"
#include "relay/config.hpp"
#include "relay/hub.hpp"

namespace switchboard::relay {

class server {
 public:
  // `tls` null means plaintext (the configuration must have asked for it). `users` must outlive
  // the server. All lines run on `io`'s executor.
  // `key` signs login tickets (hub.hpp).
  server(asio::io_context& io, relay_config cfg, store::user_store& users, net::ssl_ctx_ptr tls,
         ticket_key key = random_ticket_key());
  ~server();

  // Binds and listens. Port 0 picks a free port; the bound endpoint is returned.
  tcp::endpoint listen(const tcp::endpoint& ep);
  void start();
  // Graceful stop (SIGTERM): stop accepting, close idle lines with LOGGED-OUT(RELAY_SHUTDOWN),
  // let sessions finish for up to drain_timeout, then TERMINATE(RELAY_SHUTDOWN) both sides of the
  // rest and close whatever has not released within kShutdownGrace. io.run() returns when all
  // lines are gone.
  void stop();

  hub& state() { return hub_; }
  // Control thread. New TLS handshakes use `tls` (lines already open keep theirs: each line's
  // SSL holds a reference to its context). Ignored by a plaintext server.
  void set_tls(net::ssl_ctx_ptr tls) {
    if (tls_ && tls) tls_ = std::move(tls);
  }
  bool uses_tls() const { return tls_ != nullptr; }

 private:
  awaitable<void> accept_loop();
  awaitable<void> drain();
  // Owning references to every line, so that closing or awaiting one cannot free another.
  std::vector<std::shared_ptr<line>> snapshot_lines();

  static constexpr std::chrono::seconds kShutdownGrace{2};

  asio::io_context& io_;
  net::ssl_ctx_ptr tls_;
  hub hub_;
  tcp::acceptor acceptor_;
  bool stopping_ = false;
};

}  // namespace switchboard::relay
