// One agent-side line (internal to the agent library).
//
// run() owns the connection: connect, TLS, LOGIN, then it is the only reader. Writers (PING,
// session data, DEMAND...) serialise on write_mutex_, one frame each. A session_core is the state
// of one relayed session on this line; the line drops its reference on RELEASED, after which the
// session's handle sees an ended session and never touches the line's next session.
#pragma once

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/agent.hpp"
#include "net/async_mutex.hpp"
#include "net/event.hpp"
#include "net/line_stream.hpp"
#include "net/splice_pipe.hpp"

namespace switchboard::agent {

enum class line_state { connecting, vacant, querying, calling, ringing, paired, releasing, dead };

struct session_core {
  std::shared_ptr<agent_line> line;
  std::uint32_t id = 0;
  std::string peer;
  std::string service;
  std::optional<termination> ended;
  bool eof_received = false;  // the peer half-closed
  bool eof_sent = false;
  // A small DATA payload (at most net::small_payload bytes) that the line's reader found whole in
  // its read-ahead and took out, so that it could go on to the next frame at once instead of
  // waiting for the application (one scheduler turn less per message). The application reads
  // [inbox_pos, inbox.size()) before anything else. It holds at most one frame: a frame that
  // comes while it is not empty waits in the line as before, so flow control stays end to end.
  // Its capacity is kept for the session's next small frames: no allocation per frame.
  std::vector<std::uint8_t> inbox;
  std::size_t inbox_pos = 0;
  bool inbox_empty() const { return inbox_pos == inbox.size(); }
  // Copies what the inbox holds into `buf`, as much as fits; returns how many bytes.
  std::size_t take_inbox(asio::mutable_buffer buf);
};

class agent_line : public std::enable_shared_from_this<agent_line> {
 public:
  using clock = std::chrono::steady_clock;

  // A `calls_only` line places calls and is never rung (LOGIN flag bit 0).
  agent_line(std::shared_ptr<agent> owner, bool calls_only);
  ~agent_line();

  awaitable<void> run();
  void close();  // ends the line at once; waiters wake with an error
  // Closes a surplus vacant line on purpose: its end is not counted as a lost line.
  void retire() {
    retired_ = true;
    close();
  }
  bool retired() const { return retired_; }
  bool calls_only() const { return calls_only_; }

  asio::any_io_executor owner_executor() const { return owner_->executor(); }
  line_state state() const { return state_; }
  bool logged_in() const { return logged_in_; }
  clock::time_point vacant_since() const { return vacant_since_; }

  awaitable<session> demand(const std::string& peer, const std::string& service);
  awaitable<std::vector<protocol::peer_entry>> query_peers();
  awaitable<void> send_logout();
  awaitable<void> send_announce(const std::vector<std::string>& services);

  // Session operations (called through session, checked against the current session).
  awaitable<std::size_t> read_payload(session_core& s, asio::mutable_buffer buf);
  awaitable<void> write_data(session_core& s, asio::const_buffer buf);
  awaitable<void> send_eof(session_core& s);
  awaitable<void> end_session(session_core& s, protocol::error_code code, std::string message);
  // Zero-copy forms of read_payload and write_data (splice through `pipe`), plaintext lines only.
  bool plaintext() const { return stream_ && !stream_->tls(); }
  awaitable<std::size_t> splice_payload(session_core& s, tcp::socket& sink, net::splice_pipe& pipe);
  awaitable<std::size_t> splice_data(session_core& s, tcp::socket& source, net::splice_pipe& pipe);

 private:
  awaitable<void> connect_and_login();
  // Resolves, connects and shakes hands; throws agent_error naming the cause.
  awaitable<void> connect();
  agent_error handshake_failure(const std::string& what) const;
  // Plaintext: fails if the relay's first bytes are TLS.
  awaitable<void> expect_plaintext_answer();
  awaitable<std::exception_ptr> attempt_login();  // connect_and_login(), failure as a value
  awaitable<void> read_loop();
  awaitable<void> keepalive();
  awaitable<void> send_ping();
  awaitable<void> answer(protocol::incoming m);
  awaitable<bool> send(const protocol::message& m);
  awaitable<protocol::message> await_reply(line_state waiting_state);
  void handle(const protocol::message& m);
  void on_terminate(const protocol::terminate& m);
  awaitable<void> on_data(std::uint32_t length);
  bool path_silent() const;
  void set_state(line_state s);
  bool current(const session_core& s) const { return current_.get() == &s; }
  bool can_send(const session_core& s) const {
    return current(s) && !s.ended && !s.eof_sent && state_ == line_state::paired;
  }

  std::shared_ptr<agent> owner_;
  std::optional<net::line_stream> stream_;
  net::async_mutex write_mutex_;
  net::event reply_ready_;    // CONNECTED / FAIL / PEERS arrived, or the line died
  net::event data_ready_;     // DATA header or inbox, EOF, TERMINATE arrived, or the line died
  net::event data_consumed_;  // the application took the pending payload
  asio::steady_timer keepalive_timer_;
  line_state state_ = line_state::connecting;
  bool logged_in_ = false;
  bool retired_ = false;
  bool calls_only_ = false;
  bool logged_out_ = false;  // the relay closed the line with LOGGED-OUT(OK)
  std::chrono::milliseconds keepalive_{1000};
  std::optional<protocol::message> reply_;
  std::shared_ptr<session_core> current_;
  std::uint32_t ringing_session_ = 0;
  std::uint32_t pending_data_ = 0;  // unread payload bytes of the current DATA frame
  bool ping_outstanding_ = false;
  bool ping_in_flight_ = false;
  std::uint64_t ping_nonce_ = 0;
  clock::time_point ping_written_at_{};
  clock::time_point last_ping_{};
  clock::time_point vacant_since_ = clock::now();
  std::string error_;               // why the line died, for waiters
  const char* stage_ = "starting";  // of connect_and_login, for a timeout's message
  net::first_record first_record_;  // the relay's first TLS record header, while shaking hands
};

}  // namespace switchboard::agent
