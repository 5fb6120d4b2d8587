#include "relay/forward_threads.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <string>

namespace switchboard::relay {

forward_threads::forward_threads(unsigned count) {
  for (unsigned i = 0; i < count; ++i) {
    auto& c = contexts_.emplace_back();
    threads_.emplace_back([&io = c.io, i] {
      const std::string name = "sb-forward-" + std::to_string(i);
      pthread_setname_np(pthread_self(), name.c_str());
      // Exceptions inside coroutines end their coroutine (detached); one escaping here is a bug
      // in a completion handler: report it and keep the thread serving.
      for (;;) {
        try {
          io.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("forwarding thread {}: {}", i, e.what());
        }
      }
    });
  }
}

forward_threads::~forward_threads() {
  for (auto& c : contexts_) {
    c.work.reset();
    c.io.stop();
  }
  for (auto& t : threads_) t.join();
}

asio::any_io_executor forward_threads::next() {
  auto it = contexts_.begin();
  std::advance(it, static_cast<long>(next_));
  next_ = (next_ + 1) % contexts_.size();
  return it->io.get_executor();
}

}  // namespace switchboard::relay
