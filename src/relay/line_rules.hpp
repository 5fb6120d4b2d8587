// The relay's per-line state machine as a table (docs/protocol.md §5, "Frames allowed per
// state"): for each line state and each frame type an agent may send, what the line does with
// the frame. Pure: line.cpp dispatches every frame it reads, from the socket or handed back from
// a forwarding thread, through rule_for() before any handler runs, so no handler sees a frame its
// state does not allow.
#pragma once

#include <cstdint>

#include "protocol/frame.hpp"

namespace switchboard::relay {

// `closed` also stands for a line that is closing: after close() nothing more is answered.
enum class line_state : std::uint8_t { auth, vacant, calling, ringing, paired, releasing, closed };
const char* state_name(line_state s);

enum class frame_rule : std::uint8_t {
  handle,     // the state's handler runs
  discard,    // read whole and dropped: stale (an answer to a call that ended), or after the end
  violation,  // PROTOCOL_ERROR: LOGGED-OUT, the line closes
};

constexpr frame_rule rule_for(line_state s, protocol::frame_type t) {
  using f = protocol::frame_type;
  using enum frame_rule;
  if (s == line_state::closed) return discard;
  if (s == line_state::auth) return t == f::login ? handle : violation;
  switch (t) {
    case f::ping:
    case f::logout:
      return handle;  // in every logged-in state
    case f::peers_request:
    case f::demand:
    case f::announce:
      return s == line_state::vacant ? handle : violation;
    case f::accept:
    case f::reject:
      // Vacant or releasing: the call it answers ended (no answer in time, the caller left).
      if (s == line_state::ringing) return handle;
      return s == line_state::vacant || s == line_state::releasing ? discard : violation;
    case f::release:
      if (s == line_state::ringing || s == line_state::paired || s == line_state::releasing) {
        return handle;
      }
      return s == line_state::vacant ? discard : violation;
    case f::data:
    case f::eof:
    case f::terminate:
      if (s == line_state::paired) return handle;
      return s == line_state::releasing ? discard : violation;
    default:
      return violation;  // LOGIN once logged in, and every relay-to-agent type
  }
}

}  // namespace switchboard::relay
