// Handle protocol 2.x message codec (RFC 3651/3652 as spoken by HANDLE.NET 9;
// docs/handle-protocol.md#messages).
//
// A message on the wire is (section numbers are RFC 3652's)
//
//   envelope (20 bytes, §2.2.1)   major:u8 minor:u8 flags_and_suggested_major:u8 suggested_minor:u8
//                                 session_id:u32 request_id:u32 message_id:u32 message_length:u32
//   header   (24 bytes, §2.2.2)   opcode:u32 response_code:u32 op_flags:u32 site_info_serial:u16
//                                 recursion_count:u8 reserved:u8 expiration:u32 body_length:u32
//   body     (body_length bytes)
//   credential                    length:u32 (0 = none) followed by that many bytes
//
// big-endian throughout; `message_length` counts everything after the envelope. Strings and byte
// strings are a u32 length followed by the bytes; lists are a u32 count followed by the items.
//
// Contract of this module:
// - Decoding is defensive. Every fixed field, length and count is checked against what is left
//   before it is read; counts and lengths with the sign bit set are rejected (HANDLE.NET reads them
//   as Java ints); a message is at most kMaxMessageLength bytes after its envelope. Nothing is read
//   past the input, nothing is allocated in proportion to a count before the bytes for it are known
//   to be there, and no exception is thrown for any input: failures are `WireError` values.
// - Decoded views (`MessageView`, `ResolutionRequest`, `Credential`) hold string_views into the
//   caller's buffer: they are valid only while that buffer is alive and unchanged.
// - Encoders append to a caller-owned std::string; they may throw std::bad_alloc, nothing else.
// - Everything here is pure and re-entrant: no global state, safe to call from any thread.
//
// The pure request -> response logic lives in handle_responder.hpp.
#pragma once

#include "idnode/registry/value.hpp"

#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace idnode::resolver::handle {

// ---- Sizes and limits --------------------------------------------------------------------------

inline constexpr std::size_t kEnvelopeSize = 20;
inline constexpr std::size_t kHeaderSize = 24;
/// Upper bound of the envelope's message_length (HANDLE.NET's MAX_MESSAGE_LENGTH, 256 KiB). A
/// larger declared length means the peer is broken or hostile; a TCP stream cannot be
/// resynchronised after it, so the connection is closed.
inline constexpr std::uint32_t kMaxMessageLength = 256 * 1024;
/// Classic UDP datagram size; a message that does not fit is split (see udp_datagrams).
inline constexpr std::size_t kMaxUdpDatagram = 512;
/// Default cap on the bytes sent over UDP for one request (handle.udp_max_reply_bytes).
inline constexpr std::size_t kDefaultUdpMaxReplyBytes = 8192;
inline constexpr std::size_t kChallengeNonceSize = 16;
/// Responses are valid for twelve hours: the captured server put expiration = now + 43200 in every
/// response, independent of the request's own expiration.
inline constexpr std::uint32_t kResponseLifetimeSeconds = 43200;

// ---- Versions ----------------------------------------------------------------------------------

/// The protocol version this node speaks (HANDLE.NET 9.3: 2.11).
inline constexpr std::uint8_t kMajorVersion = 2;
inline constexpr std::uint8_t kMinorVersion = 11;

// ---- Operation codes (RFC 3652 §2.2.2.1, HANDLE.NET AbstractMessage.OC_*) ----------------------

namespace opcode {
inline constexpr std::uint32_t kReserved = 0;
inline constexpr std::uint32_t kResolution = 1;
inline constexpr std::uint32_t kGetSiteInfo = 2;
inline constexpr std::uint32_t kCreateHandle = 100;
inline constexpr std::uint32_t kDeleteHandle = 101;
inline constexpr std::uint32_t kAddValue = 102;
inline constexpr std::uint32_t kRemoveValue = 103;
inline constexpr std::uint32_t kModifyValue = 104;
inline constexpr std::uint32_t kListHandles = 105;
inline constexpr std::uint32_t kListPrefixes = 106;
inline constexpr std::uint32_t kChallengeResponse = 200; // client's answer to an RC 402 challenge
inline constexpr std::uint32_t kVerifyResponse = 201;
inline constexpr std::uint32_t kHomePrefix = 300;
inline constexpr std::uint32_t kUnhomePrefix = 301;
inline constexpr std::uint32_t kListHomedPrefixes = 302;
inline constexpr std::uint32_t kSessionSetup = 400;
inline constexpr std::uint32_t kSessionTerminate = 401;
} // namespace opcode

