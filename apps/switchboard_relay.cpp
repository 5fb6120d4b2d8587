// switchboard-relay: the relay server and its user store's management commands.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <fstream>
#include <iostream>
#include <optional>

#include "cli_common.hpp"
#include "net/endpoint.hpp"
#include "net/tls.hpp"
#include "relay/config_file.hpp"
#include "relay/server.hpp"
#include "store/user_store.hpp"

using namespace switchboard;

namespace {

namespace fs = std::filesystem;

fs::path db_path(const fs::path& data_dir) {
  return data_dir / "users.db";
}

// Only serve and user add make a data directory, database or certificate; every other command
// needs them to exist, so that a mistyped --data-dir leaves nothing behind.
std::runtime_error no_relay_data(const fs::path& data_dir, const std::string& missing) {
  return std::runtime_error("no relay data in " + data_dir.string() + " (no " + missing +
                            "; 'switchboard-relay serve' or 'user add' makes it)");
}

std::unique_ptr<store::user_store> open_existing_store(const fs::path& data_dir) {
  try {
    return store::open_sqlite_store(db_path(data_dir), store::hash_cost::interactive,
                                    store::open_mode::existing);
  } catch (const store::store_error& e) {
    if (e.which() == store::store_error::kind::not_found) throw no_relay_data(data_dir, "users.db");
    throw;
  }
}

// Warns about each of the data directory, users.db, relay.key and ticket.key that group or others
// may read or write: password hashes and the relay's keys are for the relay's user alone. Modes
// are left as they are (the operator's choice).
void warn_if_exposed(const fs::path& data_dir) {
  constexpr auto exposed = fs::perms::group_read | fs::perms::group_write | fs::perms::others_read |
                           fs::perms::others_write;
  for (const fs::path& p :
       {data_dir, db_path(data_dir), data_dir / "relay.key", data_dir / "ticket.key"}) {
    std::error_code ec;
    const auto st = fs::status(p, ec);
    if (ec || (st.permissions() & exposed) == fs::perms::none) continue;
    const bool dir = fs::is_directory(st);
    spdlog::warn("{} {} is open to group or others (mode {:o}); chmod {} it",
                 dir ? "data directory" : "file", p.string(),
                 static_cast<unsigned>(st.permissions() & fs::perms::mask), dir ? "700" : "600");
  }
}

net::server_identity identity_for(const relay::relay_config& c) {
  if (!c.cert_file.empty() || !c.key_file.empty()) {
    if (c.cert_file.empty() || c.key_file.empty()) {
      throw std::runtime_error("cert_file and key_file must be given together");
    }
    return {c.cert_file, c.key_file};
  }
  return net::ensure_self_signed(c.data_dir);
}

// The relay's settings as the command line makes them: the --config file (if any) under the
// options given. Read at start and again at every reload.
struct serve_flags {
  std::string config_file, data_dir, listen, forward_threads, log_level;  // empty: not given
  bool plaintext = false;

  relay::relay_config build() const {
    relay::relay_config cfg;
    cfg.forward_threads = relay::auto_forward_threads();
    if (!config_file.empty()) cfg = relay::load_relay_config(config_file, cfg);
    if (!data_dir.empty()) cfg.data_dir = data_dir;
    if (!listen.empty()) cfg.listen = listen;
    if (plaintext) cfg.plaintext = true;
    if (!forward_threads.empty()) {
      cfg.forward_threads = relay::parse_forward_threads(forward_threads, "--forward-threads");
    }
    if (!log_level.empty()) cfg.log_level = log_level;
    return cfg;
  }
};

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

// SIGHUP: reads the configuration file and the certificate again and applies what may change
// while running (relay::plan_reload); settings that need a restart are named and keep their
// value. Anything invalid leaves everything as it was.
class reloader {
 public:
  reloader(relay::server& srv, serve_flags flags, std::string fingerprint)
      : srv_(srv), flags_(std::move(flags)), fingerprint_(std::move(fingerprint)) {}

  void reload() {
    const std::string cert = srv_.uses_tls() ? "the certificate" : "";
    const std::string file = flags_.config_file.empty() ? "" : flags_.config_file;
    spdlog::info("SIGHUP: reloading {}{}{}", file, !file.empty() && !cert.empty() ? " and " : "",
                 file.empty() && cert.empty() ? "nothing (no --config file, plaintext)" : cert);
    try {
      apply(relay::plan_reload(srv_.state().config(), flags_.build()));
    } catch (const std::exception& e) {
      spdlog::error("reload failed, nothing changed: {}", e.what());
    }
  }

