#include "auth.hpp"

#include "codec.hpp"

#include <openssl/hmac.h>

#include <algorithm>
#include <charconv>
#include <ctime>

namespace idnode::resolver::api {
using registry::Role;

std::optional<std::string> owning_prefix(const registry::ReadSnapshot& snapshot,
                                         std::string_view prefix_key) {
    std::string_view candidate = prefix_key;
    while (!candidate.empty()) {
        if (snapshot.get_entry(registry::Table::prefixes, candidate))
            return std::string(candidate);
        const auto dot = candidate.rfind('.');
        if (dot == std::string_view::npos)
            break;
        candidate = candidate.substr(0, dot);
    }
    return std::nullopt;
}

bool Principal::holds_owner_of(const registry::ReadSnapshot& snapshot,
                               std::string_view prefix_key) const {
    // Cheap refusal first: an account none of whose prefixes contains `prefix_key` cannot hold
    // its owner, and most calls (other enterprises' handles) end here without a lookup.
    const bool related = std::any_of(prefixes.begin(), prefixes.end(), [&](const std::string& p) {
        return registry::prefix_is_under(prefix_key, p);
    });
    if (!related)
        return false;
    const auto owner = owning_prefix(snapshot, prefix_key);
    return owner && std::find(prefixes.begin(), prefixes.end(), *owner) != prefixes.end();
}

bool Principal::may_write(const registry::ReadSnapshot& snapshot,
                          std::string_view prefix_key) const {
    if (is_admin())
        return true;
    if (role != Role::enterprise)
        return false;
    return holds_owner_of(snapshot, prefix_key);
}

bool Principal::may_read_private(const registry::ReadSnapshot& snapshot,
                                 std::string_view prefix_key) const {
    if (is_admin())
        return true;
    if (anonymous())
        return false;
    return holds_owner_of(snapshot, prefix_key); // enterprise: owned; reader: granted
}

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

std::int64_t system_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// The server's local calendar date (DESIGN §5.2: "today, server time").
std::string local_date(std::int64_t unix_seconds) {
    const std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return buf;
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
    out.status = 401;
    out.message = std::move(message);
    return out;
}

AuthOutcome Authenticator::admit(const registry::Account& account, Credential credential) {
    AuthOutcome out;
    if (account.disabled) {
        out.status = 401;
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
            out.status = 429;
            out.message = "too many failed logins; retry later";
            return out;
        }
        record_failure("ip:" + client_ip, now);
        record_failure("user:" + username, now);
        out.status = 403;
        out.message = "authenticated by login token or API key: give the account's "
                      "\"current_password\" too";
        return out;
    }
    out = login(username, *password, client_ip);
    if (out.status == 401) {
        out.status = 403;
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
    // and that is not a failed login (auth.hpp).
    if (account->disabled)
        return admit(*account, Credential::token);
    if (generation != account->token_generation)
        return fail(client_ip, {}, "the token has been revoked");
    if (expires <= system_now())
        return fail(client_ip, {}, "the token has expired");
    return admit(*account, Credential::token);
}

AuthOutcome Authenticator::login(std::string_view username, std::string_view password,
                                 const std::string& client_ip) {
    if (username.empty())
        return fail(client_ip, {}, "wrong username or password");
    return authenticate(
        "Basic " + base64_encode(std::string(username) + ":" + std::string(password)), client_ip);
}

AuthOutcome Authenticator::login_v1(std::string_view username, std::string_view digest,
                                    const std::string& client_ip, std::int64_t now) {
    const std::string user(username);
    {
        std::lock_guard lock(mutex_);
        std::chrono::seconds retry{0};
        const auto steady = std::chrono::steady_clock::now();
        if (throttled("ip:" + client_ip, steady, retry) ||
            (!user.empty() && throttled("user:" + user, steady, retry))) {
            AuthOutcome out;
            out.status = 429;
            out.message = "too many failed logins; retry later";
            out.retry_after = retry;
            return out;
        }
    }
    auto snapshot = registry_.snapshot();
    auto bytes = snapshot.get_entry(registry::Table::accounts, user);
    auto account =
        bytes ? registry::decode_account(*bytes)
              : registry::Result<registry::Account>(registry::Error{registry::Errc::not_found, ""});
    if (!account || account->v1_secret.empty())
        return fail(client_ip, user, "wrong username or password");
    bool matched = false;
    for (const std::int64_t day : {now - 86400, now, now + 86400}) {
        const std::string expected = registry::sha256_hex(account->v1_secret + local_date(day));
        matched = registry::constant_time_equal(expected, digest) || matched;
    }
    if (!matched)
        return fail(client_ip, user, "wrong username or password");
    return admit(*account, Credential::password);
}

AuthOutcome Authenticator::authenticate(std::string_view authorization,
                                        const std::string& client_ip) {
    if (authorization.empty()) {
        return {};
    }
    const auto now = std::chrono::steady_clock::now();
    const auto space = authorization.find(' ');
    const std::string_view scheme = authorization.substr(0, space);
    const std::string_view credentials =
        space == std::string_view::npos ? std::string_view{} : authorization.substr(space + 1);

    std::string username;
    std::string password;
    std::optional<registry::ParsedApiKey> key;
    if (registry::equals_folded(scheme, "Bearer") && credentials.substr(0, 4) == "idt_") {
        auto snapshot = registry_.snapshot();
        return from_token(snapshot, credentials, client_ip);
    }
    if (registry::equals_folded(scheme, "Bearer")) {
        key = registry::parse_api_key(credentials);
        if (!key) {
            return fail(client_ip, {}, "the bearer token is not an idnode API key");
        }
    } else if (registry::equals_folded(scheme, "Basic")) {
        std::string decoded;
        if (!base64_decode(credentials, decoded) || decoded.find(':') == std::string::npos) {
            return fail(client_ip, {}, "malformed Basic credentials");
        }
        username = decoded.substr(0, decoded.find(':'));
        password = decoded.substr(decoded.find(':') + 1);
    } else {
        return fail(client_ip, {}, "unsupported Authorization scheme (use Bearer or Basic)");
    }

    {
        std::lock_guard lock(mutex_);
        std::chrono::seconds retry{0};
        if (throttled("ip:" + client_ip, now, retry) ||
            (!username.empty() && throttled("user:" + username, now, retry))) {
            AuthOutcome out;
            out.status = 429;
            out.message = "too many failed logins; retry later";
            out.retry_after = retry;
            return out;
        }
    }

    auto snapshot = registry_.snapshot();
    if (key) {
        auto bytes = snapshot.get_entry(registry::Table::api_keys, key->key_id);
        auto record = bytes ? registry::decode_api_key(*bytes)
                            : registry::Result<registry::ApiKeyRecord>(
                                  registry::Error{registry::Errc::not_found, ""});
        if (!record || !registry::api_key_matches(*record, key->secret)) {
            return fail(client_ip, {}, "unknown or revoked API key");
        }
        return from_account(snapshot, record->username, client_ip);
    }

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

} // namespace idnode::resolver::api