// ---- Response codes (RFC 3652 §2.2.2.2, HANDLE.NET AbstractMessage.RC_*) -----------------------

namespace rc {
inline constexpr std::uint32_t kReserved = 0; // every request carries 0
inline constexpr std::uint32_t kSuccess = 1;
inline constexpr std::uint32_t kError = 2;
inline constexpr std::uint32_t kServerTooBusy = 3;
inline constexpr std::uint32_t kProtocolError = 4;
inline constexpr std::uint32_t kOperationNotSupported = 5;
inline constexpr std::uint32_t kRecursionCountTooHigh = 6;
inline constexpr std::uint32_t kHandleNotFound = 100;
inline constexpr std::uint32_t kHandleAlreadyExists = 101;
inline constexpr std::uint32_t kInvalidHandle = 102;
inline constexpr std::uint32_t kValuesNotFound = 200;
inline constexpr std::uint32_t kValueAlreadyExists = 201;
inline constexpr std::uint32_t kInvalidValue = 202;
inline constexpr std::uint32_t kOutOfDateSiteInfo = 300;
inline constexpr std::uint32_t kServerNotResponsible = 301; // "That prefix doesn't live here"
inline constexpr std::uint32_t kServiceReferral = 302;
inline constexpr std::uint32_t kPrefixReferral = 303;
inline constexpr std::uint32_t kInvalidAdmin = 400;
inline constexpr std::uint32_t kInsufficientPermissions = 401;
inline constexpr std::uint32_t kAuthenticationNeeded = 402; // body: request digest + nonce
inline constexpr std::uint32_t kAuthenticationFailed = 403;
inline constexpr std::uint32_t kInvalidCredential = 404;
inline constexpr std::uint32_t kAuthenticationTimeout = 405;
inline constexpr std::uint32_t kAuthenticationError = 406;
/// IDIS (CAICT ID-SDK MessageCommon RC_RELOGIN, "CLIENT REPEAT LOGIN"): a login on a TCP
/// connection that is logged in already.
inline constexpr std::uint32_t kIdisRelogin = 407;
/// IDIS (RC_LOGIN_FIRST, "PLEASE LOGIN FIRST"): an administrative request on a connection whose
/// client logs in the IDIS way (it sent LOGIN or LOGIN_ID_SYSTEM) but is not logged in.
inline constexpr std::uint32_t kIdisLoginFirst = 408;
inline constexpr std::uint32_t kSessionTimeout = 500;
inline constexpr std::uint32_t kSessionFailed = 501;
} // namespace rc

// ---- Header opFlags (RFC 3652 §2.2.2.3; names in brackets are HANDLE.NET's MSG_FLAG_*) ---------

namespace opflag {
/// AT [AUTH]: authoritative. Request: answer from a primary, not from a cache. Response: set by
/// every answer of the captured server (it is authoritative for what it homes).
inline constexpr std::uint32_t kAuthoritative = 0x8000'0000;
/// CT [CERT]: request asks for a signed (certified) response. Echoed, with an HS_SIGNED
/// credential, when the server has a key (ResponderConfig::server_key).
inline constexpr std::uint32_t kCertified = 0x4000'0000;
/// ENC [ENCR]: request asks for an encrypted response (needs a session). Not honoured, not echoed.
inline constexpr std::uint32_t kEncrypted = 0x2000'0000;
/// REC [RECU]: request allows recursion. HANDLE.NET sets it on every response (its messages default
/// to recursive = true); the vectors show it on every answer, so we do the same.
inline constexpr std::uint32_t kRecursive = 0x1000'0000;
/// CA [CACR]: a caching server should sign its answer. Echoed like HANDLE.NET does.
inline constexpr std::uint32_t kCacheCertified = 0x0800'0000;
/// CN [CONT]: more parts of this message follow (streamed responses). Never set by us.
inline constexpr std::uint32_t kContinuous = 0x0400'0000;
/// KC [KPAL]: client wants the TCP connection kept open. We keep connections open regardless
/// (docs/handle-protocol.md#tcp); HANDLE.NET does not echo it, nor do we.
inline constexpr std::uint32_t kKeepAlive = 0x0200'0000;
/// PO [PUBL]: public only - leave values without public read permission out of a resolution
/// instead of asking for authentication. Echoed in the response (vector resolve-public-only-flag).
inline constexpr std::uint32_t kPublicOnly = 0x0100'0000;
/// RD [RRDG]: the response body starts with a digest of the request (see append_request_digest).
/// A client may ask for it; a challenge (RC 402) always carries it.
inline constexpr std::uint32_t kRequestDigest = 0x0080'0000;
/// OW [OVRW]: create/add should overwrite existing values (administration only).
inline constexpr std::uint32_t kOverwrite = 0x0040'0000;
/// MINT: create should mint a new suffix (administration only).
inline constexpr std::uint32_t kMintSuffix = 0x0020'0000;
/// DNRF: do not send a referral. Echoed like HANDLE.NET does.
inline constexpr std::uint32_t kDoNotRefer = 0x0010'0000;
} // namespace opflag

