// What the SNMS-compatible routes and the native template routes share: the SNMS envelope and
// its statuses, the outcome of a template or record operation before it is dressed as an SNMS or
// a native answer (one table each), and the preamble of every handler. See
// docs/api.md#snms-compatible-api.
//
// SNMS: every answer is HTTP 200 with {"status","message","data"}; status 1 ok, -1 not logged in
// (no, bad, expired or revoked token), -2 business error (Chinese message), -3 no permission,
// -4 internal error. A storage-full node answers -2 with a readable message: it is the operator's
// limit, not an internal fault, and the client must stop writing (reads still work).
// Internal to the resolver.
#pragma once

#include "api/common.hpp"
#include "api/families.hpp"
#include "idnode/node/outcome.hpp"

#include <boost/json/storage_ptr.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace idnode::resolver::api::snms {

// SNMS envelope statuses.
inline constexpr int kOk = 1, kNotLoggedIn = -1, kBusiness = -2, kNoPermission = -3, kInternal = -4;

inline constexpr const char* kSuccess = "成功";
inline constexpr const char* kExists = "标识已存在";
inline constexpr const char* kNotFound = "没有找到标识";
inline constexpr const char* kStorageFull =
    "存储空间已满（storage full），暂时无法写入，查询不受影响";

/// {"status","message","data"} with HTTP 200.
Response envelope(const Request& req, int status, std::string_view message,
                  boost::json::value data = nullptr);

using Kind = node::Outcome;

/// What a template or record operation came to, before it is dressed as a native or SNMS answer.
struct ApiOutcome {
    ApiOutcome() = default;
    ApiOutcome(Kind kind_, std::string en_, std::string zh_, boost::json::value data_ = nullptr,
               std::chrono::seconds retry_after_ = {}, std::string_view code_ = {})
        : kind(kind_), en(std::move(en_)), zh(std::move(zh_)), data(std::move(data_)),
          retry_after(retry_after_), code(code_) {}

    Kind kind = Kind::ok;
    std::string en; // native message
    std::string zh; // SNMS message
    boost::json::value data = nullptr;
    std::chrono::seconds retry_after{0}; // Kind::throttled
    std::string_view code;               // native error code when not the outcome's own
};

/// The outcome of a registry error, with the SNMS wording for storage full, busy and internal.
ApiOutcome outcome_of(registry::Errc e, std::string en, std::string zh);
/// The native answer (templates under /api/v1): JSON data, or {"error":{code,message}}.
Response native_answer(const Request& req, ApiOutcome o);
/// The SNMS envelope of an outcome.
Response snms_answer(const Request& req, ApiOutcome o);

/// The Chinese message of an authentication refusal.
std::string auth_message_zh(std::string_view en);
/// A query parameter ("" when absent or the query is malformed).
std::string query_param(const Request& req, std::string_view name);
/// Message of a failed or refused record operation, in Chinese, for the SNMS answers.
std::string record_message_zh(const registry::OpResult& r, bool creating);
/// Did the record operation do what was asked (a create that found the record did not)?
bool record_ok(const registry::OpResult& r, bool creating);

/// The JSON body a route takes.
enum class Body { none, object, array, any };

/// What a handler starts from: the caller and, when the route takes one, its body.
struct Call {
    node::Principal who;
    boost::json::value body; // null for Body::none
};

/// The preamble of every handler but the login: authenticates (refusing bad credentials, and
/// absent ones when `login_required`), takes one request from the account's
/// limits.rate_per_account budget, and parses the body into the shape the route takes
/// (`storage`: an arena for large bodies). A refusal is an outcome for snms_answer or
/// native_answer.
std::optional<ApiOutcome> begin(ApiContext& api, const Request& req, RequestContext& ctx,
                                Call& call, bool login_required, Body body = Body::none,
                                boost::json::storage_ptr storage = {});

/// The string members `names` of an optional JSON object body (a DELETE may carry its
/// parameters there instead of the query); absent or malformed bodies give nothing.
void body_strings(const Request& req,
                  std::initializer_list<std::pair<const char*, std::string*>> names);

/// Options of the SNMS and template routes.
struct SnmsOptions {
    bool token_v1 = true;
    std::uint32_t token_ttl_s = 86400;
    registry::HandleLimits handle_limits{};
    std::size_t max_batch = 2000;
    /// Body bound of the batch routes (limits.max_batch_body_bytes), declared at registration.
    std::uint64_t max_batch_body_bytes = 8 * 1024 * 1024;
    /// The per-record limit: one batch element's JSON text, as sent.
    std::size_t max_record_bytes = 64 * 1024;
};

/// A route family of the SNMS API: the node's services and the SNMS options.
class SnmsFamily : public RouteFamily {
public:
    SnmsFamily(ApiContext& api, SnmsOptions options)
        : RouteFamily(api), options_(std::move(options)) {}

protected:
    SnmsOptions options_;
};

} // namespace idnode::resolver::api::snms
