// Reading relay_config from TOML (docs/configuration.md lists every key). Unknown keys are errors,
// so a typo never silently falls back to a default.
#pragma once

#include <filesystem>

#include "relay/config.hpp"

namespace switchboard::relay {

// Throws std::runtime_error naming the file, the key and what is wrong.
relay_config load_relay_config(const std::filesystem::path& file, relay_config base = {});

}  // namespace switchboard::relay