// ---- Envelope flags (byte 2 of the envelope, high bits; HANDLE.NET ENV_FLAG_*) -----------------

namespace envflag {
inline constexpr std::uint8_t kCompressed = 0x80; // CP
inline constexpr std::uint8_t kEncrypted = 0x40;  // EC: needs a session; we have none
/// TC: the message is split over several UDP datagrams; each carries the envelope with message_id
/// = its sequence number (from 0) and message_length = the length of the whole message.
inline constexpr std::uint8_t kTruncated = 0x20;
/// The low two bits of byte 2 carry the suggested major version (HANDLE.NET >= 2.8).
inline constexpr std::uint8_t kSuggestedMajorMask = 0x03;
} // namespace envflag

// ---- Errors ------------------------------------------------------------------------------------

enum class WireErrc : std::uint8_t {
    truncated = 1,        // the input ends inside a fixed-size field
    length_overrun,       // a declared length or count needs more bytes than are left
    negative_length,      // a length or count with the sign bit set
    oversize,             // envelope message_length > kMaxMessageLength (close the connection)
    length_mismatch,      // envelope, header and credential lengths disagree with the input
    trailing_bytes,       // bytes left over after a complete structure
    unsupported_envelope, // compressed, encrypted or multi-datagram (TC) request
    unsupported_version,  // major version other than 2
    invalid_field,        // a field outside its domain (e.g. an unknown transport in site info)
};

/// snake_case name ("length_overrun"), stable for logs and metrics.
const char* wire_errc_name(WireErrc code) noexcept;

struct WireError {
    WireErrc code = WireErrc::truncated;
    std::size_t offset = 0;  // byte offset in the decoded input where the problem was found
    const char* detail = ""; // static text naming the field, e.g. "type list count"

    /// "length_overrun at byte 48: type list count".
    std::string describe() const;
};

/// A decoded T or the reason decoding failed. Accessing the alternative that is not there is a
/// programming error (asserted in debug builds).
template <class T> class [[nodiscard]] Decoded {
public:
    Decoded(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    Decoded(WireError error) : v_(std::in_place_index<1>, error) {}

    bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }
    T& value() & {
        assert(ok());
        return *std::get_if<0>(&v_);
    }
    const T& value() const& {
        assert(ok());
        return *std::get_if<0>(&v_);
    }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    const WireError& error() const {
        assert(!ok());
        return *std::get_if<1>(&v_);
    }

private:
    std::variant<T, WireError> v_;
};

// ---- Envelope, header, credential ---------------------------------------------------------------

struct Envelope {
    std::uint8_t major = kMajorVersion;
    std::uint8_t minor = kMinorVersion;
    std::uint8_t flags = 0; // envflag::kCompressed | kEncrypted | kTruncated
    /// The sender's highest version. On decode, a sender that suggests nothing (major bits 0, as
    /// before 2.8) is taken to suggest its message version, as HANDLE.NET does.
    std::uint8_t suggested_major = kMajorVersion;
    std::uint8_t suggested_minor = kMinorVersion;
    std::uint32_t session_id = 0;
    std::uint32_t request_id = 0;
    std::uint32_t message_id = 0; // datagram sequence number of a multi-datagram (TC) message
    std::uint32_t message_length = 0;

    friend bool operator==(const Envelope&, const Envelope&) = default;
};

struct Header {
    std::uint32_t opcode = opcode::kReserved;
    std::uint32_t response_code = rc::kReserved;
    std::uint32_t op_flags = 0;
    std::uint16_t site_info_serial = 0xFFFF; // requests send 0xFFFF (-1): "unknown"
    std::uint8_t recursion_count = 0;
    std::uint32_t expiration = 0; // unix seconds after which the message is stale
    std::uint32_t body_length = 0;

