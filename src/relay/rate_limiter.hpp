// Token buckets of failed logins, keyed by source address or user ID (docs/protocol.md §6).
//
// Only failures spend tokens; a key with a full bucket is indistinguishable from an unknown key,
// so such entries are pruned and memory stays bounded by the number of recently failing keys.
#pragma once

#include <chrono>
#include <string>
#include <unordered_map>

namespace switchboard::relay {

class rate_limiter {
 public:
  using clock = std::chrono::steady_clock;

  rate_limiter(double burst, double refill_seconds) : burst_(burst), refill_s_(refill_seconds) {}

  // True if the key has at least one token left (a login may be tried).
  bool allowed(const std::string& key, clock::time_point now = clock::now());
  // Spends one token for a failed login.
  void record_failure(const std::string& key, clock::time_point now = clock::now());
  std::size_t tracked() const { return buckets_.size(); }

 private:
  struct bucket {
    double tokens;
    clock::time_point updated;
  };
  double refill(bucket& b, clock::time_point now) const;
  void prune(clock::time_point now);

  double burst_;
  double refill_s_;
  std::unordered_map<std::string, bucket> buckets_;
};

}  // namespace switchboard::relay
