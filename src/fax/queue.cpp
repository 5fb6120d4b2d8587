#include "fax/queue.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <mutex>
#include <stdexcept>

namespace switchboard::fax {

namespace {

constexpr const char* schema = R"(
CREATE TABLE IF NOT EXISTS jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  to_user TEXT NOT NULL,
  document TEXT NOT NULL,
  pages_total INTEGER NOT NULL,
  pages_confirmed INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL,
  tries INTEGER NOT NULL DEFAULT 0,
  max_tries INTEGER NOT NULL,
  retry_interval_s INTEGER NOT NULL,
  kill_time INTEGER NOT NULL,
  next_try INTEGER NOT NULL,
  fine INTEGER NOT NULL,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  created INTEGER NOT NULL,
  updated INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs(state, next_try);
)";

constexpr const char* columns =
    "id, to_user, document, pages_total, pages_confirmed, state, tries, max_tries, "
    "retry_interval_s, kill_time, next_try, fine, cancel_requested, last_error, created, updated";

job_state parse_state(const std::string& s) {
  for (auto st : {job_state::pending, job_state::sleeping, job_state::running, job_state::done,
                  job_state::failed, job_state::cancelled}) {
    if (s == to_string(st)) return st;
  }
  throw std::runtime_error("queue.db: unknown job state '" + s + "'");
}

// One prepared statement; finalized on scope exit.
class stmt {
 public:
  stmt(sqlite3* db, const std::string& sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st_, nullptr) != SQLITE_OK) fail("prepare");
  }
  ~stmt() { sqlite3_finalize(st_); }
  stmt(const stmt&) = delete;
  stmt& operator=(const stmt&) = delete;

  stmt& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  stmt& bind(int i, const std::string& v) {
    sqlite3_bind_text(st_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  bool step() {
    const int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) fail("step");
    return false;
  }
  std::int64_t i64(int c) const { return sqlite3_column_int64(st_, c); }
  std::string text(int c) const {
    const auto* p = sqlite3_column_text(st_, c);
    return p ? reinterpret_cast<const char*>(p) : "";
  }
  job row() const {
    job j;
    j.id = i64(0);
    j.to = text(1);
    j.document = text(2);
    j.pages_total = static_cast<int>(i64(3));
    j.pages_confirmed = static_cast<int>(i64(4));
    j.state = parse_state(text(5));
    j.tries = static_cast<int>(i64(6));
    j.max_tries = static_cast<int>(i64(7));
    j.retry_interval_s = i64(8);
    j.kill_time = i64(9);
    j.next_try = i64(10);
    j.fine = i64(11) != 0;
    j.cancel_requested = i64(12) != 0;
    j.last_error = text(13);
    j.created = i64(14);
    j.updated = i64(15);
    return j;
  }

 private:
  [[noreturn]] void fail(const char* what) const {
    throw std::runtime_error(std::string("queue.db ") + what + ": " + sqlite3_errmsg(db_));
  }
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
};

}  // namespace

const char* to_string(job_state s) {
  switch (s) {
    case job_state::pending:
      return "pending";
    case job_state::sleeping:
      return "sleeping";
    case job_state::running:
      return "running";
    case job_state::done:
      return "done";
    case job_state::failed:
      return "failed";
    case job_state::cancelled:
      return "cancelled";
  }
  return "?";
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct job_queue::impl {
  sqlite3* db = nullptr;
  std::mutex mutex;

  void exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string what = err ? err : "unknown error";
      sqlite3_free(err);
      throw std::runtime_error(std::string("queue.db: ") + what);
    }
  }
  std::optional<job> get(std::int64_t id) {
    stmt s(db, std::string("SELECT ") + columns + " FROM jobs WHERE id = ?1");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return s.row();
  }
  void set_state(std::int64_t id, job_state st, const std::string& error, std::int64_t next_try,
                 std::int64_t now) {
    stmt s(
        db,
        "UPDATE jobs SET state = ?2, last_error = ?3, next_try = ?4, updated = ?5 WHERE id = ?1");
    s.bind(1, id).bind(2, to_string(st)).bind(3, error).bind(4, next_try).bind(5, now).step();
  }
};

job_queue::job_queue(const std::filesystem::path& db_file) : impl_(std::make_unique<impl>()) {
  std::filesystem::create_directories(db_file.parent_path());
  if (sqlite3_open(db_file.c_str(), &impl_->db) != SQLITE_OK) {
    const std::string why = impl_->db ? sqlite3_errmsg(impl_->db) : "out of memory";
    sqlite3_close(impl_->db);
    throw std::runtime_error("cannot open " + db_file.string() + ": " + why);
  }
  sqlite3_busy_timeout(impl_->db, 5000);
  impl_->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
  impl_->exec(schema);
}

job_queue::~job_queue() {
  sqlite3_close(impl_->db);
}

std::int64_t job_queue::submit(const job_request& r, std::int64_t now) {
  std::lock_guard lock(impl_->mutex);
  stmt s(impl_->db,
         "INSERT INTO jobs (to_user, document, pages_total, state, max_tries, retry_interval_s, "
         "kill_time, next_try, fine, created, updated) "
         "VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7, ?8, ?7, ?7)");
  s.bind(1, r.to).bind(2, r.document.string()).bind(3, r.pages_total).bind(4, r.max_tries);
  s.bind(5, r.retry_interval_s).bind(6, now + r.kill_after_s).bind(7, now).bind(8, r.fine ? 1 : 0);
  s.step();
  return sqlite3_last_insert_rowid(impl_->db);
}

