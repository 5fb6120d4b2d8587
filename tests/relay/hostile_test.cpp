// Hostile and broken clients (issue 15): each case here once crashed, froze or out-ran the relay.
// The relay must survive it, keep its limits, and keep serving a well-behaved device.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "relay/harness.hpp"
#include "relay/line.hpp"

namespace switchboard::test {
namespace {

namespace p = protocol;

// Holds every thread of the relay's auth pool until release() (or 30 s), so that password checks
// queue behind it: a test decides when they run.
class auth_pool_blocker {
 public:
  auth_pool_blocker(relay::hub& h, unsigned threads) {
    for (unsigned i = 0; i < threads; ++i) {
      asio::post(h.auth_pool(), [this] {
        ++held_;
        const auto until = std::chrono::steady_clock::now() + 30s;
        while (!released_ && std::chrono::steady_clock::now() < until) {
          std::this_thread::sleep_for(1ms);
        }
        --held_;
      });
    }
  }
  auth_pool_blocker(const auth_pool_blocker&) = delete;
  auth_pool_blocker& operator=(const auth_pool_blocker&) = delete;
  ~auth_pool_blocker() { release(); }
  void release() { released_ = true; }
  int held() const { return held_; }

 private:
  std::atomic<bool> released_{false};
  std::atomic<int> held_{0};
};

std::size_t bytes_unread(raw_client& c) {
  int n = 0;
  ::ioctl(c.socket().native_handle(), FIONREAD, &n);
  return static_cast<std::size_t>(n);
}

// The relay's end of `c`'s connection (the relay runs in this process): the descriptor whose
// local address is the relay's and whose peer is `c`; -1 if there is none.
int relay_side_of(raw_client& c) {
  const auto mine = c.socket().local_endpoint();
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    int fd = -1;
    try {
      fd = std::stoi(entry.path().filename().string());
    } catch (const std::exception&) {
      continue;
    }
    sockaddr_in peer{};
    socklen_t len = sizeof(peer);
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) continue;
    if (peer.sin_family == AF_INET && ntohs(peer.sin_port) == mine.port() &&
        fd != c.socket().native_handle()) {
      return fd;
    }
  }
  return -1;
}

// A raw client whose receive buffer is small (set before the handshake, so its window scale
// matches): a few KiB of PONGs that it does not read fill it.
awaitable<raw_client> connect_small_window(tcp::endpoint relay) {
  tcp::socket s(co_await asio::this_coro::executor);
  s.open(relay.protocol());
  s.set_option(asio::socket_base::receive_buffer_size(65536));
  co_await s.async_connect(relay, use_awaitable);
  s.set_option(tcp::no_delay(true));
  co_return raw_client(std::move(s));
}

