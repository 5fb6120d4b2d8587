#include "relay/tickets.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <system_error>

namespace switchboard::relay {

namespace p = protocol;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view ticket_label = "switchboard-ticket-1";

[[noreturn]] void fail_file(const fs::path& file, const std::string& what) {
  throw std::runtime_error("ticket key " + file.string() + ": " + what + ": " +
                           std::error_code(errno, std::system_category()).message());
}

void put_u64(std::uint8_t* out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<std::uint8_t>(v);
    v >>= 8;
  }
}

std::array<std::uint8_t, 32> mac_of(const ticket_key& key, std::string_view user,
                                    const p::instance_id& instance, std::uint64_t expires_at,
                                    std::uint64_t credential) {
  // The MAC input, as docs/protocol.md §6 lays it out; user IDs are at most 64 bytes.
  std::array<std::uint8_t, ticket_label.size() + 1 + 255 + p::instance_size + 16> in{};
  std::size_t n = 0;
  std::memcpy(in.data(), ticket_label.data(), ticket_label.size());
  n += ticket_label.size();
  const std::size_t user_len = std::min<std::size_t>(user.size(), 255);
  in[n++] = static_cast<std::uint8_t>(user_len);
  std::memcpy(in.data() + n, user.data(), user_len);
  n += user_len;
  std::memcpy(in.data() + n, instance.data(), instance.size());
  n += instance.size();
  put_u64(in.data() + n, expires_at);
  n += 8;
  put_u64(in.data() + n, credential);
  n += 8;
  std::array<std::uint8_t, 32> mac{};
  unsigned int mac_len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), in.data(), n, mac.data(),
            &mac_len) ||
      mac_len != mac.size()) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return mac;
}

// Reads exactly a key's 32 bytes from `file`; nullopt if it does not exist.
std::optional<ticket_key> read_key(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    fail_file(file, "cannot open");
  }
  ticket_key key{};
  std::array<std::uint8_t, 33> buf{};  // one more: a longer file is refused
  std::size_t got = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buf.data() + got, buf.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int saved = errno;
      ::close(fd);
      errno = saved;
      fail_file(file, "cannot read");
    }
    if (n == 0 || (got += static_cast<std::size_t>(n)) == buf.size()) break;
  }
  ::close(fd);
  if (got != key.size()) {
    throw std::runtime_error("ticket key " + file.string() + " must hold exactly 32 bytes, has " +
                             (got > key.size() ? "more" : std::to_string(got)) +
                             " (delete it to make a new one; every ticket then dies)");
  }
  std::memcpy(key.data(), buf.data(), key.size());
  return key;
}

// Writes `key` under a temporary name with mode 0600 and links it to `file`: the file appears
// whole or not at all. False if `file` existed already (another relay made it first).
bool publish_key(const fs::path& file, const ticket_key& key) {
  fs::path temp = file;
  temp += ".tmp-" + std::to_string(::getpid());
  ::unlink(temp.c_str());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) fail_file(temp, "cannot create");
  const bool written =
      ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!written) {
    ::unlink(temp.c_str());
    errno = saved;
    fail_file(temp, "cannot write");
  }
  const bool linked = ::link(temp.c_str(), file.c_str()) == 0;
  const int link_errno = errno;
  ::unlink(temp.c_str());
  if (!linked && link_errno != EEXIST) {
    errno = link_errno;
    fail_file(file, "cannot create");
  }
  return linked;
}

}  // namespace

ticket_key random_ticket_key() {
  ticket_key key{};
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
  return key;
}

ticket_key load_or_make_ticket_key(const fs::path& data_dir) {
  const fs::path file = data_dir / "ticket.key";
  if (auto key = read_key(file)) return *key;
  const ticket_key fresh = random_ticket_key();
  if (publish_key(file, fresh)) return fresh;
  if (auto key = read_key(file)) return *key;  // another relay made it meanwhile
  throw std::runtime_error("ticket key " + file.string() + " vanished while it was made");
}

std::uint64_t unix_now() {
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::system_clock::now().time_since_epoch());
  return static_cast<std::uint64_t>(std::max<std::int64_t>(0, s.count()));
}

p::ticket make_ticket(const ticket_key& key, std::string_view user, const p::instance_id& instance,
                      std::uint64_t expires_at, std::uint64_t credential) {
  p::ticket t{};
  put_u64(t.data(), expires_at);
  const auto mac = mac_of(key, user, instance, expires_at, credential);
  std::memcpy(t.data() + 8, mac.data(), mac.size());
  return t;
}

std::uint64_t ticket_expiry(const p::ticket& t) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | t[static_cast<std::size_t>(i)];
  return v;
}

bool ticket_matches(const ticket_key& key, const p::ticket& t, std::string_view user,
                    const p::instance_id& instance, std::uint64_t credential) {
  const auto mac = mac_of(key, user, instance, ticket_expiry(t), credential);
  return CRYPTO_memcmp(mac.data(), t.data() + 8, mac.size()) == 0;
}

// --- revoked instances ----------------------------------------------------------------------

std::string revoked_instances::key_of(std::string_view user, const p::instance_id& instance) {
  std::string k(user);
  k.push_back('\n');
  k.append(reinterpret_cast<const char*>(instance.data()), instance.size());
  return k;
}

void revoked_instances::revoke(std::string_view user, const p::instance_id& instance,
                               std::uint64_t until) {
  prune(unix_now());
  auto [it, fresh] = until_.try_emplace(key_of(user, instance), until);
  if (!fresh) {
    it->second = std::max(it->second, until);
    return;
  }
  order_.push_back(it->first);
  while (until_.size() > most_) {
    until_.erase(order_.front());
    order_.pop_front();
  }
}

bool revoked_instances::revoked(std::string_view user, const p::instance_id& instance,
                                std::uint64_t now) {
  prune(now);
  auto it = until_.find(key_of(user, instance));
  return it != until_.end() && now < it->second;
}

void revoked_instances::prune(std::uint64_t now) {
  while (!order_.empty()) {
    auto it = until_.find(order_.front());
    if (it != until_.end() && now < it->second) return;
    if (it != until_.end()) until_.erase(it);
    order_.pop_front();
  }
}

}  // namespace switchboard::relay
