// Frame header codec: docs/protocol.md sections 2 and 3.
#include "protocol/frame.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "protocol/errors.hpp"

namespace {

using namespace switchboard::protocol;

using header_bytes = std::array<std::uint8_t, header_size>;

// Every frame type of the spec table (section 3), with its byte and name.
struct type_row {
  frame_type type;
  std::uint8_t byte;
  const char* name;
};
constexpr type_row all_types[] = {
    {frame_type::login, 0x01, "LOGIN"},
    {frame_type::ping, 0x02, "PING"},
    {frame_type::peers_request, 0x03, "PEERS?"},
    {frame_type::demand, 0x04, "DEMAND"},
    {frame_type::accept, 0x05, "ACCEPT"},
    {frame_type::reject, 0x06, "REJECT"},
    {frame_type::logout, 0x07, "LOGOUT"},
    {frame_type::release, 0x08, "RELEASE"},
    {frame_type::announce, 0x09, "ANNOUNCE"},
    {frame_type::data, 0x10, "DATA"},
    {frame_type::eof, 0x11, "EOF"},
    {frame_type::terminate, 0x12, "TERMINATE"},
    {frame_type::login_ok, 0x81, "LOGIN-OK"},
    {frame_type::pong, 0x82, "PONG"},
    {frame_type::peers, 0x83, "PEERS"},
    {frame_type::incoming, 0x84, "INCOMING"},
    {frame_type::connected, 0x85, "CONNECTED"},
    {frame_type::fail, 0x86, "FAIL"},
    {frame_type::logged_out, 0x87, "LOGGED-OUT"},
    {frame_type::released, 0x88, "RELEASED"},
    {frame_type::need_lines, 0x89, "NEED-LINES"},
    {frame_type::service_lost, 0x8a, "SERVICE-LOST"},
};

header_bytes raw_header(std::uint8_t type, std::uint32_t length) {
  return {type, static_cast<std::uint8_t>(length >> 16), static_cast<std::uint8_t>(length >> 8),
          static_cast<std::uint8_t>(length)};
}

std::vector<std::uint32_t> lengths_for(frame_type type) {
  if (type == frame_type::data) {
    return {1, 2, 0xff, 0x100, 0x3fff, 0x4000, 0x4001, 0xffff, 0x10000, 0xabcde, max_data_payload};
  }
  return {0, 1, 2, 0xff, 0x100, 0x1234, 0x3fff, max_control_payload};
}

TEST(FrameConstants, MatchSpec) {
  EXPECT_EQ(header_size, 4u);
  EXPECT_EQ(max_data_payload, 1048576u);
  EXPECT_EQ(max_control_payload, 16384u);
}

TEST(FrameType, ByteValuesAndNamesMatchSpecTable) {
  for (const auto& row : all_types) {
    EXPECT_EQ(static_cast<std::uint8_t>(row.type), row.byte) << row.name;
    EXPECT_STREQ(frame_name(row.type), row.name);
  }
}

TEST(FrameHeader, RoundTripEveryTypeAndLength) {
  for (const auto& row : all_types) {
    for (std::uint32_t length : lengths_for(row.type)) {
      SCOPED_TRACE(std::string(row.name) + " length " + std::to_string(length));
      const header_bytes h = encode_header(row.type, length);
      EXPECT_EQ(h, raw_header(row.byte, length));
      const frame_header parsed = parse_header(h);
      EXPECT_EQ(parsed.type, row.type);
      EXPECT_EQ(parsed.length, length);
    }
  }
}

TEST(FrameHeader, LengthIsThreeBytesBigEndian) {
  EXPECT_EQ(encode_header(frame_type::data, 0x0a3456), (header_bytes{0x10, 0x0a, 0x34, 0x56}));
  EXPECT_EQ(encode_header(frame_type::data, 1), (header_bytes{0x10, 0x00, 0x00, 0x01}));
  EXPECT_EQ(encode_header(frame_type::data, 0x100), (header_bytes{0x10, 0x00, 0x01, 0x00}));
  EXPECT_EQ(encode_header(frame_type::data, 0x10000), (header_bytes{0x10, 0x01, 0x00, 0x00}));
  EXPECT_EQ(encode_header(frame_type::data, max_data_payload),
            (header_bytes{0x10, 0x10, 0x00, 0x00}));
  EXPECT_EQ(encode_header(frame_type::ping, 8), (header_bytes{0x02, 0x00, 0x00, 0x08}));
  EXPECT_EQ(encode_header(frame_type::peers, 0x3ffe), (header_bytes{0x83, 0x00, 0x3f, 0xfe}));
  EXPECT_EQ(encode_header(frame_type::peers, max_control_payload),
            (header_bytes{0x83, 0x00, 0x40, 0x00}));
  EXPECT_EQ(encode_header(frame_type::logout, 0), (header_bytes{0x07, 0x00, 0x00, 0x00}));

  EXPECT_EQ(parse_header(header_bytes{0x10, 0x0a, 0xbc, 0xde}).length, 0x0abcdeu);
  EXPECT_EQ(parse_header(header_bytes{0x10, 0x00, 0x01, 0x02}).length, 0x000102u);
  EXPECT_EQ(parse_header(header_bytes{0x86, 0x00, 0x12, 0x34}).length, 0x001234u);
}

TEST(FrameHeader, DataLengthBoundaries) {
  // 1 byte and exactly 1 MiB are fine.
  EXPECT_EQ(parse_header(raw_header(0x10, 1)).length, 1u);
  EXPECT_EQ(parse_header(raw_header(0x10, 1u << 20)).length, 1u << 20);
  EXPECT_NO_THROW(encode_header(frame_type::data, 1));
  EXPECT_NO_THROW(encode_header(frame_type::data, 1u << 20));

  // Empty DATA and 1 MiB + 1 are protocol errors, on both sides.
  EXPECT_THROW(parse_header(raw_header(0x10, 0)), protocol_violation);
  EXPECT_THROW(parse_header(raw_header(0x10, (1u << 20) + 1)), protocol_violation);
  EXPECT_THROW(parse_header(raw_header(0x10, 0xffffff)), protocol_violation);
  EXPECT_THROW(encode_header(frame_type::data, 0), protocol_violation);
  EXPECT_THROW(encode_header(frame_type::data, (1u << 20) + 1), protocol_violation);
  EXPECT_THROW(encode_header(frame_type::data, 0xffffff), protocol_violation);
  // Lengths that do not even fit in 3 bytes must not wrap around to a small value.
  EXPECT_THROW(encode_header(frame_type::data, 0x1000001), protocol_violation);
  EXPECT_THROW(encode_header(frame_type::data, 0xffffffff), protocol_violation);
}

TEST(FrameHeader, ControlLengthBoundaries) {
  for (const auto& row : all_types) {
    if (row.type == frame_type::data) continue;
    SCOPED_TRACE(row.name);
    // Empty control frames are fine at the header level (the payload codec decides).
    EXPECT_EQ(parse_header(raw_header(row.byte, 0)).length, 0u);
    EXPECT_EQ(parse_header(raw_header(row.byte, 16384)).length, 16384u);
    EXPECT_NO_THROW(encode_header(row.type, 0));
    EXPECT_NO_THROW(encode_header(row.type, 16384));

    EXPECT_THROW(parse_header(raw_header(row.byte, 16385)), protocol_violation);
    EXPECT_THROW(parse_header(raw_header(row.byte, 1u << 20)), protocol_violation);
    EXPECT_THROW(parse_header(raw_header(row.byte, 0xffffff)), protocol_violation);
    EXPECT_THROW(encode_header(row.type, 16385), protocol_violation);
    EXPECT_THROW(encode_header(row.type, 1u << 20), protocol_violation);
    EXPECT_THROW(encode_header(row.type, 0x1000000), protocol_violation);
    EXPECT_THROW(encode_header(row.type, 0xffffffff), protocol_violation);
  }
}

// The neighbours of the known ranges (0x01-0x09, 0x10-0x12, 0x81-0x8a) and the extremes.
TEST(FrameHeader, UnknownTypesNextToKnownOnesAreRejected) {
  for (std::uint8_t t : {0x00, 0x0a, 0x0f, 0x13, 0x80, 0x8b, 0xff}) {
    SCOPED_TRACE(static_cast<int>(t));
    EXPECT_THROW(parse_header(raw_header(t, 0)), protocol_violation);
    EXPECT_THROW(parse_header(raw_header(t, 1)), protocol_violation);
    EXPECT_THROW(parse_header(raw_header(t, 8)), protocol_violation);
  }
}

TEST(FrameHeader, ExactlyTheSpecTypesParse) {
  std::set<std::uint8_t> known;
  for (const auto& row : all_types) known.insert(row.byte);
  ASSERT_EQ(known.size(), 22u);
  for (int t = 0; t < 256; ++t) {
    const auto byte = static_cast<std::uint8_t>(t);
    SCOPED_TRACE(t);
    // Length 1 is within every known type's limits, so only the type byte decides.
    if (known.count(byte) != 0) {
      const frame_header h = parse_header(raw_header(byte, 1));
      EXPECT_EQ(static_cast<std::uint8_t>(h.type), byte);
      EXPECT_EQ(h.length, 1u);
    } else {
      EXPECT_THROW(parse_header(raw_header(byte, 1)), protocol_violation);
    }
  }
}

TEST(FrameHeader, ViolationIsARuntimeError) {
  try {
    parse_header(raw_header(0x00, 0));
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(dynamic_cast<const protocol_violation*>(&e), nullptr);
    EXPECT_NE(std::string(e.what()), "");
  }
}

}  // namespace
