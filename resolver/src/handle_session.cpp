#include "handle_session.hpp"

#include "handle_wire.hpp"
#include "idnode/resolver/handle_keys.hpp"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <memory>

namespace idnode::resolver::handle::detail {
namespace {

constexpr std::string_view kDhKeyType = "DH_PUB_KEY";
constexpr std::string_view kMacType = "HS_MAC";
constexpr std::string_view kMacAlgorithm = "HMAC-SHA256";
constexpr std::size_t kSessionKeyBytes = 32;

using Bn = std::unique_ptr<BIGNUM, decltype(&BN_clear_free)>;
Bn bn(BIGNUM* b) {
    return Bn(b, &BN_clear_free);
}
Bn from_bytes(std::string_view bytes) {
    return bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                        static_cast<int>(bytes.size()), nullptr));
}
std::string to_bytes(const BIGNUM* b) {
    std::string out(static_cast<std::size_t>(BN_num_bytes(b)), '\0');
    BN_bn2bin(b, reinterpret_cast<unsigned char*>(out.data()));
    return out;
}

} // namespace

Decoded<SessionSetupRequest> decode_session_setup(std::string_view body) {
    wire::Reader r(body);
    SessionSetupRequest s;
    if (!r.u16(s.mode, "key exchange mode") || !r.u32(s.timeout_s, "timeout") ||
        !r.bytes(s.identity_handle, "identity handle") ||
        !r.i32(s.identity_index, "identity index") || !r.bytes(s.exchange_key, "exchange key")) {
        return r.error();
    }
    // HANDLE.NET's encoder sizes the body for a four-byte mode: two zero bytes follow.
    std::string_view stray;
    if (r.remaining() == 2 && r.raw(stray, 2, "padding") && stray != std::string_view("\0\0", 2)) {
        return WireError{WireErrc::invalid_field, r.position(), "padding after the exchange key"};
    }
    if (!r.at_end("after the exchange key")) {
        return r.error();
    }
    return s;
}

std::optional<KeyExchange> diffie_hellman(std::string_view client_key, const RandomFill& random) {
    wire::Reader r(client_key);
    std::string_view type, y_bytes, p_bytes, g_bytes;
    std::uint16_t flags = 0;
    if (!r.bytes(type, "key type") || type != kDhKeyType || !r.u16(flags, "flags") ||
        !r.bytes(y_bytes, "y") || !r.bytes(p_bytes, "p") || !r.bytes(g_bytes, "g") ||
        y_bytes.size() > 1024 || p_bytes.size() > 1024 || g_bytes.size() > 1024) {
        return std::nullopt;
    }
    Bn p = from_bytes(p_bytes);
    Bn g = from_bytes(g_bytes);
    Bn y_client = from_bytes(y_bytes);
    Bn group2 = bn(BN_get_rfc2409_prime_1024(nullptr));
    Bn group14 = bn(BN_get_rfc3526_prime_2048(nullptr));
    if (!p || !g || !y_client || !group2 || !group14 ||
        (BN_cmp(p.get(), group2.get()) != 0 && BN_cmp(p.get(), group14.get()) != 0) ||
        !BN_is_word(g.get(), 2)) {
        return std::nullopt;
    }
    // 1 < y < p - 1: anything else would give a predictable shared secret.
    Bn p_minus_1 = bn(BN_dup(p.get()));
    if (!p_minus_1 || BN_sub_word(p_minus_1.get(), 1) != 1 ||
        BN_cmp(y_client.get(), BN_value_one()) <= 0 ||
        BN_cmp(y_client.get(), p_minus_1.get()) >= 0) {
        return std::nullopt;
    }
    std::array<std::uint8_t, 32> secret{};
    random(secret);
    Bn x = bn(BN_bin2bn(secret.data(), static_cast<int>(secret.size()), nullptr));
    OPENSSL_cleanse(secret.data(), secret.size());
    Bn y_server = bn(BN_new());
    Bn shared = bn(BN_new());
    std::unique_ptr<BN_CTX, decltype(&BN_CTX_free)> ctx(BN_CTX_new(), &BN_CTX_free);
    if (!x || !y_server || !shared || !ctx ||
        BN_mod_exp(y_server.get(), g.get(), x.get(), p.get(), ctx.get()) != 1 ||
        BN_mod_exp(shared.get(), y_client.get(), x.get(), p.get(), ctx.get()) != 1) {
        return std::nullopt;
    }
    KeyExchange out;
    std::string shared_bytes = to_bytes(shared.get());
    if (shared_bytes.size() < kSessionKeyBytes) {
        return std::nullopt;
    }
    out.session_key = shared_bytes.substr(0, kSessionKeyBytes);
    OPENSSL_cleanse(shared_bytes.data(), shared_bytes.size());
    wire::put_bytes(out.server_key, kDhKeyType);
    wire::put_u16(out.server_key, 0);
    wire::put_bytes(out.server_key, wire::twos_complement_magnitude(to_bytes(y_server.get())));
    wire::put_bytes(out.server_key, wire::twos_complement_magnitude(p_bytes));
    wire::put_bytes(out.server_key, wire::twos_complement_magnitude(g_bytes));
    return out;
}

