#include "agent/session.hpp"

#include "agent/line.hpp"

namespace switchboard::agent {

session::session(std::shared_ptr<session_core> core) : core_(std::move(core)) {}

session& session::operator=(session&& other) noexcept {
  if (this != &other) {
    session old(std::move(*this));  // closes what this held
    core_ = std::move(other.core_);
  }
  return *this;
}

session::~session() {
  if (!core_ || core_->ended) return;
  auto line = core_->line;
  asio::co_spawn(
      line->owner_executor(),
      [line, core = core_]() -> awaitable<void> {
        co_await line->end_session(*core, protocol::error_code::ok, "session handle dropped");
      },
      asio::detached);
}

awaitable<std::size_t> session::read_some(asio::mutable_buffer buf) {
  auto core = core_;
  co_return co_await core->line->read_payload(*core, buf);
}

awaitable<void> session::write(asio::const_buffer buf) {
  auto core = core_;
  co_await core->line->write_data(*core, buf);
}

awaitable<void> session::shutdown_write() {
  auto core = core_;
  co_await core->line->send_eof(*core);
}

awaitable<void> session::close(protocol::error_code code, std::string message) {
  auto core = core_;
  if (!core) co_return;
  co_await core->line->end_session(*core, code, std::move(message));
}

bool session::zero_copy() const {
  return core_->line->plaintext();
}

awaitable<std::size_t> session::read_into(tcp::socket& sink, net::splice_pipe& pipe) {
  auto core = core_;
  co_return co_await core->line->splice_payload(*core, sink, pipe);
}

awaitable<std::size_t> session::write_from(tcp::socket& source, net::splice_pipe& pipe) {
  auto core = core_;
  co_return co_await core->line->splice_data(*core, source, pipe);
}

std::optional<termination> session::terminated() const {
  return core_->ended;
}
const std::string& session::peer() const {
  return core_->peer;
}
const std::string& session::service() const {
  return core_->service;
}
std::uint32_t session::id() const {
  return core_->id;
}

}  // namespace switchboard::agent
