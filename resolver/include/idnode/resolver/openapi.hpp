// The OpenAPI 3.1 description of the HTTPS API (docs/openapi.json), embedded in the binary at
// build time (resolver/cmake/embed_text.cmake) and served at GET /api/openapi.json.
//
// docs/openapi.json is the source of truth; a unit test holds its paths and operations against
// the routes the node's router really has, and an integration test validates it as served by a
// live node and checks the node's answers against its response schemas.
#pragma once

#include "idnode/resolver/router.hpp"

#include <string_view>

namespace idnode::resolver {

/// The document, byte for byte docs/openapi.json at build time.
std::string_view openapi_document() noexcept;

/// Registers GET /api/openapi.json: public, application/json, cacheable (the document only
/// changes with the binary).
void register_openapi_route(Router& router);

} // namespace idnode::resolver
