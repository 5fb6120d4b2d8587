// The pure parts of naming failures: classes and exit statuses, the first-bytes tests of
// protocol/sniff.hpp, and how failure_digest collapses repeated failures.
#include "agent/failure.hpp"

#include <gtest/gtest.h>

#include <array>
#include <set>
#include <stdexcept>

#include "protocol/sniff.hpp"

namespace {

using namespace switchboard;
using agent::failure_class;
using protocol::error_code;
using namespace std::chrono_literals;

TEST(FailureClass, RelayCodesFallIntoTheirClasses) {
  EXPECT_EQ(agent::class_of(error_code::bad_credentials), failure_class::login_refused);
  EXPECT_EQ(agent::class_of(error_code::duplicate_login), failure_class::login_refused);
  EXPECT_EQ(agent::class_of(error_code::rate_limited), failure_class::retry_later);
  EXPECT_EQ(agent::class_of(error_code::busy), failure_class::retry_later);
  EXPECT_EQ(agent::class_of(error_code::relay_shutdown), failure_class::retry_later);
  EXPECT_EQ(agent::class_of(error_code::target_offline), failure_class::call_failed);
  EXPECT_EQ(agent::class_of(error_code::not_allowed), failure_class::call_failed);
  EXPECT_EQ(agent::class_of(error_code::peer_lost), failure_class::session_failed);
  EXPECT_EQ(agent::class_of(error_code::protocol_error), failure_class::other);
  EXPECT_EQ(agent::class_of(static_cast<error_code>(999)), failure_class::other);
}

TEST(FailureClass, ExitStatusesAreDistinctAndListed) {
  const std::array classes{failure_class::other,         failure_class::unreachable,
                           failure_class::tls,           failure_class::login_refused,
                           failure_class::retry_later,   failure_class::call_failed,
                           failure_class::session_failed};
  std::set<int> seen{0, agent::usage_exit_status};
  const std::string table = agent::exit_status_table();
  for (const auto c : classes) {
    const int status = agent::exit_status(c);
    EXPECT_TRUE(seen.insert(status).second) << "status " << status << " given twice";
    EXPECT_NE(table.find("  " + std::to_string(status) + "  "), std::string::npos)
        << "status " << status << " missing from the --help table";
  }
}

TEST(FailureClass, ExceptionsMapToExitStatuses) {
  EXPECT_EQ(
      agent::exit_status(std::make_exception_ptr(agent::agent_error(failure_class::tls, "x"))),
      agent::exit_status(failure_class::tls));
  EXPECT_EQ(agent::exit_status(std::make_exception_ptr(std::invalid_argument("bad"))),
            agent::usage_exit_status);
  EXPECT_EQ(agent::exit_status(std::make_exception_ptr(std::runtime_error("other"))), 1);
}

TEST(Sniff, TellsTlsRecordsFromFrames) {
  const std::array<std::uint8_t, 5> client_hello{0x16, 0x03, 0x01, 0x02, 0x00};
  const std::array<std::uint8_t, 5> alert{0x15, 0x03, 0x03, 0x00, 0x02};
  const std::array<std::uint8_t, 4> login{0x01, 0x00, 0x00, 0x30};
  const std::array<std::uint8_t, 4> logged_out{0x87, 0x00, 0x00, 0x19};
  EXPECT_TRUE(protocol::looks_like_tls_record(client_hello));
  EXPECT_TRUE(protocol::looks_like_tls_record(alert));
  EXPECT_FALSE(protocol::looks_like_tls_record(login));
  EXPECT_FALSE(protocol::looks_like_tls_record(logged_out));
  EXPECT_TRUE(protocol::looks_like_login_frame(login));
  EXPECT_FALSE(protocol::looks_like_login_frame(client_hello));
  EXPECT_TRUE(protocol::looks_like_relay_frame(logged_out));
  EXPECT_FALSE(protocol::looks_like_relay_frame(client_hello));
  EXPECT_FALSE(protocol::looks_like_relay_frame(login));
  // One byte is not enough to tell.
  EXPECT_FALSE(protocol::looks_like_tls_record(std::span(client_hello).first(1)));
  EXPECT_FALSE(protocol::looks_like_login_frame(std::span(login).first(1)));
  // A frame type outside 0x81..0x88, or a length over 64 KiB, is no relay frame.
  const std::array<std::uint8_t, 2> data_frame{0x10, 0x00};
  const std::array<std::uint8_t, 2> long_frame{0x87, 0x01};
  EXPECT_FALSE(protocol::looks_like_relay_frame(data_frame));
  EXPECT_FALSE(protocol::looks_like_relay_frame(long_frame));
}

TEST(FailureDigest, ReportsTheFirstFailureThenOneAMinute) {
  agent::failure_digest d;
  const auto t0 = agent::failure_digest::clock::time_point{} + 1h;
  const auto first = d.failed("refused", t0);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->unreported, 0u);
  int reports = 0;
  // Ten failures a second for two minutes: one report a minute, each counting the quiet ones.
  for (int i = 1; i <= 1200; ++i) {
    if (const auto r = d.failed("refused", t0 + i * 100ms)) {
      ++reports;
      EXPECT_EQ(r->unreported, 599u);
    }
  }
  EXPECT_EQ(reports, 2);
  const auto back = d.logged_in(t0 + 121s);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->failures, 1201u);
  EXPECT_EQ(back->after, 121s);
  EXPECT_FALSE(d.logged_in(t0 + 122s).has_value());
}

TEST(FailureDigest, ANewCauseIsReportedAtOnce) {
  agent::failure_digest d;
  const auto t0 = agent::failure_digest::clock::time_point{} + 1h;
  ASSERT_TRUE(d.failed("refused", t0).has_value());
  EXPECT_FALSE(d.failed("refused", t0 + 1s).has_value());
  const auto other = d.failed("certificate", t0 + 2s);
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(other->unreported, 0u);
  EXPECT_EQ(other->since_first, 2s);
  ASSERT_TRUE(d.failed("refused", t0 + 3s).has_value());
}

}  // namespace
