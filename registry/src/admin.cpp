#include "idnode/registry/admin.hpp"
#include "enum_names.hpp"

#include "wire.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <ctime>
#include <stdexcept>

namespace idnode::registry {
namespace {

constexpr std::uint8_t kEntryFormat = 1;
// Accounts only: format 1 followed by a flags byte (admin.hpp); unknown flag bits are corrupt.
constexpr std::uint8_t kAccountFormatFlags = 2;
constexpr std::uint8_t kAccountDisabled = 1;

Error corrupt(const char* what) {
    return Error{Errc::corrupt, std::string("stored ") + what + " is corrupt"};
}

std::string hex(std::string_view bytes) {
    return wire::to_hex(bytes);
}
bool unhex(std::string_view text, std::string& out) {
    return wire::from_hex(text, out);
}

bool is_lower_hex(std::string_view s) noexcept {
    return s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

std::string pbkdf2(std::string_view password, std::string_view salt, std::uint32_t iterations) {
    std::string out(32, '\0');
    if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                          reinterpret_cast<const unsigned char*>(salt.data()),
                          static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(),
                          static_cast<int>(out.size()),
                          reinterpret_cast<unsigned char*>(out.data())) != 1) {
        throw std::runtime_error("PKCS5_PBKDF2_HMAC failed");
    }
    return out;
}

} // namespace

// ---- primitives
// ----------------------------------------------------------------------------------

std::string sha256_raw(std::string_view data) {
    std::string out(SHA256_DIGEST_LENGTH, '\0');
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(),
           reinterpret_cast<unsigned char*>(out.data()));
    return out;
}

std::string calendar_date(std::int64_t unix_seconds, bool local_time) {
    const std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    if (local_time)
        localtime_r(&t, &tm);
    else
        gmtime_r(&t, &tm);
    char buffer[16];
    std::strftime(buffer, sizeof buffer, "%Y-%m-%d", &tm);
    return buffer;
}

std::string sha256_hex(std::string_view data) {
    return hex(sha256_raw(data));
}

std::string random_hex(std::size_t bytes) {
    std::string raw(bytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(raw.size())) !=
        1) {
        throw std::runtime_error(
            "RAND_bytes failed"); // the CSPRNG is broken: an invariant, not input
    }
    return hex(raw);
}

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string hash_password(std::string_view password, std::uint32_t iterations) {
    std::string salt;
    unhex(random_hex(16), salt);
    return "pbkdf2-sha256$" + std::to_string(iterations) + "$" + hex(salt) + "$" +
           hex(pbkdf2(password, salt, iterations));
}

bool verify_password(std::string_view password, std::string_view stored) noexcept {
    // pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>
    constexpr std::string_view scheme = "pbkdf2-sha256$";
    if (stored.substr(0, scheme.size()) != scheme) {
        return false;
    }
    stored.remove_prefix(scheme.size());
    const auto d1 = stored.find('$');
    if (d1 == std::string_view::npos) {
        return false;
    }
    const auto d2 = stored.find('$', d1 + 1);
    if (d2 == std::string_view::npos) {
        return false;
    }
    std::uint32_t iterations = 0;
    const auto [p, ec] = std::from_chars(stored.data(), stored.data() + d1, iterations);
    if (ec != std::errc{} || p != stored.data() + d1 || iterations == 0 ||
        iterations > 10'000'000) {
        return false;
    }
    std::string salt, expected;
    if (!unhex(stored.substr(d1 + 1, d2 - d1 - 1), salt) ||
        !unhex(stored.substr(d2 + 1), expected) || expected.size() != 32) {
        return false;
    }
    try {
        return constant_time_equal(pbkdf2(password, salt, iterations), expected);
    } catch (...) {
        return false;
    }
}

// ---- prefixes
// ------------------------------------------------------------------------------------

