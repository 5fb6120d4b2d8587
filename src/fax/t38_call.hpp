// One fax call: a spandsp T.38 terminal (T.30, T.4/T.6, ECM) sending or receiving a TIFF-F file as
// IFP packets in TPKT frames over a byte stream (T.38 over TCP).
//
// Transport-agnostic: give it any byte_stream (a TCP socket, a relayed agent::session). It never
// closes or half-closes the stream; the caller does that after the call returns.
//
//   fax::call_options opts;            // a named local (see the GCC 12 coroutine rule)
//   opts.direction = fax::role::send;
//   opts.tx_file = "/var/spool/fax/q17.tif";
//   fax::tcp_byte_stream stream(socket);
//   const fax::fax_result r = co_await fax::run_t38_call(stream, opts);
//   if (r.success) ...; else resume later with opts.start_page = r.next_page;
//
// Runs on the awaiting coroutine's executor, which must not run handlers in parallel (one thread,
// or a strand): spandsp's state is not thread-safe. Never blocks the thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "fax/byte_stream.hpp"
#include "net/asio.hpp"

namespace switchboard::fax {

enum class role { send, receive };

// One page reached the end of phase D.
struct page_event {
  int index = 0;           // 0-based page index in the transmitted file / the received file
  bool confirmed = false;  // sender: the receiver answered MCF (or RTP); receiver: page accepted
  std::string response;    // the T.30 post-page response or command: "MCF", "RTN", "EOP", ...
  int total = -1;          // pages in the tx file; -1 when receiving
};

// Not an aggregate on purpose (GCC 12 coroutine rule): fill in a named local.
class call_options {
 public:
  call_options() = default;

  role direction = role::send;
  // Sender: a TIFF-F file (validate_tiff_f must accept it) and the 0-based page to start at;
  // a retry resumes at fax_result::next_page of the previous attempt.
  std::string tx_file;
  int start_page = 0;
  // Receiver: where to write the received TIFF-F (created when the first page starts).
  std::string rx_file;
  // T.30 station identity (TSI when sending, CSI when receiving): up to 20 characters, normally
  // digits, '+' and spaces.
  std::string local_ident;
  // Error correction mode; with it pages are coded T.6 (MMR), without it T.4 1-D/2-D (MH/MR).
  bool ecm = true;
  // Paced: IFP packets at the real-time rate of the negotiated modem, as a T.38 gateway far end
  // expects. Unpaced (default): as fast as TCP takes them, for a terminal at the far end.
  bool paced = false;
  // T.38 ASN.1 version of the IFP encoding, 0-3. Nothing negotiates it over raw TCP: both ends
  // must be configured alike. 0 (1998) is spandsp's default; versions 0 and 1-3 do not
  // interoperate.
  int t38_version = 0;
  // The whole call, from the first packet to phase E. T.30's own timers (T1 35 s, T2, T4) end a
  // silent call much sooner; this is the backstop.
  std::chrono::milliseconds timeout = std::chrono::hours(1);
  // Called synchronously at the end of each page (must not block; exceptions fail the call).
  std::function<void(const page_event&)> on_page;
  // Optional: one line per T.30 frame ("rx DIS", "tx MCF", ...), for logs.
  std::function<void(const std::string&)> on_trace;
};

struct fax_result {
  // Phase E said OK, no transport error, and every page was confirmed: the only state in which a
  // send job is done.
  bool success = false;
  int completion_code = -1;     // T30_ERR_* of phase E (0 = OK), -1 if phase E never came
  std::string completion_text;  // t30_completion_code_to_str()
  std::string error;            // why success is false, for people ("" when it is true)

  int pages_transferred = 0;  // pages whose post-page exchange completed, confirmed or not
  int pages_confirmed = 0;
  // Sender: pages in the tx file. Receiver: pages in the received file.
  int total_pages = 0;
  // Sender: the first page index not confirmed, == total_pages when all were (pass it as
  // start_page to resume). Receiver: the number of pages received.
  int next_page = 0;

  int bit_rate = 0;          // of the image data, bit/s
  bool ecm = false;          // ECM was used
  std::string coding;        // "MH", "MR", "MMR" or "" if no page started
  std::string remote_ident;  // the far end's TSI/CSI
  int x_dpi = 0;             // of the last page
  int y_dpi = 0;
  std::string resolution;  // "standard", "fine", "superfine" or ""

  std::uint64_t bytes_sent = 0;  // on the wire, TPKT headers included
  std::uint64_t bytes_received = 0;
  std::chrono::milliseconds duration{0};
};

// Throws fax_error before any I/O if the options are invalid (bad ident or version, a path
// spandsp cannot hold, a tx file that is not sendable TIFF-F, start_page out of range).
// Everything that happens once the call runs is reported in the result, never thrown, except
// cancellation of the awaiting coroutine.
awaitable<fax_result> run_t38_call(byte_stream& stream, const call_options& options);

}  // namespace switchboard::fax
