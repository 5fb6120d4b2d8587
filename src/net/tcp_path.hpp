// What the kernel knows about a TCP connection's path (TCP_INFO), for liveness checks that must
// not mistake a peer's flow control for a dead path. Pure query: no I/O on the connection.
#pragma once

#include <cstdint>
#include <optional>

namespace switchboard::net {

struct tcp_path_info {
  std::uint32_t unacked = 0;           // segments sent and not yet acknowledged
  std::uint32_t last_ack_recv_ms = 0;  // since the last ACK from the peer
  std::uint32_t retransmits = 0;       // retransmission timeouts since the last ACK
  std::uint32_t notsent_bytes = 0;     // queued, not yet sent (Linux >= 4.6; else 0)
  std::uint32_t send_window = 0;       // the peer's advertised window (Linux >= 5.4; else 0)
  std::uint32_t mss = 0;               // sender's maximum segment size
};

// TCP_INFO of socket `fd`; nullopt if the call fails (not a TCP socket, closed).
std::optional<tcp_path_info> read_tcp_path(int fd);

// True if TCP shows that nothing gets through to the peer for longer than `interval_ms`:
//  - segments in flight, no ACK for the interval, and a retransmission timeout that fired for
//    them (packets lost on the way: a NAT that forgot the flow, a dead link further on); or
//  - bytes queued, none in flight although the peer's window has room for a full segment (or
//    for all of them), and no ACK for the interval: the kernel cannot send at all (the route or
//    the interface is gone, e.g. Wi-Fi down), so no retransmission timeout ever fires.
// A peer that merely reads slowly shrinks its window below a segment (the sender then waits:
// silly-window avoidance, zero-window probes, no retransmission timeouts) and is never judged
// dead here.
bool path_dead(const tcp_path_info& t, std::uint32_t interval_ms);

}  // namespace switchboard::net
