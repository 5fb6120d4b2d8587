#include "net/endpoint.hpp"

#include <charconv>
#include <stdexcept>

namespace switchboard::net {

host_port parse_host_port(std::string_view text) {
  const auto bad = [&](const char* why) {
    return std::invalid_argument("bad address '" + std::string(text) + "': " + why +
                                 " (expected HOST:PORT or [IPv6]:PORT)");
  };
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) throw bad("no port");
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    throw bad("IPv6 addresses need brackets");
  }
  if (host.empty()) throw bad("empty host");
  unsigned port = 0;
  const auto [ptr, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port > 65535 ||
      port_text.empty()) {
    throw bad("port must be a number from 0 to 65535");
  }
  return {std::string(host), static_cast<std::uint16_t>(port)};
}

tcp::endpoint parse_endpoint(std::string_view text) {
  const host_port hp = parse_host_port(text);
  error_code ec;
  const auto addr = asio::ip::make_address(hp.host, ec);
  if (ec) {
    throw std::invalid_argument("bad address '" + std::string(text) +
                                "': the host must be a numeric IP address");
  }
  return {addr, hp.port};
}

std::string to_string(const tcp::endpoint& ep) {
  const auto a = ep.address();
  std::string out;
  if (a.is_v6()) out.push_back('[');
  out.append(a.to_string());
  if (a.is_v6()) out.push_back(']');
  out.push_back(':');
  out.append(std::to_string(ep.port()));
  return out;
}

}  // namespace switchboard::net
