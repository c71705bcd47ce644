#include "idnode/resolver/handle_protocol.hpp"

#include "handle_wire.hpp"

#include "idnode/node/handle_public_key.hpp"

#include <arpa/inet.h>
#include <openssl/evp.h>

#include <algorithm>
#include <iterator>
#include <limits>

namespace idnode::resolver::handle {
namespace {

constexpr std::string_view kRsaPublicKeyType = "RSA_PUB_KEY";
constexpr std::string_view kSiteInfoType = "HS_SITE";

// Minimum encoded sizes, used to bound counts before any allocation.
constexpr std::size_t kMinAttributeBytes = 8; // two empty strings
constexpr std::size_t kMinServerBytes = 28;   // id + address + empty key + interface count
constexpr std::size_t kInterfaceBytes = 6;    // type + transport + port
constexpr std::size_t kMinValueBytes = 26;    // value.hpp layout with empty type and data
constexpr std::size_t kMinReferenceBytes = 8; // empty handle + index

template <class T> Decoded<T> failure(const wire::Reader& r) {
    return Decoded<T>(r.error());
}

Envelope envelope_from(std::string_view bytes) noexcept {
    Envelope env;
    const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
    env.major = b[0];
    env.minor = b[1];
    env.flags = static_cast<std::uint8_t>(
        b[2] & (envflag::kCompressed | envflag::kEncrypted | envflag::kTruncated));
    env.suggested_major = static_cast<std::uint8_t>(b[2] & envflag::kSuggestedMajorMask);
    env.suggested_minor = b[3];
    if (env.suggested_major == 0) {
        // Before 2.8 the byte was 0: the sender suggests the version it speaks.
        env.suggested_major = env.major;
        env.suggested_minor = env.minor;
    }
    env.session_id = wire::load_u32(bytes.data() + 4);
    env.request_id = wire::load_u32(bytes.data() + 8);
    env.message_id = wire::load_u32(bytes.data() + 12);
    env.message_length = wire::load_u32(bytes.data() + 16);
    return env;
}

bool read_value(wire::Reader& r, registry::HandleValue& v) {
    std::uint8_t ttl_type = 0;
    std::uint8_t permissions = 0;
    std::string_view type, data;
    std::uint32_t references = 0;
    if (!r.i32(v.index, "value index") || !r.u32(v.timestamp, "value timestamp") ||
        !r.u8(ttl_type, "value ttl type") || !r.i32(v.ttl, "value ttl") ||
        !r.u8(permissions, "value permissions") || !r.bytes(type, "value type") ||
        !r.bytes(data, "value data") ||
        !r.count(references, kMinReferenceBytes, "value reference count")) {
        return false;
    }
    if (ttl_type > 1) {
        return r.fail(WireErrc::invalid_field, "value ttl type");
    }
    if ((permissions & 0xF0) != 0) {
        return r.fail(WireErrc::invalid_field, "value permissions");
    }
    v.ttl_type = static_cast<registry::TtlType>(ttl_type);
    v.permissions.bits = permissions;
    v.type.assign(type);
    v.data.assign(data);
    v.references.clear();
    v.references.reserve(references);
    for (std::uint32_t i = 0; i < references; ++i) {
        std::string_view handle;
        std::int32_t index = 0;
        if (!r.bytes(handle, "reference handle") || !r.i32(index, "reference index")) {
            return false;
        }
        v.references.push_back(registry::ValueReference{std::string(handle), index});
    }
    return true;
}

const EVP_MD* digest_md(DigestAlgorithm algorithm) noexcept {
    switch (algorithm) {
    case DigestAlgorithm::md5_legacy:
    case DigestAlgorithm::md5:
        return EVP_md5();
    case DigestAlgorithm::sha1:
        return EVP_sha1();
    case DigestAlgorithm::sha256:
        return EVP_sha256();
    }
    return EVP_sha256();
}

std::size_t digest_size(DigestAlgorithm algorithm) noexcept {
    switch (algorithm) {
    case DigestAlgorithm::md5_legacy:
    case DigestAlgorithm::md5:
        return 16;
    case DigestAlgorithm::sha1:
        return 20;
    case DigestAlgorithm::sha256:
        return 32;
    }
    return 32;
}

} // namespace

// ---- Errors ------------------------------------------------------------------------------------

const char* wire_errc_name(WireErrc code) noexcept {
    // Indexed by the enumerator's value minus 1.
    static constexpr const char* kNames[] = {
        "truncated",       "length_overrun", "negative_length",      "oversize",
        "length_mismatch", "trailing_bytes", "unsupported_envelope", "unsupported_version",
        "invalid_field"};
    static_assert(std::size(kNames) == static_cast<std::size_t>(WireErrc::invalid_field));
    const auto i = static_cast<std::size_t>(code) - 1;
    return i < std::size(kNames) ? kNames[i] : "unknown";
}

std::string WireError::describe() const {
    return std::string(wire_errc_name(code)) + " at byte " + std::to_string(offset) + ": " + detail;
}

// ---- Envelope, header, credential ---------------------------------------------------------------

Decoded<Envelope> decode_envelope(std::string_view bytes) noexcept {
    if (bytes.size() < kEnvelopeSize) {
        return WireError{WireErrc::truncated, bytes.size(), "envelope"};
    }
    return envelope_from(bytes);
}

Decoded<Credential> decode_credential(std::string_view bytes) noexcept {
    wire::Reader r(bytes);
    Credential c;
    std::uint32_t section_length = 0;
    r.u8(c.version, "credential version");
    r.u8(c.reserved, "credential reserved byte");
    r.u16(c.options, "credential options");
    r.bytes(c.signer_handle, "credential signer handle");
    r.i32(c.signer_index, "credential signer index");
    r.bytes(c.type, "credential type");
    if (r.count(section_length, 1, "credential signature section length")) {
        r.raw(c.signed_info, section_length, "credential signature section");
    }
    r.at_end("after the credential");
    if (r.failed()) {
        return failure<Credential>(r);
    }
    return c;
}

Decoded<MessageView> decode_message(std::string_view message) noexcept {
    auto env = decode_envelope(message);
    if (!env) {
        return env.error();
    }
    MessageView view;
    view.envelope = *env;
    if (view.envelope.message_length > kMaxMessageLength) {
        return WireError{WireErrc::oversize, 16, "envelope message length"};
    }
    // Checked before the length: a TC datagram is legitimately shorter than message_length.
    if (view.envelope.flags != 0) {
        return WireError{WireErrc::unsupported_envelope, 2,
                         (view.envelope.flags & envflag::kTruncated) != 0
                             ? "multi-datagram (TC) messages are not supported; use TCP"
                             : "compressed or encrypted messages are not supported"};
    }
    if (message.size() - kEnvelopeSize != view.envelope.message_length) {
        return WireError{WireErrc::length_mismatch, 16,
                         "envelope message length disagrees with the bytes received"};
    }
    if (view.envelope.major != kMajorVersion) {
        return WireError{WireErrc::unsupported_version, 0,
                         "only protocol major version 2 is spoken"};
    }

    const std::string_view rest = message.substr(kEnvelopeSize);
    wire::Reader r(rest, kEnvelopeSize);
    Header& h = view.header;
    std::uint8_t reserved = 0;
    r.u32(h.opcode, "header opcode");
    r.u32(h.response_code, "header response code");
    r.u32(h.op_flags, "header op flags");
    r.u16(h.site_info_serial, "header site info serial");
    r.u8(h.recursion_count, "header recursion count");
    r.u8(reserved, "header reserved byte");
    r.u32(h.expiration, "header expiration");
    if (r.failed()) {
        return failure<MessageView>(r);
    }
    // The body length is a Java int: the sign bit is an error, and it must leave room for the
    // credential length that follows.
    std::uint32_t body_length = 0;
    if (!r.count(body_length, 1, "header body length")) {
        return failure<MessageView>(r);
    }
    h.body_length = body_length;
    r.raw(view.body, body_length, "body");
    std::uint32_t credential_length = 0;
    std::string_view credential;
    if (r.count(credential_length, 1, "credential length")) {
        r.raw(credential, credential_length, "credential");
    }
    r.at_end("after the credential");
    if (r.failed()) {
        return failure<MessageView>(r);
    }
    view.header_and_body = rest.substr(0, kHeaderSize + body_length);
    if (credential_length > 0) {
        auto parsed = decode_credential(credential);
        if (!parsed) {
            WireError e = parsed.error();
            e.offset += kEnvelopeSize + kHeaderSize + body_length + 4;
            return e;
        }
        view.credential = *parsed;
    }
    return view;
}

FrameProbe probe_frame(std::string_view buffered) noexcept {
    if (buffered.size() < kEnvelopeSize) {
        return {FrameProbe::State::need_more, kEnvelopeSize};
    }
    const std::uint32_t length = wire::load_u32(buffered.data() + 16);
    if (length > kMaxMessageLength) {
        return {FrameProbe::State::oversize, kEnvelopeSize};
    }
    const std::size_t size = kEnvelopeSize + length;
    return {buffered.size() >= size ? FrameProbe::State::complete : FrameProbe::State::need_more,
            size};
}

void encode_envelope(std::string& out, const Envelope& e) {
    wire::put_u8(out, e.major);
    wire::put_u8(out, e.minor);
    wire::put_u8(
        out, static_cast<std::uint8_t>(
                 (e.flags & (envflag::kCompressed | envflag::kEncrypted | envflag::kTruncated)) |
                 (e.suggested_major & envflag::kSuggestedMajorMask)));
    wire::put_u8(out, e.suggested_minor);
    wire::put_u32(out, e.session_id);
    wire::put_u32(out, e.request_id);
    wire::put_u32(out, e.message_id);
    wire::put_u32(out, e.message_length);
}

void encode_header(std::string& out, const Header& h) {
    wire::put_u32(out, h.opcode);
    wire::put_u32(out, h.response_code);
    wire::put_u32(out, h.op_flags);
    wire::put_u16(out, h.site_info_serial);
    wire::put_u8(out, h.recursion_count);
    wire::put_u8(out, 0);
    wire::put_u32(out, h.expiration);
    wire::put_u32(out, h.body_length);
}

void encode_message(std::string& out, const Envelope& envelope, const Header& header,
                    std::string_view body, std::string_view credential) {
    Envelope env = envelope;
    env.message_length =
        static_cast<std::uint32_t>(kHeaderSize + body.size() + 4 + credential.size());
    Header hdr = header;
    hdr.body_length = static_cast<std::uint32_t>(body.size());
    out.reserve(out.size() + kEnvelopeSize + env.message_length);
    encode_envelope(out, env);
    encode_header(out, hdr);
    out.append(body);
    wire::put_bytes(out, credential);
}

// ---- Bodies ------------------------------------------------------------------------------------

Decoded<ResolutionRequest> decode_resolution_request(std::string_view body) {
    wire::Reader r(body);
    ResolutionRequest req;
    std::uint32_t index_count = 0;
    std::uint32_t type_count = 0;
    if (!r.bytes(req.handle, "handle") || !r.count(index_count, 4, "index list count")) {
        return failure<ResolutionRequest>(r);
    }
    req.indices.resize(index_count);
    for (auto& index : req.indices) {
        r.i32(index, "index list");
    }
    if (!r.count(type_count, 4, "type list count")) {
        return failure<ResolutionRequest>(r);
    }
    req.types.resize(type_count);
    for (auto& type : req.types) {
        r.bytes(type, "type list");
    }
    if (r.failed()) {
        return failure<ResolutionRequest>(r);
    }
    req.trailing = r.rest();
    if (!req.trailing.empty()) {
        wire::Reader field(req.trailing);
        std::string_view auth;
        if (field.bytes(auth, "authentication field") && field.at_end("authentication field")) {
            req.auth_field = auth;
        }
    }
    return req;
}

void encode_resolution_request(std::string& out, std::string_view handle,
                               std::span<const std::int32_t> indices,
                               std::span<const std::string_view> types) {
    wire::put_bytes(out, handle);
    wire::put_u32(out, static_cast<std::uint32_t>(indices.size()));
    for (const auto index : indices) {
        wire::put_u32(out, static_cast<std::uint32_t>(index));
    }
    wire::put_u32(out, static_cast<std::uint32_t>(types.size()));
    for (const auto type : types) {
        wire::put_bytes(out, type);
    }
}

namespace {

/// A body made of one length-prefixed string (`what`) and nothing after it.
Decoded<std::string_view> decode_one_string(std::string_view body, const char* what,
                                            const char* after) noexcept {
    wire::Reader r(body);
    std::string_view value;
    r.bytes(value, what);
    r.at_end(after);
    if (r.failed()) {
        return failure<std::string_view>(r);
    }
    return value;
}

} // namespace

Decoded<std::string_view> decode_site_info_request(std::string_view body) noexcept {
    if (body.empty()) {
        return std::string_view{};
    }
    return decode_one_string(body, "handle", "after the handle");
}

void encode_error_body(std::string& out, std::string_view message) {
    wire::put_bytes(out, message);
}

Decoded<std::string_view> decode_error_body(std::string_view body) noexcept {
    return decode_one_string(body, "error message", "after the error message");
}

DigestAlgorithm digest_algorithm_for(std::uint8_t major, std::uint8_t minor) noexcept {
    if (major < 2 || (major == 2 && minor < 1)) {
        return DigestAlgorithm::md5_legacy;
    }
    if (major == 2 && minor < 7) {
        return DigestAlgorithm::sha1;
    }
    return DigestAlgorithm::sha256;
}

void append_request_digest(std::string& out, DigestAlgorithm algorithm,
                           std::string_view header_and_body) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (EVP_Digest(header_and_body.data(), header_and_body.size(), digest, &size,
                   digest_md(algorithm), nullptr) != 1) {
        // Only reachable if OpenSSL cannot provide a basic digest; a zero digest makes the
        // client reject the response rather than trust it.
        size = static_cast<unsigned int>(digest_size(algorithm));
        std::fill_n(digest, size, 0);
    }
    const std::string_view bytes(reinterpret_cast<const char*>(digest), size);
    if (algorithm == DigestAlgorithm::md5_legacy) {
        wire::put_bytes(out, bytes); // length (16) + digest; its first byte 0 names the format
    } else {
        wire::put_u8(out, static_cast<std::uint8_t>(algorithm));
        out.append(bytes);
    }
}

