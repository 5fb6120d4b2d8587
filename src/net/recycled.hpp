// A per-thread free list for objects that are costly to make and are needed once per session:
// the data path's pipes and copy buffers. Making them anew for every session costs system calls
// (pipe2, F_SETPIPE_SZ, close) or page faults (a buffer that glibc serves with mmap, or that a
// heap trim returned), which showed in the session-rate profiles.
//
// A Pool names the kind: `using type = T;`, `static T make();`, `static bool reusable(const T&)`
// (an object in an unknown state is destroyed, never handed on) and `max_free`, the number of
// free objects one thread keeps. Memory stays bounded: in use, what the live sessions hold; free,
// at most max_free per Pool and thread. An object may be returned on another thread than the one
// that took it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace switchboard::net {

template <typename Pool>
class recycled {
 public:
  using type = typename Pool::type;

  recycled() : item_(take()) {}
  recycled(const recycled&) = delete;
  recycled& operator=(const recycled&) = delete;
  ~recycled() { give_back(std::move(*item_)); }

  type& operator*() { return *item_; }
  const type& operator*() const { return *item_; }
  type* operator->() { return &*item_; }

  // The same free list for an owner that keeps the object in a member of its own (a movable
  // class cannot hold a recycled): take() an object, give_back() it when done.
  static type take() {
    auto& list = free_list();
    if (list.empty()) return Pool::make();
    type item = std::move(list.back());
    list.pop_back();
    return item;
  }
  static void give_back(type item) {
    auto& list = free_list();
    if (list.size() < Pool::max_free && Pool::reusable(item)) list.push_back(std::move(item));
  }

 private:
  static std::vector<type>& free_list() {
    thread_local std::vector<type> list;
    return list;
  }

  std::optional<type> item_;  // engaged until destruction
};

// Uninitialised byte buffers of `Size` bytes.
template <std::size_t Size, std::size_t MaxFree = 16>
struct buffer_pool {
  using type = std::unique_ptr<std::uint8_t[]>;
  static constexpr std::size_t size = Size;
  static constexpr std::size_t max_free = MaxFree;
  static type make() { return std::make_unique_for_overwrite<std::uint8_t[]>(Size); }
  static bool reusable(const type&) { return true; }
};

}  // namespace switchboard::net