// `c` (connect_small_window) stops reading and sends PINGs until the relay's writes to it are
// stuck (its PONGs fill both socket buffers): what it has unread has not grown for 300 ms
// (bounded: 20 s).
awaitable<void> block_relay_writes(raw_client& c) {
  // And the relay's send buffer for it: a few KiB more of PONGs and its writes wait.
  const int relay_fd = relay_side_of(c);
  if (relay_fd < 0) fail_at(std::source_location::current(), "the relay's socket was not found");
  const int small = 4096;
  ::setsockopt(relay_fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  asio::steady_timer pause(co_await asio::this_coro::executor);
  std::size_t last = 0;
  auto still_since = std::chrono::steady_clock::now();
  const auto give_up = still_since + 20s;
  std::uint64_t nonce = 1;
  while (std::chrono::steady_clock::now() < give_up) {
    std::vector<std::uint8_t> batch;
    for (int i = 0; i < 256; ++i) {
      const auto f = p::encode(p::ping{nonce++});
      batch.insert(batch.end(), f.begin(), f.end());
    }
    co_await c.send_bytes(batch);
    pause.expires_after(5ms);
    co_await pause.async_wait(use_awaitable);
    const std::size_t now_unread = bytes_unread(c);
    if (now_unread != last) {
      last = now_unread;
      still_since = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - still_since > 300ms) {
      co_return;
    }
  }
  fail_at(std::source_location::current(), "the relay's writes never stalled");
}

// A well-behaved device still gets its PONG at once and its calls through.
awaitable<void> expect_relay_serves(relay_env& env, std::uint64_t nonce) {
  auto carol = co_await raw_client::connect(env.endpoint);
  co_await carol.login("carol", password_of("carol"));
  co_await carol.expect_alive(nonce, 1s);
}

// Crash 1: the target ACCEPTs after the demand deadline, while the FAIL to the caller waits for
// the caller's flow control. The relay must not pair a session whose caller has left.
TEST(Hostile, LateAcceptWhileTheCallersFailIsStuckEndsTheTargetsCall) {
  auto cfg = test_config();
  cfg.ring_timeout = 300ms;
  relay_env env(transport::plaintext, cfg);
  env.run([&]() -> awaitable<void> {
    auto bob = co_await raw_client::connect(env.endpoint);
    co_await bob.login("bob", password_of("bob"));
    auto alice = co_await connect_small_window(env.endpoint);
    co_await alice.login("alice", password_of("alice"));
    co_await block_relay_writes(alice);
    const p::demand d("bob", "echo");
    co_await alice.send(d);
    const auto in = co_await bob.expect<p::incoming>();
    // The deadline passes while the relay's writes to alice are stuck; then bob accepts.
    CO_WAIT_UNTIL(env.counters().ring_timeouts == 1, 3s);
    p::accept late;
    late.session = in.session;
    co_await bob.send(late);  // discarded: bob's line is releasing
    co_await bob.expect_terminate(err::no_answer, 3s);
    const p::release release;
    co_await bob.send(release);
    co_await bob.expect<p::released>();
    co_await bob.expect_alive(7);
    EXPECT_EQ(env.counters().sessions_paired, 0u);
    co_await expect_relay_serves(env, 8);
  });
}

// A caller that stops reading and keeps calling a target that rejects at once would pile up the
// FAILs the relay owes it; past a few unwritten notices its line is closed, which frees them.
TEST(Hostile, ACallerThatDoesNotReadIsClosedBeforeItsNoticesPileUp) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto bob = co_await raw_client::connect(env.endpoint);
    co_await bob.login("bob", password_of("bob"));
    auto alice = co_await connect_small_window(env.endpoint);
    co_await alice.login("alice", password_of("alice"));
    co_await block_relay_writes(alice);
    // Eight FAILs wait for alice (her line's writes are stuck); the ninth closes her line.
    for (std::uint64_t i = 0; i < 9; ++i) {
      const p::demand d("bob", "nothing");
      co_await alice.send(d);
      const auto in = co_await bob.expect<p::incoming>();
      const p::reject no(in.session, err::unknown_service, "no such service");
      co_await bob.send(no);
      co_await bob.expect_alive(100 + i);  // the REJECT has been handled
    }
    CO_WAIT_UNTIL(env.hub().lines_of("alice") == 0, 5s);
    co_await bob.expect_alive(21);
    co_await expect_relay_serves(env, 22);
  });
}

relay::relay_config threaded_config() {
  auto cfg = test_config();
  cfg.forward_threads = 2;
  cfg.offload_after_frames = 0;
  return cfg;
}

