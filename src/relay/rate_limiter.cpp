#include "relay/rate_limiter.hpp"

#include <algorithm>

namespace switchboard::relay {

namespace {
constexpr std::size_t prune_above = 4096;
// Past this many keys that are all still failing, state is dropped: memory stays bounded and the
// worst case is a fresh burst for attackers holding more than this many addresses.
constexpr std::size_t hard_cap = 65536;
}  // namespace

double rate_limiter::refill(bucket& b, clock::time_point now) const {
  const double elapsed = std::chrono::duration<double>(now - b.updated).count();
  b.tokens = std::min(burst_, b.tokens + elapsed / refill_s_);
  b.updated = now;
  return b.tokens;
}

bool rate_limiter::allowed(const std::string& key, clock::time_point now) {
  auto it = buckets_.find(key);
  return it == buckets_.end() || refill(it->second, now) >= 1.0;
}

bool rate_limiter::try_take(const std::string& key, clock::time_point now) {
  if (buckets_.size() >= prune_above) prune(now);
  if (buckets_.size() >= hard_cap) buckets_.clear();
  auto [it, inserted] = buckets_.try_emplace(key, bucket{burst_, now});
  if (refill(it->second, now) < 1.0) return false;
  it->second.tokens -= 1.0;
  return true;
}

void rate_limiter::give_back(const std::string& key, clock::time_point now) {
  auto it = buckets_.find(key);
  if (it == buckets_.end()) return;  // dropped at the hard cap: nothing is owed
  refill(it->second, now);
  it->second.tokens = std::min(burst_, it->second.tokens + 1.0);
}

void rate_limiter::prune(clock::time_point now) {
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    it = refill(it->second, now) >= burst_ ? buckets_.erase(it) : std::next(it);
  }
}

}  // namespace switchboard::relay