 private:
  void apply(relay::reload_plan plan) {
    net::ssl_ctx_ptr tls;
    std::string fingerprint;
    if (srv_.uses_tls()) {
      const auto id = identity_for(plan.next);
      tls = net::make_server_context(id);  // throws before anything changed
      fingerprint = net::fingerprint_of_cert_file(id.cert_file);
    }
    for (const auto& r : plan.refused) {
      spdlog::warn("reload: {} needs a restart; the running value is kept", r);
    }
    spdlog::set_level(spdlog::level::from_str(plan.next.log_level));
    srv_.state().reconfigure(plan.next);
    std::string cert = "plaintext";
    if (tls) {
      srv_.set_tls(std::move(tls));
      cert = fingerprint == fingerprint_
                 ? "certificate unchanged"
                 : "certificate fingerprint " + fingerprint_ + " -> " + fingerprint;
      fingerprint_ = fingerprint;
    }
    spdlog::info("reloaded: {}; {}",
                 plan.changed.empty() ? "no setting changed" : joined(plan.changed), cert);
  }

  relay::server& srv_;
  serve_flags flags_;
  std::string fingerprint_;  // of the certificate new handshakes use
};

int serve(const relay::relay_config& cfg, const serve_flags& flags, const std::string& port_file) {
  auto users = store::open_sqlite_store(db_path(cfg.data_dir));
  const auto ticket_key = relay::load_or_make_ticket_key(cfg.data_dir);  // made on the first start
  net::ssl_ctx_ptr tls;
  std::string fingerprint;
  if (!cfg.plaintext) {
    const auto id = identity_for(cfg);
    tls = net::make_server_context(id);
    fingerprint = net::fingerprint_of_cert_file(id.cert_file);
    spdlog::info("TLS certificate {} fingerprint {}", id.cert_file.string(), fingerprint);
  } else {
    spdlog::warn("plaintext mode: lines are not encrypted (asked for with --plaintext)");
  }
  warn_if_exposed(cfg.data_dir);
  spdlog::debug("open files limit: {}", cli::raise_fd_limit());
  asio::io_context io(1);
  relay::server srv(io, cfg, *users, std::move(tls), ticket_key);
  const auto ep = srv.listen(net::parse_endpoint(cfg.listen));
  srv.start();
  spdlog::info("relay listening on {} (data in {})", net::to_string(ep), cfg.data_dir.string());
  if (!port_file.empty()) std::ofstream(port_file) << ep.port() << '\n';
  reloader on_hup(srv, flags, fingerprint);
  std::optional<asio::signal_set> signals;
  cli::handle_signals(
      signals, io,
      [&](int sig) {
        spdlog::info("signal {}: draining", sig);
        srv.stop();
      },
      [&] { on_hup.reload(); });
  std::signal(SIGPIPE, SIG_IGN);
  io.run();
  cli::retire_signal_handlers(signals);
  const auto& c = srv.state().counters();
  spdlog::info("relay stopped: {} password logins, {} ticket logins, {} sessions",
               c.password_logins, c.ticket_logins, c.sessions_paired);
  return 0;
}

void print_user(const store::user_record& u) {
  std::string allow = u.settings.allow.empty() ? "*" : "";
  for (const auto& a : u.settings.allow) allow += (allow.empty() ? "" : ",") + a;
  std::cout << u.id << "\tmax_lines=" << u.settings.max_lines << "\tallow=" << allow << '\n';
}

// Allow-lists name user IDs, existing or not, so removing a user leaves other lists as they are
// (emptying a list would open it to anyone). Tell the operator which lists still name the ID: a
// user added later under it may call those users.
void warn_if_still_allowed(store::user_store& users, const std::string& uid) {
  std::string named_by;
  for (const auto& u : users.list_users()) {
    const auto& allow = u.settings.allow;
    if (std::find(allow.begin(), allow.end(), uid) == allow.end()) continue;
    named_by += (named_by.empty() ? "" : ", ") + u.id;
  }
  if (named_by.empty()) return;
  std::cerr << "note: '" << uid << "' is still named in the allow-list of " << named_by
            << "; a user added later as '" << uid << "' may call them (change them with "
            << "'switchboard-relay user allow')\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"switchboard-relay: relay for devices behind NAT and firewalls"};
  app.require_subcommand(1);
  serve_flags flags;
  std::string& data_dir = flags.data_dir;
  std::string log_level = "info";
  auto* log_level_opt =
      app.add_option("--log-level", log_level,
                     "trace, debug, info, warn, error, off (over the config file)")
          ->capture_default_str();

  auto* serve_cmd = app.add_subcommand("serve", "run the relay");
  std::string port_file;
  serve_cmd
      ->add_option("--config", flags.config_file, "TOML configuration file (SIGHUP reloads it)")
      ->check(CLI::ExistingFile);
  serve_cmd->add_option("--listen", flags.listen, "ADDR:PORT to listen on (default 0.0.0.0:7443)");
  serve_cmd->add_option("--data-dir", data_dir,
                        "user store and certificate, made if missing (default ./switchboard-data)");
  serve_cmd->add_flag("--plaintext", flags.plaintext, "no TLS (tests and benchmarks only)");
  serve_cmd->add_option("--port-file", port_file, "write the bound port here (for --listen ...:0)");
  serve_cmd->add_option("--forward-threads", flags.forward_threads,
                        "threads forwarding paired sessions: a number, or auto (one per core; the "
                        "default); 0 forwards on the control thread");

  auto* fp_cmd =
      app.add_subcommand("fingerprint", "print the relay certificate's SHA-256 fingerprint");
  fp_cmd->add_option("--data-dir", data_dir,
                     "data directory made by serve or user add (default ./switchboard-data)");

  auto* user_cmd = app.add_subcommand("user", "manage the user store");
  user_cmd->require_subcommand(1);
  user_cmd->add_option("--data-dir", data_dir,
                       "data directory; only 'user add' makes it (default ./switchboard-data)");
  std::string uid, password_file;
  std::vector<std::string> callers;
  bool any = false;
  int max_lines = 0;
  auto* add = user_cmd->add_subcommand(
      "add",
      "add a user (making the data directory, database and certificate if missing); the password "
      "is read from stdin");
  add->add_option("ID", uid, "user ID")->required();
  add->add_option("--password-file", password_file, "read the password from this file");
  auto* del = user_cmd->add_subcommand("del", "delete a user");
  del->add_option("ID", uid, "user ID")->required();
  auto* list = user_cmd->add_subcommand("list", "list users and their settings");
  auto* passwd = user_cmd->add_subcommand("passwd", "set a user's password (read from stdin)");
  passwd->add_option("ID", uid, "user ID")->required();
  passwd->add_option("--password-file", password_file, "read the password from this file");
  auto* allow = user_cmd->add_subcommand("allow", "set who may call a user (default: anyone)");
  allow->add_option("ID", uid, "user ID")->required();
  allow->add_option("CALLER", callers, "user IDs allowed to call ID");
  allow->add_flag("--any", any, "allow any logged-in user (clears the list)");
  auto* limit = user_cmd->add_subcommand("max-lines", "set how many lines a user may hold");
  limit->add_option("ID", uid, "user ID")->required();
  limit->add_option("N", max_lines, "lines (1-65535)")->required()->check(CLI::Range(1, 65535));

  // Options of a parent command may also follow its subcommands ("user add ID --data-dir D").
  for (auto* sub : {serve_cmd, fp_cmd, user_cmd, add, del, list, passwd, allow, limit})
    sub->fallthrough();
  CLI11_PARSE(app, argc, argv);
  try {
    cli::setup_logging(log_level);
    if (log_level_opt->count() > 0) flags.log_level = log_level;
    const relay::relay_config cfg = flags.build();
    spdlog::set_level(spdlog::level::from_str(cfg.log_level));

    if (*serve_cmd) return serve(cfg, flags, port_file);
    if (*fp_cmd) {
      const auto id = net::find_self_signed(cfg.data_dir);
      if (!id) throw no_relay_data(cfg.data_dir, "relay.crt");
      warn_if_exposed(cfg.data_dir);
      std::cout << net::fingerprint_of_cert_file(id->cert_file) << '\n';
      return 0;
    }
    if (*add) net::ensure_self_signed(cfg.data_dir);  // so that fingerprint works before serve
    auto users =
        *add ? store::open_sqlite_store(db_path(cfg.data_dir)) : open_existing_store(cfg.data_dir);
    warn_if_exposed(cfg.data_dir);
    if (*add) {
      users->add_user(uid, cli::read_password(password_file, true, "Password for " + uid + ": "));
      std::cout << "added " << uid << '\n';
    } else if (*del) {
      if (!users->remove_user(uid)) throw std::runtime_error("no user '" + uid + "'");
      std::cout << "deleted " << uid << '\n';
      warn_if_still_allowed(*users, uid);
    } else if (*list) {
      for (const auto& u : users->list_users()) print_user(u);
    } else if (*passwd) {
      users->set_password(
          uid, cli::read_password(password_file, true, "New password for " + uid + ": "));
      std::cout << "password changed for " << uid << '\n';
    } else if (*allow) {
      if (any && !callers.empty()) throw std::runtime_error("give callers or --any, not both");
      if (!any && callers.empty())
        throw std::runtime_error("give callers, or --any to allow anyone");
      users->set_allow_list(uid, callers);
      print_user(*users->find_user(uid));
    } else if (*limit) {
      users->set_max_lines(uid, static_cast<std::uint16_t>(max_lines));
      print_user(*users->find_user(uid));
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "switchboard-relay: " << e.what() << '\n';
    return 1;
  }
}
