// Control messages (every frame type except DATA) and their payload codec (docs/protocol.md §3).
// Pure: no I/O, no allocation beyond the strings and vectors the messages own.
//
// Every message that owns memory has a user-declared constructor, so it is not an aggregate:
// GCC 12 destroys aggregate-initialised temporaries twice when they appear inside a co_await
// expression (`co_await send(fail{...})`), see docs/architecture.md "GCC 12 coroutine rule".
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "protocol/errors.hpp"
#include "protocol/frame.hpp"

namespace switchboard::protocol {

constexpr std::uint8_t protocol_version = 2;
// A login ticket (docs/protocol.md §6): u64 expires_at, then a 32-byte HMAC. Opaque to agents.
constexpr std::size_t ticket_size = 40;
constexpr std::size_t instance_size = 16;
constexpr std::size_t max_peers_listed = 512;
constexpr std::size_t max_services = 32;  // per instance: LOGIN and ANNOUNCE (docs/protocol.md §3)
// PEERS must also fit a control frame: flags + count + the str8 entries <= max_control_payload.
constexpr std::size_t peers_fixed_bytes = 3;

using ticket = std::array<std::uint8_t, ticket_size>;
using instance_id = std::array<std::uint8_t, instance_size>;

enum class auth_method : std::uint8_t { password = 0, ticket = 1 };

// Aggregate (tests and callers build it field by field); never brace-initialise one inside a
// co_await expression.
struct login {
  std::uint8_t version = protocol_version;
  auth_method auth = auth_method::password;
  std::string user;
  std::string secret;  // password, or the 40 raw ticket bytes
  instance_id instance{};
  std::uint32_t keepalive_ms = 25000;
  // The services this instance answers (docs/protocol.md §7); none: it only places calls. A LOGIN
  // whose version is not protocol_version decodes with only `version` set.
  std::vector<std::string> services;
  bool calls_only = false;  // flags bit 0: this line places calls and is never rung
  bool answers() const { return !services.empty(); }
};
struct ping {
  std::uint64_t nonce = 0;
};
struct peers_request {};
struct demand {
  demand() = default;
  demand(std::string t, std::string s) : target(std::move(t)), service(std::move(s)) {}
  std::string target;
  std::string service;
};
struct accept {
  std::uint32_t session = 0;
};
struct reject {
  reject() = default;
  reject(std::uint32_t id, error_code c, std::string r)
      : session(id), code(c), reason(std::move(r)) {}
  std::uint32_t session = 0;
  error_code code = error_code::rejected;
  std::string reason;
};
struct logout {};
// Aggregate: never brace-initialised inside co_await.
struct announce {
  std::vector<std::string> services;
};
struct release {};
struct eof {};
struct terminate {
  terminate() = default;
  terminate(error_code c, std::string m) : code(c), message(std::move(m)) {}
  error_code code = error_code::ok;
  std::string message;
};
struct login_ok {
  std::uint32_t line = 0;
  std::uint32_t keepalive_ms = 0;
  std::uint16_t max_lines = 0;
  protocol::ticket ticket{};
};
struct pong {
  std::uint64_t nonce = 0;
};
struct peer_entry {
  std::string user;
  std::vector<std::string> services;  // sorted
  bool operator==(const peer_entry&) const = default;
};
// Aggregate: only ever returned from functions, never brace-initialised inside co_await.
struct peers {
  bool truncated = false;
  std::vector<peer_entry> users;
};
struct incoming {
  incoming() = default;
  incoming(std::uint32_t id, std::string c, std::string s)
      : session(id), caller(std::move(c)), service(std::move(s)) {}
  std::uint32_t session = 0;
  std::string caller;
  std::string service;
};
struct connected {
  connected() = default;
  connected(std::uint32_t id, std::string t) : session(id), target(std::move(t)) {}
  std::uint32_t session = 0;
  std::string target;
};
struct fail {
  fail() = default;
  fail(error_code c, std::string m) : code(c), message(std::move(m)) {}
  error_code code = error_code::ok;
  std::string message;
};
struct logged_out {
  logged_out() = default;
  logged_out(error_code c, std::string m) : code(c), message(std::move(m)) {}
  error_code code = error_code::ok;
  std::string message;
};
struct released {};
struct need_lines {
  std::uint16_t count = 0;
};
// The services an instance lost in one takeover (1..32).
struct service_lost {
  service_lost() = default;
  service_lost(std::vector<std::string> s, std::string m)
      : services(std::move(s)), message(std::move(m)) {}
  std::vector<std::string> services;
  std::string message;
};

using message = std::variant<login, ping, peers_request, demand, accept, reject, logout, release,
                             eof, terminate, login_ok, pong, peers, incoming, connected, fail,
                             logged_out, released, announce, need_lines, service_lost>;

// Bytes a PEERS entry takes in the payload.
std::size_t encoded_size(const peer_entry& e);

frame_type type_of(const message& m);

// Whole frame: header + payload. Throws protocol_violation if a field breaks its limit (a name
// that is not valid, text over 1 KiB): we never send what we would refuse to receive.
std::vector<std::uint8_t> encode(const message& m);

// Decodes a control payload of the given type. Throws protocol_violation for truncated, trailing,
// or invalid fields, and for frame_type::data (DATA payloads are streamed, never decoded).
message decode(frame_type type, std::span<const std::uint8_t> payload);

}  // namespace switchboard::protocol
