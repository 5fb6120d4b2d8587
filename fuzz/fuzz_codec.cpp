// Frame headers and control messages (protocol/frame.hpp, protocol/messages.hpp) from arbitrary
// bytes, read as a stream of frames the way a line reads them.
//
// Checked for every frame in the input:
//  - parse_header accepts exactly what encode_header produces: a header that parses re-encodes
//    to the same 4 bytes, and a known type whose length parse_header refuses is refused by
//    encode_header too (we never send what we would refuse to receive);
//  - a control payload that decodes re-encodes to exactly the same bytes (the codec is
//    canonical: every field has one encoding, flags and auth methods above 1 are refused, service
//    lists hold each name once, error codes keep their 16 bits whether this build knows them or
//    not), and the decoded message has the frame's type. The exception: a LOGIN whose version is
//    not protocol_version decodes to that version alone, whatever follows (docs/protocol.md §4,
//    UNSUPPORTED_VERSION), so it is checked to hold nothing else;
//  - decode throws only protocol_violation (anything else escapes and is a crash).
// The payload decoded is what the input still holds of the frame (min(length, rest)), so truncated
// payloads are decoded too.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include "check.hpp"
#include "protocol/frame.hpp"
#include "protocol/messages.hpp"

using namespace switchboard::protocol;

namespace {

bool header_parses(std::span<const std::uint8_t, header_size> h, frame_header& out) {
  try {
    out = parse_header(h);
    return true;
  } catch (const protocol_violation&) {
    return false;
  }
}

void check_payload(frame_type type, std::span<const std::uint8_t> payload) {
  message m;
  try {
    m = decode(type, payload);
  } catch (const protocol_violation&) {
    return;
  }
  FUZZ_CHECK(type != frame_type::data, "a DATA payload decoded as a control message");
  FUZZ_CHECK(type_of(m) == type, "decoded message of another type");
  if (const auto* l = std::get_if<login>(&m); l != nullptr && l->version != protocol_version) {
    FUZZ_CHECK(!payload.empty() && payload[0] == l->version, "LOGIN version is not its first byte");
    const login defaults;
    FUZZ_CHECK(l->auth == defaults.auth && l->user.empty() && l->secret.empty() &&
                   l->instance == defaults.instance && l->keepalive_ms == defaults.keepalive_ms &&
                   l->services.empty() && !l->calls_only,
               "a LOGIN of another version kept more than its version");
    return;
  }
  const std::vector<std::uint8_t> again = encode(m);  // must not throw: it was accepted
  FUZZ_CHECK(again.size() == header_size + payload.size(), "re-encoded to another length");
  const auto h = encode_header(type, static_cast<std::uint32_t>(payload.size()));
  FUZZ_CHECK(std::equal(h.begin(), h.end(), again.begin()), "re-encoded header differs");
  FUZZ_CHECK(std::equal(payload.begin(), payload.end(), again.begin() + header_size),
             "re-encoded payload differs");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> in(data, size);
  while (in.size() >= header_size) {  // each turn consumes at least the header
    const std::span<const std::uint8_t, header_size> hb(in.data(), header_size);
    in = in.subspan(header_size);
    frame_header h{};
    if (!header_parses(hb, h)) {
      // A known type with a refused length must be refused by the encoder as well.
      const std::uint32_t length = std::uint32_t{hb[1]} << 16 | std::uint32_t{hb[2]} << 8 | hb[3];
      bool encoded = true;
      try {
        encode_header(static_cast<frame_type>(hb[0]), length);
      } catch (const protocol_violation&) {
        encoded = false;
      }
      // encode_header does not know the set of types; only the length rules are compared.
      if (encoded) {
        const bool type_known = frame_name(static_cast<frame_type>(hb[0]))[0] != '?';
        FUZZ_CHECK(!type_known, "encode_header writes a header parse_header refuses");
      }
      // A line ends at a refused header; so does the input (one exception, not one per 4 bytes).
      break;
    }
    const auto again = encode_header(h.type, h.length);
    FUZZ_CHECK(std::equal(again.begin(), again.end(), hb.begin()), "header re-encodes differently");
    const std::size_t n = std::min<std::size_t>(h.length, in.size());
    check_payload(h.type, in.first(n));  // DATA must be refused: payloads are streamed
    in = in.subspan(n);
  }
  return 0;
}
