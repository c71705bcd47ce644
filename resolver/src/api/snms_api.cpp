#include "snms_api.hpp"

#include "resolution_counter.hpp"

#include "codec.hpp"
#include "idnode/registry/admin.hpp"
#include "idnode/registry/template.hpp"
#include "record_write.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <initializer_list>
#include <map>

namespace idnode::resolver::api {
namespace json = boost::json;
using namespace registry;

namespace {

// SNMS envelope statuses (DESIGN §5.2).
constexpr int kOk = 1, kNotLoggedIn = -1, kBusiness = -2, kNoPermission = -3, kInternal = -4;

const char* const kSuccess = "成功";
const char* const kExists = "标识已存在";
const char* const kNotFound = "没有找到标识";
const char* const kStorageFull = "存储空间已满（storage full），暂时无法写入，查询不受影响";

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

Response envelope(const Request& req, int status, std::string_view message,
                  json::value data = nullptr) {
    json::object body{{"status", status}, {"message", message}, {"data", std::move(data)}};
    return json_response(req, http::status::ok, json::serialize(body));
}

/// What a template or record operation came to, before it is dressed as a native or SNMS answer.
enum class Kind {
    ok,
    created,
    unauthorized,
    throttled, // failed-login throttle or limits.rate_per_account; retry_after is set
    invalid_json,
    forbidden,
    invalid,
    not_found,
    conflict,
    in_use,
    unavailable,
    storage_full,
    internal
};

struct ApiOutcome {
    Kind kind = Kind::ok;
    std::string en; // native message
    std::string zh; // SNMS message
    json::value data = nullptr;
    std::chrono::seconds retry_after{0}; // Kind::throttled
};

ApiOutcome outcome_of(Errc e, std::string en, std::string zh) {
    switch (e) {
    case Errc::ok:
        return {Kind::ok, std::move(en), std::move(zh), nullptr};
    case Errc::not_found:
        return {Kind::not_found, std::move(en), std::move(zh), nullptr};
    case Errc::already_exists:
        return {Kind::conflict, std::move(en), std::move(zh), nullptr};
    case Errc::in_use:
        return {Kind::in_use, std::move(en), std::move(zh), nullptr};
    case Errc::invalid_handle:
    case Errc::invalid_value:
    case Errc::too_large:
    case Errc::not_homed:
        return {Kind::invalid, std::move(en), std::move(zh), nullptr};
    case Errc::storage_full:
        return {Kind::storage_full, std::move(en), kStorageFull, nullptr};
    case Errc::unavailable:
        return {Kind::unavailable, std::move(en), "服务繁忙，请稍后重试", nullptr};
    default:
        return {Kind::internal, std::move(en), "内部错误：" + en, nullptr};
    }
}

Response native_answer(const Request& req, ApiOutcome o) {
    struct Row {
        http::status status;
        const char* code;
    };
    Row row{http::status::ok, ""};
    switch (o.kind) {
    case Kind::ok:
        return json_response(req, http::status::ok, json::serialize(o.data));
    case Kind::created:
        return json_response(req, http::status::created, json::serialize(o.data));
    case Kind::unauthorized:
        row = {http::status::unauthorized, "unauthorized"};
        break;
    case Kind::throttled: {
        Response r = refusal_response(req, Refusal::rate_limited, o.en);
        r.set(http::field::retry_after, std::to_string(o.retry_after.count()));
        return r;
    }
    case Kind::invalid_json:
        row = {http::status::bad_request, "invalid_json"};
        break;
    case Kind::forbidden:
        row = {http::status::forbidden, "forbidden"};
        break;
    case Kind::invalid:
        row = {http::status::bad_request, "invalid_value"};
        break;
    case Kind::not_found:
        row = {http::status::not_found, "not_found"};
        break;
    case Kind::conflict:
        row = {http::status::conflict, "already_exists"};
        break;
    case Kind::in_use:
        row = {http::status::conflict, "in_use"};
        break;
    case Kind::unavailable:
        row = {http::status::service_unavailable, "unavailable"};
        break;
    case Kind::storage_full:
        row = {http::status::insufficient_storage, "storage_full"};
        break;
    case Kind::internal:
        row = {http::status::internal_server_error, "internal"};
        break;
    }
    return error_response(req, row.status, row.code, o.en);
}

Response snms_answer(const Request& req, ApiOutcome o) {
    switch (o.kind) {
    case Kind::ok:
    case Kind::created:
        return envelope(req, kOk, o.zh.empty() ? kSuccess : o.zh, std::move(o.data));
    case Kind::unauthorized:
        return envelope(req, kNotLoggedIn, o.zh);
    case Kind::throttled: { // a business error for SNMS clients; Retry-After for those who look
        Response r = envelope(req, kBusiness, o.zh);
        r.set(http::field::retry_after, std::to_string(o.retry_after.count()));
        return r;
    }
    case Kind::forbidden:
        return envelope(req, kNoPermission, o.zh);
    case Kind::internal:
    case Kind::unavailable:
        return envelope(req, kInternal, o.zh);
    case Kind::storage_full:
        // Not an internal fault: the operator's limit is reached and the client must be told to
        // stop writing (reads still work), so it is a business error with a readable message.
        return envelope(req, kBusiness, o.zh);
    default:
        return envelope(req, kBusiness, o.zh);
    }
}

std::string auth_message_zh(std::string_view en) {
    if (en.find("expired") != std::string_view::npos)
        return "登录已过期，请重新获取token";
    if (en.find("revoked") != std::string_view::npos)
        return "token已失效，请重新获取token";
    if (en.find("too many") != std::string_view::npos)
        return "登录失败次数过多，请稍后再试";
    if (en.find("disabled") != std::string_view::npos)
        return "账号已停用";
    return "未登录或token无效";
}

std::string query_param(const Request& req, std::string_view name) {
    auto q = parse_query(req.target());
    if (!q)
        return {};
    for (const auto& [k, v] : *q) {
        if (k == name)
            return v;
    }
    return {};
}

/// Message of a failed or refused record operation, in Chinese, for the SNMS answers.
std::string record_message_zh(const OpResult& r, bool creating) {
    if (r.outcome == Outcome::unchanged && creating)
        return kExists;
    if (r.ok())
        return kSuccess;
    switch (r.error.code) {
    case Errc::already_exists:
        return kExists;
    case Errc::not_found:
        return kNotFound;
    case Errc::invalid_value:
    case Errc::too_large:
        return "数据不合法：" + r.error.message;
    case Errc::storage_full:
        return kStorageFull;
    case Errc::unavailable:
        return "服务繁忙，请稍后重试";
    default:
        return "内部错误：" + r.error.message;
    }
}

bool record_ok(const OpResult& r, bool creating) {
    return r.ok() && !(creating && r.outcome == Outcome::unchanged);
}

} // namespace

// ------------------------------------------------------------------------------------------------

Result<SnmsRecord> snms_record_from_json(const json::value& doc, const HandleLimits& limits,
                                         std::string& handle_spelling) {
    if (const auto* o = doc.if_object()) {
        if (const auto* h = o->if_contains("handle"); h && h->is_string())
            handle_spelling = h->get_string();
    }
    auto in = record_from_json(doc, "value");
    if (!in)
        return Error{in.code(), "参数错误：" + in.error().message};
    if (in->handle.empty())
        return Error{Errc::invalid_value, "参数错误：缺少handle"};
    auto h = parse_handle(in->handle, limits);
    if (!h)
        return Error{Errc::invalid_handle, "标识格式错误：" + h.error().message};
    return SnmsRecord{std::move(h).value(), std::move(in->template_version), std::move(in->values)};
}

class SnmsApi::Impl {
public:
    Impl(Registry& registry, Authenticator& auth, AccountRateLimit& rate_limit,
         std::function<bool(std::string_view)> homed, SnmsOptions options)
        : registry_(registry), auth_(auth), rate_limit_(rate_limit), homed_(std::move(homed)),
          options_(options) {}

