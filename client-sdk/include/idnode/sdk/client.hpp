// idnode::sdk::Client — the C++ client of an idnode node (HTTPS; docs/sdk.md, docs/api.md).
//
//   idnode::sdk::ClientOptions o;
//   o.url = "https://127.0.0.1:8443";
//   o.ca_file = "/etc/idnode/ca.pem";
//   o.api_key = "idn_…";
//   auto client = idnode::sdk::Client::create(o);     // Result<Client>: bad options fail here
//   auto rec = client->resolve("88.118.8/SN-1");      // Result<Record>
//   if (!rec) std::cerr << rec.error().to_string() << "\n";
//
// Thread safety: a Client may be used from any number of threads at once; requests share a pool
// of keep-alive TLS connections (at most `max_connections`; callers beyond that wait for a free
// one). Copies of a Client share the same pool and credentials (it is a handle).
// Errors: every call returns Result/Status (see result.hpp); nothing throws for network or server
// failures.
// Retries: failures before a request was sent (connect, TLS, a pooled connection the server had
// closed) are retried for every call; failures after it was sent, and 429/502/503/504 answers,
// are retried only for idempotent calls (reads, resolve_many, upsert/replace/set_values, bulk in
// create mode), with exponential backoff and full jitter (RetryPolicy).
//
// C++17: this header is part of the public API; it names no Boost or OpenSSL type.
#pragma once

#include "idnode/sdk/export.hpp"
#include "idnode/sdk/result.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace idnode::sdk {

/// One value of an identifier record (docs/data-model.md#values).
struct Value {
    std::int32_t index = 0;
    std::string type;
    /// The bytes. For format "admin" (HS_ADMIN) this is the JSON text of
    /// {"handle","index","permissions"} as the server shows it.
    std::string data;
    /// "string", "base64" or "admin" as received. On write: "admin" sends `data` as the admin
    /// object; anything else sends a string when `data` is UTF-8 text and base64 otherwise.
    std::string format = "string";
    std::int32_t ttl = 86400;
    std::string timestamp; ///< RFC 3339 UTC from the server; ignored on write
    std::string
        permissions; ///< "1110" style (adminRead adminWrite publicRead publicWrite); "" = default

    IDNODE_SDK_API static Value text(std::int32_t index, std::string type, std::string data);
};

/// An identifier record: handle + values.
struct Record {
    std::string handle;
    std::vector<Value> values;
    /// The template the record is registered against ("" = none). On write it is sent as
    /// "templateVersion"; on read it is taken from value index 1001 (TEMPLATE) when present.
    std::string template_version;
    /// Handle RC of this record in resolve_many (1 found, 100 not found, ...); 1 from resolve.
    int response_code = 1;

    /// {"handle":…,"templateVersion"?:…,"values":[…]} — one NDJSON line of a bulk load.
    IDNODE_SDK_API std::string to_json() const;
    /// Parses the Handle REST / bulk shape (bare values arrays are accepted too, with `handle`
    /// from the argument). Error kind invalid_argument with a message saying where.
    IDNODE_SDK_API static Result<Record> from_json(std::string_view json,
                                                   std::string_view handle = {});
};

/// Exponential backoff with full jitter: attempt n (1-based) sleeps a random time in
/// [0, min(max_backoff, initial_backoff * multiplier^(n-1))], or the server's Retry-After when
/// that is longer (capped at max_backoff).
struct RetryPolicy {
    int max_attempts = 3; ///< total tries per call, including the first; 1 = never retry
    std::chrono::milliseconds initial_backoff{100};
    std::chrono::milliseconds max_backoff{5000};
    double multiplier = 2.0;
};

/// How username/password are turned into credentials.
enum class PasswordAuth {
    /// POST /identity/token for a bearer token, refreshed on 401 or after token_refresh; when the
    /// node has no token endpoint (404/405), fall back to HTTP Basic for the client's lifetime.
    automatic,
    token, ///< only the token endpoint (its absence is an error)
    basic, ///< only HTTP Basic on every request
};

struct ClientOptions {
    std::string url = "https://127.0.0.1:8443"; ///< https://host[:port] (port defaults to 443)
    /// PEM file of the CA(s) that signed the node's certificate; "" = the system trust store.
    std::string ca_file;
    /// Development only: accept any certificate and any host name. Never in production.
    bool insecure_skip_verify = false;
    /// "idn_<key_id>_<secret>" API key (sent as Bearer). Takes precedence over username/password.
    std::string api_key;
    std::string username;
    std::string password;
    PasswordAuth password_auth = PasswordAuth::automatic;
    /// A token older than this (or than 90 % of the "expiresIn" the node sent with it) is
    /// refreshed before use; a 401 refreshes it at once.
    std::chrono::seconds token_refresh{std::chrono::hours(12)};

    std::chrono::milliseconds connect_timeout{5000}; ///< TCP connect + TLS handshake
    /// Each request (and, in bulk, each stretch without progress) must finish within this.
    std::chrono::milliseconds request_timeout{30000};
    int max_connections = 8; ///< pooled keep-alive connections (bulk streams are extra)
    RetryPolicy retry;
    std::string user_agent; ///< "" = "idnode-sdk/<version>"
};

