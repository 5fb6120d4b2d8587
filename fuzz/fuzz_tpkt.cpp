// The TPKT stream parser of the fax machine (fax/tpkt.hpp) against a model written from RFC 1006
// §6: fuzzer-chosen frame limit and feed sizes, then the bytes of a T.38/TCP stream.
//
// The model walks the whole stream at once: frames (version 3, reserved 0, length 5..limit) in
// order, up to the first bad header. The parser, fed in pieces and asked for frames after every
// piece, must give exactly those frames, each re-encoding to its bytes with tpkt::encode; throw
// fax_error as soon as the 4 bytes of the bad header are in, and keep throwing; and at the end
// report through buffered() and check_end() exactly the bytes of an incomplete last frame.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "check.hpp"
#include "fax/tpkt.hpp"

namespace tpkt = switchboard::fax::tpkt;
using switchboard::fax::fax_error;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const auto limit_asked = in.ConsumeIntegralInRange<std::size_t>(0, 70'000);
  std::vector<std::size_t> feeds;
  for (int i = 0; i < 4; ++i) feeds.push_back(in.ConsumeIntegralInRange<std::size_t>(1, 300));
  const std::vector<std::uint8_t> stream = in.ConsumeRemainingBytes<std::uint8_t>();
  const std::size_t limit = std::clamp(limit_asked, tpkt::min_frame_size, tpkt::max_frame_size);

  // The model: frame boundaries, and where a bad header starts (if any).
  std::vector<std::span<const std::uint8_t>> frames;
  std::optional<std::size_t> bad_at;
  std::size_t at = 0;
  while (stream.size() - at >= tpkt::header_size) {
    const std::uint8_t* h = stream.data() + at;
    const std::size_t length = std::size_t{h[2]} << 8 | h[3];
    if (h[0] != 3 || h[1] != 0 || length < tpkt::min_frame_size || length > limit) {
      bad_at = at;
      break;
    }
    if (stream.size() - at < length) break;
    frames.emplace_back(h, length);
    at += length;
  }

  tpkt::parser parser(limit_asked);
  std::size_t fed = 0;
  std::size_t taken = 0;
  bool threw = false;
  for (std::size_t turn = 0; fed < stream.size() && !threw; ++turn) {
    const std::size_t n = std::min(feeds[turn % feeds.size()], stream.size() - fed);
    parser.feed(std::span(stream).subspan(fed, n));
    fed += n;
    // Each turn takes at most the frames the model holds: more is a parser fault.
    for (std::size_t k = 0; k <= frames.size(); ++k) {
      std::optional<tpkt::frame> f;
      try {
        f = parser.next();
      } catch (const fax_error&) {
        threw = true;
        break;
      }
      if (!f) break;
      FUZZ_CHECK(taken < frames.size(), "a frame the stream does not hold");
      const auto want = frames[taken++];
      FUZZ_CHECK(std::equal(f->bytes.begin(), f->bytes.end(), want.begin(), want.end()),
                 "frame bytes differ");
      FUZZ_CHECK(tpkt::encode(f->payload()) == std::vector<std::uint8_t>(want.begin(), want.end()),
                 "frame does not re-encode to its bytes");
    }
    if (!threw && bad_at) {
      FUZZ_CHECK(fed < *bad_at + tpkt::header_size, "a bad header was not refused");
    }
  }
  FUZZ_CHECK(taken == frames.size(), "frames were lost");
  if (bad_at) {
    FUZZ_CHECK(threw, "a bad header was not refused");
    bool again = false;
    try {
      parser.next();
    } catch (const fax_error&) {
      again = true;
    }
    FUZZ_CHECK(again, "the parser went on after a bad header");
    return 0;
  }
  FUZZ_CHECK(!threw, "a good stream was refused");
  FUZZ_CHECK(parser.buffered() == stream.size() - at, "buffered() differs from the cut frame");
  bool ended_inside = false;
  try {
    parser.check_end();
  } catch (const fax_error&) {
    ended_inside = true;
  }
  FUZZ_CHECK(ended_inside == (at != stream.size()), "check_end() misreports the end");
  return 0;
}