    void register_routes(Router& router);

private:
    // ---- callers ----------------------------------------------------------------------------

    /// The JSON body a route takes.
    enum class Body { none, object, array, any };

    /// What a handler starts from: the caller and, when the route takes one, its body.
    struct Call {
        Principal who;
        json::value body; // null for Body::none
    };

    /// The preamble of every handler but the login: authenticates (refusing bad credentials,
    /// and absent ones when `login_required`), takes one request from the account's
    /// limits.rate_per_account budget, and parses the body into the shape the route takes
    /// (`storage`: an arena for large bodies). A refusal is an outcome for snms_answer or
    /// native_answer.
    std::optional<ApiOutcome> begin(const Request& req, RequestContext& ctx, Call& call,
                                    bool login_required, Body body = Body::none,
                                    json::storage_ptr storage = {}) {
        auto o = auth_.authenticate(req[http::field::authorization], ctx.client_ip);
        if (!o.ok()) {
            if (o.status == 429)
                return ApiOutcome{Kind::throttled, o.message, auth_message_zh(o.message), nullptr,
                                  o.retry_after};
            return ApiOutcome{Kind::unauthorized, o.message, auth_message_zh(o.message)};
        }
        call.who = std::move(o.principal);
        ctx.account = call.who.username;
        if (login_required && call.who.anonymous())
            return ApiOutcome{Kind::unauthorized, "authentication is needed", "未登录或token无效"};
        if (const auto wait = rate_limit_.refuse(call.who))
            return ApiOutcome{Kind::throttled, "rate limit of this account exceeded",
                              "请求过于频繁，请稍后再试", nullptr, *wait};
        if (body == Body::none)
            return std::nullopt;
        auto parsed = parse_json_body(req.body(), std::move(storage));
        const bool shape_ok =
            parsed && (body == Body::any || (body == Body::object && parsed->is_object()) ||
                       (body == Body::array && parsed->is_array()));
        if (!shape_ok) {
            const char* en = body == Body::object  ? "body must be a JSON object"
                             : body == Body::array ? "body must be a JSON array"
                                                   : "";
            const char* zh = body == Body::object  ? "参数错误：请求体必须是JSON对象"
                             : body == Body::array ? "参数错误：请求体必须是JSON数组"
                                                   : "参数错误：请求体不是合法的JSON";
            return ApiOutcome{Kind::invalid_json, parsed ? en : parsed.error().message, zh};
        }
        call.body = std::move(parsed).value();
        return std::nullopt;
    }

    /// The string members `names` of an optional JSON object body (a DELETE may carry its
    /// parameters there instead of the query); absent or malformed bodies give nothing.
    static void body_strings(const Request& req,
                             std::initializer_list<std::pair<const char*, std::string*>> names) {
        auto body = parse_json_body(req.body());
        const json::object* o = body ? body->if_object() : nullptr;
        if (o == nullptr)
            return;
        for (const auto& [name, out] : names) {
            if (const auto* v = o->if_contains(name); v && v->is_string() && out->empty())
                *out = v->get_string();
        }
    }

    // ---- templates --------------------------------------------------------------------------

