// net::read_tcp_path / net::path_dead (net/tcp_path.hpp): the rule on its own, and on real
// loopback connections that the rule must never judge dead (a live one; a peer that stopped
// reading, whose window closed). A path that is really dead is in tests/e2e/network_blip.sh (it
// needs a network namespace).
#include "net/tcp_path.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "net/asio.hpp"

namespace switchboard::net {
namespace {

tcp_path_info path(std::uint32_t unacked, std::uint32_t last_ack_ms, std::uint32_t retransmits,
                   std::uint32_t notsent, std::uint32_t window) {
  tcp_path_info t;
  t.mss = 1448;
  t.unacked = unacked;
  t.last_ack_recv_ms = last_ack_ms;
  t.retransmits = retransmits;
  t.notsent_bytes = notsent;
  t.send_window = window;
  return t;
}

TEST(TcpPath, LostSegmentsWithoutAckForTheIntervalAreDead) {
  EXPECT_TRUE(path_dead(path(2, 1500, 1, 0, 65536), 1000));
  EXPECT_FALSE(path_dead(path(2, 900, 1, 0, 65536), 1000));   // an ACK came within the interval
  EXPECT_FALSE(path_dead(path(2, 1500, 0, 0, 65536), 1000));  // no timeout fired yet (delayed ACK)
  EXPECT_FALSE(path_dead(path(0, 1500, 1, 0, 65536), 1000));  // nothing in flight
}

TEST(TcpPath, BytesTheKernelCannotSendThroughAnOpenWindowAreDead) {
  EXPECT_TRUE(path_dead(path(0, 1500, 0, 20, 65536), 1000));
  EXPECT_FALSE(path_dead(path(0, 500, 0, 20, 65536), 1000));    // acknowledged lately
  EXPECT_FALSE(path_dead(path(0, 1500, 0, 0, 65536), 1000));    // idle: nothing to send
  EXPECT_FALSE(path_dead(path(0, 1500, 0, 20, 0), 1000));       // the peer's window is closed
  EXPECT_TRUE(path_dead(path(0, 1500, 0, 5000, 1448), 1000));   // room for a full segment
  EXPECT_FALSE(path_dead(path(0, 1500, 0, 5000, 1000), 1000));  // less: silly-window avoidance
  EXPECT_TRUE(path_dead(path(0, 1500, 0, 20, 20), 1000));       // room for all that is queued
}

// Two connected loopback TCP sockets.
struct socket_pair {
  explicit socket_pair(asio::io_context& io) : a(io), b(io) {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    a.connect(acceptor.local_endpoint());
    b = acceptor.accept();
  }
  tcp::socket a;
  tcp::socket b;
};

TEST(TcpPath, ReadsALiveIdleConnection) {
  asio::io_context io;
  socket_pair s(io);
  asio::write(s.a, asio::buffer("ping", 4));
  std::array<char, 4> got{};
  asio::read(s.b, asio::buffer(got));
  const auto t = read_tcp_path(s.a.native_handle());
  ASSERT_TRUE(t);
  EXPECT_EQ(t->unacked, 0u);
  EXPECT_EQ(t->notsent_bytes, 0u);
  EXPECT_GT(t->send_window, 0u);
  EXPECT_FALSE(path_dead(*t, 0));
  EXPECT_FALSE(read_tcp_path(-1));
}

// The relay's case on a paired line: the far side stops reading (flow control). Bytes queue,
// the window shrinks below a segment and closes, probes are answered: alive, however long.
TEST(TcpPath, APeerThatStoppedReadingIsNotDead) {
  asio::io_context io;
  socket_pair s(io);
  s.a.non_blocking(true);
  const std::vector<char> chunk(64 * 1024, 'x');
  boost::system::error_code ec;
  std::size_t queued = 0;
  for (int i = 0; i < 4096 && !ec; ++i) queued += s.a.write_some(asio::buffer(chunk), ec);
  ASSERT_EQ(ec, asio::error::would_block) << "the send buffer never filled";
  ASSERT_GT(queued, 0u);
  std::optional<tcp_path_info> t;
  // A few zero-window probes go out meanwhile (from about 200 ms on).
  for (int i = 0; i < 12; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    t = read_tcp_path(s.a.native_handle());
    ASSERT_TRUE(t);
    EXPECT_FALSE(path_dead(*t, 50))
        << "at " << (i + 1) * 100 << " ms: unacked " << t->unacked << ", last ACK "
        << t->last_ack_recv_ms << " ms ago, " << t->retransmits << " timeouts, " << t->notsent_bytes
        << " bytes unsent, window " << t->send_window;
  }
  EXPECT_GT(t->notsent_bytes, 0u);
  EXPECT_LT(t->send_window, std::min(t->notsent_bytes, t->mss));
}

}  // namespace
}  // namespace switchboard::net
