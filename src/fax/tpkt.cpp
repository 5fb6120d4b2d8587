#include "fax/tpkt.hpp"

#include <string>

namespace switchboard::fax::tpkt {

void encode(std::span<const std::uint8_t> ifp, std::vector<std::uint8_t>& out) {
  if (ifp.empty()) throw fax_error("TPKT: empty IFP packet");
  const std::size_t total = ifp.size() + header_size;
  if (total > max_frame_size) {
    throw fax_error("TPKT: IFP packet of " + std::to_string(ifp.size()) +
                    " bytes does not fit in a frame");
  }
  out.reserve(out.size() + total);
  out.push_back(version);
  out.push_back(0);
  out.push_back(static_cast<std::uint8_t>(total >> 8));
  out.push_back(static_cast<std::uint8_t>(total & 0xFF));
  out.insert(out.end(), ifp.begin(), ifp.end());
}

std::vector<std::uint8_t> encode(std::span<const std::uint8_t> ifp) {
  std::vector<std::uint8_t> out;
  encode(ifp, out);
  return out;
}

parser::parser(std::size_t max_frame)
    : max_frame_(max_frame < min_frame_size   ? min_frame_size
                 : max_frame > max_frame_size ? max_frame_size
                                              : max_frame) {}

void parser::feed(std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) return;
  // Drop consumed bytes before growing; frames are small, so this copies little.
  if (pos_ > 0 && (pos_ == buf_.size() || pos_ >= 4096)) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
    pos_ = 0;
  }
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
}

std::optional<frame> parser::next() {
  if (failed_) throw fax_error("TPKT: stream already failed");
  const std::size_t avail = buf_.size() - pos_;
  if (avail < header_size) return std::nullopt;
  const std::uint8_t* h = buf_.data() + pos_;
  auto bad = [this](const std::string& what) {
    failed_ = true;
    return fax_error("TPKT: " + what);
  };
  if (h[0] != version) {
    throw bad("bad version " + std::to_string(h[0]) + " (expected 3): not a T.38 TPKT stream");
  }
  if (h[1] != 0) throw bad("reserved byte is " + std::to_string(h[1]) + " (expected 0)");
  const std::size_t length = (std::size_t{h[2]} << 8) | h[3];
  if (length < min_frame_size) {
    throw bad("frame length " + std::to_string(length) + " is shorter than header + 1 IFP byte");
  }
  if (length > max_frame_) {
    throw bad("frame length " + std::to_string(length) + " exceeds the limit of " +
              std::to_string(max_frame_));
  }
  if (avail < length) return std::nullopt;
  frame f{std::span<const std::uint8_t>(h, length)};
  pos_ += length;
  return f;
}

void parser::check_end() const {
  const std::size_t avail = buffered();
  if (avail == 0) return;
  std::string expected = "?";
  if (avail >= header_size) {
    const std::uint8_t* h = buf_.data() + pos_;
    expected = std::to_string((std::size_t{h[2]} << 8) | h[3]);
  }
  throw fax_error("TPKT: stream ended inside a frame (" + std::to_string(avail) + " of " +
                  expected + " bytes)");
}

}  // namespace switchboard::fax::tpkt
