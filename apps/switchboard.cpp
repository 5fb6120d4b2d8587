// switchboard: the device agent. Stays logged in to a relay, exposes local services, forwards
// local ports or stdin/stdout to PEER:SERVICE, lists peers.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>
#include <optional>

#include "agent/bridge.hpp"
#include "agent/config_file.hpp"
#include "cli_common.hpp"

using namespace switchboard;

namespace {

struct cli_options {
  std::string config, relay, user, password_file, fingerprint, ca, log_level = "info";
  bool plaintext = false;
  int keepalive_ms = 0;
  int vacant_lines = 0;
};

agent::agent_config build_config(const cli_options& o, bool allow_stdin_password) {
  agent::agent_config c;
  if (!o.config.empty()) c = agent::load_agent_config(o.config, c);
  auto& a = c.options;
  if (!o.relay.empty()) {
    const auto hp = net::parse_host_port(o.relay);
    a.relay_host = hp.host;
    a.relay_port = hp.port;
  }
  if (!o.user.empty()) a.user = o.user;
  if (!o.password_file.empty()) c.password_file = o.password_file;
  if (!o.fingerprint.empty()) a.tls.fingerprint = o.fingerprint;
  if (!o.ca.empty()) a.tls.ca_file = o.ca;
  if (o.plaintext) a.plaintext = true;
  if (o.keepalive_ms > 0) a.keepalive = std::chrono::milliseconds(o.keepalive_ms);
  if (o.vacant_lines > 0) a.vacant_lines = static_cast<std::size_t>(o.vacant_lines);
  if (a.user.empty()) throw std::runtime_error("no user ID: give --user or 'user' in the config");
  if (!a.plaintext && a.tls.fingerprint.empty() && a.tls.ca_file.empty()) {
    throw std::runtime_error(
        "cannot check the relay: give --fingerprint (see 'switchboard-relay fingerprint'), --ca, "
        "or --plaintext if the relay runs with --plaintext");
  }
  if (!a.plaintext && !a.tls.fingerprint.empty() && !a.tls.ca_file.empty()) {
    throw std::runtime_error("give --fingerprint or --ca, not both");
  }
  a.tls.server_name = a.relay_host;
  a.password = cli::read_password(c.password_file, allow_stdin_password,
                                  "Password for " + a.user + ": ");
  return c;
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
    asio::co_spawn(io, agent::forward_listener(a, std::move(acc), f.peer, f.service), asio::detached);
  }
  for (const auto& [name, hp] : c.services) spdlog::info("exposing '{}' = {}:{}", name, hp.host, hp.port);
  a->start();
  std::optional<asio::signal_set> signals(std::in_place, io, SIGINT, SIGTERM);
  signals->async_wait([&](const error_code& ec, int) {
    if (ec) return;
    asio::co_spawn(io, [&]() -> awaitable<void> {
      co_await a->logout();
      a->stop();
      io.stop();
    }, asio::detached);
  });
  asio::co_spawn(io, [a]() -> awaitable<void> {
    try {
      co_await a->wait_ready();
      spdlog::info("logged in to {}:{} as {}", a->options().relay_host, a->options().relay_port,
                   a->options().user);
    } catch (const std::exception& e) {
      spdlog::warn("{}", e.what());
    }
  }, asio::detached);
  io.run();
  // Destroying the signal_set restores the default actions: a second SIGTERM arriving while we
  // exit (`timeout` signals the child, then its process group) would kill us with status 143.
  signals.reset();
  std::signal(SIGINT, SIG_IGN);
  std::signal(SIGTERM, SIG_IGN);
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
  asio::co_spawn(io, [&]() -> awaitable<void> {
    try {
      co_await a->wait_ready();
      rc = co_await body(a);
    } catch (const std::exception& e) {
      std::cerr << "switchboard: " << e.what() << '\n';
      rc = 1;
    }
    a->stop();
    io.stop();
  }, asio::detached);
  io.run();
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"switchboard: device agent for the Switchboard relay"};
  app.require_subcommand(1);
  cli_options o;
  app.add_option("--config", o.config, "TOML configuration file")->check(CLI::ExistingFile);
  app.add_option("--relay", o.relay, "relay HOST:PORT");
  app.add_option("--user", o.user, "this device's user ID");
  app.add_option("--password-file", o.password_file,
                 "read the password from this file (else $SWITCHBOARD_PASSWORD, else stdin)");
  app.add_option("--fingerprint", o.fingerprint, "relay certificate SHA-256 fingerprint to pin");
  app.add_option("--ca", o.ca, "CA file to verify the relay's certificate with");
  app.add_flag("--plaintext", o.plaintext, "no TLS (the relay must run with --plaintext too)");
  app.add_option("--keepalive-ms", o.keepalive_ms, "keep-alive interval to ask for (default 25000)");
  app.add_option("--vacant-lines", o.vacant_lines, "vacant lines to keep ready (default 2)");
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error, off")
      ->capture_default_str();

  auto* agent_cmd = app.add_subcommand("agent", "stay logged in: serve [services], run [[forward]]s");
  auto* expose_cmd = app.add_subcommand("expose", "serve local services to callers");
  std::vector<std::string> specs;
  expose_cmd->add_option("NAME=HOST:PORT", specs, "service name and local address")->required();
  auto* forward_cmd = app.add_subcommand("forward", "forward a local port to PEER:SERVICE");
  std::string target, listen;
  forward_cmd->add_option("PEER:SERVICE", target, "callee and service")->required();
  forward_cmd->add_option("--listen", listen, "local ADDR:PORT to accept on")->required();
  auto* pipe_cmd = app.add_subcommand("pipe", "join stdin/stdout to PEER:SERVICE (ssh ProxyCommand)");
  pipe_cmd->add_option("PEER:SERVICE", target, "callee and service")->required();
  auto* peers_cmd = app.add_subcommand("peers", "list logged-in devices you may call");

  // Global options may also follow the subcommand ("switchboard peers --relay ...").
  for (auto* sub : {agent_cmd, expose_cmd, forward_cmd, pipe_cmd, peers_cmd}) sub->fallthrough();
  CLI11_PARSE(app, argc, argv);
  std::signal(SIGPIPE, SIG_IGN);
  try {
    cli::setup_logging(o.log_level);
    const bool is_pipe = pipe_cmd->parsed();
    auto cfg = build_config(o, !is_pipe);
    if (*agent_cmd) return run_agent(cfg);
    if (*expose_cmd) {
      for (const auto& s : specs) cfg.services.insert(agent::parse_service_spec(s));
      return run_agent(cfg);
    }
    if (*forward_cmd) {
      const auto [peer, service] = agent::parse_peer_service(target);
      net::parse_endpoint(listen);
      cfg.forwards.push_back({peer, service, listen});
      return run_agent(cfg);
    }
    if (is_pipe) {
      const auto [peer, service] = agent::parse_peer_service(target);
      return run_once(cfg.options, [&](std::shared_ptr<agent::agent> a) -> awaitable<int> {
        auto s = co_await a->call(peer, service);
        const auto ex = co_await asio::this_coro::executor;
        co_await agent::bridge(std::move(s), asio::posix::stream_descriptor(ex, ::dup(STDIN_FILENO)),
                               asio::posix::stream_descriptor(ex, ::dup(STDOUT_FILENO)));
        co_return 0;
      });
    }
    if (*peers_cmd) {
      return run_once(cfg.options, [](std::shared_ptr<agent::agent> a) -> awaitable<int> {
        for (const auto& p : co_await a->peers()) std::cout << p << '\n';
        co_return 0;
      });
    }
  } catch (const std::exception& e) {
    std::cerr << "switchboard: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