Decoded<RequestDigestView> decode_request_digest(std::string_view body) noexcept {
    wire::Reader r(body);
    RequestDigestView view;
    std::uint8_t code = 0;
    if (!r.u8(code, "request digest algorithm")) {
        return failure<RequestDigestView>(r);
    }
    switch (code) {
    case 0: {
        // Legacy: the algorithm byte is the first byte of a u32 length.
        wire::Reader legacy(body);
        if (!legacy.bytes(view.digest, "request digest")) {
            return failure<RequestDigestView>(legacy);
        }
        view.algorithm = DigestAlgorithm::md5_legacy;
        view.rest = legacy.rest();
        return view;
    }
    case 1:
    case 2:
    case 3:
        view.algorithm = static_cast<DigestAlgorithm>(code);
        if (!r.raw(view.digest, digest_size(view.algorithm), "request digest")) {
            return failure<RequestDigestView>(r);
        }
        view.rest = r.rest();
        return view;
    default:
        return WireError{WireErrc::invalid_field, 0, "request digest algorithm"};
    }
}

void encode_challenge_nonce(std::string& out, std::span<const std::uint8_t> nonce) {
    wire::put_bytes(out,
                    std::string_view(reinterpret_cast<const char*>(nonce.data()), nonce.size()));
}

Decoded<registry::Record> decode_resolution_response(std::string_view body) {
    wire::Reader r(body);
    registry::Record record;
    std::string_view handle;
    std::uint32_t count = 0;
    if (!r.bytes(handle, "handle") || !r.count(count, kMinValueBytes, "value count")) {
        return failure<registry::Record>(r);
    }
    record.spelling.assign(handle);
    record.values.resize(count);
    for (auto& value : record.values) {
        if (!read_value(r, value)) {
            return failure<registry::Record>(r);
        }
    }
    if (!r.at_end("after the values")) {
        return failure<registry::Record>(r);
    }
    return record;
}

