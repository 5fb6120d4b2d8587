#include "turn_client.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <stdexcept>

namespace switchboard::bench {

// STUN message codec (RFC 5389 §6, §15).
struct stun_attribute {
  std::uint16_t type;
  std::vector<std::uint8_t> value;
};

struct stun_message {
  std::uint16_t type = 0;
  std::array<std::uint8_t, 12> transaction{};
  std::vector<stun_attribute> attributes;

  const stun_attribute* find(std::uint16_t t) const;
  // ERROR-CODE as class*100+number, 0 if absent.
  int error_code() const;
};

namespace {

constexpr std::uint32_t magic_cookie = 0x2112A442;

// Methods (RFC 5766 §13, RFC 6062 §6.1) and the classes of their answers.
constexpr std::uint16_t allocate_request = 0x0003;
constexpr std::uint16_t create_permission_request = 0x0008;
constexpr std::uint16_t connect_request = 0x000A;
constexpr std::uint16_t connection_bind_request = 0x000B;
constexpr std::uint16_t success_bit = 0x0100;

// Attributes.
constexpr std::uint16_t attr_username = 0x0006;
constexpr std::uint16_t attr_message_integrity = 0x0008;
constexpr std::uint16_t attr_error_code = 0x0009;
constexpr std::uint16_t attr_xor_peer_address = 0x0012;
constexpr std::uint16_t attr_realm = 0x0014;
constexpr std::uint16_t attr_nonce = 0x0015;
constexpr std::uint16_t attr_requested_transport = 0x0019;
constexpr std::uint16_t attr_connection_id = 0x002A;

constexpr std::size_t header_size = 20;
constexpr std::size_t integrity_size = 20;  // HMAC-SHA1

void put16(std::vector<std::uint8_t>& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}

std::uint16_t get16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}

std::vector<std::uint8_t> bytes_of(const std::string& s) {
  return {s.begin(), s.end()};
}

std::string string_of(const stun_attribute* a) {
  return a ? std::string(a->value.begin(), a->value.end()) : std::string();
}

std::string md5_key(const std::string& user, const std::string& realm, const std::string& pw) {
  const std::string text = user + ":" + realm + ":" + pw;
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  if (EVP_Digest(text.data(), text.size(), md.data(), &len, EVP_md5(), nullptr) != 1) {
    throw std::runtime_error("MD5 failed");
  }
  return std::string(reinterpret_cast<const char*>(md.data()), len);
}

std::string method_name(std::uint16_t type) {
  switch (type & 0x3EEF) {
    case allocate_request:
      return "Allocate";
    case create_permission_request:
      return "CreatePermission";
    case connect_request:
      return "Connect";
    case connection_bind_request:
      return "ConnectionBind";
    default:
      return "method " + std::to_string(type);
  }
}

awaitable<stun_message> read_stun(tcp::socket& s) {
  std::array<std::uint8_t, header_size> head{};
  co_await asio::async_read(s, asio::buffer(head), use_awaitable);
  stun_message m;
  m.type = get16(head.data());
  const std::size_t len = get16(head.data() + 2);
  std::copy(head.begin() + 8, head.end(), m.transaction.begin());
  std::vector<std::uint8_t> body(len);
  if (len > 0) co_await asio::async_read(s, asio::buffer(body), use_awaitable);
  for (std::size_t at = 0; at + 4 <= body.size();) {
    const std::uint16_t type = get16(body.data() + at);
    const std::size_t alen = get16(body.data() + at + 2);
    if (at + 4 + alen > body.size()) throw std::runtime_error("TURN: truncated attribute");
    m.attributes.push_back({type, {body.begin() + at + 4, body.begin() + at + 4 + alen}});
    at += 4 + ((alen + 3) & ~std::size_t{3});
  }
  co_return m;
}

}  // namespace

const stun_attribute* stun_message::find(std::uint16_t t) const {
  for (const auto& a : attributes) {
    if (a.type == t) return &a;
  }
  return nullptr;
}

int stun_message::error_code() const {
  const stun_attribute* e = find(attr_error_code);
  if (!e || e->value.size() < 4) return 0;
  return (e->value[2] & 0x7) * 100 + e->value[3];
}

// Encodes `m`; with a non-empty `integrity_key` appends MESSAGE-INTEGRITY (HMAC-SHA1).
std::vector<std::uint8_t> encode_stun(const stun_message& m, const std::string& integrity_key) {
  std::vector<std::uint8_t> out;
  put16(out, m.type);
  put16(out, 0);  // length, set below
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<std::uint8_t>(magic_cookie >> shift));
  }
  out.insert(out.end(), m.transaction.begin(), m.transaction.end());
  for (const auto& a : m.attributes) {
    put16(out, a.type);
    put16(out, static_cast<std::uint16_t>(a.value.size()));
    out.insert(out.end(), a.value.begin(), a.value.end());
    out.resize((out.size() + 3) & ~std::size_t{3}, 0);
  }
  const auto set_length = [&out](std::size_t body) {
    out[2] = static_cast<std::uint8_t>(body >> 8);
    out[3] = static_cast<std::uint8_t>(body);
  };
  if (integrity_key.empty()) {
    set_length(out.size() - header_size);
    return out;
  }
  // The HMAC covers the message up to the attribute, with the length already counting it.
  set_length(out.size() - header_size + 4 + integrity_size);
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha1(), integrity_key.data(), static_cast<int>(integrity_key.size()), out.data(),
           out.size(), mac.data(), &mac_len) == nullptr ||
      mac_len != integrity_size) {
    throw std::runtime_error("HMAC-SHA1 failed");
  }
  put16(out, attr_message_integrity);
  put16(out, integrity_size);
  out.insert(out.end(), mac.begin(), mac.begin() + integrity_size);
  return out;
}

