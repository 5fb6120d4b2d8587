// sb_fax_bench: wall time and wire bytes of a relayed fax (docs/benchmarks.md, "Fax").
//
// One process, one thread: a relay on 127.0.0.1:0 (plaintext or TLS), bob's fax machine (an agent
// with fax::receiver, so received faxes go through the real inbox commit: TIFF-F, PDF, PNG,
// fsync, rename) and alice, who calls bob:fax and sends a PAGES-page TIFF-F with spandsp
// unpaced. Measured per run: from alice's call() to her fax_result (every page confirmed), and
// until bob's inbox lists the fax; bytes on the wire both ways (TPKT headers included). Prints
// the median and min-max of RUNS runs for each mode. No thresholds: figures only.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "agent/agent.hpp"
#include "fax/byte_stream.hpp"
#include "fax/document.hpp"
#include "fax/inbox.hpp"
#include "fax/machine.hpp"
#include "fax/t38_call.hpp"
#include "fax_test_util.hpp"
#include "net/tls.hpp"
#include "relay/server.hpp"
#include "store/user_store.hpp"

using namespace switchboard;
namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

namespace {

struct run_figures {
  double call_ms = 0;   // call() to the sender's result
  double inbox_ms = 0;  // call() to bob's inbox listing the fax
  std::uint64_t bytes_to_receiver = 0;
  std::uint64_t bytes_to_sender = 0;
  bool ok = false;
  std::string error;
};

struct bench_setup {
  int pages = 10;
  int runs = 5;
  bool ecm = true;
  bool fine = true;
};

// Polls `done` every 5 ms on the current executor until it holds or `limit` passes.
template <typename Pred>
awaitable<bool> poll_until(Pred done, std::chrono::milliseconds limit) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  const auto deadline = clock_type::now() + limit;
  while (!done()) {
    if (clock_type::now() >= deadline) co_return false;
    t.expires_after(std::chrono::milliseconds(5));
    co_await t.async_wait(use_awaitable);
  }
  co_return true;
}

awaitable<run_figures> one_fax(std::shared_ptr<agent::agent> alice, const std::string& doc,
                               const fs::path& bob_spool, std::size_t inbox_before, bool ecm) {
  run_figures f;
  const auto t0 = clock_type::now();
  auto s = co_await alice->call("bob", fax::fax_service);
  fax::call_options o;
  o.direction = fax::role::send;
  o.tx_file = doc;
  o.local_ident = "+1 555 0100";
  o.ecm = ecm;
  fax::byte_stream_ref<agent::session> stream(s);
  const fax::fax_result r = co_await fax::run_t38_call(stream, o);
  f.call_ms = std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
  co_await s.close();
  f.ok = r.success;
  f.error = r.error;
  f.bytes_to_receiver = r.bytes_sent;
  f.bytes_to_sender = r.bytes_received;
  const bool listed = co_await poll_until(
      [&] { return fax::list_inbox(bob_spool).size() > inbox_before; }, std::chrono::seconds(30));
  f.inbox_ms = std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
  if (!listed) {
    f.ok = false;
    f.error = "the fax did not reach bob's inbox within 30 s";
  }
  co_return f;
}

std::string stat(std::vector<double> v, const char* fmt) {
  std::sort(v.begin(), v.end());
  char buf[128];
  const std::string f = std::string(fmt) + " [" + fmt + "-" + fmt + "]";
  std::snprintf(buf, sizeof buf, f.c_str(), v[v.size() / 2], v.front(), v.back());
  return buf;
}

