// Control message codec: docs/protocol.md sections 2 and 3.
//
// The tests live in the codec's namespace so that message names such as `accept` or `terminate`
// never collide with the C library's functions of the same name.
#include "protocol/messages.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "protocol/errors.hpp"
#include "protocol/frame.hpp"
#include "protocol/names.hpp"

namespace switchboard::protocol {
namespace {

using bytes = std::vector<std::uint8_t>;
using namespace std::string_literals;

// --- helpers ---------------------------------------------------------------------------------

// Builds payloads by hand, following the spec's field layouts (big-endian, str8, str16).
class builder {
 public:
  builder& u8(std::uint8_t v) {
    out_.push_back(v);
    return *this;
  }
  builder& u16(std::uint16_t v) { return u8(static_cast<std::uint8_t>(v >> 8)).u8(v & 0xff); }
  builder& u32(std::uint32_t v) {
    return u16(static_cast<std::uint16_t>(v >> 16)).u16(static_cast<std::uint16_t>(v));
  }
  builder& u64(std::uint64_t v) {
    return u32(static_cast<std::uint32_t>(v >> 32)).u32(static_cast<std::uint32_t>(v));
  }
  builder& raw(std::string_view s) {
    out_.insert(out_.end(), s.begin(), s.end());
    return *this;
  }
  builder& fill(std::size_t n, std::uint8_t v) {
    out_.insert(out_.end(), n, v);
    return *this;
  }
  builder& str8(std::string_view s) { return u8(static_cast<std::uint8_t>(s.size())).raw(s); }
  builder& str16(std::string_view s) { return u16(static_cast<std::uint16_t>(s.size())).raw(s); }
  const bytes& get() const { return out_; }

 private:
  bytes out_;
};

std::string hex(std::span<const std::uint8_t> b) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  for (std::uint8_t c : b) {
    if (!s.empty()) s += ' ';
    s += digits[c >> 4];
    s += digits[c & 0xf];
  }
  return s;
}

frame_header header_of(const bytes& frame) {
  return parse_header(std::span<const std::uint8_t, header_size>(frame.data(), header_size));
}

std::span<const std::uint8_t> payload_of(const bytes& frame) {
  return std::span<const std::uint8_t>(frame).subspan(header_size);
}

// Field-wise equality: the message structs have no operator==.
auto fields(const login& m) {
  return std::tie(m.version, m.auth, m.user, m.secret, m.instance, m.keepalive_ms, m.services,
                  m.calls_only);
}
auto fields(const ping& m) {
  return std::tie(m.nonce);
}
auto fields(const peers_request&) {
  return std::tie();
}
auto fields(const demand& m) {
  return std::tie(m.target, m.service);
}
auto fields(const accept& m) {
  return std::tie(m.session);
}
auto fields(const reject& m) {
  return std::tie(m.session, m.code, m.reason);
}
auto fields(const logout&) {
  return std::tie();
}
auto fields(const release&) {
  return std::tie();
}
auto fields(const eof&) {
  return std::tie();
}
auto fields(const terminate& m) {
  return std::tie(m.code, m.message);
}
auto fields(const login_ok& m) {
  return std::tie(m.line, m.keepalive_ms, m.max_lines, m.ticket);
}
auto fields(const pong& m) {
  return std::tie(m.nonce);
}
auto fields(const peers& m) {
  return std::tie(m.truncated, m.users);
}
auto fields(const incoming& m) {
  return std::tie(m.session, m.caller, m.service);
}
auto fields(const connected& m) {
  return std::tie(m.session, m.target);
}
auto fields(const fail& m) {
  return std::tie(m.code, m.message);
}
auto fields(const logged_out& m) {
  return std::tie(m.code, m.message);
}
auto fields(const released&) {
  return std::tie();
}
auto fields(const announce& m) {
  return std::tie(m.services);
}
auto fields(const need_lines& m) {
  return std::tie(m.count);
}
auto fields(const service_lost& m) {
  return std::tie(m.services, m.message);
}

bool same(const message& a, const message& b) {
  if (a.index() != b.index()) return false;
  return std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        return fields(x) == fields(std::get<T>(b));
      },
      a);
}

std::string name_of(const message& m) {
  return frame_name(type_of(m));
}

// encode, then parse_header, then decode(payload), checking the header on the way.
message round_trip(const message& m) {
  const bytes frame = encode(m);
  EXPECT_GE(frame.size(), header_size);
  const frame_header h = header_of(frame);
  EXPECT_EQ(h.type, type_of(m));
  EXPECT_EQ(h.length, frame.size() - header_size);
  return decode(h.type, payload_of(frame));
}

void expect_round_trip(const message& m) {
  SCOPED_TRACE(name_of(m));
  message back;
  ASSERT_NO_THROW(back = round_trip(m));
  EXPECT_TRUE(same(m, back)) << hex(encode(m));
  // Decoding and re-encoding gives the same bytes.
  EXPECT_EQ(encode(back), encode(m));
}

// Checks the exact frame bytes in both directions.
void expect_bytes(const message& m, const bytes& expected) {
  SCOPED_TRACE(name_of(m));
  bytes actual;
  ASSERT_NO_THROW(actual = encode(m));
  EXPECT_EQ(hex(actual), hex(expected));
  ASSERT_GE(expected.size(), header_size);
  const frame_header h = header_of(expected);
  EXPECT_EQ(h.type, type_of(m));
  EXPECT_EQ(h.length, expected.size() - header_size);
  message back;
  ASSERT_NO_THROW(back = decode(h.type, payload_of(expected)));
  EXPECT_TRUE(same(m, back));
}

// --- sample values ---------------------------------------------------------------------------

const std::string user64 = "Z" + std::string(59, 'a') + "_@.-";     // 64 bytes, all punctuation
const std::string service32 = "s" + std::string(27, 'v') + "._-9";  // 32 bytes

std::string utf8_text(std::size_t bytes) {  // "é" is 2 bytes; pads odd sizes with '!'
  std::string s;
  while (s.size() + 2 <= bytes) s += "\xc3\xa9";
  if (s.size() < bytes) s += '!';
  return s;
}

std::string all_byte_values(std::size_t n) {  // includes NUL and high bytes
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += static_cast<char>(i & 0xff);
  return s;
}

ticket sample_ticket() {
  ticket t{};
  for (std::size_t i = 0; i < t.size(); ++i) t[i] = static_cast<std::uint8_t>(i * 37 + 11);
  t.front() = 0x00;
  t.back() = 0xff;
  return t;
}

std::string ticket_secret(const ticket& t) {
  return std::string(t.begin(), t.end());
}

instance_id sample_instance() {
  instance_id id{};
  for (std::size_t i = 0; i < id.size(); ++i) id[i] = static_cast<std::uint8_t>(0xf0 + i);
  return id;
}

std::vector<std::string> numbered_users(std::size_t n) {
  std::vector<std::string> users;
  for (std::size_t i = 0; i < n; ++i) users.push_back("user" + std::to_string(1000 + i));
  return users;
}

// n distinct valid service names: "s0", "s1", ...
std::vector<std::string> numbered_services(std::size_t n) {
  std::vector<std::string> services;
  for (std::size_t i = 0; i < n; ++i) services.push_back("s" + std::to_string(i));
  return services;
}

// PEERS entries: each user with the same services.
std::vector<peer_entry> entries(const std::vector<std::string>& users,
                                const std::vector<std::string>& services = {}) {
  std::vector<peer_entry> out;
  for (const auto& u : users) out.push_back(peer_entry{u, services});
  return out;
}

// A version-2 LOGIN, field by field (login is an aggregate; the services come last).
login make_login(auth_method auth, std::string user, std::string secret, instance_id instance,
                 std::uint32_t keepalive_ms, std::vector<std::string> services = {},
                 bool calls_only = false) {
  login m;
  m.auth = auth;
  m.user = std::move(user);
  m.secret = std::move(secret);
  m.instance = instance;
  m.keepalive_ms = keepalive_ms;
  m.services = std::move(services);
  m.calls_only = calls_only;
  return m;
}

