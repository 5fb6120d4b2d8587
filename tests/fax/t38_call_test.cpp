// T.38 calls between two spandsp terminals over loopback TCP, in one io_context.
#include "fax/t38_call.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "fax/document.hpp"
#include "fax/tpkt.hpp"
#include "fax_test_util.hpp"

namespace switchboard::fax {
namespace {

using namespace std::chrono_literals;
using test::temp_dir;

// The documents the call tests send, made on first use (each ctest process runs one test, and
// rendering PDF pages under ASan takes seconds).
class documents {
 public:
  static documents& get() {
    static documents d;
    return d;
  }
  std::string file(int pages, resolution res) {
    const std::lock_guard lock(mutex_);
    const std::string tif =
        dir_ / (std::to_string(pages) + (res == resolution::fine ? "-fine.tif" : "-std.tif"));
    if (!test::file_exists(tif)) {
      const std::string pdf = dir_ / (std::to_string(pages) + ".pdf");
      if (!test::file_exists(pdf)) test::write_pdf(pdf, pages);
      to_tiff_f(pdf, tif, res);
    }
    return tif;
  }

 private:
  std::mutex mutex_;
  temp_dir dir_;
};

struct call_outcome {
  std::optional<fax_result> result;
  std::string exception;
  std::vector<page_event> pages;
};

call_options sender(const std::string& file) {
  call_options o;
  o.direction = role::send;
  o.tx_file = file;
  o.local_ident = "+1 555 0100";
  o.timeout = 60s;
  return o;
}

call_options receiver(const std::string& file) {
  call_options o;
  o.direction = role::receive;
  o.rx_file = file;
  o.local_ident = "+1 555 0199";
  o.timeout = 60s;
  return o;
}

// Runs the side's call on `socket`, then closes the socket (as a daemon would).
awaitable<void> run_side(tcp::socket& socket, call_options& opts, call_outcome& out) {
  opts.on_page = [&out](const page_event& e) { out.pages.push_back(e); };
  tcp_byte_stream stream(socket);
  try {
    out.result = co_await run_t38_call(stream, opts);
  } catch (const std::exception& e) {
    out.exception = e.what();
  }
  error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

struct pair_outcome {
  call_outcome tx;
  call_outcome rx;
  std::chrono::milliseconds wall{0};
};

// Between the two terminals when set: forwards whole TPKT frames, optionally damaging them.
struct proxy_options {
  std::size_t cut_after = SIZE_MAX;  // sender->receiver bytes after which both links are closed
  double corrupt = 0;                // probability that a frame's IFP payload gets a flipped byte
  bool data_only = false;            // damage only bytes after the IFP header of larger packets
  bool image_only = false;           // damage every image data packet (not V.21, not TCF zeros)
  unsigned seed = 1;
  std::vector<std::vector<std::uint8_t>>* frames = nullptr;  // sender->receiver frames, if set
};

struct proxy_state {
  tcp::socket& a;
  tcp::socket& b;
  const proxy_options& opts;
  std::mt19937 rng;
  std::size_t forwarded = 0;
  void close_all() {
    error_code ignored;
    a.close(ignored);
    b.close(ignored);
  }
};

awaitable<void> forward(proxy_state& st, tcp::socket& from, tcp::socket& to, bool from_sender) {
  std::vector<std::uint8_t> buf(4096);
  tpkt::parser parser;
  for (;;) {
    auto [ec, n] = co_await from.async_read_some(asio::buffer(buf), asio::as_tuple(use_awaitable));
    if (ec || n == 0) break;
    std::vector<std::uint8_t> out;
    parser.feed(std::span<const std::uint8_t>(buf.data(), n));
    while (auto f = parser.next()) {
      std::vector<std::uint8_t> payload(f->payload().begin(), f->payload().end());
      if (st.opts.image_only && from_sender && payload.size() > 40 && (payload[0] & 0x40) != 0 &&
          ((payload[0] >> 1) & 0x0F) != 0 &&
          std::any_of(payload.begin() + 6, payload.end(), [](std::uint8_t b) { return b != 0; })) {
        for (std::size_t i = 6; i < payload.size(); i += 7) payload[i] ^= 0x5A;
      }
      if (st.opts.corrupt > 0 && std::uniform_real_distribution<>(0, 1)(st.rng) < st.opts.corrupt) {
        if (!st.opts.data_only) {
          payload[st.rng() % payload.size()] ^= static_cast<std::uint8_t>(1 + st.rng() % 255);
        } else if (payload.size() > 8) {
          payload[6 + st.rng() % (payload.size() - 6)] ^=
              static_cast<std::uint8_t>(1 + st.rng() % 255);
        }
      }
      if (from_sender && st.opts.frames != nullptr) st.opts.frames->push_back(payload);
      tpkt::encode(payload, out);
    }
    if (from_sender) {
      st.forwarded += n;
      if (st.forwarded > st.opts.cut_after) break;
    }
    auto [wec, wn] =
        co_await asio::async_write(to, asio::buffer(out), asio::as_tuple(use_awaitable));
    if (wec) break;
  }
  st.close_all();
}

// A sender and a receiver connected through 127.0.0.1 (and the proxy, if given).
pair_outcome run_pair(call_options tx_opts, call_options rx_opts,
                      const proxy_options* proxy = nullptr) {
  asio::io_context io;
  const tcp::endpoint loopback(asio::ip::make_address("127.0.0.1"), 0);
  tcp::acceptor acceptor(io, loopback);
  tcp::acceptor proxy_acceptor(io, loopback);
  tcp::socket tx_socket(io);
  tcp::socket rx_socket(io);
  tcp::socket proxy_in(io);
  tcp::socket proxy_out(io);
  proxy_options no_proxy;
  proxy_state st{proxy_in, proxy_out, proxy != nullptr ? *proxy : no_proxy,
                 std::mt19937(proxy != nullptr ? proxy->seed : 1)};
  pair_outcome out;
  const auto start = std::chrono::steady_clock::now();
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        co_await acceptor.async_accept(rx_socket, use_awaitable);
        co_await run_side(rx_socket, rx_opts, out.rx);
      },
      asio::detached);
  if (proxy != nullptr) {
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
          co_await proxy_acceptor.async_accept(proxy_in, use_awaitable);
          co_await proxy_out.async_connect(acceptor.local_endpoint(), use_awaitable);
          using namespace asio::experimental::awaitable_operators;
          co_await (forward(st, proxy_in, proxy_out, true) &&
                    forward(st, proxy_out, proxy_in, false));
        },
        asio::detached);
  }
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        const tcp::endpoint to =
            proxy != nullptr ? proxy_acceptor.local_endpoint() : acceptor.local_endpoint();
        co_await tx_socket.async_connect(to, use_awaitable);
        co_await run_side(tx_socket, tx_opts, out.tx);
      },
      asio::detached);
  io.run_for(120s);
  out.wall = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  return out;
}

