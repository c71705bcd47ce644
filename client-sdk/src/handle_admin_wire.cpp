#include "handle_admin_wire.hpp"

#include "client_impl.hpp"
#include "idnode/codec/utf8.hpp"

#include <boost/json.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <strings.h>

#include <cstring>
#include <ctime>

namespace idnode::sdk::handle_wire {

namespace json = boost::json;

using detail::make_error;

using Clock = std::chrono::steady_clock;

// ---- protocol constants (RFC 3652, HANDLE.NET, IDIS) --------------------------------------------

void put_u8(std::string& out, std::uint8_t v) {
    out.push_back(static_cast<char>(v));
}

void put_u16(std::string& out, std::uint16_t v) {
    out.push_back(static_cast<char>(v >> 8));
    out.push_back(static_cast<char>(v & 0xFF));
}

void put_u32(std::string& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8)
        out.push_back(static_cast<char>((v >> shift) & 0xFF));
}

void put_i32(std::string& out, std::int32_t v) {
    put_u32(out, static_cast<std::uint32_t>(v));
}

void put_bytes(std::string& out, std::string_view bytes) {
    put_u32(out, static_cast<std::uint32_t>(bytes.size()));
    out.append(bytes);
}

std::uint32_t load_u32(std::string_view bytes, std::size_t at) {
    const auto* u = reinterpret_cast<const unsigned char*>(bytes.data() + at);
    return (std::uint32_t{u[0]} << 24) | (std::uint32_t{u[1]} << 16) | (std::uint32_t{u[2]} << 8) |
           u[3];
}

Result<std::uint8_t> permission_bits(std::string_view text) {
    if (text.empty())
        return kDefaultPermissions;
    if (text.size() != 4 || text.find_first_not_of("01") != std::string_view::npos) {
        return make_error(ErrorKind::invalid_argument,
                          "permissions must be 4 characters of 0/1 (adminRead adminWrite "
                          "publicRead publicWrite), got \"" +
                              std::string(text.substr(0, 16)) + "\"");
    }
    const std::uint8_t bits[] = {kPermAdminRead, kPermAdminWrite, kPermPublicRead,
                                 kPermPublicWrite};
    std::uint8_t out = 0;
    for (std::size_t i = 0; i < 4; ++i) {
        if (text[i] == '1')
            out = static_cast<std::uint8_t>(out | bits[i]);
    }
    return out;
}

std::string permission_text(std::uint8_t bits) {
    if (bits == kDefaultPermissions)
        return {};
    std::string out;
    for (const std::uint8_t bit :
         {kPermAdminRead, kPermAdminWrite, kPermPublicRead, kPermPublicWrite})
        out.push_back((bits & bit) != 0 ? '1' : '0');
    return out;
}

Result<std::string> admin_bytes(std::string_view json_text, const std::string& where) {
    auto bad = [&] {
        return make_error(ErrorKind::invalid_argument,
                          where + ": format \"admin\" needs data {\"handle\":…,\"index\":…,"
                                  "\"permissions\":\"<12 characters of 0/1>\"}");
    };
    boost::system::error_code ec;
    const json::value v = json::parse(json_text, ec);
    const json::object* o = ec ? nullptr : v.if_object();
    const json::value* h = o != nullptr ? o->if_contains("handle") : nullptr;
    const json::value* i = o != nullptr ? o->if_contains("index") : nullptr;
    const json::value* p = o != nullptr ? o->if_contains("permissions") : nullptr;
    if (h == nullptr || !h->is_string() || i == nullptr || p == nullptr || !p->is_string())
        return bad();
    std::int64_t index = -1;
    if (i->is_int64())
        index = i->get_int64();
    else if (i->is_uint64() && i->get_uint64() <= INT32_MAX)
        index = static_cast<std::int64_t>(i->get_uint64());
    const std::string_view perms = p->get_string();
    if (index < 0 || index > INT32_MAX || perms.size() != 12 ||
        perms.find_first_not_of("01") != std::string_view::npos)
        return bad();
    std::uint16_t bits = 0;
    for (std::size_t k = 0; k < 12; ++k) {
        if (perms[k] == '1')
            bits = static_cast<std::uint16_t>(bits | (1u << (11 - k)));
    }
    std::string out;
    put_u16(out, bits);
    put_bytes(out, h->get_string());
    put_i32(out, static_cast<std::int32_t>(index));
    return out;
}

