// docs/openapi.json against the routes the node really registers: no route missing from the
// document, no operation in it that the router lacks. The router is built exactly as idnode
// builds it (resolver/app/idnode_main.cpp: a NodeApi over a registry, then register_routes).
#include "idnode/resolver/node_api.hpp"
#include "idnode/resolver/openapi.hpp"
#include "idnode/resolver/router.hpp"
#include "idnode/resolver/version.hpp"
#include "store_helpers.hpp"
#include "temp_dir.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <utility>

using namespace idnode::resolver;
namespace json = boost::json;

namespace {

using Operation = std::pair<std::string, std::string>; // (lower-case method, document path)

/// A router pattern in the document's form. The router's rest-of-path parameter "{handle...}"
/// (which may contain '/') is written "{handle}" in OpenAPI, which has no such syntax; its
/// parameter description says that it spans the rest of the path. Everything else is the same.
std::string document_path(std::string pattern) {
    for (auto pos = pattern.find("...}"); pos != std::string::npos; pos = pattern.find("...}"))
        pattern.erase(pos, 3);
    return pattern;
}

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

/// Every (method, path) the router has. HEAD is answered through the GET route (router.hpp), so
/// it is no operation of its own.
std::set<Operation> router_operations(const Router& router) {
    std::set<Operation> out;
    for (const auto& route : router.routes())
        out.emplace(lower(http::to_string(route.method)), document_path(route.pattern));
    return out;
}

std::set<Operation> document_operations(const json::value& doc) {
    static const std::set<std::string> kMethods{"get",     "put",  "post",  "delete",
                                                "options", "head", "patch", "trace"};
    std::set<Operation> out;
    for (const auto& [path, item] : doc.at("paths").as_object())
        for (const auto& [key, op] : item.as_object())
            if (kMethods.count(std::string(key)))
                out.emplace(std::string(key), std::string(path));
    return out;
}

std::string describe(const std::set<Operation>& ops) {
    std::string out;
    for (const auto& [method, path] : ops)
        out += "\n  " + method + " " + path;
    return out;
}

/// The node's router, built as idnode builds it.
struct NodeRouter {
    idnode::test::TempDir dir{"idnode-openapi"};
    std::unique_ptr<idnode::registry::Registry> registry =
        idnode::registry::Registry::open(idnode::test::options_in(dir));
    std::unique_ptr<NodeApi> api;
    Router router;
    NodeRouter() {
        NodeApiOptions options;
        options.homed_prefixes = {"88.118"};
        api = std::make_unique<NodeApi>(*registry, options);
        api->register_routes(router);
    }
};

} // namespace

TEST_CASE("docs/openapi.json documents every route of the node and invents none") {
    NodeRouter node;
    const json::value doc = json::parse(openapi_document());
    CHECK(std::string_view(doc.at("openapi").as_string()).substr(0, 4) == "3.1.");
    // The document describes this binary: its version follows the project's.
    CHECK(doc.at("info").at("version").as_string() == version());

    const auto routed = router_operations(node.router);
    const auto documented = document_operations(doc);
    REQUIRE(routed.size() > 40); // the whole API, not a stub

    std::set<Operation> missing, invented;
    std::set_difference(routed.begin(), routed.end(), documented.begin(), documented.end(),
                        std::inserter(missing, missing.end()));
    std::set_difference(documented.begin(), documented.end(), routed.begin(), routed.end(),
                        std::inserter(invented, invented.end()));
    CHECK_MESSAGE(missing.empty(), "routes missing from docs/openapi.json:" << describe(missing));
    CHECK_MESSAGE(invented.empty(),
                  "operations in docs/openapi.json that no route serves:" << describe(invented));
}

TEST_CASE("the route check maps router patterns onto document paths") {
    CHECK(document_path("/api/handles/{handle...}") == "/api/handles/{handle}");
    CHECK(document_path("/{handle...}") == "/{handle}");
    CHECK(document_path("/api/v1/templates/{prefix}/{version}") ==
          "/api/v1/templates/{prefix}/{version}");
}

TEST_CASE("GET /api/openapi.json serves the embedded document, public and cacheable") {
    // The build embeds docs/openapi.json byte for byte.
    std::ifstream file(std::string(IDNODE_SOURCE_DIR) + "/docs/openapi.json", std::ios::binary);
    REQUIRE(file);
    const std::string source((std::istreambuf_iterator<char>(file)),
                             std::istreambuf_iterator<char>());
    CHECK(openapi_document() == source);

    NodeRouter node;
    for (const auto method : {http::verb::get, http::verb::head}) {
        std::optional<Response> out;
        Responder responder(RequestContext{},
                            [&](Response&& r, RequestContext&&) { out = std::move(r); });
        node.router.dispatch(Request{method, "/api/openapi.json", 11}, responder);
        REQUIRE(out.has_value());
        CHECK(out->result() == http::status::ok);
        CHECK((*out)[http::field::content_type] == "application/json");
        CHECK((*out)[http::field::cache_control] == "public, max-age=3600");
        CHECK(out->body() == openapi_document());
    }
}
