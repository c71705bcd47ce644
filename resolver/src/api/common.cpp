#include "api/common.hpp"

#include "api/handle_rest/codes.hpp"
#include "codec.hpp"
#include "idnode/node/records.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <charconv>

namespace idnode::resolver::api {
namespace json = boost::json;

ApiContext::ApiContext(registry::Registry& registry_ref, NodeApiOptions options_value,
                       node::Homing homing_value)
    : registry(registry_ref), options(std::move(options_value)), homing(std::move(homing_value)),
      auth(registry, node::AuthOptions{}), account_limit(options.rate_per_account),
      allocator(registry, homing),
      idempotency(&registry, std::chrono::seconds(options.idempotency_ttl_s)) {}

bool Query::has(std::string_view name) const {
    return std::any_of(items.begin(), items.end(), [&](const auto& p) { return p.first == name; });
}

std::string Query::get(std::string_view name, std::string fallback) const {
    for (const auto& [k, v] : items) {
        if (k == name)
            return v;
    }
    return fallback;
}

std::vector<std::string> Query::all(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : items) {
        if (k == name)
            out.push_back(v);
    }
    return out;
}

bool Query::flag(std::string_view name, bool fallback) const {
    for (const auto& [k, v] : items) {
        if (k == name)
            return v.empty() || v == "true" || v == "1";
    }
    return fallback;
}

bool parse_uint(std::string_view s, std::uint64_t& out) {
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && p == s.data() + s.size() && !s.empty();
}

std::string echo_safe(std::string_view text) {
    std::string out;
    while (!text.empty()) {
        const auto bad = registry::find_invalid_utf8(text);
        out.append(text.substr(0, bad));
        if (bad == std::string_view::npos)
            break;
        out.append("\xEF\xBF\xBD");
        text.remove_prefix(bad + 1);
    }
    return out;
}

std::string not_homed_message(std::string_view prefix) {
    return "prefix " + std::string(prefix) + " is not homed on this node";
}

node::AuthOutcome authenticate_header(node::Authenticator& auth, std::string_view authorization,
                                      const std::string& client_ip) {
    if (authorization.empty())
        return {};
    const auto space = authorization.find(' ');
    const std::string_view scheme = authorization.substr(0, space);
    const std::string_view credentials =
        space == std::string_view::npos ? std::string_view{} : authorization.substr(space + 1);
    if (registry::equals_folded(scheme, "Bearer"))
        return auth.bearer(credentials, client_ip);
    if (registry::equals_folded(scheme, "Basic")) {
        std::string decoded;
        if (!base64_decode(credentials, decoded) || decoded.find(':') == std::string::npos)
            return auth.refuse(client_ip, "malformed Basic credentials");
        const auto split = decoded.find(':');
        return auth.password_login(std::string_view(decoded).substr(0, split),
                                   std::string_view(decoded).substr(split + 1), client_ip);
    }
    return auth.refuse(client_ip, "unsupported Authorization scheme (use Bearer or Basic)");
}

Response rate_limited(const Request& req, std::chrono::seconds wait, std::string_view message) {
    Response r = refusal_response(req, Refusal::rate_limited, message);
    r.set(http::field::retry_after, std::to_string(wait.count()));
    return r;
}

std::optional<Response> authenticate(ApiContext& api, const Request& req, RequestContext& ctx,
                                     node::Principal& who, ApiFamily family) {
    auto outcome = authenticate_header(api.auth, req[http::field::authorization], ctx.client_ip);
    if (!outcome.ok()) {
        if (outcome.outcome == node::Outcome::throttled) // failed logins: the server-level refusal
            return rate_limited(req, outcome.retry_after, outcome.message);
        Response r =
            family == ApiFamily::handle
                ? handle_rest::handle_json(req, handle::rc::kAuthenticationNeeded, {},
                                           outcome.message, http::status::unauthorized)
                : error_response(req, http::status::unauthorized, "unauthorized", outcome.message);
        r.set(http::field::www_authenticate, "Basic realm=\"idnode\", Bearer");
        return r;
    }
    who = std::move(outcome.principal);
    ctx.account = who.username;
    if (const auto wait = api.account_limit.refuse(who))
        return rate_limited(req, *wait, "rate limit of this account exceeded");
    return std::nullopt;
}

std::optional<Response> require_admin(ApiContext& api, const Request& req, RequestContext& ctx,
                                      node::Principal& who) {
    if (auto r = authenticate(api, req, ctx, who, ApiFamily::native))
        return r;
    if (who.anonymous())
        return error_response(req, http::status::unauthorized, "unauthorized",
                              "authentication is needed");
    if (!who.is_admin())
        return error_response(req, http::status::forbidden, "forbidden", "admin role required");
    return std::nullopt;
}

std::optional<Response> admin_request(ApiContext& api, const Request& req, RequestContext& ctx,
                                      node::Principal& who, json::value& body) {
    if (auto r = require_admin(api, req, ctx, who))
        return r;
    auto parsed = object_body(req);
    if (!parsed.ok())
        return std::move(parsed.refusal);
    body = std::move(parsed.value);
    return std::nullopt;
}

ObjectBody object_body(const Request& req) {
    auto body = parse_json_body(req.body());
    if (body && body->is_object())
        return {std::move(*body), {}};
    return {json::value{},
            error_response(req, http::status::bad_request, "invalid_json",
                           body ? "body must be a JSON object" : body.error().message)};
}

Response redirect_to(const Request& req, std::string_view location) {
    Response r{http::status::found, req.version()};
    r.set(http::field::location, location);
    r.set(http::field::content_type, "text/plain; charset=utf-8");
    r.keep_alive(req.keep_alive());
    r.body() = "see " + std::string(location) + "\n";
    r.prepare_payload();
    return r;
}

void submit_and_respond(ApiContext& api, registry::WriteOp op, const std::string& account,
                        std::function<Response(const registry::OpResult&)> respond,
                        Responder responder) {
    node::submit_one(api.registry, std::move(op), account,
                     [respond = std::move(respond), responder](const registry::OpResult& r) {
                         responder.send(respond(r));
                     });
}

http::status native_status(node::Outcome outcome) noexcept {
    using S = http::status;
    // Indexed by node::Outcome: ok, created, replaced, unchanged, unauthorized, forbidden,
    // not_found, conflict, invalid, in_use, routed_elsewhere, throttled, unavailable,
    // storage_full, internal.
    // clang-format off
    static constexpr std::array<S, 15> kStatus{
        S::ok, S::created, S::ok, S::ok, S::unauthorized, S::forbidden, S::not_found, S::conflict,
        S::bad_request, S::conflict, S::conflict, S::too_many_requests, S::service_unavailable,
        S::insufficient_storage, S::internal_server_error};
    // clang-format on
    static_assert(kStatus.size() == static_cast<std::size_t>(node::Outcome::internal) + 1);
    const auto i = static_cast<std::size_t>(outcome);
    return i < kStatus.size() ? kStatus[i] : S::internal_server_error;
}

Response native_error(const Request& req, registry::Errc code, std::string_view message) {
    return error_response(req, native_status(node::outcome_of(code)), registry::errc_name(code),
                          message);
}

Response native_refusal(const Request& req, const node::Refusal& refusal) {
    return error_response(req, native_status(refusal.outcome), refusal.code(), refusal.message);
}

} // namespace idnode::resolver::api