// Representative and boundary values of every message type.
std::vector<message> samples() {
  const ticket token = sample_ticket();
  instance_id ones{};
  ones.fill(0xff);
  return {
      make_login(auth_method::password, "alice", "correct horse", sample_instance(), 25000),
      make_login(auth_method::password, user64, all_byte_values(1024), ones, 0xffffffff),
      make_login(auth_method::password, "a", "x", instance_id{}, 0),
      make_login(auth_method::ticket, "bob@example.com", ticket_secret(token), sample_instance(),
                 1000),
      make_login(auth_method::ticket, user64, std::string(40, '\0'), ones, 25000),
      make_login(auth_method::password, "bob", "pw", sample_instance(), 25000, {"ssh"}),
      make_login(auth_method::password, "bob", "pw", ones, 25000, {"fax", "ssh", "web-8080"}),
      make_login(auth_method::ticket, "bob", ticket_secret(token), ones, 1000, {"ssh"}, true),
      make_login(auth_method::ticket, "bob", ticket_secret(token), ones, 1000, {}, true),
      make_login(auth_method::password, user64, all_byte_values(1024), ones, 0xffffffff,
                 numbered_services(max_services), true),
      make_login(auth_method::password, "c", "p", ones, 1, {service32, "a", "-", "."}),
      ping{0},
      ping{1},
      ping{0x8000000000000000ull},
      ping{0xffffffffffffffffull},
      ping{0x0123456789abcdefull},
      peers_request{},
      demand{"bob", "ssh"},
      demand{user64, service32},
      demand{"a", "b"},
      demand{"_x", "-"},
      accept{0},
      accept{0xffffffff},
      reject{1, error_code::rejected, ""},
      reject{0xffffffff, error_code::unknown_service, utf8_text(1024)},
      reject{7, static_cast<error_code>(0xffff), "x"},
      logout{},
      release{},
      eof{},
      terminate{error_code::ok, ""},
      terminate{error_code::service_unavailable, std::string(1024, 'm')},
      terminate{error_code::relay_shutdown, utf8_text(1023)},
      login_ok{1, 25000, 64, token},
      login_ok{0xffffffff, 0xffffffff, 0xffff, ticket{}},
      pong{0},
      pong{0x8000000000000001ull},
      pong{0xffffffffffffffffull},
      peers{false, {}},
      peers{true, {}},
      peers{false, entries({"alice", "bob"}, {"ssh"})},
      peers{false, {{"alice", {"fax"}}, {"bob", {"fax", "ssh", "web"}}, {"carol", {}}}},
      peers{true, entries({user64}, {service32})},
      peers{true, entries({"x"}, numbered_services(255))},
      peers{true, entries(numbered_users(512))},
      peers{false, entries(numbered_users(512), {"s"})},
      incoming{1, "alice", "ssh"},
      incoming{0xffffffff, user64, service32},
      connected{5, "bob"},
      connected{0x80000000, user64},
      fail{error_code::target_offline, "target unknown or not logged in"},
      fail{error_code::busy, utf8_text(1024)},
      fail{static_cast<error_code>(9), ""},
      logged_out{error_code::ok, ""},
      logged_out{error_code::duplicate_login, "logged in elsewhere"},
      logged_out{error_code::protocol_error, std::string(1024, '?')},
      released{},
      announce{},
      announce{{"ssh"}},
      announce{{"fax", "ssh"}},
      announce{{service32, "a"}},
      announce{numbered_services(max_services)},
      need_lines{0},
      need_lines{1},
      need_lines{0x0102},
      need_lines{0xffff},
      service_lost{{"ssh"}, ""},
      service_lost{{"fax"}, "taken over by another instance"},
      service_lost{{service32}, utf8_text(1024)},
  };
}

// --- type mapping ----------------------------------------------------------------------------

TEST(Messages, TypeOfEveryAlternative) {
  EXPECT_EQ(type_of(login{}), frame_type::login);
  EXPECT_EQ(type_of(ping{}), frame_type::ping);
  EXPECT_EQ(type_of(peers_request{}), frame_type::peers_request);
  EXPECT_EQ(type_of(demand{}), frame_type::demand);
  EXPECT_EQ(type_of(accept{}), frame_type::accept);
  EXPECT_EQ(type_of(reject{}), frame_type::reject);
  EXPECT_EQ(type_of(logout{}), frame_type::logout);
  EXPECT_EQ(type_of(release{}), frame_type::release);
  EXPECT_EQ(type_of(eof{}), frame_type::eof);
  EXPECT_EQ(type_of(terminate{}), frame_type::terminate);
  EXPECT_EQ(type_of(login_ok{}), frame_type::login_ok);
  EXPECT_EQ(type_of(pong{}), frame_type::pong);
  EXPECT_EQ(type_of(peers{}), frame_type::peers);
  EXPECT_EQ(type_of(incoming{}), frame_type::incoming);
  EXPECT_EQ(type_of(connected{}), frame_type::connected);
  EXPECT_EQ(type_of(fail{}), frame_type::fail);
  EXPECT_EQ(type_of(logged_out{}), frame_type::logged_out);
  EXPECT_EQ(type_of(released{}), frame_type::released);
  EXPECT_EQ(type_of(announce{}), frame_type::announce);
  EXPECT_EQ(type_of(need_lines{}), frame_type::need_lines);
  EXPECT_EQ(type_of(service_lost{}), frame_type::service_lost);
}

TEST(Messages, Constants) {
  EXPECT_EQ(protocol_version, 2);
  EXPECT_EQ(max_services, 32u);
  EXPECT_EQ(ticket_size, 40u);
  EXPECT_EQ(instance_size, 16u);
  EXPECT_EQ(max_peers_listed, 512u);
}

TEST(Messages, SamplesCoverEveryType) {
  std::vector<bool> seen(std::variant_size_v<message>, false);
  for (const auto& m : samples()) seen[m.index()] = true;
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_TRUE(seen[i]) << "alternative " << i;
}

// --- round trips -----------------------------------------------------------------------------

TEST(RoundTrip, EverySample) {
  for (const auto& m : samples()) expect_round_trip(m);
}

TEST(RoundTrip, HeaderLengthIsPayloadSize) {
  for (const auto& m : samples()) {
    const bytes frame = encode(m);
    const std::size_t length =
        (std::size_t{frame[1]} << 16) | (std::size_t{frame[2]} << 8) | std::size_t{frame[3]};
    EXPECT_EQ(frame[0], static_cast<std::uint8_t>(type_of(m))) << name_of(m);
    EXPECT_EQ(length, frame.size() - header_size) << name_of(m);
  }
}

TEST(RoundTrip, BoundaryFieldsSurviveExactly) {
  {
    const login m =
        make_login(auth_method::password, user64, all_byte_values(1024), sample_instance(), 7);
    const auto back = std::get<login>(round_trip(m));
    EXPECT_EQ(back.user.size(), 64u);
    EXPECT_EQ(back.user, user64);
    EXPECT_EQ(back.secret.size(), 1024u);
    EXPECT_EQ(back.secret, all_byte_values(1024));
    EXPECT_EQ(back.instance, sample_instance());
    EXPECT_EQ(back.keepalive_ms, 7u);
  }
  {
    const login m =
        make_login(auth_method::ticket, "bob", ticket_secret(sample_ticket()), {}, 25000);
    const auto back = std::get<login>(round_trip(m));
    EXPECT_EQ(back.auth, auth_method::ticket);
    EXPECT_EQ(back.secret.size(), 40u);
    EXPECT_EQ(back.secret, ticket_secret(sample_ticket()));
  }
  EXPECT_EQ(std::get<ping>(round_trip(ping{0x8000000000000000ull})).nonce, 0x8000000000000000ull);
  EXPECT_EQ(std::get<pong>(round_trip(pong{0xfedcba9876543210ull})).nonce, 0xfedcba9876543210ull);
  {
    const auto back = std::get<demand>(round_trip(demand{user64, service32}));
    EXPECT_EQ(back.target, user64);
    EXPECT_EQ(back.service, service32);
    EXPECT_EQ(back.service.size(), 32u);
  }
  {
    const auto back =
        std::get<reject>(round_trip(reject{42, error_code::rejected, utf8_text(1024)}));
    EXPECT_EQ(back.session, 42u);
    EXPECT_EQ(back.code, error_code::rejected);
    EXPECT_EQ(back.reason, utf8_text(1024));
  }
  {
    const auto back = std::get<login_ok>(round_trip(login_ok{3, 1000, 0xffff, sample_ticket()}));
    EXPECT_EQ(back.ticket, sample_ticket());
    EXPECT_EQ(back.max_lines, 0xffff);
  }
  for (bool truncated : {false, true}) {
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{511}, std::size_t{512}}) {
      const auto back =
          std::get<peers>(round_trip(peers{truncated, entries(numbered_users(n), {"ssh"})}));
      EXPECT_EQ(back.truncated, truncated);
      EXPECT_EQ(back.users, entries(numbered_users(n), {"ssh"}));
    }
  }
}