    /// May `who` read (or write) the templates of `prefix`, and is the prefix allocated here?
    std::optional<ApiOutcome> template_access(const ReadSnapshot& snapshot, const Principal& who,
                                              const std::string& prefix_key,
                                              std::string_view prefix, bool write) {
        if (who.anonymous())
            return ApiOutcome{Kind::unauthorized, "authentication is needed", "未登录或token无效",
                              nullptr};
        if (write ? !who.may_write(snapshot, prefix_key)
                  : !who.may_read_private(snapshot, prefix_key)) {
            return ApiOutcome{Kind::forbidden,
                              "account " + who.username + " may not " +
                                  (write ? "manage" : "read") + " the templates of prefix " +
                                  std::string(prefix),
                              "没有权限", nullptr};
        }
        auto bytes = snapshot.get_entry(Table::prefixes, prefix_key);
        if (!bytes) {
            return ApiOutcome{Kind::not_found,
                              "prefix " + std::string(prefix) + " is not allocated on this node",
                              "前缀" + std::string(prefix) + "未在本节点分配", nullptr};
        }
        // Suspended prefixes reject writes (DESIGN §3), templates included; reads continue.
        if (write) {
            auto rec = decode_prefix(*bytes);
            if (rec && rec->status == PrefixStatus::suspended)
                return ApiOutcome{Kind::forbidden, "prefix " + rec->prefix + " is suspended",
                                  "前缀" + rec->prefix + "已停用", nullptr};
        }
        return std::nullopt;
    }

    ApiOutcome template_get(const Principal& who, const std::string& prefix,
                            const std::string& version) {
        auto key = template_key(prefix, version);
        if (!key)
            return ApiOutcome{Kind::invalid, key.error().message,
                              "参数错误：" + key.error().message, nullptr};
        auto snapshot = registry_.snapshot();
        const std::string prefix_key = key->substr(0, key->find('/'));
        if (auto refusal = template_access(snapshot, who, prefix_key, prefix, false))
            return *refusal;
        auto t = load_template(snapshot, prefix, version);
        if (!t)
            return outcome_of(t.code(), t.error().message, "模板不存在");
        auto o = template_to_json(*t);
        o["usage"] = snapshot.template_usage(*key);
        return ApiOutcome{Kind::ok, {}, {}, std::move(o)};
    }

    ApiOutcome template_list(const Principal& who, const std::string& prefix) {
        if (who.anonymous())
            return ApiOutcome{Kind::unauthorized, "authentication is needed", "未登录或token无效",
                              nullptr};
        std::string filter;
        if (!prefix.empty()) {
            auto folded = parse_prefix(prefix);
            if (!folded)
                return ApiOutcome{Kind::invalid, folded.error().message,
                                  "参数错误：" + folded.error().message, nullptr};
            filter = *folded + "/";
        }
        json::array out;
        auto snapshot = registry_.snapshot();
        snapshot.for_each_entry(
            Table::templates, [&](const std::string& key, const std::string& bytes) {
                if (!filter.empty() && key.compare(0, filter.size(), filter) != 0)
                    return;
                if (!who.may_read_private(snapshot, key.substr(0, key.find('/'))))
                    return;
                if (auto t = decode_template(bytes)) {
                    auto o = template_to_json(*t);
                    o["usage"] = snapshot.template_usage(key);
                    out.push_back(std::move(o));
                }
            });
        return ApiOutcome{Kind::ok, {}, {}, json::object{{"templates", std::move(out)}}};
    }

    /// Creates (`create`) or updates a template from a document; `done` gets the outcome (on the
    /// writer thread when a write happened).
    void template_write(const Principal& who, const json::value& doc, bool create,
                        const std::string& path_prefix, const std::string& path_version,
                        std::function<void(ApiOutcome)> done) {
        auto parsed = template_from_json(doc);
        if (!parsed)
            return done(ApiOutcome{Kind::invalid, parsed.error().message,
                                   "模板不合法：" + parsed.error().message, nullptr});
        Template t = std::move(parsed).value();
        if (!path_prefix.empty()) {
            if ((!t.prefix.empty() && !equals_folded(t.prefix, path_prefix)) ||
                (!t.version.empty() && t.version != path_version)) {
                return done(ApiOutcome{Kind::invalid,
                                       "prefix and version in the body differ from the path",
                                       "模板不合法：前缀或版本与路径不一致", nullptr});
            }
            t.prefix = path_prefix;
            t.version = path_version;
        }
        if (Status st = validate_template(t); !st)
            return done(ApiOutcome{Kind::invalid, st.error().message,
                                   "模板不合法：" + st.error().message, nullptr});
        const std::string key = template_key(t.prefix, t.version).value();
        const std::string prefix_key = key.substr(0, key.find('/'));
        auto snapshot = registry_.snapshot();
        if (auto refusal = template_access(snapshot, who, prefix_key, t.prefix, true))
            return done(*refusal);
        const auto now = unix_now();
        t.created = t.updated = now;
        if (!create) {
            auto stored = load_template(snapshot, t.prefix, t.version);
            if (!stored)
                return done(outcome_of(stored.code(), stored.error().message, "模板不存在"));
            if (Status st = check_template_update(*stored, t); !st)
                return done(ApiOutcome{Kind::invalid, st.error().message,
                                       "模板不合法：" + st.error().message, nullptr});
            t.created = stored->created;
            t.prefix = stored->prefix;
        }
        WriteBatch batch;
        batch.account = who.username;
        batch.ops.push_back(PutEntry{Table::templates, key, encode_template(t),
                                     create ? PutMode::create : PutMode::replace});
        registry_.submit(std::move(batch), [t, create, done](BatchResult results) {
            const OpResult& r = results.front();
            if (r.ok() && !(create && r.outcome == Outcome::unchanged))
                return done(
                    ApiOutcome{create ? Kind::created : Kind::ok, {}, {}, template_to_json(t)});
            if (r.outcome == Outcome::unchanged || r.error.code == Errc::already_exists)
                return done(
                    ApiOutcome{Kind::conflict,
                               "template " + t.prefix + " version " + t.version + " already exists",
                               "模板已存在", nullptr});
            done(outcome_of(r.error.code, r.error.message,
                            r.error.code == Errc::not_found ? "模板不存在" : r.error.message));
        });
    }

