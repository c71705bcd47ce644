// HandleAdminClient: Handle protocol 2.11 over one plain TCP connection (POSIX sockets with poll
// deadlines), IDIS LOGIN_ID_SYSTEM with the challenge answered by an HMAC-SHA256 or RSA SHA-256
// proof, and the administrative requests of docs/handle-protocol.md#administration.
//
// The SDK is a standalone library (it must not pull the resolver, the registry or LMDB), so the
// few pieces of the protocol a client needs — message framing, the value encoding, the proofs —
// are written here from the protocol description rather than linked from resolver/.
#include "idnode/sdk/handle_admin.hpp"

#include "client_impl.hpp"

#include <boost/json.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>
#include <optional>

namespace idnode::sdk {

namespace {

namespace json = boost::json;
using detail::make_error;
using Clock = std::chrono::steady_clock;

// ---- protocol constants (RFC 3652, HANDLE.NET, IDIS) --------------------------------------------

constexpr std::size_t kEnvelopeSize = 20;
constexpr std::size_t kHeaderSize = 24;
/// The node refuses requests longer than this after the envelope (and closes the connection).
constexpr std::size_t kMaxRequestLength = 256 * 1024;
/// Answers carry whole records (up to the node's 1 MiB record limit); anything far beyond is a
/// broken stream, not an answer.
constexpr std::size_t kMaxAnswerLength = 16 * 1024 * 1024;

constexpr std::uint32_t kOpResolution = 1;
constexpr std::uint32_t kOpCreateHandle = 100;
constexpr std::uint32_t kOpDeleteHandle = 101;
constexpr std::uint32_t kOpAddValue = 102;
constexpr std::uint32_t kOpRemoveValue = 103;
constexpr std::uint32_t kOpModifyValue = 104;
constexpr std::uint32_t kOpChallengeResponse = 200;
constexpr std::uint32_t kOpLoginIdSystem = 2001;

constexpr std::uint32_t kRcSuccess = 1;
constexpr std::uint32_t kRcHandleNotFound = 100;
constexpr std::uint32_t kRcHandleAlreadyExists = 101;
constexpr std::uint32_t kRcAuthenticationNeeded = 402;
constexpr std::uint32_t kRcAuthenticationError = 406;

constexpr std::uint32_t kFlagPublicOnly = 0x0100'0000;
constexpr std::uint8_t kDigestSha256 = 3;
constexpr std::uint8_t kProofHmacSha256 = 0x13;

constexpr std::uint8_t kPermPublicWrite = 0x01;
constexpr std::uint8_t kPermPublicRead = 0x02;
constexpr std::uint8_t kPermAdminWrite = 0x04;
constexpr std::uint8_t kPermAdminRead = 0x08;
constexpr std::uint8_t kDefaultPermissions = kPermAdminRead | kPermAdminWrite | kPermPublicRead;

// ---- big-endian encoding
// -------------------------------------------------------------------------

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

/// Bounds-checked reading of an answer body; any failure leaves `ok` false for good.
class Reader {
public:
    explicit Reader(std::string_view bytes) : rest_(bytes) {}
    bool ok() const noexcept { return ok_; }
    bool at_end() const noexcept { return ok_ && rest_.empty(); }
    std::size_t left() const noexcept { return rest_.size(); }