// Every defined error code, and codes this build does not know, travel in every coded message:
// "A receiver treats an unknown code as a generic failure" (section 4), so it is no protocol error.
TEST(RoundTrip, AnyErrorCodeValue) {
  for (std::uint32_t v : {0u, 1u, 5u, 6u, 9u, 14u, 17u, 20u, 26u, 27u, 0x100u, 0x8000u, 0xffffu}) {
    const auto code = static_cast<error_code>(v);
    SCOPED_TRACE(v);
    EXPECT_EQ(std::get<terminate>(round_trip(terminate{code, "t"})).code, code);
    EXPECT_EQ(std::get<fail>(round_trip(fail{code, "f"})).code, code);
    EXPECT_EQ(std::get<logged_out>(round_trip(logged_out{code, "l"})).code, code);
    EXPECT_EQ(std::get<reject>(round_trip(reject{1, code, "r"})).code, code);
  }
}

// UNSUPPORTED_VERSION is answered with FAIL after LOGIN (section 4), and the relay reads only the
// version byte of such a LOGIN: whatever follows it (another version's layout, garbage, nothing)
// decodes to a LOGIN with only `version` set, so the relay can name the version it speaks.
TEST(OtherVersion, LoginDecodesToVersionOnlyWhateverFollows) {
  const bytes v1_layout =  // version 1: ... keepalive_ms, u8 flags, and no service list
      builder().u8(1).u8(0).str8("alice").str16("pw").fill(16, 0x11).u32(25000).u8(1).get();
  const std::vector<bytes> payloads = {
      bytes{0x00},
      bytes{0x01},
      bytes{0x03},
      bytes{0xff},
      v1_layout,
      builder().u8(3).fill(100, 0xff).get(),
      builder().u8(0).u8(7).str8("not a user!").get(),
      builder().u8(0xff).fill(max_control_payload - 1, 0x00).get(),
  };
  for (const bytes& payload : payloads) {
    SCOPED_TRACE(hex(std::span(payload).first(std::min<std::size_t>(payload.size(), 8))));
    message m;
    ASSERT_NO_THROW(m = decode(frame_type::login, payload));
    login expected;
    expected.version = payload[0];
    ASSERT_TRUE(std::holds_alternative<login>(m));
    EXPECT_TRUE(same(m, expected));
    EXPECT_TRUE(std::get<login>(m).services.empty());
    EXPECT_FALSE(std::get<login>(m).calls_only);
  }
  // A version-2 LOGIN in another version's layout is refused, not read as another version.
  bytes v2_in_v1_layout = v1_layout;
  v2_in_v1_layout[0] = protocol_version;
  EXPECT_THROW(decode(frame_type::login, v2_in_v1_layout), protocol_violation);
  // The version byte itself must be there.
  EXPECT_THROW(decode(frame_type::login, bytes{}), protocol_violation);
}

// A version-2 LOGIN encoded with another version byte decodes to that version only.
TEST(OtherVersion, EncodedLoginOfOtherVersionKeepsOnlyTheVersion) {
  for (std::uint8_t version : {0, 1, 3, 0xff}) {
    login m = make_login(auth_method::password, "alice", "pw", sample_instance(), 25000, {"ssh"});
    m.version = version;
    login expected;
    expected.version = version;
    EXPECT_TRUE(same(round_trip(m), expected)) << +version;
  }
}

// --- exact bytes, derived by hand from the spec tables ---------------------------------------

TEST(ExactBytes, LoginPassword) {
  instance_id inst{};
  for (std::size_t i = 0; i < inst.size(); ++i) inst[i] = static_cast<std::uint8_t>(i);
  const bytes expected = {
      0x01, 0x00, 0x00, 0x22,                          // LOGIN, length 34
      0x02,                                            // u8 version = 2
      0x00,                                            // u8 auth = 0 (password)
      0x05, 'a',  'l',  'i',  'c',  'e',               // str8 user
      0x00, 0x02, 'p',  'w',                           // str16 secret
      0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,  // bytes[16] instance
      0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,  //
      0x00, 0x00, 0x61, 0xa8,                          // u32 keepalive_ms = 25000
      0x00,                                            // u8 flags: this line may be rung
      0x00,                                            // u8 count: no service (places calls)
  };
  expect_bytes(make_login(auth_method::password, "alice", "pw", inst, 25000), expected);
}

TEST(ExactBytes, LoginWithServices) {
  instance_id inst{};
  inst.fill(0x5a);
  const bytes expected = {
      0x01, 0x00, 0x00, 0x29,                          // LOGIN, length 41
      0x02,                                            // version 2
      0x00,                                            // password
      0x03, 'b',  'o',  'b',                           // str8 user
      0x00, 0x03, 's',  'e',  'c',                     // str16 secret
      0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,  // instance
      0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,  //
      0x00, 0x00, 0x03, 0xe8,                          // keepalive_ms = 1000
      0x00,                                            // flags 0
      0x02,                                            // u8 count = 2
      0x03, 's',  's',  'h',                           // str8 service
      0x03, 'f',  'a',  'x',                           // str8 service (order kept)
  };
  expect_bytes(make_login(auth_method::password, "bob", "sec", inst, 1000, {"ssh", "fax"}),
               expected);
}

TEST(ExactBytes, LoginTicket) {
  ticket token{};
  for (std::size_t i = 0; i < token.size(); ++i) token[i] = static_cast<std::uint8_t>(0xa0 + i);
  instance_id inst{};
  inst.fill(0xee);
  const bytes expected = {
      0x01, 0x00, 0x00, 0x4a,                          // LOGIN, length 74
      0x02,                                            // version
      0x01,                                            // auth = 1 (ticket)
      0x03, 'b',  'o',  'b',                           // str8 user
      0x00, 0x28,                                      // str16 secret: 40 bytes
      0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,  //
      0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,  //
      0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7,  //
      0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf,  //
      0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7,  //
      0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee,  // instance
      0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee,  //
      0x00, 0x01, 0x86, 0xa0,                          // keepalive_ms = 100000
      0x01,                                            // flags: bit 0, calls only
      0x01,                                            // u8 count = 1
      0x03, 's',  's',  'h',                           // str8 service
  };
  expect_bytes(
      make_login(auth_method::ticket, "bob", ticket_secret(token), inst, 100000, {"ssh"}, true),
      expected);
}

TEST(ExactBytes, Announce) {
  expect_bytes(announce{}, {0x09, 0x00, 0x00, 0x01, 0x00});
  expect_bytes(announce{{"ssh"}}, {0x09, 0x00, 0x00, 0x05, 0x01, 0x03, 's', 's', 'h'});
  expect_bytes(announce{{"web-80", "a"}}, {0x09, 0x00, 0x00, 0x0a,  // ANNOUNCE, length 10
                                           0x02,                    // u8 count
                                           0x06, 'w', 'e', 'b', '-', '8', '0',  // str8 service
                                           0x01, 'a'});                         // str8 service
}

TEST(ExactBytes, NeedLines) {
  expect_bytes(need_lines{0}, {0x89, 0x00, 0x00, 0x02, 0x00, 0x00});
  expect_bytes(need_lines{3}, {0x89, 0x00, 0x00, 0x02, 0x00, 0x03});
  expect_bytes(need_lines{0x1234}, {0x89, 0x00, 0x00, 0x02, 0x12, 0x34});
  expect_bytes(need_lines{0xffff}, {0x89, 0x00, 0x00, 0x02, 0xff, 0xff});
}

TEST(ExactBytes, ServiceLost) {
  expect_bytes(service_lost{{"fax"}, "taken"},
               {0x8a, 0x00, 0x00, 0x0c,                 // SERVICE-LOST, length 12
                0x01,                                   // u8 count
                0x03, 'f', 'a', 'x',                    // str8 service
                0x00, 0x05, 't', 'a', 'k', 'e', 'n'});  // str16 message
  expect_bytes(service_lost{{"s"}, ""}, {0x8a, 0x00, 0x00, 0x05, 0x01, 0x01, 's', 0x00, 0x00});
  expect_bytes(service_lost{{"a", "b"}, ""},
               {0x8a, 0x00, 0x00, 0x07, 0x02, 0x01, 'a', 0x01, 'b', 0x00, 0x00});
}

