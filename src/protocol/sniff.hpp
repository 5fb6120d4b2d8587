// What the first bytes a peer sent on a line tell about the transport it speaks, for naming a
// TLS/plaintext mismatch (docs/protocol.md §1). Each test looks at the first two bytes; fewer
// bytes never match.
#pragma once

#include <cstdint>
#include <span>

#include "protocol/frame.hpp"

namespace switchboard::protocol {

// A TLS record header: content type alert (0x15) or handshake (0x16), major version 3.
inline bool looks_like_tls_record(std::span<const std::uint8_t> b) {
  return b.size() >= 2 && (b[0] == 0x15 || b[0] == 0x16) && b[1] == 0x03;
}

// A frame header of a relay-to-agent type (0x81..0x88): control payloads are at most 16 KiB,
// so the length's high byte is 0.
inline bool looks_like_relay_frame(std::span<const std::uint8_t> b) {
  return b.size() >= 2 && b[0] >= static_cast<std::uint8_t>(frame_type::login_ok) &&
         b[0] <= static_cast<std::uint8_t>(frame_type::released) && b[1] == 0;
}

// A LOGIN frame header (0x01, length's high byte 0).
inline bool looks_like_login_frame(std::span<const std::uint8_t> b) {
  return b.size() >= 2 && b[0] == static_cast<std::uint8_t>(frame_type::login) && b[1] == 0;
}

}  // namespace switchboard::protocol
