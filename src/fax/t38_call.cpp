#include "fax/t38_call.hpp"

// spandsp.h wants these first (it uses TIFF and the C99 headers itself).
#include <inttypes.h>
#include <spandsp.h>
#include <tiffio.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "fax/document.hpp"
#include "fax/error.hpp"
#include "fax/tpkt.hpp"
#include "net/event.hpp"

namespace switchboard::fax {

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto tick = 20ms;                    // how often the terminal's clock advances
constexpr int samples_per_second = 8000;       // spandsp's time unit
constexpr auto flush_limit = 5s;               // after phase E, for the last packets to leave
constexpr std::size_t spandsp_path_max = 255;  // paths are copied into char[256]

struct terminal_free {
  void operator()(t38_terminal_state_t* s) const noexcept { t38_terminal_free(s); }
};

const char* coding_name(int encoding) {
  switch (encoding) {
    case T4_COMPRESSION_ITU_T4_1D:
      return "MH";
    case T4_COMPRESSION_ITU_T4_2D:
      return "MR";
    case T4_COMPRESSION_ITU_T6:
      return "MMR";
    default:
      return "";
  }
}

std::string hex_prefix(std::span<const std::uint8_t> bytes) {
  std::string s;
  char b[4];
  for (std::size_t i = 0; i < bytes.size() && i < 12; ++i) {
    std::snprintf(b, sizeof b, "%02x ", bytes[i]);
    s += b;
  }
  if (!s.empty()) s.pop_back();
  if (bytes.size() > 12) s += " ...";
  return s;
}

class t38_call {
 public:
  t38_call(byte_stream& stream, const call_options& o, int tx_pages,
           const asio::any_io_executor& ex)
      : stream_(stream),
        o_(o),
        sending_(o.direction == role::send),
        tx_pages_(tx_pages),
        executor_(ex),
        out_ready_(ex) {
    term_.reset(t38_terminal_init(nullptr, sending_ ? 1 : 0, &t38_call::on_tx_packet, this));
    if (!term_) throw fax_error("spandsp: cannot create a T.38 terminal");
    t30_ = t38_terminal_get_t30_state(term_.get());
    core_ = t38_terminal_get_t38_core_state(term_.get());

    t38_set_t38_version(core_, o.t38_version);
    t38_terminal_set_config(term_.get(), o.paced ? 0 : T38_TERMINAL_OPTION_NO_PACING);
    // spandsp adds and checks the TPKT header itself; over TCP there is no sequence to check.
    t38_set_data_transport_protocol(core_, T38_TRANSPORT_TCP_TPKT);
    t38_set_sequence_number_handling(core_, 0);

    t30_set_tx_ident(t30_, o.local_ident.c_str());
    t30_set_ecm_capability(t30_, o.ecm ? 1 : 0);
    t30_set_supported_compressions(t30_, T30_SUPPORT_T4_1D_COMPRESSION |
                                             T30_SUPPORT_T4_2D_COMPRESSION |
                                             (o.ecm ? T30_SUPPORT_T6_COMPRESSION : 0));
    if (sending_) {
      t30_set_tx_file(t30_, o.tx_file.c_str(), o.start_page, -1);
    } else {
      t30_set_rx_file(t30_, o.rx_file.c_str(), -1);
    }
    t30_set_phase_d_handler(t30_, &t38_call::on_phase_d, this);
    t30_set_phase_e_handler(t30_, &t38_call::on_phase_e, this);
    if (o.on_trace) t30_set_real_time_frame_handler(t30_, &t38_call::on_frame, this);
  }

  awaitable<void> run() {
    using namespace asio::experimental::awaitable_operators;
    started_ = clock_type::now();
    co_await (reader() || writer() || pump() || deadline());
    finished_ = clock_type::now();
    term_.reset();  // closes spandsp's files, so the result can check the received one
  }

  fax_result result();

 private:
  // --- spandsp callbacks: record and return, never call back into spandsp ---------------------

  static int on_tx_packet(t38_core_state_t*, void* user, const uint8_t* buf, int len, int count) {
    // `count` copies are redundancy for UDP: over TCP each packet goes out once.
    (void)count;
    auto& c = *static_cast<t38_call*>(user);
    if (len < static_cast<int>(tpkt::min_frame_size) || buf[0] != tpkt::version ||
        ((buf[2] << 8) | buf[3]) != len) {
      if (c.callback_error_.empty()) c.callback_error_ = "internal: spandsp built a bad TPKT frame";
      return -1;
    }
    c.out_.insert(c.out_.end(), buf, buf + len);
    c.out_ready_.set();
    return 0;
  }

