#include "api/html/page_routes.hpp"

#include "api/html/html_pages.hpp"
#include "idnode/node/policy.hpp"
#include "idnode/resolver/qr.hpp"

namespace idnode::resolver::html {
using namespace registry;
using node::Principal;

/// GET /{handle} (proxy) and GET /api/handles/{handle} for browsers. The proxy route stays
/// anonymous and keeps its 302 to the URL value; the API route honours credentials (private
/// values are then shown, marked). Filters (type=, index=) are a JSON feature.

Response PageRoutes::html_resolution(const Request& req, RequestContext& ctx, bool proxy_route) {
    const std::string_view raw = ctx.param("handle");
    auto decoded = percent_decode(raw);
    if (!decoded) {
        return page_response(
            req, http::status::bad_request,
            render_problem_page(Problem::invalid, raw, "malformed percent-encoding"));
    }
    return html_page(req, ctx, *decoded, proxy_route ? PageRoute::proxy : PageRoute::api);
}

Response PageRoutes::html_page(const Request& req, RequestContext& ctx, const std::string& text,
                               PageRoute route) {
    const bool proxy_route = route != PageRoute::api;
    auto problem = [&](Problem p, std::string_view handle, std::string_view detail) {
        if (route == PageRoute::proxy && p == Problem::no_page)
            ctx.route = "unmatched";
        return page_response(req, problem_status(p), render_problem_page(p, handle, detail));
    };
    auto h = parse_handle(text, api_.options.handle_limits);
    if (!h) { // on the catch-all route a path without '/' is no identifier at all
        return problem(route == PageRoute::proxy && text.find('/') == std::string::npos
                           ? Problem::no_page
                           : Problem::invalid,
                       text, h.error().message);
    }
    if (!api_.homing.homes(h->prefix_key())) {
        return problem(Problem::not_homed, h->spelling(),
                       "prefix " + std::string(h->prefix()) + " is not homed on this node");
    }
    Principal who;
    if (!proxy_route) {
        if (auto r = api::authenticate(api_, req, ctx, who, ApiFamily::handle))
            return *r;
    }
    auto snapshot = api_.registry.snapshot();
    const bool include_private =
        !proxy_route && node::may_read_private(snapshot, who, h->prefix_key());
    auto page = build_handle_page(snapshot, *h, include_private);
    api_.resolutions.count(*h, static_cast<bool>(page));
    if (!page) {
        if (page.code() == Errc::not_found)
            return problem(Problem::not_found, h->spelling(), {});
        return api::native_error(req, page.code(), page.error().message);
    }
    auto query = parse_query(req.target());
    if (route == PageRoute::proxy && !page->redirect_url.empty() &&
        !(query && api::Query{*query}.has("noredirect"))) {
        return api::redirect_to(req, page->redirect_url);
    }
    return page_response(req, http::status::ok, render_handle_page(*page), include_private);
}

/// GET / — the search page; GET /?handle=X shows X's page directly (no redirect to its URL
/// value: someone who searched wants to see the record).
Response PageRoutes::search_page(const Request& req, RequestContext& ctx) {
    auto query = parse_query(req.target());
    if (!query) {
        return page_response(req, http::status::bad_request,
                             render_search_page({}, "查询参数无效 Malformed query"));
    }
    const api::Query q{std::move(*query)};
    std::string wanted = q.get("handle");
    const auto first = wanted.find_first_not_of(" \t\r\n");
    wanted.erase(0, first == std::string::npos ? wanted.size() : first);
    wanted.erase(wanted.find_last_not_of(" \t\r\n") + 1);
    if (wanted.empty()) {
        return page_response(
            req, q.has("handle") ? http::status::bad_request : http::status::ok,
            render_search_page({}, q.has("handle") ? "请输入标识 Enter an identifier" : ""));
    }
    return html_page(req, ctx, wanted, PageRoute::search);
}

/// GET /api/v1/qr/{handle}?format=svg|png&size=N — the handle's resolution URL on this node
/// (options.public_base_url: node.public_base_url, or derived from https.listen at startup)
/// as a QR code. Never from the request's Host header: the image is served cacheable, so a
/// forged Host would poison caches and printed labels. The identifier must be registered:
/// labels are printed for identifiers that resolve.
Response PageRoutes::qr_code(const Request& req, RequestContext& ctx) {
    auto query = parse_query(req.target());
    if (!query)
        return api::native_error(req, Errc::invalid_value, "malformed query string");
    const api::Query q{std::move(*query)};
    const std::string format = q.get("format", "svg");
    if (format != "svg" && format != "png")
        return api::native_error(req, Errc::invalid_value, "format must be svg or png");
    std::uint64_t size = qr::kDefaultImagePixels;
    if (q.has("size") && (!api::parse_uint(q.get("size"), size) || size < qr::kMinImagePixels ||
                          size > qr::kMaxImagePixels)) {
        return api::native_error(req, Errc::invalid_value,
                                 "size must be an integer from " +
                                     std::to_string(qr::kMinImagePixels) + " to " +
                                     std::to_string(qr::kMaxImagePixels) + " (pixels)");
    }
    auto decoded = percent_decode(ctx.param("handle"));
    if (!decoded)
        return api::native_error(req, Errc::invalid_handle, "malformed percent-encoding");
    auto h = parse_handle(*decoded, api_.options.handle_limits);
    if (!h)
        return api::native_error(req, Errc::invalid_handle, h.error().message);
    if (!api_.homing.homes(h->prefix_key()))
        return api::native_error(req, Errc::not_homed,
                                 "prefix " + std::string(h->prefix()) +
                                     " is not homed on this node");
    if (!api_.registry.snapshot().contains(*h))
        return api::native_error(req, Errc::not_found,
                                 "identifier " + h->spelling() + " is not registered");
    if (api_.options.public_base_url.empty())
        return api::native_error(req, Errc::unavailable,
                                 "this node has no public base URL (node.public_base_url)");
    auto matrix = qr::encode(qr::resolution_url(api_.options.public_base_url, h->spelling()));
    if (!matrix)
        return api::native_error(req, matrix.code(), matrix.error().message);
    const int px = static_cast<int>(size);
    auto image = format == "png" ? qr::to_png(*matrix, px) : qr::to_svg(*matrix, px);
    if (!image)
        return api::native_error(req, image.code(), image.error().message);
    Response r{http::status::ok, req.version()};
    r.set(http::field::content_type, format == "png" ? "image/png" : "image/svg+xml");
    r.set("Content-Security-Policy", kContentSecurityPolicy);
    r.set("X-Content-Type-Options", "nosniff");
    r.set(http::field::cache_control, "public, max-age=3600");
    r.keep_alive(req.keep_alive());
    r.body() = std::move(*image);
    r.prepare_payload();
    return r;
}

void PageRoutes::register_routes(Router& router) {
    using V = http::verb;
    router.add(V::get, "/", api::bind_sync(this, &PageRoutes::search_page));
    router.add(V::get, "/api/v1/qr/{handle...}", api::bind_sync(this, &PageRoutes::qr_code));
}

} // namespace idnode::resolver::html
