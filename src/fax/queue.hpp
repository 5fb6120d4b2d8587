// The fax machine's durable outgoing queue (SQLite, WAL) with HylaFAX-like job states.
//
//   pending ──run──▶ running ──all pages confirmed──▶ done
//      ▲               │ offline / busy / mid-document failure (tries left)
//      └── sleeping ◀──┘
//                      │ rejected / not allowed / tries or kill time exhausted ──▶ failed
//   pending, sleeping ──cancel──▶ cancelled   (a running job is cancelled when its try ends)
//
// Durability: every transition is one committed transaction before the daemon acts on it; the
// number of confirmed pages is committed after each page confirmation, so a daemon killed at any
// moment resumes a job at its first unconfirmed page (recover()).
// Thread-safety: one connection behind a mutex; the daemon and `switchboard-fax send/jobs/cancel`
// (other processes) share the file through SQLite's locking.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace switchboard::fax {

enum class job_state { pending, sleeping, running, done, failed, cancelled };
const char* to_string(job_state s);

struct job {
  std::int64_t id = 0;
  std::string to;                  // receiving fax machine's user ID
  std::filesystem::path document;  // TIFF-F in the spool
  int pages_total = 0;
  int pages_confirmed = 0;
  job_state state = job_state::pending;
  int tries = 0;
  int max_tries = 3;
  std::int64_t retry_interval_s = 60;
  std::int64_t kill_time = 0;  // unix seconds; the job fails if not done by then
  std::int64_t next_try = 0;   // unix seconds
  bool fine = true;            // resolution
  bool cancel_requested = false;
  std::string last_error;  // in words, e.g. the T.30 result text
  std::int64_t created = 0;
  std::int64_t updated = 0;
};

struct job_request {
  std::string to;
  std::filesystem::path document;
  int pages_total = 0;
  int max_tries = 3;
  std::int64_t retry_interval_s = 60;
  std::int64_t kill_after_s = 3 * 3600;  // HylaFAX's default kill time
  bool fine = true;
};

class job_queue {
 public:
  // Opens (creating) SPOOL/queue.db. Throws std::runtime_error naming the file.
  explicit job_queue(const std::filesystem::path& db_file);
  ~job_queue();
  job_queue(const job_queue&) = delete;
  job_queue& operator=(const job_queue&) = delete;

  std::int64_t submit(const job_request& r, std::int64_t now);
  std::optional<job> get(std::int64_t id);
  std::vector<job> list();

  // The due job with the oldest next_try (pending or sleeping, next_try <= now), marked running
  // with tries + 1, or nullopt. Jobs past their kill time are failed on the way.
  std::optional<job> take_due(std::int64_t now);
  // Seconds until the next job is due (nullopt: nothing queued).
  std::optional<std::int64_t> next_due_in(std::int64_t now);

  void page_confirmed(std::int64_t id, int pages_confirmed, std::int64_t now);
  void mark_done(std::int64_t id, std::int64_t now);
  // Sleeping until now + retry interval (doubling with each try), or failed if tries, kill time or
  // a cancel request say so. Returns the new state.
  job_state retry_later(std::int64_t id, const std::string& error, std::int64_t now);
  void mark_failed(std::int64_t id, const std::string& error, std::int64_t now);
  // Pending/sleeping: cancelled now. Running: cancel requested (the daemon stops it). Returns false
  // for an unknown or finished job.
  bool cancel(std::int64_t id, std::int64_t now);
  // After a crash: running jobs become sleeping, due now. Returns how many.
  int recover(std::int64_t now);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

std::int64_t unix_now();

}  // namespace switchboard::fax