    std::uint8_t u8() {
        if (!need(1))
            return 0;
        const auto v = static_cast<std::uint8_t>(rest_[0]);
        rest_.remove_prefix(1);
        return v;
    }
    std::uint32_t u32() {
        if (!need(4))
            return 0;
        const std::uint32_t v = load_u32(rest_, 0);
        rest_.remove_prefix(4);
        return v;
    }
    std::int32_t i32() { return static_cast<std::int32_t>(u32()); }
    std::string_view bytes() {
        const std::uint32_t n = u32();
        if (!need(n))
            return {};
        const std::string_view v = rest_.substr(0, n);
        rest_.remove_prefix(n);
        return v;
    }
    std::string_view raw(std::size_t n) {
        if (!need(n))
            return {};
        const std::string_view v = rest_.substr(0, n);
        rest_.remove_prefix(n);
        return v;
    }

private:
    bool need(std::size_t n) {
        if (ok_ && rest_.size() >= n)
            return true;
        ok_ = false;
        rest_ = {};
        return false;
    }
    std::string_view rest_;
    bool ok_ = true;
};

// ---- values
// --------------------------------------------------------------------------------------

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

/// HS_ADMIN bytes from the "admin" JSON text: permissions u16 (12 bits as "0/1" characters, most
/// significant first, HANDLE.NET's order), handle, index.
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

/// The "admin" JSON text of HS_ADMIN bytes, as the node shows them over HTTPS; nullopt when the
/// bytes are not an admin record that form carries exactly.
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

/// Valid UTF-8 without NUL: what the node shows with format "string".
bool is_text(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == 0)
            return false;
        std::size_t extra = 0;
        std::uint32_t cp = 0;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            extra = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            extra = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            extra = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + extra >= s.size())
            return false;
        for (std::size_t k = 1; k <= extra; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        const std::uint32_t min[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += extra + 1;
    }
    return true;
}

std::string rfc3339(std::uint32_t unix_seconds) {
    const std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return text;
}

/// handle + value count + values in the Handle value encoding (RFC 3651 §3.1): the body of
/// CREATE_HANDLE, ADD_VALUE and MODIFY_VALUE.
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

/// A RESOLUTION answer body: handle, value count, values.
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
            v.format = is_text(data) ? "string" : "base64";
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

using PkeyPtr = std::shared_ptr<EVP_PKEY>;

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

/// HS_PUBKEY signed response: digest name, then RSASSA-PKCS1-v1_5 SHA-256 over nonce || digest.
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

/// HS_SECKEY signed response 0x13: HMAC-SHA256(secret, nonce || digest).
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

struct Request {
    std::string wire;            ///< the whole message
    std::string header_and_body; ///< what the node's challenge digest covers
    std::uint32_t request_id = 0;
};

Request make_request(std::uint32_t opcode, std::string_view body, std::uint32_t request_id,
                     std::uint32_t session_id = 0, std::uint32_t op_flags = 0) {
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

struct Answer {
    std::uint32_t session_id = 0;
    std::uint32_t request_id = 0;
    std::uint32_t opcode = 0;
    std::uint32_t rc = 0;
    std::string body;
};

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

/// What a 402 asks the client to sign.
struct Challenge {
    std::uint32_t session_id = 0;
    std::string digest;
    std::string nonce;
};

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
    if (rc >= kRcAuthenticationNeeded && rc <= kRcAuthenticationError)
        return ErrorKind::auth;
    return ErrorKind::http;
}

/// The Error of an answer whose RC is not success: the node's message (a length-prefixed UTF-8
/// string) when the body is one, else `fallback`.
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

} // namespace

// ---- the client
// ----------------------------------------------------------------------------------

struct HandleAdminClient::Impl {
    HandleAdminOptions options;
    std::mutex mutex;
    int fd = -1;
    std::string buffer; ///< bytes read past the last answer
    std::uint32_t next_request_id = 1;

    // The identity to log in as again after a reconnection.
    std::string identity_handle;
    std::int32_t identity_index = 0;
    std::optional<std::string> secret;
    PkeyPtr rsa_key;
    bool logged_in = false;

    ~Impl() { close(); }

    void close() {
        if (fd >= 0)
            ::close(fd);
        fd = -1;
        buffer.clear();
    }