TEST(ExactBytes, PeersWithServices) {
  expect_bytes(peers{false, {{"a", {}}, {"bc", {"ssh", "x"}}}},
               {0x83, 0x00, 0x00, 0x10,               // PEERS, length 16
                0x00,                                 // u8 flags
                0x00, 0x02,                           // u16 count
                0x01, 'a',  0x00,                     // str8 user, u8 n = 0
                0x02, 'b',  'c',  0x02,               // str8 user, u8 n = 2
                0x03, 's',  's',  'h',  0x01, 'x'});  // n x str8 service
  expect_bytes(peers{true, {{"bob", {"fax"}}}}, {0x83, 0x00, 0x00, 0x0c, 0x01, 0x00, 0x01, 0x03,
                                                 'b', 'o', 'b', 0x01, 0x03, 'f', 'a', 'x'});
}

TEST(ExactBytes, Ping) {
  expect_bytes(ping{0x0102030405060708ull},
               {0x02, 0x00, 0x00, 0x08, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08});
  expect_bytes(ping{0x8000000000000001ull},
               {0x02, 0x00, 0x00, 0x08, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01});
  expect_bytes(ping{0}, {0x02, 0x00, 0x00, 0x08, 0, 0, 0, 0, 0, 0, 0, 0});
}

TEST(ExactBytes, Demand) {
  expect_bytes(demand{"bob", "ssh"},
               {0x04, 0x00, 0x00, 0x08, 0x03, 'b', 'o', 'b', 0x03, 's', 's', 'h'});
  expect_bytes(demand{"Al.i_c@e-1", "web-8080"},
               {0x04, 0x00, 0x00, 0x14,                                     // DEMAND, 20
                0x0a, 'A',  'l',  '.',  'i', '_', 'c', '@', 'e', '-', '1',  // str8 target
                0x08, 'w',  'e',  'b',  '-', '8', '0', '8', '0'});          // str8 service
}

TEST(ExactBytes, Terminate) {
  expect_bytes(terminate{error_code::service_unavailable, "refused"},
               {0x12, 0x00, 0x00, 0x0b,                           // TERMINATE, length 11
                0x00, 0x11,                                       // u16 code = 17
                0x00, 0x07, 'r', 'e', 'f', 'u', 's', 'e', 'd'});  // str16 message
  expect_bytes(terminate{error_code::ok, ""}, {0x12, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00});
  // A 300-byte message: both the frame length and the str16 length use their high bytes.
  bytes expected = {0x12, 0x00, 0x01, 0x30, 0x00, 0x15, 0x01, 0x2c};
  expected.insert(expected.end(), 300, 'z');
  expect_bytes(terminate{error_code::peer_lost, std::string(300, 'z')}, expected);
}

TEST(ExactBytes, OtherTypes) {
  ticket token{};
  for (std::size_t i = 0; i < token.size(); ++i) token[i] = static_cast<std::uint8_t>(0xa0 + i);
  expect_bytes(peers_request{}, {0x03, 0x00, 0x00, 0x00});
  expect_bytes(accept{0xdeadbeef}, {0x05, 0x00, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef});
  expect_bytes(reject{0x01020304, error_code::unknown_service, "no"},
               {0x06, 0x00, 0x00, 0x0a, 0x01, 0x02, 0x03, 0x04, 0x00, 0x10, 0x00, 0x02, 'n', 'o'});
  expect_bytes(logout{}, {0x07, 0x00, 0x00, 0x00});
  expect_bytes(release{}, {0x08, 0x00, 0x00, 0x00});
  expect_bytes(eof{}, {0x11, 0x00, 0x00, 0x00});
  expect_bytes(login_ok{0x01020304, 25000, 64, token},
               {0x81, 0x00, 0x00, 0x32,                          // LOGIN-OK, length 50
                0x01, 0x02, 0x03, 0x04,                          // u32 line
                0x00, 0x00, 0x61, 0xa8,                          // u32 keepalive_ms
                0x00, 0x40,                                      // u16 max_lines
                0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,  // bytes[40] ticket
                0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,  //
                0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7,  //
                0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf,  //
                0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7});
  expect_bytes(pong{0xfedcba9876543210ull},
               {0x82, 0x00, 0x00, 0x08, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10});
  expect_bytes(peers{false, {}}, {0x83, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00});
  expect_bytes(peers{true, entries({"a", "bc"})},
               {0x83, 0x00, 0x00, 0x0a, 0x01, 0x00, 0x02, 0x01, 'a', 0x00, 0x02, 'b', 'c', 0x00});
  expect_bytes(incoming{7, "alice", "ssh"}, {0x84, 0x00, 0x00, 0x0e, 0x00, 0x00, 0x00, 0x07, 0x05,
                                             'a', 'l', 'i', 'c', 'e', 0x03, 's', 's', 'h'});
  expect_bytes(connected{0x80000000, "bob"},
               {0x85, 0x00, 0x00, 0x08, 0x80, 0x00, 0x00, 0x00, 0x03, 'b', 'o', 'b'});
  expect_bytes(fail{error_code::target_offline, ""},
               {0x86, 0x00, 0x00, 0x04, 0x00, 0x0a, 0x00, 0x00});
  expect_bytes(logged_out{error_code::duplicate_login, "bye"},
               {0x87, 0x00, 0x00, 0x07, 0x00, 0x17, 0x00, 0x03, 'b', 'y', 'e'});
  expect_bytes(released{}, {0x88, 0x00, 0x00, 0x00});
}

TEST(ExactBytes, PeersCountIsBigEndianU16) {
  const bytes frame = encode(peers{false, entries(numbered_users(300))});
  ASSERT_GE(frame.size(), 7u);
  EXPECT_EQ(frame[4], 0x00);  // flags
  EXPECT_EQ(frame[5], 0x01);  // count 300 = 0x012c
  EXPECT_EQ(frame[6], 0x2c);
  EXPECT_EQ(frame.size(), header_size + 3 + 300 * 10);
}

// --- truncation and trailing bytes -----------------------------------------------------------

TEST(Reject, EveryTruncationOfEveryMessage) {
  for (const auto& m : samples()) {
    const bytes frame = encode(m);
    const auto payload = payload_of(frame);
    for (std::size_t n = 0; n < payload.size(); ++n) {
      EXPECT_THROW(decode(type_of(m), payload.first(n)), protocol_violation)
          << name_of(m) << " cut to " << n << " of " << payload.size() << " bytes";
    }
  }
}

TEST(Reject, TrailingBytes) {
  for (const auto& m : samples()) {
    for (const bytes& extra : {bytes{0x00}, bytes{0xff}, bytes(16, 0x00), bytes{0x01, 0x01}}) {
      const bytes frame = encode(m);
      bytes payload(frame.begin() + header_size, frame.end());
      payload.insert(payload.end(), extra.begin(), extra.end());
      EXPECT_THROW(decode(type_of(m), payload), protocol_violation)
          << name_of(m) << " + " << extra.size() << " bytes";
    }
  }
}

TEST(Reject, DataIsNeverDecoded) {
  EXPECT_THROW(decode(frame_type::data, {}), protocol_violation);
  const bytes one{0x42};
  EXPECT_THROW(decode(frame_type::data, one), protocol_violation);
  const bytes ping_payload(8, 0);
  EXPECT_THROW(decode(frame_type::data, ping_payload), protocol_violation);
  const bytes big(100000, 0x61);
  EXPECT_THROW(decode(frame_type::data, big), protocol_violation);
}

TEST(Reject, UnknownTypeValuePassedToDecode) {
  for (std::uint8_t t : {0x00, 0x0a, 0x0f, 0x13, 0x80, 0x8b, 0xff}) {
    EXPECT_THROW(decode(static_cast<frame_type>(t), {}), protocol_violation) << int{t};
  }
}

// --- invalid names inside messages -----------------------------------------------------------

const std::vector<std::string> bad_users = {
    "",        ".alice", "-alice", std::string(65, 'a'), "a b", "j\xc3\xb6rg", "a/b", "a\0b"s,
    "alice\n", "a:b",    "\xff"};
const std::vector<std::string> bad_services = {
    "", "SSH", "Ssh", std::string(33, 'a'), "a b", "web@host", "s\xc3\xb6", "a/b", "a\0b"s, "A"};

