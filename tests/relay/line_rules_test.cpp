// The relay's per-line state table (relay/line_rules.hpp) against docs/protocol.md §5, cell by
// cell: the expected table below is transcribed from the specification's "frames allowed per
// state", not from the code.
#include "relay/line_rules.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace switchboard::relay {
namespace {

using f = protocol::frame_type;

// The table's columns line up with the frame names: clang-format leaves it alone.
// clang-format off
// Columns: the frames an agent may send. H handle, D discard (read and dropped), V violation.
const std::vector<f> agent_frames{f::login,   f::ping,    f::peers_request, f::demand,
                                  f::accept,  f::reject,  f::logout,        f::release,
                                  f::data,    f::eof,     f::terminate};
//                                                  LOGIN PING PEERS DEMAND ACCEPT REJECT LOGOUT RELEASE DATA EOF TERMINATE
const std::map<line_state, std::string> expected{
    {line_state::auth,      "HVVVVVVVVVV"},
    {line_state::vacant,    "VHHHDDHDVVV"},
    {line_state::calling,   "VHVVVVHVVVV"},
    {line_state::ringing,   "VHVVHHHHVVV"},
    {line_state::paired,    "VHVVVVHHHHH"},
    {line_state::releasing, "VHVVDDHHDDD"},
    {line_state::closed,    "DDDDDDDDDDD"},  // closing or closed: nothing more is answered
};
// clang-format on
// Frames only the relay sends: never accepted from an agent.
const std::vector<f> relay_frames{f::login_ok,  f::pong, f::peers,      f::incoming,
                                  f::connected, f::fail, f::logged_out, f::released};

char letter(frame_rule r) {
  switch (r) {
    case frame_rule::handle:
      return 'H';
    case frame_rule::discard:
      return 'D';
    case frame_rule::violation:
      return 'V';
  }
  return '?';
}

TEST(LineRules, EveryCellMatchesTheSpecification) {
  for (const auto& [state, row] : expected) {
    ASSERT_EQ(row.size(), agent_frames.size());
    for (std::size_t i = 0; i < agent_frames.size(); ++i) {
      EXPECT_EQ(letter(rule_for(state, agent_frames[i])), row[i])
          << state_name(state) << " x " << protocol::frame_name(agent_frames[i]);
    }
  }
}

TEST(LineRules, RelayFramesFromAnAgentAreViolationsUnlessTheLineIsClosing) {
  for (const auto& [state, row] : expected) {
    for (const f t : relay_frames) {
      const frame_rule want =
          state == line_state::closed ? frame_rule::discard : frame_rule::violation;
      EXPECT_EQ(rule_for(state, t), want) << state_name(state) << " x " << protocol::frame_name(t);
    }
  }
}

}  // namespace
}  // namespace switchboard::relay
