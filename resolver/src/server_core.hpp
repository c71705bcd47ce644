// Internal: state shared by the listeners and sessions of one Server. Not installed; Asio and
// OpenSSL types are confined to resolver/src.
#pragma once

#include "idnode/node/rate_limiter.hpp"
#include "idnode/resolver/config.hpp"
#include "idnode/resolver/http.hpp"
#include "idnode/resolver/logging.hpp"
#include "idnode/resolver/metrics.hpp"
#include "idnode/resolver/streaming.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace idnode::resolver::detail {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;

/// Builds a server TLS context from https.cert/https.key: TLS 1.2+, AEAD ciphers only.
/// Throws std::runtime_error naming the file and OpenSSL's reason.
std::shared_ptr<ssl::context> make_tls_context(const NodeConfig::Https& https);

/// The certificate currently handed to new handshakes. Sessions keep their own shared_ptr, so a
/// reload never disturbs connections that already exist.
class TlsContextHolder {
public:
    explicit TlsContextHolder(std::shared_ptr<ssl::context> initial)
        : current_(std::move(initial)) {}
    std::shared_ptr<ssl::context> get() const {
        std::lock_guard lock(mutex_);
        return current_;
    }
    void set(std::shared_ptr<ssl::context> next) {
        std::lock_guard lock(mutex_);
        current_ = std::move(next);
    }

private:
    mutable std::mutex mutex_;
    std::shared_ptr<ssl::context> current_;
};

/// Metrics the server itself maintains (registered once per Server).
struct ServerMetrics {
    explicit ServerMetrics(MetricsRegistry& registry);

    Family<Counter>& requests;     // idnode_http_requests_total{method,route,status}
    Family<Histogram>& latency;    // idnode_http_request_duration_seconds{route}
    Counter& response_bytes;       // idnode_http_response_body_bytes_total
    Gauge& open_connections;       // idnode_https_open_connections
    Family<Counter>& handshakes;   // idnode_tls_handshakes_total{result}
    Family<Counter>& rejected;     // idnode_connections_rejected_total{reason}
    Family<Counter>& timeouts;     // idnode_http_timeouts_total{phase}
    Counter& rate_limited;         // idnode_http_rate_limited_total
    Family<Counter>& cert_reloads; // idnode_tls_certificate_reloads_total{result}
    Gauge& ready;                  // idnode_ready
};

/// RFC 9112 §3.2: a request must carry exactly one Host field with a valid value (uri-host
/// [":" port]; empty is allowed), and an HTTP/1.1 request must carry one at all. Returns the
/// reason for the 400, or nullptr when the Host field is fine.
const char* host_field_problem(const http::request_header<>& header);

/// What every HTTPS response carries besides the handler's own headers: Strict-Transport-Security
/// (https.hsts_max_age_s; 0 = none), "Authorization" in Vary unless the handler made the response
/// publicly cacheable (its content then depends on no credentials), and, for a request that
/// authenticated (context.account), "Cache-Control: private, no-store" unless the handler chose
/// one: such answers may carry private values, tokens or keys and must never sit in a cache.
void add_common_headers(http::response_header<>& head, const RequestContext& context,
                        const NodeConfig& config);

class HttpsSession;

/// Everything a session needs, owned by Server::Impl and outliving every session.
struct ServerCore {
    ServerCore(const NodeConfig& config, Dispatch dispatch, MetricsRegistry& registry,
               Logging& logging, std::shared_ptr<ssl::context> tls);

    const NodeConfig config;
    const Dispatch dispatch;
    StreamDispatch stream_dispatch;    // optional; set before the server runs
    BodyLimitLookup body_limit_lookup; // optional; set before the server runs
    // Server::add_readiness_check; set before the server runs. Each returns "" when ready.
    std::vector<std::function<std::string()>> readiness_checks;
    MetricsRegistry& registry;
    Logging& logging;
    ServerMetrics metrics;
    RateLimiter ip_limiter;
    TlsContextHolder tls;

    std::atomic<std::uint64_t> next_request_id{1};
    std::atomic<std::uint32_t> open_connections{0}; // HTTPS sessions alive (incl. handshaking)
    std::atomic<bool> ready{false};                 // serving and not shutting down

    // Live HTTPS sessions, so that a graceful stop can ask each one to drain.
    void track(HttpsSession* session, std::weak_ptr<HttpsSession> weak);
    void untrack(HttpsSession* session);
    std::vector<std::shared_ptr<HttpsSession>> live_sessions();

    /// At the connection cap: asks the oldest session that has not yet sent a complete request
    /// header (an idle or slow client, typically an attacker holding slots) to close, so that a
    /// new client can be admitted. Returns false if every session has sent a request (then the
    /// new connection is refused). Thread-safe.
    bool shed_oldest_unproven();

    /// Completes a request's bookkeeping: metrics and access log. Thread-safe.
    void record(const RequestContext& context, std::string_view method, std::string_view path,
                unsigned status, std::uint64_t body_bytes);

private:
    std::mutex sessions_mutex_;
    std::unordered_map<HttpsSession*, std::weak_ptr<HttpsSession>> sessions_;
    // Sessions in accept order, candidates for shedding; entries of closed sessions and of
    // sessions that have sent a request are skipped when popped and pruned when it grows.
    std::deque<std::weak_ptr<HttpsSession>> shed_queue_;
};

/// How many requests one connection may have read but not yet answered before reading pauses.
inline constexpr std::size_t kMaxPipelineDepth = 32;

/// Starts one HTTPS session on an accepted socket (https_session.cpp).
void start_https_session(ServerCore& core, asio::ip::tcp::socket socket);

/// Asks a session to finish its in-flight requests and close (posted onto its strand).
void drain_https_session(const std::shared_ptr<HttpsSession>& session);

/// True while a session has not yet received a complete request header. Thread-safe.
bool https_session_unproven(const HttpsSession& session);

/// Asks a session that is still unproven to close (posted onto its strand); counted as
/// idnode_connections_rejected_total{reason="shed_idle"}.
void shed_https_session(const std::shared_ptr<HttpsSession>& session);

/// Starts one plain-HTTP ops session (ops_session.cpp).
void start_ops_session(ServerCore& core, asio::ip::tcp::socket socket);

} // namespace idnode::resolver::detail