// Crash 2: LOGOUT on an idle line evicts the device while the paired line's LOGOUT, read by the
// stint's pump on a forwarding thread, is on its way to the control thread. A race: stressed over
// rounds with both orders of the two LOGOUTs.
TEST(Hostile, LogoutsOnTwoLinesOfOneInstanceDuringAStint) {
  relay_env env(transport::plaintext, threaded_config());
  env.run(
      [&]() -> awaitable<void> {
        auto bob = co_await raw_client::connect(env.endpoint);
        co_await bob.login("bob", password_of("bob"));
        const auto payload = bytes_of("through the forwarding thread");
        for (int round = 0; round < 24; ++round) {
          auto idle = co_await raw_client::connect(env.endpoint);
          co_await idle.login("alice", password_of("alice"), 25'000, false);
          auto paired = co_await raw_client::connect(env.endpoint);
          const auto ok = co_await paired.ticket_login(idle, false);
          CO_ASSERT_TRUE(std::holds_alternative<p::login_ok>(ok));
          co_await pair_raw(paired, bob);
          const auto stints = env.counters().offloads;
          co_await paired.send_data(payload);
          co_await bob.expect_data();
          co_await bob.send_data(payload);
          co_await paired.expect_data();
          CO_WAIT_UNTIL(env.counters().offloads > stints, 5s);
          const p::logout logout;
          if (round % 2 == 0) {
            co_await paired.send(logout);
            co_await idle.send(logout);
          } else {
            co_await idle.send(logout);
            co_await paired.send(logout);
          }
          co_await bob.expect_terminate(err::peer_logged_out);
          const p::release release;
          co_await bob.send(release);
          co_await bob.expect<p::released>();
          co_await idle.expect_logged_out_or_closed(err::ok);
          co_await paired.expect_logged_out_or_closed(err::ok);
        }
        co_await bob.expect_alive(1);
        co_await expect_relay_serves(env, 2);
      },
      90s);
}

// Rate limits hold under concurrency: 40 wrong passwords for one user from one address, all in
// flight at once, run at most the bucket's 10 password checks; the rest are RATE_LIMITED at once.
TEST(Hostile, ConcurrentWrongPasswordsRunNoMoreChecksThanTheBucketHolds) {
  relay_env env;  // default buckets: 10 failures per address and per user ID
  env.run([&]() -> awaitable<void> {
    auth_pool_blocker blocker(env.hub(), env.hub().config().auth_threads);
    CO_WAIT_UNTIL(blocker.held() == static_cast<int>(env.hub().config().auth_threads), 5s);
    std::vector<raw_client> clients;
    for (int i = 0; i < 40; ++i) {
      auto c = co_await raw_client::connect(env.endpoint);
      const auto m = login_message("carol", "wrong-" + std::to_string(i));
      co_await c.send(m);
      clients.push_back(std::move(c));
    }
    CO_WAIT_UNTIL(env.hub().admission().checks_in_progress() == 10, 5s);
    // Those beyond the bucket were refused without waiting for the queued checks.
    for (int i = 10; i < 40; ++i) co_await clients[i].expect_fail(err::rate_limited);
    blocker.release();
    for (int i = 0; i < 10; ++i) co_await clients[i].expect_fail(err::bad_credentials);
    EXPECT_EQ(env.counters().password_checks, 10u);
    EXPECT_EQ(env.counters().failed_logins, 10u);
  });
}

// Password checks queue auth_threads at a time; a device that logged in from its address before
// goes ahead of a spray of guesses from other addresses (each guess a new user ID, so no bucket
// stops them).
TEST(Hostile, AKnownDeviceGoesAheadOfASprayOfGuesses) {
  const auto second = other_loopback(2);
  const auto third = other_loopback(3);
  if (!second || !third) GTEST_SKIP() << "cannot bind 127.0.0.2/3 on this host";
  relay_env env;
  env.run([&]() -> awaitable<void> {
    {
      auto once = co_await raw_client::connect(env.endpoint);
      co_await once.login("alice", password_of("alice"), 25'000, false);
    }
    auth_pool_blocker blocker(env.hub(), env.hub().config().auth_threads);
    CO_WAIT_UNTIL(blocker.held() == static_cast<int>(env.hub().config().auth_threads), 5s);
    std::vector<raw_client> spray;
    for (int i = 0; i < 20; ++i) {
      auto c = co_await raw_client::connect(env.endpoint, i % 2 ? *second : *third);
      const auto m = login_message("ghost" + std::to_string(i), "guess");
      co_await c.send(m);
      spray.push_back(std::move(c));
    }
    CO_WAIT_UNTIL(env.hub().admission().checks_in_progress() == 20, 5s);
    auto alice = co_await raw_client::connect(env.endpoint);
    const auto m = login_message("alice", password_of("alice"), 25'000, false);
    co_await alice.send(m);
    CO_WAIT_UNTIL(env.hub().admission().checks_in_progress() == 21, 5s);
    blocker.release();
    co_await alice.expect<p::login_ok>(10s);
    // In arrival order she would come after all 20; she comes after the two guesses already
    // running and those checked beside hers (and those whose answers the relay handled before
    // this coroutine read hers).
    EXPECT_LT(env.counters().failed_logins, 10u);
    for (auto& c : spray) co_await c.expect_fail(err::bad_credentials, 20s);
    EXPECT_EQ(env.counters().failed_logins, 20u);
  });
}

// A right password gives its token back: a device that keeps logging in never runs out.
TEST(Hostile, RightPasswordsDoNotSpendTheBucket) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    for (int i = 0; i < 15; ++i) {
      auto c = co_await raw_client::connect(env.endpoint);
      co_await c.login("alice", password_of("alice"));
    }
    EXPECT_EQ(env.counters().password_logins, 15u);
  });
}

