// Frame-level I/O on a line (docs/protocol.md §2). Control payloads are read into a buffer sized
// to the frame and decoded; DATA payloads are never read here (see net/forward.hpp and the agent's
// session stream).
#pragma once

#include <optional>
#include <span>

#include "net/line_stream.hpp"
#include "protocol/messages.hpp"

namespace switchboard::net {

// Reads one header. nullopt: the peer closed cleanly before a new frame began.
// Throws protocol_violation for a bad header, system_error for I/O errors or EOF mid-header.
awaitable<std::optional<protocol::frame_header>> read_header(line_stream& s);

// Reads the payload of a control frame and decodes it. Throws protocol_violation, system_error.
awaitable<protocol::message> read_control(line_stream& s, protocol::frame_header h);

// Reads and discards `n` payload bytes (a DATA frame nobody will receive).
awaitable<void> skip_payload(line_stream& s, std::size_t n);

// Writes the header of a DATA frame whose `length` payload bytes the caller then writes itself (a
// spliced payload), followed by `first`, the payload's first bytes if the caller holds them (the
// source line's read-ahead). On a plaintext line they go with MSG_MORE, so the kernel may put them
// in the payload's first segment. The caller holds the line's write mutex. Throws system_error.
awaitable<void> write_data_header(line_stream& s, std::uint32_t length,
                                  std::span<const std::uint8_t> first = {});

// Encodes and writes one control frame. The caller holds the line's write mutex.
awaitable<void> write_message(line_stream& s, const protocol::message& m);

}  // namespace switchboard::net
