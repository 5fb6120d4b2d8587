// TPKT framing of T.38 IFP packets over TCP (RFC 1006 §6, T.38 §9.2): each IFP packet is preceded
// by a 4-byte header: version 3, reserved 0, 16-bit big-endian length of the whole frame including
// the header. Pure: no I/O.
//
// TCP cannot resynchronise a byte stream, so a bad header is fatal to the call: parser::next()
// throws fax_error as soon as the 4 header bytes are in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "fax/error.hpp"

namespace switchboard::fax::tpkt {

inline constexpr std::size_t header_size = 4;
inline constexpr std::uint8_t version = 3;
// Header plus at least one IFP byte.
inline constexpr std::size_t min_frame_size = header_size + 1;
// The largest frame the 16-bit length field can describe.
inline constexpr std::size_t max_frame_size = 0xFFFF;
// What the parser accepts by default. spandsp 0.0.6 builds frames in a 16 KiB buffer and sends
// IFP packets of a few hundred bytes; anything near this limit is garbage, not fax.
inline constexpr std::size_t default_max_frame_size = 16384;

// Appends one frame (header + ifp) to `out`. Throws fax_error if ifp is empty or too long.
void encode(std::span<const std::uint8_t> ifp, std::vector<std::uint8_t>& out);
std::vector<std::uint8_t> encode(std::span<const std::uint8_t> ifp);

// One whole frame, header included; valid until the next feed() or next() on its parser.
struct frame {
  std::span<const std::uint8_t> bytes;
  std::span<const std::uint8_t> payload() const { return bytes.subspan(header_size); }
};

// Incremental parser: feed() arbitrary chunks, then take whole frames with next() until it returns
// nothing. Frames come out in order; bytes are buffered only while a frame is incomplete.
class parser {
 public:
  explicit parser(std::size_t max_frame = default_max_frame_size);

  void feed(std::span<const std::uint8_t> bytes);
  // The next whole frame, or nullopt if more bytes are needed. Throws fax_error on a bad header
  // (version != 3, reserved != 0, length < 5 or > the maximum); the parser is unusable afterwards.
  std::optional<frame> next();

  // Bytes of an incomplete frame held back (0 at a frame boundary).
  std::size_t buffered() const { return buf_.size() - pos_; }
  // For an error message when the stream ends: "stream ended inside a TPKT frame (3 of 40 bytes)".
  // Throws fax_error if buffered() != 0, else does nothing.
  void check_end() const;

 private:
  std::size_t max_frame_;
  std::vector<std::uint8_t> buf_;
  std::size_t pos_ = 0;  // start of the first unconsumed byte in buf_
  bool failed_ = false;
};

}  // namespace switchboard::fax::tpkt
