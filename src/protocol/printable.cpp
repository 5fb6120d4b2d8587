#include "protocol/printable.hpp"

#include <algorithm>

namespace switchboard::protocol {

namespace {

constexpr std::string_view cut_marker = "...";

struct code_point {
  char32_t value = 0;
  std::size_t length = 0;  // bytes; 0: `text` does not start with well-formed UTF-8
};

// The well-formed UTF-8 sequence at the start of a non-empty `text` (The Unicode Standard,
// table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF).
code_point decode_one(std::string_view text) {
  const auto lead = static_cast<unsigned char>(text[0]);
  if (lead < 0x80) return {lead, 1};
  std::size_t length = 0;
  char32_t value = 0;
  unsigned char low = 0x80;  // range of the second byte; the others are always 80..BF
  unsigned char high = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
    value = lead & 0x1fu;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    value = lead & 0x0fu;
    if (lead == 0xe0) low = 0xa0;   // overlong below U+0800
    if (lead == 0xed) high = 0x9f;  // surrogates U+D800-U+DFFF
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    value = lead & 0x07u;
    if (lead == 0xf0) low = 0x90;   // overlong below U+10000
    if (lead == 0xf4) high = 0x8f;  // above U+10FFFF
  } else {
    return {};
  }
  if (text.size() < length) return {};
  for (std::size_t i = 1; i < length; ++i) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b < low || b > high) return {};
    low = 0x80;
    high = 0xbf;
    value = (value << 6) | (b & 0x3fu);
  }
  return {value, length};
}

// Code points above ASCII that a terminal acts on or that reorder or break what is shown.
bool escaped_above_ascii(char32_t c) {
  return (c >= 0x80 && c <= 0x9f) || c == 0x061c || c == 0x200e || c == 0x200f ||
         (c >= 0x2028 && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

void append_hex(std::string& out, std::string_view prefix, char32_t value, int digits) {
  constexpr std::string_view hex = "0123456789abcdef";
  out += prefix;
  for (int shift = 4 * (digits - 1); shift >= 0; shift -= 4) out += hex[(value >> shift) & 0xfu];
}

// Appends the rendering of the character (or stray byte) at the start of a non-empty `text`;
// returns how many bytes of `text` it took.
std::size_t append_one(std::string& out, std::string_view text) {
  const code_point c = decode_one(text);
  if (c.length == 0) {
    append_hex(out, "\\x", static_cast<unsigned char>(text[0]), 2);
    return 1;
  }
  if (c.value == '\t') {
    out += "\\t";
  } else if (c.value == '\n') {
    out += "\\n";
  } else if (c.value == '\r') {
    out += "\\r";
  } else if (c.value < 0x20 || c.value == 0x7f) {
    append_hex(out, "\\x", c.value, 2);
  } else if (escaped_above_ascii(c.value)) {
    append_hex(out, "\\u", c.value, 4);
  } else {
    out.append(text.substr(0, c.length));
  }
  return c.length;
}

}  // namespace

std::string printable(std::string_view text, std::size_t max_bytes) {
  const std::string_view marker = max_bytes >= cut_marker.size() ? cut_marker : "";
  std::string out;
  out.reserve(std::min(text.size(), max_bytes));
  // The longest prefix of `out`, ending between two renderings, that leaves room for the marker.
  std::size_t keep = 0;
  while (!text.empty()) {
    text.remove_prefix(append_one(out, text));
    if (out.size() > max_bytes) {
      out.resize(keep);
      out += marker;
      return out;
    }
    if (out.size() + marker.size() <= max_bytes) keep = out.size();
  }
  return out;
}

}  // namespace switchboard::protocol
