#include "relay/server.hpp"

#include <spdlog/spdlog.h>

#include <vector>

#include "net/endpoint.hpp"
#include "relay/line.hpp"

namespace switchboard::relay {

server::server(asio::io_context& io, relay_config cfg, store::user_store& users,
               net::ssl_ctx_ptr tls, ticket_key key)
    : io_(io),
      tls_(std::move(tls)),
      hub_(io.get_executor(), std::move(cfg), users, key),
      acceptor_(io) {}

server::~server() = default;

tcp::endpoint server::listen(const tcp::endpoint& ep) {
  acceptor_.open(ep.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  if (ep.address().is_v6()) acceptor_.set_option(asio::ip::v6_only(false));
  acceptor_.bind(ep);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  return acceptor_.local_endpoint();
}

void server::start() {
  hub_.start_settings_watch();
  asio::co_spawn(io_, accept_loop(), asio::detached);
}

awaitable<void> server::accept_loop() {
  asio::steady_timer backoff(io_);
  while (!stopping_) {
    auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(use_awaitable));
    if (stopping_) co_return;
    if (ec) {
      // Out of descriptors or memory: wait a little instead of spinning on the error.
      spdlog::warn("accept: {}", ec.message());
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(asio::as_tuple(use_awaitable));
      continue;
    }
    try {
      error_code ended;
      const tcp::endpoint from = socket.remote_endpoint(ended);
      if (ended) continue;  // reset before it was accepted: the socket closes here
      std::string key = admission::address_key(from.address());
      if (!hub_.admission().make_room(key)) {
        spdlog::debug("accept: {} has too many connections waiting to log in", key);
        continue;  // closed at once, before any handshake
      }
      std::string remote = net::to_string(from);
      auto stream = tls_ ? net::line_stream(std::move(socket), tls_.get(), true)
                         : net::line_stream(std::move(socket));
      auto l = std::make_shared<line>(hub_, std::move(stream), std::move(remote), std::move(key));
      asio::co_spawn(
          io_, [l] { return l->run(); }, asio::detached);
    } catch (const std::exception& e) {
      spdlog::warn("accept: cannot set up line: {}", e.what());
    }
  }
}

void server::stop() {
  if (stopping_) return;
  stopping_ = true;
  hub_.set_draining();
  hub_.stop_settings_watch();
  error_code ignored;
  acceptor_.close(ignored);
  spdlog::info("stopping: {} lines open, draining sessions for up to {} ms", hub_.line_count(),
               hub_.config().drain_timeout.count());
  const std::vector<line*> lines(hub_.all_lines().begin(), hub_.all_lines().end());
  for (line* l : lines) {
    if (l->state() != line_state::paired && l->state() != line_state::releasing) {
      l->close(protocol::error_code::relay_shutdown, "relay is stopping");
    }
  }
  asio::co_spawn(io_, drain(), asio::detached);
}

awaitable<void> server::drain() {
  asio::steady_timer tick(io_);
  const auto deadline = std::chrono::steady_clock::now() + hub_.config().drain_timeout;
  while (hub_.line_count() > 0 && std::chrono::steady_clock::now() < deadline) {
    tick.expires_after(std::chrono::milliseconds(50));
    co_await tick.async_wait(use_awaitable);
  }
  // Sessions still running: both sides get TERMINATE(RELAY_SHUTDOWN) (docs/protocol.md §9). An
  // agent answers with RELEASE, and a line released while draining closes itself. Each notice is
  // written by its own coroutine (line::notify), so one side that does not read cannot hold up
  // the others.
  for (const auto& l : snapshot_lines()) {
    if (l->state() == line_state::paired) {
      l->notify_terminated(protocol::error_code::relay_shutdown, "relay is stopping");
    }
  }
  const auto grace = std::chrono::steady_clock::now() + kShutdownGrace;
  while (hub_.line_count() > 0 && std::chrono::steady_clock::now() < grace) {
    tick.expires_after(std::chrono::milliseconds(50));
    co_await tick.async_wait(use_awaitable);
  }
  for (const auto& l : snapshot_lines()) {
    l->close(protocol::error_code::relay_shutdown, "relay is stopping");
  }
}

std::vector<std::shared_ptr<line>> server::snapshot_lines() {
  std::vector<std::shared_ptr<line>> lines;
  lines.reserve(hub_.line_count());
  for (line* l : hub_.all_lines()) lines.push_back(l->shared_from_this());
  return lines;
}

}  // namespace switchboard::relay