// Runs every fax of one mode; returns false if any failed.
bool run_mode(bool tls, const bench_setup& b, const std::string& doc) {
  fax::test::temp_dir dir;
  const fs::path root(dir.path());
  auto users = store::open_sqlite_store(root / "users.db", store::hash_cost::minimum);
  users->add_user("alice", "alice-pw");
  users->add_user("bob", "bob-pw");
  asio::io_context io(1);
  asio::thread_pool render_pool(1);
  relay::relay_config cfg;
  cfg.plaintext = !tls;
  cfg.data_dir = root;
  net::ssl_ctx_ptr server_tls;
  std::string fingerprint;
  if (tls) {
    const auto id = net::ensure_self_signed(root / "tls");
    fingerprint = net::fingerprint_of_cert_file(id.cert_file);
    server_tls = net::make_server_context(id);
  }
  relay::server server(io, cfg, *users, std::move(server_tls));
  const auto ep = server.listen(tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  server.start();
  auto options_for = [&](const std::string& user) {
    agent::agent_options o;
    o.relay_host = "127.0.0.1";
    o.relay_port = ep.port();
    o.user = user;
    o.password = user + "-pw";
    o.plaintext = !tls;
    if (tls) o.tls.fingerprint = fingerprint;
    return o;
  };
  fax::machine_options mopts;
  mopts.spool = root / "bob-spool";
  mopts.ident = "+1 555 0199";
  mopts.ecm = b.ecm;
  auto bob = std::make_shared<agent::agent>(io.get_executor(), options_for("bob"));
  bob->set_incoming({fax::fax_service}, fax::fax_receiver(mopts, render_pool));
  auto alice = std::make_shared<agent::agent>(io.get_executor(), options_for("alice"));
  std::vector<run_figures> results;
  std::string failure;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        bob->start();
        alice->start();
        co_await bob->wait_ready();
        co_await alice->wait_ready();
        // Bob's vacant lines must be up before the first call (wait_ready means one line).
        co_await poll_until([&] { return bob->stats().lines_vacant >= 2; },
                            std::chrono::seconds(10));
        for (int i = 0; i < b.runs; ++i) {
          results.push_back(
              co_await one_fax(alice, doc, mopts.spool, static_cast<std::size_t>(i), b.ecm));
          if (!results.back().ok) break;
        }
      },
      [&](std::exception_ptr e) {
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& x) {
            failure = x.what();
          }
        }
        alice->stop();
        bob->stop();
        server.stop();
      });
  io.run();
  render_pool.join();
  std::vector<double> call_ms, inbox_ms, to_rx, to_tx;
  for (const auto& r : results) {
    if (!r.ok) failure = r.error;
    call_ms.push_back(r.call_ms);
    inbox_ms.push_back(r.inbox_ms);
    to_rx.push_back(static_cast<double>(r.bytes_to_receiver));
    to_tx.push_back(static_cast<double>(r.bytes_to_sender));
  }
  const std::string name = std::string(tls ? "TLS" : "plaintext") + ", " +
                           (b.ecm ? "ECM/MMR" : "no ECM/MR") + ", " +
                           (b.fine ? "fine" : "standard");
  if (!failure.empty() || results.empty()) {
    std::printf("| %s | failed: %s | | | |\n", name.c_str(),
                failure.empty() ? "no run" : failure.c_str());
    return false;
  }
  std::printf("| %s | %s | %s | %s | %s |\n", name.c_str(), stat(call_ms, "%.0f").c_str(),
              stat(inbox_ms, "%.0f").c_str(), stat(to_rx, "%.0f").c_str(),
              stat(to_tx, "%.0f").c_str());
  std::fflush(stdout);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sb_fax_bench: wall time and wire bytes of a fax relayed between two agents"};
  bench_setup b;
  app.add_option("--pages", b.pages, "pages per fax")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--runs", b.runs, "faxes per mode (median and min-max are printed)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  bool quick = false;
  app.add_flag("--quick", quick, "one run per mode, plaintext and TLS with ECM only");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);
  std::signal(SIGPIPE,
              SIG_IGN);  // as in the programs: a closed peer is an error code, not a signal
  if (quick) b.runs = 1;

  fax::test::temp_dir docs;
  const std::string pdf = (fs::path(docs.path()) / "doc.pdf").string();
  fax::test::write_pdf(pdf, b.pages);
  std::printf(
      "sb_fax_bench: %d-page fax relayed through an in-process relay on loopback, %d run(s) each, "
      "median [min-max]\n\n",
      b.pages, b.runs);
  std::printf(
      "| mode | call to last page confirmed, ms | call to inbox entry, ms | "
      "bytes sender->receiver | bytes receiver->sender |\n|---|---|---|---|---|\n");
  bool ok = true;
  for (const bool fine : {true, false}) {
    const std::string tif = (fs::path(docs.path()) / (fine ? "fine.tif" : "standard.tif")).string();
    fax::to_tiff_f(pdf, tif, fine ? fax::resolution::fine : fax::resolution::standard);
    for (const bool ecm : {true, false}) {
      if (quick && (!ecm || !fine)) continue;
      b.ecm = ecm;
      b.fine = fine;
      for (const bool tls : {false, true}) ok = run_mode(tls, b, tif) && ok;
    }
  }
  return ok ? 0 : 1;
}
