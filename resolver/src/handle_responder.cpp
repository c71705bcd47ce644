#include "idnode/resolver/handle_responder.hpp"

#include "handle_wire.hpp"
#include "idnode/resolver/prefix_records.hpp"

#include <openssl/rand.h>

#include <random>
#include <utility>

namespace idnode::resolver::handle {
namespace {

// The captured server's words for RC 301; clients and people recognise them.
constexpr std::string_view kNotHomedMessage = "That prefix doesn't live here";
// Derived-prefix records live under the global prefix "0.NA" ("0.NA/88.999").

constexpr std::size_t kHeaderBodyLengthOffset = kEnvelopeSize + 20;

/// One exchange: the request as far as it could be read, and how to write the response.
struct Exchange {
    /// Answers in the version negotiate_version() picks.
    Exchange(const ResponderConfig& c, const RequestContext& ctx, const Envelope& envelope)
        : config(c), context(ctx), request_envelope(envelope) {
        negotiate_version();
    }

    const ResponderConfig& config;
    const RequestContext& context;
    Envelope request_envelope;
    std::uint32_t opcode = opcode::kReserved;
    std::uint32_t request_flags = 0;
    std::uint8_t recursion_count = 0;
    std::string_view header_and_body; // empty when the header could not be read
    std::uint8_t major = kMajorVersion;
    std::uint8_t minor = kMinorVersion;

    /// Answer in the client's suggested version (HANDLE.NET AbstractResponse: suggested, then
    /// capped at ours). A nonsensical suggestion falls back to the message's own version.
    void negotiate_version() noexcept {
        std::uint8_t want_major = request_envelope.suggested_major;
        std::uint8_t want_minor = request_envelope.suggested_minor;
        if (want_major != kMajorVersion) {
            want_major = request_envelope.major;
            want_minor = request_envelope.minor;
        }
        if (want_major != kMajorVersion) {
            major = kMajorVersion;
            minor = kMinorVersion;
            return;
        }
        major = want_major;
        minor = want_minor > kMinorVersion ? kMinorVersion : want_minor;
    }

    /// Whatever else is wrong with `request`, learns its opcode (for the reply and metrics) when
    /// the header is there. Returns the answer that drops it when it is itself a response: those
    /// are never answered.
    std::optional<Answer> read_opcode(std::string_view request) {
        if (request.size() >= kEnvelopeSize + 8) {
            opcode = wire::load_u32(request.data() + kEnvelopeSize);
            if (wire::load_u32(request.data() + kEnvelopeSize + 4) != rc::kReserved) {
                Answer dropped;
                dropped.opcode = opcode;
                return dropped;
            }
        }
        return std::nullopt;
    }

    /// Takes what a response echoes from the decoded request's header.
    void take_header(const MessageView& message) noexcept {
        request_flags = message.header.op_flags;
        recursion_count = message.header.recursion_count;
        header_and_body = message.header_and_body;
    }

    bool digest_requested() const noexcept {
        return !header_and_body.empty() && (request_flags & opflag::kRequestDigest) != 0;
    }
};

/// The answer to input without a readable envelope: nothing to address a reply to.
Answer unaddressable(const WireError& error) {
    Answer dropped;
    dropped.malformed = error;
    return dropped;
}

/// A response under construction: envelope and header are written first with zero lengths,
/// the body is appended, and finish() writes the credential length and patches the lengths.
class ResponseDraft {
public:
    ResponseDraft(const Exchange& ex, std::uint32_t response_code, std::uint32_t session_id,
                  bool with_digest)
        : response_code_(response_code) {
        Envelope env;
        env.major = ex.major;
        env.minor = ex.minor;
        env.suggested_major = kMajorVersion;
        env.suggested_minor = kMinorVersion;
        env.session_id = session_id;
        env.request_id = ex.request_envelope.request_id;
        env.message_id = 0;

        Header header;
        header.opcode = ex.opcode;
        header.response_code = response_code;
        header.op_flags = opflag::kAuthoritative | opflag::kRecursive |
                          (ex.request_flags &
                           (opflag::kCacheCertified | opflag::kPublicOnly | opflag::kDoNotRefer));
        if (with_digest) {
            header.op_flags |= opflag::kRequestDigest;
        }
        header.site_info_serial = ex.config.site.serial;
        header.recursion_count = ex.recursion_count;
        header.expiration = ex.context.now + ex.config.response_lifetime;

        out_.reserve(256);
        encode_envelope(out_, env);
        encode_header(out_, header);
        if (with_digest) {
            append_request_digest(out_, digest_algorithm_for(ex.major, ex.minor),
                                  ex.header_and_body);
        }
    }