// Payload templates with one user or service field; everything else valid.
bytes login_with_user(const std::string& user) {
  return builder().u8(2).u8(0).str8(user).str16("pw").fill(16, 0).u32(25000).u8(0).u8(0).get();
}
// A LOGIN (flags 0) announcing these services, written as they are (count included).
bytes login_with_services(const std::vector<std::string>& services, std::uint8_t flags = 0) {
  builder b;
  b.u8(2).u8(0).str8("alice").str16("pw").fill(16, 0).u32(25000).u8(flags);
  b.u8(static_cast<std::uint8_t>(services.size()));
  for (const auto& s : services) b.str8(s);
  return b.get();
}
bytes announce_with(const std::vector<std::string>& services) {
  builder b;
  b.u8(static_cast<std::uint8_t>(services.size()));
  for (const auto& s : services) b.str8(s);
  return b.get();
}
bytes service_lost_with(const std::string& service) {
  return builder().u8(1).str8(service).str16("gone").get();
}
// One PEERS entry for "bob" with these services.
bytes peers_with_services(const std::vector<std::string>& services) {
  builder b;
  b.u8(0).u16(1).str8("bob").u8(static_cast<std::uint8_t>(services.size()));
  for (const auto& s : services) b.str8(s);
  return b.get();
}
bytes demand_with(const std::string& target, const std::string& service) {
  return builder().str8(target).str8(service).get();
}
bytes peers_with_user(const std::string& user) {
  return builder()
      .u8(0)
      .u16(3)
      .str8("alice")
      .u8(0)
      .str8(user)
      .u8(1)
      .str8("ssh")
      .str8("bob")
      .u8(0)
      .get();
}
bytes incoming_with(const std::string& caller, const std::string& service) {
  return builder().u32(9).str8(caller).str8(service).get();
}
bytes connected_with(const std::string& target) {
  return builder().u32(9).str8(target).get();
}

TEST(Reject, TemplatesAreValidWithGoodNames) {
  EXPECT_NO_THROW(decode(frame_type::login, login_with_user("alice")));
  EXPECT_NO_THROW(decode(frame_type::demand, demand_with("alice", "ssh")));
  EXPECT_NO_THROW(decode(frame_type::peers, peers_with_user("carol")));
  EXPECT_NO_THROW(decode(frame_type::incoming, incoming_with("alice", "ssh")));
  EXPECT_NO_THROW(decode(frame_type::connected, connected_with("alice")));
  EXPECT_NO_THROW(decode(frame_type::login, login_with_services({"ssh", "fax"})));
  EXPECT_NO_THROW(decode(frame_type::announce, announce_with({"ssh", "fax"})));
  EXPECT_NO_THROW(decode(frame_type::service_lost, service_lost_with("ssh")));
  EXPECT_NO_THROW(decode(frame_type::peers, peers_with_services({"ssh", "fax"})));
}

TEST(Reject, InvalidUserIdsInMessages) {
  for (const auto& u : bad_users) {
    SCOPED_TRACE(hex(std::span(reinterpret_cast<const std::uint8_t*>(u.data()), u.size())));
    ASSERT_FALSE(valid_user_id(u));
    // Decoding refuses them...
    EXPECT_THROW(decode(frame_type::login, login_with_user(u)), protocol_violation);
    EXPECT_THROW(decode(frame_type::demand, demand_with(u, "ssh")), protocol_violation);
    EXPECT_THROW(decode(frame_type::peers, peers_with_user(u)), protocol_violation);
    EXPECT_THROW(decode(frame_type::incoming, incoming_with(u, "ssh")), protocol_violation);
    EXPECT_THROW(decode(frame_type::connected, connected_with(u)), protocol_violation);
    // ...and encoding never produces them.
    EXPECT_THROW(encode(make_login(auth_method::password, u, "pw", {}, 25000)), protocol_violation);
    EXPECT_THROW(encode(make_login(auth_method::ticket, u, std::string(40, 't'), {}, 25000)),
                 protocol_violation);
    EXPECT_THROW(encode(demand{u, "ssh"}), protocol_violation);
    EXPECT_THROW(encode(peers{false, entries({"alice", u})}), protocol_violation);
    EXPECT_THROW(encode(peers{true, entries({u}, {"ssh"})}), protocol_violation);
    EXPECT_THROW(encode(incoming{1, u, "ssh"}), protocol_violation);
    EXPECT_THROW(encode(connected{1, u}), protocol_violation);
  }
}

TEST(Reject, InvalidServiceNamesInMessages) {
  for (const auto& s : bad_services) {
    SCOPED_TRACE(hex(std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size())));
    ASSERT_FALSE(valid_service_name(s));
    EXPECT_THROW(decode(frame_type::demand, demand_with("alice", s)), protocol_violation);
    EXPECT_THROW(decode(frame_type::incoming, incoming_with("alice", s)), protocol_violation);
    EXPECT_THROW(encode(demand{"alice", s}), protocol_violation);
    EXPECT_THROW(encode(incoming{1, "alice", s}), protocol_violation);
    // Service lists: first, among others, and last.
    for (const auto& list : {std::vector<std::string>{s}, std::vector<std::string>{"ssh", s},
                             std::vector<std::string>{"ssh", s, "fax"}}) {
      EXPECT_THROW(decode(frame_type::login, login_with_services(list)), protocol_violation);
      EXPECT_THROW(decode(frame_type::announce, announce_with(list)), protocol_violation);
      EXPECT_THROW(decode(frame_type::peers, peers_with_services(list)), protocol_violation);
      EXPECT_THROW(encode(make_login(auth_method::password, "alice", "pw", {}, 1, list)),
                   protocol_violation);
      EXPECT_THROW(encode(announce{list}), protocol_violation);
      EXPECT_THROW(encode(peers{false, entries({"bob"}, list)}), protocol_violation);
    }
    EXPECT_THROW(decode(frame_type::service_lost, service_lost_with(s)), protocol_violation);
    EXPECT_THROW(encode(service_lost{{s}, "gone"}), protocol_violation);
  }
}

// --- text limits -----------------------------------------------------------------------------

bytes reject_with(std::size_t text_bytes) {
  return builder().u32(1).u16(14).str16(std::string(text_bytes, 'r')).get();
}
bytes coded_with(std::size_t text_bytes) {
  return builder().u16(0).str16(std::string(text_bytes, 't')).get();
}

TEST(Reject, TextOver1024Bytes) {
  const frame_type coded[] = {frame_type::terminate, frame_type::fail, frame_type::logged_out};
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{1023}, std::size_t{1024}}) {
    EXPECT_NO_THROW(decode(frame_type::reject, reject_with(n))) << n;
    for (frame_type t : coded) EXPECT_NO_THROW(decode(t, coded_with(n))) << frame_name(t) << n;
  }
  for (std::size_t n : {std::size_t{1025}, std::size_t{2048}, std::size_t{16000}}) {
    EXPECT_THROW(decode(frame_type::reject, reject_with(n)), protocol_violation) << n;
    for (frame_type t : coded) {
      EXPECT_THROW(decode(t, coded_with(n)), protocol_violation) << frame_name(t) << n;
    }
  }
  for (std::size_t n : {std::size_t{1025}, std::size_t{16000}, std::size_t{70000}}) {
    const std::string text(n, 'x');
    EXPECT_THROW(encode(reject{1, error_code::rejected, text}), protocol_violation) << n;
    EXPECT_THROW(encode(terminate{error_code::ok, text}), protocol_violation) << n;
    EXPECT_THROW(encode(fail{error_code::busy, text}), protocol_violation) << n;
    EXPECT_THROW(encode(logged_out{error_code::ok, text}), protocol_violation) << n;
  }
  // The limit counts bytes, not characters: 513 two-byte characters are 1026 bytes.
  std::string accented;
  for (int i = 0; i < 513; ++i) accented += "\xc3\xa9";
  EXPECT_THROW(encode(fail{error_code::busy, accented}), protocol_violation);
}

// --- LOGIN secrets and auth method -----------------------------------------------------------

bytes login_with(std::uint8_t auth, const std::string& secret) {
  return builder()
      .u8(2)
      .u8(auth)
      .str8("alice")
      .str16(secret)
      .fill(16, 0x11)
      .u32(25000)
      .u8(0)
      .u8(1)
      .str8("ssh")
      .get();
}

TEST(Reject, PasswordLength) {
  for (std::size_t n : {std::size_t{1}, std::size_t{32}, std::size_t{1024}}) {
    const std::string pw(n, 'p');
    EXPECT_EQ(std::get<login>(decode(frame_type::login, login_with(0, pw))).secret, pw) << n;
    EXPECT_NO_THROW(encode(make_login(auth_method::password, "alice", pw, {}, 0))) << n;
  }
  for (std::size_t n : {std::size_t{0}, std::size_t{1025}, std::size_t{4096}}) {
    const std::string pw(n, 'p');
    EXPECT_THROW(decode(frame_type::login, login_with(0, pw)), protocol_violation) << n;
    EXPECT_THROW(encode(make_login(auth_method::password, "alice", pw, {}, 0)), protocol_violation)
        << n;
  }
}

