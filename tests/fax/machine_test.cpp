// The fax machine end to end in one process: a relay on 127.0.0.1:0, two fax machines (agents
// with fax_receiver and a queue_worker each on its own spool), one io_context. Jobs relayed from
// alice to bob, an offline receiver, an allow-list refusal, a job resumed after a killed worker,
// and a "fax" service that answers with garbage.
#include "fax/machine.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fax/document.hpp"
#include "fax/inbox.hpp"
#include "fax/queue.hpp"
#include "fax_test_util.hpp"
#include "relay/harness.hpp"

namespace switchboard::fax {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
namespace rt = ::switchboard::test;
using rt::relay_env;

// One software fax machine: an agent for `user`, its spool, its queue and its worker.
struct machine {
  machine(relay_env& env, const std::string& user, asio::thread_pool& pool,
          std::chrono::milliseconds call_timeout = 60s, bool ecm = true) {
    opts.spool = fs::path(spool_dir.path());
    opts.ident = "+1 555 " + user;
    opts.call_timeout = call_timeout;
    opts.ecm = ecm;
    a = env.make_agent(user);
    rx = std::make_shared<receiver>(opts, pool);
    a->set_incoming(rt::test_services(), rx->handler());
    queue = std::make_shared<job_queue>(opts.spool / "queue.db");
  }
  void start_worker(relay_env& env) {
    worker = std::make_shared<queue_worker>(a, queue, opts);
    auto w = worker;
    asio::co_spawn(
        env.io, [w]() -> awaitable<void> { co_await w->run(); }, asio::detached);
  }
  void stop_worker() {
    if (worker) worker->stop();
    worker.reset();
  }
  std::int64_t submit(const std::string& to, const fs::path& tiff, int pages, int max_tries = 3,
                      std::int64_t retry_interval_s = 1) {
    job_request r;
    r.to = to;
    r.document = tiff;
    r.pages_total = pages;
    r.max_tries = max_tries;
    r.retry_interval_s = retry_interval_s;
    const auto id = queue->submit(r, unix_now());
    if (worker) worker->wake();
    return id;
  }
  job get(std::int64_t id) { return queue->get(id).value(); }
  std::string log() const {
    const auto p = opts.spool / "log" / "xferfax.log";
    return fs::exists(p) ? test::read_file(p.string()) : std::string();
  }

  test::temp_dir spool_dir;
  machine_options opts;
  std::shared_ptr<agent::agent> a;
  std::shared_ptr<receiver> rx;
  std::shared_ptr<job_queue> queue;
  std::shared_ptr<queue_worker> worker;
};

bool finished(job_state s) {
  return s == job_state::done || s == job_state::failed || s == job_state::cancelled;
}

class Machine : public ::testing::Test {
 protected:
  ~Machine() override {
    for (auto* m : machines_) m->stop_worker();
  }

  machine& make_machine(const std::string& user, std::chrono::milliseconds timeout = 60s,
                        bool ecm = true) {
    owned_.push_back(std::make_unique<machine>(env_, user, pool_, timeout, ecm));
    machines_.push_back(owned_.back().get());
    return *owned_.back();
  }

  // A TIFF-F of `pages` distinct pages.
  std::string make_document(int pages, resolution res = resolution::fine) {
    const std::string stem = "doc" + std::to_string(pages) + (res == resolution::fine ? "f" : "s");
    const std::string pdf = docs_ / (stem + ".pdf");
    const std::string tif = docs_ / (stem + ".tif");
    test::write_pdf(pdf, pages);
    EXPECT_EQ(to_tiff_f(pdf, tif, res), pages);
    return tif;
  }

  // Checks bob's single inbox entry against pages [first, first + count) of `source`. A sender
  // ending in ':' matches as a prefix (a raw T.38 peer is named by its address and port).
  static void expect_inbox(const machine& rx, const std::string& sender, const std::string& source,
                           int first, int count) {
    const auto entries = list_inbox(rx.opts.spool);
    ASSERT_EQ(entries.size(), 1u);
    const auto& e = entries.front();
    if (sender.ends_with(':')) {
      EXPECT_TRUE(e.sender.starts_with(sender)) << e.sender;
    } else {
      EXPECT_EQ(e.sender, sender);
    }
    EXPECT_EQ(e.pages, count);
    const fs::path dir = rx.opts.spool / "inbox" / e.id;
    const std::string tif = (dir / "fax.tif").string();
    ASSERT_TRUE(fs::exists(tif));
    EXPECT_EQ(tiff_page_count(tif), count);
    for (int i = 0; i < count && i < tiff_page_count(tif); ++i) {
      EXPECT_TRUE(same_pixels(decode_tiff_page(tif, i), decode_tiff_page(source, first + i)))
          << "received page " << i + 1 << " differs from source page " << first + i + 1;
    }
    EXPECT_TRUE(fs::exists(dir / "fax.pdf"));
    EXPECT_TRUE(fs::exists(dir / "page1.png"));
  }

