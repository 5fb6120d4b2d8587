// Configuration files of both programs: the shipped samples parse, every key lands where it should,
// and mistakes (unknown keys, wrong types, bad values) are errors that name the problem.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "agent/config_file.hpp"
#include "relay/config_file.hpp"

namespace switchboard {
namespace {

namespace fs = std::filesystem;

class ConfigFile : public ::testing::Test {
 protected:
  fs::path write(const std::string& text) {
    const fs::path p = fs::path(::testing::TempDir()) / ("sb-config-" + std::to_string(::getpid()) +
                                                         "-" + std::to_string(n_++) + ".toml");
    std::ofstream(p) << text;
    files_.push_back(p);
    return p;
  }
  void TearDown() override {
    for (const auto& f : files_) fs::remove(f);
  }
  std::vector<fs::path> files_;
  int n_ = 0;
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST_F(ConfigFile, ShippedRelaySampleParsesToTheDefaults) {
  const auto c = relay::load_relay_config(fs::path(SB_SOURCE_DIR) / "config/relay.toml");
  const relay::relay_config d;
  EXPECT_EQ(c.listen, d.listen);
  EXPECT_EQ(c.login_timeout, d.login_timeout);
  EXPECT_EQ(c.max_keepalive, d.max_keepalive);
  EXPECT_EQ(c.demand_timeout, d.demand_timeout);
  EXPECT_EQ(c.release_timeout, d.release_timeout);
  EXPECT_EQ(c.drain_timeout, d.drain_timeout);
  EXPECT_EQ(c.settings_poll, d.settings_poll);
  EXPECT_EQ(c.max_pending_logins, d.max_pending_logins);
  EXPECT_FALSE(c.plaintext);
}

TEST_F(ConfigFile, ShippedAgentSampleParses) {
  const auto c = agent::load_agent_config(fs::path(SB_SOURCE_DIR) / "config/agent.toml");
  EXPECT_EQ(c.options.relay_host, "relay.example.com");
  EXPECT_EQ(c.options.relay_port, 7443);
  EXPECT_EQ(c.options.user, "bob");
  ASSERT_EQ(c.services.size(), 2u);
  EXPECT_EQ(c.services.at("ssh").port, 22);
  ASSERT_EQ(c.forwards.size(), 1u);
  EXPECT_EQ(c.forwards[0].peer, "alice");
  EXPECT_EQ(c.forwards[0].listen, "127.0.0.1:18080");
}

TEST_F(ConfigFile, RelayKeysLandInTheConfig) {
  const auto c = relay::load_relay_config(write(R"(
listen = "127.0.0.1:9000"
plaintext = true
[timeouts]
login_ms = 300
keepalive_min_ms = 100
keepalive_max_ms = 200
demand_ms = 500
release_ms = 700
drain_ms = 900
settings_poll_ms = 250
[limits]
login_failure_burst = 3
login_failure_refill_s = 2.5
max_pending_logins = 7
auth_threads = 1
forward_threads = 3
)"));
  EXPECT_EQ(c.listen, "127.0.0.1:9000");
  EXPECT_TRUE(c.plaintext);
  EXPECT_EQ(c.login_timeout.count(), 300);
  EXPECT_EQ(c.min_keepalive.count(), 100);
  EXPECT_EQ(c.max_keepalive.count(), 200);
  EXPECT_EQ(c.demand_timeout.count(), 500);
  EXPECT_EQ(c.release_timeout.count(), 700);
  EXPECT_EQ(c.drain_timeout.count(), 900);
  EXPECT_EQ(c.settings_poll.count(), 250);
  EXPECT_DOUBLE_EQ(c.login_failure_burst, 3);
  EXPECT_DOUBLE_EQ(c.login_failure_refill_s, 2.5);
  EXPECT_EQ(c.max_pending_logins, 7u);
  EXPECT_EQ(c.auth_threads, 1u);
  EXPECT_EQ(c.forward_threads, 3u);
}

TEST_F(ConfigFile, RelayForwardThreadsTakeAutoOrACount) {
  const auto automatic = relay::load_relay_config(write("[limits]\nforward_threads = \"auto\""));
  EXPECT_EQ(automatic.forward_threads, relay::auto_forward_threads());
  const auto none = relay::load_relay_config(write("[limits]\nforward_threads = 0"));
  EXPECT_EQ(none.forward_threads, 0u);
  for (const char* bad : {"-1", "\"many\"", "257", "1.5", "\"2x\""}) {
    const std::string text = std::string("[limits]\nforward_threads = ") + bad;
    EXPECT_NE(error_of([&] { relay::load_relay_config(write(text)); }).find("forward_threads"),
              std::string::npos)
        << bad;
  }
}

TEST_F(ConfigFile, RelayMistakesAreNamed) {
  EXPECT_NE(error_of([&] { relay::load_relay_config(write("lisen = \"x\"")); }).find("lisen"),
            std::string::npos);
  EXPECT_NE(
      error_of([&] { relay::load_relay_config(write("[timeouts]\nlogin = 1")); }).find("login"),
      std::string::npos);
  EXPECT_NE(
      error_of([&] { relay::load_relay_config(write("plaintext = \"yes\"")); }).find("wrong type"),
      std::string::npos);
  EXPECT_NE(
      error_of([&] { relay::load_relay_config(write("[timeouts]\ndemand_ms = -1")); }).find(">= 0"),
      std::string::npos);
  EXPECT_NE(error_of([&] {
              relay::load_relay_config(
                  write("[timeouts]\nkeepalive_min_ms = 5000\nkeepalive_max_ms = 1000"));
            }).find("keepalive"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              relay::load_relay_config(write("[timeouts]\nsettings_poll_ms = 10"));
            }).find("settings_poll_ms"),
            std::string::npos);
  EXPECT_NE(error_of([&] { relay::load_relay_config(write("listen = ")); }).find("line 1"),
            std::string::npos);
  EXPECT_THROW(relay::load_relay_config("/nonexistent/relay.toml"), std::runtime_error);
}

TEST_F(ConfigFile, AgentMistakesAreNamed) {
  EXPECT_NE(error_of([&] { agent::load_agent_config(write("usr = \"bob\"")); }).find("usr"),
            std::string::npos);
  EXPECT_NE(error_of([&] { agent::load_agent_config(write("relay = \"nohost\"")); }).find("nohost"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              agent::load_agent_config(write("[services]\nSSH = \"127.0.0.1:22\""));
            }).find("SSH"),
            std::string::npos);
  EXPECT_NE(error_of([&] { agent::load_agent_config(write("[services]\nssh = 22")); }).find("ssh"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              agent::load_agent_config(write(
                  "[[forward]]\npeer = \"bob\"\nservice = \"web\"\nlisten = \"localhost:80\""));
            }).find("numeric"),
            std::string::npos);
  EXPECT_NE(
      error_of([&] {
        agent::load_agent_config(write(
            "[[forward]]\npeer = \"bob\"\nservice = \"web\"\nlisten = \"127.0.0.1:1\"\nport = 2"));
      }).find("port"),
      std::string::npos);
  EXPECT_NE(
      error_of([&] { agent::load_agent_config(write("vacant_lines = 0")); }).find("vacant_lines"),
      std::string::npos);
}

// Found by fuzz/fuzz_relay_config.cpp: NaN passed the `burst >= 1` check, negative counts wrapped.
TEST_F(ConfigFile, RelayRatesMustBeFiniteAndCountsAreNeverWrapped) {
  for (const char* bad :
       {"login_failure_burst = nan", "login_failure_burst = -nan", "login_failure_burst = inf",
        "login_failure_refill_s = nan", "login_failure_refill_s = inf"}) {
    EXPECT_NE(error_of([&] {
                relay::load_relay_config(write(std::string("[limits]\n") + bad));
              }).find(std::string(bad).substr(0, std::string(bad).find(' '))),
              std::string::npos)
        << bad;
  }
  for (const char* bad :
       {"auth_threads = -1", "max_pending_logins = -256", "auth_threads = 4294967296"}) {
    EXPECT_NE(error_of([&] {
                relay::load_relay_config(write(std::string("[limits]\n") + bad));
              }).find("must be from 0 to"),
              std::string::npos)
        << bad;
  }
  const auto c =
      relay::load_relay_config(write("[limits]\nauth_threads = 0\nmax_pending_logins = 7"));
  EXPECT_EQ(c.auth_threads, 0u);
  EXPECT_EQ(c.max_pending_logins, 7u);
}

// Found by fuzz/fuzz_agent_config.cpp: address and name errors escaped as std::invalid_argument
// without the file's name; a negative vacant_lines wrapped to 2^64 - 1 and passed the >= 1 check.
TEST_F(ConfigFile, AgentValueErrorsAreRuntimeErrorsNamingTheFile) {
  for (const char* bad :
       {"relay = \"nohost\"", "relay = 7443", "[services]\nSSH = \"127.0.0.1:22\"",
        "[services]\nssh = \"127.0.0.1\"",
        "[[forward]]\npeer = \"bob\"\nservice = \"web\"\nlisten = \"localhost:80\"",
        "[[forward]]\npeer = \"-bob\"\nservice = \"web\"\nlisten = \"127.0.0.1:80\"",
        "vacant_lines = -1"}) {
    const fs::path file = write(bad);
    try {
      agent::load_agent_config(file);
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
    }
  }
}

// --- reloading (SIGHUP, docs/configuration.md "Reloading") -------------------------------------

TEST_F(ConfigFile, RelayReloadTakesOverLiveSettingsAndNamesTheOthers) {
  relay::relay_config running;
  running.forward_threads = 2;
  const auto loaded = relay::load_relay_config(write(R"(
log_level = "debug"
listen = "127.0.0.1:9000"
data_dir = "/elsewhere"
[timeouts]
demand_ms = 5000
keepalive_max_ms = 20000
[limits]
login_failure_burst = 3
max_waiting_per_address = 7
forward_threads = 4
auth_threads = 2
)"),
                                               running);
  const auto plan = relay::plan_reload(running, loaded);
  EXPECT_EQ(plan.changed, (std::vector<std::string>{
                              "log_level info -> debug",
                              "timeouts.keepalive_max_ms 25000 -> 20000",
                              "timeouts.demand_ms 30000 -> 5000",
                              "limits.login_failure_burst 10 -> 3",
                              "limits.max_waiting_per_address 1024 -> 7",
                          }));
  EXPECT_EQ(plan.refused, (std::vector<std::string>{
                              "listen 0.0.0.0:7443 -> 127.0.0.1:9000",
                              "data_dir ./switchboard-data -> /elsewhere",
                              "limits.forward_threads 2 -> 4",
                          }));
  EXPECT_EQ(plan.next.log_level, "debug");
  EXPECT_EQ(plan.next.demand_timeout, std::chrono::milliseconds(5000));
  EXPECT_EQ(plan.next.max_keepalive, std::chrono::milliseconds(20000));
  EXPECT_EQ(plan.next.login_failure_burst, 3);
  EXPECT_EQ(plan.next.max_waiting_per_address, 7u);
  // What needs a restart keeps its running value.
  EXPECT_EQ(plan.next.listen, running.listen);
  EXPECT_EQ(plan.next.data_dir, running.data_dir);
  EXPECT_EQ(plan.next.forward_threads, 2u);
}

TEST_F(ConfigFile, RelayReloadOfTheSameFileChangesNothing) {
  const auto file = write("[timeouts]\ndemand_ms = 5000\n");
  const auto running = relay::load_relay_config(file);
  const auto plan = relay::plan_reload(running, relay::load_relay_config(file));
  EXPECT_TRUE(plan.changed.empty());
  EXPECT_TRUE(plan.refused.empty());
  EXPECT_EQ(plan.next.demand_timeout, std::chrono::milliseconds(5000));
}

TEST_F(ConfigFile, RelayLogLevelMustBeKnown) {
  EXPECT_NE(error_of([&] {
              relay::load_relay_config(write("log_level = \"loud\"\n"));
            }).find("log_level"),
            std::string::npos);
}

TEST_F(ConfigFile, AgentReloadListsServiceAndForwardChangesAndRefusesTheRest) {
  const auto running = agent::load_agent_config(write(R"(
relay = "127.0.0.1:7443"
user = "bob"
[services]
ssh = "127.0.0.1:22"
web = "127.0.0.1:80"
old = "127.0.0.1:1"
[[forward]]
peer = "alice"
service = "web"
listen = "127.0.0.1:18080"
[[forward]]
peer = "alice"
service = "ssh"
listen = "127.0.0.1:18022"
)"));
  const auto loaded = agent::load_agent_config(write(R"(
relay = "127.0.0.1:7444"
user = "bob"
vacant_lines = 4
[services]
ssh = "127.0.0.1:22"
web = "127.0.0.1:8080"
new = "127.0.0.1:2"
[[forward]]
peer = "alice"
service = "ssh"
listen = "127.0.0.1:18022"
[[forward]]
peer = "carol"
service = "web"
listen = "127.0.0.1:18081"
)"));
  const auto plan = agent::plan_agent_reload(running, loaded);
  EXPECT_EQ(plan.services_added, std::vector<std::string>{"new"});
  EXPECT_EQ(plan.services_removed, std::vector<std::string>{"old"});
  EXPECT_EQ(plan.services_changed, std::vector<std::string>{"web"});
  ASSERT_EQ(plan.forwards_added.size(), 1u);
  EXPECT_EQ(plan.forwards_added[0].peer, "carol");
  ASSERT_EQ(plan.forwards_removed.size(), 1u);
  EXPECT_EQ(plan.forwards_removed[0].listen, "127.0.0.1:18080");
  EXPECT_EQ(plan.refused, (std::vector<std::string>{"relay 127.0.0.1:7443 -> 127.0.0.1:7444",
                                                    "vacant_lines 2 -> 4"}));
  EXPECT_TRUE(plan.changes_something());
  EXPECT_FALSE(agent::plan_agent_reload(loaded, loaded).changes_something());
  EXPECT_TRUE(agent::plan_agent_reload(loaded, loaded).refused.empty());
}

TEST(PeerServiceSpec, ParsesAndRejects) {
  EXPECT_EQ(agent::parse_peer_service("bob:ssh").first, "bob");
  EXPECT_EQ(agent::parse_peer_service("bob:ssh").second, "ssh");
  EXPECT_THROW(agent::parse_peer_service("bob"), std::invalid_argument);
  EXPECT_THROW(agent::parse_peer_service(":ssh"), std::invalid_argument);
  EXPECT_THROW(agent::parse_peer_service("bob:SSH"), std::invalid_argument);
  EXPECT_EQ(agent::parse_service_spec("web=127.0.0.1:80").second.port, 80);
  EXPECT_THROW(agent::parse_service_spec("web"), std::invalid_argument);
  EXPECT_THROW(agent::parse_service_spec("web=127.0.0.1"), std::invalid_argument);
}

}  // namespace
}  // namespace switchboard