    friend bool operator==(const Header&, const Header&) = default;
};

/// The credential section (RFC 3652 §2.2.4): who signed the message and how. We parse its
/// structure so a malformed one is rejected, but do not verify signatures yet.
struct Credential {
    std::uint8_t version = 0;
    std::uint8_t reserved = 0;
    std::uint16_t options = 0;
    std::string_view signer_handle;
    std::int32_t signer_index = 0;
    std::string_view type;        // "HS_SIGNED" (public key) or "HS_MAC" (session)
    std::string_view signed_info; // digest algorithm + signature, uninterpreted
};

/// A zero-copy view of one whole message (envelope included).
struct MessageView {
    Envelope envelope;
    Header header;
    /// The bytes a request digest covers: header and body, as received. (Reproduced against the
    /// captured challenges: SHA-256 over exactly these bytes matches the server's digest.)
    std::string_view header_and_body;
    std::string_view body;
    std::optional<Credential> credential; // absent when the credential length is 0
};

/// Decodes the 20-byte envelope at the start of `bytes` (extra bytes are ignored). Fails only with
/// truncated (fewer than 20 bytes): versions, flags and message_length are reported, not judged
/// (decode_message and probe_frame judge them), so a server can still echo the request id of a
/// message it rejects.
Decoded<Envelope> decode_envelope(std::string_view bytes) noexcept;

/// Decodes a complete message: `message` must be exactly 20 + message_length bytes, and
/// message_length at most kMaxMessageLength (else oversize). Rejects compressed, encrypted and
/// multi-datagram (TC) messages (unsupported_envelope), major versions other than 2, and any
/// header/body/credential length that disagrees with the input. The body is not interpreted (see
/// decode_resolution_request).
Decoded<MessageView> decode_message(std::string_view message) noexcept;

/// Decodes the bytes after a credential's length field.
Decoded<Credential> decode_credential(std::string_view bytes) noexcept;

/// Where the next message of a TCP byte stream ends.
struct FrameProbe {
    enum class State : std::uint8_t {
        need_more, // fewer than `size` bytes are buffered; read more
        complete,  // the first `size` bytes are one whole message (envelope included)
        oversize,  // the envelope declares more than kMaxMessageLength: answer RC 4, then close
    };
    State state = State::need_more;
    std::size_t size = kEnvelopeSize;
};
FrameProbe probe_frame(std::string_view buffered) noexcept;

void encode_envelope(std::string& out, const Envelope& envelope);
void encode_header(std::string& out, const Header& header);

/// Appends a whole message. Ignores the message_length and body_length in `envelope` and `header`
/// and writes the true ones. `credential` is the credential section's content (empty = none).
void encode_message(std::string& out, const Envelope& envelope, const Header& header,
                    std::string_view body, std::string_view credential = {});

// ---- Bodies ------------------------------------------------------------------------------------

/// RESOLUTION request body (RFC 3652 §3.1): handle, index list, type list - and whatever a client
/// sends after the type list. id-pointer-sdk >= 2.2.3 always appends an authentication field
/// there (int32 length + bytes; length 0 when unused), so trailing bytes are accepted rather
/// than refused; everything before them is decoded as strictly as ever.
struct ResolutionRequest {
    std::string_view handle; // bytes as sent; not yet validated as a handle
    std::vector<std::int32_t> indices;
    std::vector<std::string_view> types;
    /// Every byte after the type list (empty for RFC 3652 clients).
    std::string_view trailing;
    /// The content of the authentication field, when `trailing` is exactly one length-prefixed
    /// field (empty content for id-pointer-sdk's "none"); absent otherwise.
    std::optional<std::string_view> auth_field;
};
Decoded<ResolutionRequest> decode_resolution_request(std::string_view body);
void encode_resolution_request(std::string& out, std::string_view handle,
                               std::span<const std::int32_t> indices,
                               std::span<const std::string_view> types);

/// GET_SITE_INFO request body: HANDLE.NET sends the handle "/" ; an empty body is accepted too.
/// Returns the handle bytes (empty for an empty body).
Decoded<std::string_view> decode_site_info_request(std::string_view body) noexcept;

/// Body of an error response (RC 2..6, 100, 102, 200, 301, ...): one length-prefixed UTF-8 message.
/// RC 100 sends an empty message, RC 301 "That prefix doesn't live here".
void encode_error_body(std::string& out, std::string_view message);
Decoded<std::string_view> decode_error_body(std::string_view body) noexcept;

