// Reading relay_config from TOML (docs/configuration.md lists every key). Unknown keys are errors,
// so a typo never silently falls back to a default.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "relay/config.hpp"

namespace switchboard::relay {

// Throws std::runtime_error naming the file, the key and what is wrong.
relay_config load_relay_config(const std::filesystem::path& file, relay_config base = {});

// What a reload (SIGHUP, docs/configuration.md "Reloading") makes of a configuration read again.
struct reload_plan {
  relay_config next;  // the running configuration with every setting that may change taken over
  std::vector<std::string> changed;  // "timeouts.demand_ms 30000 -> 5000", in file order
  std::vector<std::string> refused;  // settings that need a restart; `next` keeps their old value
};
reload_plan plan_reload(const relay_config& running, const relay_config& loaded);

}  // namespace switchboard::relay
