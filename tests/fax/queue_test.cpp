// The fax job queue: states, retries with back-off, kill time, cancel, recovery after a crash,
// and durability across reopening (a killed daemon's queue is still there).
#include "fax/queue.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace switchboard::fax {
namespace {

namespace fs = std::filesystem;

class Queue : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("sb-queue-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path db() const { return dir_ / "queue.db"; }
  static job_request request(int pages = 3) {
    job_request r;
    r.to = "bob";
    r.document = "docq/1.tif";
    r.pages_total = pages;
    r.max_tries = 3;
    r.retry_interval_s = 10;
    r.kill_after_s = 3600;
    return r;
  }
  fs::path dir_;
  const std::int64_t t0_ = 1'700'000'000;
};

TEST_F(Queue, SubmittedJobIsPendingAndDueAtOnce) {
  job_queue q(db());
  const auto id = q.submit(request(), t0_);
  const auto j = q.get(id);
  ASSERT_TRUE(j);
  EXPECT_EQ(j->state, job_state::pending);
  EXPECT_EQ(j->to, "bob");
  EXPECT_EQ(j->pages_total, 3);
  EXPECT_EQ(q.next_due_in(t0_), 0);
  const auto taken = q.take_due(t0_);
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->id, id);
  EXPECT_EQ(taken->state, job_state::running);
  EXPECT_EQ(taken->tries, 1);
  EXPECT_FALSE(q.take_due(t0_)) << "a running job is not taken twice";
}

TEST_F(Queue, EmptyQueueHasNothingDue) {
  job_queue q(db());
  EXPECT_FALSE(q.next_due_in(t0_));
  EXPECT_FALSE(q.take_due(t0_));
}

TEST_F(Queue, DoneAfterAllPagesConfirmed) {
  job_queue q(db());
  const auto id = q.submit(request(3), t0_);
  q.take_due(t0_);
  q.page_confirmed(id, 1, t0_);
  q.page_confirmed(id, 3, t0_);
  q.page_confirmed(id, 2, t0_);  // never goes backwards
  q.mark_done(id, t0_ + 5);
  const auto j = q.get(id);
  EXPECT_EQ(j->pages_confirmed, 3);
  EXPECT_EQ(j->state, job_state::done);
}

TEST_F(Queue, RetriesSleepWithDoublingIntervalThenFail) {
  job_queue q(db());
  const auto id = q.submit(request(), t0_);
  q.take_due(t0_);
  EXPECT_EQ(q.retry_later(id, "TARGET_OFFLINE", t0_), job_state::sleeping);
  EXPECT_EQ(q.get(id)->next_try, t0_ + 10);
  EXPECT_FALSE(q.take_due(t0_ + 9));
  ASSERT_TRUE(q.take_due(t0_ + 10));
  EXPECT_EQ(q.retry_later(id, "TARGET_BUSY", t0_ + 10), job_state::sleeping);
  EXPECT_EQ(q.get(id)->next_try, t0_ + 10 + 20);
  ASSERT_TRUE(q.take_due(t0_ + 30));
  EXPECT_EQ(q.retry_later(id, "NO_ANSWER", t0_ + 30), job_state::failed);
  const auto j = q.get(id);
  EXPECT_EQ(j->tries, 3);
  EXPECT_NE(j->last_error.find("NO_ANSWER"), std::string::npos);
  EXPECT_NE(j->last_error.find("3 times"), std::string::npos);
}

TEST_F(Queue, KillTimeFailsWaitingJobs) {
  job_queue q(db());
  auto r = request();
  r.kill_after_s = 15;
  const auto id = q.submit(r, t0_);
  q.take_due(t0_);
  EXPECT_EQ(q.retry_later(id, "TARGET_OFFLINE", t0_), job_state::sleeping);  // due at +10
  ASSERT_TRUE(q.take_due(t0_ + 10));
  EXPECT_EQ(q.retry_later(id, "TARGET_OFFLINE", t0_ + 10), job_state::failed)
      << "the next try (+20 s) would pass the kill time (+15 s)";
  const auto id2 = q.submit(r, t0_);
  EXPECT_FALSE(q.take_due(t0_ + 20)) << "a pending job past its kill time is failed, not run";
  EXPECT_EQ(q.get(id2)->state, job_state::failed);
  EXPECT_EQ(q.get(id2)->last_error, "kill time reached");
}

