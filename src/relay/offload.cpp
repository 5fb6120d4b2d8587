#include "relay/offload.hpp"

#include "net/framed.hpp"
#include "relay/hub.hpp"
#include "relay/line.hpp"

namespace switchboard::relay {

offload::offload(key, const std::shared_ptr<session>& s, line& starter, line& parked,
                 asio::any_io_executor control, asio::any_io_executor worker)
    : session_(s),
      control_(std::move(control)),
      worker_(std::move(worker)),
      a_(starter.shared_from_this(), s->path_to(&parked), control_, worker_),
      b_(parked.shared_from_this(), s->path_to(&starter), control_, worker_) {}

std::shared_ptr<offload> offload::start(const std::shared_ptr<session>& s, line& starter,
                                        line& parked, const asio::any_io_executor& worker) {
  auto st = std::make_shared<offload>(key{}, s, starter, parked, starter.hub_.executor(), worker);
  starter.offload_ = st;
  parked.offload_ = st;
  // From here until completed(), the control thread leaves both streams alone.
  starter.stream_.rebind(worker);
  parked.stream_.rebind(worker);
  asio::co_spawn(
      worker, [st] { return st->pump(st->a_, st->b_); }, asio::detached);
  asio::co_spawn(
      worker, [st] { return st->pump(st->b_, st->a_); }, asio::detached);
  return st;
}

// --- control thread ---------------------------------------------------------------------------

awaitable<std::optional<protocol::message>> offload::next_message(const line* l) {
  side& s = side_of(l);
  for (;;) {
    // A frame posted before the end is handed over first (posts arrive in order).
    if (s.inbox) {
      std::optional<protocol::message> m = std::move(s.inbox);
      s.inbox.reset();
      co_return m;
    }
    if (done_) co_return std::nullopt;
    co_await s.news.wait();
  }
}

void offload::resume(const line* l, bool keep) {
  if (done_) return;
  if (!keep) stop_posted_ = true;
  asio::post(worker_, [self = shared_from_this(), &s = side_of(l), keep] {
    if (!keep) self->stop_pumps();
    s.resumed.set();
  });
}

void offload::stop() {
  if (done_ || stop_posted_) return;
  stop_posted_ = true;
  asio::post(worker_, [self = shared_from_this()] { self->stop_pumps(); });
}

void offload::close_line(line* l) {
  if (done_) return;
  stop_posted_ = true;
  asio::post(worker_, [self = shared_from_this(), l] {
    // Too late: the sockets are on their way back, and completed() closes it.
    if (self->finished_) return;
    self->stop_pumps();
    l->stream_.close();
  });
}

awaitable<offload::write_result> offload::write(line* l, const protocol::message& m) {
  if (done_) co_return write_result::not_here;
  auto job = std::make_shared<write_job>(control_);
  asio::co_spawn(
      worker_,
      [self = shared_from_this(), &s = side_of(l), m, job] { return self->run_write(s, m, job); },
      asio::detached);
  co_await job->done.wait();
  co_return job->result;
}

void offload::completed() {
  done_ = true;
  for (side* s : {&a_, &b_}) {
    // A close() whose close_line() arrived after the pumps had ended.
    if (s->owner->closing_) s->owner->stream_.close();
    s->news.set();
  }
}

// --- forwarding thread ------------------------------------------------------------------------

awaitable<void> offload::pump(side& from, side& to) {
  net::line_stream& in = from.owner->stream_;
  net::line_stream& out = to.owner->stream_;
  try {
    while (!stopping_) {
      if (!in.read_buffered()) {
        // On a plaintext line this reads the next frame (header and a small payload) into the
        // line's read-ahead; what it read stays with the line if the stint ends here.
        from.waiting = true;
        const asio::cancellation_slot slot = from.cancel.slot();
        const boost::system::error_code ec = co_await in.wait_readable(slot);
        from.waiting = false;
        if (stopping_) break;  // nothing of the next frame has been taken from the line
        if (ec) throw boost::system::system_error(ec);
      }
      const auto h = co_await net::read_header(in);
      if (!h) {
        from.out.what = result::end;
        break;
      }
      from.owner->live_.heard();
      if (h->type != protocol::frame_type::data) {
        // The reader handles it on the control thread; this direction waits for it (frames of
        // one line are handled in order), the other goes on.
        auto msg = co_await net::read_control(in, *h);
        asio::post(control_, [self = shared_from_this(), &from, m = std::move(msg)]() mutable {
          from.inbox = std::move(m);
          from.news.set();
        });
        co_await from.resumed.wait();
        continue;
      }
      auto guard = co_await to.worker_mutex.lock();
      net::line_stream* dst = out.is_open() ? &out : nullptr;
      // Sets the line's read-ahead for the next header (net::forward_path::forward).
      const bool delivered = co_await from.path_out->forward(in, dst, h->length, from.owner->live_);
      if (dst && !delivered) {
        from.out.delivery_failed = true;
        break;
      }
    }
  } catch (const protocol::protocol_violation& e) {
    from.out.what = result::violation;
    from.out.text = e.what();
  } catch (const boost::system::system_error& e) {
    from.out.what = result::failed;
    from.out.error = e.code();
  } catch (const std::exception&) {
    // Out of memory or a bug: the line is lost, but the stint must still end.
    from.out.what = result::failed;
    from.out.error = boost::system::errc::make_error_code(boost::system::errc::io_error);
  }
  stop_pumps();  // the other direction ends at its next frame boundary
  --pumps_running_;
  maybe_finish();
}

awaitable<void> offload::run_write(side& s, protocol::message m, std::shared_ptr<write_job> job) {
  write_result r = write_result::not_here;
  if (!finished_) {
    ++writes_running_;
    {
      auto guard = co_await s.worker_mutex.lock();
      r = write_result::failed;
      if (s.owner->stream_.is_open()) {
        try {
          co_await net::write_message(s.owner->stream_, m);
          r = write_result::written;
        } catch (const boost::system::system_error&) {
        }
      }
    }
    --writes_running_;
    maybe_finish();
  }
  asio::post(control_, [job, r] {
    job->result = r;
    job->done.set();
  });
}

void offload::stop_pumps() {
  stopping_ = true;
  for (side* s : {&a_, &b_}) {
    if (s->waiting) s->cancel.emit(asio::cancellation_type::terminal);
    s->resumed.set();  // a pump waiting for its reader ends too
  }
}

void offload::maybe_finish() {
  if (finished_ || pumps_running_ > 0 || writes_running_ > 0) return;
  finished_ = true;
  a_.owner->stream_.rebind(control_);
  b_.owner->stream_.rebind(control_);
  asio::post(control_, [self = shared_from_this()] { self->completed(); });
}

}  // namespace switchboard::relay
