// The SDK's transport: the node's URL, one TLS connection, the keep-alive pool, and
// Client::Impl — credentials (API key, token, basic) and the request loop with retries.
#include "client_impl.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json.hpp>

#include <openssl/ssl.h>

#include <poll.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <random>
#include <thread>

#include "idnode/codec/base64.hpp"

namespace idnode::sdk {

namespace json = boost::json;
using namespace detail;
using codec::base64_encode;

namespace detail {

// ---- URL ----------------------------------------------------------------------------------------

Result<Endpoint> parse_url(std::string_view url) {
    constexpr std::string_view scheme = "https://";
    if (url.substr(0, scheme.size()) != scheme)
        return make_error(ErrorKind::invalid_argument,
                          "url must start with https:// (got \"" + std::string(url) + "\")");
    std::string_view rest = url.substr(scheme.size());
    const auto slash = rest.find('/');
    if (slash != std::string_view::npos) {
        if (rest.substr(slash) != "/")
            return make_error(ErrorKind::invalid_argument,
                              "url must not have a path: \"" + std::string(url) + "\"");
        rest = rest.substr(0, slash);
    }
    Endpoint ep;
    std::string_view port = "443";
    if (!rest.empty() && rest.front() == '[') { // [::1]:8443
        const auto close = rest.find(']');
        if (close == std::string_view::npos)
            return make_error(ErrorKind::invalid_argument, "url has an unclosed '['");
        ep.host = std::string(rest.substr(1, close - 1));
        ep.host_is_ip = true;
        if (close + 1 < rest.size()) {
            if (rest[close + 1] != ':')
                return make_error(ErrorKind::invalid_argument, "url: junk after ']'");
            port = rest.substr(close + 2);
        }
    } else {
        const auto colon = rest.rfind(':');
        if (colon != std::string_view::npos) {
            port = rest.substr(colon + 1);
            rest = rest.substr(0, colon);
        }
        ep.host = std::string(rest);
        error_code ec;
        net::ip::make_address(ep.host, ec);
        ep.host_is_ip = !ec;
    }
    unsigned port_number = 0;
    const auto [p, pec] = std::from_chars(port.data(), port.data() + port.size(), port_number);
    if (ep.host.empty() || pec != std::errc{} || p != port.data() + port.size() ||
        port_number == 0 || port_number > 65535)
        return make_error(ErrorKind::invalid_argument,
                          "url needs https://host[:port] with a port 1-65535: \"" +
                              std::string(url) + "\"");
    ep.port = std::string(port);
    ep.host_header = std::string(url.substr(scheme.size(), rest.size() + 0));
    ep.host_header = ep.host_is_ip && ep.host.find(':') != std::string::npos
                         ? "[" + ep.host + "]:" + ep.port
                         : ep.host + ":" + ep.port;
    return ep;
}

// ---- one connection -----------------------------------------------------------------------------

Connection::Connection(ssl::context& ctx, const Endpoint& ep) : stream(ioc, ctx), endpoint(ep) {}

error_code Connection::connect(Millis timeout) {
    error_code ec;
    tcp::resolver resolver(ioc);
    auto addresses = resolver.resolve(endpoint.host, endpoint.port, ec);
    if (ec)
        return ec;
    ec = run(timeout, [&](auto handler) {
        beast::get_lowest_layer(stream).async_connect(addresses, std::move(handler));
    });
    if (ec)
        return ec;
    beast::get_lowest_layer(stream).socket().set_option(tcp::no_delay(true), ec);
    if (!endpoint.host_is_ip &&
        SSL_set_tlsext_host_name(stream.native_handle(), endpoint.host.c_str()) != 1)
        return error_code(static_cast<int>(::ERR_get_error()), net::error::get_ssl_category());
    if (stream.native_handle() &&
        SSL_CTX_get_verify_mode(SSL_get_SSL_CTX(stream.native_handle())) != SSL_VERIFY_NONE)
        stream.set_verify_callback(ssl::host_name_verification(endpoint.host));
    ec = run(timeout, [&](auto handler) {
        stream.async_handshake(ssl::stream_base::client, std::move(handler));
    });
    connected = !ec;
    return ec;
}

error_code Connection::round_trip(http::request<http::string_body>& request,
                                  http::response<http::string_body>& response, Millis timeout,
                                  bool& wrote_any) {
    std::size_t written = 0;
    error_code ec = run(timeout, [&](auto handler) {
        http::async_write(
            stream, request,
            [&written, handler = std::move(handler)](error_code e, std::size_t n) mutable {
                written = n;
                handler(e);
            });
    });
    wrote_any = written > 0 || !ec;
    if (ec)
        return ec;
    http::response_parser<http::string_body> parser;
    parser.body_limit(256u << 20);
    parser.header_limit(64u << 10);
    ec = run(timeout,
             [&](auto handler) { http::async_read(stream, buffer, parser, std::move(handler)); });
    if (ec)
        return ec;
    response = parser.release();
    return {};
}

bool Connection::unusable_when_idle() {
    if (!connected)
        return false;
    // Anything readable on an idle keep-alive connection means the server closed it (EOF,
    // close_notify) or broke protocol; either way it must not carry the next request.
    pollfd p{};
    p.fd = beast::get_lowest_layer(stream).socket().native_handle();
    p.events = POLLIN | POLLRDHUP;
    return ::poll(&p, 1, 0) != 0 || buffer.size() != 0;
}

// ---- pool ---------------------------------------------------------------------------------------

namespace {
// The node closes idle connections after limits.idle_timeout_s (60 s by default); reusing one
// close to that deadline races with the server's close, so older ones are dropped instead.
constexpr auto kMaxIdle = std::chrono::seconds(45);
} // namespace

std::unique_ptr<Connection> Pool::acquire(Millis timeout) {
    std::unique_lock lock(mutex_);
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        while (!idle_.empty()) {
            auto c = std::move(idle_.back());
            idle_.pop_back();
            if (Clock::now() - c->idle_since < kMaxIdle && !c->unusable_when_idle())
                return c;
            --total_; // stale: drop it and look again
        }
        if (total_ < max_) {
            ++total_;
            lock.unlock();
            return std::make_unique<Connection>(ctx_, endpoint_);
        }
        if (freed_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
            total_ >= max_)
            return nullptr;
    }
}

void Pool::release(std::unique_ptr<Connection> connection, bool reusable) {
    {
        std::lock_guard lock(mutex_);
        if (reusable && connection->connected) {
            connection->idle_since = Clock::now();
            idle_.push_back(std::move(connection));
        } else {
            --total_;
        }
    }
    freed_.notify_one();
    // a dropped connection is destroyed here, outside the lock
}

} // namespace detail

