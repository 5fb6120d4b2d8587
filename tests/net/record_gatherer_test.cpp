// record_gatherer (net/record_gatherer.hpp): the write BIO of TLS lines. Driven here through the
// BIO interface as OpenSSL drives it, on a non-blocking socketpair: write-through sends at once,
// gathering keeps records until the line sends them, and a full gather buffer or a full socket
// asks for a retry instead of losing or reordering bytes.
#include "net/record_gatherer.hpp"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace switchboard::net {
namespace {

class RecordGatherer : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds_.data()), 0);
    gatherer_ = std::make_unique<record_gatherer>(fds_[0]);
    bio_ = gatherer_->make_bio();
  }
  void TearDown() override {
    BIO_free(bio_);
    ::close(fds_[0]);
    ::close(fds_[1]);
  }

  // BIO_write_ex as OpenSSL calls it; the bytes written (0 when it asks for a retry).
  std::size_t write(const std::string& s) {
    std::size_t n = 0;
    BIO_write_ex(bio_, s.data(), s.size(), &n);
    return n;
  }
  int waiting() {
    int n = 0;
    ::ioctl(fds_[1], FIONREAD, &n);
    return n;
  }
  std::string read_peer() {
    std::string out(static_cast<std::size_t>(waiting()), '\0');
    if (!out.empty()) {
      EXPECT_EQ(::read(fds_[1], out.data(), out.size()), std::ssize(out));
    }
    return out;
  }
  std::string unsent() const {
    const auto u = gatherer_->unsent();
    return {reinterpret_cast<const char*>(u.data()), u.size()};
  }

  std::array<int, 2> fds_{};
  std::unique_ptr<record_gatherer> gatherer_;
  BIO* bio_ = nullptr;
};

TEST_F(RecordGatherer, WritesThroughToTheSocketWhenNotGathering) {
  EXPECT_EQ(write("record one"), 10u);
  EXPECT_EQ(read_peer(), "record one");
  EXPECT_TRUE(gatherer_->unsent().empty());
  EXPECT_EQ(BIO_flush(bio_), 1);
}

TEST_F(RecordGatherer, GathersRecordsUntilTheLineSendsThem) {
  std::vector<std::uint8_t> buf(32);
  gatherer_->start(buf.data(), buf.size());
  EXPECT_EQ(write("first "), 6u);
  EXPECT_EQ(write("second"), 6u);
  EXPECT_EQ(waiting(), 0);  // nothing sent yet: one send(2) for both later
  EXPECT_EQ(unsent(), "first second");
  EXPECT_EQ(BIO_wpending(bio_), 12);
  gatherer_->mark_sent(6);
  EXPECT_EQ(unsent(), "second");
  gatherer_->mark_sent(6);
  EXPECT_TRUE(gatherer_->unsent().empty());
  gatherer_->stop();
  EXPECT_EQ(write("after"), 5u);  // write-through again
  EXPECT_EQ(read_peer(), "after");
}

TEST_F(RecordGatherer, ARecordThatDoesNotFitAsksForARetryAndFitsOnceTheBufferIsSent) {
  std::vector<std::uint8_t> buf(16);
  gatherer_->start(buf.data(), buf.size());
  EXPECT_EQ(write("0123456789"), 10u);
  EXPECT_EQ(write("abcdefgh"), 0u);  // 18 > 16: not taken, not cut
  EXPECT_TRUE(BIO_should_retry(bio_));
  EXPECT_TRUE(BIO_should_write(bio_));
  EXPECT_EQ(unsent(), "0123456789");
  gatherer_->mark_sent(10);  // the line sent it all: the buffer refills from its start
  EXPECT_EQ(write("abcdefgh"), 8u);
  EXPECT_FALSE(BIO_should_retry(bio_));
  EXPECT_EQ(unsent(), "abcdefgh");
}

TEST_F(RecordGatherer, AFullSocketAsksForARetryInWriteThrough) {
  const std::string chunk(64 * 1024, 'x');
  std::size_t accepted = 0;
  for (int i = 0; i < 1000 && write(chunk) > 0; ++i) accepted += chunk.size();
  EXPECT_TRUE(BIO_should_retry(bio_));  // EAGAIN became a retry, not an error
  EXPECT_TRUE(BIO_should_write(bio_));
  EXPECT_GT(accepted, 0u);
}

TEST_F(RecordGatherer, StopForgetsWhatWasNotSent) {
  std::vector<std::uint8_t> buf(16);
  gatherer_->start(buf.data(), buf.size());
  EXPECT_EQ(write("lost"), 4u);
  gatherer_->stop();
  EXPECT_FALSE(gatherer_->gathering());
  EXPECT_TRUE(gatherer_->unsent().empty());
  EXPECT_EQ(waiting(), 0);
}

}  // namespace
}  // namespace switchboard::net
