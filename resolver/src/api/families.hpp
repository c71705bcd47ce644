// The route families of the HTTPS API, one room each (docs/architecture.md#resolver):
//   handle_rest/  the Handle REST API and the proxy paths (HANDLE.NET's REST shape)
//   native/       /api/v1: bulk, batch resolve, stats, prefixes, accounts and keys
//   snms/         the SNMS-compatible API and the template routes
//   html/         pages for people and QR images
// NodeApi builds each family over one ApiContext and registers its routes on the router.
// Internal to the resolver.
#pragma once

#include "api/common.hpp"
#include "idnode/resolver/router.hpp"

#include <memory>

namespace idnode::resolver::html {
class PageRoutes;
}

namespace idnode::resolver::api {

/// A family of routes over the node's services (`api_`, which must outlive the family).
class RouteFamily {
public:
    explicit RouteFamily(ApiContext& api) : api_(api) {}
    virtual ~RouteFamily() = default;
    RouteFamily(const RouteFamily&) = delete;
    RouteFamily& operator=(const RouteFamily&) = delete;
    /// Registers the family's routes; the family must outlive the router's use.
    virtual void register_routes(Router& router) = 0;

protected:
    ApiContext& api_;
};

namespace handle_rest {
/// `pages` answers browsers (Accept: text/html) on the Handle REST and proxy paths.
std::unique_ptr<RouteFamily> make_routes(ApiContext& api, resolver::html::PageRoutes& pages);
} // namespace handle_rest

namespace native {
std::unique_ptr<RouteFamily> make_record_routes(ApiContext& api);
std::unique_ptr<RouteFamily> make_prefix_routes(ApiContext& api);
/// /api/v1/prefixes/{prefix}/route (prefix_route_routes.cpp).
std::unique_ptr<RouteFamily> make_prefix_route_routes(ApiContext& api);
std::unique_ptr<RouteFamily> make_account_routes(ApiContext& api);
} // namespace native

namespace snms {
struct SnmsOptions;
std::unique_ptr<RouteFamily> make_identity_routes(ApiContext& api, SnmsOptions options);
std::unique_ptr<RouteFamily> make_template_routes(ApiContext& api, SnmsOptions options);
} // namespace snms

} // namespace idnode::resolver::api
