// Small helpers for strict TOML reading shared by the relay's and the agent's config files.
#pragma once

#include <toml++/toml.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
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

// A count: an integer from 0 to `max`; anything else is refused, never wrapped into range.
template <typename T>
T get_count(const toml::table& t, std::string_view key, T fallback, const std::string& where,
            std::uint64_t max = std::numeric_limits<T>::max()) {
  const auto v = get_or<std::int64_t>(t, key, static_cast<std::int64_t>(fallback), where);
  if (v < 0 || static_cast<std::uint64_t>(v) > max) {
    throw std::runtime_error(where + ": key '" + std::string(key) + "' must be from 0 to " +
                             std::to_string(max));
  }
  return static_cast<T>(v);
}

// A real number, not NaN or infinite.
inline double get_finite(const toml::table& t, std::string_view key, double fallback,
                         const std::string& where) {
  const double v = get_or<double>(t, key, fallback, where);
  if (!std::isfinite(v)) {
    throw std::runtime_error(where + ": key '" + std::string(key) + "' must be a finite number");
  }
  return v;
}

inline std::chrono::milliseconds get_ms(const toml::table& t, std::string_view key,
                                        std::chrono::milliseconds fallback,
                                        const std::string& where) {
  const auto v = get_or<std::int64_t>(t, key, fallback.count(), where);
  if (v < 0) throw std::runtime_error(where + ": key '" + std::string(key) + "' must be >= 0");
  return std::chrono::milliseconds(v);
}

}  // namespace switchboard::net
