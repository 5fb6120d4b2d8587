// Validation of the names that cross the wire (docs/protocol.md section 2). Pure.
#pragma once

#include <string_view>

namespace switchboard::protocol {

constexpr std::size_t max_user_id = 64;
constexpr std::size_t max_service_name = 32;
constexpr std::size_t max_text = 1024;
constexpr std::size_t max_password = 1024;

// 1..64 bytes of A-Z a-z 0-9 . _ @ -, not starting with '.' or '-'.
bool valid_user_id(std::string_view id);
// 1..32 bytes of a-z 0-9 . _ -.
bool valid_service_name(std::string_view name);

}  // namespace switchboard::protocol
