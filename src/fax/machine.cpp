#include "fax/machine.hpp"

#include <spdlog/spdlog.h>

#include <fstream>
#include <random>

#include "fax/byte_stream.hpp"
#include "fax/error.hpp"
#include "fax/inbox.hpp"
#include "fax/t38_call.hpp"
#include "net/offload.hpp"
#include "protocol/printable.hpp"

namespace switchboard::fax {

namespace fs = std::filesystem;
using protocol::error_code;

void account(const fs::path& spool, const std::string& line) {
  fs::create_directories(spool / "log");
  std::ofstream out(spool / "log" / "xferfax.log", std::ios::app);
  out << unix_now() << '\t' << line << '\n';
}

namespace {

std::string accounting_fields(const fax_result& r) {
  return std::to_string(r.pages_confirmed) + '\t' +
         std::to_string(static_cast<double>(r.duration.count()) / 1000.0) + '\t' +
         std::to_string(r.bytes_sent + r.bytes_received) + '\t' + std::to_string(r.bit_rate) +
         '\t' + (r.coding.empty() ? "-" : r.coding) + '\t' +
         (r.success         ? std::string("OK")
          : r.error.empty() ? r.completion_text
                            : protocol::printable(r.error));
}

// Counts one running incoming call for as long as it lives (the count is checked against
// max_calls when the next call arrives).
class call_slot {
 public:
  explicit call_slot(int& active) : active_(active) { ++active_; }
  ~call_slot() { --active_; }
  call_slot(const call_slot&) = delete;
  call_slot& operator=(const call_slot&) = delete;

 private:
  int& active_;
};

// A fresh temporary name in SPOOL/tmp for a fax being received.
fs::path temp_rx_file(const fs::path& spool) {
  fs::create_directories(spool / "tmp");
  std::random_device rd;
  return spool / "tmp" / ("rx-" + std::to_string(rd()) + "-" + std::to_string(rd()) + ".tif");
}

// Calls that the queue should try again later; everything else fails the job at once.
bool retryable(error_code c) {
  switch (c) {
    case error_code::target_offline:
    case error_code::target_busy:
    case error_code::no_answer:
    case error_code::busy:
    case error_code::peer_lost:
    case error_code::relay_shutdown:
    case error_code::service_unavailable:
      return true;
    default:
      return false;
  }
}

}  // namespace

std::optional<net::host_port> raw_t38_address(const std::string& to) {
  constexpr std::string_view prefix = "t38:";
  if (!to.starts_with(prefix)) return std::nullopt;
  return net::parse_host_port(std::string_view(to).substr(prefix.size()));
}

// --- receiving ------------------------------------------------------------------------------

receiver::receiver(machine_options opts, asio::thread_pool& render_pool)
    : opts_(std::move(opts)), render_pool_(render_pool) {}

agent::incoming_handler receiver::handler() {
  return [self = shared_from_this()](agent::incoming_call call) -> awaitable<agent::answer> {
    if (call.service != fax_service) {
      co_return agent::answer::reject(
          error_code::unknown_service,
          "this fax machine only answers '" + std::string(fax_service) + "'");
    }
    if (self->active_ >= self->opts_.max_calls) {
      spdlog::info("fax call from {} refused: busy ({} calls)", call.caller, self->active_);
      co_return agent::answer::reject(error_code::target_busy,
                                      "the fax machine is on another call");
    }
    agent::answer a;
    a.serve = [self](agent::session s) { return self->receive_relayed(std::move(s)); };
    co_return a;
  };
}

awaitable<void> receiver::listen(tcp::acceptor& acceptor) {
  auto self = shared_from_this();
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(use_awaitable));
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      spdlog::warn("T.38 listener: accept: {}", ec.message());
      continue;
    }
    boost::system::error_code ignored;
    const std::string sender = "t38:" + net::to_string(socket.remote_endpoint(ignored));
    if (active_ >= opts_.max_calls) {
      spdlog::info("fax call from {} refused: busy ({} calls)", sender, active_);
      continue;  // the socket closes here: a raw T.38 peer has no other way to hear "busy"
    }
    asio::co_spawn(
        acceptor.get_executor(),
        [self, s = std::make_shared<tcp::socket>(std::move(socket)), sender]() {
          return self->receive_raw(std::move(*s), sender);
        },
        asio::detached);
  }
}

awaitable<void> receiver::receive_relayed(agent::session s) {
  auto self = shared_from_this();
  const std::string sender = s.peer();
  const std::int64_t started = unix_now();
  const fs::path rx = temp_rx_file(opts_.spool);
  fax_result r;
  {
    call_slot slot(active_);
    byte_stream_ref<agent::session> stream(s);
    r = co_await run_call(stream, rx);
  }
  co_await s.close();
  co_await commit(r, sender, rx, started);
}

