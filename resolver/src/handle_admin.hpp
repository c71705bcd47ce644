// The Handle protocol's writers (docs/handle-protocol.md#administration): an identity proves
// itself by challenge-response, then creates, changes and deletes identifiers through the node's
// services - the one write policy, templates, homing, per-account rate limits and the durable
// group commit, exactly as the HTTPS API writes.
//
// Flows (captured from HANDLE.NET 9.3.1 and CAICT ID-SDK 2.0.3, tests/data/handle-admin.md):
// - An administrative request without an authenticated connection gets RC 402 with a fresh
//   session id, a nonce and the request digest; the challenge is remembered under that session
//   id. The RESPONSE_TO_CHALLENGE (opcode 200) may come on any connection (HANDLE.NET opens one
//   per message): its envelope names the session, its body the identity and the proof. A valid
//   proof runs the challenged request as the identity's account and the reply carries the
//   challenged opcode, the answer's request id and session id 0. Each challenge is answered once.
// - Sessions (handle_session.hpp): SESSION_SETUP, then requests with an HS_MAC credential; the
//   first one is challenged under the session's id and its answer authenticates the session.
// - IDIS LOGIN_ID_SYSTEM (2001) is challenged the same way; a valid answer authenticates the TCP
//   connection for its lifetime, and later administrative requests on it run without a
//   challenge.
// - Refusals: no pending challenge for the session (expired, answered, never issued) RC 405;
//   an identity that is not registered, or a proof that does not match its key, RC 403; a proof of
//   the wrong key type or an algorithm not verified here, RC 404; too many failed proofs from an
//   address or for an account, RC 3 (the HTTPS API's failed-login throttle). Nothing is written.
// Thread safety: one HandleAdmin serves every connection; handle() may be called concurrently.
#pragma once

#include "idnode/node/authenticator.hpp"
#include "idnode/node/homing.hpp"
#include "idnode/node/principal.hpp"
#include "idnode/registry/registry.hpp"
#include "idnode/resolver/handle_responder.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace idnode::resolver::handle::detail {

class SessionTable;

/// Opcodes answered by HandleAdmin rather than by the resolution responder.
bool is_admin_opcode(std::uint32_t opcode) noexcept;
/// Whether HandleAdmin answers `request` (a whole message): an administrative opcode, or a
/// RESOLUTION sent in a session (its HS_MAC may authenticate it, so that it reads what the
/// session's identity may read). Reads only the envelope and the opcode.
bool is_for_admin(std::string_view request) noexcept;

/// Who a TCP connection is after LOGIN_ID_SYSTEM (IDIS clients keep one connection and send
/// later requests without credentials). One per connection, touched only on its strand.
struct ProvenIdentity {
    std::string handle;
    std::int32_t index = 0;
};
struct ConnectionLogin {
    std::optional<node::Principal> principal;
    ProvenIdentity identity;
    /// The client sent an IDIS LOGIN or LOGIN_ID_SYSTEM on this connection: it logs in the IDIS
    /// way, so an administrative request before a successful login is RC 408 "login first"
    /// (the IDIS SDKs show that as a failure) rather than a HANDLE.NET challenge.
    bool idis_client = false;
};

/// Challenges issued and not answered yet, by the session id sent with them. Bounded in number,
/// in bytes (each keeps its whole request, up to 256 KiB) and in age, so unanswered challenges
/// cannot grow memory; when full, the oldest gives way (a real client answers within a round
/// trip, so a flood of unanswered challenges pushes out only its own).
class PendingChallenges {
public:
    struct Entry {
        std::string request; // the challenged message, whole
        std::string nonce;
        std::string digest; // the raw request digest sent with the nonce
        std::chrono::steady_clock::time_point expires;
    };
    PendingChallenges(std::size_t capacity, std::chrono::seconds ttl,
                      std::size_t max_bytes = 32u << 20)
        : capacity_(capacity), max_bytes_(max_bytes), ttl_(ttl) {}
    void add(std::uint32_t session_id, Entry entry, std::chrono::steady_clock::time_point now);
    /// Removes and returns the live challenge of `session_id`.
    std::optional<Entry> take(std::uint32_t session_id, std::chrono::steady_clock::time_point now);
    std::chrono::seconds ttl() const noexcept { return ttl_; }
    /// The requests' bytes held now.
    std::size_t bytes();

private:
    void drop_expired(std::chrono::steady_clock::time_point now);
    void erase(std::unordered_map<std::uint32_t, Entry>::iterator it);

