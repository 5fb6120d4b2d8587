#include "protocol/messages.hpp"

#include <string_view>

#include "protocol/names.hpp"

namespace switchboard::protocol {

namespace {

// Appends big-endian fields to a frame; the header is patched in by finish().
class writer {
 public:
  writer() { out_.resize(header_size); }
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) {
    u8(static_cast<std::uint8_t>(v >> 8));
    u8(static_cast<std::uint8_t>(v));
  }
  void u32(std::uint32_t v) {
    u16(static_cast<std::uint16_t>(v >> 16));
    u16(static_cast<std::uint16_t>(v));
  }
  void u64(std::uint64_t v) {
    u32(static_cast<std::uint32_t>(v >> 32));
    u32(static_cast<std::uint32_t>(v));
  }
  void raw(std::span<const std::uint8_t> bytes) {
    out_.insert(out_.end(), bytes.begin(), bytes.end());
  }
  void str8(std::string_view s) {
    if (s.size() > 0xff) throw protocol_violation("str8 field over 255 bytes");
    u8(static_cast<std::uint8_t>(s.size()));
    out_.insert(out_.end(), s.begin(), s.end());
  }
  void str16(std::string_view s) {
    if (s.size() > 0xffff) throw protocol_violation("str16 field over 65535 bytes");
    u16(static_cast<std::uint16_t>(s.size()));
    out_.insert(out_.end(), s.begin(), s.end());
  }
  std::vector<std::uint8_t> finish(frame_type type) {
    const auto h = encode_header(type, static_cast<std::uint32_t>(out_.size() - header_size));
    std::copy(h.begin(), h.end(), out_.begin());
    return std::move(out_);
  }

 private:
  std::vector<std::uint8_t> out_;
};

// Reads big-endian fields; every read checks the remaining length (truncation is a violation).
class reader {
 public:
  explicit reader(std::span<const std::uint8_t> in) : in_(in) {}
  std::uint8_t u8() { return take(1)[0]; }
  std::uint16_t u16() {
    auto b = take(2);
    return static_cast<std::uint16_t>((b[0] << 8) | b[1]);
  }
  std::uint32_t u32() {
    const std::uint32_t hi = u16();
    return (hi << 16) | u16();
  }
  std::uint64_t u64() {
    const std::uint64_t hi = u32();
    return (hi << 32) | u32();
  }
  template <std::size_t N>
  std::array<std::uint8_t, N> fixed() {
    auto b = take(N);
    std::array<std::uint8_t, N> a{};
    std::copy(b.begin(), b.end(), a.begin());
    return a;
  }
  std::string str8() { return as_string(take(u8())); }
  std::string str16() { return as_string(take(u16())); }
  void skip_rest() { in_ = {}; }
  void finish() const {
    if (!in_.empty()) throw protocol_violation(std::to_string(in_.size()) + " trailing bytes");
  }

