#include "idnode/node/authenticator.hpp"

#include "idnode/node/clock.hpp"

#include <openssl/hmac.h>

#include <algorithm>
#include <charconv>
#include <ctime>

namespace idnode::node {
using registry::Role;

namespace {

std::string hex_of(std::string_view bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 15]);
    }
    return out;
}

bool unhex(std::string_view hex, std::string& out) {
    if (hex.size() % 2 != 0)
        return false;
    out.clear();
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        unsigned v = 0;
        const auto [p, ec] = std::from_chars(hex.data() + i, hex.data() + i + 2, v, 16);
        if (ec != std::errc{} || p != hex.data() + i + 2)
            return false;
        out.push_back(static_cast<char>(v));
    }
    return true;
}

std::string token_signature(const registry::Account& account, std::string_view payload) {
    const std::string key = registry::sha256_raw("idnode-token-v1" + account.password_hash);
    unsigned char mac[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), mac, &len);
    return hex_of(std::string_view(reinterpret_cast<const char*>(mac), len));
}

} // namespace

std::optional<std::chrono::seconds> AccountRateLimit::refuse(const Principal& who) {
    if (!limiter_.enabled() || who.anonymous())
        return std::nullopt;
    if ((calls_.fetch_add(1, std::memory_order_relaxed) & 4095) == 4095)
        limiter_.prune();
    const auto decision = limiter_.acquire(who.username);
    if (decision.allowed)
        return std::nullopt;
    return std::chrono::duration_cast<std::chrono::seconds>(decision.retry_after) +
           std::chrono::seconds(1);
}

std::optional<std::chrono::seconds> AccountRateLimit::charge(const Principal& who, double extra) {
    if (!limiter_.enabled() || who.anonymous())
        return std::nullopt;
    const auto decision = limiter_.charge(who.username, extra);
    if (decision.allowed)
        return std::nullopt;
    return std::chrono::ceil<std::chrono::seconds>(decision.retry_after);
}

std::vector<std::string> api_key_ids(const registry::ReadSnapshot& snapshot,
                                     std::string_view username) {
    std::vector<std::string> out;
    snapshot.for_each_entry(registry::Table::api_keys,
                            [&](const std::string& key, const std::string& bytes) {
                                auto record = registry::decode_api_key(bytes);
                                if (record && record->username == username)
                                    out.push_back(key);
                            });
    return out;
}

void AccountLock::release() {
    std::lock_guard lock(mutex_);
    if (!released_)
        held_.erase(name_);
    released_ = true;
}

std::string issue_token(const registry::Account& account, std::int64_t expires_at) {
    const std::string payload = "idt_" + hex_of(account.username) + "_" +
                                std::to_string(account.token_generation) + "_" +
                                std::to_string(expires_at);
    return payload + "_" + token_signature(account, payload);
}

Authenticator::Authenticator(registry::Registry& registry, AuthOptions options)
    : registry_(registry), options_(options) {}

bool Authenticator::throttled(const std::string& key, std::chrono::steady_clock::time_point now,
                              std::chrono::seconds& retry_after) {
    auto it = failures_.find(key);
    if (it == failures_.end()) {
        return false;
    }
    if (now - it->second.start >= options_.failure_window) {
        failures_.erase(it);
        return false;
    }
    if (it->second.failures < options_.max_failures) {
        return false;
    }
    retry_after = std::chrono::duration_cast<std::chrono::seconds>(options_.failure_window -
                                                                   (now - it->second.start)) +
                  std::chrono::seconds(1);
    return true;
}

void Authenticator::record_failure(const std::string& key,
                                   std::chrono::steady_clock::time_point now) {
    if (failures_.size() > 100000) { // bound memory under a spray of addresses: drop old windows
        for (auto it = failures_.begin(); it != failures_.end();) {
            it = (now - it->second.start >= options_.failure_window) ? failures_.erase(it)
                                                                     : std::next(it);
        }
    }
    auto& w = failures_[key];
    if (w.failures == 0 || now - w.start >= options_.failure_window) {
        w.start = now;
        w.failures = 0;
    }
    ++w.failures;
}

AuthOutcome Authenticator::fail(const std::string& client_ip, const std::string& account,
                                std::string message) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mutex_);
    record_failure("ip:" + client_ip, now);
    if (!account.empty()) {
        record_failure("user:" + account, now);
    }
    AuthOutcome out;
    out.outcome = Outcome::unauthorized;
    out.message = std::move(message);
    return out;
}

AuthOutcome Authenticator::admit(const registry::Account& account, Credential credential) {
    AuthOutcome out;
    if (account.disabled) {
        out.outcome = Outcome::unauthorized;
        out.message = "account " + account.username + " is disabled";
        return out;
    }
    out.principal.username = account.username;
    out.principal.role = account.role;
    out.principal.prefixes = account.prefixes;
    out.principal.credential = credential;
    return out;
}

