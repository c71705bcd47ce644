// Handle protocol sessions as HANDLE.NET's client sets them up before administrative requests
// (docs/handle-protocol.md#sessions): SESSION_SETUP (opcode 400) with a Diffie-Hellman key
// exchange, then requests that carry an HS_MAC credential made with the session key. Setting up a
// session does not authenticate it: the first administrative request in it is challenged like any
// other, and a valid answer authenticates the session for its later requests.
//
// SESSION_SETUP body (request): int2 mode (4 = Diffie-Hellman; nothing else is offered), int4
// timeout in seconds, identity handle, int4 identity index, int4-length client key
// ("DH_PUB_KEY", u16 flags, y, p, g; each a length-prefixed two's complement magnitude), and two
// stray zero bytes (HANDLE.NET's encoder counts the int2 mode as four bytes). Reply body: int2
// mode, int4-length (int4 cipher 3 = AES, the server's DH_PUB_KEY), two zero bytes. The session
// key is the first 32 bytes of y_client^x mod p, big-endian without leading zeros.
//
// HS_MAC credential: signer "" with index = the client's session counter, type "HS_MAC", section
// = "HMAC-SHA256" + HMAC-SHA256(session key, the bytes signed_bytes() names with that counter).
// Thread safety: SessionTable is internally locked; the free functions are pure.
#pragma once

#include "handle_admin.hpp"
#include "idnode/resolver/handle_protocol.hpp"

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace idnode::resolver::handle::detail {

inline constexpr std::uint16_t kKeyExchangeDiffieHellman = 4;
inline constexpr std::uint32_t kSessionCipherAes = 3;

struct SessionSetupRequest {
    std::uint16_t mode = 0;
    std::uint32_t timeout_s = 0;
    std::string_view identity_handle;
    std::int32_t identity_index = 0;
    std::string_view exchange_key;
};
Decoded<SessionSetupRequest> decode_session_setup(std::string_view body);

/// The server's side of the exchange for a client DH_PUB_KEY: its own DH_PUB_KEY (same p and g)
/// and the session key. nullopt when the key is malformed, the group is not one this server
/// accepts (the RFC 2409 1024-bit group HANDLE.NET uses, or RFC 3526's 2048-bit group 14) or the
/// client's y is out of range.
struct KeyExchange {
    std::string server_key; // DH_PUB_KEY encoding
    std::string session_key;
};
std::optional<KeyExchange> diffie_hellman(std::string_view client_key, const RandomFill& random);

/// The bytes of an HS_MAC with session counter `counter` (and of a server signature when 0).
std::string mac_bytes(std::string_view message, std::uint32_t counter);

/// Checks an HS_MAC credential of `message` (a whole request) against `session_key`.
bool verify_session_mac(std::string_view message, const Credential& credential,
                        std::string_view session_key);

struct Session {
    std::string key;
    /// Set once a challenge in the session was answered: who the session acts as.
    std::optional<node::Principal> principal;
    ProvenIdentity identity;
    std::uint32_t last_counter = 0;
    std::chrono::steady_clock::time_point expires;
};

/// Sessions by id. Bounded in number; when full, expired sessions and then the oldest
/// unauthenticated one make room.
class SessionTable {
public:
    SessionTable(std::size_t capacity, std::chrono::seconds max_ttl)
        : capacity_(capacity), max_ttl_(max_ttl) {}
    /// False only when full of live authenticated sessions.
    bool add(std::uint32_t id, std::string key, std::chrono::seconds ttl,
             std::chrono::steady_clock::time_point now);
    /// A copy of the live session `id`.
    std::optional<Session> find(std::uint32_t id, std::chrono::steady_clock::time_point now);
    /// Records a verified MAC's counter; false when it is not above the last one (a replay).
    bool advance(std::uint32_t id, std::uint32_t counter);
    void authenticate(std::uint32_t id, node::Principal principal, ProvenIdentity identity);
    bool contains(std::uint32_t id);

private:
    std::mutex mutex_;
    std::unordered_map<std::uint32_t, Session> sessions_;
    std::size_t capacity_;
    std::chrono::seconds max_ttl_;
};

} // namespace idnode::resolver::handle::detail
