// Untrusted text rendered for terminals and logs (protocol/printable.hpp).
#include "protocol/printable.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace {

using namespace switchboard::protocol;
using namespace std::string_literals;

// True if `s` is well-formed UTF-8 with no C0, DEL or C1 control in it.
bool safe_for_terminal(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x20 || b == 0x7f) return false;
    if (b < 0x80) {
      ++i;
      continue;
    }
    if (b == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) <= 0x9f) {
      return false;  // U+0080-U+009F
    }
    const std::size_t n = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 ? 2 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

TEST(Printable, KeepsPrintableAsciiAndUtf8) {
  for (std::string_view s :
       {"", "login refused: BAD_CREDENTIALS", "a\\x1b stays as typed", "Grüße aus Zürich",
        "東京 ☎ 📠", "\u00a0nbsp", "U+2027 \u2027 U+202F \u202f"}) {
    EXPECT_EQ(printable(s), s);
  }
}

TEST(Printable, EscapesC0ControlsAndDel) {
  EXPECT_EQ(printable("\x1b[2J\x1b[H"), "\\x1b[2J\\x1b[H");
  EXPECT_EQ(printable("a\tb\nc\rd"), "a\\tb\\nc\\rd");
  EXPECT_EQ(printable("\a\b\f\v"), "\\x07\\x08\\x0c\\x0b");
  EXPECT_EQ(printable("nul\0in"s), "nul\\x00in");
  EXPECT_EQ(printable("\x7f"), "\\x7f");
  EXPECT_EQ(printable("\x1f "), "\\x1f ");
}

TEST(Printable, EscapesOscSequences) {
  // Window title (OSC 0, BEL-terminated) and a hyperlink (OSC 8, ST-terminated).
  EXPECT_EQ(printable("\x1b]0;owned\x07"), "\\x1b]0;owned\\x07");
  EXPECT_EQ(printable("\x1b]8;;http://x\x1b\\click\x1b]8;;\x1b\\"),
            "\\x1b]8;;http://x\\x1b\\click\\x1b]8;;\\x1b\\");
}

TEST(Printable, EscapesC1ControlsEncodedAsUtf8) {
  EXPECT_EQ(printable("\xc2\x80"), "\\u0080");
  EXPECT_EQ(printable("\xc2\x9b"
                      "2J"),
            "\\u009b2J");  // CSI
  EXPECT_EQ(printable("\xc2\x9d"
                      "0;t\xc2\x9c"),
            "\\u009d0;t\\u009c");  // OSC ... ST
  EXPECT_EQ(printable("\xc2\x9f\xc2\xa0"), "\\u009f\u00a0");
}

TEST(Printable, EscapesRawC1BytesAsInvalidUtf8) {
  // A terminal in 8-bit mode takes a lone 0x9B as CSI.
  EXPECT_EQ(printable("\x9b"
                      "2J"),
            "\\x9b2J");
  EXPECT_EQ(printable("\x9d"), "\\x9d");
}

TEST(Printable, EscapesBidiAndLineSeparators) {
  EXPECT_EQ(printable("abc\u202Etxt.exe"), "abc\\u202etxt.exe");
  EXPECT_EQ(printable("\u202A\u202B\u202C\u202D"), "\\u202a\\u202b\\u202c\\u202d");
  EXPECT_EQ(printable("\u2066\u2067\u2068\u2069"), "\\u2066\\u2067\\u2068\\u2069");
  EXPECT_EQ(printable("\u200E\u200F\u061C"), "\\u200e\\u200f\\u061c");
  EXPECT_EQ(printable("a\u2028b\u2029c"), "a\\u2028b\\u2029c");
}

TEST(Printable, EscapesEachByteOfInvalidUtf8) {
  EXPECT_EQ(printable("\x80"), "\\x80");                             // stray continuation
  EXPECT_EQ(printable("\xc0\xaf"), "\\xc0\\xaf");                    // overlong '/'
  EXPECT_EQ(printable("\xc1\xbf"), "\\xc1\\xbf");                    // overlong
  EXPECT_EQ(printable("\xe0\x80\xaf"), "\\xe0\\x80\\xaf");           // overlong '/'
  EXPECT_EQ(printable("\xf0\x80\x80\xaf"), "\\xf0\\x80\\x80\\xaf");  // overlong '/'
  EXPECT_EQ(printable("\xed\xa0\x80"), "\\xed\\xa0\\x80");           // surrogate U+D800
  EXPECT_EQ(printable("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // U+110000
  EXPECT_EQ(printable("\xf5\x80\x80\x80"), "\\xf5\\x80\\x80\\x80");
  EXPECT_EQ(printable("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(printable("abc\xe2\x82"), "abc\\xe2\\x82");  // cut off at the end
  EXPECT_EQ(printable("\xe2\x82"
                      "A\xe2\x82\xac"),
            "\\xe2\\x82A\u20ac");  // cut off, then the next character is read as it is
  // An invalid lead byte must not swallow an ESC that follows it.
  EXPECT_EQ(printable("\xc3\x1b[2J"), "\\xc3\\x1b[2J");
}

TEST(Printable, KeepsUtf8AtTheEdgesOfItsRanges) {
  for (std::string_view s : {"\xc2\xa0", "\xdf\xbf", "\xe0\xa0\x80", "\xed\x9f\xbf", "\xee\x80\x80",
                             "\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf"}) {
    EXPECT_EQ(printable(s), s);
  }
}

TEST(Printable, CapsTheLengthWithAMarker) {
  const std::string long_text(5000, 'a');
  const std::string out = printable(long_text);
  EXPECT_EQ(out.size(), max_printable);
  EXPECT_EQ(out, std::string(max_printable - 3, 'a') + "...");
  EXPECT_EQ(printable(std::string(max_printable, 'a')), std::string(max_printable, 'a'));
  EXPECT_EQ(printable("abcdef", 5), "ab...");
  EXPECT_EQ(printable("abcde", 5), "abcde");
  EXPECT_EQ(printable("abcdef", 2), "ab");
}

TEST(Printable, CutsBetweenCharactersAndEscapes) {
  EXPECT_EQ(printable(std::string(100, '\x1b'), 10), "\\x1b...");
  EXPECT_EQ(printable("éééééé", 8), "éé...");
  EXPECT_EQ(printable("a\u202e", 6), "a...");
}

TEST(Printable, RenderingTwiceChangesNothing) {
  for (const std::string& s : {"\x1b[31mred\x1b[0m"s, "\xc2\x9b\xed\xa0\x80\u202e\n"s,
                               std::string(3000, '\x07'), "plain"s, "\xe2\x82"s}) {
    const std::string once = printable(s);
    EXPECT_EQ(printable(once), once);
    EXPECT_EQ(printable(printable(s, 16), 16), printable(s, 16));
  }
}

TEST(Printable, RandomBytesComeOutSafe) {
  std::mt19937 rng(20261207);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> length(0, 64);
  for (int i = 0; i < 5000; ++i) {
    std::string s(static_cast<std::size_t>(length(rng)), '\0');
    for (auto& c : s) c = static_cast<char>(byte(rng));
    const std::string out = printable(s, 128);
    EXPECT_TRUE(safe_for_terminal(out)) << out;
    EXPECT_LE(out.size(), 128u);
  }
}

}  // namespace
