// hub: bringing logged-in devices up to date with the user store (see hub.hpp). The store is
// read on the auth pool only: SQLite may wait for another process's write lock (busy timeout),
// which must never stall the control thread.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "net/offload.hpp"
#include "relay/hub.hpp"

namespace switchboard::relay {

namespace p = protocol;

void hub::reconfigure(relay_config next) {
  cfg_ = std::move(next);
  admission_.config_changed();
}

void hub::start_settings_watch() {
  settings_watch_on_ = true;
  arm_settings_timer();
}

void hub::stop_settings_watch() {
  settings_watch_on_ = false;
  settings_timer_.cancel();
}

void hub::arm_settings_timer() {
  settings_timer_.expires_after(cfg_.settings_poll);
  settings_timer_.async_wait([this, alive = std::weak_ptr<int>(alive_)](const error_code& ec) {
    if (ec || alive.expired() || !settings_watch_on_) return;
    if (devices_.empty()) {  // nobody to update; a login reads the store itself
      arm_settings_timer();
      return;
    }
    asio::co_spawn(ex_, reload_settings(), [this, alive](const std::exception_ptr& error) {
      if (alive.expired()) return;
      if (error) {
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          spdlog::warn("user store: cannot check for changed settings: {}", e.what());
        }
      }
      if (settings_watch_on_) arm_settings_timer();
    });
  });
}

awaitable<void> hub::reload_settings() {
  // The hub may be gone when an offloaded read completes (its pool is joined, but the completion
  // is queued on the control thread): check before touching it again.
  const std::weak_ptr<int> alive = alive_;
  store::user_store& users = users_;
  auto read_generation = [&users] { return users.generation(); };
  const std::uint64_t g = co_await net::offload(auth_pool_, std::move(read_generation));
  if (alive.expired()) co_return;
  if (g == settings_generation_ && !settings_stale_) co_return;
  // Cleared before the read: a login that brings older settings meanwhile marks it again.
  settings_generation_ = g;
  settings_stale_ = false;
  std::vector<std::string> ids;
  ids.reserve(devices_.size());
  for (const auto& [user, instances] : devices_) ids.push_back(user);
  auto read_users = [&users, ids] {
    std::vector<std::optional<store::user_record>> out;
    out.reserve(ids.size());
    for (const auto& id : ids) out.push_back(users.find_user(id));
    return out;
  };
  auto records = co_await net::offload(auth_pool_, std::move(read_users));
  if (alive.expired()) co_return;
  apply_settings(ids, std::move(records));
}

// Evicts every device of `user` for which `which` holds. evict_device() changes the user's list
// (and erases it with its last device), so the list is looked up afresh each time.
template <typename Pred>
void hub::evict_all(const std::string& user, Pred which, const std::string& why) {
  for (;;) {
    auto it = devices_.find(user);
    if (it == devices_.end()) return;
    auto& list = it->second;
    auto victim =
        std::find_if(list.begin(), list.end(), [&which](const auto& d) { return which(*d); });
    if (victim == list.end()) return;
    evict_device(victim->get(), p::error_code::bad_credentials, why);
  }
}

void hub::apply_settings(const std::vector<std::string>& users,
                         std::vector<std::optional<store::user_record>> records) {
  ++settings_reloads_;
  for (std::size_t i = 0; i < users.size(); ++i) {
    auto it = devices_.find(users[i]);
    if (it == devices_.end()) continue;  // logged out meanwhile
    if (!records[i]) {
      spdlog::info("{}: user removed from the store: logging out its {} device(s)", users[i],
                   it->second.size());
      evict_all(
          users[i], [](const device&) { return true; }, "user removed from the relay");
      continue;
    }
    const store::user_record& rec = *records[i];
    const auto stale = [&rec](const device& d) { return d.credential != rec.credential; };
    if (std::any_of(it->second.begin(), it->second.end(),
                    [&stale](const auto& d) { return stale(*d); })) {
      spdlog::info("{}: password changed: logging out the devices that used the old one", users[i]);
      evict_all(users[i], stale, "password changed");
    }
    if (auto left = devices_.find(users[i]); left != devices_.end()) {
      for (auto& d : left->second) d->settings = rec.settings;
    }
  }
}

}  // namespace switchboard::relay