// A ticket that does not verify is no guessed password: it spends nothing from the buckets.
TEST(Hostile, BadTicketsDoNotSpendTheBucket) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    for (int i = 0; i < 15; ++i) {
      auto c = co_await raw_client::connect(env.endpoint);
      p::login m = login_message("alice", std::string(p::ticket_size, 'x'));
      m.auth = p::auth_method::ticket;
      co_await c.send(m);
      co_await c.expect_fail(err::bad_credentials);
    }
    EXPECT_EQ(env.counters().failed_ticket_logins, 15u);
    auto alice = co_await raw_client::connect(env.endpoint);
    co_await alice.login("alice", password_of("alice"));
  });
}

// A line whose login deadline passed while its password was being checked is not admitted, and
// so does not evict the device's current answering instance either.
TEST(Hostile, LoginCheckedAfterItsLineTimedOutIsNotAdmitted) {
  auto cfg = test_config();
  cfg.login_timeout = 400ms;
  relay_env env(transport::plaintext, cfg);
  env.run([&]() -> awaitable<void> {
    auto bob = co_await raw_client::connect(env.endpoint);
    co_await bob.login("bob", password_of("bob"));
    auth_pool_blocker blocker(env.hub(), env.hub().config().auth_threads);
    CO_WAIT_UNTIL(blocker.held() == static_cast<int>(env.hub().config().auth_threads), 5s);
    auto late = co_await raw_client::connect(env.endpoint);
    const auto m = login_message("bob", password_of("bob"));
    co_await late.send(m);
    co_await late.expect_logged_out_or_closed(err::login_timeout, 3s);
    blocker.release();
    CO_WAIT_UNTIL(env.hub().admission().checks_in_progress() == 0, 5s);
    co_await bob.expect_alive(3);  // not LOGGED-OUT(DUPLICATE_LOGIN)
    EXPECT_EQ(env.hub().lines_of("bob"), 1u);
  });
}

// ACCEPT or REJECT naming a session other than the one ringing (an earlier call, a guess) is
// ignored: the ringing call goes on and is answered as usual.
TEST(Hostile, AnswersNamingAnotherSessionAreIgnored) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto bob = co_await raw_client::connect(env.endpoint);
    co_await bob.login("bob", password_of("bob"));
    auto alice = co_await raw_client::connect(env.endpoint);
    co_await alice.login("alice", password_of("alice"));
    const p::demand d("bob", "echo");
    co_await alice.send(d);
    const auto in = co_await bob.expect<p::incoming>();
    p::accept wrong_accept;
    wrong_accept.session = in.session + 100;
    co_await bob.send(wrong_accept);
    const p::reject wrong_reject(in.session + 101, err::rejected, "not this one");
    co_await bob.send(wrong_reject);
    co_await bob.expect_alive(11);    // nothing came back for either
    co_await alice.expect_alive(12);  // no CONNECTED, no FAIL: still calling
    EXPECT_EQ(env.counters().sessions_paired, 0u);
    p::accept right;
    right.session = in.session;
    co_await bob.send(right);
    const auto c = co_await alice.expect<p::connected>();
    EXPECT_EQ(c.session, in.session);
  });
}

// A target's line rings for at most ring_timeout, well before the demand deadline.
TEST(Hostile, AnUnansweredRingEndsAtTheRingTimeout) {
  auto cfg = test_config();
  cfg.demand_timeout = 20s;
  cfg.ring_timeout = 300ms;
  relay_env env(transport::plaintext, cfg);
  env.run([&]() -> awaitable<void> {
    auto bob = co_await raw_client::connect(env.endpoint);
    co_await bob.login("bob", password_of("bob"));
    auto alice = co_await raw_client::connect(env.endpoint);
    co_await alice.login("alice", password_of("alice"));
    const p::demand d("bob", "echo");
    co_await alice.send(d);
    co_await bob.expect<p::incoming>();
    co_await alice.expect_fail(err::no_answer, 3s);
    co_await bob.expect_terminate(err::no_answer, 3s);
  });
}