// ---- Site information ---------------------------------------------------------------------------

SiteAddress ipv4_site_address(std::uint8_t a, std::uint8_t b, std::uint8_t c,
                              std::uint8_t d) noexcept {
    SiteAddress address{};
    address[12] = a;
    address[13] = b;
    address[14] = c;
    address[15] = d;
    return address;
}

std::optional<SiteAddress> parse_site_address(std::string_view text) {
    const std::string z(text); // inet_pton needs a terminated string
    unsigned char v4[4];
    if (inet_pton(AF_INET, z.c_str(), v4) == 1) {
        return ipv4_site_address(v4[0], v4[1], v4[2], v4[3]);
    }
    SiteAddress v6{};
    if (inet_pton(AF_INET6, z.c_str(), v6.data()) == 1) {
        return v6;
    }
    return std::nullopt;
}

void encode_site_info(std::string& out, const SiteInfo& site) {
    wire::put_u16(out, site.data_format_version);
    wire::put_u8(out, site.protocol_major);
    wire::put_u8(out, site.protocol_minor);
    wire::put_u16(out, site.serial);
    wire::put_u8(out, static_cast<std::uint8_t>((site.primary ? 0x80 : 0) |
                                                (site.multi_primary ? 0x40 : 0)));
    wire::put_u8(out, site.hash_option);
    wire::put_bytes(out, site.hash_filter);
    wire::put_u32(out, static_cast<std::uint32_t>(site.attributes.size()));
    for (const auto& attribute : site.attributes) {
        wire::put_bytes(out, attribute.name);
        wire::put_bytes(out, attribute.value);
    }
    wire::put_u32(out, static_cast<std::uint32_t>(site.servers.size()));
    for (const auto& server : site.servers) {
        wire::put_u32(out, server.server_id);
        out.append(reinterpret_cast<const char*>(server.address.data()), server.address.size());
        wire::put_bytes(out, server.public_key);
        wire::put_u32(out, static_cast<std::uint32_t>(server.interfaces.size()));
        for (const auto& interface : server.interfaces) {
            wire::put_u8(out, interface.service_type);
            wire::put_u8(out, static_cast<std::uint8_t>(interface.transport));
            wire::put_u32(out, interface.port);
        }
    }
}

