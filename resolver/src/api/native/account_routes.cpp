#include "api/families.hpp"

#include "codec.hpp"
#include "idnode/node/identities.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>

namespace idnode::resolver::api::native {
namespace json = boost::json;
using namespace registry;
using node::Principal;

namespace {

json::object account_json(const Account& a) {
    json::array prefixes;
    for (const auto& p : a.prefixes)
        prefixes.emplace_back(p);
    return json::object{{"username", a.username},
                        {"role", role_name(a.role)},
                        {"prefixes", std::move(prefixes)},
                        {"has_password", !a.password_hash.empty()},
                        {"disabled", a.disabled},
                        {"created", iso8601(static_cast<std::uint32_t>(a.created))}};
}

/// An identity as the API shows it: never its secret key.
json::object identity_json(const Identity& identity) {
    json::object o{
        {"handle", identity.handle},
        {"index", identity.index},
        {"kind", identity.kind == IdentityKeyKind::secret ? "secret_key" : "public_key"}};
    if (identity.kind == IdentityKeyKind::public_key)
        o["public_key"] = identity.public_key_pem;
    o["created"] = iso8601(static_cast<std::uint32_t>(identity.created));
    return o;
}

/// The identity request of a POST body: `handle` and `index` required, `secret_key` and
/// `public_key` taken as given, `public_key_hs` base64-decoded (the service wants exactly one of
/// the three); else the message of the 400.
std::optional<std::string> identity_request(const json::object& o, node::IdentityRequest& out) {
    const auto* handle = o.if_contains("handle");
    if (handle == nullptr || !handle->is_string())
        return "handle must be a string";
    out.handle = std::string(handle->get_string());
    const auto* index = o.if_contains("index");
    if (index == nullptr || !(index->is_int64() || index->is_uint64()))
        return "index must be an integer";
    // A uint64 beyond int64 is out of range either way: the service refuses it.
    out.index = index->is_int64() ? index->get_int64() : -1;
    for (auto [name, field] :
         {std::pair{"secret_key", &out.secret_key}, std::pair{"public_key", &out.public_key_pem}}) {
        const auto* v = o.if_contains(name);
        if (v == nullptr)
            continue;
        if (!v->is_string())
            return std::string(name) + " must be a string";
        *field = std::string(v->get_string());
    }
    if (const auto* v = o.if_contains("public_key_hs")) {
        std::string bytes;
        if (!v->is_string() || !codec::base64_decode(v->get_string(), bytes))
            return "public_key_hs must be a base64 string (the HS_PUBKEY bytes)";
        out.public_key_hs = std::move(bytes);
    }
    return std::nullopt;
}

/// The {identity...} parameter "<handle>/<index>" (the handle may hold '/' or come
/// percent-encoded as one segment; the index is the last segment), decoded.
std::optional<std::pair<std::string, std::int64_t>> identity_param(std::string_view raw) {
    const auto slash = raw.rfind('/');
    if (slash == std::string_view::npos)
        return std::nullopt;
    auto handle = percent_decode(raw.substr(0, slash));
    auto index_text = percent_decode(raw.substr(slash + 1));
    std::int64_t index = 0;
    if (!handle || !index_text || index_text->empty() || handle->empty())
        return std::nullopt;
    const auto [end, ec] =
        std::from_chars(index_text->data(), index_text->data() + index_text->size(), index);
    if (ec != std::errc{} || end != index_text->data() + index_text->size())
        return std::nullopt;
    return std::pair{std::move(*handle), index};
}

/// The batch that stores the changed account `a`, made by `who` (recorded in the change log).
WriteBatch account_write(const Principal& who, const Account& a) {
    WriteBatch batch;
    batch.account = who.username;
    batch.ops.push_back(PutEntry{Table::accounts, a.username, encode_account(a), PutMode::replace});
    return batch;
}

Response no_content(const Request& req) {
    Response res{http::status::no_content, req.version()};
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    return res;
}

} // namespace

class AccountRoutes final : public RouteFamily {
    using RouteFamily::RouteFamily;
    void register_routes(Router& router) override;

