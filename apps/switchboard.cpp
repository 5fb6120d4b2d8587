// switchboard: the device agent. Stays logged in to a relay, exposes local services, forwards
// local ports or stdin/stdout to PEER:SERVICE, lists peers.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <functional>
#include <iostream>
#include <optional>

#include "agent/bridge.hpp"
#include "agent/config_file.hpp"
#include "agent_cli.hpp"
#include "cli_common.hpp"
#include "protocol/printable.hpp"

using namespace switchboard;

namespace {

// Ends `io` with the agent's fatal error, if it ever has one (a refused password, the user
// removed, another instance took over): a long-running agent then exits non-zero.
void exit_on_fatal(asio::io_context& io, const std::shared_ptr<agent::agent>& a, int& rc) {
  asio::co_spawn(
      io,
      [&io, a, &rc]() -> awaitable<void> {
        const std::exception_ptr why = co_await a->wait_fatal();
        if (!why) co_return;
        rc = agent::exit_status(why);
        spdlog::error("exiting with status {}", rc);
        a->stop();
        io.stop();
      },
      asio::detached);
}

// Runs the long-lived agent: services, forwards, reconnecting forever until SIGINT/SIGTERM.
int run_agent(const agent::agent_config& c) {
  cli::raise_fd_limit();
  asio::io_context io(1);
  auto a = std::make_shared<agent::agent>(io.get_executor(), c.options);
  if (!c.services.empty()) a->set_incoming(agent::expose_services(c.services));
  for (const auto& f : c.forwards) {
    tcp::acceptor acc(io, net::parse_endpoint(f.listen));
    spdlog::info("forwarding {} to {}:{}", net::to_string(acc.local_endpoint()), f.peer, f.service);
    asio::co_spawn(io, agent::forward_listener(a, std::move(acc), f.peer, f.service),
                   asio::detached);
  }
  for (const auto& [name, hp] : c.services)
    spdlog::info("exposing '{}' = {}:{}", name, hp.host, hp.port);
  a->start();
  int rc = 0;
  exit_on_fatal(io, a, rc);
  std::optional<asio::signal_set> signals(std::in_place, io, SIGINT, SIGTERM);
  signals->async_wait([&](const error_code& ec, int) {
    if (ec) return;
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
          co_await a->logout();
          a->stop();
          io.stop();
        },
        asio::detached);
  });
  asio::co_spawn(
      io,
      [a]() -> awaitable<void> {
        try {
          co_await a->wait_ready();
          spdlog::info("logged in to {}:{} as {}", a->options().relay_host, a->options().relay_port,
                       a->options().user);
        } catch (const std::exception&) {
          // The agent gave up (exit_on_fatal reports it) or was stopped.
        }
      },
      asio::detached);
  io.run();
  cli::retire_signal_handlers(signals);
  return rc;
}

// After io.run() returned: SIGHUP is ignored from then on (as retire_signal_handlers does for
// SIGINT and SIGTERM), so that a hang-up arriving while the program exits cannot kill it.
void retire_hangup_handler(std::optional<asio::signal_set>& hangup) {
  sigset_t hup;
  sigemptyset(&hup);
  sigaddset(&hup, SIGHUP);
  sigset_t before;
  ::pthread_sigmask(SIG_BLOCK, &hup, &before);
  hangup.reset();
  std::signal(SIGHUP, SIG_IGN);
  ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
}

// Runs one coroutine against a freshly started agent, then stops. Exit code from the coroutine,
// or the exit status of what failed (agent/failure.hpp). `on_hangup`, if given, runs on SIGHUP
// (once), and SIGHUP cannot kill the program from then on.
template <typename F>
int run_once(agent::agent_options opts, F body, std::function<void()> on_hangup = {}) {
  opts.one_shot = true;
  opts.vacant_lines = 1;
  asio::io_context io(1);
  auto a = std::make_shared<agent::agent>(io.get_executor(), opts);
  a->start();
  std::optional<asio::signal_set> hangup;
  if (on_hangup) {
    hangup.emplace(io, SIGHUP);
    hangup->async_wait([&on_hangup](const error_code& ec, int) {
      if (!ec) on_hangup();
    });
  }
  int rc = 1;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        try {
          co_await a->wait_ready();
          rc = co_await body(a);
        } catch (const std::exception& e) {
          std::cerr << "switchboard: " << protocol::printable(e.what()) << '\n';
          rc = agent::exit_status(std::current_exception());
        }
        a->stop();
        io.stop();
      },
      asio::detached);
  io.run();
  if (hangup) retire_hangup_handler(hangup);
  return rc;
}