std::string encode_site_info(const SiteInfo& site) {
    std::string out;
    encode_site_info(out, site);
    return out;
}

Decoded<SiteInfo> decode_site_info(std::string_view bytes) {
    wire::Reader r(bytes);
    SiteInfo site;
    std::uint8_t primary_mask = 0;
    std::string_view filter;
    std::uint32_t attribute_count = 0;
    r.u16(site.data_format_version, "site data format version");
    r.u8(site.protocol_major, "site protocol major version");
    r.u8(site.protocol_minor, "site protocol minor version");
    r.u16(site.serial, "site serial");
    r.u8(primary_mask, "site primary mask");
    r.u8(site.hash_option, "site hash option");
    r.bytes(filter, "site hash filter");
    if (!r.count(attribute_count, kMinAttributeBytes, "site attribute count")) {
        return failure<SiteInfo>(r);
    }
    site.primary = (primary_mask & 0x80) != 0;
    site.multi_primary = (primary_mask & 0x40) != 0;
    site.hash_filter.assign(filter);
    site.attributes.resize(attribute_count);
    for (auto& attribute : site.attributes) {
        std::string_view name, value;
        if (!r.bytes(name, "site attribute name") || !r.bytes(value, "site attribute value")) {
            return failure<SiteInfo>(r);
        }
        attribute.name.assign(name);
        attribute.value.assign(value);
    }
    std::uint32_t server_count = 0;
    if (!r.count(server_count, kMinServerBytes, "site server count")) {
        return failure<SiteInfo>(r);
    }
    site.servers.resize(server_count);
    for (auto& server : site.servers) {
        std::string_view address, key;
        std::uint32_t interface_count = 0;
        if (!r.u32(server.server_id, "server id") || !r.raw(address, 16, "server address") ||
            !r.bytes(key, "server public key") ||
            !r.count(interface_count, kInterfaceBytes, "server interface count")) {
            return failure<SiteInfo>(r);
        }
        std::copy(address.begin(), address.end(), reinterpret_cast<char*>(server.address.data()));
        server.public_key.assign(key);
        server.interfaces.resize(interface_count);
        for (auto& interface : server.interfaces) {
            std::uint8_t transport = 0;
            if (!r.u8(interface.service_type, "interface service type") ||
                !r.u8(transport, "interface transport") ||
                !r.u32(interface.port, "interface port")) {
                return failure<SiteInfo>(r);
            }
            if (transport > static_cast<std::uint8_t>(Transport::https)) {
                r.fail(WireErrc::invalid_field, "interface transport");
                return failure<SiteInfo>(r);
            }
            interface.transport = static_cast<Transport>(transport);
        }
    }
    if (!r.at_end("after the site servers")) {
        return failure<SiteInfo>(r);
    }
    return site;
}

