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
void reload_agent(agent::agent& a, agent::agent_config& running,
                  forward_listeners& forwards,
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
        } catch (const std::exception& e) {
          spdlog::warn("{}", protocol::printable(e.what()));
        }
      },
      asio::detached);
  io.run();
  cli::retire_signal_handlers(signals);
  return 0;
}

// Runs one coroutine against a freshly started agent, then stops. Exit code from the coroutine.
template <typename F>
int run_once(agent::agent_options opts, F body) {
  opts.retry_refused_login = false;
  opts.vacant_lines = 1;
  asio::io_context io(1);
  auto a = std::make_shared<agent::agent>(io.get_executor(), opts);
  a->start();
  int rc = 1;
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        try {
          co_await a->wait_ready();
          rc = co_await body(a);
        } catch (const std::exception& e) {
          std::cerr << "switchboard: " << protocol::printable(e.what()) << '\n';
          rc = 1;
        }
        a->stop();
        io.stop();
      },
      asio::detached);
  io.run();
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
  CLI11_PARSE(app, argc, argv);
  std::signal(SIGPIPE, SIG_IGN);
  try {
    cli::setup_logging(o.log_level);
    const bool is_pipe = pipe_cmd->parsed();
    auto cfg = o.build(!is_pipe);
    // The configuration as the command line makes it, without the password: what SIGHUP reads
    // again (nothing without a --config file).
    const auto reread = [&]() -> std::optional<agent::agent_config> {
      if (o.config.empty()) return std::nullopt;
      auto c = o.load();
      if (*expose_cmd) {
        for (const auto& s : specs) c.services.insert(agent::parse_service_spec(s));
      }
      if (*forward_cmd) {
        const auto [peer, service] = agent::parse_peer_service(target);
        c.forwards.push_back({peer, service, listen});
      }
      return c;
    };
    if (*agent_cmd) return run_agent(cfg, reread);
    if (*expose_cmd) {
      for (const auto& s : specs) cfg.services.insert(agent::parse_service_spec(s));
      return run_agent(cfg, reread);
    }
    if (*forward_cmd) {
      const auto [peer, service] = agent::parse_peer_service(target);
      net::parse_endpoint(listen);
      cfg.forwards.push_back({peer, service, listen});
      return run_agent(cfg, reread);
    }
    if (is_pipe) {
      // Named variables, not a structured binding: the lambda below captures them.
      const auto peer_service = agent::parse_peer_service(target);
      const std::string& peer = peer_service.first;
      const std::string& service = peer_service.second;
      return run_once(cfg.options, [&](std::shared_ptr<agent::agent> a) -> awaitable<int> {
        auto s = co_await a->call(peer, service);
        const auto ex = co_await asio::this_coro::executor;
        const auto t = co_await agent::bridge(
            std::move(s), asio::posix::stream_descriptor(ex, ::dup(STDIN_FILENO)),
            asio::posix::stream_descriptor(ex, ::dup(STDOUT_FILENO)));
        if (!t.failed) co_return 0;
        // Output may be cut short: say so, and fail, so that a script or ssh can tell.
        std::string why(protocol::error_name(t.failed->code));
        if (!t.failed->message.empty()) why += ": " + protocol::printable(t.failed->message);
        std::cerr << "switchboard: session with " << peer << ':' << service << " ended: " << why
                  << '\n';
        co_return 1;
      });
    }
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
    return 1;
  }
  return 0;
}