    void template_delete(const Principal& who, const std::string& prefix,
                         const std::string& version, std::function<void(ApiOutcome)> done) {
        auto key = template_key(prefix, version);
        if (!key)
            return done(ApiOutcome{Kind::invalid, key.error().message,
                                   "参数错误：" + key.error().message, nullptr});
        const std::string prefix_key = key->substr(0, key->find('/'));
        if (auto refusal = template_access(registry_.snapshot(), who, prefix_key, prefix, true))
            return done(*refusal);
        WriteBatch batch;
        batch.account = who.username;
        batch.ops.push_back(DeleteEntry{Table::templates, *key});
        registry_.submit(std::move(batch), [done](BatchResult results) {
            const OpResult& r = results.front();
            if (r.ok())
                return done(ApiOutcome{Kind::ok, {}, {}, json::object{{"deleted", true}}});
            if (r.error.code == Errc::in_use)
                return done(ApiOutcome{Kind::in_use, r.error.message,
                                       "模板正在被标识使用，不能删除（" + r.error.message + "）",
                                       nullptr});
            done(outcome_of(r.error.code, r.error.message,
                            r.error.code == Errc::not_found ? "模板不存在" : r.error.message));
        });
    }

    // ---- native template routes ---------------------------------------------------------------

    struct PathKey {
        std::string prefix, version;
        bool ok = false;
    };
    static PathKey path_key(const RequestContext& ctx) {
        auto p = percent_decode(ctx.param("prefix"));
        auto v = percent_decode(ctx.param("version"));
        if (!p || !v)
            return {};
        return {*p, *v, true};
    }

    Response native_list(const Request& req, RequestContext& ctx) {
        Call call;
        if (auto r = begin(req, ctx, call, true))
            return native_answer(req, std::move(*r));
        return native_answer(req, template_list(call.who, query_param(req, "prefix")));
    }

    Response native_get(const Request& req, RequestContext& ctx) {
        Call call;
        if (auto r = begin(req, ctx, call, true))
            return native_answer(req, std::move(*r));
        auto k = path_key(ctx);
        if (!k.ok)
            return error_response(req, http::status::bad_request, "invalid_value",
                                  "malformed percent-encoding in the path");
        return native_answer(req, template_get(call.who, k.prefix, k.version));
    }

    void native_write(Request&& req, Responder responder, bool create) {
        Call call;
        if (auto r = begin(req, responder.context(), call, true, Body::any))
            return responder.send(native_answer(req, std::move(*r)));
        // POST /api/v1/templates?prefix=P loads a prefix-less document (conf/templates/*.json)
        // under P.
        if (const std::string qp = query_param(req, "prefix"); create && !qp.empty()) {
            auto* o = call.body.if_object();
            const auto* given = o ? o->if_contains("prefix") : nullptr;
            if (o && given && !(given->is_string() && equals_folded(given->get_string(), qp)))
                return responder.send(error_response(req, http::status::bad_request,
                                                     "invalid_value",
                                                     "prefix in the body differs from ?prefix="));
            if (o)
                (*o)["prefix"] = qp;
        }
        PathKey k;
        if (!create) {
            k = path_key(responder.context());
            if (!k.ok)
                return responder.send(error_response(req, http::status::bad_request,
                                                     "invalid_value",
                                                     "malformed percent-encoding in the path"));
        }
        auto shared = std::make_shared<Request>(std::move(req));
        template_write(call.who, call.body, create, k.prefix, k.version,
                       [shared, responder](ApiOutcome o) {
                           responder.send(native_answer(*shared, std::move(o)));
                       });
    }

    void native_delete(Request&& req, Responder responder) {
        Call call;
        if (auto r = begin(req, responder.context(), call, true))
            return responder.send(native_answer(req, std::move(*r)));
        auto k = path_key(responder.context());
        if (!k.ok)
            return responder.send(error_response(req, http::status::bad_request, "invalid_value",
                                                 "malformed percent-encoding in the path"));
        auto shared = std::make_shared<Request>(std::move(req));
        template_delete(call.who, k.prefix, k.version, [shared, responder](ApiOutcome o) {
            if (o.kind == Kind::ok) {
                Response res{http::status::no_content, shared->version()};
                res.keep_alive(shared->keep_alive());
                res.prepare_payload();
                return responder.send(std::move(res));
            }
            responder.send(native_answer(*shared, std::move(o)));
        });
    }

