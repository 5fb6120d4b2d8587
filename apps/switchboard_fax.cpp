// switchboard-fax: a software fax machine on the Switchboard relay, speaking real T.38.
//   daemon   stay logged in, receive into SPOOL/inbox (also raw T.38/TCP with --t38-listen),
//            work the outgoing queue
//   send     convert documents to TIFF-F and queue a job for the daemon of the same spool
//   jobs, inbox, cancel
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>
#include <optional>
#include <thread>

#include "agent_cli.hpp"
#include "cli_common.hpp"
#include "fax/document_set.hpp"
#include "fax/inbox.hpp"
#include "fax/machine.hpp"
#include "fax/queue.hpp"
#include "net/endpoint.hpp"
#include "protocol/names.hpp"
#include "protocol/printable.hpp"

using namespace switchboard;
namespace fs = std::filesystem;

namespace {

struct send_args {
  std::string to;
  std::vector<std::string> files;
  int retries = 3;
  int retry_interval = 60;
  int kill_time = 3 * 3600;
  std::string resolution = "fine";
  bool wait = false;
};

int run_daemon(const agent::agent_config& cfg, fax::machine_options opts,
               const std::string& t38_listen) {
  cli::raise_fd_limit();
  asio::io_context io(1);
  asio::thread_pool render_pool(1);
  auto a = std::make_shared<agent::agent>(io.get_executor(), cfg.options);
  auto rx = std::make_shared<fax::receiver>(opts, render_pool);
  a->set_incoming({fax::fax_service}, rx->handler());
  tcp::acceptor raw(io);
  if (!t38_listen.empty()) {
    const auto ep = net::parse_endpoint(t38_listen);
    raw.open(ep.protocol());
    raw.set_option(tcp::acceptor::reuse_address(true));
    raw.bind(ep);
    raw.listen();
    spdlog::info("accepting raw T.38/TCP calls on {}", net::to_string(raw.local_endpoint()));
    asio::co_spawn(
        io, [rx, &raw] { return rx->listen(raw); }, asio::detached);
  }
  auto queue = std::make_shared<fax::job_queue>(opts.spool / "queue.db");
  auto worker = std::make_shared<fax::queue_worker>(a, queue, opts);
  a->start();
  asio::co_spawn(
      io, [worker] { return worker->run(); }, asio::detached);
  // A refused password or a removed user ends the daemon (agent.hpp): exit with its status.
  int rc = 0;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        const std::exception_ptr why = co_await a->wait_fatal();
        if (!why) co_return;
        rc = agent::exit_status(why);
        spdlog::error("exiting with status {}", rc);
        error_code ignored;
        raw.close(ignored);
        worker->stop();
        a->stop();
        io.stop();
      },
      asio::detached);
  std::optional<asio::signal_set> signals;
  const auto stop = [&](int) {
    error_code ignored;
    raw.close(ignored);
    worker->stop();
    cli::log_out_and_stop(io, a);
  };
  cli::handle_signals(signals, io, stop, [] {
    spdlog::info("SIGHUP: the fax daemon has nothing to reload (restart it to change settings)");
  });
  spdlog::info("fax machine {} ({}) on spool {}", cfg.options.user, opts.ident,
               opts.spool.string());
  io.run();
  cli::retire_signal_handlers(signals);
  render_pool.join();
  return rc;
}

// Converts every file into one TIFF-F in SPOOL/docq and returns its path and page count. Any page
// that cannot be converted is an error here, before anything is queued or sent.
std::pair<fs::path, int> prepare_document(const fs::path& spool, const send_args& s) {
  const auto res = s.resolution == "standard" ? fax::resolution::standard : fax::resolution::fine;
  fs::create_directories(spool / "docq");
  const std::string stem =
      "doc-" + std::to_string(fax::unix_now()) + "-" + std::to_string(::getpid());
  const fs::path out = spool / "docq" / (stem + ".tif");
  const int pages = fax::to_tiff_f(s.files, out.string(), res);
  return {out, pages};
}

