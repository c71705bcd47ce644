// The SNMS-compatible API and the native template routes (docs/api.md#snms-compatible-api), in
// two route families (api/families.hpp): identity_routes.cpp (login, token revocation,
// identifiers) and template_routes.cpp (templates, SNMS and native shapes); answers.hpp holds what
// they share.
// Internal to the resolver.
//
// Routes:
//   POST /identity/token, /identity/token/v1 (unless snms.token_v1 = false)
//   GET /identityv2/data/detail?handle=   POST|PUT|DELETE /identityv2/data
//   POST /identityv2/data/batchCreate   PUT .../batchUpdate   DELETE .../batchDelete (<= 2000)
//   GET|POST|PUT|DELETE /snms/api/v5/template (and /snms/api/v3/template)
// Native: GET|POST /api/v1/templates, GET|PUT|DELETE /api/v1/templates/{prefix}/{version},
//   DELETE /api/v1/accounts/{user}/tokens (revokes every login token of the account; with
//   ?keys=true its API keys too).
//
// Decisions (docs/api.md#snms-compatible-api):
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
//   granted reader) and written by admin or the owner of the prefix (node/policy.hpp). The
//   prefix must be allocated here.
// Thread safety: handlers run on any I/O thread; state is immutable after construction.
#pragma once

#include "idnode/registry/registry.hpp"

#include <boost/json/value.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace idnode::resolver::api {

/// One record of an SNMS identifier write: the body of POST|PUT /identityv2/data, or one element
/// of batchCreate/batchUpdate: {"handle", "templateVersion"?, "value":[…]} (values as in the Handle
/// REST API, docs/data-model.md#values).
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

} // namespace idnode::resolver::api