  void send_and_check(int pages, bool ecm = true, resolution res = resolution::fine) {
    const std::string doc = make_document(pages, res);
    auto& alice = make_machine("alice", 60s, ecm);
    auto& bob = make_machine("bob", 60s, ecm);
    std::int64_t id = 0;
    env_.run(
        [&]() -> awaitable<void> {
          co_await rt::start_and_settle(alice.a, 1);
          co_await rt::start_and_settle(bob.a, 1);
          alice.start_worker(env_);
          id = alice.submit("bob", doc, pages);
          CO_WAIT_UNTIL(finished(alice.get(id).state), 120s);
          // The receiver commits its inbox entry after the call (rendering on the pool).
          CO_WAIT_UNTIL(list_inbox(bob.opts.spool).size() == 1 &&
                            bob.log().find("RECV\t") != std::string::npos,
                        30s);
        },
        180s);
    const job j = alice.get(id);
    EXPECT_EQ(j.state, job_state::done) << j.last_error;
    EXPECT_EQ(j.pages_confirmed, pages);
    EXPECT_EQ(j.tries, 1);
    expect_inbox(bob, "alice", doc, 0, pages);
    const auto entry = list_inbox(bob.opts.spool).front();
    EXPECT_EQ(entry.ecm, ecm);
    EXPECT_EQ(entry.coding, ecm ? "MMR" : "MR");
    EXPECT_EQ(entry.resolution, res == resolution::fine ? "fine" : "standard");
    EXPECT_NE(alice.log().find("SEND\t" + std::to_string(id) + "\tbob\t"), std::string::npos)
        << alice.log();
    EXPECT_NE(bob.log().find("RECV\t"), std::string::npos) << bob.log();
    EXPECT_NE(bob.log().find("\talice\t"), std::string::npos) << bob.log();
  }