/// Filters of resolve (docs/api.md#resolve): a value is returned if ANY type or ANY index matches.
struct ResolveFilter {
    std::vector<std::string> types;
    std::vector<std::int32_t> indices;
};

enum class PutOutcome { created, replaced };

/// A key made by create_key; `key` is shown once and never again.
struct ApiKey {
    std::string key_id;
    std::string key;
};

/// A raw HTTP answer (Client::request).
struct HttpResponse {
    int status = 0;
    std::string content_type;
    std::string body;
};

// ---- bulk ---------------------------------------------------------------------------------------

enum class BulkMode { create, upsert, replace };
enum class BulkStatus { created, replaced, unchanged, error };

/// The outcome of one input record of a bulk load.
struct BulkItemResult {
    std::uint64_t index = 0; ///< 0-based position in the input
    std::string handle;
    BulkStatus status = BulkStatus::error;
    /// For status error: code ("exists", "invalid_value", "connection_lost", …) and message.
    std::string error_code;
    std::string error_message;
};

struct BulkProgress {
    std::uint64_t sent = 0;   ///< records written to the server
    std::uint64_t done = 0;   ///< records with a result (committed or rejected)
    std::uint64_t errors = 0; ///< of which rejected
    double elapsed_s = 0;
    double rate = 0; ///< done / elapsed_s
};

struct BulkSummary {
    std::uint64_t records = 0; ///< input records consumed
    std::uint64_t created = 0, replaced = 0, unchanged = 0, errors = 0;
    std::uint64_t resent = 0; ///< records sent again after a dropped stream (create mode)
    double elapsed_s = 0;
};

struct BulkOptions {
    BulkMode mode = BulkMode::create;
    int streams = 1;                 ///< parallel HTTPS streams, each its own connection
    std::size_t chunk_records = 500; ///< records pulled from the reader and written at once
    /// Records sent but not yet answered, per stream; the sender waits beyond it. Bounds memory
    /// and is what a dropped stream resends (create mode).
    std::size_t window_records = 20000;
    /// Called for every record (or only for errors when errors_only), from the stream threads,
    /// one call at a time.
    std::function<void(const BulkItemResult&)> on_result;
    /// Only error results reach on_result. The SDK still asks the server for every result line
    /// (results=all): they are the acknowledgements that make resending after a drop safe.
    bool errors_only = false;
    /// Called about every progress_interval and once at the end, one call at a time. Returning
    /// false cancels the load (Error kind cancelled; records already committed stay committed).
    std::function<bool(const BulkProgress&)> on_progress;
    std::chrono::milliseconds progress_interval{500};
};

/// Supplies the next NDJSON line (one record as Record::to_json writes it, without the newline);
/// returns false at the end. Called from the stream threads, one call at a time. The bulk
/// callbacks (readers, on_result, on_progress) must not throw.
using LineReader = std::function<bool(std::string& line)>;
/// Supplies the next record; returns false at the end. Same threading as LineReader.
using RecordReader = std::function<bool(Record& record)>;

class IDNODE_SDK_API Client {
public:
    /// Validates the options (URL, CA file readable, credentials) without connecting.
    static Result<Client> create(const ClientOptions& options);

    // ---- Handle REST (docs/api.md#handle-rest) --------------------------------------------------
    /// GET /api/handles/{handle}. Not found → ErrorKind::not_found (RC 100).
    Result<Record> resolve(std::string_view handle, const ResolveFilter& filter = {}) const;
    /// POST /api/v1/resolve, ≤ 1000 handles per request (longer lists are split). Same order as
    /// `handles`; each record carries its own response_code (100 = not found; no values).
    /// Records the node defers because one answer reached its size limit are asked for again.
    Result<std::vector<Record>> resolve_many(const std::vector<std::string>& handles) const;
    /// PUT overwrite=false: conflict (RC 101) if the handle exists. Not retried after sending.
    Result<PutOutcome> create(const Record& record) const;
    /// PUT: replaces the whole record; a missing record is created (as bulk `replace` does).
    Result<PutOutcome> replace(const Record& record) const;
    /// PUT: creates or replaces the whole record (the Handle REST API's default).
    Result<PutOutcome> upsert(const Record& record) const;
    /// DELETE the whole record. Not retried after sending (a retry would report not_found).
    Status remove(std::string_view handle) const;
    /// PUT ?index=…: adds the given values or replaces those with the same index.
    Status set_values(std::string_view handle, const std::vector<Value>& values) const;
    /// DELETE ?index=…: removes those values.
    Status remove_values(std::string_view handle, const std::vector<std::int32_t>& indices) const;
    /// GET /api/handles?prefix=…&page=…&pageSize=… → the JSON text of the page.
    Result<std::string> list_handles(std::string_view prefix, std::uint64_t page = 0,
                                     std::uint64_t page_size = 100) const;
    /// GET /api/handles?prefix=…&cursor=…&pageSize=… → the JSON text of the page: `handles` in
    /// key order and, when more follow, `nextCursor` to pass as `cursor` next time ("" = from
    /// the start). Unlike page numbers, walking a large prefix this way costs O(pageSize) per
    /// page and skips nothing when records are added meanwhile.
    Result<std::string> list_handles_cursor(std::string_view prefix, std::string_view cursor,
                                            std::uint64_t page_size = 1000) const;

