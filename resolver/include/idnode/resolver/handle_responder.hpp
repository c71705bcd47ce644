// The Handle protocol responder: one request message in, one response message out, no sockets.
//
// `answer()` is everything the UDP and TCP servers need between reading a message and writing
// one; it is a pure function of its arguments (the store is reached through `Lookup`, the clock
// and randomness are passed in), so the same code serves both transports and every vector test.
//
// Semantics (docs/handle-protocol.md#operations and the HANDLE.NET 9.3.1 captures in
// tests/data/handle-2.11.md):
// - RESOLUTION (opcode 1): the handle is validated (RC 102 if invalid); a prefix that is_homed()
//   rejects gets RC 301 "That prefix doesn't live here"; an unknown handle RC 100 with an empty
//   message. Values are selected by the request's index and type lists (ValueFilter::selects: any
//   index or any type; "URL." matches subtypes). Without the PUBL flag, a selection that includes
//   a value without public read permission gets RC 402 and a challenge (request digest + 16-byte
//   nonce), unless context.may_read_private allows it (a logged-in connection); with PUBL such
//   values are left out.
//   An empty selection is RC 200. Otherwise RC 1 with the selected values' stored wire bytes
//   copied as they are, after the handle as the client spelled it.
// - `0.NA/<prefix>` for a homed prefix resolves to a record holding one HS_SITE value (index 1)
//   built from the configured site, so recursive resolvers can find this node.
// - GET_SITE_INFO (opcode 2): RC 1 with the encoded SiteInfo.
// - Every other opcode: RC 5 (operation not supported). Writes go through the HTTPS API.
// - Malformed requests: RC 4 with a message naming the problem, when the envelope is readable
//   (so the client can match the answer by request id); a declared length over 256 KiB also asks
//   for the connection to be closed. Input shorter than an envelope, and any message that is itself
//   a response (response code != 0), get no answer: replying to responses invites reflection loops
//   between servers.
// - Version: the response is written in the client's suggested version (its highest; the message
//   version when it suggests none), lowered to ours (2.11) when higher; ours is always suggested.
// - Envelope: session id and request id echoed (a challenge gets a fresh session id), message id 0.
//   Header: opcode echoed, site_info_serial = site.serial, recursion count echoed, expiration =
//   now + 43200, op flags = AT | REC | the request's CA, PUBL and DNRF | RD when a digest leads the
//   body (when the request set RD, and always for a challenge) | CT when the answer is signed.
// - Signatures: when the request sets CERT and the config has a server_key, every answer to it
//   (errors and challenges included) carries an HS_SIGNED credential (handle_keys.hpp).
// - RESOLUTION bodies may carry bytes after the type list (id-pointer-sdk >= 2.2.3 appends an
//   authentication field, int32 length + bytes, length 0 when unused). They are accepted; a
//   non-empty field is read as the client's credential for the request (see
//   ResolutionRequest::auth_field).
//
// Thread safety: answer() touches nothing but its arguments; it is safe to call concurrently if the
// callables are.
#pragma once

