// One relay-side line: the coroutine that owns a device's TCP connection (docs/protocol.md §5).
//
// run() is the only reader of the line (or, while its session is offloaded, the stint's forwarding
// thread, relay/offload.hpp); every writer (this line's replies, the peer's forwarding,
// the hub) holds write_mutex_ for exactly one frame. Every deadline of the line (login, keep-alive
// silence, demand, release) is queued in the hub's single deadline timer (hub::schedule_deadline);
// a line has no timer or watchdog coroutine of its own.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "net/async_mutex.hpp"
#include "net/forward.hpp"
#include "net/line_stream.hpp"
#include "protocol/messages.hpp"
#include "relay/hub.hpp"
#include "relay/line_rules.hpp"
#include "relay/offload.hpp"

namespace switchboard::relay {

class line : public std::enable_shared_from_this<line> {
  friend class offload;

 public:
  using clock = std::chrono::steady_clock;

  // `address_key`: admission::address_key of the remote address; the line waits in admission
  // until it logs in (the server asked admission::make_room first).
  line(hub& h, net::line_stream stream, std::string remote, std::string address_key);
  ~line();

  // Serves the line until it closes, then tears it down. Owns a reference to itself meanwhile.
  awaitable<void> run();

  // Ends the line: LOGGED-OUT(code, text) if it can still be written at once, then close.
  // Peers of its session get TERMINATE(peer_code). Safe to call from any coroutine, repeatedly.
  void close(protocol::error_code code, std::string text,
             protocol::error_code peer_code = protocol::error_code::peer_lost);

  // The hub evicted this line's device (logout, duplicate login): close without touching it.
  void evicted(protocol::error_code code, std::string text);

  line_state state() const { return state_; }
  bool closing() const { return closing_; }
  clock::time_point last_rx() const { return live_.heard_at(); }
  std::uint32_t id() const { return id_; }
  const std::string& user() const { return user_; }
  device* owner() const { return device_; }
  // The caller's user ID if this line is the target of a session (ringing or paired), else empty.
  std::string_view called_by() const;
  // This line logged in with LOGIN flag bit 0: it places calls and is never rung.
  bool calls_only() const { return calls_only_; }
  // The session id of this line's demand while it waits for a line of its target, else 0.
  std::uint32_t waiting_for() const;
  std::string_view demanded_service() const;
  // The demand this (calling) line waits with got `target`, now vacant: it rings (INCOMING), and
  // the ring limit starts.
  void line_found(line& target);

  // What another line (or the deadline queue, or the server) tells this one. Each changes this
  // line's state at once and writes its frame from a coroutine of its own (notify()), so the
  // teller never waits for this line's flow control.
  // The caller's line: this (vacant) line is now ringing for `s` (INCOMING).
  void ring(std::shared_ptr<session> s, const std::string& caller);
  // The session ended without this side: RELEASING, TERMINATE; the agent answers RELEASE.
  void notify_terminated(protocol::error_code code, std::string text);
  // The demand this (calling) line made failed: VACANT, FAIL.
  void demand_failed(protocol::error_code code, std::string text);
  // Sends one control frame under the write mutex; false if the line is gone.
  awaitable<bool> send(const protocol::message& m);
  // send(m) from a coroutine of its own. Frames notified one after another are written in that
  // order: co_spawn starts the coroutine at once (Boost >= 1.81 dispatches inline), so it queues
  // on the FIFO write mutex before the caller goes on. A line with 8 notices unwritten (it does
  // not read) is closed instead.
  void notify(protocol::message m);
  // NEED-LINES(count) from a coroutine of its own, outside notify()'s cap: at most one is
  // waiting to be written per line, and it carries the newest count when it is written.
  void notify_need_lines(std::uint16_t count);

  // Called by the hub's deadline timer for the entry this line queued for `at`. Entries other
  // than the newest one are ignored; a deadline that has moved on is queued again.
  void deadline_due(clock::time_point at);

 private:
  // False if the client spoke the other transport (TLS to a plaintext relay, plaintext to a TLS
  // one): it was told so and the line is to be torn down.
  awaitable<bool> transport_matches();
  awaitable<void> authenticate();
  awaitable<void> refuse_login(const protocol::login& m, protocol::error_code code,
                               std::string text);
  awaitable<void> serve();
  // Every frame read from the agent (here or by a stint's pump) goes through the state table
  // (line_rules.hpp) before its handler.
  awaitable<void> dispatch(const protocol::message& m);