    std::mutex mutex_;
    std::unordered_map<std::uint32_t, Entry> entries_;
    /// Ids in the order they came (entries answered since are skipped when met).
    std::deque<std::pair<std::uint32_t, std::chrono::steady_clock::time_point>> order_;
    std::size_t capacity_;
    std::size_t max_bytes_;
    std::size_t bytes_ = 0;
    std::chrono::seconds ttl_;
};

struct HandleAdminOptions {
    node::Authenticator* authenticator = nullptr;   // required: proofs count as logins
    node::AccountRateLimit* account_rate = nullptr; // limits.rate_per_account; null = none
    std::size_t max_pending_challenges = 4096;
    std::chrono::seconds challenge_ttl{120};
    std::size_t max_record_bytes = 64 * 1024; // limits.max_body_bytes per record
    bool allow_password_login = false;        // handle.allow_password_login
    std::vector<std::string> homed_prefixes;  // folded, for LIST_HOMED_NAS
    std::function<void(bool warning, const std::string& line)> log; // see HandleServerOptions
};

class HandleAdmin {
public:
    HandleAdmin(registry::Registry& registry, const ResponderConfig& config,
                const node::Homing& homing, HandleAdminOptions options);
    ~HandleAdmin();
    HandleAdmin(const HandleAdmin&) = delete;
    HandleAdmin& operator=(const HandleAdmin&) = delete;

    /// The reply to one administrative request, now or later: `work`, when set, runs the write
    /// and calls its argument exactly once, on the registry's writer thread or the caller's,
    /// with the reply.
    struct Step {
        Answer answer;
        std::function<void(std::function<void(Answer)>)> work;
    };
    Step handle(std::string_view request, ConnectionLogin& login, const RequestContext& context,
                const std::string& client_ip);

    /// Over UDP every administrative opcode is refused (RC 5): challenges and writes need the
    /// client's address proven by a TCP handshake. SESSION_SETUP is the exception
    /// (udp_answer): HANDLE.NET's client sends it over UDP first.
    Answer refuse_over_udp(std::string_view request, std::uint32_t now) const;
    Answer udp_answer(std::string_view request, const RequestContext& context);

    /// Keeps the challenge that answer() sent with an RC 402 to a RESOLUTION asking for values
    /// the client may not read anonymously, so that a RESPONSE_TO_CHALLENGE can prove the
    /// client's identity and have the resolution answered with what that identity may read.
    void remember_challenge(std::string_view request, const Challenge& challenge);

    /// SESSION_SETUP (handle_session.hpp), over TCP or UDP.
    Answer setup_session(std::string_view request, const RequestContext& context);

private:
    Step password_login(std::string_view request, const MessageView& message,
                        ConnectionLogin& login, std::uint32_t now, const std::string& client_ip);
    Step answer_challenge(std::string_view request, const MessageView& message,
                          ConnectionLogin& login, const RequestContext& context,
                          const std::string& client_ip);
    Step run(std::string request, std::string reply_to, std::optional<std::uint32_t> opcode,
             node::Principal who, ProvenIdentity identity, std::uint32_t now,
             std::uint32_t reply_session = 0);
    /// A request that carries an HS_MAC credential of a session.
    Step list(std::string_view reply_to, const MessageView& message, const node::Principal& who,
              const ReplyAddress& address, std::uint32_t now);
    Step in_session(std::string_view request, const MessageView& message,
                    const RequestContext& context);
    /// The RESOLUTION `request` answered for `who` (its non-public values as the HTTPS API lets
    /// that account read them), addressed as a reply to `reply_to`.
    Answer resolve_as(std::string_view request, std::string_view reply_to,
                      const ReplyAddress& address, const node::Principal& who,
                      const RequestContext& context);
    Step challenge_and_remember(std::string_view request, const RequestContext& context,
                                std::optional<std::uint32_t> session_id);

    registry::Registry& registry_;
    const ResponderConfig& config_;
    const node::Homing& homing_;
    HandleAdminOptions options_;
    PendingChallenges pending_;
    std::unique_ptr<SessionTable> sessions_;
};

} // namespace idnode::resolver::handle::detail
