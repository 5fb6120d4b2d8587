// user_store over one SQLite3 connection (see user_store.hpp for the contract).
//
// Concurrency: the store owns a single sqlite3* connection; every use of it (including
// sqlite3_errmsg) happens under mutex_. Argon2 work (hashing, verifying) always runs outside the
// lock so that concurrent logins proceed in parallel. Other processes (the command line while a
// relay runs) share the file through WAL mode and a 5 s busy timeout; multi-statement writes use
// BEGIN IMMEDIATE so that they wait for the write lock instead of failing on upgrade.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "protocol/names.hpp"
#include "store/password.hpp"
#include "store/user_store.hpp"

namespace switchboard::store {

namespace {

namespace fs = std::filesystem;

constexpr int schema_version = 1;
constexpr int busy_timeout_ms = 5000;

// Creates the current schema; run inside a write transaction on a version-0 database.
constexpr const char* schema_sql = R"sql(
CREATE TABLE IF NOT EXISTS users (
  id TEXT PRIMARY KEY,
  pw_hash TEXT NOT NULL,
  max_lines INTEGER NOT NULL DEFAULT 2048,
  created_unix INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS allow (
  user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
  caller TEXT,
  PRIMARY KEY (user_id, caller)
);
PRAGMA user_version = 1;
)sql";

// One row per (user, caller); a user without an allow list gives one row with a NULL caller.
constexpr const char* select_users_sql =
    "SELECT u.id, u.max_lines, u.created_unix, u.pw_hash, a.caller FROM users u "
    "LEFT JOIN allow a ON a.user_id = u.id ";

[[noreturn]] void throw_sqlite(sqlite3* db, const fs::path& file, std::string_view what) {
  const char* msg = db ? sqlite3_errmsg(db) : "out of memory";
  throw store_error(store_error::kind::io,
                    std::string(what) + ": " + msg + " (database " + file.string() + ")");
}

void check_id(std::string_view id, std::string_view role) {
  if (!protocol::valid_user_id(id)) {
    throw std::invalid_argument("invalid " + std::string(role) + " ID '" + std::string(id) +
                                "': expected 1..64 bytes of A-Z a-z 0-9 . _ @ -, not starting "
                                "with '.' or '-'");
  }
}

std::int64_t now_unix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Makes `file` with mode 0600, and its directory with mode 0700 if that is missing: the file
// holds password hashes. What exists keeps its mode (the operator's choice).
void create_private_file(const fs::path& file) {
  const fs::path dir = file.parent_path();
  std::error_code ec;
  if (!dir.empty() && !fs::exists(dir)) {
    if (dir.has_parent_path()) fs::create_directories(dir.parent_path(), ec);
    if (!ec && ::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      ec = std::error_code(errno, std::system_category());
    }
    if (ec) {
      throw store_error(store_error::kind::io, "cannot create directory " + dir.string() +
                                                   " for the user database: " + ec.message());
    }
  }
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::close(fd);  // an empty file is an empty SQLite database
  } else if (errno != EEXIST) {
    ec = std::error_code(errno, std::system_category());
    throw store_error(store_error::kind::io,
                      "cannot create user database " + file.string() + ": " + ec.message());
  }
}

struct connection_closer {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using connection = std::unique_ptr<sqlite3, connection_closer>;

// Runs constant SQL (no values: those always go through statement::bind).
void exec(sqlite3* db, const fs::path& file, const char* sql) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    throw_sqlite(db, file, std::string("cannot run '") + sql + "'");
  }
}

