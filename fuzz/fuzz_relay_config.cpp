// The relay's TOML loader (relay/config_file.hpp) fed arbitrary text.
//
// It may refuse a file only with std::runtime_error naming the file. A file it accepts must give
// a configuration that keeps the loader's documented rules (docs/configuration.md): keep-alive
// bounds 100 <= min <= max, settings_poll_ms >= 100, login_failure_burst >= 1 and refill > 0 as
// real numbers, no negative durations, at most 256 forwarding threads; and every integer count
// in the file must arrive unchanged (a negative or oversized count is refused, never wrapped).
// The same text parsed with toml++ directly gives the values to compare.
#include <toml++/toml.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "check.hpp"
#include "relay/config_file.hpp"
#include "temp_file.hpp"

using namespace switchboard;

namespace {

std::optional<std::int64_t> integer_at(const toml::table& t, std::string_view table,
                                       std::string_view key) {
  const auto* sub = t.get_as<toml::table>(table);
  if (sub == nullptr) return std::nullopt;
  const auto* v = sub->get_as<std::int64_t>(key);
  if (v == nullptr) return std::nullopt;
  return v->get();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const fuzz::scratch_dir dir("fuzz_relay_config");
  const std::string path = dir.write("relay.toml", {data, size});
  relay::relay_config c;
  try {
    c = relay::load_relay_config(path);
  } catch (const std::runtime_error& e) {
    FUZZ_CHECK(std::string_view(e.what()).find(path) != std::string_view::npos,
               "the error does not name the file");
    return 0;
  }
  FUZZ_CHECK(c.min_keepalive.count() >= 100 && c.min_keepalive <= c.max_keepalive,
             "keep-alive bounds");
  FUZZ_CHECK(c.settings_poll.count() >= 100, "settings_poll_ms");
  FUZZ_CHECK(std::isfinite(c.login_failure_burst) && c.login_failure_burst >= 1,
             "login_failure_burst");
  FUZZ_CHECK(std::isfinite(c.login_failure_refill_s) && c.login_failure_refill_s > 0,
             "login_failure_refill_s");
  for (const auto ms : {c.login_timeout, c.demand_timeout, c.release_timeout, c.drain_timeout}) {
    FUZZ_CHECK(ms.count() >= 0, "negative duration");
  }
  FUZZ_CHECK(c.forward_threads <= 256, "forward_threads");

  // Counts as written in the file.
  const toml::table t = toml::parse(std::string_view(reinterpret_cast<const char*>(data), size));
  if (const auto n = integer_at(t, "limits", "auth_threads")) {
    FUZZ_CHECK(*n >= 0 && static_cast<std::uint64_t>(*n) == c.auth_threads,
               "auth_threads changed on the way");
  }
  if (const auto n = integer_at(t, "limits", "max_pending_logins")) {
    FUZZ_CHECK(*n >= 0 && static_cast<std::uint64_t>(*n) == c.max_pending_logins,
               "max_pending_logins changed on the way");
  }
  return 0;
}
