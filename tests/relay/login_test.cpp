// docs/protocol.md §5 (AUTH state) and §6: login, tickets (more in tickets_test.cpp), login
// deadline, malformed input, rate limits.
#include <algorithm>

#include "relay/harness.hpp"

namespace switchboard::test {
namespace {

namespace p = protocol;

const asio::ip::address localhost = asio::ip::make_address("127.0.0.1");

class LoginFlow : public ::testing::TestWithParam<transport> {};
INSTANTIATE_TEST_SUITE_P(Transports, LoginFlow,
                         ::testing::Values(transport::plaintext, transport::tls), transport_name);

TEST_P(LoginFlow, AgentLogsInWithItsPassword) {
  relay_env env(GetParam());
  env.run([&]() -> awaitable<void> {
    auto alice = env.make_agent("alice");
    co_await start_and_settle(alice, 2);
    EXPECT_GE(alice->stats().password_logins, 1u);
    EXPECT_EQ(alice->stats().lines_open, 2u);
    EXPECT_EQ(env.hub().lines_of("alice"), 2u);
    EXPECT_EQ(env.logins(), 2u);
    EXPECT_EQ(env.counters().failed_logins, 0u);
  });
}

TEST_P(LoginFlow, AgentWithWrongPasswordGetsBadCredentials) {
  relay_env env(GetParam());
  env.run([&]() -> awaitable<void> {
    auto opts = env.agent_options("alice");
    opts.password = "not-the-password";
    opts.one_shot = true;
    auto alice = env.make_agent(opts);
    alice->start();
    std::optional<err> code;
    try {
      co_await alice->wait_ready();
    } catch (const agent::call_error& e) {
      code = e.code();
    }
    CO_ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, err::bad_credentials);
    EXPECT_EQ(env.logins(), 0u);
  });
}

// A refused login ends that line at once, not when connect_timeout runs out.
TEST_P(LoginFlow, AgentEndsARefusedLineAtOnce) {
  relay_env env(GetParam());
  env.run([&]() -> awaitable<void> {
    auto opts = env.agent_options("alice");
    opts.password = "not-the-password";
    opts.one_shot = true;
    opts.connect_timeout = 60s;
    auto alice = env.make_agent(opts);
    alice->start();
    try {
      co_await alice->wait_ready();
    } catch (const agent::call_error&) {
    }
    CO_WAIT_UNTIL(alice->stats().lines_open == 0, 10s);
  });
}

// A relay that refuses connections is retried with back-off, not once per connect_timeout.
TEST(Login, AgentRetriesWhenConnectionsAreRefused) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    std::uint16_t closed_port = 0;
    {
      tcp::acceptor probe(env.io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
      closed_port = probe.local_endpoint().port();
    }
    auto opts = env.agent_options("alice");
    opts.relay_port = closed_port;
    opts.connect_timeout = 60s;
    opts.vacant_lines = 1;
    auto alice = env.make_agent(opts);
    alice->start();
    CO_WAIT_UNTIL(alice->stats().lines_lost >= 3, 10s);
  });
}

TEST(Login, PasswordLoginReturnsLoginOk) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto c = co_await raw_client::connect(env.endpoint);
    const auto ok = co_await c.login("alice", password_of("alice"), 2000);
    EXPECT_NE(ok.line, 0u);
    EXPECT_EQ(ok.keepalive_ms, 2000u);
    EXPECT_EQ(ok.max_lines, store::default_max_lines);
    EXPECT_TRUE(std::any_of(ok.ticket.begin(), ok.ticket.end(), [](auto b) { return b != 0; }));
    EXPECT_EQ(env.counters().password_logins, 1u);
    EXPECT_EQ(env.hub().lines_of("alice"), 1u);
  });
}

TEST(Login, WrongPasswordFailsWithBadCredentialsAndCloses) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto c = co_await raw_client::connect(env.endpoint);
    const auto m = login_message("alice", "wrong-password");
    co_await c.send(m);
    co_await c.expect_fail(err::bad_credentials);
    co_await c.expect_closed();
    EXPECT_EQ(env.counters().failed_logins, 1u);
    EXPECT_EQ(env.logins(), 0u);
  });
}

TEST(Login, UnknownUserFailsWithBadCredentialsAndCloses) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto c = co_await raw_client::connect(env.endpoint);
    const auto m = login_message("mallory", "whatever");
    co_await c.send(m);
    co_await c.expect_fail(err::bad_credentials);
    co_await c.expect_closed();
    EXPECT_EQ(env.counters().failed_logins, 1u);
  });
}

