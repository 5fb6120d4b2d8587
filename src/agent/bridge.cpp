#include "agent/bridge.hpp"

#include "net/recycled.hpp"
#include "net/splice_pipe.hpp"
#include "protocol/printable.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <memory>
#include <optional>
#include <vector>

namespace switchboard::agent {

namespace {
// A bridge direction's buffer or pipe comes from a per-thread free list (net/recycled.hpp), so a
// new session neither zero-fills and faults in two 64 KiB buffers (below glibc's mmap threshold:
// freeing them trimmed the heap and the next session grew it again) nor makes two pipes.
using copy_buffers = net::buffer_pool<64 * 1024>;  // 1 MiB kept free per thread at most
constexpr std::size_t copy_chunk = copy_buffers::size;

// local -> session. `send_some` moves what the local side has (at least one byte) into the session
// and returns how many bytes, 0 at the local end of stream. Ends with EOF to the peer when the
// local side half-closes; ends without an error once the session has ended (downstream() then
// cancels a pending local read).
template <typename SendSome>
awaitable<std::uint64_t> upstream(session& s, SendSome send_some) {
  std::uint64_t total = 0;
  for (;;) {
    if (s.terminated()) co_return total;  // checked before each read: no read starts after the end
    std::size_t n = 0;
    try {
      n = co_await send_some();
    } catch (const boost::system::system_error&) {
      if (s.terminated()) co_return total;  // what was read has nowhere to go
      throw;
    }
    if (n == 0) break;
    total += n;
  }
  if (!s.terminated()) co_await s.shutdown_write();
  co_return total;
}

// session -> local. `receive_some` moves payload into the local side and returns how many bytes, 0
// when the peer sent EOF or the session ended. Half-closes the local side after the peer's EOF.
// When the session ends (the peer's TERMINATE, its normal end as well as a lost peer) it stops
// upstream() with `stop_source` (which cancels a pending local read) and returns: the session is
// over, not failed.
template <typename ReceiveSome, typename Shutdown, typename Stop>
awaitable<std::uint64_t> downstream(session& s, ReceiveSome receive_some, Shutdown shutdown_sink,
                                    Stop stop_source) {
  std::uint64_t total = 0;
  for (;;) {
    const std::size_t n = co_await receive_some();
    if (n == 0) {
      // EOF keeps the other direction going; an ended session ends both at once.
      if (s.terminated()) {
        stop_source();
        co_return total;
      }
      break;
    }
    total += n;
  }
  shutdown_sink();
  co_return total;
}

// The copying steps of a bridge direction, through `buf`: for TLS lines and stdin/stdout.
template <typename Source>
auto copy_in(Source& src, session& s, net::recycled<copy_buffers>& buf) {
  return [&src, &s, &buf]() -> awaitable<std::size_t> {
    auto [ec, n] = co_await src.async_read_some(asio::buffer(buf->get(), copy_chunk),
                                                asio::as_tuple(use_awaitable));
    if (s.terminated()) co_return std::size_t{0};
    if (n > 0) co_await s.write(asio::buffer(buf->get(), n));
    if (ec && ec != asio::error::eof) throw boost::system::system_error(ec);
    co_return n;
  };
}
template <typename Sink>
auto copy_out(session& s, Sink& sink, net::recycled<copy_buffers>& buf) {
  return [&s, &sink, &buf]() -> awaitable<std::size_t> {
    const std::size_t n = co_await s.read_some(asio::buffer(buf->get(), copy_chunk));
    if (n > 0) co_await asio::async_write(sink, asio::buffer(buf->get(), n), use_awaitable);
    co_return n;
  };
}

// Runs both directions to their ends, then closes the session: OK after a normal end, nothing to
// send if the session already ended (close() returns at once), SERVICE_UNAVAILABLE with the reason
// if the local side failed.
template <typename Up, typename Down>
awaitable<bridge_totals> join(session& s, Up up, Down down) {
  using namespace asio::experimental::awaitable_operators;
  bridge_totals t;
  std::string failure;
  try {
    auto [sent, received] = co_await (std::move(up) && std::move(down));
    t.sent = sent;
    t.received = received;
  } catch (const std::exception& e) {
    // A session ending while a write to it was under way surfaces here too; that is no failure.
    if (!s.terminated()) failure = e.what();
  }
  // Before our own close(): a termination seen now came from the peer or the relay.
  if (auto ended = s.terminated(); ended && ended->code != protocol::error_code::ok) {
    t.failed = std::move(ended);
  }
  if (failure.empty()) {
    co_await s.close();
  } else {
    co_await s.close(protocol::error_code::service_unavailable, failure);
  }
  co_return t;
}
}  // namespace

awaitable<bridge_totals> bridge(session s, tcp::socket local) {
  local.set_option(tcp::no_delay(true));
  // Named locals (GCC 12 coroutine rule); all refer to `local` or to this frame's buffers and
  // pipes, which outlive join().
  auto shutdown_local = [&local] {
    error_code ignored;
    local.shutdown(tcp::socket::shutdown_send, ignored);
  };
  auto stop_local = [&local] {
    error_code ignored;
    local.cancel(ignored);
  };
  if (s.zero_copy()) {
    // Plaintext line: payload moves socket to socket through a pipe per direction. splice(2)
    // blocks on a blocking socket whatever its flags say, so the local socket must not be one.
    local.non_blocking(true);
    net::recycled<net::pipe_pool> pipe_up;
    net::recycled<net::pipe_pool> pipe_down;
    net::recycled<copy_buffers> buf_up;
    // Upstream copies while the local side sends little at a time (a request, a keystroke:
    // one read and one write beat splice in, header, splice out) and splices from the first
    // read that brought at least net::small_payload bytes until one brings less.
    bool copy_next = true;
    auto copy_some = copy_in(local, s, buf_up);
    auto send_some = [&s, &local, &pipe_up, &copy_next, copy_some]() -> awaitable<std::size_t> {
      std::size_t n = 0;
      if (copy_next) {
        n = co_await copy_some();
      } else {
        n = co_await s.write_from(local, *pipe_up);
      }
      copy_next = n < net::small_payload;
      co_return n;
    };
    auto receive_some = [&s, &local, &pipe_down]() { return s.read_into(local, *pipe_down); };
    auto up = upstream(s, send_some);
    auto down = downstream(s, receive_some, shutdown_local, stop_local);
    co_return co_await join(s, std::move(up), std::move(down));
  }
  net::recycled<copy_buffers> buf_up;
  net::recycled<copy_buffers> buf_down;
  auto up = upstream(s, copy_in(local, s, buf_up));
  auto down = downstream(s, copy_out(s, local, buf_down), shutdown_local, stop_local);
  co_return co_await join(s, std::move(up), std::move(down));
}

awaitable<bridge_totals> bridge(session& s, asio::posix::stream_descriptor in,
                                asio::posix::stream_descriptor out) {
  // Named locals (GCC 12 coroutine rule); they refer to `in`, `out` and the buffers, which
  // outlive join().
  auto close_out = [&out] {
    error_code ignored;
    out.close(ignored);
  };
  auto stop_in = [&in] {
    error_code ignored;
    in.cancel(ignored);
  };
  net::recycled<copy_buffers> buf_up;
  net::recycled<copy_buffers> buf_down;
  auto up = upstream(s, copy_in(in, s, buf_up));
  auto down = downstream(s, copy_out(s, out, buf_down), close_out, stop_in);
  co_return co_await join(s, std::move(up), std::move(down));
}

namespace {
// The services of expose_services() with their addresses, resolved on a service's first call and
// kept: the address is local and static configuration, and resolving on every call cost a
// resolver-thread round trip and a getaddrinfo() per session. A failed resolution is not kept
// (the next call tries again); a failed connect drops the kept address, so a name whose address
// changed is resolved afresh. Shared by every copy of the handler; used on the agent's executor.
struct service_table {
  struct entry {
    net::host_port where;
    std::optional<tcp::resolver::results_type> resolved;
  };
  std::map<std::string, entry> services;
};
}  // namespace

incoming_handler expose_services(std::map<std::string, net::host_port> services) {
  auto table = std::make_shared<service_table>();
  for (auto& [name, where] : services) table->services[name].where = std::move(where);
  return [table](incoming_call call) -> awaitable<answer> {
    const auto tbl = table;  // on the frame: the handler object may be replaced during the call
    const auto it = tbl->services.find(call.service);
    if (it == tbl->services.end()) {
      co_return answer::reject(protocol::error_code::unknown_service,
                               "no service '" + call.service + "' here");
    }
    const auto ex = co_await asio::this_coro::executor;
    auto socket = std::make_shared<tcp::socket>(ex);
    auto& e = it->second;  // map nodes are stable; tbl keeps the table alive
    std::string failure;
    if (!e.resolved) {
      tcp::resolver resolver(ex);
      auto [ec, eps] = co_await resolver.async_resolve(e.where.host, std::to_string(e.where.port),
                                                       asio::as_tuple(use_awaitable));
      if (ec) {
        failure = "cannot resolve '" + e.where.host + "': " + ec.message();
      } else {
        e.resolved = std::move(eps);
      }
    }
    if (failure.empty()) {
      const auto eps = *e.resolved;  // a copy: another call may drop the kept one meanwhile
      auto [ec, ep] = co_await asio::async_connect(*socket, eps, asio::as_tuple(use_awaitable));
      if (ec) {
        failure = ec.message();
        e.resolved.reset();
      }
    }
    if (!failure.empty()) {
      co_return answer::reject(protocol::error_code::service_unavailable,
                               "service '" + call.service + "' unreachable: " + failure);
    }
    answer a;
    a.serve = [socket, call](session s) -> awaitable<void> {
      const auto t = co_await bridge(std::move(s), std::move(*socket));
      if (t.failed) {
        spdlog::warn("session from {} for '{}' failed: {} {}: {} bytes out, {} in", call.caller,
                     call.service, protocol::error_name(t.failed->code),
                     protocol::printable(t.failed->message), t.sent, t.received);
      } else {
        spdlog::info("session from {} for '{}' ended: {} bytes out, {} in", call.caller,
                     call.service, t.sent, t.received);
      }
    };
    co_return a;
  };
}

awaitable<void> forward_listener(std::shared_ptr<agent> a, tcp::acceptor acceptor, std::string peer,
                                 std::string service) {
  // Accepted connections wait for their call to connect (the agent opens lines for them in
  // parallel, and the relay holds demands until the target's lines come): at most
  // max_pending_calls at once; beyond, the listener stops accepting, and the kernel's backlog
  // holds further connections instead of resetting them.
  struct gate {
    explicit gate(const asio::any_io_executor& ex) : freed(ex) {}
    std::size_t pending = 0;
    net::event freed;
  };
  auto g = std::make_shared<gate>(acceptor.get_executor());
  for (;;) {
    while (g->pending >= max_pending_calls) co_await g->freed.wait();
    auto socket = co_await acceptor.async_accept(use_awaitable);
    ++g->pending;
    asio::co_spawn(
        acceptor.get_executor(),
        [a, g, peer, service, socket = std::move(socket)]() mutable -> awaitable<void> {
          std::optional<session> s;
          try {
            s.emplace(co_await a->call(peer, service));
          } catch (const std::exception& e) {
            spdlog::warn("forward to {}:{} failed: {}", peer, service,
                         protocol::printable(e.what()));
          }
          --g->pending;
          g->freed.set();
          if (!s) co_return;
          try {
            const auto t = co_await bridge(std::move(*s), std::move(socket));
            if (t.failed) {
              spdlog::warn("forward to {}:{} failed: {} {}: {} bytes out, {} in", peer, service,
                           protocol::error_name(t.failed->code),
                           protocol::printable(t.failed->message), t.sent, t.received);
            }
          } catch (const std::exception& e) {
            spdlog::warn("forward to {}:{} failed: {}", peer, service,
                         protocol::printable(e.what()));
          }
        },
        asio::detached);
  }
}

}  // namespace switchboard::agent
