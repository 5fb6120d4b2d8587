#include "agent/config_file.hpp"

#include <algorithm>
#include <stdexcept>

#include "net/toml_util.hpp"
#include "protocol/names.hpp"

namespace switchboard::agent {

std::pair<std::string, std::string> parse_peer_service(const std::string& text) {
  const auto colon = text.find(':');
  if (colon == std::string::npos) {
    throw std::invalid_argument("'" + text + "' is not PEER:SERVICE");
  }
  std::string peer = text.substr(0, colon);
  std::string service = text.substr(colon + 1);
  if (!protocol::valid_user_id(peer)) throw std::invalid_argument("invalid user ID '" + peer + "'");
  if (!protocol::valid_service_name(service)) {
    throw std::invalid_argument("invalid service name '" + service + "' (1-32 of a-z 0-9 . _ -)");
  }
  return {peer, service};
}

std::pair<std::string, net::host_port> parse_service_spec(const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos) throw std::invalid_argument("'" + text + "' is not NAME=HOST:PORT");
  std::string name = text.substr(0, eq);
  if (!protocol::valid_service_name(name)) {
    throw std::invalid_argument("invalid service name '" + name + "' (1-32 of a-z 0-9 . _ -)");
  }
  return {name, net::parse_host_port(text.substr(eq + 1))};
}

namespace {

// The value parsers throw std::invalid_argument without the file; the loader's errors name it.
template <typename Parse>
auto parsed(const std::string& where, Parse&& parse) {
  try {
    return parse();
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(where + ": " + e.what());
  }
}

}  // namespace

agent_reload_plan plan_agent_reload(const agent_config& running, const agent_config& loaded) {
  agent_reload_plan plan;
  for (const auto& [name, where] : loaded.services) {
    const auto it = running.services.find(name);
    if (it == running.services.end()) {
      plan.services_added.push_back(name);
    } else if (it->second.host != where.host || it->second.port != where.port) {
      plan.services_changed.push_back(name);
    }
  }
  for (const auto& [name, where] : running.services) {
    if (!loaded.services.contains(name)) plan.services_removed.push_back(name);
  }
  const auto has = [](const std::vector<forward_spec>& list, const forward_spec& f) {
    return std::find(list.begin(), list.end(), f) != list.end();
  };
  for (const auto& f : loaded.forwards) {
    if (!has(running.forwards, f) && !has(plan.forwards_added, f)) plan.forwards_added.push_back(f);
  }
  for (const auto& f : running.forwards) {
    if (!has(loaded.forwards, f)) plan.forwards_removed.push_back(f);
  }
  const auto& a = running.options;
  const auto& b = loaded.options;
  const auto setting = [&plan](const char* name, const std::string& was, const std::string& now) {
    if (was != now) plan.refused.push_back(std::string(name) + " " + was + " -> " + now);
  };
  const auto ms = [](milliseconds v) { return std::to_string(v.count()); };
  setting("relay", a.relay_host + ":" + std::to_string(a.relay_port),
          b.relay_host + ":" + std::to_string(b.relay_port));
  setting("user", a.user, b.user);
  setting("password_file", running.password_file.string(), loaded.password_file.string());
  setting("fingerprint", a.tls.fingerprint, b.tls.fingerprint);
  setting("ca", a.tls.ca_file.string(), b.tls.ca_file.string());
  setting("plaintext", a.plaintext ? "true" : "false", b.plaintext ? "true" : "false");
  setting("keepalive_ms", ms(a.keepalive), ms(b.keepalive));
  setting("vacant_lines", std::to_string(a.vacant_lines), std::to_string(b.vacant_lines));
  setting("connect_timeout_ms", ms(a.connect_timeout), ms(b.connect_timeout));
  return plan;
}

agent_config load_agent_config(const std::filesystem::path& file, agent_config c) {
  const std::string where = file.string();
  const toml::table t = net::parse_toml_file(where);
  net::check_keys(t,
                  {"relay", "user", "password_file", "fingerprint", "ca", "plaintext",
                   "keepalive_ms", "vacant_lines", "connect_timeout_ms", "services", "forward"},
                  where);
  auto& o = c.options;
  if (t.contains("relay")) {
    const auto text = net::get_or<std::string>(t, "relay", "", where);
    const auto hp = parsed(where, [&] { return net::parse_host_port(text); });
    o.relay_host = hp.host;
    o.relay_port = hp.port;
  }
  o.user = net::get_or<std::string>(t, "user", o.user, where);
  c.password_file = net::get_or<std::string>(t, "password_file", c.password_file.string(), where);
  o.tls.fingerprint = net::get_or<std::string>(t, "fingerprint", o.tls.fingerprint, where);
  o.tls.ca_file = net::get_or<std::string>(t, "ca", o.tls.ca_file.string(), where);
  o.plaintext = net::get_or<bool>(t, "plaintext", o.plaintext, where);
  o.keepalive = net::get_ms(t, "keepalive_ms", o.keepalive, where);
  o.vacant_lines = net::get_count(t, "vacant_lines", o.vacant_lines, where);
  o.connect_timeout = net::get_ms(t, "connect_timeout_ms", o.connect_timeout, where);
  if (const auto* st = t.get_as<toml::table>("services")) {
    for (const auto& [name, addr] : *st) {
      const auto v = addr.value<std::string>();
      if (!v)
        throw std::runtime_error(where + ": [services] " + std::string(name.str()) +
                                 " must be \"HOST:PORT\"");
      // A named local: clang 14 cannot capture a structured binding in a lambda.
      const std::string text = std::string(name.str()) + "=" + *v;
      const auto spec = parsed(where, [&] { return parse_service_spec(text); });
      c.services[spec.first] = spec.second;
    }
  }
  if (const auto* fa = t.get_as<toml::array>("forward")) {
    for (const auto& node : *fa) {
      const auto* ft = node.as_table();
      if (!ft) throw std::runtime_error(where + ": [[forward]] entries must be tables");
      net::check_keys(*ft, {"peer", "service", "listen"}, where + " [[forward]]");
      forward_spec f{net::get_or<std::string>(*ft, "peer", "", where),
                     net::get_or<std::string>(*ft, "service", "", where),
                     net::get_or<std::string>(*ft, "listen", "", where)};
      parsed(where + " [[forward]]", [&] { return parse_peer_service(f.peer + ":" + f.service); });
      parsed(where + " [[forward]]", [&] { return net::parse_endpoint(f.listen); });
      c.forwards.push_back(std::move(f));
    }
  }
  if (o.vacant_lines < 1) throw std::runtime_error(where + ": vacant_lines must be >= 1");
  return c;
}

}  // namespace switchboard::agent