    std::string& body() noexcept { return out_; }
    std::size_t message_length() const noexcept { return out_.size() + 4 - kEnvelopeSize; }

    Answer finish(const Exchange& ex, Disposition disposition = Disposition::reply) && {
        const auto body_length =
            static_cast<std::uint32_t>(out_.size() - kEnvelopeSize - kHeaderSize);
        wire::patch_u32(out_, kHeaderBodyLengthOffset, body_length);
        sign_if_asked(ex);
        wire::patch_u32(out_, 16, static_cast<std::uint32_t>(out_.size() - kEnvelopeSize));
        Answer a;
        a.disposition = disposition;
        a.message = std::move(out_);
        a.opcode = ex.opcode;
        a.response_code = response_code_;
        return a;
    }

private:
    /// Appends the credential: an HS_SIGNED one when the request set CERT and this server has a
    /// key (CT is then set in the header first, since the signature covers it), else none.
    void sign_if_asked(const Exchange& ex) {
        const ServerKey* key = ex.config.server_key.get();
        if (key == nullptr || (ex.request_flags & opflag::kCertified) == 0) {
            wire::put_u32(out_, 0);
            return;
        }
        const std::size_t flags_offset = kEnvelopeSize + 8;
        wire::patch_u32(out_, flags_offset,
                        wire::load_u32(out_.data() + flags_offset) | opflag::kCertified);
        const std::string signature = key->sign(signed_bytes(out_));
        if (signature.empty()) {
            // OpenSSL failed: an unsigned answer, which the client rejects as unverifiable.
            wire::patch_u32(out_, flags_offset,
                            wire::load_u32(out_.data() + flags_offset) & ~opflag::kCertified);
            wire::put_u32(out_, 0);
            return;
        }
        wire::put_bytes(out_, signed_credential(signature));
    }

