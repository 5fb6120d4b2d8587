#include "agent/bridge.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <memory>
#include <optional>
#include <vector>

namespace switchboard::agent {

namespace {
constexpr std::size_t copy_chunk = 64 * 1024;

// The copy buffers of bridge(): copy_chunk bytes each, never zero-filled, and recycled through a
// small per-thread free list, so a new session neither memsets nor faults in fresh heap pages
// (64 KiB is below glibc's mmap threshold: freeing two of them trimmed the heap, and the next
// session grew it again). Memory stays bounded: in use, two buffers per live bridge (as before);
// kept free, at most max_free_buffers per thread. A buffer may be returned on any thread.
class copy_buffer {
 public:
  copy_buffer() : data_(take()) {}
  copy_buffer(const copy_buffer&) = delete;
  copy_buffer& operator=(const copy_buffer&) = delete;
  ~copy_buffer() {
    auto& list = free_list();
    if (list.size() < max_free_buffers) list.push_back(std::move(data_));
  }

  std::uint8_t* data() const { return data_.get(); }
  static constexpr std::size_t size() { return copy_chunk; }

 private:
  static constexpr std::size_t max_free_buffers = 16;  // 1 MiB per thread at most

  static std::vector<std::unique_ptr<std::uint8_t[]>>& free_list() {
    thread_local std::vector<std::unique_ptr<std::uint8_t[]>> list;
    return list;
  }
  static std::unique_ptr<std::uint8_t[]> take() {
    auto& list = free_list();
    if (list.empty()) return std::make_unique_for_overwrite<std::uint8_t[]>(copy_chunk);
    auto b = std::move(list.back());
    list.pop_back();
    return b;
  }

  std::unique_ptr<std::uint8_t[]> data_;  // owned; never null
};

// local -> session; ends with EOF to the peer when the local side half-closes. Also ends, without
// an error, once the session has ended (downstream() then cancels a pending local read).
template <typename Source>
awaitable<std::uint64_t> upstream(Source& src, session& s) {
  const copy_buffer buf;
  std::uint64_t total = 0;
  for (;;) {
    if (s.terminated()) co_return total;  // checked before each read: no read starts after the end
    auto [ec, n] = co_await src.async_read_some(asio::buffer(buf.data(), buf.size()),
                                                asio::as_tuple(use_awaitable));
    if (s.terminated()) co_return total;  // what was read has nowhere to go
    if (n > 0) {
      co_await s.write(asio::buffer(buf.data(), n));
      total += n;
    }
    if (ec == asio::error::eof) break;
    if (ec) throw boost::system::system_error(ec);
  }
  co_await s.shutdown_write();
  co_return total;
}

// session -> local; half-closes the local side when the peer sent EOF. When the session ends (the
// peer's TERMINATE, its normal end as well as a lost peer) it stops upstream() with
// `stop_source` (which cancels a pending local read) and returns: the session is over, not failed.
template <typename Sink, typename Shutdown, typename Stop>
awaitable<std::uint64_t> downstream(session& s, Sink& sink, Shutdown shutdown_sink,
                                    Stop stop_source) {
  const copy_buffer buf;
  std::uint64_t total = 0;
  for (;;) {
    const std::size_t n = co_await s.read_some(asio::buffer(buf.data(), buf.size()));
    if (n == 0) {
      // EOF keeps the other direction going; an ended session ends both at once.
      if (s.terminated()) {
        stop_source();
        co_return total;
      }
      break;
    }
    co_await asio::async_write(sink, asio::buffer(buf.data(), n), use_awaitable);
    total += n;
  }
  shutdown_sink();
  co_return total;
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
    t = {sent, received};
  } catch (const std::exception& e) {
    // A session ending while a write to it was under way surfaces here too; that is no failure.
    if (!s.terminated()) failure = e.what();
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
  // Named locals (GCC 12 coroutine rule); both refer to `local`, which outlives join().
  auto shutdown_local = [&local] {
    error_code ignored;
    local.shutdown(tcp::socket::shutdown_send, ignored);
  };
  auto stop_local = [&local] {
    error_code ignored;
    local.cancel(ignored);
  };
  auto down = downstream(s, local, shutdown_local, stop_local);
  co_return co_await join(s, upstream(local, s), std::move(down));
}

awaitable<bridge_totals> bridge(session s, asio::posix::stream_descriptor in,
                                asio::posix::stream_descriptor out) {
  // Named locals (GCC 12 coroutine rule); they refer to `in` and `out`, which outlive join().
  auto close_out = [&out] {
    error_code ignored;
    out.close(ignored);
  };
  auto stop_in = [&in] {
    error_code ignored;
    in.cancel(ignored);
  };
  auto down = downstream(s, out, close_out, stop_in);
  co_return co_await join(s, upstream(in, s), std::move(down));
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
      spdlog::info("session from {} for '{}' ended: {} bytes out, {} in", call.caller, call.service,
                   t.sent, t.received);
    };
    co_return a;
  };
}

awaitable<void> forward_listener(std::shared_ptr<agent> a, tcp::acceptor acceptor, std::string peer,
                                 std::string service) {
  for (;;) {
    auto socket = co_await acceptor.async_accept(use_awaitable);
    asio::co_spawn(
        acceptor.get_executor(),
        [a, peer, service, socket = std::move(socket)]() mutable -> awaitable<void> {
          try {
            session s = co_await a->call(peer, service);
            co_await bridge(std::move(s), std::move(socket));
          } catch (const std::exception& e) {
            spdlog::warn("forward to {}:{} failed: {}", peer, service, e.what());
          }
        },
        asio::detached);
  }
}

}  // namespace switchboard::agent
