// Small helpers for strict TOML reading shared by the relay's and the agent's config files.
#pragma once

#include <toml++/toml.h>

#include <chrono>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>

namespace switchboard::net {

inline toml::table parse_toml_file(const std::string& file) {
  try {
    return toml::parse_file(file);
  } catch (const toml::parse_error& e) {
    throw std::runtime_error(file + ": " + std::string(e.description()) + " at line " +
                             std::to_string(e.source().begin.line));
  }
}

// Throws if `t` has a key not in `known`.
inline void check_keys(const toml::table& t, std::initializer_list<std::string_view> known,
                       const std::string& where) {
  for (const auto& [k, v] : t) {
    bool ok = false;
    for (auto n : known) ok = ok || k.str() == n;
    if (!ok) throw std::runtime_error(where + ": unknown key '" + std::string(k.str()) + "'");
  }
}

template <typename T>
T get_or(const toml::table& t, std::string_view key, T fallback, const std::string& where) {
  const auto* node = t.get(key);
  if (!node) return fallback;
  if (auto v = node->value<T>()) return *v;
  throw std::runtime_error(where + ": key '" + std::string(key) + "' has the wrong type");
}

inline std::chrono::milliseconds get_ms(const toml::table& t, std::string_view key,
                                        std::chrono::milliseconds fallback,
                                        const std::string& where) {
  const auto v = get_or<std::int64_t>(t, key, fallback.count(), where);
  if (v < 0) throw std::runtime_error(where + ": key '" + std::string(key) + "' must be >= 0");
  return std::chrono::milliseconds(v);
}

}  // namespace switchboard::net
