#include "agent_cli.hpp"

#include "cli_common.hpp"

namespace switchboard::cli {

void agent_cli::add_to(CLI::App& app) {
  app.add_option("--config", config, "TOML configuration file")->check(CLI::ExistingFile);
  app.add_option("--relay", relay, "relay HOST:PORT");
  app.add_option("--user", user, "this device's user ID");
  app.add_option("--password-file", password_file,
                 "read the password from this file (else $SWITCHBOARD_PASSWORD, else stdin)");
  app.add_option("--fingerprint", fingerprint, "relay certificate SHA-256 fingerprint to pin");
  app.add_option("--ca", ca, "CA file to verify the relay's certificate with");
  app.add_flag("--plaintext", plaintext, "no TLS (the relay must run with --plaintext too)");
  app.add_option("--keepalive-ms", keepalive_ms, "keep-alive interval to ask for (default 25000)");
  app.add_option("--vacant-lines", vacant_lines, "vacant lines to keep ready (default 2)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off")
      ->capture_default_str();
}

void log_out_and_stop(asio::io_context& io, std::shared_ptr<agent::agent> a) {
  asio::co_spawn(
      io,
      [&io, a]() -> awaitable<void> {
        co_await a->logout();
        a->stop();
        io.stop();
      },
      asio::detached);
}

agent::agent_config agent_cli::build(bool allow_stdin_password) const {
  agent::agent_config c = load();
  auto& a = c.options;
  a.password =
      read_password(c.password_file, allow_stdin_password, "Password for " + a.user + ": ");
  return c;
}

agent::agent_config agent_cli::load() const {
  agent::agent_config c;
  if (!config.empty()) c = agent::load_agent_config(config, c);
  auto& a = c.options;
  if (!relay.empty()) {
    const auto hp = net::parse_host_port(relay);
    a.relay_host = hp.host;
    a.relay_port = hp.port;
  }
  if (!user.empty()) a.user = user;
  if (!password_file.empty()) c.password_file = password_file;
  if (!fingerprint.empty()) a.tls.fingerprint = fingerprint;
  if (!ca.empty()) a.tls.ca_file = ca;
  if (plaintext) a.plaintext = true;
  if (keepalive_ms > 0) a.keepalive = std::chrono::milliseconds(keepalive_ms);
  if (vacant_lines > 0) a.vacant_lines = static_cast<std::size_t>(vacant_lines);
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
  return c;
}

}  // namespace switchboard::cli