    std::uint32_t request_id() {
        const std::uint32_t id = next_request_id++;
        if (next_request_id == 0 || next_request_id > 0x7FFF'FFFF)
            next_request_id = 1;
        return id;
    }

    /// Whether the node closed the idle connection (or sent something unasked).
    bool connection_usable() {
        if (fd < 0)
            return false;
        pollfd p{fd, POLLIN, 0};
        const int n = ::poll(&p, 1, 0);
        if (n == 0)
            return true;
        // Readable while nothing is outstanding: end of stream, an error, or stray bytes; none
        // of them leaves a connection whose next answer can be trusted.
        return false;
    }

    Status connect() {
        close();
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* found = nullptr;
        const std::string port = std::to_string(options.port);
        const int gai = ::getaddrinfo(options.host.c_str(), port.c_str(), &hints, &found);
        if (gai != 0) {
            return make_error(ErrorKind::connect,
                              "resolve " + options.host + ": " + ::gai_strerror(gai));
        }
        std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, &::freeaddrinfo);
        const auto deadline = Clock::now() + options.connect_timeout;
        std::string last = "no address";
        bool timed_out = false;
        for (const addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
            const int s = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                                   ai->ai_protocol);
            if (s < 0) {
                last = std::strerror(errno);
                continue;
            }
            int rc = ::connect(s, ai->ai_addr, ai->ai_addrlen);
            if (rc != 0 && errno == EINPROGRESS) {
                const auto left =
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
                pollfd p{s, POLLOUT, 0};
                const int n = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
                if (n <= 0) {
                    timed_out = n == 0;
                    last = n == 0 ? "timed out" : std::strerror(errno);
                    ::close(s);
                    continue;
                }
                int err = 0;
                socklen_t len = sizeof err;
                ::getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
                rc = err == 0 ? 0 : -1;
                errno = err;
            }
            if (rc != 0) {
                last = std::strerror(errno);
                ::close(s);
                continue;
            }
            int one = 1;
            ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            fd = s;
            return {};
        }
        const std::string what = "connect " + options.host + ":" + port + ": " + last;
        return make_error(timed_out ? ErrorKind::timeout : ErrorKind::connect, what);
    }

    /// Sends one request and reads its answer within the request timeout. A failure closes the
    /// connection: its stream position is unknown, so it cannot carry another request.
    Result<Answer> exchange(const Request& request) {
        const auto deadline = Clock::now() + options.request_timeout;
        auto fail = [&](ErrorKind kind, const std::string& what) -> Error {
            close();
            return make_error(kind, what);
        };
        auto wait = [&](short events) -> int {
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            if (left.count() <= 0)
                return 0;
            pollfd p{fd, events, 0};
            int n;
            do {
                n = ::poll(&p, 1, static_cast<int>(left.count()));
            } while (n < 0 && errno == EINTR);
            return n;
        };
        std::size_t sent = 0;
        while (sent < request.wire.size()) {
            const ssize_t n =
                ::send(fd, request.wire.data() + sent, request.wire.size() - sent, MSG_NOSIGNAL);
            if (n > 0) {
                sent += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                const int w = wait(POLLOUT);
                if (w == 0)
                    return fail(ErrorKind::timeout, "send: timed out");
                if (w < 0)
                    return fail(ErrorKind::connection,
                                std::string("send: ") + std::strerror(errno));
                continue;
            }
            return fail(ErrorKind::connection, std::string("send: ") + std::strerror(errno));
        }
        for (;;) {
            if (buffer.size() >= kEnvelopeSize) {
                const std::size_t length = load_u32(buffer, 16);
                if (length > kMaxAnswerLength)
                    return fail(ErrorKind::protocol, "answer longer than 16 MiB");
                if (buffer.size() >= kEnvelopeSize + length) {
                    const std::string message = buffer.substr(0, kEnvelopeSize + length);
                    buffer.erase(0, kEnvelopeSize + length);
                    auto answer = parse_answer(message);
                    if (!answer) {
                        close();
                        return answer.error();
                    }
                    if (answer->request_id != request.request_id) {
                        return fail(ErrorKind::protocol,
                                    "answer to request " + std::to_string(answer->request_id) +
                                        ", expected " + std::to_string(request.request_id));
                    }
                    return answer;
                }
            }
            char chunk[16384];
            const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
            if (n > 0) {
                buffer.append(chunk, static_cast<std::size_t>(n));
                continue;
            }
            if (n == 0)
                return fail(ErrorKind::connection, "the node closed the connection");
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                const int w = wait(POLLIN);
                if (w == 0)
                    return fail(ErrorKind::timeout, "answer: timed out");
                if (w < 0)
                    return fail(ErrorKind::connection,
                                std::string("recv: ") + std::strerror(errno));
                continue;
            }
            return fail(ErrorKind::connection, std::string("recv: ") + std::strerror(errno));
        }
    }

    /// LOGIN_ID_SYSTEM on the open connection with the stored identity.
    Status login() {
        std::string body;
        put_bytes(body, identity_handle);
        put_i32(body, identity_index);
        const Request request = make_request(kOpLoginIdSystem, body, request_id());
        auto challenge_answer = exchange(request);
        if (!challenge_answer)
            return challenge_answer.error();
        if (challenge_answer->rc != kRcAuthenticationNeeded)
            return error_of(*challenge_answer, rc_fallback(challenge_answer->rc));
        auto challenge = challenge_of(*challenge_answer);
        if (!challenge) {
            close();
            return challenge.error();
        }
        // The digest names the request the proof authorises: never sign another one.
        if (challenge->digest != sha256(request.header_and_body)) {
            close();
            return make_error(ErrorKind::protocol,
                              "the challenge's digest is not that of the login request");
        }
        std::string proof;
        std::string_view auth_type;
        if (secret) {
            auth_type = "HS_SECKEY";
            proof = secret_proof(*secret, challenge->nonce, challenge->digest);
        } else {
            auth_type = "HS_PUBKEY";
            auto signed_response = rsa_proof(rsa_key.get(), challenge->nonce, challenge->digest);
            if (!signed_response)
                return signed_response.error();
            proof = std::move(signed_response).value();
        }
        std::string answer_body;
        put_bytes(answer_body, auth_type);
        put_bytes(answer_body, identity_handle);
        put_i32(answer_body, identity_index);
        put_bytes(answer_body, proof);
        auto reply = exchange(
            make_request(kOpChallengeResponse, answer_body, request_id(), challenge->session_id));
        if (!reply)
            return reply.error();
        if (reply->rc != kRcSuccess)
            return error_of(*reply, rc_fallback(reply->rc));
        return {};
    }

    /// A usable connection, logged in again when the client had logged in before.
    Status ready() {
        if (connection_usable())
            return {};
        if (auto st = connect(); !st)
            return st;
        if (!logged_in)
            return {};
        if (auto st = login(); !st) {
            logged_in = false;
            Error e = st.error();
            e.message = "logging in again after reconnecting: " + e.message;
            return e;
        }
        return {};
    }

    Result<Answer> call(std::uint32_t opcode, std::string_view body, std::uint32_t flags = 0) {
        if (body.size() + kHeaderSize + 4 > kMaxRequestLength) {
            return make_error(ErrorKind::invalid_argument,
                              "request of " + std::to_string(body.size()) +
                                  " bytes is over the Handle protocol's 256 KiB");
        }
        if (auto st = ready(); !st)
            return st.error();
        return exchange(make_request(opcode, body, request_id(), 0, flags));
    }

    Status write(std::uint32_t opcode, std::string_view body) {
        std::lock_guard lock(mutex);
        auto answer = call(opcode, body);
        if (!answer)
            return answer.error();
        if (answer->rc != kRcSuccess)
            return error_of(*answer, rc_fallback(answer->rc));
        return {};
    }

    Status login_as(std::string_view handle, std::int32_t index, std::optional<std::string> key,
                    PkeyPtr rsa) {
        std::lock_guard lock(mutex);
        identity_handle = std::string(handle);
        identity_index = index;
        secret = std::move(key);
        rsa_key = std::move(rsa);
        // A new login starts on a new connection: the node binds a login to its connection for
        // good, and a failed one must not leave the previous identity in force.
        logged_in = false;
        close();
        if (auto st = connect(); !st)
            return st;
        auto st = login();
        logged_in = st.ok();
        return st;
    }
};