    void create_account(Request&& req, Responder responder) {
        Principal who;
        json::value body;
        if (auto r = admin_request(api_, req, responder.context(), who, body))
            return responder.send(*r);
        const json::object& o = body.get_object();
        Account a;
        a.created = node::unix_now();
        const auto* user = o.if_contains("username");
        a.username = user && user->is_string() ? std::string(user->get_string()) : "";
        if (Status st = validate_username(a.username); !st) {
            return responder.send(error_response(req, http::status::bad_request, "invalid_value",
                                                 st.error().message));
        }
        const auto* role = o.if_contains("role");
        auto parsed_role =
            role && role->is_string() ? parse_role(role->get_string()) : std::nullopt;
        if (!parsed_role) {
            return responder.send(error_response(req, http::status::bad_request, "invalid_value",
                                                 "role must be admin, enterprise or reader"));
        }
        a.role = *parsed_role;
        if (const auto* prefixes = o.if_contains("prefixes")) {
            if (!prefixes->is_array()) {
                return responder.send(error_response(req, http::status::bad_request,
                                                     "invalid_value", "prefixes must be an array"));
            }
            auto snapshot = api_.registry.snapshot();
            for (const auto& p : prefixes->get_array()) {
                auto folded = p.is_string()
                                  ? parse_prefix(p.get_string())
                                  : Result<std::string>(Error{Errc::invalid_value, "not a string"});
                if (!folded)
                    return responder.send(error_response(req, http::status::bad_request,
                                                         "invalid_prefix", folded.error().message));
                if (!snapshot.get_entry(Table::prefixes, *folded) && !api_.homing.homes(*folded)) {
                    return responder.send(error_response(
                        req, http::status::bad_request, "invalid_prefix",
                        "prefix " + std::string(p.get_string()) + " is not allocated here"));
                }
                a.prefixes.push_back(*folded);
            }
        }
        if (a.role == Role::enterprise && a.prefixes.empty()) {
            return responder.send(
                error_response(req, http::status::bad_request, "invalid_value",
                               "an enterprise account needs at least one prefix"));
        }
        if (const auto* pw = o.if_contains("password")) {
            if (!pw->is_string() || pw->get_string().size() < 8 || pw->get_string().size() > 256) {
                return responder.send(error_response(req, http::status::bad_request,
                                                     "invalid_value",
                                                     "password must be 8 to 256 characters"));
            }
            a.password_hash = hash_password(pw->get_string());
            a.v1_secret = sha256_hex(pw->get_string());
        }
        const Account created = a;
        submit_and_respond(
            api_, PutEntry{Table::accounts, a.username, encode_account(a), PutMode::create},
            who.username,
            [req = std::move(req), created](const OpResult& r) {
                if (r.outcome == Outcome::created) {
                    return json_response(req, http::status::created,
                                         json::serialize(account_json(created)));
                }
                if (r.outcome == Outcome::unchanged || r.error.code == Errc::already_exists) {
                    return error_response(req, http::status::conflict, "already_exists",
                                          "account " + created.username + " already exists");
                }
                return native_error(req, r.error.code, r.error.message);
            },
            responder);
    }

    Response list_accounts(const Request& req, RequestContext& ctx) {
        Principal who;
        if (auto r = require_admin(api_, req, ctx, who))
            return *r;
        json::array out;
        auto snapshot = api_.registry.snapshot();
        snapshot.for_each_entry(Table::accounts, [&](const std::string&, const std::string& bytes) {
            if (auto a = decode_account(bytes))
                out.push_back(account_json(*a));
        });
        return json_response(req, http::status::ok,
                             json::serialize(json::object{{"accounts", std::move(out)}}));
    }

    /// The account named by the {user} parameter when `who` is an admin or that account, read
    /// under the account's lock (node::AccountLock), which `lock` then holds.
    /// The caller, and the account a request of the account itself (or of an admin) is about,
    /// read under the account's lock.
    struct Target {
        Principal who;
        Account account;
        std::shared_ptr<node::AccountLock> lock;
    };
    std::optional<Response> own_or_admin(const Request& req, RequestContext& ctx, Target& t) {
        Principal& who = t.who;
        if (auto r = authenticate(api_, req, ctx, who, ApiFamily::native))
            return r;
        if (who.anonymous())
            return error_response(req, http::status::unauthorized, "unauthorized",
                                  "authentication is needed");
        auto name = percent_decode(ctx.param("user")).value_or("");
        if (!who.is_admin() && who.username != name) {
            return error_response(req, http::status::forbidden, "forbidden",
                                  "only an admin or the account itself");
        }
        return locked_account(req, name, t.account, t.lock);
    }