  // Moving a paired session to a forwarding thread (relay/offload.hpp). With forwarding threads,
  // a paired line's reader calls offload_or_wait() at every frame boundary: it starts a stint if
  // the peer's reader is parked and the session has forwarded offload_after_frames DATA frames,
  // else parks this reader in a readiness wait (where the peer may start one). What serve() does
  // next:
  struct next_frame {
    enum { again, read_here, frame, end } what;
    protocol::frame_header header{};  // `frame`: read by the stint, body still on the line
  };
  bool offload_candidate() const;
  bool can_offload_with(const line& peer) const;
  awaitable<next_frame> offload_or_wait();
  awaitable<next_frame> after_offload();
  // Queues next_deadline() with the hub unless an entry at or before it is already queued.
  void arm_deadline();
  clock::time_point next_deadline() const;
  awaitable<void> on_deadline();
  awaitable<void> teardown();

  // Handlers run only where rule_for() says `handle` (and never once the line is closing).
  awaitable<void> on(const protocol::ping& m);
  awaitable<void> on(const protocol::peers_request& m);
  awaitable<void> on(const protocol::demand& m);
  awaitable<void> on(const protocol::announce& m);
  awaitable<void> on(const protocol::accept& m);
  awaitable<void> on(const protocol::reject& m);
  awaitable<void> on(const protocol::logout& m);
  awaitable<void> on(const protocol::release& m);
  awaitable<void> on(const protocol::eof& m);
  awaitable<void> on(const protocol::terminate& m);
  template <typename M>
  awaitable<void> on(const M& m);  // frames the table never hands to a handler
  awaitable<void> on_data(std::uint32_t length);
  // Reads and drops a DATA payload that goes nowhere (releasing, or the peer is gone).
  awaitable<void> skip_data(std::uint32_t length);
  awaitable<void> send_pong();

  // Sets the state and its demand/release deadline (none by default) and re-arms the deadline.
  void set_state(line_state s, clock::time_point deadline = clock::time_point::max());
  // State changes that end a call, synchronous so that both lines of a session change in one step
  // before anything is written (a frame that arrives while a FAIL or TERMINATE is being written
  // then meets the new state). leave_calling: calling -> vacant, the session dropped;
  // start_releasing: ringing or paired -> releasing, the session marked terminated. Each returns
  // false (and does nothing) in any other state.
  bool leave_calling();
  bool start_releasing();
  void detach_session();
  std::string tag() const;  // "user/line#N" for logs

  hub& hub_;
  net::line_stream stream_;
  net::async_mutex write_mutex_;
  std::string remote_;
  std::string address_key_;  // admission::address_key of the remote address
  std::string user_;
  device* device_ = nullptr;
  std::uint32_t id_;
  line_state state_ = line_state::auth;
  net::liveness live_;
  std::chrono::milliseconds keepalive_{0};
  clock::time_point accepted_at_;
  clock::time_point state_deadline_ = clock::time_point::max();  // demand or release deadline
  // The earliest deadline entry this line has queued in the hub (max: none that counts).
  clock::time_point armed_at_ = clock::time_point::max();
  std::shared_ptr<session> session_;
  bool closing_ = false;
  bool calls_only_ = false;
  bool pong_queued_ = false;
  bool parked_ = false;  // the reader is parked at a frame boundary in offload_or_wait()
  // The stint this line is part of, from its start until this line's reader took its outcome.
  // While it runs, only the forwarding thread touches stream_.
  std::shared_ptr<offload> offload_;
  std::uint64_t pong_nonce_ = 0;
  std::uint32_t pending_notices_ = 0;  // notify() frames not yet written (bounded: see notify)
  std::optional<std::uint16_t> need_lines_due_;  // notify_need_lines(): the count to write next
  bool need_lines_writing_ = false;              // its writer coroutine runs
  clock::time_point peers_due_{};  // PEERS? pacing: when the answers given so far are paid for
  protocol::error_code close_code_ = protocol::error_code::ok;
  protocol::error_code peer_code_ = protocol::error_code::peer_lost;
};

}  // namespace switchboard::relay
