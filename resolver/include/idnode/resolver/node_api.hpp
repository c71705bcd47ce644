// The node's HTTPS API: the route families of resolver/src/api (Handle REST, native, SNMS,
// pages — api/families.hpp) over one set of node services (node/: authentication, the write
// policy, homing, prefix allocation, records, resolution). Routes are registered on a Router;
// handlers never see a socket. Reads run on the I/O thread (one short snapshot each); writes are
// submitted to the registry's group-commit writer and answered from its completion, so an I/O
// thread never waits for a durable commit. Every decision of the API is in docs/api.md.
#pragma once

#include "idnode/node/authenticator.hpp"
#include "idnode/node/homing.hpp"
#include "idnode/node/resolution.hpp"
#include "idnode/registry/registry.hpp"
#include "idnode/resolver/router.hpp"

#include "idnode/resolver/handle_responder.hpp"

#include <memory>
#include <string>
#include <vector>

namespace idnode::resolver {

class MetricsRegistry;

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

    /// This node's Handle site info as the Handle server publishes it (ports bound): the HS_SITE
    /// of the prefix records 0.NA/<p> that GET /api/handles serves. Call before serving requests.
    void set_site_info(handle::SiteInfo site);

    /// The prefixes this node homes, case-folded: node.homed_prefixes plus the node prefixes
    /// recorded in the registry (fixed at construction).
    const std::vector<std::string>& homed_prefixes() const noexcept;
    /// Which prefixes this node serves, for the other front ends (the Handle protocol server).
    const node::Homing& homing() const noexcept;
    /// The node's resolutions_today (GET /api/v1/stats), counted by every HTTPS resolution route;
    /// the Handle protocol server counts in it too (HandleServerOptions::resolutions).
    node::Resolutions& resolutions() noexcept;
    /// The node's authenticator and per-account rate limit, which the Handle protocol's
    /// administration shares with the HTTPS API (one failed-login throttle, one budget per
    /// account whichever protocol it writes through).
    node::Authenticator& authenticator() noexcept;
    node::AccountRateLimit& account_rate_limit() noexcept;

private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace idnode::resolver
