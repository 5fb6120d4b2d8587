// The bridges between relayed sessions and local TCP connections (agent/bridge.hpp), the whole
// user path in process: a local client -> forward_listener (alice) -> relay -> expose_services
// (bob) -> a local TCP service. On plaintext lines both bridges splice(2) payload socket to
// socket (session::zero_copy()); on TLS lines they copy. Both must keep every byte, its order and
// half-close.
#include <array>

#include "agent/bridge.hpp"
#include "relay/harness.hpp"

namespace switchboard::test {
namespace {

namespace p = protocol;
constexpr std::size_t MiB = 1024 * 1024;

class Bridge : public ::testing::TestWithParam<transport> {};
INSTANTIATE_TEST_SUITE_P(Transports, Bridge,
                         ::testing::Values(transport::plaintext, transport::tls), transport_name);

// Reads a TCP socket to its end.
awaitable<std::vector<std::uint8_t>> read_socket_to_end(tcp::socket& s) {
  std::vector<std::uint8_t> all;
  std::vector<std::uint8_t> buf(64 * 1024);
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), asio::as_tuple(use_awaitable));
    all.insert(all.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    if (ec == asio::error::eof) co_return all;
    if (ec) throw boost::system::system_error(ec);
  }
}

// A local service on 127.0.0.1:0 that reads each request to EOF, and only then answers with
// "<size> <sha256>\n" of the request followed by `reply`, and closes: it needs half-close to
// work both ways through both bridges.
class digest_server {
 public:
  digest_server(asio::io_context& io, std::vector<std::uint8_t> reply)
      : acceptor_(std::make_shared<tcp::acceptor>(
            io, tcp::endpoint(asio::ip::address_v4::loopback(), 0))),
        reply_(std::make_shared<std::vector<std::uint8_t>>(std::move(reply))) {
    asio::co_spawn(io, accept_loop(acceptor_, reply_), asio::detached);
  }
  ~digest_server() {
    error_code ignored;
    acceptor_->close(ignored);
  }
  std::uint16_t port() const { return acceptor_->local_endpoint().port(); }

 private:
  static awaitable<void> accept_loop(std::shared_ptr<tcp::acceptor> acceptor,
                                     std::shared_ptr<std::vector<std::uint8_t>> reply) {
    for (;;) {
      auto [ec, s] = co_await acceptor->async_accept(asio::as_tuple(use_awaitable));
      if (ec) co_return;
      asio::co_spawn(acceptor->get_executor(), serve(std::move(s), reply), asio::detached);
    }
  }
  static awaitable<void> serve(tcp::socket s, std::shared_ptr<std::vector<std::uint8_t>> reply) {
    try {
      const auto request = co_await read_socket_to_end(s);
      const auto head = bytes_of(std::to_string(request.size()) + " " + sha256_hex(request) + "\n");
      const std::array<asio::const_buffer, 2> parts{asio::buffer(head), asio::buffer(*reply)};
      co_await asio::async_write(s, parts, use_awaitable);
      s.shutdown(tcp::socket::shutdown_send);
    } catch (const std::exception&) {
    }
  }

  std::shared_ptr<tcp::acceptor> acceptor_;
  std::shared_ptr<std::vector<std::uint8_t>> reply_;
};

