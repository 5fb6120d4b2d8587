// The agent's TOML loader (agent/config_file.hpp) fed arbitrary text.
//
// It may refuse a file only with std::runtime_error naming the file. A file it accepts must give
// a configuration that keeps the loader's rules: vacant_lines >= 1 and exactly the count written
// (a negative count is refused, never wrapped), no negative durations, every service a valid
// name with a host and port, every forward a valid peer, service and numeric listen address.
// The same text parsed with toml++ directly gives the values to compare.
#include <toml++/toml.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "agent/config_file.hpp"
#include "check.hpp"
#include "protocol/names.hpp"
#include "temp_file.hpp"

using namespace switchboard;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const fuzz::scratch_dir dir("fuzz_agent_config");
  const std::string path = dir.write("agent.toml", {data, size});
  agent::agent_config c;
  try {
    c = agent::load_agent_config(path);
  } catch (const std::runtime_error& e) {
    FUZZ_CHECK(std::string_view(e.what()).find(path) != std::string_view::npos,
               "the error does not name the file");
    return 0;
  }
  FUZZ_CHECK(c.options.vacant_lines >= 1, "vacant_lines");
  FUZZ_CHECK(c.options.keepalive.count() >= 0 && c.options.connect_timeout.count() >= 0,
             "negative duration");
  for (const auto& [name, address] : c.services) {
    FUZZ_CHECK(protocol::valid_service_name(name), "service name");
    FUZZ_CHECK(!address.host.empty(), "service host");
  }
  for (const auto& f : c.forwards) {
    FUZZ_CHECK(protocol::valid_user_id(f.peer) && protocol::valid_service_name(f.service),
               "forward peer or service");
    FUZZ_CHECK(!f.listen.empty(), "forward listen address");
  }
  const toml::table t = toml::parse(std::string_view(reinterpret_cast<const char*>(data), size));
  if (const auto* n = t.get_as<std::int64_t>("vacant_lines")) {
    FUZZ_CHECK(n->get() >= 1 && static_cast<std::uint64_t>(n->get()) == c.options.vacant_lines,
               "vacant_lines changed on the way");
  }
  return 0;
}
