// Method + path-pattern routing onto handlers (see http.hpp for the handler contract).
//
// Pattern syntax: '/'-separated segments; a segment is a literal ("api"), a parameter "{name}"
// matching one non-empty segment, or, as the last segment only, "{name...}" matching the
// non-empty rest of the path including '/' (for handles: "/api/handles/{handle...}").
// Literal segments compare byte-for-byte with the raw (still percent-encoded) path.
//
// Selection: among the patterns matching a path, the most specific wins (compared segment by
// segment: literal > {param} > {rest...}), so "/api/prefixes" beats "/{handle...}".
// - No pattern matches the path: 404 {"responseCode":4,"message":"unknown route"} (DESIGN §5.1).
// - Patterns match but none for the method: 405 with an Allow header and the same JSON shape.
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

class Router {
public:
    void add(http::verb method, std::string pattern, Handler handler);
    void add_async(http::verb method, std::string pattern, AsyncHandler handler);
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
    };

    void add_route(http::verb method, std::string pattern,
                   std::variant<Handler, AsyncHandler, StreamHandler> handler);
    static std::vector<Segment> compile(const std::string& pattern);
    static bool match(const Route& route, std::string_view path,
                      std::vector<std::pair<std::string, std::string>>* params);
    static bool more_specific(const Route& a, const Route& b);

    std::vector<Route> routes_;
};

} // namespace idnode::resolver