awaitable<void> receiver::receive_raw(tcp::socket socket, std::string sender) {
  auto self = shared_from_this();
  const std::int64_t started = unix_now();
  const fs::path rx = temp_rx_file(opts_.spool);
  fax_result r;
  {
    call_slot slot(active_);
    tcp_byte_stream stream(socket);
    r = co_await run_call(stream, rx);
  }
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
  co_await commit(r, sender, rx, started);
}

awaitable<fax_result> receiver::run_call(byte_stream& stream, const fs::path& rx) {
  call_options options;
  options.direction = role::receive;
  options.rx_file = rx.string();
  options.local_ident = opts_.ident;
  options.ecm = opts_.ecm;
  options.paced = opts_.paced;
  options.t38_version = opts_.t38_version;
  options.timeout = opts_.call_timeout;
  co_return co_await run_t38_call(stream, options);
}

awaitable<void> receiver::commit(const fax_result& r, const std::string& sender, const fs::path& rx,
                                 std::int64_t started) {
  // A failed call still delivered the pages it confirmed (MCF): the sender counts them as sent
  // and resumes after them, so they go to the inbox as a partial fax, never to the bin.
  const bool partial = !r.success && r.next_page > 0 && r.total_pages > 0;
  if ((!r.success && !partial) || r.next_page == 0) {
    spdlog::warn("fax from {}: not received: {}", sender, protocol::printable(r.error));
    account(opts_.spool, "RECV\t-\t" + sender + '\t' + accounting_fields(r));
    std::error_code ignored;
    fs::remove(rx, ignored);
    co_return;
  }
  inbox_meta meta;
  meta.sender = sender;
  meta.remote_ident = r.remote_ident;
  meta.pages = partial ? r.total_pages : r.next_page;  // partial: what the file holds
  meta.resolution = r.resolution;
  meta.coding = r.coding;
  meta.ecm = r.ecm;
  meta.bit_rate = r.bit_rate;
  meta.started = started;
  meta.finished = unix_now();
  meta.result = partial ? "partial: " + std::to_string(r.next_page) + " pages confirmed, then " +
                              r.error + " (" + r.completion_text + ")"
                        : r.completion_text;
  meta.bytes = r.bytes_received;
  auto work = [spool = opts_.spool, rx, meta] { return commit_received(spool, rx, meta); };
  const fs::path entry = co_await net::offload(render_pool_, std::move(work));
  if (partial) {
    spdlog::warn("fax from {}: call broke off after {} confirmed pages ({}); kept in {}", sender,
                 r.next_page, protocol::printable(r.error), entry.string());
  } else {
    spdlog::info("fax from {} ({} pages) received into {}", sender, meta.pages, entry.string());
  }
  account(opts_.spool,
          "RECV\t" + entry.filename().string() + '\t' + sender + '\t' + accounting_fields(r));
}

agent::incoming_handler fax_receiver(machine_options opts, asio::thread_pool& render_pool) {
  return std::make_shared<receiver>(std::move(opts), render_pool)->handler();
}

// --- sending --------------------------------------------------------------------------------

queue_worker::queue_worker(std::shared_ptr<agent::agent> a, std::shared_ptr<job_queue> q,
                           machine_options opts)
    : agent_(std::move(a)),
      queue_(std::move(q)),
      opts_(std::move(opts)),
      wake_(agent_->executor()) {}

void queue_worker::stop() {
  running_ = false;
  wake_.set();
}

awaitable<void> queue_worker::run() {
  auto self = shared_from_this();
  if (const int n = queue_->recover(unix_now())) spdlog::info("resuming {} interrupted job(s)", n);
  while (running_) {
    if (auto j = queue_->take_due(unix_now())) {
      co_await attempt(std::move(*j));
      continue;
    }
    // Nothing due: sleep until the next job is due, or at most a second (send writes the queue
    // file from another process; polling it once a second is how it reaches us).
    const auto due = queue_->next_due_in(unix_now()).value_or(1);
    const auto wait = std::chrono::seconds(std::clamp<std::int64_t>(due, 0, 1));
    co_await wake_.wait_until(std::chrono::steady_clock::now() + wait);
  }
}

