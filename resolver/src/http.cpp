#include "idnode/resolver/http.hpp"

#include "idnode/codec/hex.hpp"

#include <atomic>
#include <cstdio>
#include <iterator>
#include <string>

namespace idnode::resolver {

std::string_view RequestContext::param(std::string_view name) const noexcept {
    for (const auto& [key, value] : params)
        if (key == name)
            return value;
    return {};
}

// ---- Responder ----------------------------------------------------------------------------------

struct Responder::State {
    RequestContext context;
    Sink sink;
    std::atomic<bool> sent{false};

    State(RequestContext c, Sink s) : context(std::move(c)), sink(std::move(s)) {}
    State(const State&) = delete;
    State& operator=(const State&) = delete;

    // A handler that forgot to answer must not stall the connection's pipeline forever.
    ~State() {
        if (sent.exchange(true))
            return;
        const ApiFamily family = context.family;
        sink(refusal_response(family, 11, true, Refusal::internal,
                              "the request handler produced no response"),
             std::move(context));
    }
};

Responder::Responder(RequestContext context, Sink sink)
    : state_(std::make_shared<State>(std::move(context), std::move(sink))) {}

RequestContext& Responder::context() const noexcept {
    return state_->context;
}

void Responder::send(Response response) const {
    if (state_->sent.exchange(true))
        return;
    state_->sink(std::move(response), std::move(state_->context));
}

// ---- JSON helpers -------------------------------------------------------------------------------

std::string json_quote(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 2);
    out.push_back('"');
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                char escaped[8];
                std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
                out += escaped;
            } else {
                out.push_back(ch);
            }
        }
    }
    out.push_back('"');
    return out;
}

std::string error_body(std::string_view code, std::string_view message) {
    return "{\"error\":{\"code\":" + json_quote(code) + ",\"message\":" + json_quote(message) +
           "}}";
}

Response json_response(const Request& request, http::status status, std::string body) {
    Response response{status, request.version()};
    response.set(http::field::content_type, "application/json");
    response.keep_alive(request.keep_alive());
    response.body() = std::move(body);
    response.prepare_payload();
    return response;
}

Response error_response(const Request& request, http::status status, std::string_view code,
                        std::string_view message) {
    return json_response(request, status, error_body(code, message));
}

// ---- server-level refusals: the one table ------------------------------------------------------

namespace {

// Handle RCs: 2 error, 3 server too busy, 4 protocol error (unknown route → RC 4; RC 3 ↔ 503).
// SNMS: -2 business error with a readable message, -4 internal error. The table is the one in
// docs/api.md#error-bodies.
constexpr RefusalRow kRefusals[] = {
    // bad_request
    {http::status::bad_request, "bad_request", 4, -2, "请求格式错误"},
    // unknown_route
    {http::status::not_found, "unknown_route", 4, -2, "接口不存在"},
    // method_not_allowed
    {http::status::method_not_allowed, "method_not_allowed", 4, -2, "请求方法不允许"},
    // body_too_large
    {http::status::payload_too_large, "body_too_large", 4, -2, "请求体过大"},
    // header_too_large
    {http::status::request_header_fields_too_large, "header_too_large", 4, -2, "请求头过大"},
    // rate_limited
    {http::status::too_many_requests, "rate_limited", 3, -2, "请求过于频繁，请稍后重试"},
    // unavailable
    {http::status::service_unavailable, "unavailable", 3, -4, "服务繁忙，请稍后重试"},
    // internal
    {http::status::internal_server_error, "internal", 2, -4, "内部错误"},
};
static_assert(std::size(kRefusals) == static_cast<std::size_t>(Refusal::internal) + 1);

bool path_starts_with(std::string_view path, std::string_view base) noexcept {
    // "/api/v1" matches "/api/v1" and "/api/v1/…", not "/api/v1x".
    return path.substr(0, base.size()) == base &&
           (path.size() == base.size() || path[base.size()] == '/');
}

} // namespace

ApiFamily api_family(std::string_view target) noexcept {
    const std::string_view path = target_path(target);
    if (path.empty() || path.front() != '/') // nothing parsed (or an absolute-form target)
        return ApiFamily::native;
    if (path_starts_with(path, "/api/v1"))
        return ApiFamily::native;
    if (path_starts_with(path, "/identity") || path_starts_with(path, "/identityv2") ||
        path_starts_with(path, "/snms"))
        return ApiFamily::snms;
    return ApiFamily::handle;
}

const RefusalRow& refusal_row(Refusal refusal) noexcept {
    return kRefusals[static_cast<std::size_t>(refusal)];
}

std::string refusal_body(ApiFamily family, Refusal refusal, std::string_view message) {
    const RefusalRow& row = refusal_row(refusal);
    switch (family) {
    case ApiFamily::handle:
        return "{\"responseCode\":" + std::to_string(row.handle_rc) +
               ",\"message\":" + json_quote(message) + "}";
    case ApiFamily::snms:
        return "{\"status\":" + std::to_string(row.snms_status) +
               ",\"message\":" + json_quote(std::string(row.zh) + "：" + std::string(message)) +
               ",\"data\":null}";
    case ApiFamily::native:
        break;
    }
    return error_body(row.code, message);
}

Response refusal_response(ApiFamily family, unsigned version, bool keep_alive, Refusal refusal,
                          std::string_view message) {
    Response response{refusal_row(refusal).status, version};
    response.set(http::field::content_type, "application/json");
    response.keep_alive(keep_alive);
    response.body() = refusal_body(family, refusal, message);
    response.prepare_payload();
    return response;
}

Response refusal_response(const Request& request, Refusal refusal, std::string_view message) {
    return refusal_response(api_family(request.target()), request.version(), request.keep_alive(),
                            refusal, message);
}

// ---- URL helpers --------------------------------------------------------------------------------

namespace {

std::optional<std::string> decode(std::string_view text, bool plus_is_space) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '%') {
            if (i + 2 >= text.size()) // fewer than two characters follow
                return std::nullopt;
            const int hi = codec::hex_digit(text[i + 1]);
            const int lo = codec::hex_digit(text[i + 2]);
            if (hi < 0 || lo < 0)
                return std::nullopt;
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
    return out;
}

} // namespace

std::optional<std::string> percent_decode(std::string_view text) {
    return decode(text, false);
}

std::string_view target_path(std::string_view target) noexcept {
    const auto query = target.find('?');
    return query == std::string_view::npos ? target : target.substr(0, query);
}

std::optional<std::vector<std::pair<std::string, std::string>>>
parse_query(std::string_view target) {
    std::vector<std::pair<std::string, std::string>> out;
    const auto start = target.find('?');
    if (start == std::string_view::npos)
        return out;
    std::string_view rest = target.substr(start + 1);
    while (!rest.empty()) {
        const auto amp = rest.find('&');
        const std::string_view pair = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
        if (pair.empty())
            continue;
        const auto eq = pair.find('=');
        auto name = decode(pair.substr(0, eq), true);
        auto value =
            decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1), true);
        if (!name || !value)
            return std::nullopt;
        out.emplace_back(std::move(*name), std::move(*value));
    }
    return out;
}

} // namespace idnode::resolver
