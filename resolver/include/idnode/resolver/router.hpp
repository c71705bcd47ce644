// Method + path-pattern routing onto handlers (see http.hpp for the handler contract).
//
// Pattern syntax: '/'-separated segments; a segment is a literal ("api"), a parameter "{name}"
// matching one non-empty segment, or, as the last segment only, "{name...}" matching the
// non-empty rest of the path including '/' (for handles: "/api/handles/{handle...}").
// Literal segments compare byte-for-byte with the raw (still percent-encoded) path.
//
// Selection: among the patterns matching a path, the most specific wins (compared segment by
// segment: literal > {param} > {rest...}), so "/api/prefixes" beats "/{handle...}".
// - No pattern matches the path: 404 `Refusal::unknown_route`, in the body shape of the path's
//   API family (http.hpp; Handle paths: {"responseCode":4,"message":"unknown route"};
//   docs/api.md#error-bodies).
// - Patterns match but none for the method: 405 `Refusal::method_not_allowed` with an Allow header.
// - HEAD falls back to the GET route when no HEAD route exists (the server drops the body).
//
// Thread safety: register everything before the server starts; afterwards `dispatch` is const
// and safe to call from many threads at once. Registration errors (malformed pattern, the same
// method+pattern twice) throw std::invalid_argument: they are programming errors.
#pragma once

#include "idnode/resolver/http.hpp"
#include "idnode/resolver/streaming.hpp"

#include <string>
#include <variant>
#include <vector>

namespace idnode::resolver {

/// What a route declares at registration besides its handler.
struct RouteOptions {
    /// The largest request body the route accepts when that is more than limits.max_body_bytes
    /// (its documented maximum payload, e.g. 2000 records); 0 = the server-wide limit. A bound
    /// below limits.max_body_bytes has no effect: routes only ever widen the limit.
    std::uint64_t max_body_bytes = 0;
};

class Router {
public:
    void add(http::verb method, std::string pattern, Handler handler, RouteOptions options = {});
    void add_async(http::verb method, std::string pattern, AsyncHandler handler,
                   RouteOptions options = {});
    /// A route whose body is streamed (see streaming.hpp). Reached through `as_stream_dispatch`;
    /// `dispatch` answers such a route with 500 (a server without streaming support).
    void add_streaming(http::verb method, std::string pattern, StreamHandler handler);

    /// Routes one request. Sets `context().route` and `context().params` before calling the
    /// handler; always results in exactly one `responder.send`.
    void dispatch(Request&& request, Responder responder) const;

    /// A `Dispatch` bound to this router; the router must outlive every use of it.
    Dispatch as_dispatch() const;

    /// The streaming handler for a request header (setting context.route and params), or
    /// nullptr when the request is not for a streaming route (it is then read whole and
    /// dispatched as usual, which also produces the 404/405 answers).
    const StreamHandler* find_streaming(const Request& header, RequestContext& context) const;
    /// A `StreamDispatch` bound to this router; the router must outlive every use of it.
    StreamDispatch as_stream_dispatch() const;

    /// The body bound declared by the route a request header selects ({0, ""} when the route
    /// declares none or no route matches: the server-wide limit applies).
    BodyLimit body_limit(const Request& header) const;
    /// A `BodyLimitLookup` bound to this router; the router must outlive every use of it.
    BodyLimitLookup as_body_limit_lookup() const;

    /// One registered route as it was registered (the HEAD fallback to GET is not a route).
    struct RouteInfo {
        http::verb method;
        std::string pattern;
        friend bool operator==(const RouteInfo&, const RouteInfo&) = default;
    };
    /// Every registered route in registration order: lets a test hold the routes against the
    /// API description (docs/openapi.json).
    std::vector<RouteInfo> routes() const;

private:
    enum class SegmentKind { literal = 0, param = 1, rest = 2 };
    struct Segment {
        SegmentKind kind;
        std::string text; // literal text or parameter name
    };
    struct Route {
        http::verb method;
        std::string pattern;
        std::vector<Segment> segments;
        std::variant<Handler, AsyncHandler, StreamHandler> handler;
        RouteOptions options;
    };

    void add_route(http::verb method, std::string pattern,
                   std::variant<Handler, AsyncHandler, StreamHandler> handler,
                   RouteOptions options);
    /// The most specific route for exactly this method and path, or nullptr.
    const Route* find(http::verb method, std::string_view path) const;
    static std::vector<Segment> compile(const std::string& pattern);
    static bool match(const Route& route, std::string_view path,
                      std::vector<std::pair<std::string, std::string>>* params);
    static bool more_specific(const Route& a, const Route& b);

    std::vector<Route> routes_;
};

} // namespace idnode::resolver
