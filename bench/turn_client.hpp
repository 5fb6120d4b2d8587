// A minimal TURN client for the benchmarks: TCP allocations (RFC 6062) on a TURN server reached
// over TCP, long-term credentials (RFC 5389 §10.2). Enough to drive coturn as a contender: one
// allocation with a permission for one peer, and for each stream a Connect on the control
// connection plus a ConnectionBind on a new data connection, after which the data connection
// carries the peer's bytes as they are.
//
// Not a general TURN client: no UDP, no refreshes (runs are far shorter than the 600 s default
// lifetime), no FINGERPRINT, IPv4 peers only. Every read has the caller's overall timeout only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "net/asio.hpp"
#include "net/async_mutex.hpp"

namespace switchboard::bench {

struct turn_options {
  tcp::endpoint server;
  std::string user;
  std::string password;
  tcp::endpoint peer;  // IPv4; the server must allow it (coturn: --allow-loopback-peers)
};

struct stun_message;  // the STUN codec (RFC 5389 §6, §15) is internal to turn_client.cpp

class turn_client {
 public:
  // Opens the control connection, allocates (answering the 401 challenge) and installs a
  // permission for the peer. Throws std::runtime_error with the server's error code on refusal.
  static awaitable<std::unique_ptr<turn_client>> allocate(turn_options o);

  // Connect + ConnectionBind: a new TCP connection to the server, relayed to the peer. Connect
  // requests share the control connection one at a time; binds run in parallel.
  awaitable<tcp::socket> connect_peer();

 private:
  explicit turn_client(turn_options o, tcp::socket control);

  // Sends `m` (authenticated once realm and nonce are known) on `s` and reads the answer. A
  // 438 (stale nonce) answer updates the nonce and is retried once.
  awaitable<stun_message> transact(tcp::socket& s, stun_message m);
  std::vector<std::uint8_t> xor_peer_address() const;

  turn_options opts_;
  tcp::socket control_;
  net::async_mutex control_mutex_;
  std::string realm_;
  std::string nonce_;
  std::string key_;  // MD5(user:realm:password), set after the 401
};

}  // namespace switchboard::bench
