// Untrusted text made safe to print (a terminal, a log). Pure.
//
// Text fields on the wire (FAIL, TERMINATE, REJECT, LOGGED-OUT) are UTF-8 "for people" and come
// from the relay or a peer, as does a fax peer's station identity. Printed raw, an ESC or a C1
// control moves the cursor, clears the screen or sets the window title of whoever reads it, and
// a newline forges a log line. Every such text is printed through printable().
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace switchboard::protocol {

// Output cap of printable(): a wire text field (max_text bytes) with room for a few escapes.
constexpr std::size_t max_printable = 2048;

// `text` with everything that a terminal or a log reader would act on made visible:
//  - C0 controls and DEL as \xNN (TAB, LF and CR as \t, \n, \r), so also every ESC sequence;
//  - C1 controls (U+0080-U+009F), the bidirectional formatting characters (U+061C, U+200E,
//    U+200F, U+202A-U+202E, U+2066-U+2069) and the line and paragraph separators (U+2028,
//    U+2029) as \uNNNN;
//  - each byte that is not part of well-formed UTF-8 (stray continuation bytes, overlong forms,
//    surrogates, code points above U+10FFFF, cut-off sequences) as \xNN.
// Everything else, printable ASCII and UTF-8 alike, stays as it is; a backslash is not escaped,
// so the result is for people, not a reversible encoding, and printable(printable(t)) ==
// printable(t). The result has at most max_bytes bytes: when the rendering is longer, it is cut
// between two characters or escapes and ends in "...".
std::string printable(std::string_view text, std::size_t max_bytes = max_printable);

}  // namespace switchboard::protocol
