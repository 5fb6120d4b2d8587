// "HOST:PORT" parsing shared by every program. Pure apart from name resolution in resolve().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "net/asio.hpp"

namespace switchboard::net {

struct host_port {
  std::string host;  // without IPv6 brackets
  std::uint16_t port = 0;
};

// Accepts "host:port", "1.2.3.4:port", "[::1]:port". Port 0..65535.
// Throws std::invalid_argument with a message naming the input.
host_port parse_host_port(std::string_view text);

// For listening: the host must be a numeric address ("0.0.0.0", "::", "127.0.0.1", "::1").
tcp::endpoint parse_endpoint(std::string_view text);

std::string to_string(const tcp::endpoint& ep);

}  // namespace switchboard::net