 private:
  std::span<const std::uint8_t> take(std::size_t n) {
    if (in_.size() < n) throw protocol_violation("truncated payload");
    auto b = in_.first(n);
    in_ = in_.subspan(n);
    return b;
  }
  static std::string as_string(std::span<const std::uint8_t> b) {
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  }
  std::span<const std::uint8_t> in_;
};

std::string checked_user(std::string s, const char* field) {
  if (!valid_user_id(s)) throw protocol_violation(std::string("invalid user ID in ") + field);
  return s;
}
std::string checked_service(std::string s) {
  if (!valid_service_name(s)) throw protocol_violation("invalid service name");
  return s;
}
std::string checked_text(std::string s) {
  if (s.size() > max_text) throw protocol_violation("text field over 1024 bytes");
  return s;
}
// A service list of LOGIN or ANNOUNCE: at most max_services valid names, each named once.
// PEERS lists a user's services over all its instances: up to 255.
void check_services(const std::vector<std::string>& services, std::size_t most = max_services) {
  if (services.size() > most) throw protocol_violation("too many services in one list");
  for (std::size_t i = 0; i < services.size(); ++i) {
    checked_service(services[i]);
    for (std::size_t j = 0; j < i; ++j) {
      if (services[j] == services[i]) throw protocol_violation("service named twice");
    }
  }
}
void write_services(writer& w, const std::vector<std::string>& services,
                    std::size_t most = max_services) {
  check_services(services, most);
  w.u8(static_cast<std::uint8_t>(services.size()));
  for (const auto& s : services) w.str8(s);
}
std::vector<std::string> read_services(reader& r, std::size_t most = max_services) {
  const std::uint8_t count = r.u8();
  std::vector<std::string> out;
  out.reserve(count);
  for (std::uint8_t i = 0; i < count; ++i) out.push_back(r.str8());
  check_services(out, most);
  return out;
}

void check_secret(auth_method auth, const std::string& secret) {
  if (auth != auth_method::ticket && auth != auth_method::password) {
    throw protocol_violation("unknown auth method");
  }
  if (auth == auth_method::ticket && secret.size() != ticket_size) {
    throw protocol_violation("ticket must be 40 bytes");
  }
  if (auth == auth_method::password && (secret.empty() || secret.size() > max_password)) {
    throw protocol_violation("password must be 1..1024 bytes");
  }
}

// --- encoders, one per message --------------------------------------------------------------

struct encoder {
  writer& w;
  void operator()(const login& m) {
    check_secret(m.auth, m.secret);
    w.u8(m.version);
    w.u8(static_cast<std::uint8_t>(m.auth));
    w.str8(checked_user(m.user, "LOGIN"));
    w.str16(m.secret);
    w.raw(m.instance);
    w.u32(m.keepalive_ms);
    w.u8(m.calls_only ? 1 : 0);  // flags
    write_services(w, m.services);
  }
  void operator()(const announce& m) { write_services(w, m.services); }
  void operator()(const need_lines& m) { w.u16(m.count); }
  void operator()(const service_lost& m) {
    if (m.services.empty()) throw protocol_violation("SERVICE-LOST names no service");
    write_services(w, m.services);
    w.str16(checked_text(m.message));
  }
  void operator()(const ping& m) { w.u64(m.nonce); }
  void operator()(const pong& m) { w.u64(m.nonce); }
  void operator()(const demand& m) {
    w.str8(checked_user(m.target, "DEMAND"));
    w.str8(checked_service(m.service));
  }
  void operator()(const accept& m) { w.u32(m.session); }
  void operator()(const reject& m) {
    w.u32(m.session);
    w.u16(static_cast<std::uint16_t>(m.code));
    w.str16(checked_text(m.reason));
  }
  void operator()(const terminate& m) { coded(m.code, m.message); }
  void operator()(const fail& m) { coded(m.code, m.message); }
  void operator()(const logged_out& m) { coded(m.code, m.message); }
  void operator()(const login_ok& m) {
    w.u32(m.line);
    w.u32(m.keepalive_ms);
    w.u16(m.max_lines);
    w.raw(m.ticket);
  }
  void operator()(const peers& m) {
    if (m.users.size() > max_peers_listed) throw protocol_violation("PEERS lists over 512 users");
    w.u8(m.truncated ? 1 : 0);
    w.u16(static_cast<std::uint16_t>(m.users.size()));
    for (const auto& u : m.users) {
      w.str8(checked_user(u.user, "PEERS"));
      write_services(w, u.services, 0xff);
    }
  }
  void operator()(const incoming& m) {
    w.u32(m.session);
    w.str8(checked_user(m.caller, "INCOMING"));
    w.str8(checked_service(m.service));
  }
  void operator()(const connected& m) {
    w.u32(m.session);
    w.str8(checked_user(m.target, "CONNECTED"));
  }
  // Empty payloads.
  void operator()(const peers_request&) {}
  void operator()(const logout&) {}
  void operator()(const release&) {}
  void operator()(const eof&) {}
  void operator()(const released&) {}