Result<HandleAdminClient> HandleAdminClient::create(const HandleAdminOptions& options) {
    if (options.host.empty())
        return make_error(ErrorKind::invalid_argument, "host is empty");
    if (options.port == 0)
        return make_error(ErrorKind::invalid_argument, "port must not be 0");
    if (options.connect_timeout.count() <= 0 || options.request_timeout.count() <= 0)
        return make_error(ErrorKind::invalid_argument, "timeouts must be positive");
    auto impl = std::make_unique<Impl>();
    impl->options = options;
    return HandleAdminClient(std::move(impl));
}

HandleAdminClient::HandleAdminClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HandleAdminClient::HandleAdminClient(HandleAdminClient&&) noexcept = default;
HandleAdminClient& HandleAdminClient::operator=(HandleAdminClient&&) noexcept = default;
HandleAdminClient::~HandleAdminClient() = default;

Status HandleAdminClient::login_identity(std::string_view handle, std::int32_t index,
                                         const SecretKey& key) {
    if (handle.empty())
        return make_error(ErrorKind::invalid_argument, "identity handle is empty");
    if (key.secret.empty())
        return make_error(ErrorKind::invalid_argument, "secret key is empty");
    return impl_->login_as(handle, index, key.secret, nullptr);
}

Status HandleAdminClient::login_identity(std::string_view handle, std::int32_t index,
                                         const PrivateKeyPem& key) {
    if (handle.empty())
        return make_error(ErrorKind::invalid_argument, "identity handle is empty");
    auto rsa = read_rsa_key(key.pem);
    if (!rsa)
        return rsa.error();
    return impl_->login_as(handle, index, std::nullopt, std::move(rsa).value());
}