// One terminal against a scripted peer that gets the other end of the connection.
using peer_script = std::function<awaitable<void>(tcp::socket&)>;

call_outcome run_against(call_options opts, const peer_script& peer,
                         std::chrono::milliseconds* wall = nullptr) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket ours(io);
  tcp::socket theirs(io);
  call_outcome out;
  const auto start = std::chrono::steady_clock::now();
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        co_await acceptor.async_accept(theirs, use_awaitable);
        co_await peer(theirs);
      },
      asio::detached);
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        co_await ours.async_connect(acceptor.local_endpoint(), use_awaitable);
        co_await run_side(ours, opts, out);
        error_code ignored;
        theirs.close(ignored);  // ends the peer's reads
      },
      asio::detached);
  io.run_for(60s);
  if (wall != nullptr) {
    *wall = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start);
  }
  return out;
}

// Reads (and drops) everything until the connection goes.
awaitable<void> drain(tcp::socket& s) {
  std::vector<std::uint8_t> buf(4096);
  for (;;) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), asio::as_tuple(use_awaitable));
    if (ec || n == 0) co_return;
  }
}

awaitable<void> send_then_drain(tcp::socket& s, std::vector<std::uint8_t> bytes) {
  co_await asio::async_write(s, asio::buffer(bytes), use_awaitable);
  co_await drain(s);
}