turn_client::turn_client(turn_options o, tcp::socket control)
    : opts_(std::move(o)), control_(std::move(control)) {}

std::vector<std::uint8_t> turn_client::xor_peer_address() const {
  if (!opts_.peer.address().is_v4()) throw std::invalid_argument("TURN peer must be IPv4");
  std::vector<std::uint8_t> v{0, 0x01};
  put16(v, static_cast<std::uint16_t>(opts_.peer.port() ^ (magic_cookie >> 16)));
  const std::uint32_t addr = opts_.peer.address().to_v4().to_uint() ^ magic_cookie;
  for (int shift = 24; shift >= 0; shift -= 8)
    v.push_back(static_cast<std::uint8_t>(addr >> shift));
  return v;
}

awaitable<stun_message> turn_client::transact(tcp::socket& s, stun_message m) {
  const std::size_t plain_attributes = m.attributes.size();
  for (int attempt = 0;; ++attempt) {
    m.attributes.resize(plain_attributes);
    if (!key_.empty()) {
      m.attributes.push_back({attr_username, bytes_of(opts_.user)});
      m.attributes.push_back({attr_realm, bytes_of(realm_)});
      m.attributes.push_back({attr_nonce, bytes_of(nonce_)});
    }
    if (RAND_bytes(m.transaction.data(), static_cast<int>(m.transaction.size())) != 1) {
      throw std::runtime_error("RAND_bytes failed");
    }
    const std::vector<std::uint8_t> wire = encode_stun(m, key_);
    co_await asio::async_write(s, asio::buffer(wire), use_awaitable);
    stun_message answer = co_await read_stun(s);
    if (answer.transaction != m.transaction)
      throw std::runtime_error("TURN: answer to another request");
    if (answer.type == (m.type | success_bit)) co_return answer;
    const int code = answer.error_code();
    // 401 Unauthorized: the first challenge; 438 Stale Nonce: a new nonce. Either: once more.
    if ((code == 401 || code == 438) && attempt == 0) {
      const std::string realm = string_of(answer.find(attr_realm));
      if (!realm.empty()) realm_ = realm;
      nonce_ = string_of(answer.find(attr_nonce));
      key_ = md5_key(opts_.user, realm_, opts_.password);
      continue;
    }
    const std::string error = string_of(answer.find(attr_error_code));
    throw std::runtime_error("TURN " + method_name(m.type) + " refused: " + std::to_string(code) +
                             (error.size() > 4 ? " " + error.substr(4) : std::string()));
  }
}

awaitable<std::unique_ptr<turn_client>> turn_client::allocate(turn_options o) {
  tcp::socket control(co_await asio::this_coro::executor);
  co_await control.async_connect(o.server, use_awaitable);
  control.set_option(tcp::no_delay(true));
  std::unique_ptr<turn_client> c(new turn_client(std::move(o), std::move(control)));
  stun_message alloc;
  alloc.type = allocate_request;
  alloc.attributes.push_back({attr_requested_transport, {6, 0, 0, 0}});  // TCP
  co_await c->transact(c->control_, std::move(alloc));
  stun_message permit;
  permit.type = create_permission_request;
  permit.attributes.push_back({attr_xor_peer_address, c->xor_peer_address()});
  co_await c->transact(c->control_, std::move(permit));
  co_return c;
}

awaitable<tcp::socket> turn_client::connect_peer() {
  std::vector<std::uint8_t> connection_id;
  {
    auto guard = co_await control_mutex_.lock();
    stun_message m;
    m.type = connect_request;
    m.attributes.push_back({attr_xor_peer_address, xor_peer_address()});
    const stun_message answer = co_await transact(control_, std::move(m));
    const stun_attribute* id = answer.find(attr_connection_id);
    if (!id) throw std::runtime_error("TURN Connect answer without CONNECTION-ID");
    connection_id = id->value;
  }
  tcp::socket data(co_await asio::this_coro::executor);
  co_await data.async_connect(opts_.server, use_awaitable);
  data.set_option(tcp::no_delay(true));
  stun_message bind;
  bind.type = connection_bind_request;
  bind.attributes.push_back({attr_connection_id, std::move(connection_id)});
  co_await transact(data, std::move(bind));
  co_return data;
}

}  // namespace switchboard::bench