#include "idnode/registry/error.hpp"
#include "idnode/registry/identifier.hpp"
#include "idnode/registry/value.hpp"
#include "idnode/resolver/handle_keys.hpp"
#include "idnode/resolver/handle_protocol.hpp"

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace idnode::resolver::handle {

/// Visits the stored record of `handle`; the view is valid only during the call. The same shape as
/// registry::ReadSnapshot::visit: returns Errc::not_found when there is no such record (the
/// visitor is then not called), other codes for failures (corrupt, unavailable, internal).
using RecordVisitor = std::function<void(const registry::RecordView&)>;
using Lookup = std::function<registry::Status(const registry::Handle&, const RecordVisitor&)>;

/// True if this node serves `prefix_key` (a case-folded prefix such as "88.999"). Whether prefixes
/// below a homed one count as homed is the predicate's decision.
using HomedPredicate = std::function<bool(std::string_view prefix_key)>;

/// Fills the span with unpredictable bytes (challenge nonces and session ids).
using RandomFill = std::function<void(std::span<std::uint8_t>)>;

/// A cryptographically secure RandomFill (OpenSSL RAND_bytes; std::random_device if that ever
/// fails). Thread-safe.
void secure_random_fill(std::span<std::uint8_t> out) noexcept;

/// What does not change from request to request. Owned by the server; read-only in answer().
struct ResponderConfig {
    SiteInfo site;
    /// Handles longer than this are invalid (RC 102); default 255, at most 2048
    /// (docs/identifiers.md#length).
    registry::HandleLimits handle_limits{};
    std::uint32_t response_lifetime = kResponseLifetimeSeconds;
    /// The server's key (handle.private_key): a request with CERT gets its answer signed with
    /// it (HS_SIGNED credential, CT echoed). Null = answers are never signed, CT is not echoed,
    /// and a client that insists on a signature rejects them.
    std::shared_ptr<const ServerKey> server_key;
};

/// May the client read the non-public values of records under `prefix_key` (folded)? Set for a
/// TCP connection whose identity logged in (LOGIN_ID_SYSTEM): the HTTPS API's rule
/// (node::may_read_private) for that identity's account.
using PrivateReadPredicate = std::function<bool(std::string_view prefix_key)>;

/// What a single answer() call may use. References must outlive the call.
struct RequestContext {
    const Lookup& lookup;
    const HomedPredicate& is_homed;
    const RandomFill& random;
    std::uint32_t now = 0; // unix seconds
    /// Null = an anonymous client: non-public values are challenged (or left out with PUBL).
    const PrivateReadPredicate* may_read_private = nullptr;
};

enum class Disposition : std::uint8_t {
    reply,           // send `message`, keep the connection
    reply_and_close, // send `message`, then close the TCP connection (UDP: just send)
    drop,            // send nothing; `message` is empty
};

/// The challenge sent with an RC 402, for a future CHALLENGE_RESPONSE (opcode 200) handler: the
/// client proves itself by signing nonce + digest and echoes session_id.
struct Challenge {
    std::uint32_t session_id = 0;
    std::array<std::uint8_t, kChallengeNonceSize> nonce{};
    DigestAlgorithm digest_algorithm = DigestAlgorithm::sha256;
    std::string request_digest;
};

struct Answer {
    Disposition disposition = Disposition::drop;
    std::string message;                // the whole response, envelope included
    std::uint32_t opcode = 0;           // the request's opcode (0 if unreadable), for metrics
    std::uint32_t response_code = 0;    // the RC sent (0 when dropped), for metrics
    std::optional<WireError> malformed; // why the request was rejected as malformed, for the log
    std::optional<Challenge> challenge; // set with RC 402
    /// A RESOLUTION whose handle was valid and homed, so that the store was asked (the node's
    /// resolutions_today counts these, as it counts the HTTPS resolutions), whatever the outcome.
    bool resolved = false;
    /// ... and the case-folded prefix key of the stored record it found; empty when none was
    /// (not found, a lookup failure, or the synthesized 0.NA/<prefix> record).
    std::string found_prefix;
};

/// Answers one request. `request_message` is one whole message, envelope included: a UDP datagram
/// as received, or a TCP frame cut with probe_frame(). Never throws for any input (std::bad_alloc
/// aside) and never reads outside `request_message`.
Answer answer(std::string_view request_message, const ResponderConfig& config,
              const RequestContext& context);

/// The RC 402 challenge for `request` (any opcode; the administrative ones included), exactly as
/// answer() issues it for non-public values: a fresh session id, a nonce from context.random and
/// the digest of the request's header and body; Answer::challenge holds them. Dropped (empty) for
/// what answer() drops and for a request whose header cannot be read. `session_id`: the session
/// the request came in (its challenge keeps that id) instead of a fresh one.
Answer challenge(std::string_view request, const ResponderConfig& config,
                 const RequestContext& context,
                 std::optional<std::uint32_t> session_id = std::nullopt);

/// A fresh session id as challenges get them: random, positive (HANDLE.NET reads it as a Java
/// int), never 0.
std::uint32_t new_session_id(const RandomFill& random);

/// How respond() addresses a reply beyond echoing the request.
struct ReplyAddress {
    /// The opcode reported (the answer to a RESPONSE_TO_CHALLENGE reports the challenged
    /// request's opcode); nullopt = the request's.
    std::optional<std::uint32_t> opcode;
    /// The envelope's session id (0 = none, as HANDLE.NET answers outside sessions).
    std::uint32_t session_id = 0;
};

/// A reply to `request` with `response_code` and `body` as given (raw body bytes; a request
/// digest is put first when the request asked for one), versioned, addressed and signed as
/// answer()'s. respond_error() writes the body as an error message. Dropped (empty) for what
/// answer() drops.
Answer respond(std::string_view request, std::uint32_t response_code, std::string_view body,
               const ResponderConfig& config, std::uint32_t now, const ReplyAddress& address = {});
Answer respond_error(std::string_view request, std::uint32_t response_code,
                     std::string_view message, const ResponderConfig& config, std::uint32_t now,
                     const ReplyAddress& address = {});

/// Answers the RESOLUTION `resolution` as answer() does (the flags PUBL and CERT as it set
/// them), but addressed, versioned and digested as a reply to `reply_to` with `address`: the
/// answer to a RESPONSE_TO_CHALLENGE that proved the client's identity (the challenged
/// resolution's opcode), or to a MAC'd resolution in a session. `context.may_read_private` says
/// what the proven identity may read.
Answer answer_resolution_as(std::string_view resolution, std::string_view reply_to,
                            const ResponderConfig& config, const RequestContext& context,
                            const ReplyAddress& address);

/// Refuses one request without looking at its body: an error response with `response_code` and
/// `message` (the server uses RC 3 SERVER_TOO_BUSY "rate limit exceeded"), addressed and versioned
/// like answer()'s (request id echoed, opcode echoed, request digest when asked, expiration = now +
/// the lifetime). Drops what answer() drops (input shorter than an envelope, responses).
Answer refuse(std::string_view request_message, std::uint32_t response_code,
              std::string_view message, const ResponderConfig& config, std::uint32_t now);

} // namespace idnode::resolver::handle
