// Who is calling: API keys (idn_…), login tokens (idt_…, issued by the SNMS login) and
// username + password. Front ends take the credential out of their protocol (the HTTPS API's
// Authorization header: resolver/src/api/common.hpp) and ask here.
//
// Login tokens: "idt_<hex username>_<generation>_<expiry unix s>_<hex HMAC-SHA256>". The HMAC key
// is SHA-256("idnode-token-v1" || the account's stored PBKDF2 hash), i.e. derived from a random
// secret kept in the registry: tokens survive restarts, need no token table, and die when the
// password changes. `generation` must equal the account's token_generation, so bumping it revokes
// every token of the account.
//
// - Anonymous callers get a Principal with role "anonymous": public resolution only.
// - Bad credentials are an error (`unauthorized`), never a silent downgrade to anonymous.
// - Failed logins are throttled per client IP and per account: after `max_failures` failures
//   within `failure_window`, further attempts are refused (`throttled`) until the window passes,
//   without even checking the password (PBKDF2 is deliberately slow).
// - Verified Basic credentials are cached (keyed by username and a SHA-256 of the password, bound
//   to the stored hash) so that keep-alive clients do not pay PBKDF2 on every request.
// - The account is read from the registry on every call, after the credential checked out (so
//   that the answer says nothing about an account to someone without its credential): a disabled
//   or deleted account is refused at once, whatever is cached. Refusing a disabled account's
//   valid credential is not a failed login (its client's address must not be throttled for it).
// - Secrets never reach logs: only usernames and key ids appear in messages.
// Thread safety: authenticate() may be called from many threads at once.
#pragma once

#include "idnode/node/outcome.hpp"
#include "idnode/node/principal.hpp"
#include "idnode/node/rate_limiter.hpp"
#include "idnode/registry/admin.hpp"
#include "idnode/registry/registry.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace idnode::node {

struct AuthOptions {
    unsigned max_failures = 10;
    std::chrono::seconds failure_window{60};
    std::size_t cache_entries = 10000;
    std::chrono::seconds cache_ttl{300};
};

struct AuthOutcome {
    Principal principal;
    /// ok, or why the request must be refused: unauthorized (a bad credential, a disabled
    /// account), throttled (too many failed logins: retry after `retry_after`), forbidden
    /// (confirm_password: the current password is missing or wrong).
    Outcome outcome = Outcome::ok;
    std::string message;
    std::chrono::seconds retry_after{0};

    bool ok() const noexcept { return outcome == Outcome::ok; }
};

/// limits.rate_per_account: one token bucket per authenticated account (burst = one second's
/// worth), shared by every API (Handle REST, native, SNMS) so that an account has one budget
/// whichever API it calls. Anonymous callers are not counted here (the server limits them per
/// IP). Thread safety: `admit` may be called from many threads at once.
class AccountRateLimit {
public:
    /// `rate_per_s` = 0: off (every call is admitted).
    explicit AccountRateLimit(double rate_per_s) : limiter_(rate_per_s) {}

    /// Takes one request from `who`'s budget: nullopt when admitted, otherwise how long to wait
    /// (whole seconds, at least 1, for Retry-After).
    std::optional<std::chrono::seconds> refuse(const Principal& who);

    /// The rest of a request's cost after `refuse` admitted it (`extra` tokens, e.g. one per
    /// handle of a batch beyond the first; RateLimiter::charge): nullopt when admitted, otherwise
    /// how long to wait.
    std::optional<std::chrono::seconds> charge(const Principal& who, double extra);

private:
    RateLimiter limiter_;
    std::atomic<std::uint64_t> calls_{0}; // prunes idle buckets every 4096 calls
};

/// A login token for `account` (which must have a password) valid until `expires_at`.
std::string issue_token(const registry::Account& account, std::int64_t expires_at);

/// The ids of every API key of `username` (a scan of the keys table: it holds a few entries per
/// account, and only account administration calls this).
std::vector<std::string> api_key_ids(const registry::ReadSnapshot& snapshot,
                                     std::string_view username);