// One caller holding a target's lines (calls accepted and left idle) cannot lock others out: it
// gets at most caller_line_share of the target's max_lines, and another caller still gets through.
TEST(Hostile, OneCallerCannotHoldAllOfATargetsLines) {
  relay_env env;
  env.users->set_max_lines("bob", 4);  // a caller may hold 3
  env.run([&]() -> awaitable<void> {
    auto bob = env.make_agent("bob");
    bob->set_incoming(test_services(), echo_handler());
    co_await start_and_settle(bob, 2);
    std::vector<raw_client> held;
    for (int i = 0; i < 3; ++i) {
      auto c = co_await raw_client::connect(env.endpoint);
      co_await c.login("alice", password_of("alice"), 25'000, false);
      const p::demand d("bob", "echo");
      co_await c.send(d);
      co_await c.expect<p::connected>();
      held.push_back(std::move(c));
    }
    CO_WAIT_UNTIL(env.hub().lines_of("bob") == 4, 5s);  // bob's agent opened a fourth line
    auto greedy = co_await raw_client::connect(env.endpoint);
    co_await greedy.login("alice", password_of("alice"), 25'000, false);
    const p::demand d("bob", "echo");
    co_await greedy.send(d);
    const auto refused = co_await greedy.expect_fail(err::target_busy);
    EXPECT_NE(refused.message.find("3 of bob's lines"), std::string::npos) << refused.message;
    EXPECT_EQ(env.counters().caller_share_refusals, 1u);
    auto carol = env.make_agent("carol");
    co_await start_and_settle(carol, 2);
    const auto call = co_await try_call(carol, "bob", "echo");
    EXPECT_EQ(call.code, err::ok) << call.message;
  });
}

// A PEERS? flood is paced per line (4 at once, then 4 a second) while others are served at once.
TEST(Hostile, APeersFloodIsPacedAndOthersAreServed) {
  relay_env env;
  env.run([&]() -> awaitable<void> {
    auto mallory = co_await raw_client::connect(env.endpoint);
    co_await mallory.login("alice", password_of("alice"), 25'000, false);
    std::vector<std::uint8_t> flood;
    for (int i = 0; i < 12; ++i) {
      const auto f = p::encode(p::peers_request{});
      flood.insert(flood.end(), f.begin(), f.end());
    }
    const auto start = std::chrono::steady_clock::now();
    co_await mallory.send_bytes(flood);
    co_await expect_relay_serves(env, 5);  // while the flood waits for its pacing
    for (int i = 0; i < 12; ++i) co_await mallory.expect<p::peers>(5s);
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_GE(took, 8 * 250ms - 20ms) << "12 answers: 4 at once, then one per 250 ms";
    EXPECT_EQ(env.counters().peers_paced, 8u);
  });
}

// Connections that have not logged in are capped per address and in all; at the global cap the
// busiest address gives up its oldest waiting connection, so one address cannot lock out others.
TEST(Hostile, WaitingConnectionsAreCappedPerAddressAndInAll) {
  const auto second = other_loopback(2);
  const auto third = other_loopback(3);
  if (!second || !third) GTEST_SKIP() << "cannot bind 127.0.0.2/3 on this host";
  auto cfg = test_config();
  cfg.max_waiting_per_address = 3;
  cfg.max_waiting = 5;
  relay_env env(transport::plaintext, cfg);
  const auto local = asio::ip::make_address("127.0.0.1");
  env.run([&]() -> awaitable<void> {
    std::vector<raw_client> first;
    for (int i = 0; i < 3; ++i) first.push_back(co_await raw_client::connect(env.endpoint, local));
    CO_WAIT_UNTIL(env.hub().admission().waiting() == 3, 5s);
    auto refused = co_await raw_client::connect(env.endpoint, local);
    co_await refused.expect_closed();
    EXPECT_EQ(env.counters().refused_connections, 1u);
    std::vector<raw_client> others;
    for (int i = 0; i < 2; ++i)
      others.push_back(co_await raw_client::connect(env.endpoint, *second));
    CO_WAIT_UNTIL(env.hub().admission().waiting() == 5, 5s);
    // Full: 127.0.0.1 holds the most, so its oldest waiting connection makes room.
    auto newcomer = co_await raw_client::connect(env.endpoint, *third);
    co_await first[0].expect_logged_out_or_closed(err::busy);
    EXPECT_EQ(env.counters().evicted_waiting, 1u);
    co_await newcomer.login("alice", password_of("alice"));
    co_await newcomer.expect_alive(4);
    // Logged-in lines do not count: the address has room again.
    EXPECT_EQ(env.hub().admission().waiting_from("127.0.0.3"), 0u);
    co_await first[1].login("bob", password_of("bob"));
    auto again = co_await raw_client::connect(env.endpoint, local);
    co_await again.login("carol", password_of("carol"));
  });
}

}  // namespace
}  // namespace switchboard::test