// Versions 1 and 3: the relay reads only the version byte and says which version it speaks.
TEST(Login, OtherVersionsAreUnsupported) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    for (const std::uint8_t version : {1, 3}) {
      auto c = co_await raw_client::connect(env.endpoint);
      auto m = login_message("alice", password_of("alice"));
      m.version = version;
      co_await c.send(m);
      const auto f = co_await c.expect_fail(err::unsupported_version);
      EXPECT_NE(f.message.find("2"), std::string::npos) << f.message;
      co_await c.expect_closed();
    }
    EXPECT_EQ(env.logins(), 0u);
  });
}

TEST(Login, NoLoginWithinTheDeadlineTimesOut) {
  auto cfg = test_config();
  cfg.login_timeout = 300ms;
  relay_env env(transport::plaintext, cfg);
  env.run([&]() -> awaitable<void> {
    auto c = co_await raw_client::connect(env.endpoint);
    co_await c.expect_logged_out(err::login_timeout);
    co_await c.expect_closed();
    // The relay goes on serving.
    auto d = co_await raw_client::connect(env.endpoint);
    co_await d.login("alice", password_of("alice"));
  });
}

// After a malformed line, the relay must still serve others.
awaitable<void> relay_still_serves(relay_env& env) {
  auto c = co_await raw_client::connect(env.endpoint);
  co_await c.login("bob", password_of("bob"));
  co_await c.expect_alive(42);
}

TEST(Login, GarbageBytesAreAProtocolError) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto c = co_await raw_client::connect(env.endpoint);
    const auto garbage = bytes_of("GET / HTTP/1.1\r\nHost: relay\r\n\r\n");
    co_await c.send_bytes(garbage);
    co_await c.expect_logged_out_or_closed(err::protocol_error);
    co_await relay_still_serves(env);
  });
}

TEST(Login, UnknownFrameTypeBeforeLoginIsAProtocolError) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto c = co_await raw_client::connect(env.endpoint);
    const std::vector<std::uint8_t> header{0x7f, 0, 0, 0};
    co_await c.send_bytes(header);
    co_await c.expect_logged_out_or_closed(err::protocol_error);
    co_await relay_still_serves(env);
  });
}

TEST(Login, UnknownFrameTypeAfterLoginIsAProtocolError) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto c = co_await raw_client::connect(env.endpoint);
    co_await c.login("alice", password_of("alice"));
    const std::vector<std::uint8_t> header{0x42, 0, 0, 1, 0};
    co_await c.send_bytes(header);
    co_await c.expect_logged_out_or_closed(err::protocol_error);
    CO_WAIT_UNTIL(env.hub().lines_of("alice") == 0, 5s);
    co_await relay_still_serves(env);
  });
}

TEST(Login, OversizedControlLengthIsDetectedFromTheHeaderAlone) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto c = co_await raw_client::connect(env.endpoint);
    // A LOGIN header announcing 16 KiB + 1: no payload follows, the relay must not wait for it.
    const std::vector<std::uint8_t> header{0x01, 0x00, 0x40, 0x01};
    co_await c.send_bytes(header);
    co_await c.expect_logged_out_or_closed(err::protocol_error);
    co_await relay_still_serves(env);
  });
}

TEST(Login, OversizedDataLengthIsAProtocolError) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto c = co_await raw_client::connect(env.endpoint);
    co_await c.login("alice", password_of("alice"));
    // DATA announcing 1 MiB + 1.
    const std::vector<std::uint8_t> header{0x10, 0x10, 0x00, 0x01};
    co_await c.send_bytes(header);
    co_await c.expect_logged_out_or_closed(err::protocol_error);
    co_await relay_still_serves(env);
  });
}

TEST(Login, FrameOtherThanLoginFirstIsAProtocolError) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto c = co_await raw_client::connect(env.endpoint);
    const p::ping ping{1};
    co_await c.send(ping);
    co_await c.expect_logged_out_or_closed(err::protocol_error);
    co_await relay_still_serves(env);
  });
}