namespace {

// Prefix records: format 2 is format 1 followed by the route (admin.hpp).
constexpr std::uint8_t kPrefixFormatRouted = 2;
constexpr std::uint8_t kRouteServers = 1;
constexpr std::uint8_t kRouteServiceHandle = 2;

void encode_route(std::string& out, const PrefixRoute& route) {
    if (route.servers.empty()) {
        wire::put_u8(out, kRouteServiceHandle);
        wire::put_bytes(out, route.service_handle);
        return;
    }
    wire::put_u8(out, kRouteServers);
    wire::put_u32(out, static_cast<std::uint32_t>(route.servers.size()));
    for (const auto& server : route.servers) {
        wire::put_bytes(out, server.address);
        wire::put_u16(out, server.tcp_port);
        wire::put_u16(out, server.udp_port);
        wire::put_u16(out, server.https_port);
        wire::put_bytes(out, server.public_key_pem);
    }
}

std::optional<PrefixRoute> decode_route(wire::Reader& r) {
    std::uint8_t kind;
    if (!r.u8(kind)) {
        return std::nullopt;
    }
    PrefixRoute route;
    if (kind == kRouteServiceHandle) {
        std::string_view handle;
        if (!r.bytes(handle) || handle.empty()) {
            return std::nullopt;
        }
        route.service_handle.assign(handle);
        return route;
    }
    std::uint32_t count;
    if (kind != kRouteServers || !r.u32(count) || count == 0 || count > kMaxRouteServers) {
        return std::nullopt;
    }
    route.servers.resize(count);
    for (auto& server : route.servers) {
        std::string_view address, pem;
        if (!r.bytes(address) || address.empty() || !r.u16(server.tcp_port) ||
            !r.u16(server.udp_port) || !r.u16(server.https_port) || !r.bytes(pem) ||
            (server.tcp_port == 0 && server.udp_port == 0)) {
            return std::nullopt;
        }
        server.address.assign(address);
        server.public_key_pem.assign(pem);
    }
    return route;
}

} // namespace

std::string encode_prefix(const PrefixRecord& p) {
    std::string out;
    wire::put_u8(out, p.route ? kPrefixFormatRouted : kEntryFormat);
    wire::put_u8(out, static_cast<std::uint8_t>(p.kind));
    wire::put_u8(out, static_cast<std::uint8_t>(p.status));
    wire::put_u64(out, static_cast<std::uint64_t>(p.created));
    wire::put_bytes(out, p.prefix);
    wire::put_bytes(out, p.enterprise.name);
    wire::put_bytes(out, p.enterprise.credit_code);
    wire::put_bytes(out, p.enterprise.industry);
    wire::put_bytes(out, p.enterprise.contact);
    if (p.route) {
        encode_route(out, *p.route);
    }
    return out;
}

Result<PrefixRecord> decode_prefix(std::string_view bytes) {
    wire::Reader r(bytes);
    std::uint8_t format, kind, status;
    std::uint64_t created;
    std::string_view prefix, name, credit, industry, contact;
    if (!r.u8(format) || (format != kEntryFormat && format != kPrefixFormatRouted) || !r.u8(kind) ||
        !r.u8(status) || !r.u64(created) || !r.bytes(prefix) || !r.bytes(name) ||
        !r.bytes(credit) || !r.bytes(industry) || !r.bytes(contact) || kind < 1 || kind > 2 ||
        status < 1 || status > 2) {
        return corrupt("prefix record");
    }
    PrefixRecord p;
    if (format == kPrefixFormatRouted && !(p.route = decode_route(r))) {
        return corrupt("prefix record");
    }
    if (r.remaining() != 0) {
        return corrupt("prefix record");
    }
    p.kind = static_cast<PrefixKind>(kind);
    p.status = static_cast<PrefixStatus>(status);
    p.created = static_cast<std::int64_t>(created);
    p.prefix.assign(prefix);
    p.enterprise = EnterpriseInfo{std::string(name), std::string(credit), std::string(industry),
                                  std::string(contact)};
    return p;
}

// ---- accounts
// ------------------------------------------------------------------------------------

const char* role_name(Role r) noexcept {
    static constexpr const char* kNames[] = {"admin", "enterprise", "reader"};
    static_assert(std::size(kNames) == static_cast<std::size_t>(Role::reader));
    return detail::enum_name(r, kNames, 1, "unknown");
}

std::optional<Role> parse_role(std::string_view text) noexcept {
    if (text == "admin")
        return Role::admin;
    if (text == "enterprise")
        return Role::enterprise;
    if (text == "reader")
        return Role::reader;
    return std::nullopt;
}

Status validate_username(std::string_view name) {
    if (name.empty() || name.size() > 64) {
        return Error{Errc::invalid_value, "username must be 1 to 64 characters"};
    }
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' || c == '@';
        if (!ok) {
            return Error{Errc::invalid_value,
                         "username may contain only letters, digits, '.', '-', '_' and '@'"};
        }
    }
    return {};
}

std::string encode_account(const Account& a) {
    std::string out;
    wire::put_u8(out, a.disabled ? kAccountFormatFlags : kEntryFormat);
    wire::put_u8(out, static_cast<std::uint8_t>(a.role));
    wire::put_u64(out, a.token_generation);
    wire::put_u64(out, static_cast<std::uint64_t>(a.created));
    wire::put_bytes(out, a.username);
    wire::put_bytes(out, a.password_hash);
    wire::put_bytes(out, a.v1_secret);
    wire::put_u32(out, static_cast<std::uint32_t>(a.prefixes.size()));
    for (const auto& p : a.prefixes) {
        wire::put_bytes(out, p);
    }
    if (a.disabled) {
        wire::put_u8(out, kAccountDisabled);
    }
    return out;
}

