#include "fax/tpkt.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace switchboard::fax {
namespace {

using bytes = std::vector<std::uint8_t>;

bytes frame_of(std::size_t payload_size, std::uint8_t fill) {
  return tpkt::encode(bytes(payload_size, fill));
}

std::string error_of(tpkt::parser& p) {
  try {
    while (p.next()) {
    }
  } catch (const fax_error& e) {
    return e.what();
  }
  return "";
}

TEST(Tpkt, EncodeWritesRfc1006Header) {
  const bytes f = tpkt::encode(bytes{0x06, 0x01});
  EXPECT_EQ(f, (bytes{3, 0, 0, 6, 0x06, 0x01}));
  const bytes big = frame_of(300, 0xAA);
  ASSERT_EQ(big.size(), 304U);
  EXPECT_EQ(big[2], 0x01);
  EXPECT_EQ(big[3], 0x30);
}

TEST(Tpkt, EncodeRefusesEmptyAndOversizedPackets) {
  EXPECT_THROW(tpkt::encode(bytes{}), fax_error);
  EXPECT_NO_THROW(tpkt::encode(bytes(0xFFFF - 4, 1)));
  EXPECT_THROW(tpkt::encode(bytes(0xFFFF - 3, 1)), fax_error);
}

TEST(Tpkt, ParsesOneFrame) {
  tpkt::parser p;
  const bytes f = tpkt::encode(bytes{0x11, 0x22, 0x33});
  p.feed(f);
  auto got = p.next();
  ASSERT_TRUE(got);
  EXPECT_EQ(bytes(got->bytes.begin(), got->bytes.end()), f);
  EXPECT_EQ(bytes(got->payload().begin(), got->payload().end()), (bytes{0x11, 0x22, 0x33}));
  EXPECT_FALSE(p.next());
  EXPECT_EQ(p.buffered(), 0U);
  EXPECT_NO_THROW(p.check_end());
}

TEST(Tpkt, MergedFramesInOneChunk) {
  bytes stream;
  for (std::uint8_t i = 1; i <= 5; ++i) {
    const bytes f = frame_of(i, i);
    stream.insert(stream.end(), f.begin(), f.end());
  }
  tpkt::parser p;
  p.feed(stream);
  for (std::uint8_t i = 1; i <= 5; ++i) {
    auto f = p.next();
    ASSERT_TRUE(f) << int(i);
    EXPECT_EQ(f->payload().size(), i);
    EXPECT_EQ(f->payload()[0], i);
  }
  EXPECT_FALSE(p.next());
}

TEST(Tpkt, FrameSplitAtEveryByte) {
  const bytes f = frame_of(10, 0x5A);
  for (std::size_t cut = 1; cut < f.size(); ++cut) {
    tpkt::parser p;
    p.feed(std::span(f).first(cut));
    EXPECT_FALSE(p.next()) << cut;
    EXPECT_EQ(p.buffered(), cut);
    EXPECT_THROW(p.check_end(), fax_error);
    p.feed(std::span(f).subspan(cut));
    auto got = p.next();
    ASSERT_TRUE(got) << cut;
    EXPECT_EQ(got->bytes.size(), f.size());
  }
}

TEST(Tpkt, ByteByByte) {
  bytes stream;
  for (int i = 0; i < 20; ++i) {
    const bytes f = frame_of(static_cast<std::size_t>(1 + i * 7), static_cast<std::uint8_t>(i));
    stream.insert(stream.end(), f.begin(), f.end());
  }
  tpkt::parser p;
  int frames = 0;
  for (const std::uint8_t b : stream) {
    p.feed(std::span(&b, 1));
    while (auto f = p.next()) {
      EXPECT_EQ(f->payload().size(), static_cast<std::size_t>(1 + frames * 7));
      EXPECT_EQ(f->payload()[0], frames);
      ++frames;
    }
  }
  EXPECT_EQ(frames, 20);
  EXPECT_EQ(p.buffered(), 0U);
}

TEST(Tpkt, RandomChunkingKeepsFramesIntact) {
  std::mt19937 rng(42);
  std::vector<bytes> sent;
  bytes stream;
  for (int i = 0; i < 2000; ++i) {
    bytes payload(1 + rng() % 400);
    for (auto& b : payload) b = static_cast<std::uint8_t>(rng());
    const bytes f = tpkt::encode(payload);
    stream.insert(stream.end(), f.begin(), f.end());
    sent.push_back(std::move(payload));
  }
  tpkt::parser p;
  std::size_t pos = 0;
  std::size_t got = 0;
  while (pos < stream.size()) {
    const std::size_t n = std::min<std::size_t>(stream.size() - pos, 1 + rng() % 1500);
    p.feed(std::span(stream).subspan(pos, n));
    pos += n;
    while (auto f = p.next()) {
      ASSERT_LT(got, sent.size());
      ASSERT_EQ(bytes(f->payload().begin(), f->payload().end()), sent[got]) << got;
      ++got;
    }
  }
  EXPECT_EQ(got, sent.size());
}

TEST(Tpkt, RejectsBadVersion) {
  tpkt::parser p;
  const std::string http = "GET / HTTP/1.1\r\n";
  p.feed(std::span(reinterpret_cast<const std::uint8_t*>(http.data()), http.size()));
  const std::string e = error_of(p);
  EXPECT_NE(e.find("version 71"), std::string::npos) << e;
  EXPECT_NE(e.find("not a T.38 TPKT stream"), std::string::npos) << e;
  EXPECT_THROW(p.next(), fax_error);  // stays failed
}

TEST(Tpkt, RejectsBadReservedByte) {
  tpkt::parser p;
  p.feed(bytes{3, 1, 0, 6, 0, 0});
  EXPECT_NE(error_of(p).find("reserved"), std::string::npos);
}

TEST(Tpkt, RejectsShortLengths) {
  for (std::uint8_t len : {0, 1, 3, 4}) {
    tpkt::parser p;
    p.feed(bytes{3, 0, 0, len, 0xFF, 0xFF, 0xFF});
    EXPECT_NE(error_of(p).find("shorter"), std::string::npos) << int(len);
  }
  tpkt::parser ok;
  ok.feed(bytes{3, 0, 0, 5, 0x06});
  EXPECT_TRUE(ok.next());
}

TEST(Tpkt, RejectsOversizedFramesBeforeTheirBody) {
  tpkt::parser p;  // default limit 16 KiB
  p.feed(bytes{3, 0, 0xFF, 0xFF});
  const std::string e = error_of(p);
  EXPECT_NE(e.find("65535 exceeds the limit of 16384"), std::string::npos) << e;

  tpkt::parser small(100);
  small.feed(bytes{3, 0, 0, 101});
  EXPECT_NE(error_of(small).find("exceeds"), std::string::npos);
  tpkt::parser edge(100);
  edge.feed(frame_of(96, 1));
  EXPECT_TRUE(edge.next());
}

TEST(Tpkt, ErrorAfterGoodFramesKeepsTheGoodOnes) {
  bytes stream = frame_of(3, 1);
  const bytes tail{3, 0, 0, 2};
  stream.insert(stream.end(), tail.begin(), tail.end());
  tpkt::parser p;
  p.feed(stream);
  EXPECT_TRUE(p.next());
  EXPECT_THROW(p.next(), fax_error);
}

TEST(Tpkt, CheckEndNamesTheTruncation) {
  tpkt::parser p;
  const bytes f = frame_of(36, 7);
  p.feed(std::span(f).first(7));
  EXPECT_FALSE(p.next());
  try {
    p.check_end();
    FAIL() << "no error";
  } catch (const fax_error& e) {
    EXPECT_NE(std::string(e.what()).find("7 of 40 bytes"), std::string::npos) << e.what();
  }
  tpkt::parser q;
  q.feed(bytes{3, 0});
  EXPECT_THROW(q.check_end(), fax_error);
}

}  // namespace
}  // namespace switchboard::fax
