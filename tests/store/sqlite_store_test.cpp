// SQLite user store (store/user_store.hpp: open_sqlite_store).
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "store/user_store.hpp"

namespace {

namespace fs = std::filesystem;
using namespace switchboard::store;
using strings = std::vector<std::string>;

// The kind of store_error that f() throws; nullopt if it throws none.
template <class F>
std::optional<store_error::kind> error_kind(F&& f) {
  try {
    f();
  } catch (const store_error& e) {
    return e.which();
  }
  return std::nullopt;
}

// Runs one single-value query on a separate connection to the file, as text.
std::string query_text(const fs::path& file, const char* sql) {
  sqlite3* db = nullptr;
  std::string result;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      result = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return result;
}

// Permission bits of `p`; 0 if it does not exist.
unsigned mode_of(const fs::path& p) {
  std::error_code ec;
  const auto st = fs::status(p, ec);
  return ec ? 0u : static_cast<unsigned>(st.permissions() & fs::perms::mask);
}

// Sets the process's umask for one scope.
class umask_guard {
 public:
  explicit umask_guard(mode_t mask) : old_(::umask(mask)) {}
  umask_guard(const umask_guard&) = delete;
  umask_guard& operator=(const umask_guard&) = delete;
  ~umask_guard() { ::umask(old_); }

 private:
  mode_t old_;
};

// Each test gets its own directory under the system temp dir, removed afterwards.
class SqliteStore : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    std::uniform_int_distribution<std::uint64_t> dist;
    dir_ = fs::temp_directory_path() / ("sb-store-test-" + std::to_string(dist(rd)));
    db_file_ = dir_ / "nested" / "users.db";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::unique_ptr<user_store> open() { return open_sqlite_store(db_file_, hash_cost::minimum); }

  fs::path dir_;
  fs::path db_file_;
};

TEST_F(SqliteStore, CreatesParentDirectoryAndFile) {
  auto store = open();
  EXPECT_TRUE(fs::is_regular_file(db_file_));
  EXPECT_TRUE(store->list_users().empty());
}

TEST_F(SqliteStore, NewFilesAndDirectoryAreOwnerOnly) {
  const umask_guard mask(022);
  auto store = open();
  store->add_user("alice", "pw");   // the -wal and -shm files exist while the store is open
  EXPECT_EQ(mode_of(dir_), 0755u);  // parents as mkdir -p makes them
  EXPECT_EQ(mode_of(db_file_.parent_path()), 0700u);
  EXPECT_EQ(mode_of(db_file_), 0600u);
  EXPECT_EQ(mode_of(db_file_.string() + "-wal"), 0600u);
  EXPECT_EQ(mode_of(db_file_.string() + "-shm"), 0600u);
}