TEST(Reject, TicketMustBe40Bytes) {
  const std::string token = ticket_secret(sample_ticket());
  EXPECT_EQ(std::get<login>(decode(frame_type::login, login_with(1, token))).secret, token);
  EXPECT_NO_THROW(encode(make_login(auth_method::ticket, "alice", token, {}, 0)));
  for (std::size_t n : {0, 1, 16, 32, 39, 41, 64, 1024}) {
    const std::string t(n, 't');
    EXPECT_THROW(decode(frame_type::login, login_with(1, t)), protocol_violation) << n;
    EXPECT_THROW(encode(make_login(auth_method::ticket, "alice", t, {}, 0)), protocol_violation)
        << n;
  }
}

TEST(Reject, UnknownAuthMethodOnDecode) {
  for (std::uint8_t auth : {2, 3, 0x7f, 0x80, 0xff}) {
    EXPECT_THROW(decode(frame_type::login, login_with(auth, "pw")), protocol_violation) << +auth;
    EXPECT_THROW(decode(frame_type::login, login_with(auth, std::string(40, 't'))),
                 protocol_violation)
        << +auth;
  }
}

// Section 3 allows only auth 0 (password) and 1 (ticket), and encode() never sends what
// decode() refuses.
TEST(Reject, EncodeRefusesUnknownAuthMethod) {
  for (std::uint8_t auth : {2, 0xff}) {
    const login m = make_login(static_cast<auth_method>(auth), "alice", "pw", {}, 25000);
    EXPECT_THROW(encode(m), protocol_violation) << "auth " << +auth << " was encoded";
  }
}

// --- PEERS -----------------------------------------------------------------------------------

bytes peers_payload(std::uint8_t flags, std::uint16_t count, std::size_t users_written) {
  builder b;
  b.u8(flags).u16(count);
  for (const auto& u : numbered_users(users_written)) b.str8(u).u8(0);
  return b.get();
}

TEST(Peers, FlagsAndCount) {
  EXPECT_FALSE(std::get<peers>(decode(frame_type::peers, peers_payload(0, 2, 2))).truncated);
  EXPECT_TRUE(std::get<peers>(decode(frame_type::peers, peers_payload(1, 2, 2))).truncated);
  EXPECT_EQ(std::get<peers>(decode(frame_type::peers, peers_payload(1, 512, 512))).users.size(),
            512u);
  EXPECT_EQ(std::get<peers>(decode(frame_type::peers, peers_payload(0, 0, 0))).users.size(), 0u);
}

TEST(Reject, PeersFlagsOtherThanZeroOrOne) {
  for (std::uint8_t flags : {2, 3, 0x10, 0x80, 0xfe, 0xff}) {
    EXPECT_THROW(decode(frame_type::peers, peers_payload(flags, 1, 1)), protocol_violation)
        << +flags;
    EXPECT_THROW(decode(frame_type::peers, peers_payload(flags, 0, 0)), protocol_violation)
        << +flags;
  }
}

TEST(Reject, PeersCountOver512) {
  EXPECT_THROW(decode(frame_type::peers, peers_payload(0, 513, 513)), protocol_violation);
  EXPECT_THROW(decode(frame_type::peers, peers_payload(1, 513, 513)), protocol_violation);
  EXPECT_THROW(decode(frame_type::peers, peers_payload(1, 1000, 1000)), protocol_violation);
  EXPECT_THROW(decode(frame_type::peers, peers_payload(1, 0xffff, 0)), protocol_violation);
  EXPECT_THROW(encode(peers{true, entries(numbered_users(513))}), protocol_violation);
  EXPECT_THROW(encode(peers{false, entries(numbered_users(1000))}), protocol_violation);
}

TEST(Reject, PeersCountDisagreesWithList) {
  EXPECT_THROW(decode(frame_type::peers, peers_payload(0, 3, 2)), protocol_violation);
  EXPECT_THROW(decode(frame_type::peers, peers_payload(0, 2, 3)), protocol_violation);
  EXPECT_THROW(decode(frame_type::peers, peers_payload(0, 1, 0)), protocol_violation);
  EXPECT_THROW(decode(frame_type::peers, peers_payload(0, 0, 1)), protocol_violation);
}

// A PEERS frame is a control frame, so its payload is limited to 16,384 bytes (section 2), even
// though 512 user IDs of 64 bytes would need 3 + 512 * 66 = 33,795 bytes. encode() refuses a list
// that does not fit instead of sending an oversized frame (the relay has to keep the list small
// enough and set the truncated flag).
TEST(Peers, PayloadLimitIsSixteenKiB) {
  // 3 + 248 * (1 + 64 + 1) + (1 + 9 + 1 + 2) = 16384 bytes.
  std::vector<peer_entry> users = entries(std::vector<std::string>(248, std::string(64, 'u')));
  users.push_back(peer_entry{std::string(9, 'v'), {"w"}});
  const bytes frame = encode(peers{true, users});
  EXPECT_EQ(frame.size(), header_size + 16384);
  EXPECT_EQ(header_of(frame).length, 16384u);
  EXPECT_EQ(std::get<peers>(decode(frame_type::peers, payload_of(frame))).users, users);

  users.back().services.back() += 'w';  // 16385 bytes
  EXPECT_THROW(encode(peers{true, users}), protocol_violation);
  EXPECT_THROW(encode(peers{true, entries(std::vector<std::string>(512, std::string(64, 'u')))}),
               protocol_violation);
}

// A user's services in PEERS are the union over its instances (section 7): up to 255 fit the
// entry's u8 count, more cannot be written.
TEST(Peers, EntryOfUpTo255Services) {
  const auto back =
      std::get<peers>(round_trip(peers{false, entries({"bob"}, numbered_services(255))}));
  ASSERT_EQ(back.users.size(), 1u);
  EXPECT_EQ(back.users[0].services, numbered_services(255));
  EXPECT_THROW(encode(peers{false, entries({"bob"}, numbered_services(256))}), protocol_violation);
  EXPECT_THROW(encode(peers{false, entries({"bob"}, numbered_services(300))}), protocol_violation);
  // More than 32 (the limit of one instance's list) is fine in PEERS.
  EXPECT_NO_THROW(decode(frame_type::peers, peers_with_services(numbered_services(33))));
}

TEST(Reject, PeersEntryNamesAServiceTwice) {
  EXPECT_THROW(decode(frame_type::peers, peers_with_services({"ssh", "ssh"})), protocol_violation);
  EXPECT_THROW(decode(frame_type::peers, peers_with_services({"a", "ssh", "b", "ssh"})),
               protocol_violation);
  EXPECT_THROW(encode(peers{false, entries({"bob"}, {"ssh", "fax", "ssh"})}), protocol_violation);
  // The same service under two users is no repetition.
  EXPECT_NO_THROW(encode(peers{false, entries({"alice", "bob"}, {"ssh"})}));
}

TEST(Reject, PeersEntryCountDisagreesWithList) {
  // bob announces 2 services but 1 follows, and the other way round.
  EXPECT_THROW(
      decode(frame_type::peers, builder().u8(0).u16(1).str8("bob").u8(2).str8("ssh").get()),
      protocol_violation);
  EXPECT_THROW(decode(frame_type::peers,
                      builder().u8(0).u16(1).str8("bob").u8(1).str8("ssh").str8("fax").get()),
               protocol_violation);
  // An entry cut before its count.
  EXPECT_THROW(decode(frame_type::peers, builder().u8(0).u16(1).str8("bob").get()),
               protocol_violation);
}

// --- services in LOGIN and ANNOUNCE ----------------------------------------------------------

TEST(Services, UpTo32InLoginAndAnnounce) {
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{31}, std::size_t{32}}) {
    const auto list = numbered_services(n);
    EXPECT_EQ(std::get<login>(decode(frame_type::login, login_with_services(list))).services, list)
        << n;
    EXPECT_EQ(std::get<announce>(decode(frame_type::announce, announce_with(list))).services, list)
        << n;
    EXPECT_NO_THROW(encode(make_login(auth_method::password, "alice", "pw", {}, 1, list))) << n;
    EXPECT_NO_THROW(encode(announce{list})) << n;
  }
}