void print_progress(const fax::job& j, bool tty) {
  const int width = 30;
  const int filled = j.pages_total ? width * j.pages_confirmed / j.pages_total : 0;
  if (tty) {
    std::cerr << "\rjob " << j.id << " [" << std::string(filled, '#')
              << std::string(width - filled, '.') << "] " << j.pages_confirmed << "/"
              << j.pages_total << " pages, " << fax::to_string(j.state)
              << (j.tries ? ", try " + std::to_string(j.tries) : "") << "   " << std::flush;
  } else {
    std::cerr << "job " << j.id << ": " << fax::to_string(j.state) << ", " << j.pages_confirmed
              << "/" << j.pages_total << " pages confirmed\n";
  }
}

// --wait: follows the job in the queue until it is done (exit 0) or failed/cancelled (exit 1).
int wait_for(fax::job_queue& q, std::int64_t id) {
  const bool tty = ::isatty(STDERR_FILENO);
  std::string last;
  for (;;) {
    const auto j = q.get(id);
    if (!j) throw std::runtime_error("job " + std::to_string(id) + " vanished from the queue");
    const std::string now = std::string(fax::to_string(j->state)) +
                            std::to_string(j->pages_confirmed) + "/" + std::to_string(j->tries);
    if (now != last) print_progress(*j, tty);
    last = now;
    if (j->state == fax::job_state::done) {
      if (tty) std::cerr << '\n';
      return 0;
    }
    if (j->state == fax::job_state::failed || j->state == fax::job_state::cancelled) {
      if (tty) std::cerr << '\n';
      std::cerr << "job " << id << " " << fax::to_string(j->state) << ": "
                << protocol::printable(j->last_error) << '\n';
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

std::string when(std::int64_t t) {
  if (t == 0) return "-";
  char buf[32];
  const std::time_t tt = t;
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", std::localtime(&tt));
  return buf;
}

void print_jobs(fax::job_queue& q) {
  std::cout << "ID\tTO\tSTATE\tPAGES\tTRIES\tNEXT TRY\tLAST ERROR\n";
  for (const auto& j : q.list()) {
    const bool waiting = j.state == fax::job_state::sleeping || j.state == fax::job_state::pending;
    std::cout << j.id << '\t' << j.to << '\t' << fax::to_string(j.state) << '\t'
              << j.pages_confirmed << '/' << j.pages_total << '\t' << j.tries << '/' << j.max_tries
              << '\t' << (waiting ? when(j.next_try) : "-") << '\t'
              << (j.last_error.empty() ? "-" : protocol::printable(j.last_error)) << '\n';
  }
}

void print_inbox(const fs::path& spool) {
  std::cout << "RECEIVED\tFROM\tSTATION\tPAGES\tRESOLUTION\tCODING\tDIRECTORY\n";
  for (const auto& m : fax::list_inbox(spool)) {
    std::cout << when(m.finished) << '\t' << protocol::printable(m.sender) << '\t'
              << (m.remote_ident.empty() ? "-" : protocol::printable(m.remote_ident)) << '\t'
              << m.pages << '\t' << m.resolution << '\t' << m.coding << (m.ecm ? "+ECM" : "")
              << '\t' << (spool / "inbox" / m.id).string() << '\n';
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"switchboard-fax: software fax machine (T.38) on the Switchboard relay"};
  app.require_subcommand(1);
  cli::agent_cli agent_opts;
  agent_opts.add_to(app);
  std::string spool = "./fax-spool";
  app.add_option("--spool", spool, "the fax machine's working directory (queue, inbox, logs)")
      ->capture_default_str();

  auto* daemon = app.add_subcommand("daemon", "receive faxes and work the outgoing queue");
  fax::machine_options mopts;
  bool no_ecm = false;
  daemon->add_option("--ident", mopts.ident, "T.30 station identity (up to 20 characters)")
      ->capture_default_str();
  daemon->add_flag("--no-ecm", no_ecm,
                   "no error correction mode (pages coded MH/MR instead of MMR)");
  daemon->add_option("--t38-version", mopts.t38_version, "T.38 IFP version 0-3 (both ends alike)")
      ->check(CLI::Range(0, 3))
      ->capture_default_str();
  daemon->add_flag("--paced", mopts.paced,
                   "send IFP packets at the modem's real-time rate (for T.38 gateways)");
  daemon
      ->add_option("--max-calls", mopts.max_calls,
                   "incoming calls at once; more are refused as busy")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  std::string t38_listen;
  daemon->add_option("--t38-listen", t38_listen,
                     "also accept raw T.38/TCP calls (TPKT) on ADDR:PORT, outside the relay");

  auto* send = app.add_subcommand("send", "queue documents (PDF, PNG, TIFF) for a fax machine");
  send_args sa;
  send->add_option("--to", sa.to,
                   "receiving fax machine's user ID, or t38:HOST:PORT for a raw T.38/TCP peer")
      ->required();
  send->add_option("FILE", sa.files, "documents, sent in this order as one fax")
      ->required()
      ->check(CLI::ExistingFile);
  send->add_option("--retries", sa.retries, "tries before the job fails")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  send->add_option("--retry-interval", sa.retry_interval,
                   "seconds before a retry (doubles each try)")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  send->add_option("--kill-time", sa.kill_time, "seconds after which an unfinished job fails")
      ->check(CLI::Range(1, 30 * 86400))
      ->capture_default_str();
  send->add_option("--resolution", sa.resolution, "fine (204x196 dpi) or standard (204x98)")
      ->check(CLI::IsMember({"fine", "standard"}))
      ->capture_default_str();
  send->add_flag("--wait", sa.wait, "wait until the job is done or failed (exit 1 if failed)");

  auto* jobs = app.add_subcommand("jobs", "list the outgoing queue");
  auto* inbox = app.add_subcommand("inbox", "list received faxes");
  auto* cancel = app.add_subcommand("cancel", "cancel a queued job");
  std::int64_t job_id = 0;
  cancel->add_option("JOB", job_id, "job ID")->required();
  for (auto* sub : {daemon, send, jobs, inbox, cancel}) sub->fallthrough();
  CLI11_PARSE(app, argc, argv);
  std::signal(SIGPIPE, SIG_IGN);
  try {
    cli::setup_logging(agent_opts.log_level);
    const fs::path spool_dir = spool;
    if (*daemon) {
      mopts.spool = spool_dir;
      mopts.ecm = !no_ecm;
      return run_daemon(agent_opts.build(true), mopts, t38_listen);
    }
    fax::job_queue q(spool_dir / "queue.db");
    if (*send) {
      if (!fax::raw_t38_address(sa.to) && !protocol::valid_user_id(sa.to)) {
        throw std::runtime_error("invalid destination '" + sa.to + "': a user ID or t38:HOST:PORT");
      }
      const auto [doc, pages] = prepare_document(spool_dir, sa);
      fax::job_request r;
      r.to = sa.to;
      r.document = doc;
      r.pages_total = pages;
      r.max_tries = sa.retries;
      r.retry_interval_s = sa.retry_interval;
      r.kill_after_s = sa.kill_time;
      r.fine = sa.resolution == "fine";
      const auto id = q.submit(r, fax::unix_now());
      std::cout << id << '\n' << std::flush;
      return sa.wait ? wait_for(q, id) : 0;
    }
    if (*jobs) print_jobs(q);
    if (*inbox) print_inbox(spool_dir);
    if (*cancel) {
      if (!q.cancel(job_id, fax::unix_now())) {
        throw std::runtime_error("job " + std::to_string(job_id) +
                                 " is not queued (unknown or finished)");
      }
      std::cout << "job " << job_id << " cancelled\n";
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "switchboard-fax: " << protocol::printable(e.what()) << '\n';
    return 1;
  }
}
