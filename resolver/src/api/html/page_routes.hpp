// Pages for people: the resolution page of an identifier (GET /{handle} and GET
// /api/handles/{handle} from a browser), the search page (GET /), and QR images of resolution
// URLs (GET /api/v1/qr/{handle}). Rendering is html_pages.hpp; who sees what is node/policy.hpp.
// See docs/api.md#pages-and-qr-codes. Internal to the resolver.
//
// The proxy route stays anonymous and keeps its 302 to the URL value; the API route honours
// credentials (private values are then shown, marked). Filters (type=, index=) are a JSON
// feature. QR images encode {node.public_base_url}/{handle}, never a URL built from the request's
// Host header: the image is served cacheable, so a forged Host would poison caches and labels.
#pragma once

#include "api/common.hpp"
#include "api/families.hpp"
#include "idnode/resolver/router.hpp"

#include <string>

namespace idnode::resolver::html {

class PageRoutes final : public api::RouteFamily {
public:
    /// `api` must outlive the routes.
    explicit PageRoutes(api::ApiContext& api) : RouteFamily(api) {}

    /// GET / and GET /api/v1/qr/{handle...}.
    void register_routes(Router& router) override;

    /// The page of the {handle...} parameter, for the Handle REST routes when a browser asks.
    Response html_resolution(const Request& req, RequestContext& ctx, bool proxy_route);

private:
    enum class PageRoute { proxy, api, search };

    Response html_page(const Request& req, RequestContext& ctx, const std::string& text,
                       PageRoute route);
    Response search_page(const Request& req, RequestContext& ctx);
    Response qr_code(const Request& req, RequestContext& ctx);
};

} // namespace idnode::resolver::html