    /// An admin's change of the {user} account, read under its lock (locked_account). `own`: the
    /// change an admin may not make to its own account ("disable", "delete"), or nullptr.
    std::optional<Response> admin_target(const Request& req, RequestContext& ctx, const char* own,
                                         Principal& who, Account& target,
                                         std::shared_ptr<node::AccountLock>& lock) {
        if (auto r = require_admin(api_, req, ctx, who))
            return r;
        const std::string name = percent_decode(ctx.param("user")).value_or("");
        if (own != nullptr && name == who.username)
            return error_response(req, http::status::conflict, "own_account",
                                  "an admin cannot " + std::string(own) + " its own account");
        return locked_account(req, name, target, lock);
    }

    /// Takes the lock of account `name` and reads it (404 when absent, 409 when another change
    /// of it is under way).
    std::optional<Response> locked_account(const Request& req, const std::string& name,
                                           Account& target,
                                           std::shared_ptr<node::AccountLock>& lock) {
        lock = api_.auth.try_lock_account(name);
        if (!lock)
            return busy(req, name);
        auto bytes = api_.registry.snapshot().get_entry(Table::accounts, name);
        if (!bytes)
            return error_response(req, http::status::not_found, "not_found",
                                  "account " + name + " does not exist");
        auto a = decode_account(*bytes);
        if (!a)
            return native_error(req, a.code(), a.error().message);
        target = std::move(a).value();
        return std::nullopt;
    }

    static Response busy(const Request& req, const std::string& name) {
        return error_response(req, http::status::conflict, "account_busy",
                              "another change of account " + name + " is under way; retry");
    }

    /// A token or an API key may be a stolen copy: before it mints a lasting credential (a key,
    /// a password) its holder must show the current password, unless an admin acts or the
    /// caller authenticated with the password itself. `body` is the request's JSON object (null
    /// for none).
    std::optional<Response> require_current_password(const Request& req, RequestContext& ctx,
                                                     const Principal& who, const json::object* body,
                                                     const Account& target) {
        if (who.is_admin() || who.credential == node::Credential::password)
            return std::nullopt;
        if (target.password_hash.empty()) {
            return error_response(req, http::status::forbidden, "current_password_required",
                                  "account " + target.username +
                                      " has no password to confirm this with: an admin must do it");
        }
        const json::value* given = body ? body->if_contains("current_password") : nullptr;
        if (given != nullptr && !given->is_string())
            return error_response(req, http::status::bad_request, "invalid_value",
                                  "current_password must be a string");
        auto outcome = api_.auth.confirm_password(
            who.username,
            given ? std::optional<std::string_view>(given->get_string()) : std::nullopt,
            ctx.client_ip);
        if (outcome.ok())
            return std::nullopt;
        if (outcome.outcome == node::Outcome::throttled)
            return rate_limited(req, outcome.retry_after, outcome.message);
        return error_response(req, http::status::forbidden,
                              given ? "wrong_current_password" : "current_password_required",
                              outcome.message);
    }

    /// Submits an account change while `locks` are held; they are released before the answer
    /// goes out, so that the client's next change never finds them still taken.
    void submit_locked(WriteBatch batch, std::vector<std::shared_ptr<node::AccountLock>> locks,
                       Request req, std::function<Response(const Request&)> on_success,
                       Responder responder) {
        api_.registry.submit(std::move(batch), [locks = std::move(locks), req = std::move(req),
                                                on_success = std::move(on_success),
                                                responder](BatchResult results) {
            const auto failed = std::find_if(results.begin(), results.end(),
                                             [](const OpResult& r) { return !r.ok(); });
            Response r = failed != results.end()
                             ? native_error(req, failed->error.code, failed->error.message)
                             : on_success(req);
            for (const auto& lock : locks)
                lock->release();
            responder.send(std::move(r));
        });
    }

    void set_password(Request&& req, Responder responder) {
        Target target;
        if (auto r = own_or_admin(req, responder.context(), target))
            return responder.send(*r);
        auto& [who, a, lock] = target;
        auto body = parse_json_body(req.body());
        const json::object* o = body ? body->if_object() : nullptr;
        const json::value* pw = o ? o->if_contains("password") : nullptr;
        if (pw == nullptr || !pw->is_string() || pw->get_string().size() < 8 ||
            pw->get_string().size() > 256) {
            return responder.send(error_response(
                req, http::status::bad_request, "invalid_value",
                body ? "body must be {\"password\": 8 to 256 characters}" : body.error().message));
        }
        if (auto r = require_current_password(req, responder.context(), who, o, a))
            return responder.send(*r);
        a.password_hash = hash_password(pw->get_string());
        a.v1_secret = sha256_hex(pw->get_string());
        ++a.token_generation; // a new password revokes outstanding bearer tokens
        api_.auth.forget(a.username);
        WriteBatch batch = account_write(who, a);
        submit_locked(
            std::move(batch), {lock}, std::move(req),
            [](const Request& req) {
                return json_response(req, http::status::ok, "{\"password\":\"changed\"}");
            },
            responder);
    }