TEST(Reject, Over32ServicesInLoginOrAnnounce) {
  for (std::size_t n : {std::size_t{33}, std::size_t{64}, std::size_t{255}}) {
    const auto list = numbered_services(n);
    EXPECT_THROW(decode(frame_type::login, login_with_services(list)), protocol_violation) << n;
    EXPECT_THROW(decode(frame_type::announce, announce_with(list)), protocol_violation) << n;
    EXPECT_THROW(encode(make_login(auth_method::password, "alice", "pw", {}, 1, list)),
                 protocol_violation)
        << n;
    EXPECT_THROW(encode(announce{list}), protocol_violation) << n;
  }
  // A count over 32 is refused even when the names it promises are not there.
  EXPECT_THROW(decode(frame_type::announce, bytes{33}), protocol_violation);
  EXPECT_THROW(decode(frame_type::announce, bytes{0xff}), protocol_violation);
}

TEST(Reject, ServiceNamedTwiceInLoginOrAnnounce) {
  const std::vector<std::vector<std::string>> lists = {
      {"ssh", "ssh"}, {"ssh", "fax", "ssh"}, {"a", "b", "c", "b"}, {service32, service32}};
  for (const auto& list : lists) {
    SCOPED_TRACE(list.size());
    EXPECT_THROW(decode(frame_type::login, login_with_services(list)), protocol_violation);
    EXPECT_THROW(decode(frame_type::announce, announce_with(list)), protocol_violation);
    EXPECT_THROW(encode(make_login(auth_method::password, "alice", "pw", {}, 1, list)),
                 protocol_violation);
    EXPECT_THROW(encode(announce{list}), protocol_violation);
  }
  // Names differ by byte: "ssh" and "ssh." are two services.
  EXPECT_NO_THROW(decode(frame_type::announce, announce_with({"ssh", "ssh."})));
}

TEST(Reject, ServiceCountDisagreesWithList) {
  EXPECT_THROW(decode(frame_type::announce, builder().u8(2).str8("ssh").get()), protocol_violation);
  EXPECT_THROW(decode(frame_type::announce, builder().u8(1).str8("ssh").str8("fax").get()),
               protocol_violation);
  EXPECT_THROW(decode(frame_type::announce, builder().u8(1).u8(4).raw("ssh").get()),
               protocol_violation);
  bytes login = login_with_services({"ssh", "fax"});
  login.pop_back();
  EXPECT_THROW(decode(frame_type::login, login), protocol_violation);
  login = login_with_services({"ssh"});
  login.push_back(0x00);
  EXPECT_THROW(decode(frame_type::login, login), protocol_violation);
}

// Flags bit 0 is "calls only"; the other seven bits must be 0 (section 3).
TEST(Reject, UnknownLoginFlags) {
  EXPECT_FALSE(
      std::get<login>(decode(frame_type::login, login_with_services({"ssh"}, 0))).calls_only);
  EXPECT_TRUE(
      std::get<login>(decode(frame_type::login, login_with_services({"ssh"}, 1))).calls_only);
  EXPECT_TRUE(std::get<login>(decode(frame_type::login, login_with_services({}, 1))).calls_only);
  for (std::uint8_t flags : {2, 3, 4, 0x40, 0x80, 0x81, 0xfe, 0xff}) {
    EXPECT_THROW(decode(frame_type::login, login_with_services({"ssh"}, flags)), protocol_violation)
        << +flags;
    EXPECT_THROW(decode(frame_type::login, login_with_services({}, flags)), protocol_violation)
        << +flags;
  }
}

// --- NEED-LINES and SERVICE-LOST -------------------------------------------------------------

TEST(Reject, NeedLinesIsExactlyTwoBytes) {
  EXPECT_EQ(std::get<need_lines>(decode(frame_type::need_lines, bytes{0x01, 0x00})).count, 256u);
  for (const bytes& payload : {bytes{}, bytes{0x01}, bytes{0x00, 0x01, 0x00}, bytes(16, 0)}) {
    EXPECT_THROW(decode(frame_type::need_lines, payload), protocol_violation) << payload.size();
  }
}

TEST(Reject, ServiceLostFields) {
  EXPECT_EQ(
      std::get<service_lost>(decode(frame_type::service_lost, service_lost_with("fax"))).message,
      "gone");
  // Text over 1024 bytes; a message cut short; nothing after the service; trailing bytes.
  EXPECT_THROW(decode(frame_type::service_lost,
                      builder().u8(1).str8("ssh").str16(std::string(1025, 'm')).get()),
               protocol_violation);
  EXPECT_THROW(
      decode(frame_type::service_lost, builder().u8(1).str8("ssh").u16(5).raw("gon").get()),
      protocol_violation);
  EXPECT_THROW(decode(frame_type::service_lost, builder().u8(1).str8("ssh").get()),
               protocol_violation);
  EXPECT_THROW(decode(frame_type::service_lost, builder().u8(1).str8("ssh").str16("").u8(0).get()),
               protocol_violation);
  EXPECT_THROW(encode(service_lost{{"ssh"}, std::string(1025, 'm')}), protocol_violation);
  // No service named; the same service twice.
  EXPECT_THROW(decode(frame_type::service_lost, builder().u8(0).str16("").get()),
               protocol_violation);
  EXPECT_THROW(encode(service_lost{{}, "gone"}), protocol_violation);
  EXPECT_THROW(
      decode(frame_type::service_lost, builder().u8(2).str8("a").str8("a").str16("").get()),
      protocol_violation);
}

// --- garbage ---------------------------------------------------------------------------------

constexpr frame_type control_types[] = {
    frame_type::login,     frame_type::ping,       frame_type::peers_request,
    frame_type::demand,    frame_type::accept,     frame_type::reject,
    frame_type::logout,    frame_type::release,    frame_type::eof,
    frame_type::terminate, frame_type::login_ok,   frame_type::pong,
    frame_type::peers,     frame_type::incoming,   frame_type::connected,
    frame_type::fail,      frame_type::logged_out, frame_type::released,
    frame_type::announce,  frame_type::need_lines, frame_type::service_lost};

// A LOGIN of another version decodes to its version alone (section 4), so it cannot re-encode to
// its payload; everything else that decodes must.
bool other_version_login(const message& m) {
  const auto* l = std::get_if<login>(&m);
  return l != nullptr && l->version != protocol_version;
}

// Runs one untrusted frame through the receive path. Returns true when it decoded. A decoded
// message must re-encode to exactly the same bytes (a LOGIN of another version must hold its
// version alone); anything thrown except protocol_violation is a failure (counted, first one
// reported).
struct outcome_counter {
  std::size_t decoded = 0;
  std::size_t refused = 0;
  std::size_t bad = 0;
  std::string first_bad;

  void note_bad(const std::string& what, std::span<const std::uint8_t> input) {
    if (bad++ == 0) first_bad = what + " on input " + hex(input);
  }

  void feed_payload(frame_type type, std::span<const std::uint8_t> payload) {
    try {
      const message m = decode(type, payload);
      ++decoded;
      if (other_version_login(m)) {
        login only;
        only.version = payload[0];
        if (!same(m, only)) note_bad("a LOGIN of another version kept more than it", payload);
        return;
      }
      bytes again;
      try {
        again = encode(m);
      } catch (const std::exception& e) {
        note_bad(std::string("re-encoding a decoded message threw: ") + e.what(), payload);
        return;
      }
      if (type_of(m) != type ||
          !std::equal(again.begin() + header_size, again.end(), payload.begin(), payload.end())) {
        note_bad("decoded message re-encodes differently", payload);
      }
    } catch (const protocol_violation&) {
      ++refused;
    } catch (const std::exception& e) {
      note_bad(std::string("decode threw a non-protocol_violation: ") + e.what(), payload);
    } catch (...) {
      note_bad("decode threw a non-exception", payload);
    }
  }

  // Header first (as a reader would), then the payload the header announces, or what there is.
  void feed_frame(std::span<const std::uint8_t> frame) {
    if (frame.size() < header_size) return;
    frame_header h{};
    try {
      h = parse_header(frame.first<header_size>());
    } catch (const protocol_violation&) {
      ++refused;
      return;
    } catch (...) {
      note_bad("parse_header threw a non-protocol_violation", frame);
      return;
    }
    auto payload = frame.subspan(header_size);
    payload = payload.first(std::min<std::size_t>(payload.size(), h.length));
    if (h.type == frame_type::data) {
      EXPECT_THROW(decode(h.type, payload), protocol_violation);
      return;
    }
    feed_payload(h.type, payload);
  }
};

