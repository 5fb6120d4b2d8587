// The relay's forwarding threads: one io_context and thread each, where paired sessions forward
// their DATA frames while the control thread keeps every line's state (docs/architecture.md
// "Threads").
//
// Ownership: the pool owns its threads and io_contexts. The destructor stops and joins them;
// whatever was still queued there (offloads of a relay torn down without a graceful stop) is
// destroyed with the io_contexts.
#pragma once

#include <cstddef>
#include <list>
#include <thread>
#include <vector>

#include "net/asio.hpp"

namespace switchboard::relay {

class forward_threads {
 public:
  // `count` 0 makes an empty pool: every session forwards on the control thread.
  explicit forward_threads(unsigned count);
  ~forward_threads();
  forward_threads(const forward_threads&) = delete;
  forward_threads& operator=(const forward_threads&) = delete;

  std::size_t size() const { return contexts_.size(); }
  // The next thread's executor, round robin. Only on the control thread; the pool is not empty.
  asio::any_io_executor next();

 private:
  struct context {
    asio::io_context io{1};  // one thread runs it
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  };
  std::list<context> contexts_;  // a list: contexts are neither copyable nor movable
  std::vector<std::thread> threads_;
  std::size_t next_ = 0;
};

}  // namespace switchboard::relay