    void create_key(Request&& req, Responder responder) {
        Target target;
        if (auto r = own_or_admin(req, responder.context(), target))
            return responder.send(*r);
        auto& [who, a, lock] = target;
        // The body is optional: {"current_password": …} when require_current_password wants it.
        json::value body;
        if (!req.body().empty()) {
            auto parsed = object_body(req);
            if (!parsed.ok())
                return responder.send(std::move(parsed.refusal));
            body = std::move(parsed.value);
        }
        if (auto r = require_current_password(req, responder.context(), who, body.if_object(), a))
            return responder.send(*r);
        auto key = generate_api_key(a.username, node::unix_now());
        const std::string shown = key.key, id = key.record.key_id;
        WriteBatch batch;
        batch.account = who.username;
        batch.ops.push_back(PutEntry{Table::api_keys, key.record.key_id, encode_api_key(key.record),
                                     PutMode::create});
        submit_locked(
            std::move(batch), {lock}, std::move(req),
            [shown, id](const Request& req) {
                return json_response(req, http::status::created,
                                     json::serialize(json::object{{"key_id", id}, {"key", shown}}));
            },
            responder);
    }

    /// POST /api/v1/accounts/{user}/identities: registers a Handle-protocol identity
    /// (node/identities.hpp) under the account's lock, so that it cannot outlive a concurrent
    /// delete of the account. A secret or public key is a lasting credential: a token or API-key
    /// caller shows the current password, as for a new API key.
    void add_identity(Request&& req, Responder responder) {
        Target target;
        if (auto r = own_or_admin(req, responder.context(), target))
            return responder.send(*r);
        auto& [who, a, lock] = target;
        auto parsed = object_body(req);
        if (!parsed.ok())
            return responder.send(std::move(parsed.refusal));
        const json::object& o = parsed.value.get_object();
        node::IdentityRequest request;
        if (auto why = identity_request(o, request))
            return responder.send(
                error_response(req, http::status::bad_request, "invalid_value", *why));
        if (auto r = require_current_password(req, responder.context(), who, &o, a))
            return responder.send(*r);
        auto prepared = node::prepare_identity(api_.registry.snapshot(), who, a, std::move(request),
                                               node::unix_now());
        if (prepared.refusal)
            return responder.send(native_refusal(req, *prepared.refusal));
        WriteBatch batch;
        batch.account = who.username;
        batch.ops.push_back(prepared.entry());
        submit_locked(
            std::move(batch), {lock}, std::move(req),
            [shown = identity_json(prepared.identity)](const Request& req) {
                return json_response(req, http::status::created, json::serialize(shown));
            },
            responder);
    }

    /// GET /api/v1/accounts/{user}/identities (admin or the account itself): no secret shown.
    Response list_identities(const Request& req, RequestContext& ctx) {
        Principal who;
        if (auto r = authenticate(api_, req, ctx, who, ApiFamily::native))
            return *r;
        const std::string name = percent_decode(ctx.param("user")).value_or("");
        auto snapshot = api_.registry.snapshot();
        auto listed = node::list_identities(snapshot, who, name);
        if (listed.refusal)
            return native_refusal(req, *listed.refusal);
        if (!snapshot.get_entry(Table::accounts, name))
            return error_response(req, http::status::not_found, "not_found",
                                  "account " + name + " does not exist");
        json::array out;
        for (const auto& identity : listed.identities)
            out.push_back(identity_json(identity));
        return json_response(req, http::status::ok,
                             json::serialize(json::object{{"identities", std::move(out)}}));
    }