awaitable<void> send_then_close(tcp::socket& s, std::vector<std::uint8_t> bytes) {
  co_await asio::async_write(s, asio::buffer(bytes), use_awaitable);
  error_code ignored;
  s.shutdown(tcp::socket::shutdown_send, ignored);
  co_await drain(s);
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

void expect_pages_identical(const std::string& sent, int start_page, const std::string& received,
                            int pages) {
  ASSERT_EQ(tiff_page_count(received), pages);
  for (int i = 0; i < pages; ++i) {
    const bitmap want = decode_tiff_page(sent, start_page + i);
    const bitmap got = decode_tiff_page(received, i);
    EXPECT_EQ(got.width, want.width);
    EXPECT_EQ(got.height, want.height);
    EXPECT_EQ(differing_pixels(want, got), 0) << "page " << i + 1;
  }
}

void expect_all_confirmed(const call_outcome& side, int first, int pages, int total) {
  ASSERT_EQ(side.pages.size(), static_cast<std::size_t>(pages));
  for (int i = 0; i < pages; ++i) {
    const page_event& e = side.pages[static_cast<std::size_t>(i)];
    EXPECT_EQ(e.index, first + i);
    EXPECT_TRUE(e.confirmed) << "page " << e.index << " " << e.response;
    EXPECT_EQ(e.total, total);
  }
}

// --- successful calls ------------------------------------------------------------------------

struct call_case {
  int pages;
  bool ecm;
  resolution res;
};

void PrintTo(const call_case& c, std::ostream* os) {
  *os << c.pages << " pages, " << (c.ecm ? "ECM" : "no ECM") << ", "
      << (c.res == resolution::fine ? "fine" : "standard");
}

std::string case_name(const testing::TestParamInfo<call_case>& info) {
  return std::to_string(info.param.pages) + "Pages" + (info.param.ecm ? "Ecm" : "NoEcm") +
         (info.param.res == resolution::fine ? "Fine" : "Standard");
}

class T38Call : public testing::TestWithParam<call_case> {};

TEST_P(T38Call, EveryPageArrivesIdenticalAndConfirmed) {
  const call_case c = GetParam();
  const std::string file = documents::get().file(c.pages, c.res);
  temp_dir d;
  call_options tx = sender(file);
  tx.ecm = c.ecm;
  call_options rx = receiver(d / "rx.tif");
  rx.ecm = c.ecm;
  const pair_outcome o = run_pair(tx, rx);

  ASSERT_TRUE(o.tx.result) << o.tx.exception;
  ASSERT_TRUE(o.rx.result) << o.rx.exception;
  const fax_result& t = *o.tx.result;
  const fax_result& r = *o.rx.result;
  EXPECT_TRUE(t.success) << t.error;
  EXPECT_TRUE(r.success) << r.error;
  EXPECT_EQ(t.completion_code, 0);
  EXPECT_EQ(t.completion_text, "OK");
  EXPECT_EQ(r.completion_code, 0);
  EXPECT_EQ(t.total_pages, c.pages);
  EXPECT_EQ(t.pages_transferred, c.pages);
  EXPECT_EQ(t.pages_confirmed, c.pages);
  EXPECT_EQ(t.next_page, c.pages);
  EXPECT_EQ(r.pages_confirmed, c.pages);
  EXPECT_EQ(r.total_pages, c.pages);
  EXPECT_EQ(t.remote_ident, "+1 555 0199");
  EXPECT_EQ(r.remote_ident, "+1 555 0100");
  EXPECT_EQ(t.ecm, c.ecm);
  EXPECT_EQ(t.coding, c.ecm ? "MMR" : "MR");
  EXPECT_EQ(r.coding, t.coding);
  EXPECT_EQ(t.bit_rate, 14400);
  EXPECT_EQ(t.resolution, c.res == resolution::fine ? "fine" : "standard");
  EXPECT_EQ(r.resolution, t.resolution);
  EXPECT_EQ(t.x_dpi, 204);
  EXPECT_EQ(t.y_dpi, c.res == resolution::fine ? 196 : 98);
  EXPECT_EQ(t.bytes_sent, r.bytes_received);
  EXPECT_EQ(r.bytes_sent, t.bytes_received);
  EXPECT_GT(t.bytes_sent, 1000U * static_cast<unsigned>(c.pages));
  expect_all_confirmed(o.tx, 0, c.pages, c.pages);
  expect_all_confirmed(o.rx, 0, c.pages, -1);
  expect_pages_identical(file, 0, d / "rx.tif", c.pages);
  if (c.pages == 10) {
    std::cout << "[ measured ] 10-page call (" << (c.ecm ? "ECM/MMR" : "no ECM/MR") << ", "
              << (c.res == resolution::fine ? "fine" : "standard") << "): wall " << o.wall.count()
              << " ms, sender " << t.duration.count() << " ms, wire bytes sender->receiver "
              << t.bytes_sent << ", receiver->sender " << r.bytes_sent << "\n";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Fax, T38Call,
    testing::Values(call_case{1, true, resolution::fine}, call_case{1, false, resolution::standard},
                    call_case{1, true, resolution::standard}, call_case{1, false, resolution::fine},
                    call_case{10, true, resolution::fine}, call_case{10, false, resolution::fine},
                    call_case{10, true, resolution::standard},
                    call_case{10, false, resolution::standard}),
    case_name);

TEST(T38CallResume, StartPageSendsTheRest) {
  const std::string file = documents::get().file(10, resolution::fine);
  temp_dir d;
  call_options tx = sender(file);
  tx.start_page = 7;
  const pair_outcome o = run_pair(tx, receiver(d / "rx.tif"));
  ASSERT_TRUE(o.tx.result && o.rx.result);
  EXPECT_TRUE(o.tx.result->success) << o.tx.result->error;
  EXPECT_TRUE(o.rx.result->success) << o.rx.result->error;
  EXPECT_EQ(o.tx.result->pages_confirmed, 3);
  EXPECT_EQ(o.tx.result->next_page, 10);
  expect_all_confirmed(o.tx, 7, 3, 10);
  expect_pages_identical(file, 7, d / "rx.tif", 3);
}

TEST(T38CallVersion, Version3AtBothEnds) {
  const std::string file = documents::get().file(1, resolution::fine);
  temp_dir d;
  call_options tx = sender(file);
  tx.t38_version = 3;
  call_options rx = receiver(d / "rx.tif");
  rx.t38_version = 3;
  const pair_outcome o = run_pair(tx, rx);
  ASSERT_TRUE(o.tx.result && o.rx.result);
  EXPECT_TRUE(o.tx.result->success) << o.tx.result->error;
  EXPECT_TRUE(o.rx.result->success) << o.rx.result->error;
  expect_pages_identical(file, 0, d / "rx.tif", 1);
}

// --- failures --------------------------------------------------------------------------------

TEST(T38CallFailure, GarbageEndsTheCallAtOnce) {
  temp_dir d;
  const std::string http = "GET / HTTP/1.1\r\nHost: fax\r\n\r\n";
  std::chrono::milliseconds wall{0};
  const call_outcome o = run_against(
      receiver(d / "rx.tif"),
      [&](tcp::socket& s) {
        return send_then_drain(s, {http.begin(), http.end()});
      },
      &wall);
  ASSERT_TRUE(o.result) << o.exception;
  EXPECT_FALSE(o.result->success);
  EXPECT_TRUE(contains(o.result->error, "TPKT: bad version 71")) << o.result->error;
  EXPECT_NE(o.result->completion_code, 0);
  EXPECT_LT(wall, 2s);
}

TEST(T38CallFailure, MalformedIfpEndsTheCall) {
  temp_dir d;
  std::chrono::milliseconds wall{0};
  const call_outcome o = run_against(
      sender(documents::get().file(1, resolution::fine)),
      [&](tcp::socket& s) {
        return send_then_drain(s, {3, 0, 0, 6, 0xFF, 0xFF});
      },
      &wall);
  ASSERT_TRUE(o.result) << o.exception;
  EXPECT_FALSE(o.result->success);
  EXPECT_TRUE(contains(o.result->error, "malformed T.38 IFP packet #1 (ff ff)")) << o.result->error;
  EXPECT_LT(o.result->duration, 200ms);
  EXPECT_EQ(o.result->next_page, 0);
  EXPECT_LT(wall, 2s);
}

TEST(T38CallFailure, TruncatedFrameThenClose) {
  temp_dir d;
  const call_outcome o = run_against(receiver(d / "rx.tif"), [&](tcp::socket& s) {
    return send_then_close(s, {3, 0, 0, 40, 1, 2, 3});
  });
  ASSERT_TRUE(o.result) << o.exception;
  EXPECT_FALSE(o.result->success);
  EXPECT_TRUE(contains(o.result->error, "stream ended inside a frame (7 of 40 bytes)"))
      << o.result->error;
}

TEST(T38CallFailure, PeerClosingAtOnce) {
  std::chrono::milliseconds wall{0};
  const call_outcome o = run_against(
      sender(documents::get().file(1, resolution::fine)),
      [&](tcp::socket& s) { return send_then_close(s, {}); }, &wall);
  ASSERT_TRUE(o.result) << o.exception;
  EXPECT_FALSE(o.result->success);
  EXPECT_TRUE(contains(o.result->error, "the far end closed the connection")) << o.result->error;
  EXPECT_LT(wall, 2s);
}

TEST(T38CallFailure, SilentPeerTimesOut) {
  call_options opts = sender(documents::get().file(1, resolution::fine));
  opts.timeout = 1500ms;
  std::chrono::milliseconds wall{0};
  const call_outcome o = run_against(
      opts, [](tcp::socket& s) { return drain(s); }, &wall);
  ASSERT_TRUE(o.result) << o.exception;
  EXPECT_FALSE(o.result->success);
  EXPECT_TRUE(contains(o.result->error, "timed out after 1.5 s")) << o.result->error;
  EXPECT_GE(o.result->duration, 1500ms);
  EXPECT_LT(wall, 3s);
}

TEST(T38CallFailure, ClosingMidCallFailsBothEnds) {
  const std::string file = documents::get().file(10, resolution::fine);
  temp_dir d;
  proxy_options cut;
  cut.cut_after = 30000;  // a few pages into the document
  const pair_outcome o = run_pair(sender(file), receiver(d / "rx.tif"), &cut);
  ASSERT_TRUE(o.tx.result && o.rx.result) << o.tx.exception << o.rx.exception;
  EXPECT_FALSE(o.tx.result->success);
  EXPECT_FALSE(o.rx.result->success);
  EXPECT_TRUE(contains(o.tx.result->error, "closed the connection")) << o.tx.result->error;
  EXPECT_TRUE(contains(o.rx.result->error, "closed the connection")) << o.rx.result->error;
  // The sender knows where to resume, and the pages it counts as confirmed are really there.
  EXPECT_GT(o.tx.result->next_page, 0);
  EXPECT_LT(o.tx.result->next_page, 10);
  EXPECT_EQ(o.tx.result->pages_confirmed, o.tx.result->next_page);
  EXPECT_GE(o.rx.result->pages_confirmed, o.tx.result->pages_confirmed);
  expect_pages_identical(file, 0, d / "rx.tif", o.rx.result->pages_confirmed);
  EXPECT_LT(o.wall, 5s);
}

// Damaged IFP payloads (TPKT framing kept intact): the calls must end, whatever T.30 makes of it,
// without crashing (run under ASan) and within the timeout. Damaged calls end on T.30's timers
// (T2 is 7 s), so the 24 calls run in parallel, each pair on its own thread and io_context.
TEST(T38CallFailure, CorruptedPacketsNeverCrashOrHang) {
  const std::string file = documents::get().file(1, resolution::standard);
  constexpr unsigned calls = 24;
  std::vector<std::optional<pair_outcome>> outcomes(calls);
  std::vector<std::thread> threads;
  for (unsigned seed = 1; seed <= calls; ++seed) {
    threads.emplace_back([seed, &file, &outcomes] {
      temp_dir d;
      proxy_options fuzz;
      fuzz.corrupt = seed <= 8 || (seed > 16 && seed <= 20) ? 0.05 : 0.3;
      fuzz.data_only = seed > 8;
      fuzz.seed = seed;
      call_options tx = sender(file);
      tx.timeout = 20s;
      tx.ecm = seed % 2 == 0;
      call_options rx = receiver(d / "rx.tif");
      rx.timeout = 20s;
      rx.ecm = tx.ecm;
      outcomes[seed - 1] = run_pair(tx, rx, &fuzz);
    });
  }
  for (auto& t : threads) t.join();
  int failed = 0;
  for (unsigned i = 0; i < calls; ++i) {
    const auto& o = outcomes[i];
    ASSERT_TRUE(o && o->tx.result && o->rx.result) << "seed " << i + 1;
    EXPECT_LT(o->wall, 45s) << "seed " << i + 1;
    if (!o->tx.result->success) ++failed;
    std::cout << "[ fuzz ] seed " << i + 1 << ": sender "
              << (o->tx.result->success ? "ok" : o->tx.result->error) << " / receiver "
              << (o->rx.result->success ? "ok" : o->rx.result->error) << " (" << o->wall.count()
              << " ms)\n";
  }
  EXPECT_GT(failed, 0);  // damage is noticed at least sometimes
}

// The receiver rejects a badly damaged page with RTN; spandsp's phase E still says OK for the
// sender (no retransmission in 0.0.6), so success must come from the per-page confirmations.
TEST(T38CallFailure, RejectedLastPageIsNotASuccess) {
  const std::string file = documents::get().file(1, resolution::fine);
  temp_dir d;
  call_options tx = sender(file);
  tx.ecm = false;
  call_options rx = receiver(d / "rx.tif");
  rx.ecm = false;
  proxy_options damage;
  damage.image_only = true;
  const pair_outcome o = run_pair(tx, rx, &damage);
  ASSERT_TRUE(o.tx.result && o.rx.result);
  const fax_result& t = *o.tx.result;
  std::cout << "[ rtn ] sender: code " << t.completion_code << " (" << t.completion_text
            << "), error: " << t.error << "; receiver: " << o.rx.result->error << "\n";
  EXPECT_FALSE(t.success);
  EXPECT_EQ(t.pages_confirmed, 0);
  EXPECT_EQ(t.next_page, 0);
  ASSERT_FALSE(o.tx.pages.empty());
  EXPECT_FALSE(o.tx.pages.back().confirmed);
  EXPECT_EQ(o.tx.pages.back().response, "RTN");
  if (t.completion_code == 0) {
    EXPECT_TRUE(contains(t.error, "T.30 ended OK but page 1 of 1 was not confirmed")) << t.error;
  }
  EXPECT_FALSE(o.rx.result->success);
}

TEST(T38CallFailure, UnwritableReceiveFile) {
  temp_dir d;
  const pair_outcome o = run_pair(sender(documents::get().file(1, resolution::fine)),
                                  receiver(d / "no/such/dir/rx.tif"));
  ASSERT_TRUE(o.tx.result && o.rx.result);
  EXPECT_FALSE(o.rx.result->success);
  EXPECT_FALSE(o.tx.result->success);
  std::cout << "[ rx file ] receiver: " << o.rx.result->error << " / sender: " << o.tx.result->error
            << "\n";
  EXPECT_LT(o.wall, 10s);
}

TEST(T38CallFailure, RandomFramesNeverCrash) {
  std::mt19937 rng(7);
  for (int round = 0; round < 40; ++round) {
    std::vector<std::uint8_t> stream;
    for (int i = 0; i < 20; ++i) {
      std::vector<std::uint8_t> payload(1 + rng() % 40);
      for (auto& b : payload) b = static_cast<std::uint8_t>(rng());
      tpkt::encode(payload, stream);
    }
    temp_dir d;
    call_options opts = round % 2 == 0 ? receiver(d / "rx.tif")
                                       : sender(documents::get().file(1, resolution::fine));
    opts.timeout = 3s;
    opts.t38_version = round % 4 < 2 ? 0 : 3;
    const call_outcome o =
        run_against(opts, [&](tcp::socket& s) { return send_then_drain(s, stream); });
    ASSERT_TRUE(o.result) << o.exception;
    EXPECT_FALSE(o.result->success);
  }
}

TEST(T38CallFailure, ThrowingProgressCallbackFailsTheCall) {
  const std::string file = documents::get().file(1, resolution::fine);
  temp_dir d;
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket a(io);
  tcp::socket b(io);
  call_outcome rx_out;
  std::optional<fax_result> tx_result;
  call_options rx = receiver(d / "rx.tif");
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        co_await acceptor.async_accept(b, use_awaitable);
        co_await run_side(b, rx, rx_out);
      },
      asio::detached);
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        co_await a.async_connect(acceptor.local_endpoint(), use_awaitable);
        call_options tx = sender(file);
        tx.on_page = [](const page_event&) { throw std::runtime_error("disk full"); };
        tcp_byte_stream stream(a);
        tx_result = co_await run_t38_call(stream, tx);
        a.close();
      },
      asio::detached);
  io.run_for(30s);
  ASSERT_TRUE(tx_result);
  EXPECT_FALSE(tx_result->success);
  EXPECT_TRUE(contains(tx_result->error, "on_page: disk full")) << tx_result->error;
}