TEST_F(SqliteStore, KeepsTheModesOfWhatExists) {
  const umask_guard mask(022);
  fs::create_directories(db_file_.parent_path());
  fs::permissions(db_file_.parent_path(),
                  fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
  std::ofstream(db_file_).close();
  fs::permissions(db_file_, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  auto store = open();
  store->add_user("alice", "pw");
  EXPECT_EQ(mode_of(db_file_.parent_path()), 0750u);
  EXPECT_EQ(mode_of(db_file_), 0640u);
  EXPECT_EQ(mode_of(db_file_.string() + "-wal"), 0640u);  // SQLite copies the database's mode
}

TEST_F(SqliteStore, OpenExistingCreatesNothing) {
  const auto open_existing = [&] {
    return open_sqlite_store(db_file_, hash_cost::minimum, open_mode::existing);
  };
  EXPECT_EQ(error_kind([&] { open_existing(); }), store_error::kind::not_found);
  EXPECT_FALSE(fs::exists(dir_));
  fs::create_directories(db_file_.parent_path());
  try {
    open_existing();
    FAIL() << "no exception";
  } catch (const store_error& e) {
    EXPECT_EQ(e.which(), store_error::kind::not_found);
    EXPECT_NE(std::string(e.what()).find(db_file_.string()), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_empty(db_file_.parent_path()));
}

TEST_F(SqliteStore, OpenExistingOpensTheStore) {
  open()->add_user("alice", "pw");
  auto store = open_sqlite_store(db_file_, hash_cost::minimum, open_mode::existing);
  EXPECT_TRUE(store->find_user("alice"));
}

TEST_F(SqliteStore, WalModeIsOn) {
  auto store = open();
  EXPECT_EQ(query_text(db_file_, "PRAGMA journal_mode"), "wal");
}

TEST_F(SqliteStore, SchemaVersionIsOne) {
  auto store = open();
  EXPECT_EQ(query_text(db_file_, "PRAGMA user_version"), "1");
  EXPECT_EQ(query_text(db_file_,
                       "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                       "name IN ('users', 'allow')"),
            "2");
}

TEST_F(SqliteStore, AddFindList) {
  auto store = open();
  const auto before = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  store->add_user("bob", "pw-bob");
  store->add_user("alice", "pw-alice");
  store->add_user("Zed", "pw-zed");

  const auto alice = store->find_user("alice");
  ASSERT_TRUE(alice);
  EXPECT_EQ(alice->id, "alice");
  EXPECT_EQ(alice->settings.max_lines, default_max_lines);
  EXPECT_TRUE(alice->settings.allow.empty());
  EXPECT_GE(alice->created_unix, before);
  EXPECT_LE(alice->created_unix, before + 60);

  EXPECT_FALSE(store->find_user("carol"));
  EXPECT_FALSE(store->find_user("Alice"));  // IDs are case-sensitive

  const auto users = store->list_users();
  ASSERT_EQ(users.size(), 3u);
  EXPECT_EQ(users[0].id, "Zed");  // sorted by ID, byte order
  EXPECT_EQ(users[1].id, "alice");
  EXPECT_EQ(users[2].id, "bob");
}

TEST_F(SqliteStore, DuplicateAddThrowsAlreadyExists) {
  auto store = open();
  store->add_user("alice", "one");
  EXPECT_EQ(error_kind([&] { store->add_user("alice", "two"); }),
            store_error::kind::already_exists);
  ASSERT_TRUE(store->authenticate("alice", "one"));  // the original password is kept
  EXPECT_FALSE(store->authenticate("alice", "two"));
  EXPECT_EQ(store->list_users().size(), 1u);
}

// The relay polls generation() to notice changes made by the command line (another
// connection) as well as through its own store object.
TEST_F(SqliteStore, GenerationMovesWithOwnAndOtherWritersOnly) {
  auto relay_side = open();
  auto cli_side = open();
  relay_side->add_user("alice", "pw");
  const auto g0 = relay_side->generation();
  EXPECT_EQ(relay_side->generation(), g0);  // nothing changed
  relay_side->list_users();
  relay_side->authenticate("alice", "pw");
  EXPECT_EQ(relay_side->generation(), g0) << "reads do not count";

  cli_side->set_allow_list("alice", {"bob"});  // another connection commits
  const auto g1 = relay_side->generation();
  EXPECT_NE(g1, g0);
  EXPECT_EQ(relay_side->generation(), g1);

  relay_side->set_max_lines("alice", 3);  // this object's own write
  const auto g2 = relay_side->generation();
  EXPECT_NE(g2, g1);

  cli_side->remove_user("alice");
  EXPECT_NE(relay_side->generation(), g2);
}

// The relay logs out devices whose password changed: the credential marker must change with the
// password, and read the same through any connection and any read.
TEST_F(SqliteStore, CredentialMarkerChangesWithThePasswordOnly) {
  auto a = open();
  auto b = open();
  a->add_user("alice", "one");
  const auto c1 = a->find_user("alice")->credential;
  EXPECT_NE(c1, 0u);
  EXPECT_EQ(b->find_user("alice")->credential, c1);
  EXPECT_EQ(a->authenticate("alice", "one")->credential, c1);
  EXPECT_EQ(b->list_users().at(0).credential, c1);
  b->set_allow_list("alice", {"bob"});
  EXPECT_EQ(a->find_user("alice")->credential, c1) << "settings are not the password";
  b->set_password("alice", "one");  // the same password: a new salt, so a new hash
  const auto c2 = a->find_user("alice")->credential;
  EXPECT_NE(c2, c1);
}

TEST_F(SqliteStore, RemoveUser) {
  auto store = open();
  store->add_user("alice", "pw");
  store->add_user("bob", "pw");
  store->set_allow_list("alice", {"bob"});
  EXPECT_TRUE(store->remove_user("alice"));
  EXPECT_FALSE(store->remove_user("alice"));
  EXPECT_FALSE(store->remove_user("nobody"));
  EXPECT_FALSE(store->find_user("alice"));
  EXPECT_FALSE(store->authenticate("alice", "pw"));
  ASSERT_EQ(store->list_users().size(), 1u);
  EXPECT_EQ(query_text(db_file_, "SELECT count(*) FROM allow"), "0");  // cascaded

  store->add_user("alice", "new");  // a new user of the same ID starts fresh
  EXPECT_TRUE(store->find_user("alice")->settings.allow.empty());
}

TEST_F(SqliteStore, SetPasswordReplacesOld) {
  auto store = open();
  store->add_user("alice", "old");
  ASSERT_TRUE(store->authenticate("alice", "old"));
  store->set_password("alice", "new");
  EXPECT_FALSE(store->authenticate("alice", "old"));
  EXPECT_TRUE(store->authenticate("alice", "new"));
}

TEST_F(SqliteStore, SetPasswordUnknownUserThrowsNotFound) {
  auto store = open();
  EXPECT_EQ(error_kind([&] { store->set_password("nobody", "pw"); }), store_error::kind::not_found);
}

TEST_F(SqliteStore, BadPasswordLengthThrows) {
  auto store = open();
  EXPECT_THROW(store->add_user("alice", ""), std::invalid_argument);
  EXPECT_THROW(store->add_user("alice", std::string(1025, 'p')), std::invalid_argument);
  EXPECT_FALSE(store->find_user("alice"));
  store->add_user("alice", std::string(1024, 'p'));
  EXPECT_THROW(store->set_password("alice", ""), std::invalid_argument);
  EXPECT_TRUE(store->authenticate("alice", std::string(1024, 'p')));
}

TEST_F(SqliteStore, AuthenticateReturnsRecord) {
  auto store = open();
  store->add_user("alice", "pw");
  store->set_allow_list("alice", {"bob"});
  store->set_max_lines("alice", 3);
  const auto rec = store->authenticate("alice", "pw");
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->id, "alice");
  EXPECT_EQ(rec->settings.allow, strings{"bob"});
  EXPECT_EQ(rec->settings.max_lines, 3);
  EXPECT_FALSE(store->authenticate("alice", "PW"));
  EXPECT_FALSE(store->authenticate("alice", ""));
}

TEST_F(SqliteStore, AuthenticateUnknownUserReturnsNullopt) {
  auto store = open();
  EXPECT_FALSE(store->authenticate("nobody", "pw"));
  store->add_user("alice", "pw");
  EXPECT_FALSE(store->authenticate("nobody", "pw"));
  EXPECT_FALSE(store->authenticate("alicE", "pw"));
}

TEST_F(SqliteStore, AllowListSetReplaceClear) {
  auto store = open();
  store->add_user("alice", "pw");
  store->set_allow_list("alice", {"carol", "bob", "carol"});
  EXPECT_EQ(store->find_user("alice")->settings.allow, (strings{"bob", "carol"}));

  store->set_allow_list("alice", {"dave@example.com"});
  EXPECT_EQ(store->find_user("alice")->settings.allow, strings{"dave@example.com"});
  EXPECT_EQ(store->list_users().at(0).settings.allow, strings{"dave@example.com"});

  store->set_allow_list("alice", {});
  EXPECT_TRUE(store->find_user("alice")->settings.allow.empty());
}

TEST_F(SqliteStore, AllowListsAreSeparatePerUser) {
  auto store = open();
  store->add_user("alice", "pw");
  store->add_user("bob", "pw");
  store->add_user("carol", "pw");
  store->set_allow_list("alice", {"bob", "carol"});
  store->set_allow_list("carol", {"alice"});
  const auto users = store->list_users();
  ASSERT_EQ(users.size(), 3u);
  EXPECT_EQ(users[0].settings.allow, (strings{"bob", "carol"}));
  EXPECT_TRUE(users[1].settings.allow.empty());
  EXPECT_EQ(users[2].settings.allow, strings{"alice"});
}

TEST_F(SqliteStore, AllowListErrorsLeaveListUnchanged) {
  auto store = open();
  EXPECT_EQ(error_kind([&] { store->set_allow_list("nobody", {"bob"}); }),
            store_error::kind::not_found);
  store->add_user("alice", "pw");
  store->set_allow_list("alice", {"bob"});
  EXPECT_THROW(store->set_allow_list("alice", {"carol", "bad id"}), std::invalid_argument);
  EXPECT_THROW(store->set_allow_list("alice", {""}), std::invalid_argument);
  EXPECT_EQ(store->find_user("alice")->settings.allow, strings{"bob"});
}

TEST_F(SqliteStore, MaxLines) {
  auto store = open();
  store->add_user("alice", "pw");
  store->set_max_lines("alice", 1);
  EXPECT_EQ(store->find_user("alice")->settings.max_lines, 1);
  store->set_max_lines("alice", 65535);
  EXPECT_EQ(store->find_user("alice")->settings.max_lines, 65535);
  EXPECT_THROW(store->set_max_lines("alice", 0), std::invalid_argument);
  EXPECT_EQ(store->find_user("alice")->settings.max_lines, 65535);
  EXPECT_EQ(error_kind([&] { store->set_max_lines("nobody", 5); }), store_error::kind::not_found);
}

TEST_F(SqliteStore, InvalidIdsThrow) {
  auto store = open();
  store->add_user("alice", "pw");
  const strings bad_ids = {
      "",       ".dot", "-dash", "has space",          "semi;colon",
      "quote'", "a/b",  "ü",     std::string(65, 'a'), std::string("nul\0", 4)};
  for (const auto& bad : bad_ids) {
    EXPECT_THROW(store->add_user(bad, "pw"), std::invalid_argument) << bad;
    EXPECT_THROW(store->remove_user(bad), std::invalid_argument) << bad;
    EXPECT_THROW(store->set_password(bad, "pw"), std::invalid_argument) << bad;
    EXPECT_THROW(store->set_allow_list(bad, {}), std::invalid_argument) << bad;
    EXPECT_THROW(store->set_max_lines(bad, 4), std::invalid_argument) << bad;
    EXPECT_THROW(store->find_user(bad), std::invalid_argument) << bad;
    EXPECT_THROW(store->authenticate(bad, "pw"), std::invalid_argument) << bad;
  }
  try {
    store->find_user("bad id");
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("bad id"), std::string::npos) << e.what();
  }
  EXPECT_EQ(store->list_users().size(), 1u);
}

TEST_F(SqliteStore, PersistsAcrossReopen) {
  {
    auto store = open();
    store->add_user("alice", "pw-alice");
    store->add_user("bob", "pw-bob");
    store->set_allow_list("alice", {"bob"});
    store->set_max_lines("bob", 7);
  }
  auto store = open();
  const auto users = store->list_users();
  ASSERT_EQ(users.size(), 2u);
  EXPECT_EQ(users[0].settings.allow, strings{"bob"});
  EXPECT_EQ(users[1].settings.max_lines, 7);
  EXPECT_TRUE(store->authenticate("alice", "pw-alice"));
  EXPECT_TRUE(store->authenticate("bob", "pw-bob"));
  EXPECT_FALSE(store->authenticate("bob", "pw-alice"));
}

TEST_F(SqliteStore, TwoStoresShareOneFile) {
  auto relay = open();
  auto cli = open();
  cli->add_user("alice", "pw");
  EXPECT_TRUE(relay->authenticate("alice", "pw"));
  cli->set_allow_list("alice", {"bob"});
  EXPECT_EQ(relay->find_user("alice")->settings.allow, strings{"bob"});
  EXPECT_TRUE(relay->remove_user("alice"));
  EXPECT_FALSE(cli->find_user("alice"));
}

TEST_F(SqliteStore, ConcurrentAuthenticate) {
  auto store = open();
  store->add_user("alice", "pw-alice");
  store->add_user("bob", "pw-bob");
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        const std::string id = (t + i) % 2 ? "alice" : "bob";
        const auto ok = store->authenticate(id, "pw-" + id);
        if (!ok || ok->id != id) ++failures;
        if (store->authenticate(id, "wrong")) ++failures;
        if (store->authenticate("nobody", "pw-alice")) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_F(SqliteStore, ConcurrentWritesAndReads) {
  auto store = open();
  store->add_user("alice", "pw");
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const std::string mine = "user" + std::to_string(t);
      store->add_user(mine, "pw");
      for (int i = 0; i < 20; ++i) {
        store->set_allow_list("alice", {mine, "x" + std::to_string(i)});
        store->set_max_lines(mine, static_cast<std::uint16_t>(i + 1));
        const auto rec = store->authenticate("alice", "pw");
        if (!rec || rec->settings.allow.size() != 2) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store->list_users().size(), 5u);
  EXPECT_EQ(store->find_user("user2")->settings.max_lines, 20);
}

TEST_F(SqliteStore, NewerSchemaIsRefused) {
  open().reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_file_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 2", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  try {
    open();
    FAIL() << "no exception";
  } catch (const store_error& e) {
    EXPECT_EQ(e.which(), store_error::kind::io);
    EXPECT_NE(std::string(e.what()).find("version 2"), std::string::npos) << e.what();
  }
}

TEST_F(SqliteStore, UnopenableFileThrowsIo) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "file") << "not a directory";
  db_file_ = dir_ / "file" / "users.db";
  EXPECT_EQ(error_kind([&] { open(); }), store_error::kind::io);

  db_file_ = dir_ / "garbage.db";
  std::ofstream(db_file_) << std::string(4096, 'x');
  try {
    open();
    FAIL() << "no exception";
  } catch (const store_error& e) {
    EXPECT_EQ(e.which(), store_error::kind::io);
    EXPECT_NE(std::string(e.what()).find(db_file_.string()), std::string::npos) << e.what();
  }
}

}  // namespace