  static int on_phase_d(t30_state_t* s, void* user, int result) {
    auto& c = *static_cast<t38_call*>(user);
    t30_stats_t st;
    t30_get_transfer_statistics(s, &st);
    c.note_stats(st);
    page_event ev;
    ev.response = t30_frametype(static_cast<uint8_t>(result));
    if (c.sending_) {
      ev.total = c.tx_pages_;
      switch (result) {
        case T30_MCF:
        case T30_RTP:
        case T30_PIP:
          ev.confirmed = true;
          ev.index = c.o_.start_page + st.pages_tx - 1;  // tx_end_page() has counted it
          break;
        case T30_RTN:
        case T30_PIN:
          ev.index = c.o_.start_page + st.pages_tx;
          break;
        default:
          return T30_ERR_OK;
      }
    } else {
      ev.confirmed = st.pages_rx > c.rx_pages_seen_;
      ev.index = ev.confirmed ? st.pages_rx - 1 : st.pages_rx;
      c.rx_pages_seen_ = st.pages_rx;
    }
    c.transferred_.insert(ev.index);
    if (ev.confirmed) c.confirmed_.insert(ev.index);
    if (c.o_.on_page) {
      try {
        c.o_.on_page(ev);
      } catch (const std::exception& e) {
        if (c.callback_error_.empty()) c.callback_error_ = std::string("on_page: ") + e.what();
      } catch (...) {
        if (c.callback_error_.empty()) c.callback_error_ = "on_page threw";
      }
    }
    return T30_ERR_OK;
  }

  static void on_phase_e(t30_state_t* s, void* user, int completion_code) {
    auto& c = *static_cast<t38_call*>(user);
    c.phase_e_ = true;
    c.completion_code_ = completion_code;
    t30_stats_t st;
    t30_get_transfer_statistics(s, &st);
    c.note_stats(st);
    if (const char* id = t30_get_rx_ident(s); id != nullptr) c.remote_ident_ = id;
  }

  static void on_frame(t30_state_t*, void* user, int incoming, const uint8_t* msg, int len) {
    auto& c = *static_cast<t38_call*>(user);
    if (!c.o_.on_trace || len < 3) return;
    try {
      c.o_.on_trace(std::string(incoming ? "rx " : "tx ") + t30_frametype(msg[2]));
    } catch (...) {
      // tracing must not end a call
    }
  }

  void note_stats(const t30_stats_t& st) {
    if (st.bit_rate > 0) bit_rate_ = st.bit_rate;
    ecm_ = st.error_correcting_mode != 0;
    if (st.encoding > 0) encoding_ = st.encoding;
    if (st.x_resolution > 0) x_res_ = st.x_resolution;
    if (st.y_resolution > 0) y_res_ = st.y_resolution;
  }

  // --- the four strands of a call -------------------------------------------------------------

  // Ends the call with an error (the first one wins); phase E comes at once, through spandsp.
  void fail(std::string why) {
    if (phase_e_) return;  // the call is over; nothing left to spoil
    if (error_.empty()) error_ = std::move(why);
    t30_terminate(t30_);
  }

  void check_callbacks() {
    if (!callback_error_.empty() && error_.empty()) fail(callback_error_);
  }

  // Waits until the enclosing || cancels it.
  awaitable<void> park() {
    asio::steady_timer forever(executor_, asio::steady_timer::time_point::max());
    co_await forever.async_wait(use_awaitable);
  }

  awaitable<void> reader() {
    std::vector<std::uint8_t> buf(8192);
    for (;;) {
      std::size_t n = 0;
      std::string failure;
      try {
        n = co_await stream_.read_some(asio::buffer(buf));
      } catch (const boost::system::system_error& e) {
        const auto code = e.code();
        if (code == asio::error::operation_aborted) throw;
        if (code == asio::error::connection_reset || code == asio::error::connection_aborted ||
            code == asio::error::broken_pipe) {
          n = 0;  // a close with unread data: still the far end hanging up
        } else {
          failure = std::string("connection failed while reading: ") + code.message();
        }
      }
      if (!failure.empty()) {
        fail(std::move(failure));
        break;
      }
      if (n == 0) {
        if (parser_.buffered() > 0) {
          try {
            parser_.check_end();
          } catch (const fax_error& e) {
            fail(e.what());
          }
        } else if (!phase_e_) {
          // spandsp knows whether this is a normal end (final DCN already exchanged) or a drop.
          peer_closed_ = true;
          t30_terminate(t30_);
        }
        break;
      }
      bytes_received_ += n;
      try {
        parser_.feed(std::span<const std::uint8_t>(buf.data(), n));
        while (auto f = parser_.next()) {
          ++packets_received_;
          const int len = static_cast<int>(f->bytes.size());
          const int used = t38_core_rx_ifp_stream(core_, f->bytes.data(), len,
                                                  static_cast<uint16_t>(packets_received_));
          if (used != len) {
            throw fax_error("malformed T.38 IFP packet #" + std::to_string(packets_received_) +
                            " (" + hex_prefix(f->payload()) + ")");
          }
        }
      } catch (const fax_error& e) {
        failure = e.what();
      }
      check_callbacks();
      if (!failure.empty()) {
        fail(std::move(failure));
        break;
      }
    }
    co_await park();
  }

