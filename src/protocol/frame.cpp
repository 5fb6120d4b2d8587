#include "protocol/frame.hpp"

#include <string>

#include "protocol/errors.hpp"

namespace switchboard::protocol {

namespace {
bool known(std::uint8_t t) {
  switch (static_cast<frame_type>(t)) {
    case frame_type::login:
    case frame_type::ping:
    case frame_type::peers_request:
    case frame_type::demand:
    case frame_type::accept:
    case frame_type::reject:
    case frame_type::logout:
    case frame_type::release:
    case frame_type::announce:
    case frame_type::data:
    case frame_type::eof:
    case frame_type::terminate:
    case frame_type::login_ok:
    case frame_type::pong:
    case frame_type::peers:
    case frame_type::incoming:
    case frame_type::connected:
    case frame_type::fail:
    case frame_type::logged_out:
    case frame_type::released:
    case frame_type::need_lines:
    case frame_type::service_lost:
      return true;
  }
  return false;
}

void check_length(frame_type type, std::uint32_t length) {
  if (type == frame_type::data) {
    if (length == 0) throw protocol_violation("empty DATA frame");
    if (length > max_data_payload) {
      throw protocol_violation("DATA frame of " + std::to_string(length) + " bytes exceeds 1 MiB");
    }
  } else if (length > max_control_payload) {
    throw protocol_violation(std::string(frame_name(type)) + " frame of " + std::to_string(length) +
                             " bytes exceeds 16 KiB");
  }
}
}  // namespace

std::array<std::uint8_t, header_size> encode_header(frame_type type, std::uint32_t length) {
  check_length(type, length);
  return {static_cast<std::uint8_t>(type), static_cast<std::uint8_t>(length >> 16),
          static_cast<std::uint8_t>(length >> 8), static_cast<std::uint8_t>(length)};
}

frame_header parse_header(std::span<const std::uint8_t, header_size> bytes) {
  if (!known(bytes[0])) {
    throw protocol_violation("unknown frame type " + std::to_string(bytes[0]));
  }
  const auto type = static_cast<frame_type>(bytes[0]);
  const std::uint32_t length =
      (std::uint32_t{bytes[1]} << 16) | (std::uint32_t{bytes[2]} << 8) | std::uint32_t{bytes[3]};
  check_length(type, length);
  return {type, length};
}

const char* frame_name(frame_type type) {
  switch (type) {
    case frame_type::login:
      return "LOGIN";
    case frame_type::ping:
      return "PING";
    case frame_type::peers_request:
      return "PEERS?";
    case frame_type::demand:
      return "DEMAND";
    case frame_type::accept:
      return "ACCEPT";
    case frame_type::reject:
      return "REJECT";
    case frame_type::logout:
      return "LOGOUT";
    case frame_type::release:
      return "RELEASE";
    case frame_type::data:
      return "DATA";
    case frame_type::eof:
      return "EOF";
    case frame_type::terminate:
      return "TERMINATE";
    case frame_type::login_ok:
      return "LOGIN-OK";
    case frame_type::pong:
      return "PONG";
    case frame_type::peers:
      return "PEERS";
    case frame_type::incoming:
      return "INCOMING";
    case frame_type::connected:
      return "CONNECTED";
    case frame_type::fail:
      return "FAIL";
    case frame_type::logged_out:
      return "LOGGED-OUT";
    case frame_type::released:
      return "RELEASED";
    case frame_type::announce:
      return "ANNOUNCE";
    case frame_type::need_lines:
      return "NEED-LINES";
    case frame_type::service_lost:
      return "SERVICE-LOST";
  }
  return "?";
}

}  // namespace switchboard::protocol