    /// DELETE /api/v1/accounts/{user}/tokens[?keys=true]: bumps the account's token generation,
    /// which invalidates every login token issued to it, and with keys=true also deletes every
    /// API key of it (admin or the account itself).
    void revoke_tokens(Request&& req, Responder responder) {
        Call call;
        if (auto r = begin(req, responder.context(), call, true))
            return responder.send(native_answer(req, std::move(*r)));
        const Principal& who = call.who;
        const std::string name = percent_decode(responder.context().param("user")).value_or("");
        if (!who.is_admin() && who.username != name)
            return responder.send(error_response(req, http::status::forbidden, "forbidden",
                                                 "only an admin or the account itself"));
        const std::string keys = query_param(req, "keys");
        if (keys != "" && keys != "true" && keys != "false")
            return responder.send(error_response(req, http::status::bad_request, "invalid_query",
                                                 "keys must be true or false"));
        // The same lock as the native account changes (a key made meanwhile must not survive).
        auto lock = auth_.try_lock_account(name);
        if (!lock)
            return responder.send(
                error_response(req, http::status::conflict, "account_busy",
                               "another change of account " + name + " is under way; retry"));
        auto bytes = registry_.snapshot().get_entry(Table::accounts, name);
        if (!bytes)
            return responder.send(error_response(req, http::status::not_found, "not_found",
                                                 "account " + name + " does not exist"));
        auto a = decode_account(*bytes);
        if (!a)
            return responder.send(error_response(req, http::status::internal_server_error,
                                                 "corrupt", a.error().message));
        ++a->token_generation;
        WriteBatch batch;
        batch.account = who.username;
        batch.ops.push_back(PutEntry{Table::accounts, name, encode_account(*a), PutMode::replace});
        if (keys == "true") {
            for (auto& id : api_key_ids(registry_.snapshot(), name))
                batch.ops.push_back(DeleteEntry{Table::api_keys, std::move(id)});
        }
        auth_.forget(name);
        auto shared = std::make_shared<Request>(std::move(req));
        registry_.submit(std::move(batch), [shared, responder, lock](BatchResult results) {
            lock->release(); // before the answer: the client's next change must find it free
            const auto failed = std::find_if(results.begin(), results.end(),
                                             [](const OpResult& r) { return !r.ok(); });
            if (failed != results.end())
                return responder.send(
                    native_answer(*shared, outcome_of(failed->error.code, failed->error.message,
                                                      failed->error.message)));
            Response res{http::status::no_content, shared->version()};
            res.keep_alive(shared->keep_alive());
            res.prepare_payload();
            responder.send(std::move(res));
        });
    }

    // ---- SNMS: login ----------------------------------------------------------------------------

    Response token(const Request& req, RequestContext& ctx, bool v1) {
        auto body = parse_json_body(req.body());
        const json::object* o = body ? body->if_object() : nullptr;
        const json::value* user = o ? o->if_contains("username") : nullptr;
        const json::value* pass = o ? o->if_contains("password") : nullptr;
        if (!user || !pass || !user->is_string() || !pass->is_string())
            return envelope(req, kBusiness, "参数错误：需要username和password");
        const std::string username(user->get_string());
        auto outcome = v1 ? auth_.login_v1(username, pass->get_string(), ctx.client_ip, unix_now())
                          : auth_.login(username, pass->get_string(), ctx.client_ip);
        if (!outcome.ok()) {
            // "disabled" is only said to a caller whose password was right (auth.hpp).
            return envelope(req, kBusiness,
                            outcome.status == 429 ? "登录失败次数过多，请稍后再试"
                            : outcome.message.find("disabled") != std::string::npos
                                ? "账号已停用"
                                : "用户名或密码错误");
        }
        ctx.account = outcome.principal.username;
        auto bytes = registry_.snapshot().get_entry(Table::accounts, username);
        auto account = bytes ? decode_account(*bytes)
                             : Result<Account>(Error{Errc::not_found, "account vanished"});
        if (!account)
            return envelope(req, kInternal, "内部错误：" + account.error().message);
        const auto expires = unix_now() + options_.token_ttl_s;
        return envelope(req, kOk, kSuccess,
                        json::object{{"token", issue_token(*account, expires)},
                                     {"expiresIn", options_.token_ttl_s}});
    }

    // ---- SNMS: identifiers ----------------------------------------------------------------------

    /// Per-request memo of a batch: templates and write checks per prefix (same snapshot).
    struct BatchMemo {
        TemplateCache templates;
        std::map<std::string, WriteCheck, std::less<>> writable;
    };

    /// Parses and checks one handle; on failure the Chinese message.
    std::optional<std::string> snms_handle(std::string_view text, std::optional<Handle>& out,
                                           const Principal* writer, const ReadSnapshot& snapshot,
                                           int& status, BatchMemo* memo = nullptr) {
        status = kBusiness;
        auto h = parse_handle(text, options_.handle_limits);
        if (!h)
            return "标识格式错误：" + h.error().message;
        if (auto refusal = snms_check(*h, writer, snapshot, status, memo))
            return refusal;
        out = std::move(h).value();
        return std::nullopt;
    }

    /// Is the handle homed here and (with a `writer`) may the writer write it? On refusal the
    /// Chinese message, and `status` says which SNMS status goes with it.
    std::optional<std::string> snms_check(const Handle& h, const Principal* writer,
                                          const ReadSnapshot& snapshot, int& status,
                                          BatchMemo* memo = nullptr) {
        status = kBusiness;
        if (!homed_(h.prefix_key()))
            return "标识前缀" + std::string(h.prefix()) + "不在本节点管理范围内";
        if (writer == nullptr)
            return std::nullopt;
        WriteCheck check;
        const auto memo_it =
            memo ? memo->writable.find(h.prefix_key()) : decltype(memo->writable)::iterator{};
        if (memo && memo_it != memo->writable.end()) {
            check = memo_it->second;
        } else {
            check = check_writable(snapshot, *writer, h);
            if (memo)
                memo->writable.emplace(std::string(h.prefix_key()), check);
        }
        switch (check.refusal) {
        case WriteRefusal::none:
            return std::nullopt;
        case WriteRefusal::auth_needed:
            status = kNotLoggedIn;
            return "未登录或token无效";
        case WriteRefusal::forbidden:
            status = kNoPermission;
            return "没有权限：" + check.message;
        case WriteRefusal::not_allocated:
            return "前缀" + std::string(h.prefix()) + "未在本节点分配";
        case WriteRefusal::suspended:
            status = kNoPermission;
            return "前缀" + std::string(h.prefix()) + "已停用";
        }
        return std::nullopt;
    }