    std::string out_;
    std::uint32_t response_code_;
};

Answer error_answer(const Exchange& ex, std::uint32_t response_code, std::string_view message,
                    Disposition disposition = Disposition::reply) {
    ResponseDraft draft(ex, response_code, ex.request_envelope.session_id, ex.digest_requested());
    encode_error_body(draft.body(), message);
    return std::move(draft).finish(ex, disposition);
}

Answer protocol_error(const Exchange& ex, const WireError& error,
                      Disposition disposition = Disposition::reply) {
    Answer a =
        error_answer(ex, rc::kProtocolError, "malformed request: " + error.describe(), disposition);
    a.malformed = error;
    return a;
}

Answer not_homed(const Exchange& ex) {
    return error_answer(ex, rc::kServerNotResponsible, kNotHomedMessage);
}

std::uint32_t random_session_id(const RandomFill& random) {
    std::array<std::uint8_t, 4> bytes{};
    random(bytes);
    // HANDLE.NET treats session ids as Java ints and 0 as "no session": keep it positive.
    const std::uint32_t id = ((std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) |
                              (std::uint32_t{bytes[2]} << 8) | bytes[3]) &
                             0x7FFF'FFFFu;
    return id == 0 ? 1 : id;
}

Answer challenge_answer(const Exchange& ex, std::optional<std::uint32_t> session_id = {}) {
    Challenge challenge;
    challenge.session_id = session_id ? *session_id : random_session_id(ex.context.random);
    ex.context.random(challenge.nonce);
    challenge.digest_algorithm = digest_algorithm_for(ex.major, ex.minor);

    ResponseDraft draft(ex, rc::kAuthenticationNeeded, challenge.session_id, true);
    const std::size_t digest_start = kEnvelopeSize + kHeaderSize;
    const auto digest = decode_request_digest(std::string_view(draft.body()).substr(digest_start));
    if (digest) {
        challenge.request_digest.assign(digest->digest);
    }
    encode_challenge_nonce(draft.body(), challenge.nonce);
    Answer a = std::move(draft).finish(ex);
    a.challenge = std::move(challenge);
    return a;
}

/// Builds the response to a RESOLUTION from one record (stored or synthesized).
Answer answer_from_record(const Exchange& ex, const ResolutionRequest& request,
                          const registry::RecordView& record, std::string_view prefix_key) {
    registry::ValueFilter filter;
    filter.indices = request.indices;
    filter.types.assign(request.types.begin(), request.types.end());
    const bool public_only = (ex.request_flags & opflag::kPublicOnly) != 0;
    const PrivateReadPredicate* may = ex.context.may_read_private;
    const bool private_ok = !public_only && may != nullptr && *may && (*may)(prefix_key);
    auto readable = [&](const registry::ValueView& value) {
        return value.permissions.public_read() || private_ok;
    };

    // First pass decides the outcome; only a success needs the second.
    std::uint32_t selected = 0;
    for (const auto& value : record) {
        if (!filter.selects(value.index, value.type)) {
            continue;
        }
        if (!readable(value)) {
            if (public_only) {
                continue;
            }
            // Ask the client to prove who it is (the answer is not run here yet: see
            // docs/handle-protocol.md#not-implemented).
            return challenge_answer(ex);
        }
        ++selected;
    }
    if (selected == 0) {
        return error_answer(ex, rc::kValuesNotFound,
                            public_only ? "no public value matches the requested indexes or types"
                                        : "no value matches the requested indexes or types");
    }

    ResponseDraft draft(ex, rc::kSuccess, ex.request_envelope.session_id, ex.digest_requested());
    std::string& body = draft.body();
    wire::put_bytes(body, request.handle); // the handle as the client spelled it
    wire::put_u32(body, selected);
    for (const auto& value : record) {
        if (filter.selects(value.index, value.type) && readable(value)) {
            body.append(value.wire); // stored bytes are the protocol's value encoding
        }
    }
    if (draft.message_length() > kMaxMessageLength) {
        return error_answer(ex, rc::kError,
                            "the selected values exceed the 256 KiB message limit; select fewer "
                            "by index or type");
    }
    return std::move(draft).finish(ex);
}

Answer answer_lookup_failure(const Exchange& ex, const registry::Error& error) {
    switch (error.code) {
    case registry::Errc::not_found:
        return error_answer(ex, rc::kHandleNotFound, ""); // as the captured server: empty message
    case registry::Errc::invalid_handle:
        return error_answer(ex, rc::kInvalidHandle, error.message);
    case registry::Errc::not_homed:
        return not_homed(ex);
    case registry::Errc::unavailable:
        return error_answer(ex, rc::kServerTooBusy, "the server is shutting down; try again");
    default:
        // corrupt / internal: the details are for the operator's log, not the client.
        return error_answer(ex, rc::kError, "internal server error");
    }
}

Answer answer_resolution(const Exchange& ex, std::string_view body) {
    auto request = decode_resolution_request(body);
    if (!request) {
        return protocol_error(ex, request.error());
    }
    auto handle = registry::parse_handle(request->handle, ex.config.handle_limits);
    if (!handle) {
        return error_answer(ex, rc::kInvalidHandle, "invalid handle: " + handle.error().message);
    }
    const RequestContext& ctx = ex.context;

    // 0.NA/<prefix> (unless this node homes 0.NA): the prefix handle of <prefix>, answered here
    // when <prefix> is homed here; the lookup composes it (prefix_records.hpp).
    bool prefix_handle = false;
    if (handle->prefix_key() == kGlobalPrefixKey && !ctx.is_homed(kGlobalPrefixKey)) {
        auto target = registry::parse_prefix(handle->suffix());
        if (!target || !ctx.is_homed(*target)) {
            return not_homed(ex);
        }
        prefix_handle = true;
    } else if (!ctx.is_homed(handle->prefix_key())) {
        return not_homed(ex);
    }
    std::optional<Answer> answer;
    const registry::Status status = ctx.lookup(*handle, [&](const registry::RecordView& record) {
        answer = answer_from_record(ex, *request, record, handle->prefix_key());
    });
    if (!status.ok()) {
        Answer a = answer_lookup_failure(ex, status.error());
        a.resolved = true;
        return a;
    }
    if (!answer) {
        return error_answer(ex, rc::kError, "internal server error");
    }
    answer->resolved = true;
    if (!prefix_handle) {
        answer->found_prefix = handle->prefix_key();
    }
    return std::move(*answer);
}

Answer answer_site_info(const Exchange& ex, std::string_view body) {
    auto request = decode_site_info_request(body);
    if (!request) {
        return protocol_error(ex, request.error());
    }
    ResponseDraft draft(ex, rc::kSuccess, ex.request_envelope.session_id, ex.digest_requested());
    encode_site_info(draft.body(), ex.config.site);
    return std::move(draft).finish(ex);
}

} // namespace

void secure_random_fill(std::span<std::uint8_t> out) noexcept {
    if (out.empty()) {
        return;
    }
    if (RAND_bytes(out.data(), static_cast<int>(out.size())) == 1) {
        return;
    }
    try {
        std::random_device device;
        for (auto& byte : out) {
            byte = static_cast<std::uint8_t>(device());
        }
    } catch (...) {
        // No entropy source at all: leave the bytes as they are; nonces are then predictable,
        // which only weakens challenges this server never verifies yet.
    }
}

Answer answer(std::string_view request, const ResponderConfig& config,
              const RequestContext& context) {
    auto envelope = decode_envelope(request);
    if (!envelope) {
        return unaddressable(envelope.error());
    }
    Exchange ex(config, context, *envelope);
    if (auto dropped = ex.read_opcode(request)) {
        return std::move(*dropped);
    }

    auto message = decode_message(request);
    if (!message) {
        const bool oversize = message.error().code == WireErrc::oversize;
        return protocol_error(ex, message.error(),
                              oversize ? Disposition::reply_and_close : Disposition::reply);
    }
    ex.take_header(*message);

    switch (message->header.opcode) {
    case opcode::kResolution:
        return answer_resolution(ex, message->body);
    case opcode::kGetSiteInfo:
        return answer_site_info(ex, message->body);
    default:
        return error_answer(ex, rc::kOperationNotSupported,
                            "operation not supported: opcode " +
                                std::to_string(message->header.opcode));
    }
}

namespace {

/// The exchange for a reply written outside answer(): addressed and versioned like answer()'s.
/// nullopt when answer() would drop the request (too short, or itself a response).
std::optional<Exchange> exchange_for(std::string_view request, const ResponderConfig& config,
                                     const RequestContext& context) {
    auto envelope = decode_envelope(request);
    if (!envelope) {
        return std::nullopt;
    }
    Exchange ex(config, context, *envelope);
    if (ex.read_opcode(request)) {
        return std::nullopt;
    }
    if (auto decoded = decode_message(request)) {
        ex.take_header(*decoded);
    }
    return ex;
}

} // namespace

Answer challenge(std::string_view request, const ResponderConfig& config,
                 const RequestContext& context, std::optional<std::uint32_t> session_id) {
    auto ex = exchange_for(request, config, context);
    if (!ex || ex->header_and_body.empty()) {
        return Answer{};
    }
    return challenge_answer(*ex, session_id);
}

std::uint32_t new_session_id(const RandomFill& random) {
    return random_session_id(random);
}

Answer answer_resolution_as(std::string_view resolution, std::string_view reply_to,
                            const ResponderConfig& config, const RequestContext& context,
                            const ReplyAddress& address) {
    auto ex = exchange_for(reply_to, config, context);
    if (!ex) {
        return Answer{};
    }
    ex->request_envelope.session_id = address.session_id;
    if (address.opcode) {
        ex->opcode = *address.opcode;
    }
    auto original = decode_message(resolution);
    if (!original) {
        return protocol_error(*ex, original.error());
    }
    ex->request_flags = original->header.op_flags;
    return answer_resolution(*ex, original->body);
}

Answer respond(std::string_view request, std::uint32_t response_code, std::string_view body,
               const ResponderConfig& config, std::uint32_t now, const ReplyAddress& address) {
    const Lookup no_lookup;
    const HomedPredicate no_homed;
    const RandomFill no_random;
    const RequestContext context{no_lookup, no_homed, no_random, now};
    auto ex = exchange_for(request, config, context);
    if (!ex) {
        return Answer{};
    }
    if (address.opcode) {
        ex->opcode = *address.opcode;
    }
    ResponseDraft draft(*ex, response_code, address.session_id, ex->digest_requested());
    draft.body().append(body);
    return std::move(draft).finish(*ex);
}

Answer respond_error(std::string_view request, std::uint32_t response_code,
                     std::string_view message, const ResponderConfig& config, std::uint32_t now,
                     const ReplyAddress& address) {
    std::string body;
    encode_error_body(body, message);
    return respond(request, response_code, body, config, now, address);
}

Answer refuse(std::string_view request, std::uint32_t response_code, std::string_view message,
              const ResponderConfig& config, std::uint32_t now) {
    auto envelope = decode_envelope(request);
    if (!envelope) {
        return unaddressable(envelope.error());
    }
    const Lookup no_lookup;
    const HomedPredicate no_homed;
    const RandomFill no_random;
    const RequestContext context{no_lookup, no_homed, no_random, now};
    Exchange ex(config, context, *envelope);
    if (auto dropped = ex.read_opcode(request)) {
        return std::move(*dropped);
    }
    if (auto decoded = decode_message(request)) {
        ex.take_header(*decoded);
    }
    return error_answer(ex, response_code, message);
}

} // namespace idnode::resolver::handle