// ---- Client::Impl -------------------------------------------------------------------------------

Client::Impl::Impl(const ClientOptions& o) : options(o) {
    user_agent = o.user_agent.empty() ? std::string("idnode-sdk/") + IDNODE_VERSION : o.user_agent;
    SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION);
    if (!options.api_key.empty()) {
        method = Method::api_key;
        auth_header = "Bearer " + options.api_key;
    } else if (!options.username.empty()) {
        method = options.password_auth == PasswordAuth::basic ? Method::basic : Method::token;
        if (method == Method::basic)
            auth_header = "Basic " + base64_encode(options.username + ":" + options.password);
    }
}

std::string Client::Impl::auth_method() {
    std::lock_guard lock(auth_mutex);
    switch (method) {
    case Method::none:
        return "none";
    case Method::api_key:
        return "api_key";
    case Method::token:
        return "token";
    case Method::basic:
        return "basic";
    }
    return "none";
}

Result<std::string> Client::Impl::fetch_token() {
    Call call;
    call.method = http::verb::post;
    call.target = "/identity/token";
    call.body = json::serialize(
        json::object{{"username", options.username}, {"password", options.password}});
    call.authenticate = false;
    call.idempotent = true; // obtaining a token changes nothing on the server
    auto r = execute(call);
    if (!r)
        return r.error();
    if (r->status == 404 || r->status == 405)
        return make_error(ErrorKind::not_found, "the node has no /identity/token endpoint",
                          r->status);
    if (r->status >= 400)
        return error_from_response(r->status, r->body);
    // SNMS envelope (docs/api.md#snms-compatible-api): {"status":1,"data":{"token":…}}; failures
    // are HTTP 200 with status -1/-2 and a message.
    error_code ec;
    json::value v = json::parse(r->body, ec);
    const json::object* o = ec ? nullptr : v.if_object();
    if (o != nullptr) {
        const auto* status = o->if_contains("status");
        if (status != nullptr && int_of(status) != 1) {
            const auto* m = o->if_contains("message");
            Error e = make_error(
                ErrorKind::auth,
                m && m->is_string() ? std::string(m->get_string()) : "token refused", r->status);
            return e;
        }
        const auto* data = o->if_contains("data");
        const auto* token =
            data && data->is_object() ? data->get_object().if_contains("token") : nullptr;
        if (token != nullptr && token->is_string()) {
            // "expiresIn" (seconds): refresh at 90 % of the lifetime, or earlier per options
            const auto* expires = data->get_object().if_contains("expiresIn");
            const int lifetime = int_of(expires);
            token_lifetime = lifetime > 0 ? std::chrono::seconds(lifetime * 9 / 10)
                                          : std::chrono::seconds(INT32_MAX);
            return "Bearer " + std::string(token->get_string());
        }
    }
    return make_error(ErrorKind::protocol, "token answer without data.token", r->status);
}