Result<Account> decode_account(std::string_view bytes) {
    wire::Reader r(bytes);
    std::uint8_t format, role;
    std::uint64_t generation, created;
    std::string_view username, hash, v1;
    std::uint32_t count;
    if (!r.u8(format) || (format != kEntryFormat && format != kAccountFormatFlags) || !r.u8(role) ||
        role < 1 || role > 3 || !r.u64(generation) || !r.u64(created) || !r.bytes(username) ||
        !r.bytes(hash) || !r.bytes(v1) || !r.u32(count) || count > r.remaining() / 4) {
        return corrupt("account");
    }
    Account a;
    a.role = static_cast<Role>(role);
    a.token_generation = generation;
    a.created = static_cast<std::int64_t>(created);
    a.username.assign(username);
    a.password_hash.assign(hash);
    a.v1_secret.assign(v1);
    for (std::uint32_t i = 0; i < count; ++i) {
        std::string_view p;
        if (!r.bytes(p)) {
            return corrupt("account");
        }
        a.prefixes.emplace_back(p);
    }
    std::uint8_t flags = 0;
    if (format == kAccountFormatFlags && (!r.u8(flags) || (flags & ~kAccountDisabled) != 0)) {
        return corrupt("account");
    }
    a.disabled = (flags & kAccountDisabled) != 0;
    if (r.remaining() != 0) {
        return corrupt("account");
    }
    return a;
}

// ---- API keys
// ------------------------------------------------------------------------------------

std::string encode_api_key(const ApiKeyRecord& k) {
    std::string out;
    wire::put_u8(out, kEntryFormat);
    wire::put_u64(out, static_cast<std::uint64_t>(k.created));
    wire::put_bytes(out, k.key_id);
    wire::put_bytes(out, k.username);
    wire::put_bytes(out, k.secret_sha256);
    return out;
}

Result<ApiKeyRecord> decode_api_key(std::string_view bytes) {
    wire::Reader r(bytes);
    std::uint8_t format;
    std::uint64_t created;
    std::string_view id, user, hash;
    if (!r.u8(format) || format != kEntryFormat || !r.u64(created) || !r.bytes(id) ||
        !r.bytes(user) || !r.bytes(hash) || r.remaining() != 0 ||
        hash.size() != SHA256_DIGEST_LENGTH) {
        return corrupt("API key");
    }
    return ApiKeyRecord{std::string(id), std::string(user), std::string(hash),
                        static_cast<std::int64_t>(created)};
}

// ---- identities
// ----------------------------------------------------------------------------------

namespace {
// Zero-padded so that keys sort numerically and stay printable (2^31 - 1 has 10 digits).
constexpr std::size_t kIdentityIndexDigits = 10;
} // namespace

std::string identity_key(std::string_view handle_folded, std::int32_t index) {
    std::string key = identity_key_prefix(handle_folded);
    const std::string digits = std::to_string(static_cast<std::uint32_t>(index));
    key.append(kIdentityIndexDigits - std::min(digits.size(), kIdentityIndexDigits), '0');
    key += digits;
    return key;
}

std::string identity_key_prefix(std::string_view handle_folded) {
    std::string key(handle_folded);
    key += '\0';
    return key;
}

std::optional<std::string> identity_key_from_schema1(std::string_view key) {
    if (key.find('\0') != std::string_view::npos) {
        return std::nullopt; // already "<handle>\0<index>"
    }
    const auto colon = key.find(':');
    std::int64_t index = 0;
    if (colon == std::string_view::npos || colon == 0 || colon > 10) {
        return std::nullopt;
    }
    for (const char c : key.substr(0, colon)) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        index = index * 10 + (c - '0');
    }
    if (index <= 0 || index > INT32_MAX || colon + 1 == key.size()) {
        return std::nullopt;
    }
    return identity_key(key.substr(colon + 1), static_cast<std::int32_t>(index));
}

std::string encode_identity(const Identity& identity) {
    std::string out;
    wire::put_u8(out, kEntryFormat);
    wire::put_u8(out, static_cast<std::uint8_t>(identity.kind));
    wire::put_u32(out, static_cast<std::uint32_t>(identity.index));
    wire::put_u64(out, static_cast<std::uint64_t>(identity.created));
    wire::put_bytes(out, identity.handle);
    wire::put_bytes(out, identity.account);
    wire::put_bytes(out, identity.kind == IdentityKeyKind::secret ? identity.secret
                                                                  : identity.public_key_pem);
    return out;
}