TEST(T38CallOptions, InvalidOptionsThrowBeforeAnyIo) {
  temp_dir d;
  const std::string good = documents::get().file(1, resolution::fine);
  test::write_bilevel_tiff(d / "narrow.tif", 1700, 100, 204, 196);
  auto attempt = [&](const call_options& opts) -> std::string {
    std::string what = "(no error)";
    bool wrote = false;
    run_against(opts, [&](tcp::socket& s) -> awaitable<void> {
      std::vector<std::uint8_t> buf(16);
      auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), asio::as_tuple(use_awaitable));
      wrote = !ec && n > 0;
    }).exception.swap(what);
    EXPECT_FALSE(wrote);
    return what;
  };
  call_options o = sender(good);
  o.t38_version = 4;
  EXPECT_TRUE(contains(attempt(o), "T.38 version must be 0-3"));
  o = sender(good);
  o.local_ident = "123456789012345678901";
  EXPECT_TRUE(contains(attempt(o), "longer than 20 characters"));
  o = sender(d / "missing.tif");
  EXPECT_TRUE(contains(attempt(o), "missing.tif: not a readable TIFF"));
  o = sender(d / "narrow.tif");
  EXPECT_TRUE(contains(attempt(o), "1700 pixels wide"));
  o = sender(good);
  o.start_page = 1;
  EXPECT_TRUE(contains(attempt(o), "start page 2 is outside the file's 1 pages"));
  o = receiver("/tmp/" + std::string(300, 'x'));
  EXPECT_TRUE(contains(attempt(o), "path longer than spandsp's limit of 255 bytes"));
  o = receiver("");
  EXPECT_TRUE(contains(attempt(o), "no file to receive into"));
}

