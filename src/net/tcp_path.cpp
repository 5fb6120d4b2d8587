#include "net/tcp_path.hpp"

// linux/tcp.h rather than netinet/tcp.h: glibc's struct tcp_info stops before tcpi_notsent_bytes
// and tcpi_snd_wnd. An older kernel fills a shorter prefix; the rest stays 0.
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>

namespace switchboard::net {

std::optional<tcp_path_info> read_tcp_path(int fd) {
  struct tcp_info ti {};
  socklen_t len = sizeof ti;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return std::nullopt;
  tcp_path_info t;
  t.unacked = ti.tcpi_unacked;
  t.last_ack_recv_ms = ti.tcpi_last_ack_recv;
  t.retransmits = ti.tcpi_retransmits;
  t.notsent_bytes = ti.tcpi_notsent_bytes;
  t.send_window = ti.tcpi_snd_wnd;
  t.mss = ti.tcpi_snd_mss;
  return t;
}

bool path_dead(const tcp_path_info& t, std::uint32_t interval_ms) {
  if (t.last_ack_recv_ms <= interval_ms) return false;
  const bool lost_in_flight = t.unacked > 0 && t.retransmits > 0;
  // The kernel sends whenever the window takes a full segment or everything queued.
  const std::uint32_t sendable = std::min(t.notsent_bytes, std::max<std::uint32_t>(t.mss, 1));
  const bool cannot_send = t.unacked == 0 && t.notsent_bytes > 0 && t.send_window >= sendable;
  return lost_in_flight || cannot_send;
}

}  // namespace switchboard::net