bool HandleAdminClient::logged_in() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->logged_in;
}

Status HandleAdminClient::create(std::string_view handle, const std::vector<Value>& values) {
    if (handle.empty())
        return make_error(ErrorKind::invalid_argument, "handle is empty");
    auto body = values_body(handle, values);
    if (!body)
        return body.error();
    return impl_->write(kOpCreateHandle, *body);
}

Status HandleAdminClient::add_values(std::string_view handle, const std::vector<Value>& values) {
    if (handle.empty() || values.empty())
        return make_error(ErrorKind::invalid_argument, "add_values needs a handle and values");
    auto body = values_body(handle, values);
    if (!body)
        return body.error();
    return impl_->write(kOpAddValue, *body);
}

Status HandleAdminClient::modify_values(std::string_view handle, const std::vector<Value>& values) {
    if (handle.empty() || values.empty())
        return make_error(ErrorKind::invalid_argument, "modify_values needs a handle and values");
    auto body = values_body(handle, values);
    if (!body)
        return body.error();
    return impl_->write(kOpModifyValue, *body);
}

Status HandleAdminClient::remove_values(std::string_view handle,
                                        const std::vector<std::int32_t>& indices) {
    if (handle.empty() || indices.empty())
        return make_error(ErrorKind::invalid_argument, "remove_values needs a handle and indices");
    std::string body;
    put_bytes(body, handle);
    put_u32(body, static_cast<std::uint32_t>(indices.size()));
    for (const std::int32_t i : indices)
        put_i32(body, i);
    return impl_->write(kOpRemoveValue, body);
}

Status HandleAdminClient::remove(std::string_view handle) {
    if (handle.empty())
        return make_error(ErrorKind::invalid_argument, "handle is empty");
    std::string body;
    put_bytes(body, handle);
    return impl_->write(kOpDeleteHandle, body);
}

Result<Record> HandleAdminClient::resolve(std::string_view handle, const ResolveFilter& filter,
                                          bool public_only) {
    if (handle.empty())
        return make_error(ErrorKind::invalid_argument, "handle is empty");
    std::string body;
    put_bytes(body, handle);
    put_u32(body, static_cast<std::uint32_t>(filter.indices.size()));
    for (const std::int32_t i : filter.indices)
        put_i32(body, i);
    put_u32(body, static_cast<std::uint32_t>(filter.types.size()));
    for (const auto& t : filter.types)
        put_bytes(body, t);
    std::lock_guard lock(impl_->mutex);
    auto answer = impl_->call(kOpResolution, body, public_only ? kFlagPublicOnly : 0);
    if (!answer)
        return answer.error();
    if (answer->rc == kRcAuthenticationNeeded) {
        return error_of(*answer, "a selected value has no public read: log in "
                                 "(login_identity) or resolve public values only");
    }
    if (answer->rc != kRcSuccess)
        return error_of(*answer, rc_fallback(answer->rc));
    return record_of(answer->body, handle);
}

} // namespace idnode::sdk
