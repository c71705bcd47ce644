// The SNMS-compatible API (DESIGN §5.2) and the native template routes (§5.3). Internal to the
// resolver; NodeApi owns one and registers its routes.
//
// SNMS: every answer is HTTP 200 with {"status","message","data"}; status 1 ok, -1 not logged in
// (no, bad, expired or revoked token), -2 business error (Chinese message), -3 no permission,
// -4 internal error. Routes:
//   POST /identity/token, /identity/token/v1 (unless snms.token_v1 = false)
//   GET /identityv2/data/detail?handle=   POST|PUT|DELETE /identityv2/data
//   POST /identityv2/data/batchCreate   PUT .../batchUpdate   DELETE .../batchDelete (<= 2000)
//   GET|POST|PUT|DELETE /snms/api/v5/template (and /snms/api/v3/template)
// Native: GET|POST /api/v1/templates, GET|PUT|DELETE /api/v1/templates/{prefix}/{version},
//   DELETE /api/v1/accounts/{user}/tokens (revokes every login token of the account; with
//   ?keys=true its API keys too).
//
// Decisions where DESIGN is silent (also in README):
// - Detail is readable anonymously (public values only), like GET /api/handles.
// - A batch's valid records go to the writer as ONE WriteBatch (one group commit); invalid ones
//   are answered without touching the store. Overall status is 1; each record has its own msg.
// - Update (PUT) replaces the whole record, which must exist. Create of an identical record ->
//   "标识已存在" (the original's answer to a retry after a timeout).
// - limits.rate_per_account applies to every SNMS and template call of an authenticated account
//   (the same budget as the Handle REST routes): beyond it HTTP 200, status -2
//   "请求过于频繁，请稍后再试" and Retry-After (native template routes: 429). The login routes are
//   limited by their failure throttle and limits.rate_per_ip instead.
// - Batch bodies may be up to max_batch_body_bytes (the other routes: limits.max_body_bytes);
//   a larger body is refused by the server with 413 before it is read.
// - Templates are read by the accounts that may read the prefix privately (admin, owner,
//   granted reader) and written by admin or the owner of the prefix. The prefix must be
//   allocated here.
// Thread safety: handlers run on any I/O thread; state is immutable after construction.
#pragma once

#include "auth.hpp"
#include "idnode/registry/registry.hpp"
#include "idnode/resolver/router.hpp"

#include <boost/json/value.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace idnode::resolver::api {

class ResolutionCounter;

struct SnmsOptions {
    bool token_v1 = true;
    std::uint32_t token_ttl_s = 86400;
    registry::HandleLimits handle_limits{};
    std::size_t max_batch = 2000;
    /// Body bound of the batch routes (limits.max_batch_body_bytes), declared at registration.
    std::uint64_t max_batch_body_bytes = 8 * 1024 * 1024;
    /// The per-record limit (record_write.hpp): one batch element's JSON text, as sent.
    std::size_t max_record_bytes = 64 * 1024;
    /// Where detail lookups are counted (/api/v1/stats resolutions_today); nullptr = nowhere.
    /// Must outlive the SnmsApi.
    ResolutionCounter* resolutions = nullptr;
};

/// One record of an SNMS identifier write: the body of POST|PUT /identityv2/data, or one element
/// of batchCreate/batchUpdate: {"handle", "templateVersion"?, "value":[…]} (values as in §5.1).
struct SnmsRecord {
    registry::Handle handle;
    std::optional<std::string> template_version;
    std::vector<registry::HandleValue> values;
};

/// Parses one record document; nothing is checked against the store yet (homing, permission and
/// the template come after). `handle_spelling` receives the document's "handle" whenever it is a
/// string, also on failure (every batch answer names its record). Errors carry the Chinese
/// message for the client: invalid_value "参数错误：…" (not an object, no "value", a bad value,
/// no handle), invalid_handle "参数错误：handle must be a string" or "标识格式错误：…". Pure.
registry::Result<SnmsRecord> snms_record_from_json(const boost::json::value& doc,
                                                   const registry::HandleLimits& limits,
                                                   std::string& handle_spelling);

class SnmsApi {
public:
    /// `homed(prefix_key)`: does this node home the (folded) prefix. `rate_limit` is the one
    /// shared with the other APIs. Everything referenced must outlive the SnmsApi.
    SnmsApi(registry::Registry& registry, Authenticator& auth, AccountRateLimit& rate_limit,
            std::function<bool(std::string_view)> homed, SnmsOptions options);
    ~SnmsApi();
    SnmsApi(const SnmsApi&) = delete;
    SnmsApi& operator=(const SnmsApi&) = delete;

    void register_routes(Router& router);

private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace idnode::resolver::api