TEST(Garbage, RandomTypesAndPayloads) {
  std::mt19937 rng(0x5b0a4d);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<std::size_t> length(0, 300);
  std::uniform_int_distribution<std::size_t> pick(0, std::size(control_types) - 1);
  outcome_counter c;
  bytes frame;
  for (int i = 0; i < 200000; ++i) {
    const std::size_t n = length(rng);
    // Half the time a known control type, so the payload decoders get most of the work.
    const auto type = (i % 2 == 0) ? static_cast<std::uint8_t>(control_types[pick(rng)])
                                   : static_cast<std::uint8_t>(byte(rng));
    frame.assign({type, 0, static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)});
    for (std::size_t k = 0; k < n; ++k) frame.push_back(static_cast<std::uint8_t>(byte(rng)));
    // Small lengths for some frames, and a few whose payload starts with a plausible prefix.
    if (i % 7 == 0 && n >= 1) frame[4] = static_cast<std::uint8_t>(i % 3);
    c.feed_frame(frame);
    // Straight into decode as well, whatever the type byte.
    c.feed_payload(static_cast<frame_type>(type), payload_of(frame));
  }
  EXPECT_EQ(c.bad, 0u) << c.first_bad;
  EXPECT_GT(c.decoded, 0u);
  EXPECT_GT(c.refused, 0u);
}

TEST(Garbage, MutatedValidEncodings) {
  const std::vector<message> base = samples();
  std::vector<bytes> frames;
  for (const auto& m : base) frames.push_back(encode(m));
  std::mt19937 rng(20240611);
  std::uniform_int_distribution<int> byte(0, 255);
  outcome_counter c;
  for (int i = 0; i < 100000; ++i) {
    const bytes& orig = frames[static_cast<std::size_t>(rng() % frames.size())];
    bytes f = orig;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = f.empty() ? 0 : rng() % f.size();
      switch (rng() % 6) {
        case 0:  // flip one bit
          if (!f.empty()) f[at] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
          break;
        case 1:  // replace a byte
          if (!f.empty()) f[at] = static_cast<std::uint8_t>(byte(rng));
          break;
        case 2:  // replace a payload byte only (keeps the header plausible)
          if (f.size() > header_size) {
            f[header_size + rng() % (f.size() - header_size)] =
                static_cast<std::uint8_t>(byte(rng));
          }
          break;
        case 3:  // insert a byte
          f.insert(f.begin() + static_cast<std::ptrdiff_t>(at),
                   static_cast<std::uint8_t>(byte(rng)));
          break;
        case 4:  // delete a byte
          if (!f.empty()) f.erase(f.begin() + static_cast<std::ptrdiff_t>(at));
          break;
        case 5:  // cut the tail
          f.resize(at);
          break;
      }
    }
    c.feed_frame(f);
    if (f.size() >= header_size) {
      // Decode with the original type whatever the header now says.
      c.feed_payload(static_cast<frame_type>(orig[0]), payload_of(f));
    }
  }
  EXPECT_EQ(c.bad, 0u) << c.first_bad;
  EXPECT_GT(c.decoded, 0u);
  EXPECT_GT(c.refused, 0u);
}

// Random (often invalid) field values: whatever encode() accepts must decode to the same message;
// whatever it refuses, it refuses with protocol_violation (a LOGIN of another version decodes to
// its version alone). Auth methods are drawn from {0, 1} only; unknown ones are
// Reject.EncodeRefusesUnknownAuthMethod.
TEST(Garbage, EncodeAcceptsOnlyWhatDecodeAccepts) {
  std::mt19937 rng(77);
  auto chance = [&](int percent) { return static_cast<int>(rng() % 100) < percent; };
  auto any_string = [&](std::size_t max_len) {
    std::string s(rng() % (max_len + 1), '\0');
    for (auto& ch : s) ch = static_cast<char>(rng());
    return s;
  };
  auto user = [&]() -> std::string {
    static constexpr std::string_view alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@-";
    if (chance(10)) return any_string(70);
    std::string s(1 + rng() % (chance(10) ? 66 : 12), 'x');
    for (auto& ch : s) ch = alphabet[rng() % alphabet.size()];
    return s;
  };
  auto service = [&]() -> std::string {
    static constexpr std::string_view alphabet = "abcdefghijklmnopqrstuvwxyz0123456789._-X";
    if (chance(10)) return any_string(40);
    std::string s(1 + rng() % (chance(10) ? 34 : 8), 'x');
    for (auto& ch : s) ch = alphabet[rng() % alphabet.size()];
    return s;
  };
  auto text = [&]() { return std::string(chance(20) ? 1020 + rng() % 8 : rng() % 40, 't'); };
  // Mostly valid lists around the limit of 32, sometimes with a repeated or an invalid name.
  auto services = [&](std::size_t most) {
    std::vector<std::string> list =
        numbered_services(chance(10) ? most - 2 + rng() % 4 : rng() % 4);
    if (!list.empty() && chance(5)) list.push_back(list[rng() % list.size()]);
    if (chance(5)) list.push_back(service());
    return list;
  };
  auto code = [&]() { return static_cast<error_code>(rng() % 0x10000); };
  auto u32 = [&]() { return static_cast<std::uint32_t>(rng()); };
  auto u64 = [&]() { return (std::uint64_t{rng()} << 32) | rng(); };

  std::size_t accepted = 0;
  std::size_t refused = 0;
  for (int i = 0; i < 20000; ++i) {
    message m;
    switch (rng() % std::variant_size_v<message>) {
      case 0: {
        login l;
        l.version = chance(90) ? protocol_version : static_cast<std::uint8_t>(rng());
        l.auth = chance(50) ? auth_method::password : auth_method::ticket;
        l.user = user();
        const std::size_t len =
            chance(30) ? 38 + rng() % 5 : (chance(50) ? 1020 + rng() % 8 : rng() % 3);
        l.secret = std::string(len, static_cast<char>(rng()));
        for (auto& b : l.instance) b = static_cast<std::uint8_t>(rng());
        l.keepalive_ms = u32();
        l.services = services(max_services);
        l.calls_only = chance(50);
        m = l;
        break;
      }
      case 1:
        m = ping{u64()};
        break;
      case 2:
        m = peers_request{};
        break;
      case 3:
        m = demand{user(), service()};
        break;
      case 4:
        m = accept{u32()};
        break;
      case 5:
        m = reject{u32(), code(), text()};
        break;
      case 6:
        m = logout{};
        break;
      case 7:
        m = release{};
        break;
      case 8:
        m = eof{};
        break;
      case 9:
        m = terminate{code(), text()};
        break;
      case 10: {
        login_ok l{u32(), u32(), static_cast<std::uint16_t>(rng()), {}};
        for (auto& b : l.ticket) b = static_cast<std::uint8_t>(rng());
        m = l;
        break;
      }
      case 11:
        m = pong{u64()};
        break;
      case 12: {
        peers p;
        p.truncated = chance(50);
        const std::size_t n = chance(5) ? 500 + rng() % 20 : rng() % 6;
        for (std::size_t k = 0; k < n; ++k) {
          p.users.push_back(peer_entry{chance(98) ? "u" + std::to_string(k) : user(),
                                       chance(50) ? std::vector<std::string>{} : services(255)});
        }
        m = p;
        break;
      }
      case 13:
        m = incoming{u32(), user(), service()};
        break;
      case 14:
        m = connected{u32(), user()};
        break;
      case 15:
        m = fail{code(), text()};
        break;
      case 16:
        m = logged_out{code(), text()};
        break;
      case 17:
        m = released{};
        break;
      case 18:
        m = announce{services(max_services)};
        break;
      case 19:
        m = need_lines{static_cast<std::uint16_t>(rng())};
        break;
      default:
        m = service_lost{{service()}, text()};
        break;
    }
    bytes frame;
    try {
      frame = encode(m);
    } catch (const protocol_violation&) {
      ++refused;
      continue;
    } catch (const std::exception& e) {
      ADD_FAILURE() << name_of(m) << ": encode threw a non-protocol_violation: " << e.what();
      continue;
    }
    ++accepted;
    try {
      const frame_header h = header_of(frame);
      ASSERT_EQ(h.length, frame.size() - header_size);
      const message back = decode(h.type, payload_of(frame));
      if (other_version_login(m)) {
        login only;
        only.version = std::get<login>(m).version;
        ASSERT_TRUE(same(back, only)) << hex(frame);
        continue;
      }
      ASSERT_TRUE(same(m, back)) << name_of(m) << ": " << hex(frame);
    } catch (const protocol_violation& e) {
      FAIL() << name_of(m) << " was encoded but its decoding is refused (" << e.what()
             << "): " << hex(frame);
    }
  }
  EXPECT_GT(accepted, 1000u);
  EXPECT_GT(refused, 1000u);
}

}  // namespace
}  // namespace switchboard::protocol
