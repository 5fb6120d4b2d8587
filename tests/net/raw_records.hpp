// A TLS 1.3 record sealer for tests, independent of tls13::record_layer's sealing: EVP directly,
// over the key and nonces of a tls13::traffic_keys. It seals any content type, content and zero
// padding, including records record_layer never sends (alerts, tickets, empty and oversized
// records, split handshake messages).
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <vector>

#include "net/tls_records.hpp"

namespace switchboard::net::tls13::testing {

inline constexpr std::uint8_t content_alert = 21;
inline constexpr std::uint8_t content_handshake = 22;
inline constexpr std::uint8_t content_application_data = 23;

class raw_sealer {
 public:
  raw_sealer(suite s, std::span<const std::uint8_t> secret) : suite_(s), keys_(s, secret) {}

  // One record: header, then content || type || `padding` zeros, sealed with the next nonce.
  std::vector<std::uint8_t> seal(std::uint8_t type, std::span<const std::uint8_t> content,
                                 std::size_t padding = 0) {
    std::vector<std::uint8_t> inner(content.begin(), content.end());
    inner.push_back(type);
    inner.resize(inner.size() + padding, 0);
    const std::size_t length = inner.size() + tag_size;
    std::vector<std::uint8_t> record(header_size + length);
    record[0] = content_application_data;
    record[1] = 0x03;
    record[2] = 0x03;
    record[3] = static_cast<std::uint8_t>(length >> 8);
    record[4] = static_cast<std::uint8_t>(length);
    const auto nonce = keys_.next_nonce();
    const std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                              &EVP_CIPHER_CTX_free);
    int len = 0;
    int tail = 0;
    if (!ctx ||
        EVP_EncryptInit_ex(ctx.get(), cipher(), nullptr, keys_.key().data(), nonce.data()) != 1 ||
        EVP_EncryptUpdate(ctx.get(), nullptr, &len, record.data(), header_size) != 1 ||
        EVP_EncryptUpdate(ctx.get(), record.data() + header_size, &len, inner.data(),
                          static_cast<int>(inner.size())) != 1 ||
        EVP_EncryptFinal_ex(ctx.get(), record.data() + header_size + len, &tail) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, tag_size,
                            record.data() + header_size + inner.size()) != 1) {
      throw std::runtime_error("raw_sealer: sealing failed");
    }
    return record;
  }

  // A KeyUpdate record; later records are sealed under the next keys, as the receiver expects.
  std::vector<std::uint8_t> key_update(bool requested = false) {
    const std::uint8_t message[] = {24, 0, 0, 1, static_cast<std::uint8_t>(requested ? 1 : 0)};
    auto record = seal(content_handshake, message);
    keys_.update();
    return record;
  }
  std::vector<std::uint8_t> user_canceled() {
    const std::uint8_t alert[] = {1, 90};
    return seal(content_alert, alert);
  }
  std::vector<std::uint8_t> empty_data() { return seal(content_application_data, {}); }
  std::vector<std::uint8_t> new_session_ticket() {
    // Type 4, 15 bytes of body: lifetime, age_add, an empty nonce, a 2-byte ticket, no extensions.
    const std::uint8_t message[] = {4, 0, 0, 15, 0, 0, 0, 60, 1, 2, 3, 4, 0, 0, 2, 7, 7, 0, 0};
    return seal(content_handshake, message);
  }
  std::vector<std::uint8_t> data(std::span<const std::uint8_t> bytes) {
    return seal(content_application_data, bytes);
  }

 private:
  const EVP_CIPHER* cipher() const {
    switch (suite_) {
      case suite::aes_128_gcm_sha256:
        return EVP_aes_128_gcm();
      case suite::aes_256_gcm_sha384:
        return EVP_aes_256_gcm();
      case suite::chacha20_poly1305_sha256:
        return EVP_chacha20_poly1305();
    }
    return nullptr;
  }

  suite suite_;
  traffic_keys keys_;
};

}  // namespace switchboard::net::tls13::testing