std::shared_ptr<AccountLock> Authenticator::try_lock_account(const std::string& name) {
    std::lock_guard lock(locks_mutex_);
    if (!locked_accounts_.insert(name).second)
        return nullptr;
    return std::make_shared<AccountLock>(locks_mutex_, locked_accounts_, name);
}

AuthOutcome Authenticator::confirm_password(const std::string& username,
                                            std::optional<std::string_view> password,
                                            const std::string& client_ip) {
    AuthOutcome out;
    if (!password) {
        const auto now = std::chrono::steady_clock::now();
        std::lock_guard lock(mutex_);
        if (throttled("ip:" + client_ip, now, out.retry_after) ||
            throttled("user:" + username, now, out.retry_after)) {
            out.outcome = Outcome::throttled;
            out.message = "too many failed logins; retry later";
            return out;
        }
        record_failure("ip:" + client_ip, now);
        record_failure("user:" + username, now);
        out.outcome = Outcome::forbidden;
        out.message = "authenticated by login token or API key: give the account's "
                      "\"current_password\" too";
        return out;
    }
    out = login(username, *password, client_ip);
    if (out.outcome == Outcome::unauthorized) {
        out.outcome = Outcome::forbidden;
        out.message = "current_password is wrong";
    }
    return out;
}

std::optional<std::string> Authenticator::recheck(Principal& who) {
    auto bytes = registry_.snapshot().get_entry(registry::Table::accounts, who.username);
    auto account =
        bytes ? registry::decode_account(*bytes)
              : registry::Result<registry::Account>(registry::Error{registry::Errc::not_found, ""});
    if (!account)
        return "account " + who.username + " no longer exists";
    if (account->disabled)
        return "account " + who.username + " is disabled";
    who.prefixes = account->prefixes;
    return std::nullopt;
}

void Authenticator::forget(const std::string& username) {
    std::lock_guard lock(mutex_);
    const std::string prefix = username + '\0';
    for (auto it = verified_.begin(); it != verified_.end();) {
        it = it->first.compare(0, prefix.size(), prefix) == 0 ? verified_.erase(it) : std::next(it);
    }
}

AuthOutcome Authenticator::from_account(const registry::ReadSnapshot& snapshot,
                                        std::string_view username, const std::string& client_ip) {
    auto bytes = snapshot.get_entry(registry::Table::accounts, username);
    if (!bytes) {
        return fail(client_ip, std::string(username), "account does not exist");
    }
    auto account = registry::decode_account(*bytes);
    if (!account) {
        return fail(client_ip, std::string(username), "account record is unreadable");
    }
    return admit(*account, Credential::api_key);
}

AuthOutcome Authenticator::from_token(const registry::ReadSnapshot& snapshot,
                                      std::string_view token, const std::string& client_ip) {
    // idt_<hex username>_<generation>_<expiry>_<signature>
    std::string_view parts[5];
    std::string_view rest = token;
    for (int i = 0; i < 5; ++i) {
        const auto us = i < 4 ? rest.find('_') : std::string_view::npos;
        if (i < 4 && us == std::string_view::npos)
            return fail(client_ip, {}, "malformed token");
        parts[i] = rest.substr(0, us);
        rest = i < 4 ? rest.substr(us + 1) : std::string_view{};
    }
    std::string username;
    std::uint64_t generation = 0;
    std::int64_t expires = 0;
    if (parts[0] != "idt" || !unhex(parts[1], username) ||
        std::from_chars(parts[2].data(), parts[2].data() + parts[2].size(), generation).ec !=
            std::errc{} ||
        std::from_chars(parts[3].data(), parts[3].data() + parts[3].size(), expires).ec !=
            std::errc{}) {
        return fail(client_ip, {}, "malformed token");
    }
    auto bytes = snapshot.get_entry(registry::Table::accounts, username);
    auto account =
        bytes ? registry::decode_account(*bytes)
              : registry::Result<registry::Account>(registry::Error{registry::Errc::not_found, ""});
    const std::string_view payload = token.substr(0, token.size() - parts[4].size() - 1);
    if (!account || account->password_hash.empty() ||
        !registry::constant_time_equal(token_signature(*account, payload), parts[4])) {
        return fail(client_ip, {}, "invalid token");
    }
    // Before the generation, which disabling bumps: a disabled account's client is told so,
    // and that is not a failed login (authenticator.hpp).
    if (account->disabled)
        return admit(*account, Credential::token);
    if (generation != account->token_generation)
        return fail(client_ip, {}, "the token has been revoked");
    if (expires <= unix_now())
        return fail(client_ip, {}, "the token has expired");
    return admit(*account, Credential::token);
}