awaitable<void> queue_worker::attempt(job j) {
  std::optional<net::host_port> raw;
  try {
    raw = raw_t38_address(j.to);
  } catch (const std::invalid_argument& e) {
    retry_or_fail(j, e.what(), false);  // `send` checks it; only a hand-edited queue gets here
    co_return;
  }
  if (j.pages_confirmed >= j.pages_total) {
    // The receiver confirmed every page in an earlier try whose end was not recorded: calling
    // again would send nothing (or a duplicate).
    queue_->mark_done(j.id, unix_now());
    spdlog::info("job {}: done, all {} pages were confirmed in an earlier try", j.id,
                 j.pages_total);
    co_return;
  }
  if (raw) co_return co_await attempt_raw(std::move(j), *raw);
  spdlog::info("job {}: try {} of {} to {} ({} of {} pages confirmed)", j.id, j.tries, j.max_tries,
               j.to, j.pages_confirmed, j.pages_total);
  agent::session s;
  try {
    s = co_await agent_->call(j.to, fax_service);
  } catch (const agent::call_error& e) {
    retry_or_fail(j, e.what(), retryable(e.code()));
    co_return;
  }
  byte_stream_ref<agent::session> stream(s);
  auto [r, refused] = co_await send_call(j, stream);
  co_await s.close();
  finish(j, r, refused);
}

awaitable<void> queue_worker::attempt_raw(job j, net::host_port to) {
  spdlog::info("job {}: try {} of {} to raw T.38 peer {}:{} ({} of {} pages confirmed)", j.id,
               j.tries, j.max_tries, to.host, to.port, j.pages_confirmed, j.pages_total);
  auto ex = co_await asio::this_coro::executor;
  tcp::socket socket(ex);
  boost::system::error_code ec;
  {
    using namespace asio::experimental::awaitable_operators;
    tcp::resolver resolver(ex);
    asio::steady_timer limit(ex, std::chrono::seconds(10));
    const std::string port = std::to_string(to.port);  // named locals: GCC 12 coroutine rule
    auto resolved =
        co_await (resolver.async_resolve(to.host, port, asio::as_tuple(use_awaitable)) ||
                  limit.async_wait(use_awaitable));
    if (resolved.index() == 1) {
      ec = asio::error::timed_out;
    } else if (std::get<0>(std::get<0>(resolved))) {
      ec = std::get<0>(std::get<0>(resolved));
    } else {
      limit.expires_after(std::chrono::seconds(10));
      auto connected = co_await (asio::async_connect(socket, std::get<1>(std::get<0>(resolved)),
                                                     asio::as_tuple(use_awaitable)) ||
                                 limit.async_wait(use_awaitable));
      ec = connected.index() == 1 ? asio::error::timed_out : std::get<0>(std::get<0>(connected));
    }
  }
  if (ec) {
    // An unreachable address is like an offline receiver: the queue tries again later.
    retry_or_fail(j, "cannot connect to " + j.to + ": " + ec.message(), true);
    co_return;
  }
  tcp_byte_stream stream(socket);
  auto [r, refused] = co_await send_call(j, stream);
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
  finish(j, r, refused);
}

awaitable<std::pair<fax_result, std::string>> queue_worker::send_call(const job& j,
                                                                      byte_stream& stream) {
  call_options options;
  options.direction = role::send;
  options.tx_file = j.document.string();
  options.start_page = j.pages_confirmed;
  options.local_ident = opts_.ident;
  options.ecm = opts_.ecm;
  options.paced = opts_.paced;
  options.t38_version = opts_.t38_version;
  options.timeout = opts_.call_timeout;
  auto queue = queue_;
  const std::int64_t id = j.id;
  options.on_page = [queue, id](const page_event& e) {
    if (e.confirmed) queue->page_confirmed(id, e.index + 1, unix_now());
  };
  std::pair<fax_result, std::string> out;
  try {
    out.first = co_await run_t38_call(stream, options);
  } catch (const fax_error& e) {
    out.second = e.what();  // thrown before any I/O: the job cannot be sent at all
  }
  co_return out;
}

void queue_worker::retry_or_fail(const job& j, const std::string& why, bool retry) {
  if (retry) {
    const auto st = queue_->retry_later(j.id, why, unix_now());
    spdlog::info("job {}: {} -> {}", j.id, protocol::printable(why), to_string(st));
  } else {
    queue_->mark_failed(j.id, why, unix_now());
    spdlog::warn("job {}: failed: {}", j.id, protocol::printable(why));
  }
}

void queue_worker::finish(const job& j, const fax_result& r, const std::string& refused) {
  if (!refused.empty()) {
    retry_or_fail(j, refused, false);
    return;
  }
  account(opts_.spool, "SEND\t" + std::to_string(j.id) + '\t' + j.to + '\t' + accounting_fields(r));
  if (r.success && r.next_page >= j.pages_total) {
    queue_->mark_done(j.id, unix_now());
    spdlog::info("job {}: done, {} pages confirmed", j.id, j.pages_total);
    return;
  }
  const std::string why = r.error.empty() ? r.completion_text : r.error;
  const auto st = queue_->retry_later(j.id, why, unix_now());
  spdlog::info("job {}: {} ({} of {} pages confirmed) -> {}", j.id, protocol::printable(why),
               r.next_page, j.pages_total, to_string(st));
}

}  // namespace switchboard::fax
