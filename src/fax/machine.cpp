#include "fax/machine.hpp"

#include <spdlog/spdlog.h>

#include <fstream>
#include <random>

#include "fax/byte_stream.hpp"
#include "fax/error.hpp"
#include "fax/inbox.hpp"
#include "fax/t38_call.hpp"
#include "net/offload.hpp"

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
                            : r.error);
}

// Receives one call into the inbox. Owns the session until the call ends.
awaitable<void> receive(agent::session s, machine_options opts, asio::thread_pool& pool) {
  const std::string sender = s.peer();
  fs::create_directories(opts.spool / "tmp");
  std::random_device rd;
  const fs::path rx = opts.spool / "tmp" / ("rx-" + std::to_string(rd()) + ".tif");
  call_options options;
  options.direction = role::receive;
  options.rx_file = rx.string();
  options.local_ident = opts.ident;
  options.ecm = opts.ecm;
  options.t38_version = opts.t38_version;
  options.timeout = opts.call_timeout;
  const std::int64_t started = unix_now();
  byte_stream_ref<agent::session> stream(s);
  const fax_result r = co_await run_t38_call(stream, options);
  co_await s.close();
  if (!r.success || r.next_page == 0) {
    spdlog::warn("fax from {}: not received: {}", sender, r.error);
    account(opts.spool, "RECV\t-\t" + sender + '\t' + accounting_fields(r));
    std::error_code ignored;
    fs::remove(rx, ignored);
    co_return;
  }
  inbox_meta meta;
  meta.sender = sender;
  meta.remote_ident = r.remote_ident;
  meta.pages = r.next_page;
  meta.resolution = r.resolution;
  meta.coding = r.coding;
  meta.ecm = r.ecm;
  meta.bit_rate = r.bit_rate;
  meta.started = started;
  meta.finished = unix_now();
  meta.result = r.completion_text;
  meta.bytes = r.bytes_received;
  auto commit = [spool = opts.spool, rx, meta] { return commit_received(spool, rx, meta); };
  const fs::path entry = co_await net::offload(pool, std::move(commit));
  spdlog::info("fax from {} ({} pages) received into {}", sender, meta.pages, entry.string());
  account(opts.spool,
          "RECV\t" + entry.filename().string() + '\t' + sender + '\t' + accounting_fields(r));
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

agent::incoming_handler fax_receiver(machine_options opts, asio::thread_pool& render_pool) {
  return [opts = std::move(opts),
          &render_pool](agent::incoming_call call) -> awaitable<agent::answer> {
    if (call.service != fax_service) {
      co_return agent::answer::reject(
          error_code::unknown_service,
          "this fax machine only answers '" + std::string(fax_service) + "'");
    }
    agent::answer a;
    a.serve = [opts, &render_pool](agent::session s) {
      return receive(std::move(s), opts, render_pool);
    };
    co_return a;
  };
}

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
  spdlog::info("job {}: try {} of {} to {} ({} of {} pages confirmed)", j.id, j.tries, j.max_tries,
               j.to, j.pages_confirmed, j.pages_total);
  agent::session s;
  try {
    s = co_await agent_->call(j.to, fax_service);
  } catch (const agent::call_error& e) {
    if (retryable(e.code())) {
      const auto st = queue_->retry_later(j.id, e.what(), unix_now());
      spdlog::info("job {}: {} -> {}", j.id, e.what(), to_string(st));
    } else {
      queue_->mark_failed(j.id, e.what(), unix_now());
      spdlog::warn("job {}: failed: {}", j.id, e.what());
    }
    co_return;
  }
  call_options options;
  options.direction = role::send;
  options.tx_file = j.document.string();
  options.start_page = j.pages_confirmed;
  options.local_ident = opts_.ident;
  options.ecm = opts_.ecm;
  options.t38_version = opts_.t38_version;
  options.timeout = opts_.call_timeout;
  auto queue = queue_;
  const std::int64_t id = j.id;
  options.on_page = [queue, id](const page_event& e) {
    if (e.confirmed) queue->page_confirmed(id, e.index + 1, unix_now());
  };
  byte_stream_ref<agent::session> stream(s);
  fax_result r;
  std::string refused;  // run_t38_call throws before any I/O if the job cannot be sent at all
  try {
    r = co_await run_t38_call(stream, options);
  } catch (const fax_error& e) {
    refused = e.what();
  }
  co_await s.close();
  if (!refused.empty()) {
    queue_->mark_failed(j.id, refused, unix_now());
    spdlog::warn("job {}: failed: {}", j.id, refused);
    co_return;
  }
  account(opts_.spool, "SEND\t" + std::to_string(j.id) + '\t' + j.to + '\t' + accounting_fields(r));
  if (r.success && r.next_page >= j.pages_total) {
    queue_->mark_done(j.id, unix_now());
    spdlog::info("job {}: done, {} pages confirmed", j.id, j.pages_total);
    co_return;
  }
  const std::string why = r.error.empty() ? r.completion_text : r.error;
  const auto st = queue_->retry_later(j.id, why, unix_now());
  spdlog::info("job {}: {} ({} of {} pages confirmed) -> {}", j.id, why, r.next_page, j.pages_total,
               to_string(st));
}

}  // namespace switchboard::fax