// bob exposes `service` at 127.0.0.1:port; alice forwards a local listener (listen_port) to
// bob:service. The listener stops when the user_path is destroyed.
struct user_path {
  user_path() = default;
  user_path(user_path&&) = default;
  user_path& operator=(user_path&&) = default;
  ~user_path() {
    if (stop_listener) stop_listener->emit(asio::cancellation_type::terminal);
  }
  std::shared_ptr<agent::agent> alice;
  std::shared_ptr<agent::agent> bob;
  std::uint16_t listen_port = 0;
  // Shared with the listener's completion handler: the signal's slot must outlive the listener.
  std::shared_ptr<asio::cancellation_signal> stop_listener;
};
awaitable<user_path> start_user_path(relay_env& env, const std::string& service,
                                     std::uint16_t port) {
  user_path path;
  std::map<std::string, net::host_port> services;
  services[service] = net::host_port{"127.0.0.1", port};
  auto agents = co_await start_pair(env, agent::expose_services(services));
  path.alice = agents.alice;
  path.bob = agents.bob;
  tcp::acceptor acceptor(env.io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  path.listen_port = acceptor.local_endpoint().port();
  auto signal = std::make_shared<asio::cancellation_signal>();
  path.stop_listener = signal;
  auto done = [signal](std::exception_ptr) {};  // keeps the signal alive until the end
  asio::co_spawn(env.io, agent::forward_listener(path.alice, std::move(acceptor), "bob", service),
                 asio::bind_cancellation_slot(signal->slot(), std::move(done)));
  co_return path;
}

awaitable<tcp::socket> connect_local(asio::io_context& io, std::uint16_t port) {
  tcp::socket s(io);
  const tcp::endpoint ep(asio::ip::address_v4::loopback(), port);
  co_await s.async_connect(ep, use_awaitable);
  co_return s;
}

TEST_P(Bridge, SessionsAreZeroCopyExactlyOnPlaintextLines) {
  relay_env env(GetParam());
  env.run([&]() -> awaitable<void> {
    auto agents = co_await start_pair(env, echo_handler());
    auto s = co_await agents.alice->call("bob", "echo");
    EXPECT_EQ(s.zero_copy(), GetParam() == transport::plaintext);
    co_await s.close();
  });
}

// Mebibytes up, then the half-close travels through both bridges, then mebibytes down and the
// service's close: every byte, in order, both ways.
TEST_P(Bridge, ForwardedConnectionKeepsEveryByteAndHalfCloseBothWays) {
  relay_env env(GetParam());
  const auto reply = random_bytes(3 * MiB + 17, 11);
  digest_server service(env.io, reply);
  const auto request = random_bytes(5 * MiB + 5, 12);
  env.run([&]() -> awaitable<void> {
    auto path = co_await start_user_path(env, "digest", service.port());
    auto client = co_await connect_local(env.io, path.listen_port);
    co_await asio::async_write(client, asio::buffer(request), use_awaitable);
    client.shutdown(tcp::socket::shutdown_send);
    const auto back = co_await read_socket_to_end(client);
    const auto head = bytes_of(std::to_string(request.size()) + " " + sha256_hex(request) + "\n");
    CO_ASSERT_EQ(back.size(), head.size() + reply.size());
    EXPECT_TRUE(std::equal(head.begin(), head.end(), back.begin()));
    EXPECT_TRUE(std::equal(reply.begin(), reply.end(),
                           back.begin() + static_cast<std::ptrdiff_t>(head.size())));
  });
}

// Small messages, one at a time, each echoed before the next: every one must come back whole
// (the splice path sends what one read took in as one DATA frame).
TEST_P(Bridge, ManySmallRoundTripsThroughBothBridges) {
  relay_env env(GetParam());
  tcp_echo_server local_echo(env.io);
  env.run([&]() -> awaitable<void> {
    auto path = co_await start_user_path(env, "echo", local_echo.port());
    auto client = co_await connect_local(env.io, path.listen_port);
    std::vector<std::uint8_t> buf(8192);
    for (std::size_t i = 0; i < 200; ++i) {
      const auto msg = random_bytes(1 + (i * 53) % 3000, i);
      co_await asio::async_write(client, asio::buffer(msg), use_awaitable);
      co_await asio::async_read(client, asio::buffer(buf.data(), msg.size()), use_awaitable);
      CO_ASSERT_TRUE(std::equal(msg.begin(), msg.end(), buf.begin()));
    }
  });
}

// A raw caller sends many DATA frames and EOF in one write to bob's expose bridge: bob's line
// reads a small frame's header with what follows it (read-ahead), so on a plaintext line the
// next, large payload starts in user space and ends in the socket, where the bridge splices it
// from. The local service must see every byte once, in order.
TEST(Bridge, FramesArrivingTogetherReachTheLocalServiceInOrder) {
  relay_env env(transport::plaintext);
  digest_server service(env.io, {});
  env.run([&]() -> awaitable<void> {
    std::map<std::string, net::host_port> services;
    services["digest"] = net::host_port{"127.0.0.1", service.port()};
    auto bob = env.make_agent("bob");
    bob->set_incoming(test_services(), agent::expose_services(services));
    co_await start_and_settle(bob, 2);
    auto alice = co_await raw_call(env.endpoint, "bob", "digest");
    auto [wire, sent] = data_frames({5, 100'000, 3, 4096, 4097, 70'000, 1, 9000, 2}, 900);
    const auto eof = p::encode(p::eof{});
    wire.insert(wire.end(), eof.begin(), eof.end());
    co_await alice.send_bytes(wire);
    // The answer: "<size> <sha256>\n" of what the service read, then EOF.
    std::vector<std::uint8_t> answer;
    for (;;) {
      auto f = co_await alice.read(10s);
      CO_ASSERT_TRUE(f.has_value());
      if (f->type == p::frame_type::eof) break;
      if (f->type != p::frame_type::data)
        fail_at(std::source_location::current(), "unexpected frame " + describe(*f));
      answer.insert(answer.end(), f->payload.begin(), f->payload.end());
    }
    const auto expected = std::to_string(sent.size()) + " " + sha256_hex(sent) + "\n";
    EXPECT_EQ(text_of(answer), expected);
  });
}

// Sessions one after another on the same lines: pipes and buffers are reused, and no byte of one
// session shows up in the next.
TEST_P(Bridge, SuccessiveSessionsDoNotMix) {
  relay_env env(GetParam());
  tcp_echo_server local_echo(env.io);
  env.run([&]() -> awaitable<void> {
    auto path = co_await start_user_path(env, "echo", local_echo.port());
    for (std::uint64_t i = 0; i < 20; ++i) {
      auto client = co_await connect_local(env.io, path.listen_port);
      const auto msg = random_bytes(1000 + i * 7919, 100 + i);
      co_await asio::async_write(client, asio::buffer(msg), use_awaitable);
      client.shutdown(tcp::socket::shutdown_send);
      const auto back = co_await read_socket_to_end(client);
      CO_ASSERT_EQ(sha256_hex(back), sha256_hex(msg));
    }
  });
}

// The local service resets its connection mid-stream: the caller's local connection ends too
// (no hang), and the agents' lines stay usable for the next session.
TEST_P(Bridge, LocalServiceResetEndsTheCallersConnection) {
  relay_env env(GetParam());
  tcp::acceptor rude(env.io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  env.run([&]() -> awaitable<void> {
    auto path = co_await start_user_path(env, "rude", rude.local_endpoint().port());
    auto client = co_await connect_local(env.io, path.listen_port);
    const auto msg = random_bytes(10'000, 3);
    co_await asio::async_write(client, asio::buffer(msg), use_awaitable);
    auto accepted = co_await rude.async_accept(use_awaitable);
    std::vector<std::uint8_t> buf(msg.size());
    co_await asio::async_read(accepted, asio::buffer(buf), use_awaitable);
    accepted.set_option(asio::socket_base::linger(true, 0));
    accepted.close();  // RST
    std::vector<std::uint8_t> rest;
    bool ended = false;
    try {
      rest = co_await read_socket_to_end(client);
      ended = true;
    } catch (const boost::system::system_error&) {
      ended = true;  // reset is an end too
    }
    EXPECT_TRUE(ended);
    EXPECT_TRUE(rest.empty());
    co_await settle(path.alice, 2);
    co_await settle(path.bob, 2);
  });
}

}  // namespace
}  // namespace switchboard::test
