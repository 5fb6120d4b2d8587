// The agent options every device-side program takes (switchboard, switchboard-fax): the same
// names, the same precedence (command line over --config file), the same checks.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

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
  // the relay are given, then reads the password (from stdin only if allow_stdin_password).
  agent::agent_config build(bool allow_stdin_password) const;
};

}  // namespace switchboard::cli
