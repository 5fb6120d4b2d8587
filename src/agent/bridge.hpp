// Joining relayed sessions to local byte streams: what `switchboard expose`, `forward` and `pipe`
// run. The relay never dials anything; only these functions connect, and only to the services an
// agent's own configuration names (no open proxy).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "agent/agent.hpp"
#include "net/endpoint.hpp"

namespace switchboard::agent {

// Copies both ways between `local` and `s`, keeping half-close (EOF one way, the other goes on),
// until both directions ended; then closes the session. Returns bytes copied {to s, from s} and,
// if the peer or the relay ended the session with an error (e.g. PEER_LOST after a network
// failure on the peer's side), that termination: the bytes may then be incomplete.
struct bridge_totals {
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::optional<termination> failed;
};
awaitable<bridge_totals> bridge(session s, tcp::socket local);

// Same for a pair of stream descriptors (stdin, stdout) as `switchboard pipe` uses. The caller
// keeps the session (it must outlive the bridge), so that it may end it while the bridge runs:
// the bridge then ends as after the peer's TERMINATE.
awaitable<bridge_totals> bridge(session& s, asio::posix::stream_descriptor in,
                                asio::posix::stream_descriptor out);

// An incoming handler serving services by name: connects to the service's local address first and
// accepts only if that worked (REJECT UNKNOWN_SERVICE / SERVICE_UNAVAILABLE otherwise).
incoming_handler expose_services(std::map<std::string, net::host_port> services);

// Accepted connections of one forward_listener waiting for their call at once (see there).
constexpr std::size_t max_pending_calls = 4096;

// Accepts local connections forever; each becomes one call to peer:service, bridged. A connection
// waits for its call (bounded: max_pending_calls, each at most the agent's connect_timeout for a
// line and the relay's demand deadline) instead of being reset while lines open.
awaitable<void> forward_listener(std::shared_ptr<agent> a, tcp::acceptor acceptor, std::string peer,
                                 std::string service);

}  // namespace switchboard::agent