/// Request digest algorithms (HANDLE.NET Common.HASH_CODE_*). The algorithm follows the version of
/// the response: MD5 in the legacy layout before 2.1, SHA-1 for 2.1-2.6, SHA-256 from 2.7.
enum class DigestAlgorithm : std::uint8_t { md5_legacy = 0, md5 = 1, sha1 = 2, sha256 = 3 };
DigestAlgorithm digest_algorithm_for(std::uint8_t major, std::uint8_t minor) noexcept;

/// Appends the request digest that starts a response body when the response has opflag RD set:
/// algorithm code (1 byte) + the raw digest of `header_and_body`; for md5_legacy a u32 length
/// (16) + the digest instead. (Vector: 0x03 + SHA-256 over the request's header and body.)
void append_request_digest(std::string& out, DigestAlgorithm algorithm,
                           std::string_view header_and_body);

/// A request digest found at the start of a response body and what follows it.
struct RequestDigestView {
    DigestAlgorithm algorithm = DigestAlgorithm::sha256;
    std::string_view digest;
    std::string_view rest; // the body after the digest
};
Decoded<RequestDigestView> decode_request_digest(std::string_view body) noexcept;

/// RC 402 challenge body after the request digest: the nonce as length-prefixed bytes.
void encode_challenge_nonce(std::string& out, std::span<const std::uint8_t> nonce);

/// RC 1 RESOLUTION response body (after any request digest): handle, value count, values in the
/// encoding of value.hpp. Decodes into an owned record (for clients and tests); every value is
/// validated like a stored one.
Decoded<registry::Record> decode_resolution_response(std::string_view body);

// ---- Site information (RFC 3651 §3.2.2 HS_SITE) ------------------------------------------------

/// Transport of a service interface.
enum class Transport : std::uint8_t { udp = 0, tcp = 1, http = 2, https = 3 };

/// Service types of an interface (a bit mask: 3 = both).
namespace service {
inline constexpr std::uint8_t kOutOfService = 0;
inline constexpr std::uint8_t kAdmin = 1;
inline constexpr std::uint8_t kQuery = 2;
inline constexpr std::uint8_t kAdminAndQuery = 3;
} // namespace service

struct ServiceInterface {
    std::uint8_t service_type = service::kQuery;
    Transport transport = Transport::tcp;
    std::uint32_t port = 2641;
    friend bool operator==(const ServiceInterface&, const ServiceInterface&) = default;
};

/// A 16-byte server address. IPv4 is 12 zero bytes then the 4 address bytes (as the captured
/// server sends 127.0.0.1), not the ::ffff:a.b.c.d mapped form.
using SiteAddress = std::array<std::uint8_t, 16>;
SiteAddress ipv4_site_address(std::uint8_t a, std::uint8_t b, std::uint8_t c,
                              std::uint8_t d) noexcept;
/// Parses "127.0.0.1" or "::1" into the 16-byte form; nullopt if it is neither.
std::optional<SiteAddress> parse_site_address(std::string_view text);

struct SiteServer {
    std::uint32_t server_id = 1;
    SiteAddress address{};
    /// The server's public key in Handle's HS_PUBKEY encoding (e.g. from encode_rsa_public_key),
    /// copied into the record as is; empty if the node has no key.
    std::string public_key;
    std::vector<ServiceInterface> interfaces;
    friend bool operator==(const SiteServer&, const SiteServer&) = default;
};

struct SiteAttribute {
    std::string name;
    std::string value;
    friend bool operator==(const SiteAttribute&, const SiteAttribute&) = default;
};

/// How a multi-server site spreads handles over its servers.
namespace hash_option {
inline constexpr std::uint8_t kByPrefix = 0;
inline constexpr std::uint8_t kBySuffix = 1;
inline constexpr std::uint8_t kByAll = 2;
} // namespace hash_option

struct SiteInfo {
    std::uint16_t data_format_version = 1;
    std::uint8_t protocol_major = kMajorVersion;
    std::uint8_t protocol_minor = kMinorVersion;
    std::uint16_t serial = 1; // also sent as site_info_serial in every response header
    bool primary = true;
    bool multi_primary = false;
    std::uint8_t hash_option = hash_option::kByAll;
    std::string hash_filter;
    std::vector<SiteAttribute> attributes; // e.g. {"desc", "..."}
    std::vector<SiteServer> servers;
    friend bool operator==(const SiteInfo&, const SiteInfo&) = default;
};

