// What every route family of the HTTPS API shares: the node's services (ApiContext, owned by
// NodeApi) and the steps each handler repeats — authenticate, parse the query, read a JSON object
// body, submit a write and answer from its completion, render a node outcome as a native error.
// Each family (handle_rest/, native/, snms/, html/) is "parse → domain call (node/) → render".
// Internal to the resolver. See docs/architecture.md.
//
// Thread safety: ApiContext's services are safe to call from many I/O threads at once (each says
// so in its header); the helpers here are pure or only read the request.
#pragma once

#include "idnode/node/authenticator.hpp"
#include "idnode/node/homing.hpp"
#include "idnode/node/outcome.hpp"
#include "idnode/node/prefixes.hpp"
#include "idnode/node/resolution.hpp"
#include "idnode/registry/registry.hpp"
#include "idnode/resolver/handle_responder.hpp"
#include "idnode/resolver/http.hpp"
#include "idnode/resolver/metrics.hpp"
#include "idnode/resolver/node_api.hpp"
#include "native/bulk.hpp"

#include <boost/json/value.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace idnode::resolver::api {

/// The services of the node that every route family uses. Built once by NodeApi; everything in
/// it lives as long as the NodeApi.
struct ApiContext {
    ApiContext(registry::Registry& registry, NodeApiOptions options, node::Homing homing);

    registry::Registry& registry;
    NodeApiOptions options;
    node::Homing homing;
    node::Authenticator auth;
    node::AccountRateLimit account_limit; // one budget per account across every API
    node::Resolutions resolutions;        // resolutions_today of /api/v1/stats
    node::PrefixAllocator allocator;
    IdempotencyStore idempotency; // bulk outcomes by (account, Idempotency-Key)
    /// This node's Handle site info (NodeApi::set_site_info): the HS_SITE of the prefix records
    /// served over HTTPS. Set once before serving.
    handle::SiteInfo site;
    Family<Counter>* bulk_lines = nullptr; // idnode_bulk_lines_total{status}
};

/// A parsed query string.
struct Query {
    std::vector<std::pair<std::string, std::string>> items;
    bool has(std::string_view name) const;
    std::string get(std::string_view name, std::string fallback = {}) const;
    std::vector<std::string> all(std::string_view name) const;
    /// "true"/"1"/present without value -> true.
    bool flag(std::string_view name, bool fallback) const;
};

bool parse_uint(std::string_view s, std::uint64_t& out);

/// Client text echoed in a response: invalid UTF-8 bytes become U+FFFD so that the JSON stays
/// valid (the input itself was rejected, never "fixed").
std::string echo_safe(std::string_view text);

/// "prefix P is not homed on this node"
std::string not_homed_message(std::string_view prefix);

/// The Authorization header of an HTTPS request, checked by the node's authenticator: empty =
/// anonymous; "Bearer <token or API key>"; "Basic <base64 username:password>"; anything else is
/// refused (and counted as a failed login).
node::AuthOutcome authenticate_header(node::Authenticator& auth, std::string_view authorization,
                                      const std::string& client_ip);

/// Authenticates the request and charges the account's rate; on failure the response to send,
/// in the error shape of `family` (handle or native; the SNMS API answers its own way).
std::optional<Response> authenticate(ApiContext& api, const Request& req, RequestContext& ctx,
                                     node::Principal& who, ApiFamily family);

/// authenticate, then an admin is required (401 / 403 in the native shape).
std::optional<Response> require_admin(ApiContext& api, const Request& req, RequestContext& ctx,
                                      node::Principal& who);

/// require_admin, then a request body that must be a JSON object (`body`); on failure the response
/// to send.
std::optional<Response> admin_request(ApiContext& api, const Request& req, RequestContext& ctx,
                                      node::Principal& who, boost::json::value& body);

/// 429 with Retry-After (the server-level refusal shape of the request's family).
Response rate_limited(const Request& req, std::chrono::seconds wait, std::string_view message);

/// A request body that must be a JSON object; otherwise the 400 to send.
struct ObjectBody {
    boost::json::value value;
    Response refusal;
    bool ok() const { return value.is_object(); }
};
ObjectBody object_body(const Request& req);

/// 302 to `location` (the proxy's answer for a record with a public URL value).
Response redirect_to(const Request& req, std::string_view location);

/// Submits one write and sends respond(result) from the writer's completion.
void submit_and_respond(ApiContext& api, registry::WriteOp op, const std::string& account,
                        std::function<Response(const registry::OpResult&)> respond,
                        Responder responder);

/// Route handlers that are member functions of a family's implementation, bound to `self`.
template <class Impl>
Handler bind_sync(Impl* self, Response (Impl::*fn)(const Request&, RequestContext&)) {
    return [self, fn](const Request& req, RequestContext& ctx) { return (self->*fn)(req, ctx); };
}
template <class Impl> AsyncHandler bind_async(Impl* self, void (Impl::*fn)(Request&&, Responder)) {
    return [self, fn](Request&& req, Responder r) { (self->*fn)(std::move(req), std::move(r)); };
}

// ---- the native API's one table from outcomes to HTTP ------------------------------------------

http::status native_status(node::Outcome outcome) noexcept;
/// {"error":{"code": errc name, "message"}} with the status of the error's outcome.
Response native_error(const Request& req, registry::Errc code, std::string_view message);
/// {"error":{"code": refusal.code(), "message"}} with the status of its outcome.
Response native_refusal(const Request& req, const node::Refusal& refusal);

} // namespace idnode::resolver::api