    struct PreparedOp {
        std::string handle; // as sent
        std::optional<WriteOp> op;
        int status = kBusiness; // when op is empty
        std::string message;    // when op is empty
    };

    /// One SNMS record document -> a validated write (create or replace), or why not.
    PreparedOp prepare(const ReadSnapshot& snapshot, const Principal& who, const json::value& doc,
                       PutMode mode, BatchMemo* memo = nullptr) {
        PreparedOp p;
        auto in = snms_record_from_json(doc, options_.handle_limits, p.handle);
        if (!in) {
            p.message = in.error().message;
            return p;
        }
        if (auto bad = snms_check(in->handle, &who, snapshot, p.status, memo)) {
            p.message = *bad;
            return p;
        }
        auto prepared =
            prepare_record(snapshot, in->handle, std::move(in->template_version),
                           std::move(in->values), false, memo ? &memo->templates : nullptr);
        if (!prepared.ok()) {
            p.message = prepared.violations.empty()
                            ? (prepared.error->code == Errc::not_found
                                   ? "模板不存在：" + prepared.error->message
                                   : "数据不合法：" + prepared.error->message)
                            : prepared.message(true);
            return p;
        }
        p.op = PutRecord{std::move(in->handle), std::move(prepared.values), mode};
        return p;
    }

    Response detail(const Request& req, RequestContext& ctx) {
        Call call;
        if (auto r = begin(req, ctx, call, false))
            return snms_answer(req, std::move(*r));
        const std::string text = query_param(req, "handle");
        if (text.empty())
            return envelope(req, kBusiness, "参数错误：缺少handle");
        auto snapshot = registry_.snapshot();
        std::optional<Handle> h;
        int status = kBusiness;
        if (auto bad = snms_handle(text, h, nullptr, snapshot, status))
            return envelope(req, status, *bad);
        const bool include_private = call.who.may_read_private(snapshot, h->prefix_key());
        json::array values;
        std::string template_version;
        auto st = snapshot.visit(*h, [&](const RecordView& view) {
            for (const ValueView& v : view) {
                if (v.index == kIndexTemplate)
                    template_version.assign(v.data);
                if (!include_private && !v.permissions.public_read())
                    continue;
                const bool text_data = find_invalid_utf8(v.data) == std::string_view::npos;
                values.push_back(json::object{
                    {"index", v.index},
                    {"type", v.type},
                    {"data", json::object{{"format", text_data ? "string" : "base64"},
                                          {"value", text_data ? std::string(v.data)
                                                              : base64_encode(v.data)}}},
                    {"auth", v.permissions.to_string()}});
            }
        });
        if (options_.resolutions != nullptr) {
            const auto now = unix_now();
            if (st)
                options_.resolutions->count_found(now, h->prefix_key());
            else
                options_.resolutions->count(now);
        }
        if (!st) {
            return st.code() == Errc::not_found
                       ? envelope(req, kBusiness, kNotFound)
                       : envelope(req, kInternal, "内部错误：" + st.error().message);
        }
        return envelope(req, kOk, kSuccess,
                        json::object{{"prefix", h->prefix()},
                                     {"handle", h->spelling()},
                                     {"templateVersion", template_version},
                                     {"value", std::move(values)}});
    }

    void write_one(Request&& req, Responder responder, PutMode mode) {
        Call call;
        if (auto r = begin(req, responder.context(), call, true, Body::object))
            return responder.send(snms_answer(req, std::move(*r)));
        auto p = prepare(registry_.snapshot(), call.who, call.body, mode);
        if (!p.op)
            return responder.send(envelope(req, p.status, p.message));
        const bool creating = mode == PutMode::create;
        WriteBatch batch;
        batch.account = call.who.username;
        batch.ops.push_back(std::move(*p.op));
        auto shared = std::make_shared<Request>(std::move(req));
        registry_.submit(std::move(batch), [shared, responder, creating,
                                            handle = p.handle](BatchResult results) {
            const OpResult& r = results.front();
            if (record_ok(r, creating))
                return responder.send(
                    envelope(*shared, kOk, kSuccess, json::object{{"handle", handle}}));
            // storage_full is a business error (-2 with its message), see snms_answer.
            const bool server_fault =
                !r.ok() && (r.error.code == Errc::internal || r.error.code == Errc::unavailable ||
                            r.error.code == Errc::corrupt);
            responder.send(envelope(*shared, server_fault ? kInternal : kBusiness,
                                    record_message_zh(r, creating)));
        });
    }

    void delete_one(Request&& req, Responder responder) {
        Call call;
        if (auto r = begin(req, responder.context(), call, true))
            return responder.send(snms_answer(req, std::move(*r)));
        std::string text = query_param(req, "handle");
        if (text.empty())
            body_strings(req, {{"handle", &text}});
        if (text.empty())
            return responder.send(envelope(req, kBusiness, "参数错误：缺少handle"));
        std::optional<Handle> h;
        int status = kBusiness;
        if (auto bad = snms_handle(text, h, &call.who, registry_.snapshot(), status))
            return responder.send(envelope(req, status, *bad));
        WriteBatch batch;
        batch.account = call.who.username;
        batch.ops.push_back(DeleteRecord{std::move(*h)});
        auto shared = std::make_shared<Request>(std::move(req));
        registry_.submit(std::move(batch), [shared, responder, text](BatchResult results) {
            const OpResult& r = results.front();
            if (r.ok())
                return responder.send(
                    envelope(*shared, kOk, kSuccess, json::object{{"handle", text}}));
            responder.send(envelope(*shared, kBusiness, record_message_zh(r, false)));
        });
    }

