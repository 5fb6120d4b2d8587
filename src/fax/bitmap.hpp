// A bilevel page image: the pixels a fax page carries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace switchboard::fax {

// Rows top to bottom, 8 pixels per byte, most significant bit leftmost, 1 = black. Bits past
// `width` in a row's last byte are always 0, so rows compare bytewise.
struct bitmap {
  int width = 0;
  int height = 0;
  double x_dpi = 0;  // 0 = unknown
  double y_dpi = 0;
  std::vector<std::uint8_t> bits;

  bitmap() = default;
  bitmap(int w, int h, double xdpi = 0, double ydpi = 0)
      : width(w),
        height(h),
        x_dpi(xdpi),
        y_dpi(ydpi),
        bits(stride() * static_cast<std::size_t>(h)) {}

  std::size_t stride() const { return (static_cast<std::size_t>(width) + 7) / 8; }
  std::uint8_t* row(int y) { return bits.data() + stride() * static_cast<std::size_t>(y); }
  const std::uint8_t* row(int y) const {
    return bits.data() + stride() * static_cast<std::size_t>(y);
  }
  bool black(int x, int y) const { return (row(y)[x >> 3] >> (7 - (x & 7))) & 1; }
  void set(int x, int y, bool is_black) {
    const auto mask = static_cast<std::uint8_t>(0x80 >> (x & 7));
    if (is_black) {
      row(y)[x >> 3] |= mask;
    } else {
      row(y)[x >> 3] &= static_cast<std::uint8_t>(~mask);
    }
  }
  std::size_t black_pixels() const;
};

// Same width, height and pixels (resolution not compared).
bool same_pixels(const bitmap& a, const bitmap& b);
// Pixels that differ; -1 if the sizes differ.
long long differing_pixels(const bitmap& a, const bitmap& b);

}  // namespace switchboard::fax