std::optional<std::string> admin_json(std::string_view bytes) {
    Reader r(bytes);
    const std::uint32_t high = r.u8();
    const std::uint32_t low = r.u8();
    const std::string_view handle = r.bytes();
    const std::uint32_t index = r.u32();
    const std::uint32_t bits = (high << 8) | low;
    if (!r.at_end() || bits > 0x0FFF || index > static_cast<std::uint32_t>(INT32_MAX))
        return std::nullopt;
    std::string perms(12, '0');
    for (std::size_t k = 0; k < 12; ++k) {
        if ((bits & (1u << (11 - k))) != 0)
            perms[k] = '1';
    }
    json::object o;
    o["handle"] = handle;
    o["index"] = static_cast<std::int64_t>(index);
    o["permissions"] = perms;
    return json::serialize(o);
}

std::string rfc3339(std::uint32_t unix_seconds) {
    const std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return text;
}

Result<std::string> values_body(std::string_view handle, const std::vector<Value>& values) {
    std::string body;
    put_bytes(body, handle);
    put_u32(body, static_cast<std::uint32_t>(values.size()));
    for (std::size_t i = 0; i < values.size(); ++i) {
        const Value& v = values[i];
        const std::string where = "values[" + std::to_string(i) + "]";
        auto perms = permission_bits(v.permissions);
        if (!perms) {
            Error e = perms.error();
            e.message = where + ": " + e.message;
            return e;
        }
        std::string data = v.data;
        if (v.format == "admin") {
            auto admin = admin_bytes(v.data, where);
            if (!admin)
                return admin.error();
            data = std::move(admin).value();
        }
        put_i32(body, v.index);
        put_u32(body, 0); // timestamp: the node stamps every value it stores
        put_u8(body, 0);  // ttl type: relative
        put_i32(body, v.ttl);
        put_u8(body, *perms);
        put_bytes(body, v.type);
        put_bytes(body, data);
        put_u32(body, 0); // references
    }
    return body;
}

Result<Record> record_of(std::string_view body, std::string_view asked) {
    auto bad = [](const std::string& what) {
        return make_error(ErrorKind::protocol, "unreadable resolution answer: " + what, 0,
                          static_cast<int>(kRcSuccess));
    };
    Reader r(body);
    Record record;
    record.handle = std::string(r.bytes());
    const std::uint32_t count = r.u32();
    // Each value takes at least 26 bytes: a count beyond what is left is a broken answer.
    if (!r.ok() || count > r.left() / 26)
        return bad("value count");
    if (record.handle.empty())
        record.handle = std::string(asked);
    for (std::uint32_t n = 0; n < count; ++n) {
        Value v;
        v.index = r.i32();
        const std::uint32_t timestamp = r.u32();
        r.u8(); // ttl type; relative and absolute ttls are both returned as the number
        v.ttl = r.i32();
        const std::uint8_t perms = r.u8();
        v.type = std::string(r.bytes());
        const std::string_view data = r.bytes();
        const std::uint32_t references = r.u32();
        for (std::uint32_t k = 0; k < references && r.ok(); ++k) {
            r.bytes();
            r.u32();
        }
        if (!r.ok())
            return bad("value " + std::to_string(n));
        v.timestamp = rfc3339(timestamp);
        v.permissions = permission_text(perms);
        std::optional<std::string> admin;
        if (v.type.size() == 8 && strncasecmp(v.type.c_str(), "HS_ADMIN", 8) == 0)
            admin = admin_json(data);
        if (admin) {
            v.format = "admin";
            v.data = std::move(*admin);
        } else {
            v.format = codec::is_text(data) ? "string" : "base64";
            v.data = std::string(data);
        }
        if (v.index == 1001 && record.template_version.empty())
            record.template_version = v.data;
        record.values.push_back(std::move(v));
    }
    if (!r.at_end())
        return bad("bytes after the values");
    record.response_code = static_cast<int>(kRcSuccess);
    return record;
}

// ---- proofs
// --------------------------------------------------------------------------------------

std::string sha256(std::string_view bytes) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (EVP_Digest(bytes.data(), bytes.size(), md, &size, EVP_sha256(), nullptr) != 1)
        return {};
    return std::string(reinterpret_cast<const char*>(md), size);
}

Result<PkeyPtr> read_rsa_key(std::string_view pem) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
    if (!bio)
        return make_error(ErrorKind::invalid_argument, "private key: out of memory");
    PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
    if (!key) {
        return make_error(ErrorKind::invalid_argument,
                          "private key is not a readable unencrypted PEM private key");
    }
    if (EVP_PKEY_base_id(key.get()) != EVP_PKEY_RSA) {
        return make_error(ErrorKind::invalid_argument,
                          "private key is not an RSA key (the Handle clients sign with RSA)");
    }
    return key;
}

Result<std::string> rsa_proof(EVP_PKEY* key, std::string_view nonce, std::string_view digest) {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    const std::string data = std::string(nonce) + std::string(digest);
    std::size_t size = 0;
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &size,
                       reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
        return make_error(ErrorKind::invalid_argument, "private key: cannot sign with it");
    }
    std::string signature(size, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                       reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
        return make_error(ErrorKind::invalid_argument, "private key: signing failed");
    }
    signature.resize(size);
    std::string out;
    put_bytes(out, "SHA-256");
    put_bytes(out, signature);
    return out;
}