    /// batchCreate / batchUpdate / batchDelete: every valid record of the call goes to the
    /// writer as one WriteBatch; each record gets its own result, in input order.
    void batch(Request&& req, Responder responder, std::optional<PutMode> mode) {
        Call call;
        // The parsed batch lives in one arena, freed at once when the call ends.
        if (auto r = begin(req, responder.context(), call, true, Body::array,
                           json::make_shared_resource<json::monotonic_resource>()))
            return responder.send(snms_answer(req, std::move(*r)));
        const Principal& who = call.who;
        const auto& items = call.body.get_array();
        if (items.size() > options_.max_batch)
            return responder.send(
                envelope(req, kBusiness, "每批最多" + std::to_string(options_.max_batch) + "条"));
        const bool deleting = !mode.has_value();
        const bool creating = mode == PutMode::create;
        struct Slot {
            std::string handle;
            int code = kOk;
            std::string msg;
            std::ptrdiff_t op = -1; // index into batch.ops
        };
        auto slots = std::make_shared<std::vector<Slot>>(items.size());
        WriteBatch batch;
        batch.account = who.username;
        batch.ops.reserve(items.size());
        BatchMemo memo; // one template lookup and one write check per prefix, not per record
        // The same per-record limit as a single write's body: a large record fails alone.
        const auto sizes = deleting ? std::vector<std::size_t>{} : record_json_sizes(req.body());
        // The snapshot ends with this loop, before the asynchronous hop to the writer. (Not a
        // range-for over std::views::iota: clang 14, which builds the fuzz preset, cannot compile
        // libstdc++ 12's.)
        std::optional<ReadSnapshot> snapshot(registry_.snapshot());
        for (std::size_t i = 0; i < items.size(); ++i) {
            Slot& slot = (*slots)[i];
            if (deleting) {
                const json::value& item = items[i];
                const json::value* hv = &item;
                if (const auto* o = item.if_object())
                    hv = o->if_contains("handle");
                if (hv == nullptr || !hv->is_string()) {
                    slot.code = kBusiness;
                    slot.msg = "参数错误：handle必须是字符串";
                    continue;
                }
                slot.handle = hv->get_string();
                std::optional<Handle> h;
                if (auto bad = snms_handle(slot.handle, h, &who, *snapshot, slot.code, &memo)) {
                    slot.msg = *bad;
                    continue;
                }
                slot.op = static_cast<std::ptrdiff_t>(batch.ops.size());
                batch.ops.push_back(DeleteRecord{std::move(*h)});
                continue;
            }
            if (i < sizes.size() && sizes[i] > options_.max_record_bytes) {
                if (const auto* o = items[i].if_object())
                    if (const auto* hv = o->if_contains("handle"); hv && hv->is_string())
                        slot.handle = hv->get_string();
                slot.code = kBusiness;
                slot.msg =
                    "记录过大：" + record_too_large(sizes[i], options_.max_record_bytes).message;
                continue;
            }
            auto p = prepare(*snapshot, who, items[i], *mode, &memo);
            slot.handle = p.handle;
            if (!p.op) {
                slot.code = p.status;
                slot.msg = std::move(p.message);
                continue;
            }
            slot.op = static_cast<std::ptrdiff_t>(batch.ops.size());
            batch.ops.push_back(std::move(*p.op));
        }
        snapshot.reset();
        auto shared = std::make_shared<Request>(std::move(req));
        auto finish = [shared, responder, slots, deleting, creating](const BatchResult* results) {
            json::array data;
            std::size_t failed = 0;
            for (auto& slot : *slots) {
                if (slot.op >= 0) {
                    const OpResult& r = (*results)[static_cast<std::size_t>(slot.op)];
                    slot.code = record_ok(r, creating) ? kOk : kBusiness;
                    slot.msg = record_message_zh(r, creating);
                }
                failed += slot.code != kOk;
                json::object o{{"handle", slot.handle}};
                if (deleting)
                    o["code"] = slot.code;
                o["msg"] = slot.msg;
                data.push_back(std::move(o));
            }
            const std::string message = "成功" + std::to_string(slots->size() - failed) +
                                        "条，失败" + std::to_string(failed) + "条";
            responder.send(envelope(*shared, kOk, message, std::move(data)));
        };
        if (batch.ops.empty())
            return finish(nullptr);
        registry_.submit(std::move(batch), [finish](BatchResult results) { finish(&results); });
    }

    // ---- SNMS: templates ------------------------------------------------------------------------

    Response snms_template_get(const Request& req, RequestContext& ctx) {
        Call call;
        if (auto r = begin(req, ctx, call, true))
            return snms_answer(req, std::move(*r));
        const Principal& who = call.who;
        const std::string prefix = query_param(req, "prefix");
        const std::string version = query_param(req, "version");
        if (prefix.empty())
            return envelope(req, kBusiness, "参数错误：缺少prefix");
        if (version.empty()) {
            auto o = template_list(who, prefix);
            if (o.kind == Kind::ok)
                o.data = std::move(o.data.get_object()["templates"]);
            return snms_answer(req, std::move(o));
        }
        return snms_answer(req, template_get(who, prefix, version));
    }