AuthOutcome Authenticator::login(std::string_view username, std::string_view password,
                                 const std::string& client_ip) {
    if (username.empty())
        return fail(client_ip, {}, "wrong username or password");
    return password_login(username, password, client_ip);
}

AuthOutcome Authenticator::login_v1(std::string_view username, std::string_view digest,
                                    const std::string& client_ip, std::int64_t now) {
    const std::string user(username);
    if (auto refused = throttle_check(client_ip, user); !refused.ok())
        return refused;
    auto snapshot = registry_.snapshot();
    auto bytes = snapshot.get_entry(registry::Table::accounts, user);
    auto account =
        bytes ? registry::decode_account(*bytes)
              : registry::Result<registry::Account>(registry::Error{registry::Errc::not_found, ""});
    if (!account || account->v1_secret.empty())
        return fail(client_ip, user, "wrong username or password");
    bool matched = false;
    for (const std::int64_t day : {now - 86400, now, now + 86400}) {
        const std::string expected = registry::sha256_hex(
            account->v1_secret + registry::calendar_date(day, /*local_time=*/true));
        matched = registry::constant_time_equal(expected, digest) || matched;
    }
    if (!matched)
        return fail(client_ip, user, "wrong username or password");
    return admit(*account, Credential::password);
}

AuthOutcome Authenticator::refuse(const std::string& client_ip, std::string message) {
    return fail(client_ip, {}, std::move(message));
}

AuthOutcome Authenticator::throttle_check(const std::string& client_ip, std::string_view username) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mutex_);
    AuthOutcome out;
    if (throttled("ip:" + client_ip, now, out.retry_after) ||
        (!username.empty() && throttled("user:" + std::string(username), now, out.retry_after))) {
        out.outcome = Outcome::throttled;
        out.message = "too many failed logins; retry later";
    }
    return out;
}

AuthOutcome Authenticator::identity_login(std::string_view username, const std::string& client_ip,
                                          const std::function<bool()>& prove) {
    if (auto throttled = throttle_check(client_ip, username); !throttled.ok()) {
        return throttled;
    }
    if (!prove()) {
        return fail(client_ip, std::string(username),
                    username.empty() ? "unknown identity"
                                     : "the proof does not match the identity's key");
    }
    auto snapshot = registry_.snapshot();
    return from_account(snapshot, username, client_ip);
}

AuthOutcome Authenticator::bearer(std::string_view token, const std::string& client_ip) {
    if (token.substr(0, 4) == "idt_") {
        auto snapshot = registry_.snapshot();
        return from_token(snapshot, token, client_ip);
    }
    auto key = registry::parse_api_key(token);
    if (!key)
        return fail(client_ip, {}, "the bearer token is not an idnode API key");
    if (auto refused = throttle_check(client_ip, {}); !refused.ok())
        return refused;
    auto snapshot = registry_.snapshot();
    auto bytes = snapshot.get_entry(registry::Table::api_keys, key->key_id);
    auto record = bytes ? registry::decode_api_key(*bytes)
                        : registry::Result<registry::ApiKeyRecord>(
                              registry::Error{registry::Errc::not_found, ""});
    if (!record || !registry::api_key_matches(*record, key->secret))
        return fail(client_ip, {}, "unknown or revoked API key");
    return from_account(snapshot, record->username, client_ip);
}

AuthOutcome Authenticator::password_login(std::string_view username_view, std::string_view password,
                                          const std::string& client_ip) {
    const std::string username(username_view);
    if (auto refused = throttle_check(client_ip, username); !refused.ok())
        return refused;
    const auto now = std::chrono::steady_clock::now();
    auto snapshot = registry_.snapshot();
    auto bytes = snapshot.get_entry(registry::Table::accounts, username);
    auto account =
        bytes ? registry::decode_account(*bytes)
              : registry::Result<registry::Account>(registry::Error{registry::Errc::not_found, ""});
    if (!account || account->password_hash.empty()) {
        return fail(client_ip, username, "wrong username or password");
    }
    const std::string cache_key = username + '\0' + registry::sha256_raw(password);
    bool cached = false;
    {
        std::lock_guard lock(mutex_);
        auto it = verified_.find(cache_key);
        cached = it != verified_.end() && it->second.first == account->password_hash &&
                 it->second.second > now;
    }
    if (!cached) {
        if (!registry::verify_password(password, account->password_hash)) {
            return fail(client_ip, username, "wrong username or password");
        }
        std::lock_guard lock(mutex_);
        if (verified_.size() >= options_.cache_entries) {
            verified_.clear(); // crude but bounded; a miss only costs one PBKDF2
        }
        verified_[cache_key] = {account->password_hash, now + options_.cache_ttl};
    }
    return admit(*account, Credential::password);
}

} // namespace idnode::node
