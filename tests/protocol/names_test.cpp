// Name validation (docs/protocol.md section 2) and the error code table (section 4).
#include "protocol/names.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "protocol/errors.hpp"

namespace {

using namespace switchboard::protocol;
using namespace std::string_literals;

TEST(NameLimits, MatchSpec) {
  EXPECT_EQ(max_user_id, 64u);
  EXPECT_EQ(max_service_name, 32u);
  EXPECT_EQ(max_text, 1024u);
  EXPECT_EQ(max_password, 1024u);
}

// --- user IDs: 1..64 bytes of A-Z a-z 0-9 . _ @ -, not starting with '.' or '-' -----------------

TEST(UserId, AcceptsValid) {
  for (std::string_view id : {"a",           "A",
                              "0",           "_",
                              "@",           "alice",
                              "Alice",       "ALICE",
                              "bob42",       "alice@example.com",
                              "first.last",  "first_last",
                              "first-last",  "a.",
                              "a-",          "a..b",
                              "a--b",        "_leading_underscore",
                              "@leading.at", "0leading.digit",
                              "x-1.y_2@z",   "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"}) {
    EXPECT_TRUE(valid_user_id(id)) << id;
  }
  EXPECT_TRUE(valid_user_id(std::string(64, 'a')));
  EXPECT_TRUE(valid_user_id("_" + std::string(63, '-')));
  EXPECT_TRUE(valid_user_id("a" + std::string(63, '.')));
}

TEST(UserId, RejectsBadLength) {
  EXPECT_FALSE(valid_user_id(""));
  EXPECT_FALSE(valid_user_id(std::string(65, 'a')));
  EXPECT_FALSE(valid_user_id(std::string(255, 'a')));
}

TEST(UserId, RejectsLeadingDotOrDash) {
  for (std::string_view id : {".", "-", ".alice", "-alice", "..", "--", ".-", "-."}) {
    EXPECT_FALSE(valid_user_id(id)) << id;
  }
  EXPECT_FALSE(valid_user_id("." + std::string(63, 'a')));
  EXPECT_FALSE(valid_user_id("-" + std::string(63, 'a')));
}

TEST(UserId, RejectsOtherCharacters) {
  for (std::string_view id :
       {"a b", " a",  "a ",  "a\tb", "a/b", "a\\b", "a:b",  "a+b",  "a,b",  "a;b",  "a!b",
        "a#b", "a$b", "a%b", "a&b",  "a*b", "a=b",  "a?b",  "a~b",  "a'b",  "a\"b", "a(b",
        "a[b", "a{b", "a<b", "a|b",  "a^b", "a`b",  "a\nb", "a\rb", "a\x7f"}) {
    EXPECT_FALSE(valid_user_id(id)) << id;
  }
  EXPECT_FALSE(valid_user_id("a\0b"s));
  EXPECT_FALSE(valid_user_id("\0"s));
  // Non-ASCII (UTF-8 and stray high bytes) is not in the alphabet.
  EXPECT_FALSE(valid_user_id("j\xc3\xb6rg"));  // "jörg"
  EXPECT_FALSE(valid_user_id("\xc3\xa9"));
  EXPECT_FALSE(valid_user_id("a\x80"));
  EXPECT_FALSE(valid_user_id("a\xff"));
  EXPECT_FALSE(
      valid_user_id("\xe2\x80\x8b"
                    "a"));  // zero-width space
  // One bad byte anywhere in an otherwise valid 64-byte ID.
  for (std::size_t i = 0; i < 64; ++i) {
    std::string id(64, 'a');
    id[i] = '/';
    EXPECT_FALSE(valid_user_id(id)) << i;
  }
}

TEST(UserId, EveryByteValueAsSecondCharacter) {
  for (int c = 0; c < 256; ++c) {
    const char ch = static_cast<char>(c);
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '@' || c == '-';
    EXPECT_EQ(valid_user_id(std::string("a") + ch), allowed) << c;
    // As the first character, '.' and '-' are additionally excluded.
    EXPECT_EQ(valid_user_id(std::string(1, ch)), allowed && c != '.' && c != '-') << c;
  }
}

// --- service names: 1..32 bytes of a-z 0-9 . _ - ---------------------------------------------

TEST(ServiceName, AcceptsValid) {
  for (std::string_view name : {"a", "0", "ssh", "http", "web-8080", "my_service", "v1.2", ".", "-",
                                "_", ".hidden", "-dash", "a.b_c-d", "0123456789"}) {
    EXPECT_TRUE(valid_service_name(name)) << name;
  }
  EXPECT_TRUE(valid_service_name(std::string(32, 'z')));
}

TEST(ServiceName, RejectsBadLength) {
  EXPECT_FALSE(valid_service_name(""));
  EXPECT_FALSE(valid_service_name(std::string(33, 'a')));
  EXPECT_FALSE(valid_service_name(std::string(64, 'a')));
}

TEST(ServiceName, RejectsUppercaseAndOtherCharacters) {
  for (std::string_view name :
       {"SSH", "Ssh", "sSh", "A", "Z", "web@host", "a b", "a/b", "a:b", "a+b", "a\tb", "a\x7f",
        "s\xc3\xb6", "\xc3\xa9", "a\x80", "a\xff"}) {
    EXPECT_FALSE(valid_service_name(name)) << name;
  }
  EXPECT_FALSE(valid_service_name("a\0b"s));
}

TEST(ServiceName, EveryByteValue) {
  for (int c = 0; c < 256; ++c) {
    const char ch = static_cast<char>(c);
    const bool allowed =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    EXPECT_EQ(valid_service_name(std::string(1, ch)), allowed) << c;
    EXPECT_EQ(valid_service_name(std::string("svc") + ch), allowed) << c;
  }
}

// --- error codes (section 4) ----------------------------------------------------------------

struct code_row {
  std::uint16_t value;
  error_code code;
  const char* name;
};
constexpr code_row spec_codes[] = {
    {0, error_code::ok, "OK"},
    {1, error_code::bad_credentials, "BAD_CREDENTIALS"},
    {2, error_code::rate_limited, "RATE_LIMITED"},
    {3, error_code::too_many_lines, "TOO_MANY_LINES"},
    {4, error_code::unsupported_version, "UNSUPPORTED_VERSION"},
    {5, error_code::login_timeout, "LOGIN_TIMEOUT"},
    {10, error_code::target_offline, "TARGET_OFFLINE"},
    {11, error_code::target_busy, "TARGET_BUSY"},
    {12, error_code::not_allowed, "NOT_ALLOWED"},
    {13, error_code::self_call, "SELF_CALL"},
    {14, error_code::rejected, "REJECTED"},
    {15, error_code::no_answer, "NO_ANSWER"},
    {16, error_code::unknown_service, "UNKNOWN_SERVICE"},
    {17, error_code::service_unavailable, "SERVICE_UNAVAILABLE"},
    {20, error_code::protocol_error, "PROTOCOL_ERROR"},
    {21, error_code::peer_lost, "PEER_LOST"},
    {22, error_code::peer_logged_out, "PEER_LOGGED_OUT"},
    {23, error_code::duplicate_login, "DUPLICATE_LOGIN"},
    {24, error_code::relay_shutdown, "RELAY_SHUTDOWN"},
    {25, error_code::keepalive_timeout, "KEEPALIVE_TIMEOUT"},
    {26, error_code::busy, "BUSY"},
};

TEST(ErrorCodes, ValuesAndNamesMatchSpecTable) {
  for (const auto& row : spec_codes) {
    EXPECT_EQ(static_cast<std::uint16_t>(row.code), row.value) << row.name;
    EXPECT_EQ(error_name(row.code), row.name) << row.value;
    EXPECT_EQ(error_name(static_cast<error_code>(row.value)), row.name) << row.value;
  }
}

TEST(ErrorCodes, EveryKnownCodeHasItsOwnText) {
  const std::string_view unknown_text = error_text(static_cast<error_code>(9));
  std::set<std::string_view> texts;
  for (const auto& row : spec_codes) {
    const std::string_view text = error_text(row.code);
    EXPECT_FALSE(text.empty()) << row.name;
    EXPECT_NE(text, unknown_text) << row.name;
    EXPECT_TRUE(texts.insert(text).second) << row.name << " shares its text: " << text;
  }
}

TEST(ErrorCodes, UnknownCodesAreUnknown) {
  std::set<std::uint16_t> known;
  for (const auto& row : spec_codes) known.insert(row.value);
  for (std::uint32_t v = 0; v <= 0xffff; ++v) {
    const auto value = static_cast<std::uint16_t>(v);
    if (known.count(value) != 0) continue;
    const auto code = static_cast<error_code>(value);
    ASSERT_EQ(error_name(code), "UNKNOWN") << v;
    ASSERT_FALSE(error_text(code).empty()) << v;
  }
  // Spot checks of the gaps in the table and the ends of the u16 space.
  for (std::uint16_t v : {6, 7, 8, 9, 18, 19, 27, 100, 0x7fff, 0x8000, 0xffff}) {
    EXPECT_EQ(error_name(static_cast<error_code>(v)), "UNKNOWN") << v;
  }
}

}  // namespace