  awaitable<void> writer() {
    std::vector<std::uint8_t> chunk;
    for (;;) {
      while (out_.empty()) co_await out_ready_.wait();
      chunk.clear();
      chunk.swap(out_);
      writing_ = true;
      std::string failure;
      try {
        co_await stream_.write(asio::buffer(chunk));
        bytes_sent_ += chunk.size();
      } catch (const boost::system::system_error& e) {
        if (e.code() == asio::error::operation_aborted) throw;
        failure = std::string("connection failed while writing: ") + e.code().message();
      }
      writing_ = false;
      if (!failure.empty()) {
        out_.clear();
        fail(std::move(failure));
        break;
      }
    }
    co_await park();
  }

  awaitable<void> pump() {
    asio::steady_timer timer(executor_);
    auto next = started_;
    std::int64_t samples_fed = 0;
    std::optional<clock_type::time_point> flush_until;
    for (;;) {
      next += tick;
      timer.expires_at(next);
      co_await timer.async_wait(use_awaitable);
      const auto now = clock_type::now();
      if (now - next > 1s) next = now;  // stalled: go on from here rather than burst
      check_callbacks();
      if (!terminal_done_) {
        // Advance spandsp's clock by the real time elapsed, so T.30's timers keep real time.
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - started_);
        const std::int64_t due = us.count() * samples_per_second / 1'000'000;
        const auto samples = static_cast<int>(std::clamp<std::int64_t>(due - samples_fed, 0, 8000));
        samples_fed = due;
        terminal_done_ = t38_terminal_send_timeout(term_.get(), samples) != 0;
        check_callbacks();
      }
      if (terminal_done_) {
        if (!error_.empty() || (out_.empty() && !writing_)) co_return;
        if (!flush_until) flush_until = now + flush_limit;
        if (now >= *flush_until) co_return;  // the far end stopped reading: give up
      }
    }
  }

  awaitable<void> deadline() {
    asio::steady_timer timer(executor_, started_ + o_.timeout);
    co_await timer.async_wait(use_awaitable);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(o_.timeout).count();
    fail("the call timed out after " + std::to_string(ms / 1000) + "." +
         std::to_string(ms % 1000 / 100) + " s");
    co_await park();
  }

  byte_stream& stream_;
  const call_options& o_;
  const bool sending_;
  const int tx_pages_;
  asio::any_io_executor executor_;

  std::unique_ptr<t38_terminal_state_t, terminal_free> term_;
  t30_state_t* t30_ = nullptr;
  t38_core_state_t* core_ = nullptr;

  tpkt::parser parser_;
  std::vector<std::uint8_t> out_;  // TPKT frames waiting for the writer
  net::event out_ready_;
  bool writing_ = false;
  bool terminal_done_ = false;
  bool peer_closed_ = false;

  std::string error_;
  std::string callback_error_;
  bool phase_e_ = false;
  int completion_code_ = -1;
  std::string remote_ident_;
  int bit_rate_ = 0;
  bool ecm_ = false;
  int encoding_ = 0;
  int x_res_ = 0;  // pixels per metre
  int y_res_ = 0;
  int rx_pages_seen_ = 0;
  std::set<int> transferred_;
  std::set<int> confirmed_;

  std::uint64_t bytes_sent_ = 0;
  std::uint64_t bytes_received_ = 0;
  std::uint64_t packets_received_ = 0;
  clock_type::time_point started_{};
  clock_type::time_point finished_{};
};

