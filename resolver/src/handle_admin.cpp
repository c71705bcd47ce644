#include "handle_admin.hpp"

#include "handle_session.hpp"

#include "handle_wire.hpp"
#include "idnode/node/identities.hpp"
#include "idnode/node/outcome.hpp"
#include "idnode/node/policy.hpp"
#include "idnode/node/records.hpp"
#include "idnode/registry/identifier.hpp"
#include "idnode/resolver/handle_auth.hpp"

#include <algorithm>
#include <set>

namespace idnode::resolver::handle::detail {
namespace {

using SteadyClock = std::chrono::steady_clock;

/// IDIS: LOGIN (password, 2000) and LOGIN_ID_SYSTEM (identity, 2001).
constexpr std::uint32_t kIdisLogin = 2000;
constexpr std::uint32_t kIdisLoginIdSystem = 2001;

/// The most handles one LIST_HANDLES answer carries (about 256 KiB at 25 bytes each, within the
/// message limit).
constexpr std::uint64_t kMaxListedHandles = 8192;

/// The Handle protocol's row of the outcome tables (docs/architecture.md#outcomes), indexed by
/// node::Outcome: ok, created, replaced, unchanged, unauthorized, forbidden, not_found, conflict,
/// invalid, in_use, routed_elsewhere (301: this server is not responsible for the handle; the
/// message names the enterprise node), throttled, unavailable, storage_full, internal.
std::uint32_t rc_of(node::Outcome outcome) noexcept {
    static constexpr std::uint32_t kCodes[] = {rc::kSuccess,
                                               rc::kSuccess,
                                               rc::kSuccess,
                                               rc::kSuccess,
                                               rc::kAuthenticationNeeded,
                                               rc::kInsufficientPermissions,
                                               rc::kHandleNotFound,
                                               rc::kHandleAlreadyExists,
                                               rc::kInvalidValue,
                                               rc::kHandleAlreadyExists,
                                               rc::kServerNotResponsible,
                                               rc::kServerTooBusy,
                                               rc::kServerTooBusy,
                                               rc::kError,
                                               rc::kError};
    static_assert(std::size(kCodes) == static_cast<std::size_t>(node::Outcome::internal) + 1);
    const auto i = static_cast<std::size_t>(outcome);
    return i < std::size(kCodes) ? kCodes[i] : rc::kError;
}

std::uint32_t rc_of(const node::Refusal& refusal) noexcept {
    if (refusal.reason == "prefix_suspended") {
        return rc::kInvalidAdmin; // as the Handle REST API answers it
    }
    if (refusal.reason == "prefix_not_allocated") {
        return rc::kServerNotResponsible;
    }
    return rc_of(refusal.outcome);
}

std::uint32_t rc_of(registry::Errc code) noexcept {
    switch (code) {
    case registry::Errc::invalid_handle:
        return rc::kInvalidHandle;
    case registry::Errc::not_homed:
        return rc::kServerNotResponsible;
    default:
        return rc_of(node::outcome_of(code));
    }
}

/// REMOVE_VALUE body: handle, index list.
struct RemoveRequest {
    std::string_view handle;
    std::vector<std::int32_t> indices;
};
Decoded<RemoveRequest> decode_remove_request(std::string_view body) {
    wire::Reader r(body);
    RemoveRequest out;
    std::uint32_t count = 0;
    if (!r.bytes(out.handle, "handle") || !r.count(count, 4, "index count")) {
        return r.error();
    }
    out.indices.resize(count);
    for (auto& i : out.indices) {
        r.i32(i, "index list");
    }
    if (!r.at_end("after the index list")) {
        return r.error();
    }
    return out;
}

/// DELETE_HANDLE (and LOGIN_ID_SYSTEM's first field) body: one handle.
Decoded<std::string_view> decode_handle_body(std::string_view body, bool exact) {
    wire::Reader r(body);
    std::string_view handle;
    if (!r.bytes(handle, "handle") || (exact && !r.at_end("after the handle"))) {
        return r.error();
    }
    return handle;
}

/// LOGIN_ID_SYSTEM body: the identity handle and index.
struct LoginRequest {
    std::string_view handle;
    std::int32_t index = 0;
};
Decoded<LoginRequest> decode_login_request(std::string_view body) {
    wire::Reader r(body);
    LoginRequest out;
    if (!r.bytes(out.handle, "identity handle") || !r.i32(out.index, "identity index") ||
        !r.at_end("after the identity index")) {
        return r.error();
    }
    return out;
}

std::string raw(const std::array<std::uint8_t, kChallengeNonceSize>& nonce) {
    return std::string(reinterpret_cast<const char*>(nonce.data()), nonce.size());
}

} // namespace

bool is_admin_opcode(std::uint32_t opcode) noexcept {
    switch (opcode) {
    case opcode::kCreateHandle:
    case opcode::kDeleteHandle:
    case opcode::kAddValue:
    case opcode::kRemoveValue:
    case opcode::kModifyValue:
    case opcode::kListHandles:
    case opcode::kChallengeResponse:
    case opcode::kHomePrefix:
    case opcode::kUnhomePrefix:
    case opcode::kListHomedPrefixes:
    case opcode::kSessionSetup:
    case kIdisLogin:
    case kIdisLoginIdSystem:
        return true;
    default:
        return false;
    }
}

bool is_for_admin(std::string_view request) noexcept {
    if (request.size() < kEnvelopeSize + 4) {
        return false;
    }
    const std::uint32_t opcode = wire::load_u32(request.data() + kEnvelopeSize);
    return is_admin_opcode(opcode) ||
           (opcode == opcode::kResolution && wire::load_u32(request.data() + 4) != 0);
}

// ---- PendingChallenges
// ---------------------------------------------------------------------------

void PendingChallenges::add(std::uint32_t session_id, Entry entry, SteadyClock::time_point now) {
    std::lock_guard lock(mutex_);
    if (const auto same = entries_.find(session_id); same != entries_.end()) {
        erase(same); // a session's new challenge replaces its last
    }
    const auto full = [&] {
        return entries_.size() >= capacity_ || bytes_ + entry.request.size() > max_bytes_;
    };
    if (full()) {
        drop_expired(now);
    }
    while (full() && !order_.empty()) {
        const auto [id, expires] = order_.front();
        order_.pop_front();
        const auto it = entries_.find(id);
        if (it != entries_.end() && it->second.expires == expires) {
            erase(it); // the oldest challenge still waiting
        }
    }
    entry.expires = now + ttl_;
    bytes_ += entry.request.size();
    order_.emplace_back(session_id, entry.expires);
    entries_.emplace(session_id, std::move(entry));
    if (order_.size() > 2 * capacity_ + 16) {
        // Mostly answered ids: keep the order of the live ones only.
        std::erase_if(order_, [this](const auto& o) {
            const auto it = entries_.find(o.first);
            return it == entries_.end() || it->second.expires != o.second;
        });
    }
}

std::optional<PendingChallenges::Entry> PendingChallenges::take(std::uint32_t session_id,
                                                                SteadyClock::time_point now) {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(session_id);
    if (it == entries_.end()) {
        return std::nullopt;
    }
    bytes_ -= it->second.request.size();
    Entry entry = std::move(it->second);
    entries_.erase(it);
    if (entry.expires < now) {
        return std::nullopt;
    }
    return entry;
}

std::size_t PendingChallenges::bytes() {
    std::lock_guard lock(mutex_);
    return bytes_;
}

void PendingChallenges::erase(std::unordered_map<std::uint32_t, Entry>::iterator it) {
    bytes_ -= it->second.request.size();
    entries_.erase(it);
}

void PendingChallenges::drop_expired(SteadyClock::time_point now) {
    for (auto it = entries_.begin(); it != entries_.end();) {
        if (it->second.expires < now) {
            bytes_ -= it->second.request.size();
            it = entries_.erase(it);
        } else {
            ++it;
        }
    }
    while (!order_.empty() && order_.front().second < now) {
        order_.pop_front();
    }
}

// ---- HandleAdmin
// ---------------------------------------------------------------------------------

HandleAdmin::HandleAdmin(registry::Registry& registry, const ResponderConfig& config,
                         const node::Homing& homing, HandleAdminOptions options)
    : registry_(registry), config_(config), homing_(homing), options_(options),
      pending_(options.max_pending_challenges, options.challenge_ttl),
      sessions_(
          std::make_unique<SessionTable>(options.max_pending_challenges, std::chrono::hours(24))) {}

HandleAdmin::~HandleAdmin() = default;

Answer HandleAdmin::udp_answer(std::string_view request, const RequestContext& context) {
    const std::uint32_t op = request.size() >= kEnvelopeSize + 4
                                 ? wire::load_u32(request.data() + kEnvelopeSize)
                                 : opcode::kReserved;
    if (op == opcode::kSessionSetup) {
        return setup_session(request, context);
    }
    if (op == opcode::kResolution) {
        // A RESOLUTION in a session: HANDLE.NET's client MACs it once the session is set up.
        auto message = decode_message(request);
        if (message && message->envelope.session_id != 0 && message->credential &&
            message->credential->type == "HS_MAC") {
            return in_session(request, *message, context).answer;
        }
        return answer(request, config_, context);
    }
    return refuse_over_udp(request, context.now);
}

void HandleAdmin::remember_challenge(std::string_view request, const Challenge& challenge) {
    PendingChallenges::Entry entry;
    entry.request.assign(request);
    entry.nonce = raw(challenge.nonce);
    entry.digest = challenge.request_digest;
    pending_.add(challenge.session_id, std::move(entry), SteadyClock::now());
}

Answer HandleAdmin::resolve_as(std::string_view request, std::string_view reply_to,
                               const ReplyAddress& address, const node::Principal& who,
                               const RequestContext& context) {
    auto snapshot = registry_.snapshot();
    const PrivateReadPredicate may_read = [&](std::string_view prefix_key) {
        return node::may_read_private(snapshot, who, prefix_key);
    };
    RequestContext as_who = context;
    as_who.may_read_private = &may_read;
    return answer_resolution_as(request, reply_to, config_, as_who, address);
}

Answer HandleAdmin::setup_session(std::string_view request, const RequestContext& context) {
    auto message = decode_message(request);
    if (!message) {
        return answer(request, config_, context);
    }
    auto setup = decode_session_setup(message->body);
    if (!setup) {
        return respond_error(request, rc::kProtocolError,
                             "malformed SESSION_SETUP: " + setup.error().describe(), config_,
                             context.now);
    }
    if (setup->mode != kKeyExchangeDiffieHellman) {
        return respond_error(request, rc::kOperationNotSupported,
                             "only the Diffie-Hellman key exchange (mode 4) is offered", config_,
                             context.now);
    }
    auto exchange = diffie_hellman(setup->exchange_key, context.random);
    if (!exchange) {
        return respond_error(request, rc::kProtocolError,
                             "the Diffie-Hellman key is malformed or of a group not offered "
                             "(RFC 2409 group 2, RFC 3526 group 14; g = 2)",
                             config_, context.now);
    }
    const std::uint32_t id = new_session_id(context.random);
    if (!sessions_->add(id, std::move(exchange->session_key),
                        std::chrono::seconds(std::max<std::uint32_t>(setup->timeout_s, 60)),
                        SteadyClock::now())) {
        return respond_error(request, rc::kServerTooBusy, "too many sessions; try again", config_,
                             context.now);
    }
    std::string body;
    wire::put_u16(body, kKeyExchangeDiffieHellman);
    std::string key;
    wire::put_u32(key, kSessionCipherAes);
    key.append(exchange->server_key);
    wire::put_bytes(body, key);
    wire::put_u16(body, 0); // the two bytes HANDLE.NET's encoder writes after the key
    return respond(request, rc::kSuccess, body, config_, context.now, ReplyAddress{{}, id});
}

HandleAdmin::Step HandleAdmin::in_session(std::string_view request, const MessageView& message,
                                          const RequestContext& context) {
    const std::uint32_t id = message.envelope.session_id;
    const ReplyAddress address{{}, id};
    auto session = sessions_->find(id, SteadyClock::now());
    if (!session) {
        // HANDLE.NET's client drops the session on RC 500 and sets up a new one.
        return {respond_error(request, rc::kSessionTimeout,
                              "session " + std::to_string(id) + " is unknown or expired", config_,
                              context.now, address),
                {}};
    }
    if (!verify_session_mac(request, *message.credential, session->key) ||
        !sessions_->advance(id, static_cast<std::uint32_t>(message.credential->signer_index))) {
        return {respond_error(request, rc::kSessionFailed,
                              "the session MAC does not verify (or its counter was used)", config_,
                              context.now, address),
                {}};
    }
    const bool resolution = message.header.opcode == opcode::kResolution;
    if (session->principal) {
        if (resolution) {
            return {resolve_as(request, request, address, *session->principal, context), {}};
        }
        return run(std::string(request), std::string(request), std::nullopt,
                   std::move(*session->principal), std::move(session->identity), context.now, id);
    }
    if (resolution) {
        // Not authenticated yet: answered as to anyone (an RC 402 for non-public values, which
        // the client may answer to authenticate the session).
        Answer a = answer(request, config_, context);
        if (a.challenge) {
            remember_challenge(request, *a.challenge);
        }
        return {std::move(a), {}};
    }
    // A session is not authenticated by being set up: its first request is challenged under
    // the session's id, and the answer authenticates the session.
    return challenge_and_remember(request, context, id);
}

HandleAdmin::Step HandleAdmin::challenge_and_remember(std::string_view request,
                                                      const RequestContext& context,
                                                      std::optional<std::uint32_t> session_id) {
    Answer issued = challenge(request, config_, context, session_id);
    if (!issued.challenge) {
        return {std::move(issued), {}};
    }
    PendingChallenges::Entry entry;
    entry.request.assign(request);
    entry.nonce = raw(issued.challenge->nonce);
    entry.digest = issued.challenge->request_digest;
    pending_.add(issued.challenge->session_id, std::move(entry), SteadyClock::now());
    return {std::move(issued), {}};
}

Answer HandleAdmin::refuse_over_udp(std::string_view request, std::uint32_t now) const {
    return refuse(request, rc::kOperationNotSupported, "administration is served over TCP only",
                  config_, now);
}

HandleAdmin::Step HandleAdmin::handle(std::string_view request, ConnectionLogin& login,
                                      const RequestContext& context, const std::string& client_ip) {
    auto message = decode_message(request);
    if (!message) {
        return {answer(request, config_, context), {}}; // RC 4 naming the problem
    }
    const std::uint32_t opcode = message->header.opcode;
    if (opcode == kIdisLogin || opcode == kIdisLoginIdSystem) {
        login.idis_client = true;
        if (login.principal) {
            return {refuse(request, rc::kIdisRelogin,
                           "this connection is logged in already (account " +
                               login.principal->username +
                               "); open another connection to log in as another identity",
                           config_, context.now),
                    {}};
        }
    }
    switch (opcode) {
    case opcode::kChallengeResponse:
        return answer_challenge(request, *message, login, context, client_ip);
    case kIdisLogin:
        if (options_.allow_password_login) {
            return password_login(request, *message, login, context.now, client_ip);
        }
        return {refuse(request, rc::kOperationNotSupported,
                       "password login (IDIS LOGIN) is off on this node "
                       "(handle.allow_password_login): log in with an identity (LOGIN_ID_SYSTEM)",
                       config_, context.now),
                {}};
    case opcode::kSessionSetup:
        return {setup_session(request, context), {}};
    case opcode::kHomePrefix:
    case opcode::kUnhomePrefix:
        return {refuse(request, rc::kOperationNotSupported,
                       "homing is not changed over the Handle protocol: allocate prefixes with "
                       "POST /api/v1/prefixes and home node prefixes in node.homed_prefixes",
                       config_, context.now),
                {}};
    default:
        break;
    }
    if (message->envelope.session_id != 0 && message->credential &&
        message->credential->type == "HS_MAC") {
        return in_session(request, *message, context);
    }
    if (opcode == opcode::kResolution) {
        // A RESOLUTION in a session id without a MAC: as to anyone (the connection's login, if
        // any, is in `context`).
        Answer a = answer(request, config_, context);
        if (a.challenge) {
            remember_challenge(request, *a.challenge);
        }
        return {std::move(a), {}};
    }
    if (opcode != kIdisLoginIdSystem && login.principal) {
        return run(std::string(request), std::string(request), std::nullopt, *login.principal,
                   login.identity, context.now);
    }
    if (opcode != kIdisLoginIdSystem && login.idis_client) {
        return {refuse(request, rc::kIdisLoginFirst,
                       "log in first (LOGIN_ID_SYSTEM): this connection is not logged in", config_,
                       context.now),
                {}};
    }
    if (opcode == kIdisLoginIdSystem && !decode_login_request(message->body)) {
        return {answer(request, config_, context), {}};
    }
    return challenge_and_remember(request, context, std::nullopt);
}

HandleAdmin::Step HandleAdmin::password_login(std::string_view request, const MessageView& message,
                                              ConnectionLogin& login, std::uint32_t now,
                                              const std::string& client_ip) {
    // ID-SDK lays the body out like a RESOLUTION: the username as the handle, no indexes, and
    // the password as the only type.
    auto body = decode_resolution_request(message.body);
    if (!body || body->types.size() != 1 || !body->indices.empty() || !body->trailing.empty()) {
        return {respond_error(request, rc::kProtocolError,
                              "malformed LOGIN: expected a username and one password", config_,
                              now),
                {}};
    }
    const std::string username(body->handle);
    node::AuthOutcome outcome =
        options_.authenticator->password_login(username, body->types.front(), client_ip);
    if (!outcome.ok()) {
        const std::uint32_t code = outcome.outcome == node::Outcome::throttled
                                       ? rc::kServerTooBusy
                                       : rc::kAuthenticationFailed;
        if (options_.log) {
            options_.log(true, "handle: password login of " + username + " from " + client_ip +
                                   " refused (RC " + std::to_string(code) +
                                   "): " + outcome.message);
        }
        return {respond_error(request, code, outcome.message, config_, now), {}};
    }
    if (options_.log) {
        options_.log(false,
                     "handle: account " + username + " logged in by password from " + client_ip);
    }
    login.principal = std::move(outcome.principal);
    login.identity = {}; // no identity: handles created on this connection get no HS_ADMIN
    std::string reply_body;
    wire::put_bytes(reply_body, username);
    wire::put_u32(reply_body, 0); // no values: the SDK decodes the answer as a resolution
    return {respond(request, rc::kSuccess, reply_body, config_, now), {}};
}

HandleAdmin::Step HandleAdmin::answer_challenge(std::string_view request,
                                                const MessageView& message, ConnectionLogin& login,
                                                const RequestContext& context,
                                                const std::string& client_ip) {
    const std::uint32_t now = context.now;
    auto pending = pending_.take(message.envelope.session_id, SteadyClock::now());
    if (!pending) {
        return {respond_error(request, rc::kAuthenticationTimeout,
                              "no challenge is pending for session " +
                                  std::to_string(message.envelope.session_id) +
                                  " (expired, already answered, or never issued)",
                              config_, now),
                {}};
    }
    const std::uint32_t challenged_opcode = wire::load_u32(pending->request.data() + kEnvelopeSize);
    // In a session the replies keep its id (as HANDLE.NET answers); outside, session id 0.
    const std::uint32_t session =
        sessions_->contains(message.envelope.session_id) ? message.envelope.session_id : 0;
    const ReplyAddress address{challenged_opcode, session};
    std::string who = "an identity";
    auto refuse_with = [&](std::uint32_t code, std::string text) {
        if (options_.log) {
            options_.log(true, "handle: proof of " + who + " from " + client_ip + " refused (RC " +
                                   std::to_string(code) + "): " + text);
        }
        return Step{respond_error(request, code, text, config_, now, address), {}};
    };
    auto proof = decode_challenge_answer(message.body);
    if (!proof) {
        return refuse_with(rc::kProtocolError,
                           "malformed challenge answer: " + proof.error().describe());
    }
    auto identity_handle = registry::parse_handle(proof->identity_handle);
    if (!identity_handle) {
        return refuse_with(rc::kAuthenticationFailed, "unknown identity");
    }
    if (challenged_opcode == kIdisLoginIdSystem) {
        // The answer must be for the identity that asked to log in.
        const auto body = std::string_view(pending->request).substr(kEnvelopeSize + kHeaderSize);
        auto claimed = decode_login_request(
            body.substr(0, wire::load_u32(pending->request.data() + kEnvelopeSize + 20)));
        if (!claimed || claimed->index != proof->identity_index ||
            !registry::equals_folded(claimed->handle, proof->identity_handle)) {
            return refuse_with(rc::kAuthenticationFailed,
                               "the answer is for another identity than the login");
        }
    }
    const std::string identity_label =
        std::to_string(proof->identity_index) + ":" + std::string(proof->identity_handle);
    who = identity_label;

    auto snapshot = registry_.snapshot();
    const node::FoundIdentity found =
        node::find_identity(snapshot, proof->identity_handle, proof->identity_index);
    const registry::Identity* identity = found.ok() ? &found.identity : nullptr;
    ProofCheck check = ProofCheck::mismatch;
    bool wrong_type = false;
    if (identity != nullptr) {
        const bool secret = identity->kind == registry::IdentityKeyKind::secret;
        wrong_type = proof->auth_type != (secret ? kSecretKeyAuth : kPublicKeyAuth);
    }
    // Counted as a login (throttled per address and account); the proof is checked only when
    // not throttled, because a PBKDF2 proof costs the server its iterations.
    const std::string account = identity != nullptr ? identity->account : std::string();
    node::AuthOutcome outcome = options_.authenticator->identity_login(account, client_ip, [&] {
        if (identity == nullptr || wrong_type) {
            return false;
        }
        check =
            identity->kind == registry::IdentityKeyKind::secret
                ? verify_secret_key_proof(identity->secret, pending->nonce, pending->digest,
                                          proof->signed_response)
                : verify_public_key_proof(identity->public_key_pem, pending->nonce, pending->digest,
                                          proof->signed_response, proof->identity_handle);
        return check == ProofCheck::valid;
    });
    if (outcome.outcome == node::Outcome::throttled) {
        return refuse_with(rc::kServerTooBusy, "too many failed proofs; retry later");
    }
    if (identity == nullptr) {
        // Not registered, its account gone or disabled: one answer, so that it says nothing
        // about which.
        return refuse_with(rc::kAuthenticationFailed, "unknown identity " + identity_label);
    }
    if (wrong_type) {
        return refuse_with(rc::kInvalidCredential,
                           "identity " + identity_label + " holds " +
                               (identity->kind == registry::IdentityKeyKind::secret
                                    ? "a secret key (answer with HS_SECKEY)"
                                    : "a public key (answer with HS_PUBKEY)"));
    }
    if (check == ProofCheck::unsupported || check == ProofCheck::malformed) {
        return refuse_with(rc::kInvalidCredential,
                           check == ProofCheck::unsupported
                               ? "the proof uses an algorithm this server does not verify"
                               : "the proof cannot be read");
    }
    if (!outcome.ok()) {
        return refuse_with(rc::kAuthenticationFailed, outcome.message);
    }
    if (options_.log) {
        options_.log(false,
                     "handle: " + identity_label + " (account " + outcome.principal.username +
                         ") proved itself from " + client_ip +
                         (challenged_opcode == kIdisLoginIdSystem ? "; connection logged in" : ""));
    }
    if (challenged_opcode == kIdisLoginIdSystem) {
        login.principal = outcome.principal;
        login.identity = ProvenIdentity{std::string(proof->identity_handle), proof->identity_index};
        return {respond(request, rc::kSuccess, {}, config_, now, address), {}};
    }
    ProvenIdentity proven{std::string(proof->identity_handle), proof->identity_index};
    if (session != 0) {
        sessions_->authenticate(session, outcome.principal, proven);
    }
    if (challenged_opcode == opcode::kResolution) {
        return {resolve_as(pending->request, request, address, outcome.principal, context), {}};
    }
    return run(std::move(pending->request), std::string(request), challenged_opcode,
               std::move(outcome.principal), std::move(proven), now, session);
}

HandleAdmin::Step HandleAdmin::list(std::string_view reply_to, const MessageView& message,
                                    const node::Principal& who, const ReplyAddress& address,
                                    std::uint32_t now) {
    auto fail = [&](std::uint32_t code, std::string text) {
        return Step{respond_error(reply_to, code, text, config_, now, address), {}};
    };
    auto handle = decode_handle_body(message.body, true);
    if (!handle) {
        return fail(rc::kProtocolError, "malformed request: " + handle.error().describe());
    }
    std::string body;
    if (message.header.opcode == opcode::kListHomedPrefixes) {
        // Which prefixes this server answers for is the operator's business.
        if (!who.is_admin()) {
            return fail(rc::kInsufficientPermissions, "listing homed prefixes needs an admin");
        }
        wire::put_u32(body, static_cast<std::uint32_t>(options_.homed_prefixes.size()));
        for (const auto& prefix : options_.homed_prefixes) {
            wire::put_bytes(body, "0.NA/" + prefix);
        }
        return {respond(reply_to, rc::kSuccess, body, config_, now, address), {}};
    }
    // LIST_HANDLES names the prefix handle, 0.NA/<prefix>.
    auto prefix_handle = registry::parse_handle(*handle);
    if (!prefix_handle || prefix_handle->prefix_key() != "0.NA") {
        return fail(rc::kInvalidHandle, "LIST_HANDLES names a prefix handle, 0.NA/<prefix>");
    }
    auto prefix = registry::parse_prefix(prefix_handle->suffix());
    if (!prefix) {
        return fail(rc::kInvalidHandle, "invalid prefix: " + prefix.error().message);
    }
    if (!homing_.homes(*prefix)) {
        return fail(rc::kServerNotResponsible, "That prefix doesn't live here");
    }
    auto snapshot = registry_.snapshot();
    if (!node::may_read_private(snapshot, who, *prefix)) {
        return fail(rc::kInsufficientPermissions,
                    "listing " + *prefix + " needs an admin, its owner or a reader of it");
    }
    // One message holds the answer (HANDLE.NET streams longer ones); past the cap the client is
    // sent to the paged HTTPS listing rather than given a part.
    const std::uint64_t count = snapshot.count(*prefix);
    if (count > kMaxListedHandles) {
        return fail(rc::kError, std::to_string(count) + " identifiers under " + *prefix +
                                    ", more than one answer holds (" +
                                    std::to_string(kMaxListedHandles) +
                                    "); list them with GET /api/handles?prefix=" + *prefix);
    }
    std::vector<std::string> handles;
    std::string cursor;
    do {
        auto page = snapshot.list(*prefix, cursor, 1000);
        if (!page) {
            return fail(rc_of(page.error().code), page.error().message);
        }
        for (auto& h : page->handles) {
            handles.push_back(std::move(h));
        }
        cursor = std::move(page->next_cursor);
    } while (!cursor.empty() && handles.size() <= kMaxListedHandles);
    wire::put_u32(body, static_cast<std::uint32_t>(handles.size()));
    for (const auto& h : handles) {
        wire::put_bytes(body, h);
    }
    return {respond(reply_to, rc::kSuccess, body, config_, now, address), {}};
}

HandleAdmin::Step HandleAdmin::run(std::string request, std::string reply_to,
                                   std::optional<std::uint32_t> opcode, node::Principal who,
                                   ProvenIdentity identity, std::uint32_t now,
                                   std::uint32_t reply_session) {
    const ReplyAddress address{opcode, reply_session};
    auto fail = [&](std::uint32_t code, std::string text) {
        return Step{respond_error(reply_to, code, text, config_, now, address), {}};
    };
    if (options_.account_rate != nullptr && options_.account_rate->refuse(who)) {
        return fail(rc::kServerTooBusy, "rate limit exceeded for account " + who.username);
    }
    auto message = decode_message(request);
    if (!message) {
        return fail(rc::kProtocolError, "malformed request: " + message.error().describe());
    }
    const std::uint32_t op = message->header.opcode;
    const std::string_view body = message->body;
    if (op == opcode::kListHandles || op == opcode::kListHomedPrefixes) {
        return list(reply_to, *message, who, address, now);
    }

    // Every operation starts with the handle.
    auto handle_bytes = decode_handle_body(body, op == opcode::kDeleteHandle);
    if (!handle_bytes) {
        return fail(rc::kProtocolError, "malformed request: " + handle_bytes.error().describe());
    }
    auto handle = registry::parse_handle(*handle_bytes, config_.handle_limits);
    if (!handle) {
        return fail(rc::kInvalidHandle, "invalid handle: " + handle.error().message);
    }
    if (!homing_.homes(handle->prefix_key())) {
        return fail(rc::kServerNotResponsible, "That prefix doesn't live here");
    }
    auto snapshot = registry_.snapshot();
    if (auto refusal = node::write_refusal(snapshot, who, *handle)) {
        return fail(rc_of(*refusal), refusal->message);
    }

    registry::WriteOp op_to_run;
    std::string success_body; // CREATE_HANDLE answers with the handle
    switch (op) {
    case opcode::kCreateHandle:
    case opcode::kAddValue:
    case opcode::kModifyValue: {
        if (body.size() > options_.max_record_bytes) {
            return fail(rc::kInvalidValue,
                        node::record_too_large(body.size(), options_.max_record_bytes).message);
        }
        auto record = decode_resolution_response(body); // the same layout: handle, values
        if (!record) {
            return fail(rc::kProtocolError, "malformed values: " + record.error().describe());
        }
        std::vector<registry::HandleValue> values = std::move(record->values);
        std::set<std::int32_t> indices;
        for (const auto& v : values) {
            if (!indices.insert(v.index).second) {
                return fail(rc::kInvalidValue,
                            "index " + std::to_string(v.index) + " is given twice");
            }
        }
        if (op == opcode::kCreateHandle) {
            const bool has_admin = std::any_of(values.begin(), values.end(), [](const auto& v) {
                return registry::equals_folded(v.type, "HS_ADMIN");
            });
            if (!has_admin && !indices.count(kAdminValueIndex) && !identity.handle.empty()) {
                // HANDLE.NET leaves this to its clients; a handle without an administrator
                // could never be changed over the protocol again.
                registry::HandleValue admin;
                admin.index = kAdminValueIndex;
                admin.type = "HS_ADMIN";
                admin.data = encode_admin_value(identity.handle, identity.index);
                values.push_back(std::move(admin));
            }
        } else {
            // ADD needs every index free, MODIFY every index present.
            std::set<std::int32_t> stored;
            const registry::Status st =
                snapshot.visit(*handle, [&](const registry::RecordView& view) {
                    for (const auto& v : view) {
                        stored.insert(v.index);
                    }
                });
            if (!st) {
                return fail(rc_of(st.error().code), st.error().message);
            }
            for (const auto index : indices) {
                const bool present = stored.count(index) != 0;
                if (op == opcode::kAddValue && present) {
                    return fail(rc::kValueAlreadyExists,
                                "index " + std::to_string(index) + " exists already");
                }
                if (op == opcode::kModifyValue && !present) {
                    return fail(rc::kValuesNotFound,
                                "index " + std::to_string(index) + " does not exist");
                }
            }
        }
        auto prepared = node::prepare_record(snapshot, *handle, std::nullopt, std::move(values),
                                             op != opcode::kCreateHandle);
        if (!prepared.ok()) {
            return fail(rc::kInvalidValue, prepared.message(false));
        }
        if (op == opcode::kCreateHandle) {
            op_to_run =
                registry::PutRecord{*handle, std::move(prepared.values), registry::PutMode::create};
            wire::put_bytes(success_body, *handle_bytes);
        } else {
            op_to_run = registry::SetValues{*handle, std::move(prepared.values), false};
        }
        break;
    }
    case opcode::kRemoveValue: {
        auto removal = decode_remove_request(body);
        if (!removal) {
            return fail(rc::kProtocolError, "malformed request: " + removal.error().describe());
        }
        op_to_run = registry::RemoveValues{*handle, std::move(removal->indices)};
        break;
    }
    case opcode::kDeleteHandle:
        op_to_run = registry::DeleteRecord{*handle};
        break;
    default:
        return fail(rc::kOperationNotSupported,
                    "operation not supported: opcode " + std::to_string(op));
    }

    const bool create = op == opcode::kCreateHandle;
    auto work = [this, op_to_run = std::move(op_to_run), account = who.username,
                 reply_to = std::move(reply_to), address, success_body = std::move(success_body),
                 create, now](std::function<void(Answer)> done) mutable {
        node::submit_one(
            registry_, std::move(op_to_run), account,
            [this, reply_to = std::move(reply_to), address, success_body, create, now,
             done = std::move(done)](const registry::OpResult& result) {
                if (result.ok() && !(create && result.outcome == registry::Outcome::unchanged)) {
                    done(respond(reply_to, rc::kSuccess, success_body, config_, now, address));
                    return;
                }
                if (result.ok()) {
                    // A create that found the same record: HANDLE.NET answers "exists".
                    done(respond_error(reply_to, rc::kHandleAlreadyExists, "handle exists", config_,
                                       now, address));
                    return;
                }
                done(respond_error(reply_to, rc_of(result.error.code), result.error.message,
                                   config_, now, address));
            });
    };
    return Step{Answer{}, std::move(work)};
}

} // namespace idnode::resolver::handle::detail
