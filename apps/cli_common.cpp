#include "cli_common.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <termios.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <stdexcept>

namespace switchboard::cli {

void setup_logging(const std::string& level) {
  const auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    throw std::invalid_argument("unknown log level '" + level +
                                "' (trace, debug, info, warn, error, critical, off)");
  }
  auto logger = spdlog::stderr_color_mt("switchboard");
  spdlog::set_default_logger(logger);
  spdlog::set_level(lvl);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
}

unsigned long raise_fd_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
  return static_cast<unsigned long>(lim.rlim_cur);
}

namespace {

struct signal_handlers {
  std::function<void(int)> on_stop;
  std::function<void()> on_reload;
};

void wait_for_signal(asio::signal_set& set, std::shared_ptr<signal_handlers> h) {
  set.async_wait([&set, h](const error_code& ec, int sig) {
    if (ec) return;
    if (sig != SIGHUP) {
      h->on_stop(sig);
      return;
    }
    try {
      h->on_reload();
    } catch (const std::exception& e) {
      spdlog::error("SIGHUP: {}", e.what());
    }
    wait_for_signal(set, h);
  });
}

}  // namespace

void handle_signals(std::optional<asio::signal_set>& signals, asio::io_context& io,
                    std::function<void(int)> on_stop, std::function<void()> on_reload) {
  signals.emplace(io, SIGINT, SIGTERM, SIGHUP);
  wait_for_signal(*signals,
                  std::make_shared<signal_handlers>(std::move(on_stop), std::move(on_reload)));
}

void retire_signal_handlers(std::optional<asio::signal_set>& signals) {
  sigset_t all;
  sigemptyset(&all);
  sigaddset(&all, SIGINT);
  sigaddset(&all, SIGTERM);
  sigaddset(&all, SIGHUP);
  sigset_t before;
  ::pthread_sigmask(SIG_BLOCK, &all, &before);
  signals.reset();
  std::signal(SIGINT, SIG_IGN);
  std::signal(SIGTERM, SIG_IGN);
  std::signal(SIGHUP, SIG_IGN);
  ::pthread_sigmask(SIG_SETMASK, &before, nullptr);  // one that came meanwhile is now ignored
}

namespace {
std::string strip_newline(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

std::string read_stdin_line(const std::string& prompt) {
  const bool tty = ::isatty(STDIN_FILENO);
  termios old{};
  if (tty) {
    std::cerr << prompt << std::flush;
    ::tcgetattr(STDIN_FILENO, &old);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string line;
  std::getline(std::cin, line);
  if (tty) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::cerr << '\n';
  }
  return strip_newline(line);
}
}  // namespace

std::string read_password(const std::filesystem::path& password_file, bool allow_stdin,
                          const std::string& prompt) {
  std::string pw;
  if (!password_file.empty()) {
    std::ifstream in(password_file);
    if (!in) throw std::runtime_error("cannot read password file " + password_file.string());
    std::getline(in, pw);
    pw = strip_newline(pw);
  } else if (const char* env = std::getenv("SWITCHBOARD_PASSWORD")) {
    pw = env;
  } else if (allow_stdin) {
    pw = read_stdin_line(prompt);
  } else {
    throw std::runtime_error("no password: use --password-file or SWITCHBOARD_PASSWORD");
  }
  if (pw.empty()) throw std::runtime_error("the password is empty");
  return pw;
}

}  // namespace switchboard::cli