/// Held while a route reads, changes and writes back an account (or its keys), so that two such
/// changes of one account never interleave (a password change must not write back an account
/// that an admin disabled meanwhile, a new key must not outlive a concurrent delete). Released
/// by release() or when the last copy goes.
class AccountLock {
public:
    AccountLock(std::mutex& mutex, std::unordered_set<std::string>& held, std::string name)
        : mutex_(mutex), held_(held), name_(std::move(name)) {}
    AccountLock(const AccountLock&) = delete;
    AccountLock& operator=(const AccountLock&) = delete;
    ~AccountLock() { release(); }
    void release();

private:
    std::mutex& mutex_;
    std::unordered_set<std::string>& held_;
    std::string name_;
    bool released_ = false;
};

class Authenticator {
public:
    Authenticator(registry::Registry& registry, AuthOptions options);

    /// A bearer credential: a login token (idt_…) or an API key (idn_…).
    AuthOutcome bearer(std::string_view token, const std::string& client_ip);
    /// Username + password (HTTP Basic). Verified passwords are cached (see above).
    AuthOutcome password_login(std::string_view username, std::string_view password,
                               const std::string& client_ip);
    /// A credential the front end could not even read (a malformed header): refused, and counted
    /// as a failed login of `client_ip`.
    AuthOutcome refuse(const std::string& client_ip, std::string message);

    /// Checks username + password (the SNMS plain login): password_login, but an empty
    /// username is refused at once.
    AuthOutcome login(std::string_view username, std::string_view password,
                      const std::string& client_ip);
    /// The SNMS v1 login: `digest` = hex(sha256(hex(sha256(password)) + "YYYY-MM-DD")) for the
    /// server's local date yesterday, today or tomorrow (clock skew).
    AuthOutcome login_v1(std::string_view username, std::string_view digest,
                         const std::string& client_ip, std::int64_t now);

    /// Checks the current password of `username` (who authenticated by token or API key) before
    /// a change that needs it. nullopt password = not given. Throttled like a login, and a
    /// missing or wrong password counts as a failed login; refusals are `forbidden` (or
    /// `throttled`).
    AuthOutcome confirm_password(const std::string& username,
                                 std::optional<std::string_view> password,
                                 const std::string& client_ip);

    /// A Handle identity of the account `username` answering a challenge (the Handle protocol's
    /// challenge-response): throttled like a login, then `prove` (which checks the proof; it
    /// runs only when not throttled, because a proof may cost a PBKDF2) decides. A false proof
    /// is a failed login of `client_ip` and of the account (`username` empty: an identity nobody
    /// registered, counted against the address only).
    AuthOutcome identity_login(std::string_view username, const std::string& client_ip,
                               const std::function<bool()>& prove);

    /// Forgets cached verifications of `username` (password changed, key revoked).
    void forget(const std::string& username);

    /// For a request that outlives a moment (a bulk stream): reads `who`'s account again and
    /// takes its current prefixes; the reason, when the account is gone or disabled.
    std::optional<std::string> recheck(Principal& who);

    /// The lock of one account's changes (AccountLock), or null when another change of it is
    /// under way (the caller answers 409: retry). `name` may also be a lock of its own that is
    /// not an account name (it cannot collide: usernames never contain '\0').
    std::shared_ptr<AccountLock> try_lock_account(const std::string& name);

private:
    /// ok, or `throttled` when `client_ip` (or `username`, when not empty) failed too often.
    AuthOutcome throttle_check(const std::string& client_ip, std::string_view username);
    AuthOutcome from_account(const registry::ReadSnapshot& snapshot, std::string_view username,
                             const std::string& client_ip);
    bool throttled(const std::string& key, std::chrono::steady_clock::time_point now,
                   std::chrono::seconds& retry_after);
    void record_failure(const std::string& key, std::chrono::steady_clock::time_point now);
    AuthOutcome from_token(const registry::ReadSnapshot& snapshot, std::string_view token,
                           const std::string& client_ip);
    AuthOutcome fail(const std::string& client_ip, const std::string& account, std::string message);
    /// The principal of a verified credential, or the refusal of a disabled account.
    static AuthOutcome admit(const registry::Account& account, Credential credential);

    registry::Registry& registry_;
    AuthOptions options_;

    struct Window {
        std::chrono::steady_clock::time_point start;
        unsigned failures = 0;
    };
    std::mutex mutex_;
    std::unordered_map<std::string, Window> failures_;
    // username + '\0' + sha256(password) -> (stored hash it was verified against, expiry)
    std::unordered_map<std::string, std::pair<std::string, std::chrono::steady_clock::time_point>>
        verified_;
    std::mutex locks_mutex_;
    std::unordered_set<std::string> locked_accounts_;
};

} // namespace idnode::node
