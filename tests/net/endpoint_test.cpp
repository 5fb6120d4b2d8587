#include "net/endpoint.hpp"

#include <gtest/gtest.h>

namespace switchboard::net {

TEST(Endpoint, ParsesHostPortForms) {
  EXPECT_EQ(parse_host_port("relay.example:7443").host, "relay.example");
  EXPECT_EQ(parse_host_port("relay.example:7443").port, 7443);
  EXPECT_EQ(parse_host_port("[::1]:0").host, "::1");
  EXPECT_EQ(parse_endpoint("127.0.0.1:80").port(), 80);
  EXPECT_TRUE(parse_endpoint("[::1]:9").address().is_v6());
}

TEST(Endpoint, RejectsBadInput) {
  for (const char* bad : {"", "host", "host:", ":80", "host:65536", "host:-1", "host:8x", "::1:80",
                          "[::1]", "[]:80"}) {
    EXPECT_THROW(parse_host_port(bad), std::invalid_argument) << bad;
  }
  EXPECT_THROW(parse_endpoint("localhost:80"), std::invalid_argument);
}

TEST(Endpoint, FormatsWithBracketsForV6) {
  EXPECT_EQ(to_string(parse_endpoint("[::1]:5")), "[::1]:5");
  EXPECT_EQ(to_string(parse_endpoint("10.0.0.1:5")), "10.0.0.1:5");
}

}  // namespace switchboard::net