std::optional<job> job_queue::get(std::int64_t id) {
  std::lock_guard lock(impl_->mutex);
  return impl_->get(id);
}

std::vector<job> job_queue::list() {
  std::lock_guard lock(impl_->mutex);
  stmt s(impl_->db, std::string("SELECT ") + columns + " FROM jobs ORDER BY id");
  std::vector<job> out;
  while (s.step()) out.push_back(s.row());
  return out;
}

std::optional<job> job_queue::take_due(std::int64_t now) {
  std::lock_guard lock(impl_->mutex);
  impl_->exec("BEGIN IMMEDIATE");
  try {
    {
      stmt expire(impl_->db,
                  "UPDATE jobs SET state = 'failed', last_error = 'kill time reached', "
                  "updated = ?1 WHERE state IN ('pending','sleeping') AND kill_time <= ?1");
      expire.bind(1, now).step();
    }
    std::optional<job> j;
    {
      stmt s(impl_->db, std::string("SELECT ") + columns +
                            " FROM jobs WHERE state IN ('pending','sleeping') AND next_try <= ?1 "
                            "ORDER BY next_try, id LIMIT 1");
      s.bind(1, now);
      if (s.step()) j = s.row();
    }
    if (j) {
      stmt run(impl_->db,
               "UPDATE jobs SET state = 'running', tries = tries + 1, updated = ?2 WHERE id = ?1");
      run.bind(1, j->id).bind(2, now).step();
      j->state = job_state::running;
      ++j->tries;
    }
    impl_->exec("COMMIT");
    return j;
  } catch (...) {
    impl_->exec("ROLLBACK");
    throw;
  }
}

std::optional<std::int64_t> job_queue::next_due_in(std::int64_t now) {
  std::lock_guard lock(impl_->mutex);
  stmt s(impl_->db, "SELECT MIN(next_try) FROM jobs WHERE state IN ('pending','sleeping')");
  if (!s.step() || s.text(0).empty()) return std::nullopt;  // MIN over no rows is NULL
  return std::max<std::int64_t>(0, s.i64(0) - now);
}

void job_queue::page_confirmed(std::int64_t id, int pages_confirmed, std::int64_t now) {
  std::lock_guard lock(impl_->mutex);
  stmt s(impl_->db,
         "UPDATE jobs SET pages_confirmed = MAX(pages_confirmed, ?2), updated = ?3 WHERE id = ?1");
  s.bind(1, id).bind(2, pages_confirmed).bind(3, now).step();
}

void job_queue::mark_done(std::int64_t id, std::int64_t now) {
  std::lock_guard lock(impl_->mutex);
  impl_->set_state(id, job_state::done, "", 0, now);
}

void job_queue::mark_failed(std::int64_t id, const std::string& error, std::int64_t now) {
  std::lock_guard lock(impl_->mutex);
  impl_->set_state(id, job_state::failed, error, 0, now);
}

job_state job_queue::retry_later(std::int64_t id, const std::string& error, std::int64_t now) {
  std::lock_guard lock(impl_->mutex);
  const auto j = impl_->get(id);
  if (!j) return job_state::failed;
  job_state next = job_state::sleeping;
  std::string why = error;
  if (j->cancel_requested) {
    next = job_state::cancelled;
  } else if (j->tries >= j->max_tries) {
    next = job_state::failed;
    why += " (tried " + std::to_string(j->tries) + " times)";
  }
  // Back-off: the retry interval doubles with each try, capped at 8 intervals.
  const std::int64_t delay = j->retry_interval_s << std::min(j->tries - 1, 3);
  if (next == job_state::sleeping && now + delay >= j->kill_time) {
    next = job_state::failed;
    why += " (kill time would pass before the next try)";
  }
  impl_->set_state(id, next, why, now + delay, now);
  return next;
}

bool job_queue::cancel(std::int64_t id, std::int64_t now) {
  std::lock_guard lock(impl_->mutex);
  const auto j = impl_->get(id);
  if (!j) return false;
  if (j->state == job_state::pending || j->state == job_state::sleeping) {
    impl_->set_state(id, job_state::cancelled, "cancelled", 0, now);
    return true;
  }
  if (j->state == job_state::running) {
    stmt s(impl_->db, "UPDATE jobs SET cancel_requested = 1, updated = ?2 WHERE id = ?1");
    s.bind(1, id).bind(2, now).step();
    return true;
  }
  return false;
}

int job_queue::recover(std::int64_t now) {
  std::lock_guard lock(impl_->mutex);
  // Every page confirmed: the receiver has the whole fax; only the final mark was lost. Sending
  // again would duplicate it.
  stmt done(impl_->db,
            "UPDATE jobs SET state = 'done', updated = ?1, last_error = '' "
            "WHERE state = 'running' AND pages_confirmed >= pages_total");
  done.bind(1, now).step();
  int changed = sqlite3_changes(impl_->db);
  stmt s(impl_->db,
         "UPDATE jobs SET state = 'sleeping', next_try = ?1, updated = ?1, "
         "last_error = 'daemon stopped during the try' WHERE state = 'running'");
  s.bind(1, now).step();
  changed += sqlite3_changes(impl_->db);
  return changed;
}

}  // namespace switchboard::fax