    void snms_template_write(Request&& req, Responder responder, bool create) {
        Call call;
        if (auto r = begin(req, responder.context(), call, true, Body::any))
            return responder.send(snms_answer(req, std::move(*r)));
        auto shared = std::make_shared<Request>(std::move(req));
        template_write(call.who, call.body, create, {}, {}, [shared, responder](ApiOutcome o) {
            responder.send(snms_answer(*shared, std::move(o)));
        });
    }

    void snms_template_delete(Request&& req, Responder responder) {
        Call call;
        if (auto r = begin(req, responder.context(), call, true))
            return responder.send(snms_answer(req, std::move(*r)));
        std::string prefix = query_param(req, "prefix"), version = query_param(req, "version");
        if (prefix.empty() || version.empty())
            body_strings(req, {{"prefix", &prefix}, {"version", &version}});
        if (prefix.empty() || version.empty())
            return responder.send(envelope(req, kBusiness, "参数错误：需要prefix和version"));
        auto shared = std::make_shared<Request>(std::move(req));
        template_delete(call.who, prefix, version, [shared, responder](ApiOutcome o) {
            responder.send(snms_answer(*shared, std::move(o)));
        });
    }

    Registry& registry_;
    Authenticator& auth_;
    AccountRateLimit& rate_limit_;
    std::function<bool(std::string_view)> homed_;
    SnmsOptions options_;
};

void SnmsApi::Impl::register_routes(Router& router) {
    using V = http::verb;
    router.add(V::post, "/identity/token",
               [this](const Request& req, RequestContext& ctx) { return token(req, ctx, false); });
    // snms.token_v1 = false switches the v1 login off: 404 (registered anyway, so that the
    // catch-all GET /{handle...} route does not turn it into a 405).
    router.add(V::post, "/identity/token/v1", [this](const Request& req, RequestContext& ctx) {
        if (!options_.token_v1) {
            Response r = envelope(req, kBusiness, "token/v1登录接口已关闭");
            r.result(http::status::not_found);
            return r;
        }
        return token(req, ctx, true);
    });
    router.add(V::get, "/identityv2/data/detail",
               [this](const Request& req, RequestContext& ctx) { return detail(req, ctx); });
    router.add_async(V::post, "/identityv2/data", [this](Request&& req, Responder r) {
        write_one(std::move(req), std::move(r), PutMode::create);
    });
    router.add_async(V::put, "/identityv2/data", [this](Request&& req, Responder r) {
        write_one(std::move(req), std::move(r), PutMode::replace);
    });
    router.add_async(V::delete_, "/identityv2/data", [this](Request&& req, Responder r) {
        delete_one(std::move(req), std::move(r));
    });
    // Batches of up to max_batch records need more than limits.max_body_bytes.
    const RouteOptions batch_body{options_.max_batch_body_bytes};
    router.add_async(
        V::post, "/identityv2/data/batchCreate",
        [this](Request&& req, Responder r) {
            batch(std::move(req), std::move(r), PutMode::create);
        },
        batch_body);
    router.add_async(
        V::put, "/identityv2/data/batchUpdate",
        [this](Request&& req, Responder r) {
            batch(std::move(req), std::move(r), PutMode::replace);
        },
        batch_body);
    router.add_async(
        V::delete_, "/identityv2/data/batchDelete",
        [this](Request&& req, Responder r) { batch(std::move(req), std::move(r), std::nullopt); },
        batch_body);
    for (const char* base : {"/snms/api/v5/template", "/snms/api/v3/template"}) {
        router.add(V::get, base, [this](const Request& req, RequestContext& ctx) {
            return snms_template_get(req, ctx);
        });
        router.add_async(V::post, base, [this](Request&& req, Responder r) {
            snms_template_write(std::move(req), std::move(r), true);
        });
        router.add_async(V::put, base, [this](Request&& req, Responder r) {
            snms_template_write(std::move(req), std::move(r), false);
        });
        router.add_async(V::delete_, base, [this](Request&& req, Responder r) {
            snms_template_delete(std::move(req), std::move(r));
        });
    }

    router.add(V::get, "/api/v1/templates",
               [this](const Request& req, RequestContext& ctx) { return native_list(req, ctx); });
    router.add_async(V::post, "/api/v1/templates", [this](Request&& req, Responder r) {
        native_write(std::move(req), std::move(r), true);
    });
    router.add(V::get, "/api/v1/templates/{prefix}/{version}",
               [this](const Request& req, RequestContext& ctx) { return native_get(req, ctx); });
    router.add_async(
        V::put, "/api/v1/templates/{prefix}/{version}",
        [this](Request&& req, Responder r) { native_write(std::move(req), std::move(r), false); });
    router.add_async(
        V::delete_, "/api/v1/templates/{prefix}/{version}",
        [this](Request&& req, Responder r) { native_delete(std::move(req), std::move(r)); });
    router.add_async(
        V::delete_, "/api/v1/accounts/{user}/tokens",
        [this](Request&& req, Responder r) { revoke_tokens(std::move(req), std::move(r)); });
}

SnmsApi::SnmsApi(Registry& registry, Authenticator& auth, AccountRateLimit& rate_limit,
                 std::function<bool(std::string_view)> homed, SnmsOptions options)
    : impl_(std::make_unique<Impl>(registry, auth, rate_limit, std::move(homed), options)) {}
SnmsApi::~SnmsApi() = default;
void SnmsApi::register_routes(Router& router) {
    impl_->register_routes(router);
}

} // namespace idnode::resolver::api
