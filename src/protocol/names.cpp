#include "protocol/names.hpp"

#include <algorithm>

namespace switchboard::protocol {

namespace {
bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
}  // namespace

bool valid_user_id(std::string_view id) {
  if (id.empty() || id.size() > max_user_id) return false;
  if (id.front() == '.' || id.front() == '-') return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return is_alnum(c) || c == '.' || c == '_' || c == '@' || c == '-';
  });
}

bool valid_service_name(std::string_view name) {
  if (name.empty() || name.size() > max_service_name) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

}  // namespace switchboard::protocol
