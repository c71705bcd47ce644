// The node's HTTP API over the registry: the Handle REST API (DESIGN §5.1), the native admin
// API for prefixes, accounts and keys (§5.3), and (api/snms_api.hpp) the SNMS API (§5.2) and the
// template routes. Routes are registered on a Router; handlers never
// see a socket. Reads run on the I/O thread (one short snapshot each); writes are submitted to the
// registry's group-commit writer and answered from its completion, so an I/O thread never waits
// for a durable commit.
//
// Decisions where DESIGN is silent (also in README):
// - A prefix is homed when it equals or lies below a configured homed prefix
//   (node.homed_prefixes) or a node prefix recorded by `idctl init`.
// - Writes need the identifier's prefix to be exactly an allocated, active enterprise prefix or a
//   homed node prefix (admin only). Not homed -> 400 RC 301; homed but not allocated -> 404
//   RC 100 with a message saying so; suspended -> 403 RC 400.
// - Anonymous writes -> 401 RC 402; a caller writing outside its prefixes -> 403 RC 401.
// - PUT with overwrite=false on an existing handle -> 409 RC 101, even when the content is
//   identical (HANDLE.NET's behaviour; bulk create is the idempotent path).
// - Storage full -> 507 RC 2; registry shutting down -> 503 RC 3.
// - limits.rate_per_account: a token bucket per authenticated account (burst = one second's
//   worth), one budget across the Handle REST, native and SNMS routes; beyond it 429 with
//   Retry-After (SNMS: HTTP 200, status -2 "请求过于频繁，请稍后再试", Retry-After).
//   Anonymous callers are limited per IP by the server.
// - Batch resolve: every handle costs one request of the caller's rate (per account, or per IP
//   through RequestContext::ip_limiter); a handle repeated in one request is answered once
//   ({"sameAs": i}); the answer stops growing at 4 MiB (later records RC 3 "ask again").
// - Body limits: limits.max_body_bytes, except routes declaring a larger documented payload
//   (RouteOptions): POST /api/v1/resolve (1000 handles of the longest allowed length) and the
//   SNMS batch routes (limits.max_batch_body_bytes); bulk is streamed.
#pragma once

#include "idnode/registry/registry.hpp"
#include "idnode/resolver/router.hpp"

#include <memory>
#include <string>
#include <vector>

namespace idnode::resolver {

class MetricsRegistry;
namespace api {
class ResolutionCounter;
}

struct NodeApiOptions {
    std::vector<std::string> homed_prefixes; // as configured; folded internally
    registry::HandleLimits handle_limits{};
    /// The URL clients reach this node at, e.g. "https://id.example.cn": QR codes encode
    /// {public_base_url}/{handle}. Empty = QR codes are refused (503); never taken from a request.
    std::string public_base_url;
    double rate_per_account = 0;            // requests/s per authenticated account; 0 = off
    bool snms_token_v1 = true;              // POST /identity/token/v1 enabled (snms.token_v1)
    std::uint32_t snms_token_ttl_s = 86400; // login token lifetime (snms.token_ttl_s)
    /// Where the API registers its own metrics (bulk lines); nullptr = none. Must outlive it.
    MetricsRegistry* metrics = nullptr;
    /// The per-record limit (limits.max_body_bytes): one record's JSON text as sent, on every
    /// write path — a bulk NDJSON line, an SNMS batch element (single-record bodies have the
    /// server's body limit, the same value).
    std::size_t max_record_bytes = 64 * 1024;
    /// Body bound of the SNMS batch routes (limits.max_batch_body_bytes).
    std::uint64_t max_batch_body_bytes = 8 * 1024 * 1024;
    /// How long a bulk upload's outcome answers a repeated Idempotency-Key
    /// (limits.idempotency_ttl_s).
    std::uint32_t idempotency_ttl_s = 86400;
};

class NodeApi {
public:
    /// Reads the node prefixes recorded in the registry. `registry` must outlive the NodeApi.
    NodeApi(registry::Registry& registry, NodeApiOptions options);
    ~NodeApi();
    NodeApi(const NodeApi&) = delete;
    NodeApi& operator=(const NodeApi&) = delete;

    /// Registers every route. The NodeApi must outlive the router's use.
    void register_routes(Router& router);

    /// Replaces options.public_base_url, for a URL known only once the HTTPS listener is bound
    /// (node.public_base_url unset and https.listen port 0). Call before serving requests.
    void set_public_base_url(std::string url);

    /// The prefixes this node homes, case-folded: node.homed_prefixes plus the node prefixes
    /// recorded in the registry (fixed at construction).
    const std::vector<std::string>& homed_prefixes() const noexcept;

    /// The node's resolutions_today (GET /api/v1/stats), counted by every HTTPS resolution route;
    /// the Handle protocol server counts in it too (HandleServerOptions::resolutions).
    api::ResolutionCounter& resolutions() noexcept;

private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace idnode::resolver
