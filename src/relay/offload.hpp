// One stint of a paired session on a forwarding thread (docs/architecture.md "Threads").
//
// A stint starts when both of the session's line readers are at a frame boundary: the reader
// that starts it (on the control thread) has just finished a frame, and its peer's reader is
// parked in a readiness wait, having read nothing of its next frame, and neither line's write
// mutex is held. The stint moves both sockets to a forwarding thread's io_context and runs one
// pump per direction there. A pump forwards DATA frames; any other frame (PING, EOF, TERMINATE,
// ...) it reads whole and posts to its line's reader on the control thread, which handles it as
// always and then lets the pump go on (resume()). So one direction never waits for the other, as on
// the control thread. Writes the control thread makes to a line during a stint (PONG, EOF,
// TERMINATE) are done by the forwarding thread (write()), between the DATA frames the peer's pump
// writes; the writer holds the line's write mutex meanwhile, which keeps the control thread's
// frames in order also across the end of a stint. The stint ends when a line leaves the paired
// state or closes (stop(), close_line()) or a read fails; each pump ends at its next frame
// boundary. Then both sockets move back and each reader goes on with its line's outcome.
//
// Threads: while a stint runs, only its forwarding thread touches the two lines' streams and the
// session's two forward paths; the lines' liveness is atomic; everything else about the lines
// (state, session, hub) stays on the control thread. Data crosses between the threads only in
// posted handlers.
// Ownership: each line holds the stint (line::offload_) until its reader has taken its outcome
// (or the line is torn down); the stint holds both lines.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "net/asio.hpp"
#include "net/async_mutex.hpp"
#include "net/event.hpp"
#include "net/forward.hpp"
#include "protocol/messages.hpp"

namespace switchboard::relay {

class line;
struct session;

class offload : public std::enable_shared_from_this<offload> {
 public:
  enum class result {
    stopped,    // ended between frames: nothing of the next frame has been read
    end,        // the line ended cleanly between frames
    failed,     // reading the line failed: `error`
    violation,  // the line sent a frame that does not parse: `text`
  };
  struct outcome {
    result what = result::stopped;
    error_code error;
    std::string text;
    bool delivery_failed = false;  // writing to the peer failed: the peer must be closed
  };
  enum class write_result { written, failed, not_here };

  // Control thread. `starter` is the line whose reader calls this, `parked` the session's other
  // line, whose reader waits for readiness. Neither line's write mutex may be held (no frame is
  // being written on the control thread), neither line be closing. Moves both sockets to `worker`
  // (which aborts parked's wait) and starts the pumps.
  static std::shared_ptr<offload> start(const std::shared_ptr<session>& s, line& starter,
                                        line& parked, const asio::any_io_executor& worker);

  // Control thread, one waiter per line: the next control frame `l` sent (its pump waits for
  // resume()), or nothing once the stint has ended; then outcome_of(l) is final.
  awaitable<std::optional<protocol::message>> next_message(const line* l);
  const outcome& outcome_of(const line* l) { return side_of(l).out; }
  // Control thread: the message has been handled; `l`'s pump goes on, or (keep false) the stint
  // ends.
  void resume(const line* l, bool keep);
  bool running() const { return !done_; }
  // Control thread: ends the stint at both lines' next frame boundaries. Idempotent.
  void stop();
  // Control thread: closes l's socket on the forwarding thread (a close() during the stint: what
  // is being forwarded to or from it fails at once); the stint ends. No-op once it has ended.
  void close_line(line* l);
  // Control thread, holding l's write mutex: writes `m` to `l` on the forwarding thread, between
  // DATA frames. not_here: the stint ended first (completed() has run); write on the control
  // thread instead.
  awaitable<write_result> write(line* l, const protocol::message& m);

  struct key {};  // only start() makes stints
  offload(key, const std::shared_ptr<session>& s, line& starter, line& parked,
          asio::any_io_executor control, asio::any_io_executor worker);

 private:
  struct side {
    side(std::shared_ptr<relay::line> l, net::forward_path* p, const asio::any_io_executor& control,
         const asio::any_io_executor& worker)
        : owner(std::move(l)), path_out(p), news(control), resumed(worker) {}
    std::shared_ptr<relay::line> owner;
    net::forward_path* path_out;  // the session's path from this line to the other
    // Control thread.
    std::optional<protocol::message> inbox;  // a control frame for the reader
    net::event news;                         // set for inbox and at the end
    // Forwarding thread.
    net::async_mutex worker_mutex;     // one frame at a time: the peer's DATA, write() jobs
    net::event resumed;                // the reader has handled the posted frame
    bool waiting = false;              // parked between frames
    asio::cancellation_signal cancel;  // ends that wait
    outcome out;                       // final; read by the control thread only after completed()
  };

  // One write(): its result is posted back to the control thread.
  struct write_job {
    explicit write_job(const asio::any_io_executor& control) : done(control) {}
    net::event done;
    write_result result = write_result::failed;
  };

  // Forwarding thread: DATA frames from `from` to `to` until the stint ends.
  awaitable<void> pump(side& from, side& to);
  awaitable<void> run_write(side& s, protocol::message m, std::shared_ptr<write_job> job);
  void stop_pumps();    // forwarding thread
  void maybe_finish();  // forwarding thread: when the pumps and writes are done, sockets go back
  void completed();     // control thread
  side& side_of(const line* l) { return a_.owner.get() == l ? a_ : b_; }

  std::shared_ptr<session> session_;
  asio::any_io_executor control_;
  asio::any_io_executor worker_;
  side a_;  // the starter
  side b_;  // the parked line
  // Forwarding thread only.
  bool stopping_ = false;
  bool finished_ = false;
  int pumps_running_ = 2;
  int writes_running_ = 0;
  // Control thread only.
  bool done_ = false;
  bool stop_posted_ = false;
};

}  // namespace switchboard::relay
