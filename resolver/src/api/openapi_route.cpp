#include "idnode/resolver/openapi.hpp"

namespace idnode::resolver {

namespace generated {
extern const std::string_view kOpenApiJson; // openapi_document.cpp, generated at build time
}

std::string_view openapi_document() noexcept {
    return generated::kOpenApiJson;
}

void register_openapi_route(Router& router) {
    router.add(http::verb::get, "/api/openapi.json", [](const Request& req, RequestContext&) {
        Response r = json_response(req, http::status::ok, std::string(openapi_document()));
        // Public: the same for every caller (a "public" Cache-Control also keeps the server
        // from adding Vary: Authorization).
        r.set(http::field::cache_control, "public, max-age=3600");
        return r;
    });
}

} // namespace idnode::resolver