/// Appends the HS_SITE encoding: version:u16 protocol:u8.u8 serial:u16 primary_mask:u8
/// (0x80 primary, 0x40 multi-primary) hash_option:u8 hash_filter:str attributes servers.
void encode_site_info(std::string& out, const SiteInfo& site);
std::string encode_site_info(const SiteInfo& site);
Decoded<SiteInfo> decode_site_info(std::string_view bytes);

/// The HS_PUBKEY encoding of an RSA public key as HANDLE.NET writes it: "RSA_PUB_KEY", u16 flags
/// (0), exponent, modulus (each length-prefixed, big-endian two's complement, so a leading 0x00
/// is added when the top bit is set), and a trailing u32 0 (HANDLE.NET sizes its buffer for four
/// length fields and writes three). `exponent` and `modulus` are unsigned big-endian magnitudes;
/// leading zero bytes are ignored. For site info built from raw numbers (tests, fuzzing); from a
/// key, encode_public_key_pem.
std::string encode_rsa_public_key(std::string_view exponent, std::string_view modulus);

/// Reads a PEM public key ("-----BEGIN PUBLIC KEY-----", as `openssl rsa -pubout` writes it) and
/// returns its HS_PUBKEY encoding (node::hs_public_key_from_pem). Only RSA keys: what this server
/// signs with and publishes in HS_SITE. Errc::invalid_value with a reason otherwise.
registry::Result<std::string> encode_public_key_pem(std::string_view pem);

/// Every administrative right HANDLE.NET defines (add/delete/modify handle, values, admins,
/// list, ...), as HS_ADMIN rights.
inline constexpr std::uint16_t kAllAdminRights = 0x0fff;
/// Where HANDLE.NET puts a handle's HS_ADMIN value.
inline constexpr std::int32_t kAdminValueIndex = 100;

/// HS_ADMIN data: u16 rights, the administrator identity's handle and index.
std::string encode_admin_value(std::string_view handle, std::int32_t index,
                               std::uint16_t rights = kAllAdminRights);

/// The HS_SITE value served for `0.NA/<prefix>` (docs/handle-protocol.md#resolution): index 1, type
/// "HS_SITE", data = encode_site_info(site), ttl 86400, public read.
registry::HandleValue site_info_value(const SiteInfo& site, std::uint32_t timestamp,
                                      std::int32_t index = 1);

// ---- UDP ---------------------------------------------------------------------------------------

struct UdpReplyPolicy {
    /// Largest datagram sent, envelope included. HANDLE.NET clients reassemble a multi-datagram
    /// reply by placing fragment i at i x (512 - 20): every fragment but the last must carry
    /// exactly max_datagram - 20 message bytes, and clients assume 512.
    std::size_t max_datagram = kMaxUdpDatagram;
    /// Most bytes (envelopes included) sent for one request (handle.udp_max_reply_bytes): the
    /// bound on how far a forged request can be amplified. A reply that would need more is not
    /// sent over UDP at all (see udp_datagrams).
    std::size_t max_reply_bytes = kDefaultUdpMaxReplyBytes;
};

/// Turns one encoded response message into the datagrams to send. A message that fits
/// `policy.max_datagram` is returned unchanged, alone. A larger one is cut into the RFC 3652
/// multi-datagram layout HANDLE.NET uses - every datagram carries the original envelope with TC
/// set, message_id = its sequence number (0..n-1) and message_length = the whole message's length
/// - and every fragment is returned, as long as their total size stays within
/// `policy.max_reply_bytes`. Past that nothing is returned: the caller answers with
/// udp_too_large() instead. Input shorter than an envelope is returned unchanged.
std::vector<std::string> udp_datagrams(std::string_view response_message,
                                       const UdpReplyPolicy& policy = {});

/// The message of the RC 2 (ERROR) answer sent over UDP when the real answer is over
/// max_reply_bytes. RC 2 is what makes the reference clients switch transports at once:
/// HANDLE.NET's resolver turns an RC 2 response into an exception and moves on to the next
/// protocol in its order (UDP, TCP, HTTP), where a lone TC fragment would leave it waiting
/// through its UDP retry schedule (0.5 + 1 + 1.5 s) before trying TCP.
std::string udp_too_large_message(std::size_t reply_bytes, std::size_t max_reply_bytes);

} // namespace idnode::resolver::handle
