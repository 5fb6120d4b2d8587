// switchboard: the device agent. Stays logged in to a relay, exposes local services, forwards
// local ports or stdin/stdout to PEER:SERVICE, lists peers.
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
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

// The running forwards' listeners. Each accept loop ends when its signal is emitted: its
// acceptor closes, and the connections it accepted go on.
class forward_listeners {
 public:
  forward_listeners(asio::io_context& io, std::shared_ptr<agent::agent> a)
      : io_(io), agent_(std::move(a)) {}

  // Throws if the address cannot be bound.
  void open(const agent::forward_spec& f) {
    tcp::acceptor acc(io_, net::parse_endpoint(f.listen));
    spdlog::info("forwarding {} to {}:{}", net::to_string(acc.local_endpoint()), f.peer, f.service);
    // The completion handler keeps the signal alive as long as the loop is connected to it.
    auto stop = std::make_shared<asio::cancellation_signal>();
    running_.emplace_back(f, stop);
    asio::co_spawn(
        io_, agent::forward_listener(agent_, std::move(acc), f.peer, f.service),
        asio::bind_cancellation_slot(stop->slot(), [stop](const std::exception_ptr&) {}));
  }
  void close(const agent::forward_spec& f) {
    const auto it = std::find_if(running_.begin(), running_.end(),
                                 [&f](const auto& r) { return r.first == f; });
    if (it == running_.end()) return;
    it->second->emit(asio::cancellation_type::terminal);
    running_.erase(it);
    spdlog::info("stopped forwarding {} to {}:{}", f.listen, f.peer, f.service);
  }

 private:
  asio::io_context& io_;
  std::shared_ptr<agent::agent> agent_;
  std::vector<std::pair<agent::forward_spec, std::shared_ptr<asio::cancellation_signal>>> running_;
};

// What new calls to this agent reach: the one place that hands its services to the agent.
// The services this agent answers from now on; a running agent announces them (ANNOUNCE).
void offer_services(agent::agent& a, const std::map<std::string, net::host_port>& services) {
  std::vector<std::string> names;
  for (const auto& [name, where] : services) names.push_back(name);
  a.set_incoming(std::move(names), agent::expose_services(services));
}

std::string names(const std::vector<std::string>& list) {
  std::string out;
  for (const auto& n : list) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// SIGHUP: `reread` gives the configuration as the command line makes it now (nullopt: there is
// no file to read again). Services and forwards change at once (services are announced to the
// relay); other settings are named.
void reload_agent(agent::agent& a, agent::agent_config& running, forward_listeners& forwards,
                  const std::function<std::optional<agent::agent_config>()>& reread) {
  std::optional<agent::agent_config> loaded;
  try {
    loaded = reread();
  } catch (const std::exception& e) {
    spdlog::error("SIGHUP: reload failed, nothing changed: {}", protocol::printable(e.what()));
    return;
  }
  if (!loaded) {
    spdlog::info("SIGHUP: no --config file: nothing to reload");
    return;
  }
  const auto plan = agent::plan_agent_reload(running, *loaded);
  for (const auto& r : plan.refused) {
    spdlog::warn("reload: {} needs a restart; the running value is kept", r);
  }
  if (plan.services_differ()) {
    offer_services(a, loaded->services);
    running.services = loaded->services;
  }
  for (const auto& f : plan.forwards_removed) {
    forwards.close(f);
    std::erase(running.forwards, f);
  }
  for (const auto& f : plan.forwards_added) {
    try {
      forwards.open(f);
      running.forwards.push_back(f);
    } catch (const std::exception& e) {
      spdlog::error("reload: cannot forward {} to {}:{}: {}", f.listen, f.peer, f.service,
                    e.what());
    }
  }
  if (!plan.changes_something()) {
    spdlog::info("reloaded: no service or forward changed");
    return;
  }
  spdlog::info(
      "reloaded: services added [{}], removed [{}], changed [{}]; forwards added {}, "
      "removed {}",
      names(plan.services_added), names(plan.services_removed), names(plan.services_changed),
      plan.forwards_added.size(), plan.forwards_removed.size());
}

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
// SIGHUP reloads services and forwards through `reread`.
int run_agent(agent::agent_config c, std::function<std::optional<agent::agent_config>()> reread) {
  cli::raise_fd_limit();
  asio::io_context io(1);
  auto opts = c.options;
  opts.stop_without_services = c.forwards.empty();  // forwards go on placing calls
  auto a = std::make_shared<agent::agent>(io.get_executor(), opts);
  if (!c.services.empty()) offer_services(*a, c.services);
  forward_listeners forwards(io, a);
  for (const auto& f : c.forwards) forwards.open(f);
  for (const auto& [name, hp] : c.services)
    spdlog::info("exposing '{}' = {}:{}", name, hp.host, hp.port);
  a->start();
  int rc = 0;
  exit_on_fatal(io, a, rc);
  std::optional<asio::signal_set> signals;
  cli::handle_signals(
      signals, io, [&](int) { cli::log_out_and_stop(io, a); },
      [&] { reload_agent(*a, c, forwards, reread); });
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
  // The configuration as the command line makes it, without the password: what SIGHUP reads
  // again (nothing without a --config file).
  const auto reread = [&]() -> std::optional<agent::agent_config> {
    if (o.config.empty()) return std::nullopt;
    auto c = o.load();
    for (const auto& s : specs) c.services.insert(agent::parse_service_spec(s));
    if (*forward_cmd) c.forwards.push_back({peer_service.first, peer_service.second, listen});
    return c;
  };
  try {
    if (*agent_cmd || *expose_cmd || *forward_cmd) return run_agent(cfg, reread);
    if (*pipe_cmd) return run_pipe(cfg.options, peer_service.first, peer_service.second);
    if (*peers_cmd) {
      return run_once(cfg.options, [](std::shared_ptr<agent::agent> a) -> awaitable<int> {
        for (const auto& p : co_await a->peers()) {
          std::cout << p.user << '\t' << fmt::format("{}", fmt::join(p.services, ",")) << '\n';
        }
        co_return 0;
      });
    }
  } catch (const std::exception& e) {
    std::cerr << "switchboard: " << protocol::printable(e.what()) << '\n';
    return agent::exit_status(std::current_exception());
  }
  return 0;
}