TEST_F(Queue, FailIsFinal) {
  job_queue q(db());
  const auto id = q.submit(request(), t0_);
  q.take_due(t0_);
  q.mark_failed(id, "NOT_ALLOWED: the target's allow-list does not name the caller", t0_);
  EXPECT_EQ(q.get(id)->state, job_state::failed);
  EXPECT_FALSE(q.take_due(t0_ + 100000));
}

TEST_F(Queue, CancelWaitingAndRunningJobs) {
  job_queue q(db());
  const auto waiting = q.submit(request(), t0_ + 100);
  EXPECT_TRUE(q.cancel(waiting, t0_));
  EXPECT_EQ(q.get(waiting)->state, job_state::cancelled);
  const auto running = q.submit(request(), t0_);
  q.take_due(t0_);
  EXPECT_TRUE(q.cancel(running, t0_));
  EXPECT_EQ(q.get(running)->state, job_state::running);
  EXPECT_TRUE(q.get(running)->cancel_requested);
  EXPECT_EQ(q.retry_later(running, "stopped", t0_), job_state::cancelled);
  EXPECT_FALSE(q.cancel(running, t0_)) << "finished jobs cannot be cancelled";
  EXPECT_FALSE(q.cancel(12345, t0_));
}

TEST_F(Queue, SurvivesReopenAndRecoversRunningJobs) {
  std::int64_t id = 0;
  {
    job_queue q(db());
    id = q.submit(request(5), t0_);
    q.take_due(t0_);
    q.page_confirmed(id, 2, t0_);
    // The daemon dies here (no transition after page 2).
  }
  job_queue q(db());
  EXPECT_EQ(q.get(id)->state, job_state::running);
  EXPECT_EQ(q.recover(t0_ + 1), 1);
  const auto j = q.take_due(t0_ + 1);
  ASSERT_TRUE(j);
  EXPECT_EQ(j->id, id);
  EXPECT_EQ(j->pages_confirmed, 2) << "resume at the first unconfirmed page";
  EXPECT_EQ(j->tries, 2);
}

// Killed after the last page was confirmed but before the job was marked done: the receiver has
// the whole fax, so recovery marks it done instead of calling again (which would duplicate it).
TEST_F(Queue, RecoveryMarksAFullyConfirmedRunningJobDone) {
  std::int64_t full = 0, partial = 0;
  {
    job_queue q(db());
    full = q.submit(request(3), t0_);
    partial = q.submit(request(3), t0_);
    q.take_due(t0_);
    q.page_confirmed(full, 3, t0_);
    q.take_due(t0_);
    q.page_confirmed(partial, 1, t0_);
  }
  job_queue q(db());
  EXPECT_EQ(q.recover(t0_ + 1), 2);
  EXPECT_EQ(q.get(full)->state, job_state::done);
  EXPECT_EQ(q.get(full)->pages_confirmed, 3);
  EXPECT_EQ(q.get(partial)->state, job_state::sleeping);
  const auto j = q.take_due(t0_ + 1);
  ASSERT_TRUE(j);
  EXPECT_EQ(j->id, partial);
  EXPECT_FALSE(q.take_due(t0_ + 1)) << "the done job must not be tried again";
}

TEST_F(Queue, ListsInSubmissionOrder) {
  job_queue q(db());
  q.submit(request(), t0_);
  q.submit(request(), t0_);
  const auto all = q.list();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_LT(all[0].id, all[1].id);
}

}  // namespace
}  // namespace switchboard::fax