std::string encode_rsa_public_key(std::string_view exponent, std::string_view modulus) {
    std::string out;
    wire::put_bytes(out, kRsaPublicKeyType);
    wire::put_u16(out, 0); // flags, reserved
    wire::put_bytes(out, wire::twos_complement_magnitude(exponent));
    wire::put_bytes(out, wire::twos_complement_magnitude(modulus));
    wire::put_u32(out, 0); // HANDLE.NET's unused fourth length field
    return out;
}

registry::Result<std::string> encode_public_key_pem(std::string_view pem) {
    auto invalid = [](std::string why) {
        return registry::Error{registry::Errc::invalid_value, "public key: " + std::move(why)};
    };
    auto encoded = node::hs_public_key_from_pem(pem);
    if (!encoded) {
        return invalid("not a PEM RSA public key (expected -----BEGIN PUBLIC KEY-----)");
    }
    // The value starts with the int4-length-prefixed key type.
    if (encoded->compare(4, kRsaPublicKeyType.size(), kRsaPublicKeyType) != 0) {
        return invalid("only RSA keys can be published in HS_SITE");
    }
    return std::move(*encoded);
}

std::string encode_admin_value(std::string_view handle, std::int32_t index, std::uint16_t rights) {
    std::string out;
    wire::put_u16(out, rights);
    wire::put_bytes(out, handle);
    wire::put_u32(out, static_cast<std::uint32_t>(index));
    return out;
}