std::string secret_proof(std::string_view secret, std::string_view nonce, std::string_view digest) {
    const std::string data = std::string(nonce) + std::string(digest);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &size);
    std::string out;
    put_u8(out, kProofHmacSha256);
    out.append(reinterpret_cast<const char*>(mac), size);
    return out;
}

// ---- messages
// ------------------------------------------------------------------------------------

Request make_request(std::uint32_t opcode, std::string_view body, std::uint32_t request_id,
                     std::uint32_t session_id, std::uint32_t op_flags) {
    Request r;
    r.request_id = request_id;
    put_u32(r.header_and_body, opcode);
    put_u32(r.header_and_body, 0); // response code: a request
    put_u32(r.header_and_body, op_flags);
    put_u16(r.header_and_body, 0xFFFF); // site info serial: unknown
    put_u8(r.header_and_body, 0);       // recursion count
    put_u8(r.header_and_body, 0);       // reserved
    put_u32(r.header_and_body, 0);      // expiration: none
    put_u32(r.header_and_body, static_cast<std::uint32_t>(body.size()));
    r.header_and_body.append(body);
    put_u8(r.wire, 2); // protocol 2.11, as the node speaks it
    put_u8(r.wire, 11);
    put_u8(r.wire, 2); // flags 0, suggested major 2
    put_u8(r.wire, 11);
    put_u32(r.wire, session_id);
    put_u32(r.wire, request_id);
    put_u32(r.wire, 0); // message id
    put_u32(r.wire, static_cast<std::uint32_t>(r.header_and_body.size() + 4));
    r.wire += r.header_and_body;
    put_u32(r.wire, 0); // no credential
    return r;
}

Result<Answer> parse_answer(std::string_view message) {
    auto bad = [](const char* what) {
        return make_error(ErrorKind::protocol, std::string("malformed Handle answer: ") + what);
    };
    if (message.size() < kEnvelopeSize + kHeaderSize)
        return bad("shorter than envelope and header");
    if (static_cast<unsigned char>(message[0]) != 2)
        return bad("not protocol version 2");
    if ((static_cast<unsigned char>(message[2]) & 0xE0) != 0)
        return bad("compressed, encrypted or truncated envelope");
    Answer a;
    a.session_id = load_u32(message, 4);
    a.request_id = load_u32(message, 8);
    a.opcode = load_u32(message, kEnvelopeSize);
    a.rc = load_u32(message, kEnvelopeSize + 4);
    const std::uint32_t body_length = load_u32(message, kEnvelopeSize + 20);
    if (body_length > message.size() - kEnvelopeSize - kHeaderSize)
        return bad("body length beyond the message");
    a.body.assign(message.substr(kEnvelopeSize + kHeaderSize, body_length));
    return a;
}

Result<Challenge> challenge_of(const Answer& a) {
    Reader r(a.body);
    const std::uint8_t algorithm = r.u8();
    const std::string_view digest = r.raw(32);
    const std::string_view nonce = r.bytes();
    if (!r.at_end() || algorithm != kDigestSha256 || nonce.empty()) {
        return make_error(ErrorKind::protocol,
                          "challenge is not SHA-256 digest + nonce (protocol 2.7 or later)", 0,
                          static_cast<int>(a.rc));
    }
    return Challenge{a.session_id, std::string(digest), std::string(nonce)};
}

ErrorKind kind_of(std::uint32_t rc) {
    if (rc == kRcHandleNotFound)
        return ErrorKind::not_found;
    if (rc == kRcHandleAlreadyExists)
        return ErrorKind::conflict;
    if (rc >= kRcAuthenticationNeeded && rc <= kRcIdisLoginFirst)
        return ErrorKind::auth;
    return ErrorKind::http;
}

Error error_of(const Answer& a, std::string fallback) {
    std::string message;
    if (a.rc != kRcAuthenticationNeeded) {
        Reader r(a.body);
        const std::string_view text = r.bytes();
        if (r.at_end())
            message = std::string(text);
    }
    if (message.empty())
        message = std::move(fallback);
    return make_error(kind_of(a.rc), std::move(message), 0, static_cast<int>(a.rc));
}

std::string rc_fallback(std::uint32_t rc) {
    switch (rc) {
    case kRcHandleNotFound:
        return "handle not found";
    case kRcHandleAlreadyExists:
        return "handle exists";
    case kRcAuthenticationNeeded:
        return "authentication needed: log in with login_identity first";
    default:
        return "the node answered RC " + std::to_string(rc);
    }
}

} // namespace idnode::sdk::handle_wire