TEST(Login, TruncatedLoginThenCloseIsDropped) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto c = co_await raw_client::connect(env.endpoint);
    const auto m = login_message("alice", password_of("alice"));
    auto frame = p::encode(m);
    frame.resize(frame.size() / 2);  // the header promises more than ever comes
    co_await c.send_bytes(frame);
    c.socket().shutdown(tcp::socket::shutdown_send);
    co_await c.expect_logged_out_or_closed(err::protocol_error);
    CO_WAIT_UNTIL(env.hub().line_count() == 0, 5s);
    EXPECT_EQ(env.logins(), 0u);
    co_await relay_still_serves(env);
  });
}

TEST(Login, LoginPayloadWithMissingFieldsIsAProtocolError) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto c = co_await raw_client::connect(env.endpoint);
    const auto m = login_message("alice", password_of("alice"));
    auto frame = p::encode(m);
    // Drop the flags byte and shrink the header's length to match: the payload is whole, but
    // its fields are truncated.
    frame.pop_back();
    const auto h = p::encode_header(p::frame_type::login,
                                    static_cast<std::uint32_t>(frame.size() - p::header_size));
    std::copy(h.begin(), h.end(), frame.begin());
    co_await c.send_bytes(frame);
    co_await c.expect_logged_out_or_closed(err::protocol_error);
    EXPECT_EQ(env.logins(), 0u);
    co_await relay_still_serves(env);
  });
}

TEST(Login, LoginPayloadWithTrailingBytesIsAProtocolError) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto c = co_await raw_client::connect(env.endpoint);
    const auto m = login_message("alice", password_of("alice"));
    auto frame = p::encode(m);
    frame.push_back(0);
    const auto h = p::encode_header(p::frame_type::login,
                                    static_cast<std::uint32_t>(frame.size() - p::header_size));
    std::copy(h.begin(), h.end(), frame.begin());
    co_await c.send_bytes(frame);
    co_await c.expect_logged_out_or_closed(err::protocol_error);
    EXPECT_EQ(env.logins(), 0u);
  });
}

// Rate limits: burst 3, no refill during the test.
relay::relay_config rate_limited_config() {
  auto cfg = test_config();
  cfg.login_failure_burst = 3;
  cfg.login_failure_refill_s = 3600;
  return cfg;
}

// One login attempt from `from`; returns the code of the reply (OK for LOGIN-OK).
awaitable<err> attempt_login(relay_env& env, asio::ip::address from, std::string user,
                             std::string password) {
  auto c = co_await raw_client::connect(env.endpoint, from);
  const auto m = login_message(user, password);
  co_await c.send(m);
  const auto f = co_await c.read();
  CO_ASSERT_TRUE(f.has_value() && f->msg.has_value());
  if (std::holds_alternative<p::login_ok>(*f->msg)) co_return err::ok;
  const auto* fail = std::get_if<p::fail>(&*f->msg);
  CO_ASSERT_TRUE(fail != nullptr);
  co_await c.expect_closed();
  co_return fail->code;
}

TEST(Login, FailuresFromOneAddressAreRateLimited) {
  const auto elsewhere = other_loopback(2);
  if (!elsewhere) GTEST_SKIP() << "cannot bind 127.0.0.2 on this host";
  relay_env env(transport::plaintext, rate_limited_config());
  env.run([&]() -> awaitable<void> {
    // Three failures from 127.0.0.1, each for another user ID: only the address bucket empties.
    for (const char* user : {"mallory", "trudy", "carol"}) {
      const auto code = co_await attempt_login(env, localhost, user, "wrong");
      EXPECT_EQ(code, err::bad_credentials) << user;
    }
    // Even the right password is refused now, without being checked.
    const auto limited = co_await attempt_login(env, localhost, "alice", password_of("alice"));
    EXPECT_EQ(limited, err::rate_limited);
    EXPECT_EQ(env.counters().failed_logins, 3u);
    EXPECT_EQ(env.counters().password_logins, 0u);
    // The same user from another address is fine.
    const auto other = co_await attempt_login(env, *elsewhere, "alice", password_of("alice"));
    EXPECT_EQ(other, err::ok);
  });
}