registry::HandleValue site_info_value(const SiteInfo& site, std::uint32_t timestamp,
                                      std::int32_t index) {
    registry::HandleValue value;
    value.index = index;
    value.type.assign(kSiteInfoType);
    value.data = encode_site_info(site);
    value.ttl = registry::kDefaultTtl;
    value.ttl_type = registry::TtlType::relative;
    value.timestamp = timestamp;
    return value; // default permissions 1110: public read
}

// ---- UDP ---------------------------------------------------------------------------------------

std::vector<std::string> udp_datagrams(std::string_view response, const UdpReplyPolicy& policy) {
    const std::size_t max_datagram = std::max(policy.max_datagram, kEnvelopeSize + 1);
    if (response.size() <= max_datagram || response.size() < kEnvelopeSize) {
        return {std::string(response)};
    }
    const std::string_view envelope = response.substr(0, kEnvelopeSize);
    const std::string_view payload = response.substr(kEnvelopeSize);
    const std::size_t chunk = max_datagram - kEnvelopeSize;
    const std::size_t count = (payload.size() + chunk - 1) / chunk;
    const std::size_t total = payload.size() + count * kEnvelopeSize;
    if (total > policy.max_reply_bytes) {
        return {};
    }
    std::vector<std::string> datagrams;
    datagrams.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        const std::string_view part = payload.substr(i * chunk, chunk);
        std::string datagram;
        datagram.reserve(kEnvelopeSize + part.size());
        datagram.append(envelope);
        datagram[2] =
            static_cast<char>(static_cast<unsigned char>(datagram[2]) | envflag::kTruncated);
        wire::patch_u32(datagram, 12, static_cast<std::uint32_t>(i)); // message_id = sequence
        datagram.append(part);
        datagrams.push_back(std::move(datagram));
    }
    return datagrams;
}

std::string udp_too_large_message(std::size_t reply_bytes, std::size_t max_reply_bytes) {
    return "answer too large for UDP (" + std::to_string(reply_bytes) + " bytes, limit " +
           std::to_string(max_reply_bytes) + "); ask over TCP";
}

} // namespace idnode::resolver::handle
