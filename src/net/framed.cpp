#include "net/framed.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <cerrno>
#include <vector>

namespace switchboard::net {

awaitable<std::optional<protocol::frame_header>> read_header(line_stream& s) {
  std::array<std::uint8_t, protocol::header_size> bytes{};
  const std::size_t first = co_await s.read_some(asio::buffer(bytes));
  if (first == 0) co_return std::nullopt;
  if (first < bytes.size()) co_await s.read_exact(asio::buffer(bytes) + first);
  co_return protocol::parse_header(bytes);
}

awaitable<protocol::message> read_control(line_stream& s, protocol::frame_header h) {
  std::vector<std::uint8_t> payload(h.length);
  if (h.length > 0) co_await s.read_exact(asio::buffer(payload));
  co_return protocol::decode(h.type, payload);
}

awaitable<void> skip_payload(line_stream& s, std::size_t n) {
  std::array<std::uint8_t, 4096> sink{};
  while (n > 0) {
    const std::size_t got =
        co_await s.read_some(asio::buffer(sink.data(), std::min(n, sink.size())));
    if (got == 0) throw boost::system::system_error(asio::error::eof);
    n -= got;
  }
}

awaitable<void> write_data_header(line_stream& s, std::uint32_t length,
                                  std::span<const std::uint8_t> first) {
  const auto h = protocol::encode_header(protocol::frame_type::data, length);
  const std::size_t total = h.size() + first.size();
  std::size_t sent = 0;
  if (!s.tls()) {
    iovec parts[] = {{const_cast<std::uint8_t*>(h.data()), h.size()},
                     {const_cast<std::uint8_t*>(first.data()), first.size()}};
    msghdr msg{};
    msg.msg_iov = parts;
    msg.msg_iovlen = first.empty() ? 1 : 2;
    const ssize_t r = ::sendmsg(s.socket().native_handle(), &msg, MSG_MORE | MSG_NOSIGNAL);
    if (r < 0 && errno != EAGAIN) {
      throw boost::system::system_error(
          boost::system::error_code(errno, boost::system::system_category()), "send");
    }
    sent = r > 0 ? static_cast<std::size_t>(r) : 0;
  }
  if (sent == total) co_return;
  // The rest (all of it on TLS, where header and bytes share a record): in order, as one write.
  const std::size_t header_rest = h.size() - std::min(sent, h.size());
  const std::size_t first_sent = sent - (h.size() - header_rest);
  const asio::const_buffer rest[] = {asio::buffer(h) + (h.size() - header_rest),
                                     asio::buffer(first.data(), first.size()) + first_sent};
  co_await s.write_all(rest);
}

awaitable<void> write_message(line_stream& s, const protocol::message& m) {
  const std::vector<std::uint8_t> frame = protocol::encode(m);
  co_await s.write_all(asio::buffer(frame));
}

}  // namespace switchboard::net