Result<Identity> decode_identity(std::string_view bytes) {
    wire::Reader r(bytes);
    std::uint8_t format, kind;
    std::uint32_t index;
    std::uint64_t created;
    std::string_view handle, account, key;
    if (!r.u8(format) || format != kEntryFormat || !r.u8(kind) || kind < 1 || kind > 2 ||
        !r.u32(index) || index == 0 || index > 0x7fffffffu || !r.u64(created) || !r.bytes(handle) ||
        !r.bytes(account) || !r.bytes(key) || r.remaining() != 0 || handle.empty() ||
        account.empty() || key.empty()) {
        return corrupt("identity");
    }
    Identity identity;
    identity.handle.assign(handle);
    identity.index = static_cast<std::int32_t>(index);
    identity.account.assign(account);
    identity.kind = static_cast<IdentityKeyKind>(kind);
    (identity.kind == IdentityKeyKind::secret ? identity.secret : identity.public_key_pem)
        .assign(key);
    identity.created = static_cast<std::int64_t>(created);
    return identity;
}

// ---- bulk outcomes
// -------------------------------------------------------------------------------

std::uint64_t BulkOutcome::kept_error_lines() const noexcept {
    return static_cast<std::uint64_t>(std::count(error_lines.begin(), error_lines.end(), '\n'));
}

std::string encode_bulk_outcome(const BulkOutcome& o) {
    std::string out;
    out.reserve(1 + 6 * 8 + 4 + o.error_lines.size());
    wire::put_u8(out, kEntryFormat);
    wire::put_u64(out, static_cast<std::uint64_t>(o.expires_ms));
    wire::put_u64(out, o.lines);
    wire::put_u64(out, o.created);
    wire::put_u64(out, o.replaced);
    wire::put_u64(out, o.unchanged);
    wire::put_u64(out, o.errors);
    wire::put_bytes(out, o.error_lines);
    return out;
}

Result<BulkOutcome> decode_bulk_outcome(std::string_view bytes) {
    auto bad = [](const char* why) {
        return Error{Errc::corrupt, std::string("stored bulk outcome is corrupt: ") + why};
    };
    wire::Reader r(bytes);
    std::uint8_t format;
    std::uint64_t expires;
    BulkOutcome o;
    std::string_view errors;
    if (!r.u8(format) || format != kEntryFormat) {
        return bad("unknown format");
    }
    if (!r.u64(expires) || !r.u64(o.lines) || !r.u64(o.created) || !r.u64(o.replaced) ||
        !r.u64(o.unchanged) || !r.u64(o.errors) || !r.bytes(errors) || r.remaining() != 0) {
        return bad("truncated or trailing bytes");
    }
    // Each count is at most `lines`, so the sum cannot wrap before the comparison.
    if (o.created > o.lines || o.replaced > o.lines || o.unchanged > o.lines ||
        o.errors > o.lines || o.created + o.replaced + o.unchanged + o.errors != o.lines) {
        return bad("counts do not add up to lines");
    }
    if (errors.size() > kMaxOutcomeErrorBytes) {
        return bad("error lines exceed the kept bytes");
    }
    if (!errors.empty() && errors.back() != '\n') {
        return bad("last error line is unterminated");
    }
    o.expires_ms = static_cast<std::int64_t>(expires);
    o.error_lines.assign(errors);
    const std::uint64_t kept = o.kept_error_lines();
    if (kept > o.errors || kept > kMaxOutcomeErrorLines) {
        return bad("more error lines than errors or than are kept");
    }
    return o;
}

NewApiKey generate_api_key(std::string username, std::int64_t now) {
    NewApiKey out;
    out.record.key_id = random_hex(8);
    const std::string secret = random_hex(32);
    out.record.username = std::move(username);
    out.record.secret_sha256 = sha256_raw(secret);
    out.record.created = now;
    out.key = "idn_" + out.record.key_id + "_" + secret;
    return out;
}

std::optional<ParsedApiKey> parse_api_key(std::string_view key) noexcept {
    // idn_ + 16 hex + _ + 64 hex
    if (key.size() != 4 + 16 + 1 + 64 || key.substr(0, 4) != "idn_" || key[20] != '_') {
        return std::nullopt;
    }
    const auto id = key.substr(4, 16), secret = key.substr(21);
    if (!is_lower_hex(id) || !is_lower_hex(secret)) {
        return std::nullopt;
    }
    return ParsedApiKey{std::string(id), std::string(secret)};
}

bool api_key_matches(const ApiKeyRecord& record, std::string_view secret) noexcept {
    try {
        return constant_time_equal(sha256_raw(secret), record.secret_sha256);
    } catch (...) {
        return false;
    }
}

} // namespace idnode::registry
