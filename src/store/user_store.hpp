// User store: the relay's durable "connection information holding unit".
//
// Contract (every implementation):
//  - All methods are thread-safe; the relay calls authenticate() from a worker pool and the
//    management methods from the command line, possibly while a relay runs on the same database.
//  - User IDs are checked with protocol::valid_user_id(); a bad ID throws std::invalid_argument.
//  - authenticate() takes the same time whether or not the user exists (it verifies a dummy hash
//    for unknown users) and is slow on purpose (Argon2id): never call it on an I/O thread.
//  - Live state (lines, sessions, counters) never lives here; only users and their settings.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::store {

// max_lines of a new user: what a browser or a parallel download through a forward needs, with
// room to spare (docs/protocol.md §9 gives its memory cost). Lines are opened as needed.
constexpr std::uint16_t default_max_lines = 2048;

// Per-user settings, stored with the user.
struct user_settings {
  // Who may call this user. Empty: any logged-in user may.
  std::vector<std::string> allow;
  // Most lines this user's instances may hold at once, together.
  std::uint16_t max_lines = default_max_lines;
};

struct user_record {
  std::string id;
  user_settings settings;
  std::int64_t created_unix = 0;
  // Changes whenever the password does (a digest of the stored hash, whose salt is new each
  // time; stable across processes). A relay logs out devices that logged in with an older one.
  std::uint64_t credential = 0;
};

// Thrown for a store failure a caller can act on (duplicate user, missing user, I/O).
class store_error : public std::runtime_error {
 public:
  enum class kind { already_exists, not_found, io };
  store_error(kind k, const std::string& what) : std::runtime_error(what), kind_(k) {}
  kind which() const { return kind_; }

 private:
  kind kind_;
};

class user_store {
 public:
  virtual ~user_store() = default;

  // Throws store_error(already_exists). Password: 1..1024 bytes, else std::invalid_argument.
  virtual void add_user(std::string_view id, std::string_view password) = 0;
  // Returns false if there was no such user.
  virtual bool remove_user(std::string_view id) = 0;
  // Throws store_error(not_found).
  virtual void set_password(std::string_view id, std::string_view password) = 0;
  // Throws store_error(not_found). Each entry must be a valid user ID (std::invalid_argument).
  virtual void set_allow_list(std::string_view id, const std::vector<std::string>& allow) = 0;
  // Throws store_error(not_found); max_lines must be >= 1 (std::invalid_argument).
  virtual void set_max_lines(std::string_view id, std::uint16_t max_lines) = 0;

  virtual std::optional<user_record> find_user(std::string_view id) = 0;
  // Sorted by ID.
  virtual std::vector<user_record> list_users() = 0;

  // A number that changes whenever users or their settings may have changed, by this object or
  // by any other writer of the same store (another process). Cheap: a running relay polls it
  // and reloads the settings of logged-in users only when it moved.
  virtual std::uint64_t generation() = 0;

  // The user record if the password is right, else nullopt. Constant time in the user's existence.
  virtual std::optional<user_record> authenticate(std::string_view id,
                                                  std::string_view password) = 0;
};

// Argon2id cost. `interactive` is libsodium's OPSLIMIT/MEMLIMIT_INTERACTIVE (the default);
// `moderate` is stronger; `minimum` is libsodium's minimum and only meant for tests and benchmarks.
enum class hash_cost { minimum, interactive, moderate };

// What open_sqlite_store does when the database file does not exist.
enum class open_mode {
  // Create it with mode 0600, and its directory with mode 0700 if that is missing too (the
  // parents of the directory with the default mode). Modes of what exists are left as they are.
  create,
  // Create nothing: throw store_error(not_found) naming the file.
  existing,
};

// Opens a SQLite database in WAL mode. Its -wal and -shm files get the database file's mode
// (SQLite's rule). Throws store_error(io) if the file cannot be opened or migrated.
std::unique_ptr<user_store> open_sqlite_store(const std::filesystem::path& db_file,
                                              hash_cost cost = hash_cost::interactive,
                                              open_mode mode = open_mode::create);

}  // namespace switchboard::store