TEST(Login, FailuresForOneUserAreRateLimited) {
  std::vector<asio::ip::address> from;
  for (int i = 2; i <= 6; ++i) {
    const auto a = other_loopback(i);
    if (!a) GTEST_SKIP() << "cannot bind 127.0.0." << i << " on this host";
    from.push_back(*a);
  }
  relay_env env(transport::plaintext, rate_limited_config());
  env.run([&]() -> awaitable<void> {
    // Three failures for carol, each from another address: only carol's bucket empties.
    for (int i = 0; i < 3; ++i) {
      const auto code = co_await attempt_login(env, from[i], "carol", "wrong");
      EXPECT_EQ(code, err::bad_credentials) << i;
    }
    const auto limited = co_await attempt_login(env, from[3], "carol", password_of("carol"));
    EXPECT_EQ(limited, err::rate_limited);
    const auto limited_too = co_await attempt_login(env, localhost, "carol", password_of("carol"));
    EXPECT_EQ(limited_too, err::rate_limited);
    // Another user from the addresses that failed is fine.
    const auto alice = co_await attempt_login(env, from[0], "alice", password_of("alice"));
    EXPECT_EQ(alice, err::ok);
    const auto bob = co_await attempt_login(env, from[4], "bob", password_of("bob"));
    EXPECT_EQ(bob, err::ok);
  });
}

TEST(Login, RateLimitedAttemptsDoNotCountAsFailures) {
  relay_env env(transport::plaintext, rate_limited_config());
  env.run([&]() -> awaitable<void> {
    for (int i = 0; i < 3; ++i) {
      const auto code = co_await attempt_login(env, localhost, "carol", "wrong");
      EXPECT_EQ(code, err::bad_credentials);
    }
    for (int i = 0; i < 5; ++i) {
      const auto code = co_await attempt_login(env, localhost, "carol", "wrong");
      EXPECT_EQ(code, err::rate_limited);
    }
    EXPECT_EQ(env.counters().failed_logins, 3u);
  });
}

TEST(Login, TicketLoginOpensASecondLineOfTheSameInstance) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto first = co_await raw_client::connect(env.endpoint);
    const auto ok1 = co_await first.login("alice", password_of("alice"));
    auto second = co_await raw_client::connect(env.endpoint);
    const auto reply = co_await second.ticket_login(first);
    const auto* ok2 = std::get_if<p::login_ok>(&reply);
    CO_ASSERT_TRUE(ok2 != nullptr);
    EXPECT_NE(ok2->line, ok1.line);
    // A fresh ticket, expiring no sooner than the first.
    EXPECT_GE(relay::ticket_expiry(ok2->ticket), relay::ticket_expiry(ok1.ticket));
    EXPECT_EQ(env.counters().password_logins, 1u);
    EXPECT_EQ(env.counters().ticket_logins, 1u);
    EXPECT_EQ(env.hub().lines_of("alice"), 2u);
  });
}

TEST(Login, TicketOfAnotherInstanceFails) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto first = co_await raw_client::connect(env.endpoint);
    co_await first.login("alice", password_of("alice"));
    auto second = co_await raw_client::connect(env.endpoint);
    auto m = login_message("alice", std::string(first.ticket().begin(), first.ticket().end()));
    m.auth = p::auth_method::ticket;  // the right ticket, but a fresh random instance ID
    co_await second.send(m);
    co_await second.expect_fail(err::bad_credentials);
    co_await second.expect_closed();
    EXPECT_EQ(env.counters().ticket_logins, 0u);
  });
}

TEST(Login, TicketOfAnotherUserFails) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto first = co_await raw_client::connect(env.endpoint);
    co_await first.login("alice", password_of("alice"));
    auto second = co_await raw_client::connect(env.endpoint);
    auto m = login_message("bob", std::string(first.ticket().begin(), first.ticket().end()), 25'000,
                           true, first.instance());
    m.auth = p::auth_method::ticket;
    co_await second.send(m);
    co_await second.expect_fail(err::bad_credentials);
    EXPECT_EQ(env.counters().ticket_logins, 0u);
  });
}

// The ticket outlives the device: once the instance's last line closed, the relay no longer
// knows it, and the ticket brings it back with a read of the store instead of a password check.
TEST(Login, TicketOutlivesTheInstancesLastLine) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto first = co_await raw_client::connect(env.endpoint);
    co_await first.login("alice", password_of("alice"));
    first.close();
    CO_WAIT_UNTIL(env.hub().line_count() == 0, 5s);
    auto second = co_await raw_client::connect(env.endpoint);
    const auto reply = co_await second.ticket_login(first);
    EXPECT_TRUE(std::holds_alternative<p::login_ok>(reply));
    EXPECT_EQ(env.counters().password_checks, 1u);
    EXPECT_EQ(env.counters().ticket_store_reads, 1u);
  });
}

}  // namespace
}  // namespace switchboard::test
