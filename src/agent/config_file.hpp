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

  bool operator==(const forward_spec&) const = default;
};

struct agent_config {
  agent_options options;
  std::filesystem::path password_file;
  std::map<std::string, net::host_port> services;  // name -> local address
  std::vector<forward_spec> forwards;
};

// Throws std::runtime_error naming the file, the key and what is wrong.
agent_config load_agent_config(const std::filesystem::path& file, agent_config base = {});

// What a reload (SIGHUP, docs/configuration.md "Reloading") changes in a running agent: services
// and forwards change at once; every other setting needs a restart and is only named.
struct agent_reload_plan {
  std::vector<std::string> services_added;    // names, sorted
  std::vector<std::string> services_removed;  // names, sorted
  std::vector<std::string> services_changed;  // names whose address changed, sorted
  std::vector<forward_spec> forwards_added;   // in file order
  std::vector<forward_spec> forwards_removed;
  std::vector<std::string> refused;  // "relay 127.0.0.1:7443 -> 127.0.0.1:7444", ...

  bool services_differ() const {
    return !services_added.empty() || !services_removed.empty() || !services_changed.empty();
  }
  bool changes_something() const {
    return services_differ() || !forwards_added.empty() || !forwards_removed.empty();
  }
};
agent_reload_plan plan_agent_reload(const agent_config& running, const agent_config& loaded);

// "PEER:SERVICE" -> {peer, service}; throws std::invalid_argument.
std::pair<std::string, std::string> parse_peer_service(const std::string& text);
// "NAME=HOST:PORT" -> {name, address}; throws std::invalid_argument.
std::pair<std::string, net::host_port> parse_service_spec(const std::string& text);

}  // namespace switchboard::agent
