// Token buckets of failed logins, keyed by source address or user ID (docs/protocol.md §6).
//
// A password check takes a token when it starts (try_take) and gives it back when the password
// was right (give_back): concurrent attempts cannot run more checks than the bucket holds. A key
// with a full bucket is indistinguishable from an unknown key, so such entries are pruned and
// memory stays bounded by the number of keys recently failing or with a check in progress.
#pragma once

#include <chrono>
#include <string>
#include <unordered_map>

namespace switchboard::relay {

class rate_limiter {
 public:
  using clock = std::chrono::steady_clock;

  rate_limiter(double burst, double refill_seconds) : burst_(burst), refill_s_(refill_seconds) {}

  // Takes one token if the key has one left (a check may run): true. False: none left, and
  // nothing was taken.
  bool try_take(const std::string& key, clock::time_point now = clock::now());
  // Returns a token taken by try_take (the check succeeded, or never ran).
  void give_back(const std::string& key, clock::time_point now = clock::now());
  // True if the key has at least one token left; takes nothing.
  bool allowed(const std::string& key, clock::time_point now = clock::now());
  // New figures for every key: buckets above the new burst are cut to it when next refilled.
  void set_rates(double burst, double refill_seconds) {
    burst_ = burst;
    refill_s_ = refill_seconds;
  }
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
