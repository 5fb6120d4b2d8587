// The agent program's configuration: agent_options plus exposed services and forwards, from TOML
// (docs/configuration.md lists every key). Unknown keys are errors.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "agent/options.hpp"
#include "net/endpoint.hpp"

namespace switchboard::agent {

struct forward_spec {
  std::string peer;
  std::string service;
  std::string listen;  // ADDR:PORT
};

struct agent_config {
  agent_options options;
  std::filesystem::path password_file;
  std::map<std::string, net::host_port> services;  // name -> local address
  std::vector<forward_spec> forwards;
};

// Throws std::runtime_error naming the file, the key and what is wrong.
agent_config load_agent_config(const std::filesystem::path& file, agent_config base = {});

// "PEER:SERVICE" -> {peer, service}; throws std::invalid_argument.
std::pair<std::string, std::string> parse_peer_service(const std::string& text);
// "NAME=HOST:PORT" -> {name, address}; throws std::invalid_argument.
std::pair<std::string, net::host_port> parse_service_spec(const std::string& text);

}  // namespace switchboard::agent
