#include "relay/config_file.hpp"

#include <spdlog/fmt/fmt.h>

#include <concepts>
#include <string>
#include <thread>

#include "net/toml_util.hpp"

namespace switchboard::relay {

unsigned auto_forward_threads() {
  const unsigned cores = std::thread::hardware_concurrency();
  return cores >= 2 ? cores : 0;
}

unsigned parse_forward_threads(const std::string& text, const std::string& where) {
  if (text == "auto") return auto_forward_threads();
  unsigned long n = 0;
  std::size_t used = 0;
  try {
    n = std::stoul(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || text[0] == '-' || n > 256) {
    throw std::runtime_error(where + ": expected auto or a number of threads from 0 to 256, got '" +
                             text + "'");
  }
  return static_cast<unsigned>(n);
}

relay_config load_relay_config(const std::filesystem::path& file, relay_config c) {
  const std::string where = file.string();
  const toml::table t = net::parse_toml_file(where);
  net::check_keys(t,
                  {"log_level", "listen", "data_dir", "plaintext", "cert_file", "key_file",
                   "timeouts", "limits"},
                  where);
  c.log_level = net::get_or<std::string>(t, "log_level", c.log_level, where);
  c.listen = net::get_or<std::string>(t, "listen", c.listen, where);
  c.data_dir = net::get_or<std::string>(t, "data_dir", c.data_dir.string(), where);
  c.plaintext = net::get_or<bool>(t, "plaintext", c.plaintext, where);
  c.cert_file = net::get_or<std::string>(t, "cert_file", c.cert_file.string(), where);
  c.key_file = net::get_or<std::string>(t, "key_file", c.key_file.string(), where);
  if (const auto* tt = t.get_as<toml::table>("timeouts")) {
    const std::string w = where + " [timeouts]";
    net::check_keys(*tt,
                    {"login_ms", "keepalive_max_ms", "keepalive_min_ms", "demand_ms", "ring_ms",
                     "release_ms", "drain_ms", "settings_poll_ms", "ticket_lifetime_s"},
                    w);
    c.login_timeout = net::get_ms(*tt, "login_ms", c.login_timeout, w);
    c.max_keepalive = net::get_ms(*tt, "keepalive_max_ms", c.max_keepalive, w);
    c.min_keepalive = net::get_ms(*tt, "keepalive_min_ms", c.min_keepalive, w);
    c.demand_timeout = net::get_ms(*tt, "demand_ms", c.demand_timeout, w);
    c.ring_timeout = net::get_ms(*tt, "ring_ms", c.ring_timeout, w);
    c.release_timeout = net::get_ms(*tt, "release_ms", c.release_timeout, w);
    c.drain_timeout = net::get_ms(*tt, "drain_ms", c.drain_timeout, w);
    c.settings_poll = net::get_ms(*tt, "settings_poll_ms", c.settings_poll, w);
    c.ticket_lifetime = std::chrono::seconds(net::get_count<std::int64_t>(
        *tt, "ticket_lifetime_s", c.ticket_lifetime.count(), w, 31'622'400));
  }
  if (const auto* lt = t.get_as<toml::table>("limits")) {
    const std::string w = where + " [limits]";
    net::check_keys(*lt,
                    {"login_failure_burst", "login_failure_refill_s", "max_pending_logins",
                     "max_waiting_per_address", "max_waiting", "caller_line_share", "auth_threads",
                     "forward_threads"},
                    w);
    c.login_failure_burst = net::get_finite(*lt, "login_failure_burst", c.login_failure_burst, w);
    c.login_failure_refill_s =
        net::get_finite(*lt, "login_failure_refill_s", c.login_failure_refill_s, w);
    c.max_pending_logins = net::get_count(*lt, "max_pending_logins", c.max_pending_logins, w);
    c.max_waiting_per_address =
        net::get_count(*lt, "max_waiting_per_address", c.max_waiting_per_address, w);
    c.max_waiting = net::get_count(*lt, "max_waiting", c.max_waiting, w);
    c.caller_line_share = net::get_finite(*lt, "caller_line_share", c.caller_line_share, w);
    c.auth_threads = net::get_count(*lt, "auth_threads", c.auth_threads, w);
    if (const auto* n = lt->get("forward_threads")) {
      const std::string what = w + " forward_threads";
      if (const auto* text = n->as_string()) {
        c.forward_threads = parse_forward_threads(text->get(), what);
      } else if (const auto* count = n->as_integer()) {
        c.forward_threads = parse_forward_threads(std::to_string(count->get()), what);
      } else {
        throw std::runtime_error(what + ": expected a number or \"auto\"");
      }
    }
  }
  if (c.min_keepalive.count() < 100 || c.max_keepalive < c.min_keepalive) {
    throw std::runtime_error(where + ": need 100 <= keepalive_min_ms <= keepalive_max_ms");
  }
  if (c.settings_poll.count() < 100) {
    throw std::runtime_error(where + ": settings_poll_ms must be at least 100");
  }
  if (c.login_failure_burst < 1 || c.login_failure_refill_s <= 0) {
    throw std::runtime_error(where + ": login_failure_burst >= 1 and login_failure_refill_s > 0");
  }
  if (c.max_waiting_per_address < 1 || c.max_waiting < c.max_waiting_per_address) {
    throw std::runtime_error(where + ": need 1 <= max_waiting_per_address <= max_waiting");
  }
  if (!(c.caller_line_share > 0 && c.caller_line_share <= 1)) {
    throw std::runtime_error(where + ": caller_line_share must be above 0 and at most 1");
  }
  if (c.ticket_lifetime.count() < 60) {
    throw std::runtime_error(where + ": ticket_lifetime_s must be at least 60");
  }
  if (c.ring_timeout.count() < 100) {
    throw std::runtime_error(where + ": ring_ms must be at least 100");
  }
  if (!valid_log_level(c.log_level)) {
    throw std::runtime_error(where + ": log_level must be one of " + std::string(log_levels));
  }
  return c;
}

bool valid_log_level(const std::string& level) {
  for (const char* l : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    if (level == l) return true;
  }
  return false;
}

namespace {

std::string shown(const std::string& v) {
  return v.empty() ? "\"\"" : v;
}
std::string shown(const std::filesystem::path& v) {
  return shown(v.string());
}
std::string shown(bool v) {
  return v ? "true" : "false";
}
std::string shown(milliseconds v) {
  return std::to_string(v.count());
}
std::string shown(double v) {
  return fmt::format("{}", v);
}
template <std::integral T>
std::string shown(T v) {
  return std::to_string(v);
}

}  // namespace

reload_plan plan_reload(const relay_config& running, const relay_config& loaded) {
  reload_plan plan{running, {}, {}};
  // One setting under its name in the file: taken over if `live`, else named as refused.
  const auto setting = [&](const char* name, auto relay_config::*member, bool live) {
    const auto& was = running.*member;
    const auto& now = loaded.*member;
    if (was == now) return;
    std::string what = fmt::format("{} {} -> {}", name, shown(was), shown(now));
    if (live) {
      plan.next.*member = now;
      plan.changed.push_back(std::move(what));
    } else {
      plan.refused.push_back(std::move(what));
    }
  };
  using c = relay_config;
  setting("log_level", &c::log_level, true);
  setting("listen", &c::listen, false);
  setting("data_dir", &c::data_dir, false);
  setting("plaintext", &c::plaintext, false);
  setting("cert_file", &c::cert_file, true);
  setting("key_file", &c::key_file, true);
  setting("timeouts.login_ms", &c::login_timeout, true);
  setting("timeouts.keepalive_max_ms", &c::max_keepalive, true);
  setting("timeouts.keepalive_min_ms", &c::min_keepalive, true);
  setting("timeouts.demand_ms", &c::demand_timeout, true);
  setting("timeouts.ring_ms", &c::ring_timeout, true);
  setting("timeouts.release_ms", &c::release_timeout, true);
  setting("timeouts.drain_ms", &c::drain_timeout, true);
  setting("timeouts.settings_poll_ms", &c::settings_poll, true);
  setting("limits.login_failure_burst", &c::login_failure_burst, true);
  setting("limits.login_failure_refill_s", &c::login_failure_refill_s, true);
  setting("limits.max_pending_logins", &c::max_pending_logins, true);
  setting("limits.max_waiting_per_address", &c::max_waiting_per_address, true);
  setting("limits.max_waiting", &c::max_waiting, true);
  setting("limits.caller_line_share", &c::caller_line_share, true);
  setting("limits.auth_threads", &c::auth_threads, false);
  setting("limits.forward_threads", &c::forward_threads, false);
  setting("offload_after_frames", &c::offload_after_frames, true);
  return plan;
}

}  // namespace switchboard::relay
