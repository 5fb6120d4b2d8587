// forward_path (net/forward.hpp): frames move whole between two plaintext lines, by splice(2) or
// by copy, and forward() sets the source's read-ahead for the header that follows.
#include "net/forward.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "net/asio.hpp"
#include "net/framed.hpp"
#include "protocol/frame.hpp"

namespace switchboard::net {
namespace {

// A line_stream on one end of a loopback TCP connection, a plain socket on the other, with
// buffers large enough that the frames of a test fit in flight at once.
struct line_pair {
  explicit line_pair(asio::io_context& io) : raw(io) {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    raw.connect(acceptor.local_endpoint());
    line.emplace(acceptor.accept());
    raw.set_option(asio::socket_base::send_buffer_size(1 << 20));
    raw.set_option(asio::socket_base::receive_buffer_size(1 << 20));
    line->socket().set_option(asio::socket_base::receive_buffer_size(1 << 20));
    line->socket().set_option(asio::socket_base::send_buffer_size(1 << 20));
  }
  tcp::socket raw;
  std::optional<line_stream> line;
};

// A DATA frame whose payload is a recognisable sequence starting at `seed`.
std::vector<std::uint8_t> data_frame(std::uint32_t length, std::uint8_t seed) {
  const auto h = protocol::encode_header(protocol::frame_type::data, length);
  std::vector<std::uint8_t> f(h.begin(), h.end());
  for (std::uint32_t i = 0; i < length; ++i) f.push_back(static_cast<std::uint8_t>(seed + i * 13));
  return f;
}

// What the test saw after each forwarded frame: the source's read-ahead setting, and how many
// bytes the source line held beyond the next header once it had read that header.
struct step {
  bool read_ahead_after = false;
  std::size_t held_after_next_header = 0;
};

class ForwardPathTest : public ::testing::TestWithParam<bool> {
 protected:
  // Sends `frames` into the source, forwards each of them with one forward_path (splicing if
  // the test's parameter says so), and returns what happened at each step.
  std::vector<step> forward_all(const std::vector<std::vector<std::uint8_t>>& frames) {
    std::vector<std::uint8_t> all;
    for (const auto& f : frames) all.insert(all.end(), f.begin(), f.end());
    asio::write(src_.raw, asio::buffer(all));
    std::vector<step> steps;
    asio::co_spawn(
        io_,
        [&]() -> awaitable<void> {
          forward_path path(GetParam());
          liveness live;
          auto h = co_await read_header(*src_.line);
          for (std::size_t i = 0; i < frames.size(); ++i) {
            const bool ok = co_await path.forward(*src_.line, &*dst_.line, h->length, live);
            EXPECT_TRUE(ok);
            step s;
            s.read_ahead_after = src_.line->read_ahead();
            if (i + 1 < frames.size()) {
              h = co_await read_header(*src_.line);
              s.held_after_next_header = src_.line->buffered_bytes().size();
            }
            steps.push_back(s);
          }
        },
        asio::detached);
    io_.run_for(std::chrono::seconds(10));
    EXPECT_EQ(steps.size(), frames.size());  // else forwarding failed or hung
    dst_.line->socket().close();  // a short stream then ends the read below with an error
    std::vector<std::uint8_t> got(all.size());
    error_code ec;
    asio::read(dst_.raw, asio::buffer(got), ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(got, all);  // every frame arrived whole and in order
    return steps;
  }

  asio::io_context io_;
  line_pair src_{io_};
  line_pair dst_{io_};
};

TEST_P(ForwardPathTest, FramesArriveWholeAndTheNextHeaderIsReadAloneOnlyAfterASplicedPayload) {
  const std::uint32_t large = 64 * 1024;
  const std::uint32_t small = 100;
  ASSERT_GT(large, small_payload);
  ASSERT_LE(small, small_payload);
  const auto steps = forward_all(
      {data_frame(large, 1), data_frame(small, 2), data_frame(large, 3), data_frame(large, 4)});
  ASSERT_EQ(steps.size(), 4u);
  const bool splice = GetParam();
  // After a payload the path splices, the next header is read alone: its payload (and all that
  // follows) is still in the socket. After a small payload, or when copying, reads go on taking
  // up to read_ahead_size bytes at once.
  EXPECT_EQ(steps[0].read_ahead_after, !splice);
  EXPECT_TRUE(steps[1].read_ahead_after);
  EXPECT_EQ(steps[2].read_ahead_after, !splice);
  // (All frames were written before forwarding began, so whenever a header is read the socket
  // holds more behind it: a read-ahead takes some of it.)
  if (splice) {
    EXPECT_EQ(steps[0].held_after_next_header, 0u);
    EXPECT_EQ(steps[2].held_after_next_header, 0u);
  } else {
    EXPECT_GT(steps[0].held_after_next_header, 0u);
    EXPECT_GT(steps[2].held_after_next_header, 0u);
  }
  // The header after the small payload was read ahead with whatever followed it.
  EXPECT_GT(steps[1].held_after_next_header, 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, ForwardPathTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "splice" : "copy"; });

}  // namespace
}  // namespace switchboard::net