// A prepared statement; owns its sqlite3_stmt. The connection must outlive it and its caller must
// hold the store's mutex for its whole life.
class statement {
 public:
  statement(sqlite3* db, const fs::path& file, std::string_view sql) : db_(db), file_(file) {
    if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr) !=
        SQLITE_OK) {
      throw_sqlite(db, file, "cannot prepare '" + std::string(sql) + "'");
    }
  }
  ~statement() { sqlite3_finalize(stmt_); }
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;

  // Parameters are 1-based, as in SQLite.
  void bind(int index, std::string_view text) {
    // A null data() would bind SQL NULL; an empty view must bind ''.
    const char* data = text.empty() ? "" : text.data();
    if (sqlite3_bind_text(stmt_, index, data, static_cast<int>(text.size()), SQLITE_TRANSIENT) !=
        SQLITE_OK) {
      throw_sqlite(db_, file_, "cannot bind parameter");
    }
  }
  void bind(int index, std::int64_t value) {
    if (sqlite3_bind_int64(stmt_, index, value) != SQLITE_OK) {
      throw_sqlite(db_, file_, "cannot bind parameter");
    }
  }

  // The raw sqlite3_step() result, for callers that handle particular errors themselves.
  int step_code() { return sqlite3_step(stmt_); }
  // True while rows come; false when done. Any error throws store_error(io).
  bool step() {
    const int rc = step_code();
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw_sqlite(db_, file_, std::string("'") + sqlite3_sql(stmt_) + "' failed");
  }
  // Makes the statement ready to be bound and run again.
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  // Steps a statement that returns no rows.
  void run() {
    while (step()) {
    }
  }

  bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::int64_t int_at(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string text_at(int col) const {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return text ? std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
                : std::string();
  }

 private:
  sqlite3* db_;
  const fs::path& file_;
  sqlite3_stmt* stmt_ = nullptr;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back unless commit() ran. Caller holds the store's mutex.
class write_transaction {
 public:
  write_transaction(sqlite3* db, const fs::path& file) : db_(db), file_(file) {
    exec(db_, file_, "BEGIN IMMEDIATE");
  }
  ~write_transaction() {
    if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  write_transaction(const write_transaction&) = delete;
  write_transaction& operator=(const write_transaction&) = delete;

  void commit() {
    exec(db_, file_, "COMMIT");
    done_ = true;
  }

 private:
  sqlite3* db_;
  const fs::path& file_;
  bool done_ = false;
};

// A user row with its password hash, as read by select_users_sql.
struct stored_user {
  user_record record;
  std::string pw_hash;
};

// FNV-1a over the stored hash: not a secret (the hash is not one either), only a change marker.
std::uint64_t digest_of(std::string_view pw_hash) {
  std::uint64_t h = 14695981039346656037ull;
  for (const char c : pw_hash) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

// Reads all rows of a select_users_sql query (ordered by u.id), grouping callers per user.
std::vector<stored_user> read_users(statement& st, const fs::path& file) {
  std::vector<stored_user> users;
  while (st.step()) {
    std::string id = st.text_at(0);
    if (users.empty() || users.back().record.id != id) {
      const std::int64_t max_lines = st.int_at(1);
      if (max_lines < 1 || max_lines > std::numeric_limits<std::uint16_t>::max()) {
        throw store_error(store_error::kind::io, "user '" + id + "' has invalid max_lines " +
                                                     std::to_string(max_lines) + " (database " +
                                                     file.string() + ")");
      }
      stored_user u;
      u.record.id = std::move(id);
      u.record.settings.max_lines = static_cast<std::uint16_t>(max_lines);
      u.record.created_unix = st.int_at(2);
      u.pw_hash = st.text_at(3);
      u.record.credential = digest_of(u.pw_hash);
      users.push_back(std::move(u));
    }
    if (!st.is_null(4)) users.back().record.settings.allow.push_back(st.text_at(4));
  }
  return users;
}

class sqlite_store final : public user_store {
 public:
  sqlite_store(fs::path file, hash_cost cost, open_mode mode)
      : file_(std::move(file)), cost_(cost), dummy_hash_(hash_password("dummy password", cost)) {
    db_ = open_connection(mode);
    migrate();
  }

  void add_user(std::string_view id, std::string_view password) override {
    check_id(id, "user");
    const std::string hash = hash_password(password, cost_);  // slow: outside the lock
    std::lock_guard lock(mutex_);
    ++generation_;  // even if the write fails: a needless reload at worst
    statement st(
        db_.get(), file_,
        "INSERT INTO users (id, pw_hash, created_unix, max_lines) VALUES (?1, ?2, ?3, ?4)");
    st.bind(1, id);
    st.bind(2, hash);
    st.bind(3, now_unix());
    st.bind(4, static_cast<std::int64_t>(default_max_lines));
    const int rc = st.step_code();
    if (rc == SQLITE_DONE) return;
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
      throw store_error(store_error::kind::already_exists,
                        "user '" + std::string(id) + "' already exists");
    }
    throw_sqlite(db_.get(), file_, "cannot add user '" + std::string(id) + "'");
  }

  bool remove_user(std::string_view id) override {
    check_id(id, "user");
    std::lock_guard lock(mutex_);
    ++generation_;  // even if the write fails: a needless reload at worst
    statement st(db_.get(), file_, "DELETE FROM users WHERE id = ?1");  // allow rows cascade
    st.bind(1, id);
    st.run();
    return sqlite3_changes(db_.get()) > 0;
  }

  void set_password(std::string_view id, std::string_view password) override {
    check_id(id, "user");
    const std::string hash = hash_password(password, cost_);  // slow: outside the lock
    std::lock_guard lock(mutex_);
    ++generation_;  // even if the write fails: a needless reload at worst
    statement st(db_.get(), file_, "UPDATE users SET pw_hash = ?1 WHERE id = ?2");
    st.bind(1, hash);
    st.bind(2, id);
    st.run();
    if (sqlite3_changes(db_.get()) == 0) throw not_found(id);
  }

  void set_allow_list(std::string_view id, const std::vector<std::string>& allow) override {
    check_id(id, "user");
    for (const auto& caller : allow) check_id(caller, "allowed caller");
    std::lock_guard lock(mutex_);
    ++generation_;  // even if the write fails: a needless reload at worst
    write_transaction tx(db_.get(), file_);
    if (!exists(id)) throw not_found(id);
    statement del(db_.get(), file_, "DELETE FROM allow WHERE user_id = ?1");
    del.bind(1, id);
    del.run();
    // Duplicates in the list collapse into one row.
    statement ins(db_.get(), file_,
                  "INSERT OR IGNORE INTO allow (user_id, caller) VALUES (?1, ?2)");
    for (const auto& caller : allow) {
      ins.bind(1, id);
      ins.bind(2, caller);
      ins.run();
      ins.reset();
    }
    tx.commit();
  }

  void set_max_lines(std::string_view id, std::uint16_t max_lines) override {
    check_id(id, "user");
    if (max_lines < 1) throw std::invalid_argument("max_lines must be at least 1");
    std::lock_guard lock(mutex_);
    ++generation_;  // even if the write fails: a needless reload at worst
    statement st(db_.get(), file_, "UPDATE users SET max_lines = ?1 WHERE id = ?2");
    st.bind(1, static_cast<std::int64_t>(max_lines));
    st.bind(2, id);
    st.run();
    if (sqlite3_changes(db_.get()) == 0) throw not_found(id);
  }

  std::uint64_t generation() override {
    std::lock_guard lock(mutex_);
    // PRAGMA data_version changes when another connection (another process: the command line)
    // committed; this object's own writes bump generation_ themselves.
    statement st(db_.get(), file_, "PRAGMA data_version");
    const std::int64_t version = st.step() ? st.int_at(0) : 0;
    if (version != data_version_) {
      data_version_ = version;
      ++generation_;
    }
    return generation_;
  }

  std::optional<user_record> find_user(std::string_view id) override {
    check_id(id, "user");
    auto user = fetch(id);
    if (!user) return std::nullopt;
    return std::move(user->record);
  }

  std::vector<user_record> list_users() override {
    std::vector<stored_user> users;
    {
      std::lock_guard lock(mutex_);
      statement st(db_.get(), file_, std::string(select_users_sql) + "ORDER BY u.id, a.caller");
      users = read_users(st, file_);
    }
    std::vector<user_record> records;
    records.reserve(users.size());
    for (auto& u : users) records.push_back(std::move(u.record));
    return records;
  }

  std::optional<user_record> authenticate(std::string_view id, std::string_view password) override {
    check_id(id, "user");
    auto user = fetch(id);  // takes and releases the lock; Argon2 below runs unlocked
    if (!user) {
      // Same work as for a real user, so that timing does not reveal whether the ID exists.
      (void)verify_password(dummy_hash_, password);
      return std::nullopt;
    }
    if (!verify_password(user->pw_hash, password)) return std::nullopt;
    return std::move(user->record);
  }

 private:
  // SQLite never creates the file (no SQLITE_OPEN_CREATE): create_private_file() does, or
  // nobody.
  connection open_connection(open_mode mode) {
    if (mode == open_mode::create) {
      create_private_file(file_);
    } else if (!fs::exists(file_)) {
      throw store_error(store_error::kind::not_found, "no user database " + file_.string());
    }
    sqlite3* raw = nullptr;
    const int rc =
        sqlite3_open_v2(file_.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
    connection db(raw);  // sqlite3_open_v2 may return a handle even on failure
    if (rc != SQLITE_OK) throw_sqlite(db.get(), file_, "cannot open user database");
    sqlite3_extended_result_codes(db.get(), 1);
    sqlite3_busy_timeout(db.get(), busy_timeout_ms);
    if (enable_wal(db.get()) != "wal") {
      throw store_error(store_error::kind::io,
                        "cannot switch to WAL journal mode (database " + file_.string() + ")");
    }
    exec(db.get(), file_, "PRAGMA foreign_keys = ON");
    exec(db.get(), file_, "PRAGMA synchronous = NORMAL");
    return db;
  }

  // Returns the journal mode now in effect ("wal" unless the file system cannot do WAL).
  std::string enable_wal(sqlite3* db) {
    statement st(db, file_, "PRAGMA journal_mode = WAL");
    return st.step() ? st.text_at(0) : std::string();
  }

  // Brings the schema to schema_version; another process may be doing the same concurrently,
  // hence the version is read inside the write transaction.
  void migrate() {
    write_transaction tx(db_.get(), file_);
    const std::int64_t version = user_version();
    if (version > schema_version) {
      throw store_error(store_error::kind::io,
                        "database schema version " + std::to_string(version) +
                            " is newer than this program's " + std::to_string(schema_version) +
                            " (database " + file_.string() + ")");
    }
    if (version == 0) exec(db_.get(), file_, schema_sql);
    tx.commit();
  }

  // Caller holds mutex_ (or is the constructor).
  std::int64_t user_version() {
    statement st(db_.get(), file_, "PRAGMA user_version");
    return st.step() ? st.int_at(0) : 0;
  }

  // Caller holds mutex_.
  bool exists(std::string_view id) {
    statement st(db_.get(), file_, "SELECT 1 FROM users WHERE id = ?1");
    st.bind(1, id);
    return st.step();
  }

  // One statement, hence one consistent snapshot of the user and its allow list.
  std::optional<stored_user> fetch(std::string_view id) {
    std::lock_guard lock(mutex_);
    statement st(db_.get(), file_,
                 std::string(select_users_sql) + "WHERE u.id = ?1 ORDER BY a.caller");
    st.bind(1, id);
    auto users = read_users(st, file_);
    if (users.empty()) return std::nullopt;
    return std::move(users.front());
  }

  static store_error not_found(std::string_view id) {
    return store_error(store_error::kind::not_found, "no user '" + std::string(id) + "'");
  }

  const fs::path file_;
  const hash_cost cost_;
  // Hash of a fixed password at cost_, verified for unknown users; immutable after construction.
  const std::string dummy_hash_;
  std::mutex mutex_;
  connection db_;  // guarded by mutex_ after construction
  // generation(): bumped by this object's writes and when data_version_ moves; both under mutex_.
  std::uint64_t generation_ = 0;
  std::int64_t data_version_ = 0;
};

}  // namespace

std::unique_ptr<user_store> open_sqlite_store(const std::filesystem::path& db_file, hash_cost cost,
                                              open_mode mode) {
  return std::make_unique<sqlite_store>(db_file, cost, mode);
}

}  // namespace switchboard::store