    /// DELETE /api/v1/accounts/{user}/identities/{handle}/{index} (the router's rest parameter
    /// {identity...}: see identity_param).
    void remove_identity(Request&& req, Responder responder) {
        RequestContext& ctx = responder.context();
        Target target;
        if (auto r = own_or_admin(req, ctx, target))
            return responder.send(*r);
        auto& [who, a, lock] = target;
        auto id = identity_param(ctx.param("identity"));
        if (!id)
            return responder.send(error_response(
                req, http::status::bad_request, "invalid_value",
                "the path must end in /identities/<handle>/<index>, e.g. 88.118.8/ADMIN/300"));
        auto removal = node::prepare_identity_removal(api_.registry.snapshot(), who, a.username,
                                                      id->first, id->second);
        if (removal.refusal)
            return responder.send(native_refusal(req, *removal.refusal));
        WriteBatch batch;
        batch.account = who.username;
        batch.ops.push_back(std::move(removal.entry));
        submit_locked(std::move(batch), {lock}, std::move(req), no_content, responder);
    }

    /// POST /api/v1/accounts/{user}/disable|enable (admin). Disabling also bumps the token
    /// generation: the login tokens issued before stay dead after a later enable, while the API
    /// keys and the password work again.
    void set_disabled(Request&& req, Responder responder, bool disabled) {
        Principal who;
        Account a;
        std::vector<std::shared_ptr<node::AccountLock>> locks(1);
        if (auto r = admin_target(req, responder.context(), disabled ? "disable" : nullptr, who, a,
                                  locks[0]))
            return responder.send(*r);
        if (a.disabled == disabled)
            return responder.send(
                json_response(req, http::status::ok, json::serialize(account_json(a))));
        if (disabled) {
            if (auto r = keep_an_admin(req, a, locks))
                return responder.send(*r);
            ++a.token_generation;
        }
        a.disabled = disabled;
        api_.auth.forget(a.username);
        WriteBatch batch = account_write(who, a);
        submit_locked(
            std::move(batch), std::move(locks), std::move(req),
            [a](const Request& req) {
                return json_response(req, http::status::ok, json::serialize(account_json(a)));
            },
            responder);
    }

    /// Before `target` stops being a working admin: refuses (409) unless another enabled admin
    /// remains. Admin changes are serialised by one more lock, taken here and added to `locks`,
    /// so that two admins cannot disable each other at once; the count is read after it.
    std::optional<Response> keep_an_admin(const Request& req, const Account& target,
                                          std::vector<std::shared_ptr<node::AccountLock>>& locks) {
        if (target.role != Role::admin || target.disabled)
            return std::nullopt;
        auto lock = api_.auth.try_lock_account(std::string("\0admins", 7));
        if (!lock)
            return busy(req, target.username);
        locks.push_back(std::move(lock));
        bool another = false;
        api_.registry.snapshot().for_each_entry(
            Table::accounts, [&](const std::string& key, const std::string& bytes) {
                auto other = decode_account(bytes);
                another = another || (other && key != target.username &&
                                      other->role == Role::admin && !other->disabled);
            });
        if (another)
            return std::nullopt;
        return error_response(req, http::status::conflict, "last_admin",
                              "account " + target.username + " is the last enabled admin");
    }

    /// DELETE /api/v1/accounts/{user} (admin): the account, its API keys and its Handle-protocol
    /// identities go (an identity left behind would come back to life with a new account of the
    /// same name); its login tokens
    /// die with it (a new account of the same name has a new password hash, hence new token
    /// keys). Its prefixes, their records and templates stay, owned by nobody until an admin
    /// names them in another account.
    void delete_account(Request&& req, Responder responder) {
        Principal who;
        Account a;
        std::vector<std::shared_ptr<node::AccountLock>> locks(1);
        if (auto r = admin_target(req, responder.context(), "delete", who, a, locks[0]))
            return responder.send(*r);
        if (auto r = keep_an_admin(req, a, locks))
            return responder.send(*r);
        WriteBatch batch;
        batch.account = who.username;
        batch.ops.push_back(DeleteEntry{Table::accounts, a.username});
        auto snapshot = api_.registry.snapshot();
        for (auto& id : node::api_key_ids(snapshot, a.username))
            batch.ops.push_back(DeleteEntry{Table::api_keys, std::move(id)});
        for (auto& key : node::identity_keys_of(snapshot, a.username))
            batch.ops.push_back(DeleteEntry{Table::identities, std::move(key)});
        api_.auth.forget(a.username);
        submit_locked(std::move(batch), std::move(locks), std::move(req), no_content, responder);
    }

