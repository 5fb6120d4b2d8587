// splice_pipe (net/splice_pipe.hpp): non-blocking moves between connected loopback TCP sockets,
// its byte count, end of stream and a failed destination.
#include "net/splice_pipe.hpp"

#include <gtest/gtest.h>

#include <array>
#include <numeric>

#include "net/asio.hpp"

namespace switchboard::net {
namespace {

// Two connected loopback TCP sockets, non-blocking, made synchronously.
struct socket_pair {
  explicit socket_pair(asio::io_context& io) : a(io), b(io) {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    a.connect(acceptor.local_endpoint());
    b = acceptor.accept();
    a.non_blocking(true);
    b.non_blocking(true);
  }
  tcp::socket a;
  tcp::socket b;
};

// Reads exactly `n` bytes from a non-blocking socket (the bytes are on loopback already).
std::vector<std::uint8_t> read_n(tcp::socket& s, std::size_t n) {
  std::vector<std::uint8_t> out(n);
  s.non_blocking(false);
  asio::read(s, asio::buffer(out));
  s.non_blocking(true);
  return out;
}

TEST(SplicePipe, MovesBytesSocketToSocketAndCountsThem) {
  asio::io_context io;
  socket_pair in(io);
  socket_pair out(io);
  splice_pipe pipe(256 * 1024);
  EXPECT_EQ(pipe.fill(in.b.native_handle(), 1000), std::nullopt);  // nothing there yet
  std::vector<std::uint8_t> data(5000);
  std::iota(data.begin(), data.end(), std::uint8_t{0});
  asio::write(in.a, asio::buffer(data));
  // Asked for at most 3000: exactly that much moves, the rest waits in the socket.
  EXPECT_EQ(pipe.fill(in.b.native_handle(), 3000), 3000u);
  EXPECT_EQ(pipe.held(), 3000u);
  EXPECT_EQ(pipe.fill(in.b.native_handle(), 10'000), 2000u);
  EXPECT_EQ(pipe.held(), 5000u);
  EXPECT_EQ(pipe.drain(out.a.native_handle(), false), 5000u);
  EXPECT_EQ(pipe.held(), 0u);
  EXPECT_EQ(pipe.drain(out.a.native_handle(), false), 0u);  // nothing held: nothing to do
  EXPECT_EQ(read_n(out.b, data.size()), data);
}

TEST(SplicePipe, EndOfStreamIsZero) {
  asio::io_context io;
  socket_pair in(io);
  splice_pipe pipe(64 * 1024);
  in.a.shutdown(tcp::socket::shutdown_send);
  EXPECT_EQ(pipe.fill(in.b.native_handle(), 100), 0u);
  EXPECT_EQ(pipe.held(), 0u);
}

TEST(SplicePipe, FailedDestinationThrowsAndKeepsTheBytes) {
  asio::io_context io;
  socket_pair in(io);
  socket_pair out(io);
  splice_pipe pipe(64 * 1024);
  const std::array<std::uint8_t, 100> data{};
  asio::write(in.a, asio::buffer(data));
  EXPECT_EQ(pipe.fill(in.b.native_handle(), 100), 100u);
  out.b.set_option(asio::socket_base::linger(true, 0));
  out.b.close();  // RST to out.a
  // The first send after a reset may still be accepted by the kernel; a later one fails.
  bool threw = false;
  for (int i = 0; i < 10 && !threw; ++i) {
    try {
      if (pipe.drain(out.a.native_handle(), false) > 0 && pipe.held() == 0) {
        asio::write(in.a, asio::buffer(data));
        ASSERT_EQ(pipe.fill(in.b.native_handle(), 100), 100u);
      }
    } catch (const boost::system::system_error&) {
      threw = true;
    }
  }
  EXPECT_TRUE(threw);
  EXPECT_EQ(pipe.held(), 100u);
}

TEST(SplicePipe, MoveTransfersThePipeAndItsCount) {
  asio::io_context io;
  socket_pair in(io);
  socket_pair out(io);
  splice_pipe first(64 * 1024);
  const std::array<std::uint8_t, 10> data{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  asio::write(in.a, asio::buffer(data));
  ASSERT_EQ(first.fill(in.b.native_handle(), 10), 10u);
  splice_pipe second(std::move(first));
  EXPECT_EQ(second.held(), 10u);
  EXPECT_EQ(second.drain(out.a.native_handle(), false), 10u);
  const auto got = read_n(out.b, 10);
  EXPECT_TRUE(std::equal(got.begin(), got.end(), data.begin()));
}

}  // namespace
}  // namespace switchboard::net
