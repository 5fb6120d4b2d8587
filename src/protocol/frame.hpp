// Frame header: 1 byte type, 3 bytes big-endian payload length (docs/protocol.md §2). Pure.
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace switchboard::protocol {

enum class frame_type : std::uint8_t {
  login = 0x01,
  ping = 0x02,
  peers_request = 0x03,
  demand = 0x04,
  accept = 0x05,
  reject = 0x06,
  logout = 0x07,
  release = 0x08,
  announce = 0x09,
  data = 0x10,
  eof = 0x11,
  terminate = 0x12,
  login_ok = 0x81,
  pong = 0x82,
  peers = 0x83,
  incoming = 0x84,
  connected = 0x85,
  fail = 0x86,
  logged_out = 0x87,
  released = 0x88,
  need_lines = 0x89,
  service_lost = 0x8a,
};

constexpr std::size_t header_size = 4;
constexpr std::uint32_t max_data_payload = 1u << 20;
constexpr std::uint32_t max_control_payload = 16 * 1024;

struct frame_header {
  frame_type type;
  std::uint32_t length;
};

// Throws protocol_violation for a length above the type's maximum (or a zero-length DATA frame).
std::array<std::uint8_t, header_size> encode_header(frame_type type, std::uint32_t length);

// Throws protocol_violation for an unknown type, an oversized length or an empty DATA frame.
frame_header parse_header(std::span<const std::uint8_t, header_size> bytes);

// "LOGIN", "DATA", ...; "0x??" style text is never needed because unknown types never parse.
const char* frame_name(frame_type type);

}  // namespace switchboard::protocol