    /// DELETE /api/v1/accounts/{user}/prefixes/{prefix} (admin): the account no longer owns
    /// (enterprise) or may read privately (reader) under the prefix, from its next request on.
    void remove_account_prefix(Request&& req, Responder responder) {
        Principal who;
        RequestContext& ctx = responder.context();
        if (auto r = require_admin(api_, req, ctx, who))
            return responder.send(*r);
        const auto decoded = percent_decode(ctx.param("prefix"));
        auto folded = decoded ? parse_prefix(*decoded)
                              : Result<std::string>(Error{Errc::invalid_value, "bad escape"});
        if (!folded)
            return responder.send(error_response(req, http::status::bad_request, "invalid_prefix",
                                                 folded.error().message));
        const std::string name = percent_decode(ctx.param("user")).value_or("");
        Account a;
        std::shared_ptr<node::AccountLock> lock;
        if (auto r = locked_account(req, name, a, lock))
            return responder.send(*r);
        const auto it = std::find(a.prefixes.begin(), a.prefixes.end(), *folded);
        if (it == a.prefixes.end())
            return responder.send(
                error_response(req, http::status::not_found, "not_found",
                               "account " + a.username + " has no prefix " + *decoded));
        a.prefixes.erase(it);
        WriteBatch batch = account_write(who, a);
        submit_locked(
            std::move(batch), {lock}, std::move(req),
            [a](const Request& req) {
                return json_response(req, http::status::ok, json::serialize(account_json(a)));
            },
            responder);
    }

    void revoke_key(Request&& req, Responder responder) {
        RequestContext& ctx = responder.context();
        Target target;
        if (auto r = own_or_admin(req, ctx, target))
            return responder.send(*r);
        auto& [who, a, lock] = target;
        const std::string key_id = percent_decode(ctx.param("key_id")).value_or("");
        auto bytes = api_.registry.snapshot().get_entry(Table::api_keys, key_id);
        auto rec =
            bytes ? decode_api_key(*bytes) : Result<ApiKeyRecord>(Error{Errc::not_found, ""});
        if (!rec || rec->username != a.username) {
            return responder.send(
                error_response(req, http::status::not_found, "not_found",
                               "account " + a.username + " has no key " + key_id));
        }
        WriteBatch batch;
        batch.account = who.username;
        batch.ops.push_back(DeleteEntry{Table::api_keys, key_id});
        submit_locked(std::move(batch), {lock}, std::move(req), no_content, responder);
    }
};

void AccountRoutes::register_routes(Router& router) {
    using V = http::verb;
    AccountRoutes* self = this;
    router.add_async(V::post, "/api/v1/accounts", bind_async(self, &AccountRoutes::create_account));
    router.add(V::get, "/api/v1/accounts", bind_sync(self, &AccountRoutes::list_accounts));
    router.add_async(V::put, "/api/v1/accounts/{user}/password",
                     bind_async(self, &AccountRoutes::set_password));
    router.add_async(V::post, "/api/v1/accounts/{user}/keys",
                     bind_async(self, &AccountRoutes::create_key));
    router.add_async(V::delete_, "/api/v1/accounts/{user}/keys/{key_id}",
                     bind_async(self, &AccountRoutes::revoke_key));
    router.add_async(V::post, "/api/v1/accounts/{user}/disable",
                     [self](Request&& req, Responder r) {
                         self->set_disabled(std::move(req), std::move(r), true);
                     });
    router.add_async(V::post, "/api/v1/accounts/{user}/enable", [self](Request&& req, Responder r) {
        self->set_disabled(std::move(req), std::move(r), false);
    });
    router.add_async(V::delete_, "/api/v1/accounts/{user}",
                     bind_async(self, &AccountRoutes::delete_account));
    router.add_async(V::delete_, "/api/v1/accounts/{user}/prefixes/{prefix}",
                     bind_async(self, &AccountRoutes::remove_account_prefix));
    router.add_async(V::post, "/api/v1/accounts/{user}/identities",
                     bind_async(self, &AccountRoutes::add_identity));
    router.add(V::get, "/api/v1/accounts/{user}/identities",
               bind_sync(self, &AccountRoutes::list_identities));
    // The handle holds '/': a rest parameter "<handle>/<index>", split at its last '/'.
    router.add_async(V::delete_, "/api/v1/accounts/{user}/identities/{identity...}",
                     bind_async(self, &AccountRoutes::remove_identity));
}

std::unique_ptr<RouteFamily> make_account_routes(ApiContext& api) {
    return std::make_unique<AccountRoutes>(api);
}

} // namespace idnode::resolver::api::native
