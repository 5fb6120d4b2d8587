// net::recycled (net/recycled.hpp): objects come back to their thread's free list, at most
// max_free are kept, and one that is not reusable is destroyed instead.
#include "net/recycled.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace switchboard::net {
namespace {

// Counts live objects; an object is reusable unless marked spoiled.
struct counted {
  static inline int live = 0;
  static inline int made = 0;
  counted() { ++live, ++made; }
  counted(counted&& o) noexcept : spoiled(o.spoiled), moved_from(false) {
    o.moved_from = true;
    ++live;
  }
  counted& operator=(counted&&) = delete;
  ~counted() { --live; }
  bool spoiled = false;
  bool moved_from = false;
};
struct counted_pool {
  using type = counted;
  static constexpr std::size_t max_free = 2;
  static counted make() { return counted(); }
  static bool reusable(const counted& c) { return !c.spoiled; }
};

// Objects alive: in use plus kept in this thread's free list.
int holding() {
  return counted::live;
}

TEST(Recycled, ReturnedObjectsAreReusedAndAtMostMaxFreeAreKept) {
  const int made_before = counted::made;
  {
    recycled<counted_pool> a;
    recycled<counted_pool> b;
    recycled<counted_pool> c;
    EXPECT_EQ(counted::made - made_before, 3);
  }
  // Three came back; the list keeps two.
  EXPECT_EQ(holding(), 2);
  {
    recycled<counted_pool> a;
    recycled<counted_pool> b;
    EXPECT_EQ(counted::made - made_before, 3);  // both from the list
    recycled<counted_pool> c;
    EXPECT_EQ(counted::made - made_before, 4);  // the list was empty
  }
  EXPECT_EQ(holding(), 2);
}

TEST(Recycled, AnObjectThatIsNotReusableIsDestroyed) {
  { recycled<counted_pool> fill_a, fill_b; }  // whatever the list held: two now
  {
    recycled<counted_pool> a;
    recycled<counted_pool> b;
    a->spoiled = true;
    b->spoiled = true;
  }
  EXPECT_EQ(holding(), 0);  // both were spoiled: none kept
}

TEST(Recycled, EachThreadHasItsOwnList) {
  { recycled<counted_pool> a; }
  const int made_before = counted::made;
  std::thread other([] { recycled<counted_pool> a; });
  other.join();
  EXPECT_EQ(counted::made - made_before, 1);  // the other thread's list was empty
}

TEST(Recycled, BufferPoolHandsOutBuffersOfItsSize) {
  using pool = buffer_pool<100, 1>;
  std::uint8_t* first = nullptr;
  {
    recycled<pool> b;
    first = b->get();
    first[99] = 7;  // the whole size is usable (ASan checks)
  }
  recycled<pool> again;
  EXPECT_EQ(again->get(), first);
}

}  // namespace
}  // namespace switchboard::net