    // ---- native admin API (docs/api.md#native-api); bodies and answers are JSON text
    // -------------------------
    Result<std::string> allocate_prefix(std::string_view request_json) const;
    Result<std::string> list_prefixes() const;
    Result<std::string> get_prefix(std::string_view prefix) const;
    Status suspend_prefix(std::string_view prefix) const;
    Status resume_prefix(std::string_view prefix) const;
    /// The enterprise node a prefix is routed to (docs/api.md#enterprise-node-routes). PUT
    /// /api/v1/prefixes/{p}/route with `route_json` ({"servers":[…]} or {"service_handle":…})
    /// → the JSON text of the route as stored.
    Result<std::string> set_prefix_route(std::string_view prefix,
                                         std::string_view route_json) const;
    /// GET …/route → the JSON text of the route and this node's site; a prefix without a route
    /// is ErrorKind::not_found (code "not_routed").
    Result<std::string> get_prefix_route(std::string_view prefix) const;
    /// DELETE …/route; not_found ("not_routed") when there is none.
    Status clear_prefix_route(std::string_view prefix) const;
    Result<std::string> create_account(std::string_view request_json) const;
    Result<std::string> list_accounts() const;
    /// set_password and create_key for the client's own account send its password as
    /// "current_password" (the node wants it from a caller that logged in with a token).
    Status set_password(std::string_view username, std::string_view password) const;
    /// POST /api/v1/accounts/{u}/disable, /enable; DELETE /api/v1/accounts/{u} (admin).
    Status disable_account(std::string_view username) const;
    Status enable_account(std::string_view username) const;
    Status delete_account(std::string_view username) const;
    Result<ApiKey> create_key(std::string_view username) const;
    Status revoke_key(std::string_view username, std::string_view key_id) const;
    /// Handle-protocol identities of an account (docs/api.md#identities).
    /// POST /api/v1/accounts/{u}/identities with `request_json` ({"handle","index","secret_key"
    /// or "public_key"}; for the client's own account its password is added as
    /// "current_password") → the JSON text of the identity (never its secret).
    Result<std::string> add_identity(std::string_view username,
                                     std::string_view request_json) const;
    /// GET /api/v1/accounts/{u}/identities → the JSON text {"identities":[…]}.
    Result<std::string> list_identities(std::string_view username) const;
    /// DELETE /api/v1/accounts/{u}/identities/{handle}/{index}.
    Status remove_identity(std::string_view username, std::string_view handle,
                           std::int32_t index) const;
    Result<std::string> list_templates() const;
    Result<std::string> get_template(std::string_view prefix, std::string_view version) const;
    Result<std::string> create_template(std::string_view template_json) const;
    Result<std::string> update_template(std::string_view prefix, std::string_view version,
                                        std::string_view template_json) const;
    Status delete_template(std::string_view prefix, std::string_view version) const;
    /// GET /api/v1/stats → JSON text.
    Result<std::string> stats() const;

    /// Any request with the client's credentials, pool and timeouts; any HTTP status is a value
    /// (errors are only transport failures). `target` is the path + query ("/api/v1/stats").
    /// Retried like a read only when `idempotent`.
    Result<HttpResponse> request(std::string_view method, std::string_view target,
                                 std::string_view body = {}, bool idempotent = false) const;

    // ---- bulk (docs/api.md#bulk) ----------------------------------------------------------------
    /// POST /api/v1/bulk with `streams` parallel chunked NDJSON streams. Returns the summary when
    /// every input record has a result (rejected records are counted in `errors`, not a failure);
    /// an Error when the load could not be carried out (credentials, endpoint, a stream that kept
    /// failing, cancel). In create mode a dropped stream is reconnected and its unanswered records
    /// are sent again (identical records come back `unchanged`); other modes report them as
    /// errors with code "connection_lost" instead, since replaying a write is not safe there.
    Result<BulkSummary> bulk_lines(LineReader next_line, const BulkOptions& options = {}) const;
    Result<BulkSummary> bulk(RecordReader next_record, const BulkOptions& options = {}) const;
    /// Any input range of Record (vector, list, generator view, ...).
    template <class Range>
    Result<BulkSummary> bulk_range(const Range& records, const BulkOptions& options = {}) const {
        auto it = std::begin(records);
        auto end = std::end(records);
        return bulk(
            [&it, &end](Record& out) {
                if (it == end)
                    return false;
                out = *it;
                ++it;
                return true;
            },
            options);
    }

    /// How the client authenticates right now: "none", "api_key", "token", "basic".
    std::string auth_method() const;

    Client(const Client&);
    Client& operator=(const Client&);
    Client(Client&&) noexcept;
    Client& operator=(Client&&) noexcept;
    ~Client();

    struct Impl;

private:
    explicit Client(std::shared_ptr<Impl> impl);
    std::shared_ptr<Impl> impl_;
};

} // namespace idnode::sdk
