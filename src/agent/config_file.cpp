#include "agent/config_file.hpp"

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
