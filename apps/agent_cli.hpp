// The agent options every device-side program takes (switchboard, switchboard-fax): the same
// names, the same precedence (command line over --config file), the same checks.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "agent/agent.hpp"
#include "agent/config_file.hpp"

namespace switchboard::cli {

struct agent_cli {
  std::string config, relay, user, password_file, fingerprint, ca, log_level = "info";
  bool plaintext = false;
  int keepalive_ms = 0;
  int vacant_lines = 0;

  // Adds --config --relay --user --password-file --fingerprint --ca --plaintext --keepalive-ms
  // --vacant-lines --log-level to `app`.
  void add_to(CLI::App& app);
  // The configuration: file first, then the options given. Checks that a user and a way to trust
  // the relay are given. No password: a reload (SIGHUP) reads the file again with this.
  agent::agent_config load() const;
  // load(), then reads the password (from stdin only if allow_stdin_password).
  agent::agent_config build(bool allow_stdin_password) const;
};

// A long-running agent's stop (SIGINT, SIGTERM): LOGOUT (the relay ends the device's sessions and
// lines), then the agent and `io` stop.
void log_out_and_stop(asio::io_context& io, std::shared_ptr<agent::agent> a);

}  // namespace switchboard::cli