// --- paced mode and tracing ------------------------------------------------------------------

TEST(T38CallPaced, RealTimePacingSendsEachPacketOnce) {
  // A short page keeps the real-time image transfer to a few seconds.
  temp_dir d;
  test::write_pdf(d / "short.pdf", 1, 595.276, 100);
  to_tiff_f(d / "short.pdf", d / "short.tif", resolution::standard);
  call_options tx = sender(d / "short.tif");
  tx.paced = true;
  std::vector<std::string> trace;
  tx.on_trace = [&trace](const std::string& line) { trace.push_back(line); };
  call_options rx = receiver(d / "rx.tif");
  rx.paced = true;
  std::vector<std::vector<std::uint8_t>> frames;
  proxy_options watch;
  watch.frames = &frames;
  const pair_outcome o = run_pair(tx, rx, &watch);
  ASSERT_TRUE(o.tx.result && o.rx.result);
  EXPECT_TRUE(o.tx.result->success) << o.tx.result->error;
  EXPECT_TRUE(o.rx.result->success) << o.rx.result->error;
  expect_pages_identical(d / "short.tif", 0, d / "rx.tif", 1);
  // spandsp asks for 3 copies of indicators when paced: over TCP each went out once.
  int indicators = 0;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const bool indicator = (frames[i][0] & 0xC0) == 0 && frames[i].size() <= 2;
    if (!indicator) continue;
    ++indicators;
    if (i > 0) {
      EXPECT_NE(frames[i], frames[i - 1]) << "frame " << i << " repeated";
    }
  }
  EXPECT_GT(indicators, 3);
  EXPECT_TRUE(std::find(trace.begin(), trace.end(), "rx DIS") != trace.end());
  EXPECT_TRUE(std::find(trace.begin(), trace.end(), "tx DCS") != trace.end());
  EXPECT_TRUE(std::find(trace.begin(), trace.end(), "rx MCF") != trace.end());
  std::cout << "[ measured ] paced 1 short page: " << o.wall.count() << " ms, "
            << o.tx.result->bytes_sent << " bytes\n";
}

}  // namespace
}  // namespace switchboard::fax
