// Typed administrative records stored in the registry's tables
// (docs/data-model.md#enterprise-prefixes): enterprise prefixes, accounts, API keys,
// Handle-protocol identities and bulk outcomes, with their binary encodings and the credential
// primitives.
//
// The registry stores these as opaque entries (registry.hpp `PutEntry`); this header owns their
// encoding so that every layer reads them the same way. Decoding is defensive (Errc::corrupt).
//
// Secrets: passwords are stored only as a salted PBKDF2-HMAC-SHA256 hash; API keys only as the
// SHA-256 of their secret part. The SNMS v1 login needs hex(sha256(password)) on the server
// (docs/api.md#snms-compatible-api): it is kept as `v1_secret`, only for accounts that have a
// password, and must never be logged or returned.
//
// Thread safety: pure functions; the random generator is OpenSSL's (thread-safe).
#pragma once

#include "idnode/registry/error.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace idnode::registry {

// ---- enterprise prefixes
// -------------------------------------------------------------------------

enum class PrefixKind : std::uint8_t { node = 1, enterprise = 2 };
enum class PrefixStatus : std::uint8_t { active = 1, suspended = 2 };

struct EnterpriseInfo {
    std::string name;
    std::string credit_code; // unified social credit code (18 characters)
    std::string industry;    // GB/T 4754 code
    std::string contact;
};

/// One server of an enterprise node (企业节点) that a prefix is routed to: where its Handle
/// protocol (TCP, UDP) and HTTPS API listen, and its Handle server key. The node layer
/// (node/routes.hpp) validates and normalises these; the registry only stores them.
struct PrefixRouteServer {
    std::string address;        // IPv4 or IPv6 literal, as node::route_refusal normalised it
    std::uint16_t tcp_port = 0; // 0 = none
    std::uint16_t udp_port = 0; // 0 = none (at least one of tcp_port, udp_port is not)
    std::uint16_t https_port = 0;
    std::string public_key_pem; // "BEGIN PUBLIC KEY" PEM, or empty
    friend bool operator==(const PrefixRouteServer&, const PrefixRouteServer&) = default;
};

inline constexpr std::size_t kMaxRouteServers = 16;

/// Where the identifiers of a routed prefix live (DESIGN §7 "Routes"): exactly one of a list of
/// servers (1 to kMaxRouteServers) or a service handle whose HS_SITE values name them.
struct PrefixRoute {
    std::vector<PrefixRouteServer> servers;
    std::string service_handle; // as given, e.g. "0.NA/88.118.9.SERV"
    friend bool operator==(const PrefixRoute&, const PrefixRoute&) = default;
};

struct PrefixRecord {
    std::string prefix; // as allocated, e.g. "88.118.8" (the entry key is its folded form)
    PrefixKind kind = PrefixKind::enterprise;
    PrefixStatus status = PrefixStatus::active;
    EnterpriseInfo enterprise; // empty for node prefixes
    std::int64_t created = 0;  // unix seconds
    /// Set: the prefix's identifiers live on an enterprise node, not here (node/routes.hpp).
    std::optional<PrefixRoute> route{};
};

/// A prefix without a route is written in entry format 1, byte for byte what binaries before
/// routes wrote (so that such a binary still reads it after a downgrade); a routed prefix in
/// format 2: format 1 followed by the route (u8 kind, 1 = servers: u32 count, then per server
/// bytes address, u16 tcp, u16 udp, u16 https, bytes public key; 2 = service handle: bytes).
/// An older binary refuses format 2 as corrupt, so a downgrade refuses writes under a routed
/// prefix instead of accepting identifiers that live elsewhere.
std::string encode_prefix(const PrefixRecord& p);
/// Errc::corrupt for bytes that are not a prefix record this build wrote: unknown format, kind
/// or status; truncated; trailing bytes; a route of an unknown kind, with no or more than
/// kMaxRouteServers servers, an empty address, neither a TCP nor a UDP port, or an empty
/// service handle.
Result<PrefixRecord> decode_prefix(std::string_view bytes);

// ---- accounts
// ------------------------------------------------------------------------------------

enum class Role : std::uint8_t { admin = 1, enterprise = 2, reader = 3 };
const char* role_name(Role r) noexcept;
std::optional<Role> parse_role(std::string_view text) noexcept;

struct Account {
    std::string username;
    Role role = Role::reader;
    std::vector<std::string> prefixes; // folded; enterprise: owned, reader: granted private read
    std::string password_hash; // "pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>" or empty
    std::string v1_secret;     // hex(sha256(password)) or empty; a secret
    std::uint64_t token_generation = 0; // bumped to revoke every bearer token of the account
    std::int64_t created = 0;
    bool disabled = false; // an admin switched it off: no credential of it authenticates
};

/// Accounts that are not disabled are written in entry format 1, byte for byte what binaries
/// before the `disabled` flag wrote, so that such a binary still reads them after a downgrade;
/// a disabled account is written in format 2 (format 1 followed by a flags byte), which such a
/// binary refuses as corrupt: a downgrade can only lock a disabled account out, never let it in.

std::string encode_account(const Account& a);
Result<Account> decode_account(std::string_view bytes);

/// Usernames: 1-64 characters of ASCII letters, digits, '.', '-', '_', '@'.
Status validate_username(std::string_view name);

// ---- API keys
// ------------------------------------------------------------------------------------