  void coded(error_code code, const std::string& text) {
    w.u16(static_cast<std::uint16_t>(code));
    w.str16(checked_text(text));
  }
};

template <typename T>
T decode_coded(reader& r) {
  T m;
  m.code = static_cast<error_code>(r.u16());
  m.message = checked_text(r.str16());
  return m;
}

message decode_fields(frame_type type, reader& r) {
  switch (type) {
    case frame_type::login: {
      login m;
      m.version = r.u8();
      if (m.version != protocol_version) {
        // Another version's layout: the relay answers UNSUPPORTED_VERSION, naming its own.
        r.skip_rest();
        return m;
      }
      const std::uint8_t auth = r.u8();
      if (auth > 1) throw protocol_violation("unknown auth method");
      m.auth = static_cast<auth_method>(auth);
      m.user = checked_user(r.str8(), "LOGIN");
      m.secret = r.str16();
      check_secret(m.auth, m.secret);
      m.instance = r.fixed<instance_size>();
      m.keepalive_ms = r.u32();
      const std::uint8_t flags = r.u8();
      if (flags > 1) throw protocol_violation("unknown LOGIN flags");
      m.calls_only = flags & 1;
      m.services = read_services(r);
      return m;
    }
    case frame_type::ping:
      return ping{r.u64()};
    case frame_type::pong:
      return pong{r.u64()};
    case frame_type::peers_request:
      return peers_request{};
    case frame_type::demand: {
      demand m;
      m.target = checked_user(r.str8(), "DEMAND");
      m.service = checked_service(r.str8());
      return m;
    }
    case frame_type::accept:
      return accept{r.u32()};
    case frame_type::reject: {
      reject m;
      m.session = r.u32();
      m.code = static_cast<error_code>(r.u16());
      m.reason = checked_text(r.str16());
      return m;
    }
    case frame_type::logout:
      return logout{};
    case frame_type::release:
      return release{};
    case frame_type::eof:
      return eof{};
    case frame_type::terminate:
      return decode_coded<terminate>(r);
    case frame_type::fail:
      return decode_coded<fail>(r);
    case frame_type::logged_out:
      return decode_coded<logged_out>(r);
    case frame_type::login_ok: {
      login_ok m;
      m.line = r.u32();
      m.keepalive_ms = r.u32();
      m.max_lines = r.u16();
      m.ticket = r.fixed<ticket_size>();
      return m;
    }
    case frame_type::peers: {
      peers m;
      const std::uint8_t flags = r.u8();
      if (flags > 1) throw protocol_violation("unknown PEERS flags");
      m.truncated = flags & 1;
      const std::uint16_t count = r.u16();
      if (count > max_peers_listed) throw protocol_violation("PEERS lists over 512 users");
      m.users.reserve(count);
      for (std::uint16_t i = 0; i < count; ++i) {
        peer_entry e;
        e.user = checked_user(r.str8(), "PEERS");
        e.services = read_services(r, 0xff);
        m.users.push_back(std::move(e));
      }
      return m;
    }
    case frame_type::incoming: {
      incoming m;
      m.session = r.u32();
      m.caller = checked_user(r.str8(), "INCOMING");
      m.service = checked_service(r.str8());
      return m;
    }
    case frame_type::connected: {
      connected m;
      m.session = r.u32();
      m.target = checked_user(r.str8(), "CONNECTED");
      return m;
    }
    case frame_type::released:
      return released{};
    case frame_type::announce: {
      announce m;
      m.services = read_services(r);
      return m;
    }
    case frame_type::need_lines:
      return need_lines{r.u16()};
    case frame_type::service_lost: {
      service_lost m;
      m.services = read_services(r);
      if (m.services.empty()) throw protocol_violation("SERVICE-LOST names no service");
      m.message = checked_text(r.str16());
      return m;
    }
    case frame_type::data:
      break;
  }
  throw protocol_violation("DATA payloads are not control messages");
}

}  // namespace

frame_type type_of(const message& m) {
  static constexpr frame_type types[] = {
      frame_type::login,     frame_type::ping,       frame_type::peers_request,
      frame_type::demand,    frame_type::accept,     frame_type::reject,
      frame_type::logout,    frame_type::release,    frame_type::eof,
      frame_type::terminate, frame_type::login_ok,   frame_type::pong,
      frame_type::peers,     frame_type::incoming,   frame_type::connected,
      frame_type::fail,      frame_type::logged_out, frame_type::released,
      frame_type::announce,  frame_type::need_lines, frame_type::service_lost};
  static_assert(std::size(types) == std::variant_size_v<message>);
  return types[m.index()];
}

std::size_t encoded_size(const peer_entry& e) {
  std::size_t n = 1 + e.user.size() + 1;
  for (const auto& s : e.services) n += 1 + s.size();
  return n;
}

std::vector<std::uint8_t> encode(const message& m) {
  writer w;
  std::visit(encoder{w}, m);
  return w.finish(type_of(m));
}

message decode(frame_type type, std::span<const std::uint8_t> payload) {
  reader r(payload);
  message m = decode_fields(type, r);
  r.finish();
  return m;
}

}  // namespace switchboard::protocol
