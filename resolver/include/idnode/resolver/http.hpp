// The seam between the network server and the API code: request handlers never see a socket.
//
// A handler receives a fully read `Request` (header + body, already checked against the size
// limits) and a `RequestContext`, and produces a `Response`. The server owns everything else:
// TLS, keep-alive, pipelining order, timeouts, limits, metrics and the access log.
//
// Two handler forms:
// - `Handler` (synchronous): returns the response. Runs on an I/O thread, so it must not block
//   for long (LMDB reads are fine; waiting for a durable commit is not — use the async form).
// - `AsyncHandler`: receives the request by value and a `Responder`; it may hand the responder to
//   another thread (e.g. the group-commit writer) and call `send` later. Responses are still
//   written in request order.
//
// Header weight: this header includes Beast's message types (no Asio, no OpenSSL).
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace idnode::node {
class RateLimiter;
}

namespace idnode::resolver {

namespace http = boost::beast::http;
using node::RateLimiter;

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

/// Which API a request path belongs to; decides the shape of an error body
/// (docs/api.md#error-bodies): `handle` = {"responseCode","message"} (Handle REST, the proxy
/// paths, anything unknown), `snms` = the SNMS envelope {"status","message","data"} (/identity,
/// /identityv2, /snms), `native` = {"error":{"code","message"}} (/api/v1, and requests whose
/// target could not be parsed at all).
enum class ApiFamily { handle, snms, native };

/// The family of a request target (path with or without the query). Pure, no allocation.
ApiFamily api_family(std::string_view target) noexcept;

/// What the server knows about a request besides its bytes, plus annotations that handlers set
/// for the access log and metrics.
struct RequestContext {
    // --- set by the server -----------------------------------------------------------------
    std::string client_ip;        // textual peer address, e.g. "127.0.0.1"
    bool tls = true;              // false only on the plain-HTTP ops listener
    std::uint64_t request_id = 0; // unique within the process; echoed as X-Request-Id
    std::chrono::steady_clock::time_point received{}; // when the request header was complete
    /// api_family() of the request target, for errors produced without the request at hand.
    ApiFamily family = ApiFamily::native;
    /// The server's per-IP limiter (limits.rate_per_ip; it outlives every request), for handlers
    /// whose request costs more than one token (a batch resolve costs one per handle); the
    /// request's own token is already taken. nullptr = no per-IP limiting.
    RateLimiter* ip_limiter = nullptr;

    // --- set by the router -----------------------------------------------------------------
    /// The matched route pattern ("/api/handles/{handle...}"), "unmatched" for 404/405. Used as
    /// the metrics label and in the access log, so it must have bounded cardinality.
    std::string route = "unmatched";
    /// Path parameters in pattern order, values still percent-encoded exactly as received
    /// (decode once with `percent_decode`).
    std::vector<std::pair<std::string, std::string>> params;

    // --- set by handlers -------------------------------------------------------------------
    /// Authenticated account name for the access log; empty = anonymous.
    std::string account;

    /// The raw value of path parameter `name`, or an empty view if the route has none.
    std::string_view param(std::string_view name) const noexcept;
};

/// Delivers the response of one request to its connection. Copyable handle to shared state;
/// `send` must be called exactly once, from any thread; later calls are ignored. If every copy is
/// destroyed without `send`, the client gets a 500 so that the pipeline never stalls. If the
/// connection is already gone the response is discarded.
class Responder {
public:
    /// Receives the finished response and the context (with its annotations). Called at most once.
    using Sink = std::function<void(Response&&, RequestContext&&)>;

    Responder(RequestContext context, Sink sink);

    /// The request's context; handlers may set `account` before sending.
    RequestContext& context() const noexcept;

    void send(Response response) const;

private:
    struct State;
    std::shared_ptr<State> state_;
};

using Handler = std::function<Response(const Request&, RequestContext&)>;
using AsyncHandler = std::function<void(Request&&, Responder)>;

/// What the server calls for every request that passed the server-level limits. `Router`
/// provides one; tests may pass a lambda.
using Dispatch = std::function<void(Request&&, Responder)>;

// ---- helpers for handlers ---------------------------------------------------------------------

/// A response with `body` as application/json; keep-alive and version follow the request.
Response json_response(const Request& request, http::status status, std::string body);

/// The native error shape {"error":{"code":"<code>","message":"<message>"}}
/// (docs/api.md#error-bodies).
Response error_response(const Request& request, http::status status, std::string_view code,
                        std::string_view message);

/// The same error document without a request (used when no request could be parsed).
std::string error_body(std::string_view code, std::string_view message);

/// Refusals made by the server layer (session limits, router, handler failures) rather than by
/// an API's own logic. Each has one row in the table in http.cpp: its HTTP status, the native
/// error code, the Handle response code and the SNMS envelope status.
enum class Refusal {
    bad_request,        // 400: malformed HTTP (request line, header fields, framing, chunks)
    unknown_route,      // 404: no route matches the path
    method_not_allowed, // 405: the path exists for other methods (an Allow header is added)
    body_too_large,     // 413: limits.max_body_bytes
    header_too_large,   // 431: limits.max_header_bytes
    rate_limited,       // 429: per-IP or per-account rate, failed-login throttling (Retry-After)
    unavailable,        // 503: the server cannot take the request now
    internal,           // 500: a handler threw or produced no response
};

struct RefusalRow {
    http::status status;
    const char* code; // native {"error":{"code"}}
    int handle_rc;    // Handle {"responseCode"}
    int snms_status;  // SNMS {"status"}
    const char* zh;   // SNMS message, before the English detail (SNMS clients show Chinese)
};

/// The table row of `refusal`.
const RefusalRow& refusal_row(Refusal refusal) noexcept;

/// The body of `refusal` in the shape of `family`, with `message`.
std::string refusal_body(ApiFamily family, Refusal refusal, std::string_view message);

/// The response for `refusal` to `request` (status from the table, body in the shape of the
/// request target's family, keep-alive and version following the request).
Response refusal_response(const Request& request, Refusal refusal, std::string_view message);

/// The same for a request no longer at hand (only its family is known).
Response refusal_response(ApiFamily family, unsigned version, bool keep_alive, Refusal refusal,
                          std::string_view message);

/// `text` as a JSON string literal including the quotes; control characters are escaped.
std::string json_quote(std::string_view text);

/// Percent-decodes once. Returns std::nullopt on a malformed escape ("%4", "%zz").
/// '+' is left as is (paths do not use it); see `parse_query` for form-style queries.
std::optional<std::string> percent_decode(std::string_view text);

/// The path of a request target without the query ("/a/b?x=1" -> "/a/b").
std::string_view target_path(std::string_view target) noexcept;

/// Query parameters in order, names and values decoded ('+' means space); repeated names are
/// kept. Returns std::nullopt on a malformed escape.
std::optional<std::vector<std::pair<std::string, std::string>>>
parse_query(std::string_view target);

} // namespace idnode::resolver