/// An API key is "idn_<key_id>_<secret>": key_id is 16 hex characters naming the entry (so that a
/// key can be revoked and looked up without a scan), secret 64 hex characters (256 bits).
struct ApiKeyRecord {
    std::string key_id;
    std::string username;
    std::string secret_sha256; // raw 32 bytes
    std::int64_t created = 0;
};

std::string encode_api_key(const ApiKeyRecord& k);
Result<ApiKeyRecord> decode_api_key(std::string_view bytes);

struct NewApiKey {
    ApiKeyRecord record; // to store
    std::string key;     // to show once
};
NewApiKey generate_api_key(std::string username, std::int64_t now);

struct ParsedApiKey {
    std::string key_id;
    std::string secret;
};
std::optional<ParsedApiKey> parse_api_key(std::string_view key) noexcept;

/// Constant-time check of a presented secret against the stored hash.
bool api_key_matches(const ApiKeyRecord& record, std::string_view secret) noexcept;

// ---- Handle-protocol identities
// --------------------------------------------------------------

/// An identity a Handle-protocol client authenticates as (docs/api.md#identities): a
/// (handle, index) pair such as 300:88.118.8/ADMIN, holding a secret key (HS_SECKEY) or a public
/// key (HS_PUBKEY), and acting with the rights of its owning account. Stored in
/// Table::identities under identity_key(); the handle need not be registered as an identifier.
enum class IdentityKeyKind : std::uint8_t { secret = 1, public_key = 2 };

struct Identity {
    std::string handle;     // as registered, e.g. "0.NA/88.118"
    std::int32_t index = 0; // > 0
    std::string account;    // owning account (username)
    IdentityKeyKind kind = IdentityKeyKind::secret;
    /// kind secret: the HS_SECKEY bytes as given (the challenge-response needs them in the
    /// clear, so they cannot be hashed); a secret, never logged or returned.
    std::string secret;
    std::string public_key_pem; // kind public_key: the PEM as given ("BEGIN PUBLIC KEY")
    std::int64_t created = 0;   // unix seconds
};

/// "<folded handle>\0<index, 10 decimal digits, zero-padded>": the entry key. `handle_folded` is
/// Handle::key() (ASCII case-folded; a handle never holds a NUL). Keyed by handle first so that
/// resolving a handle finds its identities with one range seek (identity_key_prefix), in index
/// order.
std::string identity_key(std::string_view handle_folded, std::int32_t index);
/// "<folded handle>\0": every identity key of that handle starts with it.
std::string identity_key_prefix(std::string_view handle_folded);
/// The key a database written before the handle-first layout used, "<index>:<folded handle>"
/// (Handle's notation, "300:88.118.8/ADMIN"), turned into identity_key(); nullopt for a key
/// already in the current layout or not an identity key at all. The writable open rewrites such
/// keys (docs/storage.md).
std::optional<std::string> identity_key_from_schema1(std::string_view key);

std::string encode_identity(const Identity& identity);
/// Errc::corrupt for bytes that are not an identity this build wrote (wrong format or kind,
/// truncated, trailing bytes, index <= 0, a key of the other kind, or no key).
Result<Identity> decode_identity(std::string_view bytes);

// ---- bulk outcomes (Idempotency-Key)
// -------------------------------------------------------------

/// Error lines an outcome keeps (the first ones, at most this many and this many bytes); the
/// rest are only counted. Bounds one stored outcome to a few tens of KiB however large the upload.
inline constexpr std::size_t kMaxOutcomeErrorLines = 100;
inline constexpr std::size_t kMaxOutcomeErrorBytes = 32 * 1024;

/// What a finished bulk upload answered, kept under its Idempotency-Key (Table::idempotency, key
/// "<account>\0<Idempotency-Key>") so that a retry replays it instead of writing again.
struct BulkOutcome {
    std::int64_t expires_ms = 0; // unix milliseconds; replayed only before this
    std::uint64_t lines = 0;     // = created + replaced + unchanged + errors
    std::uint64_t created = 0;
    std::uint64_t replaced = 0;
    std::uint64_t unchanged = 0;
    std::uint64_t errors = 0;
    /// The first error result lines as sent (NDJSON, each ending in '\n'), within the bounds
    /// above; errors - kept_error_lines() were cut.
    std::string error_lines;

    std::uint64_t kept_error_lines() const noexcept;
};

std::string encode_bulk_outcome(const BulkOutcome& o);
/// Errc::corrupt (with the reason) for bytes that are not an outcome this build wrote: wrong
/// format, truncated, counts that do not add up, error lines beyond the bounds or unterminated.
Result<BulkOutcome> decode_bulk_outcome(std::string_view bytes);

// ---- credential primitives
// -----------------------------------------------------------------------

inline constexpr std::uint32_t kPasswordIterations = 100000;

/// A fresh salted PBKDF2-HMAC-SHA256 hash in the format above.
std::string hash_password(std::string_view password,
                          std::uint32_t iterations = kPasswordIterations);
/// Constant-time verification; false for malformed stored hashes.
bool verify_password(std::string_view password, std::string_view stored) noexcept;

std::string sha256_hex(std::string_view data);
/// "YYYY-MM-DD" of `unix_seconds`: in UTC (the day counters), or in the server's local time zone
/// (`local_time`: the SNMS v1 login digest).
std::string calendar_date(std::int64_t unix_seconds, bool local_time = false);
std::string sha256_raw(std::string_view data);
std::string random_hex(std::size_t bytes);
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

} // namespace idnode::registry