fax_result t38_call::result() {
  fax_result r;
  r.completion_code = completion_code_;
  r.completion_text =
      completion_code_ >= 0 ? t30_completion_code_to_str(completion_code_) : "no phase E";
  r.pages_transferred = static_cast<int>(transferred_.size());
  r.pages_confirmed = static_cast<int>(confirmed_.size());
  r.bit_rate = bit_rate_;
  r.ecm = ecm_;
  r.coding = coding_name(encoding_);
  r.remote_ident = remote_ident_;
  r.x_dpi = static_cast<int>(x_res_ * 0.0254 + 0.5);
  r.y_dpi = static_cast<int>(y_res_ * 0.0254 + 0.5);
  if (y_res_ > 0) {
    r.resolution = y_res_ >= 12000 ? "superfine" : y_res_ >= 6000 ? "fine" : "standard";
  }
  r.bytes_sent = bytes_sent_;
  r.bytes_received = bytes_received_;
  r.duration = std::chrono::duration_cast<std::chrono::milliseconds>(finished_ - started_);

  std::string why = error_;
  if (why.empty() && completion_code_ != T30_ERR_OK) {
    why = completion_code_ < 0 ? "the call ended without a T.30 result"
                               : std::string("T.30: ") + r.completion_text;
    if (peer_closed_) why = "the far end closed the connection (" + why + ")";
  }
  if (sending_) {
    r.total_pages = tx_pages_;
    r.next_page = tx_pages_;
    for (int p = o_.start_page; p < tx_pages_; ++p) {
      if (!confirmed_.contains(p)) {
        r.next_page = p;
        break;
      }
    }
    if (why.empty() && r.next_page < tx_pages_) {
      // Phase E can say OK although the last page was answered RTN, or never answered.
      why = "T.30 ended OK but page " + std::to_string(r.next_page + 1) + " of " +
            std::to_string(tx_pages_) + " was not confirmed";
    }
  } else {
    r.next_page = r.pages_confirmed;
    int in_file = 0;
    if (r.pages_transferred > 0) {
      try {
        in_file = tiff_page_count(o_.rx_file);
      } catch (const fax_error& e) {
        if (why.empty()) why = std::string("received file: ") + e.what();
      }
    }
    r.total_pages = in_file;
    if (why.empty() && r.pages_confirmed == 0) why = "no page was received";
    if (why.empty() && r.pages_confirmed != r.pages_transferred) {
      why = std::to_string(r.pages_transferred - r.pages_confirmed) + " of " +
            std::to_string(r.pages_transferred) + " pages were rejected";
    }
    if (why.empty() && in_file != r.pages_confirmed) {
      why = "the received file has " + std::to_string(in_file) + " pages, " +
            std::to_string(r.pages_confirmed) + " were confirmed";
    }
  }
  r.error = why;
  r.success = why.empty();
  return r;
}

void check_options(const call_options& o) {
  if (o.t38_version < 0 || o.t38_version > 3) {
    throw fax_error("T.38 version must be 0-3, not " + std::to_string(o.t38_version));
  }
  if (o.local_ident.size() > T30_MAX_IDENT_LEN) {
    throw fax_error("station identity \"" + o.local_ident + "\" is longer than " +
                    std::to_string(T30_MAX_IDENT_LEN) + " characters");
  }
  for (const char ch : o.local_ident) {
    if (ch < 0x20 || ch > 0x7E) {
      throw fax_error("station identity must be printable ASCII (digits, '+' and spaces)");
    }
  }
  if (o.timeout <= std::chrono::milliseconds::zero()) throw fax_error("timeout must be positive");
  const std::string& path = o.direction == role::send ? o.tx_file : o.rx_file;
  if (path.empty()) {
    throw fax_error(o.direction == role::send ? "no file to send" : "no file to receive into");
  }
  if (path.size() > spandsp_path_max) {
    throw fax_error(path.substr(0, 40) + "...: path longer than spandsp's limit of " +
                    std::to_string(spandsp_path_max) + " bytes");
  }
}

}  // namespace

awaitable<fax_result> run_t38_call(byte_stream& stream, const call_options& options) {
  // Copied before the first suspension point: the caller's object may be a temporary.
  const call_options o = options;
  check_options(o);
  int tx_pages = 0;
  if (o.direction == role::send) {
    tx_pages = validate_tiff_f(o.tx_file);
    if (o.start_page < 0 || o.start_page >= tx_pages) {
      throw fax_error(o.tx_file + ": start page " + std::to_string(o.start_page + 1) +
                      " is outside the file's " + std::to_string(tx_pages) + " pages");
    }
  }
  const auto ex = co_await asio::this_coro::executor;
  t38_call call(stream, o, tx_pages, ex);
  co_await call.run();
  co_return call.result();
}

}  // namespace switchboard::fax
