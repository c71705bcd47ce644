#include "idnode/resolver/router.hpp"

#include <algorithm>
#include <stdexcept>

namespace idnode::resolver {

void Router::add(http::verb method, std::string pattern, Handler handler, RouteOptions options) {
    add_route(method, std::move(pattern), std::move(handler), options);
}

void Router::add_async(http::verb method, std::string pattern, AsyncHandler handler,
                       RouteOptions options) {
    add_route(method, std::move(pattern), std::move(handler), options);
}

void Router::add_streaming(http::verb method, std::string pattern, StreamHandler handler) {
    add_route(method, std::move(pattern), std::move(handler), RouteOptions{});
}

void Router::add_route(http::verb method, std::string pattern,
                       std::variant<Handler, AsyncHandler, StreamHandler> handler,
                       RouteOptions options) {
    for (const auto& r : routes_)
        if (r.method == method && r.pattern == pattern)
            throw std::invalid_argument(
                "route registered twice: " + std::string(http::to_string(method)) + " " + pattern);
    auto segments = compile(pattern);
    routes_.push_back(
        Route{method, std::move(pattern), std::move(segments), std::move(handler), options});
}

std::vector<Router::Segment> Router::compile(const std::string& pattern) {
    if (pattern.empty() || pattern.front() != '/')
        throw std::invalid_argument("route pattern must start with '/': " + pattern);
    std::vector<Segment> out;
    if (pattern == "/")
        return out;
    std::string_view rest = std::string_view(pattern).substr(1);
    while (true) {
        const auto slash = rest.find('/');
        const std::string_view seg = rest.substr(0, slash);
        if (!out.empty() && out.back().kind == SegmentKind::rest)
            throw std::invalid_argument("{name...} must be the last segment: " + pattern);
        if (seg.empty())
            throw std::invalid_argument("empty segment in route pattern: " + pattern);
        if (seg.front() == '{') {
            if (seg.back() != '}' || seg.size() < 3)
                throw std::invalid_argument("malformed parameter in route pattern: " + pattern);
            std::string_view name = seg.substr(1, seg.size() - 2);
            SegmentKind kind = SegmentKind::param;
            if (name.size() > 3 && name.substr(name.size() - 3) == "...") {
                name.remove_suffix(3);
                kind = SegmentKind::rest;
            }
            out.push_back({kind, std::string(name)});
        } else {
            if (seg.find_first_of("{}") != std::string_view::npos)
                throw std::invalid_argument("braces inside a literal segment: " + pattern);
            out.push_back({SegmentKind::literal, std::string(seg)});
        }
        if (slash == std::string_view::npos)
            break;
        rest = rest.substr(slash + 1);
    }
    return out;
}

bool Router::match(const Route& route, std::string_view path,
                   std::vector<std::pair<std::string, std::string>>* params) {
    if (path.empty() || path.front() != '/')
        return false;
    std::string_view rest = path.substr(1);
    if (route.segments.empty())
        return rest.empty();
    for (std::size_t i = 0; i < route.segments.size(); ++i) {
        const Segment& seg = route.segments[i];
        if (seg.kind == SegmentKind::rest) {
            if (rest.empty())
                return false;
            if (params)
                params->emplace_back(seg.text, std::string(rest));
            return true;
        }
        const auto slash = rest.find('/');
        const std::string_view piece = rest.substr(0, slash);
        const bool last = i + 1 == route.segments.size();
        if (piece.empty())
            return false;
        if (seg.kind == SegmentKind::literal && piece != seg.text)
            return false;
        if (seg.kind == SegmentKind::param && params)
            params->emplace_back(seg.text, std::string(piece));
        if (last)
            return slash == std::string_view::npos;
        if (slash == std::string_view::npos)
            return false;
        rest = rest.substr(slash + 1);
    }
    return false;
}

bool Router::more_specific(const Route& a, const Route& b) {
    const std::size_t n = std::min(a.segments.size(), b.segments.size());
    for (std::size_t i = 0; i < n; ++i)
        if (a.segments[i].kind != b.segments[i].kind)
            return a.segments[i].kind < b.segments[i].kind;
    return a.segments.size() > b.segments.size();
}

void Router::dispatch(Request&& request, Responder responder) const {
    const std::string_view path = target_path(request.target());
    const http::verb method = request.method();

    const Route* best = nullptr;
    const Route* best_get = nullptr; // fallback for HEAD
    std::vector<http::verb> allowed;
    for (const auto& route : routes_) {
        if (!match(route, path, nullptr))
            continue;
        if (std::find(allowed.begin(), allowed.end(), route.method) == allowed.end())
            allowed.push_back(route.method);
        if (route.method == method && (best == nullptr || more_specific(route, *best)))
            best = &route;
        if (route.method == http::verb::get &&
            (best_get == nullptr || more_specific(route, *best_get)))
            best_get = &route;
    }
    if (best == nullptr && method == http::verb::head)
        best = best_get;

    RequestContext& context = responder.context();
    context.family = api_family(request.target());
    if (best == nullptr) {
        if (allowed.empty()) {
            responder.send(refusal_response(request, Refusal::unknown_route, "unknown route"));
            return;
        }
        std::string allow;
        for (const auto verb : allowed) {
            allow += allow.empty() ? "" : ", ";
            allow += http::to_string(verb);
        }
        if (std::find(allowed.begin(), allowed.end(), http::verb::get) != allowed.end() &&
            std::find(allowed.begin(), allowed.end(), http::verb::head) == allowed.end())
            allow += ", HEAD";
        Response response = refusal_response(request, Refusal::method_not_allowed,
                                             "method " + std::string(request.method_string()) +
                                                 " is not allowed here (allowed: " + allow + ")");
        response.set(http::field::allow, allow);
        responder.send(std::move(response));
        return;
    }

    context.route = best->pattern;
    context.params.clear();
    match(*best, path, &context.params);
    if (const auto* sync = std::get_if<Handler>(&best->handler)) {
        Response response = (*sync)(request, context);
        responder.send(std::move(response));
    } else if (const auto* async = std::get_if<AsyncHandler>(&best->handler)) {
        (*async)(std::move(request), std::move(responder));
    } else {
        responder.send(refusal_response(request, Refusal::internal,
                                        "this listener cannot stream request bodies"));
    }
}

const Router::Route* Router::find(http::verb method, std::string_view path) const {
    const Route* best = nullptr;
    for (const auto& route : routes_) {
        if (route.method == method && match(route, path, nullptr) &&
            (best == nullptr || more_specific(route, *best)))
            best = &route;
    }
    return best;
}

BodyLimit Router::body_limit(const Request& header) const {
    const Route* route = find(header.method(), target_path(header.target()));
    if (route == nullptr || route->options.max_body_bytes == 0)
        return {};
    return {route->options.max_body_bytes, route->pattern};
}

std::vector<Router::RouteInfo> Router::routes() const {
    std::vector<RouteInfo> out;
    out.reserve(routes_.size());
    for (const auto& r : routes_)
        out.push_back({r.method, r.pattern});
    return out;
}

BodyLimitLookup Router::as_body_limit_lookup() const {
    return [this](const Request& header) { return body_limit(header); };
}

const StreamHandler* Router::find_streaming(const Request& header, RequestContext& context) const {
    const std::string_view path = target_path(header.target());
    const Route* best = find(header.method(), path);
    const auto* handler = best ? std::get_if<StreamHandler>(&best->handler) : nullptr;
    if (handler == nullptr)
        return nullptr;
    context.route = best->pattern;
    context.params.clear();
    match(*best, path, &context.params);
    return handler;
}

StreamDispatch Router::as_stream_dispatch() const {
    return [this](const Request& header, RequestContext& context) {
        return find_streaming(header, context);
    };
}

Dispatch Router::as_dispatch() const {
    return [this](Request&& request, Responder responder) {
        dispatch(std::move(request), std::move(responder));
    };
}

} // namespace idnode::resolver
