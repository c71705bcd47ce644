#include "server_core.hpp"

#include "idnode/resolver/version.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <string>
#include <string_view>

namespace idnode::resolver::detail {

const char* host_field_problem(const http::request_header<>& header) {
    const auto hosts = header.count(http::field::host);
    if (hosts > 1)
        return "repeated Host field";
    if (hosts == 0)
        return header.version() >= 11 ? "an HTTP/1.1 request needs a Host field" : nullptr;
    // uri-host [":" port]: reg-name (unreserved, pct-encoded, sub-delims), IPv4 or [IP-literal].
    const std::string_view host = header[http::field::host];
    const bool valid = std::all_of(host.begin(), host.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) ||
               std::string_view("-._~%!$&'()*+,;=:[]").find(c) != std::string_view::npos;
    });
    return valid ? nullptr : "invalid Host field value";
}

void add_common_headers(http::response_header<>& head, const RequestContext& context,
                        const NodeConfig& config) {
    if (config.https.hsts_max_age_s > 0)
        head.set(http::field::strict_transport_security,
                 "max-age=" + std::to_string(config.https.hsts_max_age_s));
    const std::string_view cache = head[http::field::cache_control];
    const bool handler_chose_cache = !cache.empty();
    const bool public_cache = cache.find("public") != std::string_view::npos;
    if (!public_cache) {
        const std::string vary(head[http::field::vary]);
        if (vary.empty())
            head.set(http::field::vary, "Authorization");
        else if (vary.find("Authorization") == std::string::npos)
            head.set(http::field::vary, vary + ", Authorization");
    }
    if (!context.account.empty() && !handler_chose_cache)
        head.set(http::field::cache_control, "private, no-store");
}

ServerMetrics::ServerMetrics(MetricsRegistry& r)
    : requests(r.counter_family("idnode_http_requests_total",
                                "HTTPS requests answered, by method, route pattern and status",
                                {"method", "route", "status"})),
      latency(r.histogram_family("idnode_http_request_duration_seconds",
                                 "Time from request header received to response written", {"route"},
                                 default_latency_buckets())),
      response_bytes(r.counter("idnode_http_response_body_bytes_total",
                               "Response body bytes written on the HTTPS listener")),
      open_connections(
          r.gauge("idnode_https_open_connections", "HTTPS connections currently open")),
      handshakes(r.counter_family("idnode_tls_handshakes_total",
                                  "TLS handshakes on the HTTPS listener, by result", {"result"})),
      rejected(r.counter_family("idnode_connections_rejected_total",
                                "Connections closed right after accept, by reason", {"reason"})),
      timeouts(r.counter_family("idnode_http_timeouts_total",
                                "Connections closed by a timeout, by phase", {"phase"})),
      rate_limited(r.counter("idnode_http_rate_limited_total",
                             "Requests refused with 429 by the per-IP rate limit")),
      cert_reloads(r.counter_family("idnode_tls_certificate_reloads_total",
                                    "Certificate reloads (SIGHUP), by result", {"result"})),
      ready(r.gauge("idnode_ready", "1 while the node serves, 0 while starting or stopping")) {
    r.gauge_family("idnode_build_info", "Build information (value is always 1)", {"version"})
        .with({version()})
        .set(1);
    // Pre-create the common children so they are visible (as 0) before the first event.
    handshakes.with({"ok"});
    handshakes.with({"failed"});
}

ServerCore::ServerCore(const NodeConfig& c, Dispatch d, MetricsRegistry& r, Logging& l,
                       std::shared_ptr<ssl::context> initial_tls)
    : config(c), dispatch(std::move(d)), registry(r), logging(l), metrics(r),
      ip_limiter(c.limits.rate_per_ip), tls(std::move(initial_tls)) {}

// A shared_ptr taken from a weak_ptr under sessions_mutex_ may be the last one: releasing it there
// would run ~HttpsSession, whose untrack() locks the mutex again (self-deadlock). So every such
// pointer is parked in `keep`, declared before the lock and therefore destroyed after unlocking.
void ServerCore::track(HttpsSession* session, std::weak_ptr<HttpsSession> weak) {
    std::vector<std::shared_ptr<HttpsSession>> keep;
    std::lock_guard lock(sessions_mutex_);
    shed_queue_.push_back(weak);
    sessions_.emplace(session, std::move(weak));
    // Without pressure nothing pops the queue: prune it when it holds twice the live sessions.
    if (shed_queue_.size() > 2 * sessions_.size() + 64) {
        std::erase_if(shed_queue_, [&keep](const std::weak_ptr<HttpsSession>& w) {
            auto strong = w.lock();
            const bool drop = !strong || !https_session_unproven(*strong);
            if (strong)
                keep.push_back(std::move(strong));
            return drop;
        });
    }
}

bool ServerCore::shed_oldest_unproven() {
    std::vector<std::shared_ptr<HttpsSession>> keep;
    std::lock_guard lock(sessions_mutex_);
    while (!shed_queue_.empty()) {
        auto strong = shed_queue_.front().lock();
        shed_queue_.pop_front();
        if (!strong)
            continue;
        const bool victim = https_session_unproven(*strong);
        if (victim)
            shed_https_session(strong);
        keep.push_back(std::move(strong));
        if (victim)
            return true;
    }
    return false;
}

void ServerCore::untrack(HttpsSession* session) {
    std::lock_guard lock(sessions_mutex_);
    sessions_.erase(session);
}

std::vector<std::shared_ptr<HttpsSession>> ServerCore::live_sessions() {
    std::vector<std::shared_ptr<HttpsSession>> out;
    std::lock_guard lock(sessions_mutex_);
    out.reserve(sessions_.size());
    for (auto& [raw, weak] : sessions_)
        if (auto strong = weak.lock())
            out.push_back(std::move(strong));
    return out;
}

namespace {

// Metric labels come from fixed sets, never from the client's bytes: every distinct label value
// is a series kept (and scraped) forever, so a client sending invented methods would otherwise
// grow /metrics without bound.
std::string_view method_label(std::string_view method) noexcept {
    static constexpr std::string_view kKnown[] = {"GET",     "HEAD",  "POST",  "PUT",    "DELETE",
                                                  "OPTIONS", "PATCH", "TRACE", "CONNECT"};
    for (const auto known : kKnown)
        if (method == known)
            return known;
    return "other";
}

// The router's patterns (fixed at startup), "unmatched" (no route) and "-" (refused before
// routing) are the only routes; anything else would be a bug, and is still kept bounded.
std::string_view route_label(const std::string& route) noexcept {
    if (route == "unmatched" || route == "-" || (!route.empty() && route.front() == '/'))
        return route;
    return "other";
}

std::string status_label(unsigned status) {
    return status >= 100 && status <= 599 ? std::to_string(status) : std::string("other");
}

} // namespace

void ServerCore::record(const RequestContext& context, std::string_view method,
                        std::string_view path, unsigned status, std::uint64_t body_bytes) {
    const auto elapsed = std::chrono::steady_clock::now() - context.received;
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
    const std::string_view route = route_label(context.route);
    metrics.requests.with({method_label(method), route, status_label(status)}).inc();
    metrics.latency.with({route}).observe(std::chrono::duration<double>(elapsed).count());
    metrics.response_bytes.inc(body_bytes);
    logging.access(AccessRecord{method, context.route, path, context.client_ip, context.account,
                                status, body_bytes, static_cast<std::uint64_t>(micros),
                                context.request_id});
}

} // namespace idnode::resolver::detail