// `switchboard pipe`: stdin/stdout to PEER:SERVICE. ssh ends its ProxyCommand by closing the
// pipes and sending SIGHUP; that hang-up ends the session normally (TERMINATE(OK)), so that the
// device sees a normal end and pipe exits 0. A hang-up while logging in ends pipe (status 129)
// before the call; one while the call is placed ends the session as soon as it is up.
int run_pipe(const agent::agent_options& opts, const std::string& peer,
             const std::string& service) {
  std::shared_ptr<agent::session> current;  // the session while it is bridged
  bool hung_up = false;
  std::function<void()> on_hangup;
  std::optional<asio::any_io_executor> ex;
  int rc = run_once(
      opts,
      [&](std::shared_ptr<agent::agent> a) -> awaitable<int> {
        ex = co_await asio::this_coro::executor;
        if (hung_up) co_return 128 + SIGHUP;
        auto s = co_await a->call(peer, service);
        current = std::make_shared<agent::session>(std::move(s));
        if (hung_up) {  // while the call was being placed
          co_await current->close(protocol::error_code::ok, "the pipe's user hung up (SIGHUP)");
          co_return 0;
        }
        const auto t = co_await agent::bridge(
            *current, asio::posix::stream_descriptor(*ex, ::dup(STDIN_FILENO)),
            asio::posix::stream_descriptor(*ex, ::dup(STDOUT_FILENO)));
        current.reset();
        if (!t.failed) co_return 0;
        // Output may be cut short: say so, and fail, so that a script or ssh can tell.
        std::string why(protocol::error_name(t.failed->code));
        if (!t.failed->message.empty()) why += ": " + protocol::printable(t.failed->message);
        std::cerr << "switchboard: session with " << peer << ':' << service << " ended: " << why
                  << '\n';
        co_return agent::exit_status(agent::class_of(t.failed->code));
      },
      [&] {
        hung_up = true;
        if (!current || !ex) return;
        // The handle is shared: the session stays alive until close() is done with it.
        asio::co_spawn(
            *ex,
            [s = current]() -> awaitable<void> {
              co_await s->close(protocol::error_code::ok, "the pipe's user hung up (SIGHUP)");
            },
            asio::detached);
      });
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"switchboard: device agent for the Switchboard relay"};
  app.require_subcommand(1);
  cli::agent_cli o;
  o.add_to(app);

  auto* agent_cmd =
      app.add_subcommand("agent", "stay logged in: serve [services], run [[forward]]s");
  auto* expose_cmd = app.add_subcommand("expose", "serve local services to callers");
  std::vector<std::string> specs;
  expose_cmd->add_option("NAME=HOST:PORT", specs, "service name and local address")->required();
  auto* forward_cmd = app.add_subcommand("forward", "forward a local port to PEER:SERVICE");
  std::string target, listen;
  forward_cmd->add_option("PEER:SERVICE", target, "callee and service")->required();
  forward_cmd->add_option("--listen", listen, "local ADDR:PORT to accept on")->required();
  auto* pipe_cmd =
      app.add_subcommand("pipe", "join stdin/stdout to PEER:SERVICE (ssh ProxyCommand)");
  pipe_cmd->add_option("PEER:SERVICE", target, "callee and service")->required();
  auto* peers_cmd = app.add_subcommand("peers", "list logged-in devices you may call");

  // Global options may also follow the subcommand ("switchboard peers --relay ...").
  for (auto* sub : {agent_cmd, expose_cmd, forward_cmd, pipe_cmd, peers_cmd}) sub->fallthrough();
  for (auto* shown : {&app, pipe_cmd, peers_cmd}) shown->footer(agent::exit_status_table());
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : agent::usage_exit_status;
  }
  std::signal(SIGPIPE, SIG_IGN);
  // The command line and configuration first: what is wrong there exits with usage_exit_status.
  agent::agent_config cfg;
  std::pair<std::string, std::string> peer_service;
  try {
    cli::setup_logging(o.log_level);
    cfg = o.build(!pipe_cmd->parsed());
    for (const auto& s : specs) cfg.services.insert(agent::parse_service_spec(s));
    if (*forward_cmd || *pipe_cmd) peer_service = agent::parse_peer_service(target);
    if (*forward_cmd) {
      net::parse_endpoint(listen);
      cfg.forwards.push_back({peer_service.first, peer_service.second, listen});
    }
  } catch (const std::exception& e) {
    std::cerr << "switchboard: " << protocol::printable(e.what()) << '\n';
    return agent::usage_exit_status;
  }
  try {
    if (*agent_cmd || *expose_cmd || *forward_cmd) return run_agent(cfg);
    if (*pipe_cmd) return run_pipe(cfg.options, peer_service.first, peer_service.second);
    if (*peers_cmd) {
      return run_once(cfg.options, [](std::shared_ptr<agent::agent> a) -> awaitable<int> {
        for (const auto& p : co_await a->peers()) std::cout << p << '\n';
        co_return 0;
      });
    }
  } catch (const std::exception& e) {
    std::cerr << "switchboard: " << protocol::printable(e.what()) << '\n';
    return agent::exit_status(std::current_exception());
  }
  return 0;
}