std::string mac_bytes(std::string_view message, std::uint32_t counter) {
    std::string out = signed_bytes(message);
    if (out.empty()) {
        return out;
    }
    // signed_bytes() ends its prefix (protocol 2.6 and later) with a zero counter, just before
    // the header: put this MAC's counter there.
    const std::size_t covered = kHeaderSize + wire::load_u32(message.data() + kEnvelopeSize + 20);
    const std::size_t prefix = out.size() - covered;
    if (prefix >= 12) {
        std::string counter_bytes;
        wire::put_u32(counter_bytes, counter);
        out.replace(prefix - 4, 4, counter_bytes);
    }
    return out;
}

bool verify_session_mac(std::string_view message, const Credential& credential,
                        std::string_view session_key) {
    if (credential.type != kMacType || !credential.signer_handle.empty()) {
        return false;
    }
    wire::Reader r(credential.signed_info);
    std::string_view algorithm, mac;
    if (!r.bytes(algorithm, "mac algorithm") || algorithm != kMacAlgorithm ||
        !r.bytes(mac, "mac") || !r.at_end("after the mac")) {
        return false;
    }
    const std::string data =
        mac_bytes(message, static_cast<std::uint32_t>(credential.signer_index));
    unsigned char expected[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (HMAC(EVP_sha256(), session_key.data(), static_cast<int>(session_key.size()),
             reinterpret_cast<const unsigned char*>(data.data()), data.size(), expected,
             &size) == nullptr) {
        return false;
    }
    return mac.size() == size && CRYPTO_memcmp(expected, mac.data(), size) == 0;
}

bool SessionTable::add(std::uint32_t id, std::string key, std::chrono::seconds ttl,
                       std::chrono::steady_clock::time_point now) {
    std::lock_guard lock(mutex_);
    if (sessions_.size() >= capacity_) {
        std::erase_if(sessions_, [now](const auto& s) { return s.second.expires < now; });
    }
    if (sessions_.size() >= capacity_) {
        // Sessions nobody authenticated give way, the oldest first: SESSION_SETUP comes over UDP,
        // from addresses that may be forged, and must not lock real clients out.
        auto oldest = sessions_.end();
        for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
            if (!it->second.principal &&
                (oldest == sessions_.end() || it->second.expires < oldest->second.expires)) {
                oldest = it;
            }
        }
        if (oldest == sessions_.end()) {
            return false; // every session is authenticated and live
        }
        sessions_.erase(oldest);
    }
    Session s;
    s.key = std::move(key);
    s.expires = now + std::min(ttl, max_ttl_);
    sessions_.insert_or_assign(id, std::move(s));
    return true;
}

std::optional<Session> SessionTable::find(std::uint32_t id,
                                          std::chrono::steady_clock::time_point now) {
    std::lock_guard lock(mutex_);
    const auto it = sessions_.find(id);
    if (it == sessions_.end()) {
        return std::nullopt;
    }
    if (it->second.expires < now) {
        sessions_.erase(it);
        return std::nullopt;
    }
    return it->second;
}

bool SessionTable::advance(std::uint32_t id, std::uint32_t counter) {
    std::lock_guard lock(mutex_);
    const auto it = sessions_.find(id);
    if (it == sessions_.end() || counter <= it->second.last_counter) {
        return false;
    }
    it->second.last_counter = counter;
    return true;
}

void SessionTable::authenticate(std::uint32_t id, node::Principal principal,
                                ProvenIdentity identity) {
    std::lock_guard lock(mutex_);
    const auto it = sessions_.find(id);
    if (it != sessions_.end()) {
        it->second.principal = std::move(principal);
        it->second.identity = std::move(identity);
    }
}

bool SessionTable::contains(std::uint32_t id) {
    std::lock_guard lock(mutex_);
    return sessions_.count(id) != 0;
}

} // namespace idnode::resolver::handle::detail
