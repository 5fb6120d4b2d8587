// What both command-line programs share: log set-up and reading secrets (never from argv).
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "net/asio.hpp"

namespace switchboard::cli {

// "trace".."off"; throws std::invalid_argument for anything else. Logs go to stderr.
void setup_logging(const std::string& level);

// Raises the soft limit of open files to the hard limit (each line is one descriptor; a relay
// with thousands of lines needs more than the usual 1024). Returns the new soft limit.
unsigned long raise_fd_limit();

// Makes `signals` (on `io`) call on_stop(signal) at the first SIGINT or SIGTERM and on_reload() at
// every SIGHUP that comes before it; SIGHUP never kills the program (one that has nothing to
// reload says so in on_reload). An exception from on_reload is logged. After the stop, further
// signals are held by the set and ignored.
void handle_signals(std::optional<asio::signal_set>& signals, asio::io_context& io,
                    std::function<void(int)> on_stop, std::function<void()> on_reload);

// After io.run() returned: drops the program's signal handlers and ignores SIGINT, SIGTERM and
// SIGHUP from then on. Destroying an asio::signal_set restores the default actions, so a second
// SIGTERM arriving while the program exits (`timeout` signals its child, then its process group)
// would kill it with status 143; the signals are blocked across the switch, so none slips
// through.
void retire_signal_handlers(std::optional<asio::signal_set>& signals);

// The password, from the first that is given: --password-file, $SWITCHBOARD_PASSWORD, stdin
// (when allow_stdin; a prompt without echo on a terminal). Trailing CR/LF are removed.
// Throws std::runtime_error if none is available or it is empty.
std::string read_password(const std::filesystem::path& password_file, bool allow_stdin,
                          const std::string& prompt = "Password: ");

}  // namespace switchboard::cli