  asio::thread_pool pool_{1};  // destroyed after the relay environment
  relay_env env_;
  test::temp_dir docs_;
  std::vector<std::unique_ptr<machine>> owned_;
  std::vector<machine*> machines_;
};

TEST_F(Machine, OnePageJobIsRelayedIntoTheInbox) {
  send_and_check(1);
}

TEST_F(Machine, TenPageJobIsRelayedIntoTheInbox) {
  send_and_check(10);
}

TEST_F(Machine, TenPageJobWithoutEcmAtStandardResolution) {
  send_and_check(10, /*ecm=*/false, resolution::standard);
}

TEST_F(Machine, OnePageJobWithoutEcmAtFineResolution) {
  send_and_check(1, /*ecm=*/false, resolution::fine);
}

TEST_F(Machine, OnePageJobWithEcmAtStandardResolution) {
  send_and_check(1, /*ecm=*/true, resolution::standard);
}

TEST_F(Machine, OfflineReceiverSleepsThenCompletesWhenOnline) {
  const std::string doc = make_document(1);
  auto& alice = make_machine("alice");
  auto& bob = make_machine("bob");
  std::int64_t id = 0;
  env_.run(
      [&]() -> awaitable<void> {
        co_await rt::start_and_settle(alice.a, 1);
        alice.start_worker(env_);
        id = alice.submit("bob", doc, 1, /*max_tries=*/5, /*retry_interval_s=*/1);
        CO_WAIT_UNTIL(alice.get(id).state == job_state::sleeping, 10s);
        // At least one try failed (a sleeping spell can be ~0 s long: next_try is whole seconds,
        // so a busy machine may already be on its second try here; each one fails the same way).
        const job first = alice.get(id);
        CO_ASSERT_TRUE(first.tries >= 1);
        EXPECT_NE(first.last_error.find("TARGET_OFFLINE"), std::string::npos) << first.last_error;
        co_await rt::start_and_settle(bob.a, 1);
        CO_WAIT_UNTIL(finished(alice.get(id).state), 60s);
        CO_WAIT_UNTIL(list_inbox(bob.opts.spool).size() == 1, 30s);
      },
      120s);
  const job j = alice.get(id);
  EXPECT_EQ(j.state, job_state::done) << j.last_error;
  EXPECT_GE(j.tries, 2);
  EXPECT_EQ(j.pages_confirmed, 1);
  expect_inbox(bob, "alice", doc, 0, 1);
}

TEST_F(Machine, ReceiverNotAllowingSenderFailsJobAtOnce) {
  const std::string doc = make_document(1);
  env_.users->set_allow_list("bob", {"carol"});
  auto& alice = make_machine("alice");
  auto& bob = make_machine("bob");
  std::int64_t id = 0;
  env_.run(
      [&]() -> awaitable<void> {
        co_await rt::start_and_settle(alice.a, 1);
        co_await rt::start_and_settle(bob.a, 1);
        alice.start_worker(env_);
        id = alice.submit("bob", doc, 1, /*max_tries=*/5, /*retry_interval_s=*/1);
        CO_WAIT_UNTIL(
            alice.get(id).state != job_state::pending && alice.get(id).state != job_state::running,
            10s);
      },
      30s);
  const job j = alice.get(id);
  EXPECT_EQ(j.state, job_state::failed);
  EXPECT_NE(j.last_error.find("NOT_ALLOWED"), std::string::npos) << j.last_error;
  EXPECT_EQ(j.tries, 1);
  EXPECT_TRUE(list_inbox(bob.opts.spool).empty());
}

TEST_F(Machine, JobLeftRunningByKilledWorkerResumesAtFirstUnconfirmedPage) {
  const std::string doc = make_document(10);
  auto& alice = make_machine("alice");
  auto& bob = make_machine("bob");
  // What a daemon killed after three confirmed pages leaves in its queue.
  const auto id = alice.submit("bob", doc, 10, /*max_tries=*/3, /*retry_interval_s=*/1);
  {
    const auto taken = alice.queue->take_due(unix_now());
    ASSERT_TRUE(taken);
    alice.queue->page_confirmed(id, 3, unix_now());
    ASSERT_EQ(alice.get(id).state, job_state::running);
    // The daemon's queue connection goes away with the process; the file stays.
    alice.queue.reset();
    alice.queue = std::make_shared<job_queue>(alice.opts.spool / "queue.db");
  }
  env_.run(
      [&]() -> awaitable<void> {
        co_await rt::start_and_settle(alice.a, 1);
        co_await rt::start_and_settle(bob.a, 1);
        alice.start_worker(env_);
        CO_WAIT_UNTIL(finished(alice.get(id).state), 120s);
        CO_WAIT_UNTIL(list_inbox(bob.opts.spool).size() == 1, 30s);
      },
      180s);
  const job j = alice.get(id);
  EXPECT_EQ(j.state, job_state::done) << j.last_error;
  EXPECT_EQ(j.pages_confirmed, 10);
  expect_inbox(bob, "alice", doc, 3, 7);
}

// A "fax" service that answers with random bytes instead of T.38.
awaitable<void> garbage(agent::session s) {
  const auto junk = rt::random_bytes(256 * 1024, 42);
  try {
    co_await s.write(asio::buffer(junk));
    std::vector<std::uint8_t> buf(64 * 1024);
    while (co_await s.read_some(asio::buffer(buf)) > 0) {
    }
  } catch (const std::exception&) {
  }
  co_await s.close();
}

TEST_F(Machine, GarbageInsteadOfT38EndsTheTryWithAnError) {
  const std::string doc = make_document(1);
  auto& alice = make_machine("alice", 20s);
  auto carol = env_.make_agent("carol");
  carol->set_incoming(rt::test_services(), [](agent::incoming_call c) -> awaitable<agent::answer> {
    if (c.service != fax_service)
      co_return agent::answer::reject(protocol::error_code::unknown_service, "no");
    agent::answer a;
    a.serve = &garbage;
    co_return a;
  });
  std::int64_t id = 0;
  env_.run(
      [&]() -> awaitable<void> {
        co_await rt::start_and_settle(alice.a, 1);
        co_await rt::start_and_settle(carol, 1);
        alice.start_worker(env_);
        id = alice.submit("carol", doc, 1, /*max_tries=*/2, /*retry_interval_s=*/1);
        CO_WAIT_UNTIL(alice.get(id).tries >= 1 && (alice.get(id).state == job_state::sleeping ||
                                                   alice.get(id).state == job_state::failed),
                      60s);
      },
      90s);
  const job j = alice.get(id);
  EXPECT_TRUE(j.state == job_state::sleeping || j.state == job_state::failed) << to_string(j.state);
  EXPECT_FALSE(j.last_error.empty());
  EXPECT_EQ(j.pages_confirmed, 0);
}

// A receiver whose first call fails after its third page ("paper jam"), then works.
// `pages_confirmed` reads the sender's count; the second call records it before any page of the
// retry is sent (the first call has ended by then, so it holds exactly what the first call
// confirmed). Polling the job for its short "sleeping" spell instead missed it: next_try is in
// whole seconds.
struct jamming_receiver {
  std::string dir;
  int calls = 0;
  std::vector<fax_result> results;
  std::function<int()> pages_confirmed;
  int confirmed_before_retry = -1;
};

awaitable<void> receive_with_jam(agent::session s, std::shared_ptr<jamming_receiver> st) {
  const int call = ++st->calls;
  call_options o;
  o.direction = role::receive;
  o.rx_file = st->dir + "/rx" + std::to_string(call) + ".tif";
  o.local_ident = "+1 555 carol";
  if (call == 1) {
    o.on_page = [](const page_event& e) {
      if (e.index == 2) throw std::runtime_error("paper jam");
    };
  } else if (call == 2) {
    st->confirmed_before_retry = st->pages_confirmed();
  }
  byte_stream_ref<agent::session> stream(s);
  const fax_result r = co_await run_t38_call(stream, o);
  st->results.push_back(r);
  co_await s.close();
}

TEST_F(Machine, FailureMidDocumentRetriesFromTheFirstUnconfirmedPage) {
  const std::string doc = make_document(10);
  auto& alice = make_machine("alice", 20s);
  test::temp_dir rx_dir;
  auto st = std::make_shared<jamming_receiver>();
  st->dir = rx_dir.path();
  auto carol = env_.make_agent("carol");
  carol->set_incoming(rt::test_services(), [st](agent::incoming_call) -> awaitable<agent::answer> {
    agent::answer a;
    a.serve = [st](agent::session s) { return receive_with_jam(std::move(s), st); };
    co_return a;
  });
  std::int64_t id = 0;
  st->pages_confirmed = [&alice, &id] { return alice.get(id).pages_confirmed; };
  env_.run(
      [&]() -> awaitable<void> {
        co_await rt::start_and_settle(alice.a, 1);
        co_await rt::start_and_settle(carol, 1);
        alice.start_worker(env_);
        id = alice.submit("carol", doc, 10, /*max_tries=*/3, /*retry_interval_s=*/1);
        CO_WAIT_UNTIL(finished(alice.get(id).state), 60s);
      },
      150s);
  const int confirmed_after_first = st->confirmed_before_retry;
  const job j = alice.get(id);
  EXPECT_EQ(j.state, job_state::done) << j.last_error;
  EXPECT_EQ(j.tries, 2);
  EXPECT_EQ(j.pages_confirmed, 10);
  // The jam came at the end of the third page: at most three were confirmed, and the retry sent
  // exactly the rest.
  ASSERT_GE(confirmed_after_first, 1);
  ASSERT_LE(confirmed_after_first, 3);
  ASSERT_EQ(st->results.size(), 2u);
  EXPECT_FALSE(st->results[0].success);
  EXPECT_TRUE(st->results[1].success) << st->results[1].error;
  const std::string second = st->dir + "/rx2.tif";
  const int rest = 10 - confirmed_after_first;
  ASSERT_EQ(tiff_page_count(second), rest);
  for (int i = 0; i < rest; ++i) {
    EXPECT_TRUE(
        same_pixels(decode_tiff_page(second, i), decode_tiff_page(doc, confirmed_after_first + i)))
        << "retry page " << i + 1;
  }
}

// --- busy receiver, raw T.38/TCP peers outside the relay ----------------------------------

// A listener for raw T.38/TCP calls of machine `m` on 127.0.0.1:0; returns its endpoint.
tcp::endpoint listen_raw(relay_env& env, machine& m, std::shared_ptr<tcp::acceptor>& acceptor) {
  acceptor =
      std::make_shared<tcp::acceptor>(env.io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  asio::co_spawn(
      env.io, [rx = m.rx, acc = acceptor] { return rx->listen(*acc); }, asio::detached);
  return acceptor->local_endpoint();
}

TEST_F(Machine, BusyReceiverMakesTheJobSleepThenItIsSent) {
  const std::string doc = make_document(1);
  auto& alice = make_machine("alice");
  auto& bob = make_machine("bob", 5s);  // max_calls 1 (the default)
  std::shared_ptr<tcp::acceptor> acceptor;
  const auto raw_ep = listen_raw(env_, bob, acceptor);
  std::int64_t id = 0;
  env_.run(
      [&]() -> awaitable<void> {
        co_await rt::start_and_settle(alice.a, 1);
        co_await rt::start_and_settle(bob.a, 1);
        // A raw T.38 caller that says nothing holds bob's only call.
        tcp::socket holder(env_.io);
        co_await holder.async_connect(raw_ep, use_awaitable);
        CO_WAIT_UNTIL(bob.rx->active_calls() == 1, 10s);
        alice.start_worker(env_);
        id = alice.submit("bob", doc, 1, /*max_tries=*/5, /*retry_interval_s=*/1);
        CO_WAIT_UNTIL(alice.get(id).state == job_state::sleeping, 10s);
        const job first = alice.get(id);
        EXPECT_NE(first.last_error.find("TARGET_BUSY"), std::string::npos) << first.last_error;
        EXPECT_NE(first.last_error.find("on another call"), std::string::npos) << first.last_error;
        holder.close();  // bob's held call ends, the retry gets through
        CO_WAIT_UNTIL(finished(alice.get(id).state), 60s);
        CO_WAIT_UNTIL(list_inbox(bob.opts.spool).size() == 1, 30s);
      },
      120s);
  acceptor->close();
  const job j = alice.get(id);
  EXPECT_EQ(j.state, job_state::done) << j.last_error;
  EXPECT_GE(j.tries, 2);
  expect_inbox(bob, "alice", doc, 0, 1);
}

// A standard T.38-over-TCP terminal (spandsp over a plain socket, no relay, no agent) with the
// identity "+1 555 0100" sends `doc` to `ep`, then closes the socket (after DCN, or at once if
// `on_page` threw to break the call off).
awaitable<fax_result> send_raw(tcp::endpoint ep, const std::string& doc,
                               std::function<void(const page_event&)> on_page = {}) {
  tcp::socket socket(co_await asio::this_coro::executor);
  co_await socket.async_connect(ep, use_awaitable);
  tcp_byte_stream stream(socket);
  call_options o;
  o.direction = role::send;
  o.tx_file = doc;
  o.local_ident = "+1 555 0100";
  o.on_page = std::move(on_page);
  const fax_result r = co_await run_t38_call(stream, o);
  socket.close();
  co_return r;
}

// A standard T.38-over-TCP terminal calls the fax machine's raw listener.
TEST_F(Machine, RawT38CallerIsReceivedIntoTheInbox) {
  const std::string doc = make_document(3);
  auto& bob = make_machine("bob");
  std::shared_ptr<tcp::acceptor> acceptor;
  const auto raw_ep = listen_raw(env_, bob, acceptor);
  fax_result sent;
  env_.run(
      [&]() -> awaitable<void> {
        sent = co_await send_raw(raw_ep, doc);
        CO_WAIT_UNTIL(list_inbox(bob.opts.spool).size() == 1, 30s);
      },
      60s);
  acceptor->close();
  EXPECT_TRUE(sent.success) << sent.error;
  EXPECT_EQ(sent.pages_confirmed, 3);
  expect_inbox(bob, "t38:127.0.0.1:", doc, 0, 3);
  EXPECT_EQ(list_inbox(bob.opts.spool).front().remote_ident, "+1 555 0100");
}

// A call that breaks off mid-document keeps the pages the receiver confirmed: the sender counts
// them as delivered and a retry resumes after them, so dropping them would lose them for good.
TEST_F(Machine, CallBrokenOffMidDocumentKeepsTheConfirmedPagesInTheInbox) {
  const std::string doc = make_document(5);
  auto& bob = make_machine("bob");
  std::shared_ptr<tcp::acceptor> acceptor;
  const auto raw_ep = listen_raw(env_, bob, acceptor);
  fax_result sent;
  env_.run(
      [&]() -> awaitable<void> {
        const std::function<void(const page_event&)> power_cut = [](const page_event& e) {
          if (e.index == 1 && e.confirmed) throw std::runtime_error("sender lost power");
        };
        sent = co_await send_raw(raw_ep, doc, power_cut);  // no DCN: the line just drops
        CO_WAIT_UNTIL(list_inbox(bob.opts.spool).size() == 1, 30s);
      },
      60s);
  acceptor->close();
  EXPECT_FALSE(sent.success);
  EXPECT_EQ(sent.pages_confirmed, 2);
  expect_inbox(bob, "t38:127.0.0.1:", doc, 0, 2);
  const auto entries = list_inbox(bob.opts.spool);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_TRUE(entries.front().result.starts_with("partial")) << entries.front().result;
}

// The queue places a job to "t38:HOST:PORT": a standard T.38-over-TCP terminal answers there.
TEST_F(Machine, JobToRawT38AddressIsSentOutsideTheRelay) {
  const std::string doc = make_document(2);
  auto& alice = make_machine("alice");
  tcp::acceptor acceptor(env_.io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  const auto port = acceptor.local_endpoint().port();
  test::temp_dir out;
  const std::string rx_file = (fs::path(out.path()) / "rx.tif").string();
  fax_result received;
  std::int64_t id = 0;
  env_.run(
      [&]() -> awaitable<void> {
        co_await rt::start_and_settle(alice.a, 1);
        alice.start_worker(env_);
        id = alice.submit("t38:127.0.0.1:" + std::to_string(port), doc, 2);
        tcp::socket socket = co_await acceptor.async_accept(use_awaitable);
        tcp_byte_stream stream(socket);
        call_options o;
        o.direction = role::receive;
        o.rx_file = rx_file;
        o.local_ident = "+1 555 0199";
        received = co_await run_t38_call(stream, o);
        CO_WAIT_UNTIL(finished(alice.get(id).state), 30s);
      },
      60s);
  const job j = alice.get(id);
  EXPECT_EQ(j.state, job_state::done) << j.last_error;
  EXPECT_EQ(j.pages_confirmed, 2);
  EXPECT_TRUE(received.success) << received.error;
  EXPECT_EQ(received.remote_ident, "+1 555 alice");
  ASSERT_EQ(tiff_page_count(rx_file), 2);
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(same_pixels(decode_tiff_page(rx_file, i), decode_tiff_page(doc, i))) << i;
  }
  EXPECT_NE(alice.log().find("SEND\t" + std::to_string(id) + "\tt38:127.0.0.1:"), std::string::npos)
      << alice.log();
}

TEST_F(Machine, UnreachableRawT38AddressSleepsAndNamesTheError) {
  const std::string doc = make_document(1);
  auto& alice = make_machine("alice");
  std::uint16_t closed_port = 0;
  {
    tcp::acceptor probe(env_.io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    closed_port = probe.local_endpoint().port();
  }
  std::int64_t id = 0;
  env_.run(
      [&]() -> awaitable<void> {
        co_await rt::start_and_settle(alice.a, 1);
        alice.start_worker(env_);
        id = alice.submit("t38:127.0.0.1:" + std::to_string(closed_port), doc, 1, 3, 60);
        CO_WAIT_UNTIL(alice.get(id).state == job_state::sleeping, 10s);
      },
      30s);
  const job j = alice.get(id);
  EXPECT_EQ(j.tries, 1);
  EXPECT_NE(j.last_error.find("cannot connect to t38:127.0.0.1:"), std::string::npos)
      << j.last_error;
}

TEST(RawT38Address, ParsesOnlyTheT38Form) {
  EXPECT_FALSE(raw_t38_address("bob"));
  const auto a = raw_t38_address("t38:127.0.0.1:4000");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 4000);
  EXPECT_EQ(raw_t38_address("t38:[::1]:9")->host, "::1");
  EXPECT_THROW(raw_t38_address("t38:nohost"), std::invalid_argument);
}

}  // namespace
}  // namespace switchboard::fax
