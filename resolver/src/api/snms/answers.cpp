#include "api/snms/answers.hpp"

#include "codec.hpp"

#include <boost/json.hpp>

namespace idnode::resolver::api::snms {
namespace json = boost::json;
using namespace registry;

Response envelope(const Request& req, int status, std::string_view message, json::value data) {
    json::object body{{"status", status}, {"message", message}, {"data", std::move(data)}};
    return json_response(req, http::status::ok, json::serialize(body));
}

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
    switch (o.kind) {
    case Kind::ok:
        return json_response(req, http::status::ok, json::serialize(o.data));
    case Kind::created:
        return json_response(req, http::status::created, json::serialize(o.data));
    case Kind::throttled:
        return rate_limited(req, o.retry_after, o.en);
    default:
        break;
    }
    std::string_view code = o.code;
    if (code.empty()) {
        code = o.kind == Kind::invalid    ? std::string_view("invalid_value")
               : o.kind == Kind::conflict ? std::string_view("already_exists")
                                          : node::outcome_name(o.kind);
    }
    return error_response(req, native_status(o.kind), code, o.en);
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

std::optional<ApiOutcome> begin(ApiContext& api, const Request& req, RequestContext& ctx,
                                Call& call, bool login_required, Body body,
                                json::storage_ptr storage) {
    auto o = authenticate_header(api.auth, req[http::field::authorization], ctx.client_ip);
    if (!o.ok()) {
        if (o.outcome == Kind::throttled)
            return ApiOutcome{Kind::throttled, o.message, auth_message_zh(o.message), nullptr,
                              o.retry_after};
        return ApiOutcome{Kind::unauthorized, o.message, auth_message_zh(o.message)};
    }
    call.who = std::move(o.principal);
    ctx.account = call.who.username;
    if (login_required && call.who.anonymous())
        return ApiOutcome{Kind::unauthorized, "authentication is needed", "未登录或token无效"};
    if (const auto wait = api.account_limit.refuse(call.who))
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
        return ApiOutcome{Kind::invalid,
                          parsed ? en : parsed.error().message,
                          zh,
                          nullptr,
                          std::chrono::seconds{0},
                          "invalid_json"};
    }
    call.body = std::move(parsed).value();
    return std::nullopt;
}

void body_strings(const Request& req,
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

} // namespace idnode::resolver::api::snms