Result<std::string> Client::Impl::authorization(const std::string& stale) {
    std::lock_guard lock(auth_mutex);
    if (method != Method::token)
        return auth_header;
    const bool fresh = !auth_header.empty() && auth_header != stale &&
                       Clock::now() - token_obtained < options.token_refresh &&
                       Clock::now() - token_obtained < token_lifetime;
    if (fresh)
        return auth_header;
    auto token = fetch_token();
    if (!token) {
        if (token.error().kind == ErrorKind::not_found &&
            options.password_auth == PasswordAuth::automatic) {
            // The node predates the token endpoint: HTTP Basic carries the same credentials.
            token_endpoint_missing = true;
            method = Method::basic;
            auth_header = "Basic " + base64_encode(options.username + ":" + options.password);
            return auth_header;
        }
        return token.error();
    }
    auth_header = *token;
    token_obtained = Clock::now();
    return auth_header;
}

void Client::Impl::backoff(int attempt, Millis retry_after) const {
    const auto& p = options.retry;
    double ceiling = static_cast<double>(p.initial_backoff.count()) *
                     std::pow(std::max(1.0, p.multiplier), attempt - 1);
    ceiling = std::min(ceiling, static_cast<double>(p.max_backoff.count()));
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::uniform_real_distribution<double> jitter(0.0, std::max(ceiling, 0.0));
    auto wait = Millis(static_cast<std::int64_t>(jitter(rng)));
    wait = std::max(wait, std::min(retry_after, p.max_backoff));
    std::this_thread::sleep_for(wait);
}

Result<HttpResponse> Client::Impl::send_once(const Call& call, const std::string& authorization,
                                             bool& retryable, Millis& retry_after) {
    retryable = false;
    retry_after = Millis(0);
    auto connection = pool->acquire(options.request_timeout);
    if (!connection) {
        retryable = true;
        return make_error(ErrorKind::timeout,
                          "no pooled connection became free within the request timeout");
    }
    if (!connection->connected) {
        if (auto ec = connection->connect(options.connect_timeout)) {
            pool->release(std::move(connection), false);
            Error e = transport_error(ec, "connect");
            if (e.kind == ErrorKind::connection)
                e.kind = ErrorKind::connect;
            // nothing was sent; a certificate problem does not go away by retrying
            retryable = e.kind != ErrorKind::tls;
            return e;
        }
    }
    http::request<http::string_body> req{call.method, call.target, 11};
    req.set(http::field::host, endpoint.host_header);
    req.set(http::field::user_agent, user_agent);
    req.set(http::field::accept, "application/json");
    if (!authorization.empty())
        req.set(http::field::authorization, authorization);
    if (!call.body.empty() || call.method == http::verb::post || call.method == http::verb::put) {
        req.set(http::field::content_type, call.content_type);
        req.body() = call.body;
    }
    req.keep_alive(true);
    req.prepare_payload();
    http::response<http::string_body> res;
    bool wrote_any = false;
    if (auto ec = connection->round_trip(req, res, options.request_timeout, wrote_any)) {
        pool->release(std::move(connection), false);
        retryable = call.idempotent || !wrote_any;
        return transport_error(ec, wrote_any ? "request" : "send");
    }
    const bool reusable = res.keep_alive();
    pool->release(std::move(connection), reusable);
    HttpResponse out;
    out.status = static_cast<int>(res.result_int());
    out.content_type = std::string(res[http::field::content_type]);
    out.body = std::move(res.body());
    if (out.status == 429 ||
        ((out.status == 502 || out.status == 503 || out.status == 504) && call.idempotent)) {
        // 429 means the request was refused before it was processed: safe for any call.
        retryable = true;
        std::uint64_t seconds = 0;
        const auto ra = res[http::field::retry_after];
        std::from_chars(ra.data(), ra.data() + ra.size(), seconds);
        retry_after = std::chrono::seconds(std::min<std::uint64_t>(seconds, 3600));
    }
    return out;
}

Result<HttpResponse> Client::Impl::execute(const Call& call) {
    std::string stale;
    bool refreshed = false;
    Result<HttpResponse> last = make_error(ErrorKind::protocol, "no attempt made");
    const int attempts = std::max(1, options.retry.max_attempts);
    for (int attempt = 1; attempt <= attempts;) {
        std::string authorization;
        if (call.authenticate) {
            auto a = this->authorization(stale);
            if (!a)
                return a.error();
            authorization = *a;
        }
        bool retryable = false;
        Millis retry_after{0};
        last = send_once(call, authorization, retryable, retry_after);
        if (last && last->status == 401 && call.authenticate && !refreshed) {
            std::lock_guard lock(auth_mutex);
            if (method == Method::token) {
                // An expired or revoked token: get a new one once; 401 means nothing was done.
                refreshed = true;
                stale = authorization;
                continue;
            }
        }
        if (!retryable || attempt == attempts)
            return last;
        backoff(attempt, retry_after);
        ++attempt;
    }
    return last;
}

Result<HttpResponse> Client::Impl::execute_ok(const Call& call) {
    auto r = execute(call);
    if (!r)
        return r;
    if (r->status >= 400)
        return error_from_response(r->status, r->body);
    return r;
}

} // namespace idnode::sdk
