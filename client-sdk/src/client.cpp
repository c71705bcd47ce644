// The SDK's client: URL and options, TLS connections, the pool, credentials, the request loop
// with retries, error mapping, the record JSON model and the Handle REST / admin calls.
#include "client_impl.hpp"

#include "idnode/sdk/version.hpp"

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

namespace idnode::sdk {

namespace json = boost::json;
using namespace detail;

// ---- errors -------------------------------------------------------------------------------------

const char* to_string(ErrorKind kind) noexcept {
    switch (kind) {
    case ErrorKind::ok:
        return "ok";
    case ErrorKind::invalid_argument:
        return "invalid argument";
    case ErrorKind::connect:
        return "connection failed";
    case ErrorKind::tls:
        return "TLS failure";
    case ErrorKind::timeout:
        return "timeout";
    case ErrorKind::connection:
        return "connection lost";
    case ErrorKind::protocol:
        return "protocol error";
    case ErrorKind::http:
        return "server error";
    case ErrorKind::auth:
        return "authentication failed";
    case ErrorKind::not_found:
        return "not found";
    case ErrorKind::conflict:
        return "already exists";
    case ErrorKind::cancelled:
        return "cancelled";
    }
    return "unknown error";
}

std::string Error::to_string() const {
    std::string s = sdk::to_string(kind);
    if (http_status != 0)
        s += ", http " + std::to_string(http_status);
    if (response_code != 0)
        s += ", rc " + std::to_string(response_code);
    if (!code.empty())
        s += ", " + code;
    if (!message.empty())
        s += ": " + message;
    return s;
}

const char* version() noexcept {
    return IDNODE_VERSION;
}

namespace detail {

Error make_error(ErrorKind kind, std::string message, int http_status, int rc) {
    Error e;
    e.kind = kind;
    e.message = std::move(message);
    e.http_status = http_status;
    e.response_code = rc;
    return e;
}

Error transport_error(const error_code& ec, const char* what) {
    std::string message = std::string(what) + ": " + ec.message();
    if (ec == beast::error::timeout || ec == net::error::timed_out)
        return make_error(ErrorKind::timeout, std::string(what) + ": timed out");
    if (ec.category() == net::error::get_ssl_category() ||
        ec.category() == net::ssl::error::get_stream_category()) {
        // OpenSSL's reason ("certificate verify failed") is the useful part.
        if (ec.category() == net::error::get_ssl_category()) {
            const char* reason = ERR_reason_error_string(static_cast<unsigned long>(ec.value()));
            if (reason != nullptr)
                message = std::string(what) + ": " + reason;
        }
        if (ec != net::ssl::error::stream_truncated)
            return make_error(ErrorKind::tls, message);
    }
    return make_error(ErrorKind::connection, message);
}

namespace {

int int_of(const json::value* v) {
    if (v == nullptr)
        return 0;
    if (v->is_int64())
        return static_cast<int>(v->get_int64());
    if (v->is_uint64())
        return static_cast<int>(v->get_uint64());
    return 0;
}

} // namespace

Error error_from_response(int status, std::string_view body) {
    Error e;
    e.http_status = status;
    switch (status) {
    case 401:
        e.kind = ErrorKind::auth;
        break;
    case 404:
        e.kind = ErrorKind::not_found;
        break;
    case 409:
        e.kind = ErrorKind::conflict;
        break;
    default:
        e.kind = status >= 400 ? ErrorKind::http : ErrorKind::protocol;
    }
    error_code ec;
    json::value v = json::parse(body, ec);
    if (ec || !v.is_object()) {
        e.message = std::string(body.substr(0, 512));
        return e;
    }
    const json::object& o = v.get_object();
    e.response_code = int_of(o.if_contains("responseCode"));
    if (const auto* m = o.if_contains("message"); m != nullptr && m->is_string())
        e.message = std::string(m->get_string());
    if (const auto* err = o.if_contains("error"); err != nullptr && err->is_object()) {
        const auto& eo = err->get_object();
        if (const auto* c = eo.if_contains("code"); c != nullptr && c->is_string())
            e.code = std::string(c->get_string());
        if (const auto* m = eo.if_contains("message"); m != nullptr && m->is_string())
            e.message = std::string(m->get_string());
    }
    if (e.response_code == 100 && e.message.empty())
        e.message = "handle not found";
    if (e.response_code == 101 && e.message.empty())
        e.message = "handle already exists";
    return e;
}

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

// ---- JSON helpers -------------------------------------------------------------------------------

std::string json_quote(std::string_view text) {
    return json::serialize(json::string(text));
}

bool is_utf8_text(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == 0)
            return false;
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t n;
        std::uint32_t cp;
        if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        for (std::size_t k = 1; k <= n; ++k) {
            if (i + k >= s.size())
                return false;
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

std::string base64_encode(std::string_view bytes) {
    static constexpr char k[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
        std::uint32_t n = static_cast<unsigned char>(bytes[i]) << 16;
        if (i + 1 < bytes.size())
            n |= static_cast<unsigned char>(bytes[i + 1]) << 8;
        if (i + 2 < bytes.size())
            n |= static_cast<unsigned char>(bytes[i + 2]);
        out += k[(n >> 18) & 63];
        out += k[(n >> 12) & 63];
        out += i + 1 < bytes.size() ? k[(n >> 6) & 63] : '=';
        out += i + 2 < bytes.size() ? k[n & 63] : '=';
    }
    return out;
}

namespace {

bool base64_decode(std::string_view text, std::string& out) {
    auto sextet = [](char c) -> int {
        if (c >= 'A' && c <= 'Z')
            return c - 'A';
        if (c >= 'a' && c <= 'z')
            return c - 'a' + 26;
        if (c >= '0' && c <= '9')
            return c - '0' + 52;
        if (c == '+' || c == '-')
            return 62;
        if (c == '/' || c == '_')
            return 63;
        return -1;
    };
    while (!text.empty() && text.back() == '=')
        text.remove_suffix(1);
    out.clear();
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : text) {
        const int v = sextet(c);
        if (v < 0)
            return false;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xFF));
        }
    }
    return true;
}

json::object value_json(const Value& v) {
    json::object o{{"index", v.index}, {"type", v.type}, {"ttl", v.ttl}};
    if (v.format == "admin") {
        error_code ec;
        json::value admin = json::parse(v.data, ec);
        o["data"] = json::object{{"format", "admin"}, {"value", ec ? json::value(v.data) : admin}};
    } else if (is_utf8_text(v.data)) {
        o["data"] = json::object{{"format", "string"}, {"value", v.data}};
    } else {
        o["data"] = json::object{{"format", "base64"}, {"value", base64_encode(v.data)}};
    }
    if (!v.permissions.empty())
        o["permissions"] = v.permissions;
    return o;
}

json::object record_json(const Record& r, bool with_handle) {
    json::object o;
    if (with_handle)
        o["handle"] = r.handle;
    if (!r.template_version.empty())
        o["templateVersion"] = r.template_version;
    json::array values;
    for (const auto& v : r.values) {
        if (!r.template_version.empty() && v.index == 1001)
            continue; // the server derives index 1001 from templateVersion
        values.push_back(value_json(v));
    }
    o["values"] = std::move(values);
    return o;
}

Result<Value> value_from(const json::value& jv, const std::string& where) {
    auto bad = [&](const std::string& what) {
        return make_error(ErrorKind::invalid_argument, where + ": " + what);
    };
    const auto* o = jv.if_object();
    if (o == nullptr)
        return bad("must be an object");
    Value v;
    const auto* index = o->if_contains("index");
    if (index == nullptr || !(index->is_int64() || index->is_uint64()))
        return bad("index must be an integer");
    v.index = int_of(index);
    const auto* type = o->if_contains("type");
    if (type == nullptr || !type->is_string())
        return bad("type must be a string");
    v.type = std::string(type->get_string());
    const auto* data = o->if_contains("data");
    if (data == nullptr)
        return bad("data is missing");
    if (data->is_string()) {
        v.data = std::string(data->get_string());
    } else if (const auto* d = data->if_object()) {
        const auto* f = d->if_contains("format");
        v.format = f != nullptr && f->is_string() ? std::string(f->get_string()) : "string";
        const auto* value = d->if_contains("value");
        if (value == nullptr)
            return bad("data.value is missing");
        if (v.format == "admin") {
            v.data = json::serialize(*value);
        } else if (!value->is_string()) {
            return bad("data.value must be a string");
        } else if (v.format == "base64") {
            if (!base64_decode(value->get_string(), v.data))
                return bad("data.value is not base64");
        } else {
            v.data = std::string(value->get_string());
        }
    } else {
        return bad("data must be a string or {format,value}");
    }
    if (const auto* ttl = o->if_contains("ttl");
        ttl != nullptr && (ttl->is_int64() || ttl->is_uint64()))
        v.ttl = int_of(ttl);
    if (const auto* ts = o->if_contains("timestamp"); ts != nullptr) {
        v.timestamp = ts->is_string() ? std::string(ts->get_string()) : json::serialize(*ts);
    }
    if (const auto* p = o->if_contains("permissions"); p != nullptr && p->is_string())
        v.permissions = std::string(p->get_string());
    return v;
}

Result<Record> record_from(const json::value& jv, std::string_view handle) {
    Record r;
    r.handle = std::string(handle);
    const json::array* values = jv.if_array();
    if (const auto* o = jv.if_object()) {
        if (const auto* h = o->if_contains("handle"); h != nullptr && h->is_string())
            r.handle = std::string(h->get_string());
        r.response_code = o->contains("responseCode") ? int_of(o->if_contains("responseCode")) : 1;
        if (const auto* t = o->if_contains("templateVersion"); t != nullptr && t->is_string())
            r.template_version = std::string(t->get_string());
        const auto* vs = o->if_contains("values");
        values = vs != nullptr ? vs->if_array() : nullptr;
        if (vs != nullptr && values == nullptr)
            return make_error(ErrorKind::invalid_argument, "\"values\" must be an array");
        if (vs == nullptr && r.response_code == 1)
            return make_error(ErrorKind::invalid_argument, "record needs \"values\"");
    } else if (values == nullptr) {
        return make_error(ErrorKind::invalid_argument, "a record is a JSON object or array");
    }
    if (values != nullptr) {
        for (std::size_t i = 0; i < values->size(); ++i) {
            auto v = value_from((*values)[i], "values[" + std::to_string(i) + "]");
            if (!v)
                return v.error();
            if (v->index == 1001 && r.template_version.empty())
                r.template_version = v->data;
            r.values.push_back(std::move(v).value());
        }
    }
    return r;
}

} // namespace
} // namespace detail

Value Value::text(std::int32_t index, std::string type, std::string data) {
    Value v;
    v.index = index;
    v.type = std::move(type);
    v.data = std::move(data);
    return v;
}

std::string Record::to_json() const {
    return json::serialize(record_json(*this, true));
}

Result<Record> Record::from_json(std::string_view text, std::string_view handle) {
    error_code ec;
    json::value v = json::parse(text, ec);
    if (ec)
        return make_error(ErrorKind::invalid_argument, "record is not JSON: " + ec.message());
    return record_from(v, handle);
}

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
    // SNMS envelope (DESIGN §5.2): {"status":1,"data":{"token":…}}; failures are HTTP 200 with
    // status -1/-2 and a message.
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

// ---- Client -------------------------------------------------------------------------------------

namespace {

/// Percent-encodes a handle for the path: everything but unreserved characters and '/' (the
/// server decodes exactly once, so "%" in a suffix must travel as %25).
std::string encode_path(std::string_view s, bool keep_slash = true) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
            (keep_slash && c == '/')) {
            out += ch;
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

Status handle_check(std::string_view handle) {
    if (handle.empty() || handle.find('/') == std::string_view::npos)
        return make_error(ErrorKind::invalid_argument,
                          "a handle is prefix/suffix, got \"" + std::string(handle) + "\"");
    return {};
}

Result<PutOutcome> put_outcome(const Result<HttpResponse>& r) {
    if (!r)
        return r.error();
    return r->status == 201 ? PutOutcome::created : PutOutcome::replaced;
}

Result<std::string> body_of(Result<HttpResponse> r) {
    if (!r)
        return r.error();
    return std::move(r->body);
}

Status status_of(const Result<HttpResponse>& r) {
    if (!r)
        return r.error();
    return {};
}

} // namespace

Result<Client> Client::create(const ClientOptions& options) {
    auto endpoint = parse_url(options.url);
    if (!endpoint)
        return endpoint.error();
    if (options.max_connections < 1)
        return make_error(ErrorKind::invalid_argument, "max_connections must be at least 1");
    if (options.connect_timeout.count() <= 0 || options.request_timeout.count() <= 0)
        return make_error(ErrorKind::invalid_argument, "timeouts must be positive");
    if (options.api_key.empty() && !options.username.empty() && options.password.empty())
        return make_error(ErrorKind::invalid_argument, "username given without a password");
    auto impl = std::make_shared<Impl>(options);
    impl->endpoint = std::move(endpoint).value();
    error_code ec;
    if (options.insecure_skip_verify) {
        impl->tls.set_verify_mode(ssl::verify_none);
    } else {
        impl->tls.set_verify_mode(ssl::verify_peer);
        if (!options.ca_file.empty()) {
            if (!std::ifstream(options.ca_file))
                return make_error(ErrorKind::invalid_argument,
                                  "cannot read ca_file " + options.ca_file);
            impl->tls.load_verify_file(options.ca_file, ec);
            if (ec)
                return make_error(ErrorKind::invalid_argument,
                                  "ca_file " + options.ca_file + ": " + ec.message());
        } else {
            impl->tls.set_default_verify_paths(ec);
        }
    }
    impl->pool.emplace(impl->tls, impl->endpoint, options.max_connections);
    return Client(std::move(impl));
}

Client::Client(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::Client(const Client&) = default;
Client& Client::operator=(const Client&) = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

std::string Client::auth_method() const {
    return impl_->auth_method();
}

Result<Record> Client::resolve(std::string_view handle, const ResolveFilter& filter) const {
    if (auto st = handle_check(handle); !st)
        return st.error();
    Call call;
    call.target = "/api/handles/" + encode_path(handle);
    char sep = '?';
    for (const auto& t : filter.types) {
        call.target += sep + std::string("type=") + encode_path(t, false);
        sep = '&';
    }
    for (auto i : filter.indices) {
        call.target += sep + std::string("index=") + std::to_string(i);
        sep = '&';
    }
    call.idempotent = true;
    auto r = impl_->execute_ok(call);
    if (!r)
        return r.error();
    auto rec = Record::from_json(r->body, handle);
    if (!rec) {
        Error e = rec.error();
        e.kind = ErrorKind::protocol;
        return e;
    }
    rec->handle = std::string(handle);
    return rec;
}

Result<std::vector<Record>> Client::resolve_many(const std::vector<std::string>& handles) const {
    constexpr std::size_t kMaxPerRequest = 1000; // DESIGN §5.3
    std::vector<Record> out(handles.size());
    // Positions still to ask for. The node answers a handle it was asked twice in one request
    // once ({"sameAs": i}, copied here), and records past the size limit of one answer RC 3
    // "ask again": those are asked for again as long as each round answers something.
    std::vector<std::size_t> todo(handles.size());
    for (std::size_t i = 0; i < todo.size(); ++i)
        todo[i] = i;
    while (!todo.empty()) {
        std::vector<std::size_t> again;
        bool progress = false;
        for (std::size_t start = 0; start < todo.size(); start += kMaxPerRequest) {
            const std::size_t end = std::min(todo.size(), start + kMaxPerRequest);
            json::array body;
            for (std::size_t i = start; i < end; ++i)
                body.emplace_back(handles[todo[i]]);
            Call call;
            call.method = http::verb::post;
            call.target = "/api/v1/resolve";
            call.body = json::serialize(body);
            call.idempotent = true;
            auto r = impl_->execute_ok(call);
            if (!r)
                return r.error();
            error_code ec;
            json::value v = json::parse(r->body, ec);
            if (ec || !v.is_array() || v.get_array().size() != end - start)
                return make_error(ErrorKind::protocol,
                                  "resolve answer is not an array of " +
                                      std::to_string(end - start) + " records",
                                  r->status);
            const json::array& entries = v.get_array();
            for (std::size_t i = 0; i < end - start; ++i) {
                const std::size_t at = todo[start + i];
                const auto* o = entries[i].if_object();
                if (const auto* same = o ? o->if_contains("sameAs") : nullptr) {
                    const auto* n = same->if_int64();
                    if (n == nullptr || *n < 0 || static_cast<std::size_t>(*n) >= i)
                        return make_error(ErrorKind::protocol, "bad \"sameAs\" in resolve answer",
                                          r->status);
                    out[at] = out[todo[start + static_cast<std::size_t>(*n)]];
                    out[at].handle = handles[at];
                } else {
                    auto rec = record_from(entries[i], handles[at]);
                    if (!rec)
                        return make_error(ErrorKind::protocol, rec.error().message, r->status);
                    out[at] = std::move(rec).value();
                }
                if (out[at].response_code == 3)
                    again.push_back(at);
                else
                    progress = true;
            }
        }
        if (!progress) // the node is busy, not just full: report RC 3 as it came
            break;
        todo = std::move(again);
    }
    return out;
}

namespace {
Call put_call(const Record& record, bool overwrite) {
    Call call;
    call.method = http::verb::put;
    call.target = "/api/handles/" + encode_path(record.handle);
    if (!overwrite)
        call.target += "?overwrite=false";
    call.body = json::serialize(record_json(record, false));
    call.idempotent = overwrite; // a create retried after success would report a conflict
    return call;
}
} // namespace

Result<PutOutcome> Client::create(const Record& record) const {
    if (auto st = handle_check(record.handle); !st)
        return st.error();
    return put_outcome(impl_->execute_ok(put_call(record, false)));
}

Result<PutOutcome> Client::replace(const Record& record) const {
    if (auto st = handle_check(record.handle); !st)
        return st.error();
    return put_outcome(impl_->execute_ok(put_call(record, true)));
}

Result<PutOutcome> Client::upsert(const Record& record) const {
    return replace(record);
}

Status Client::remove(std::string_view handle) const {
    if (auto st = handle_check(handle); !st)
        return st;
    Call call;
    call.method = http::verb::delete_;
    call.target = "/api/handles/" + encode_path(handle);
    return status_of(impl_->execute_ok(call));
}

Status Client::set_values(std::string_view handle, const std::vector<Value>& values) const {
    if (auto st = handle_check(handle); !st)
        return st;
    if (values.empty())
        return make_error(ErrorKind::invalid_argument, "set_values needs at least one value");
    Record r;
    r.handle = std::string(handle);
    r.values = values;
    Call call = put_call(r, true);
    for (std::size_t i = 0; i < values.size(); ++i)
        call.target += (i == 0 ? "?index=" : "&index=") + std::to_string(values[i].index);
    return status_of(impl_->execute_ok(call));
}

Status Client::remove_values(std::string_view handle,
                             const std::vector<std::int32_t>& indices) const {
    if (auto st = handle_check(handle); !st)
        return st;
    if (indices.empty())
        return make_error(ErrorKind::invalid_argument, "remove_values needs at least one index");
    Call call;
    call.method = http::verb::delete_;
    call.target = "/api/handles/" + encode_path(handle);
    for (std::size_t i = 0; i < indices.size(); ++i)
        call.target += (i == 0 ? "?index=" : "&index=") + std::to_string(indices[i]);
    call.idempotent = true; // removing absent values again changes nothing
    return status_of(impl_->execute_ok(call));
}

Result<std::string> Client::list_handles(std::string_view prefix, std::uint64_t page,
                                         std::uint64_t page_size) const {
    Call call;
    call.target = "/api/handles?prefix=" + encode_path(prefix, false) +
                  "&page=" + std::to_string(page) + "&pageSize=" + std::to_string(page_size);
    call.idempotent = true;
    return body_of(impl_->execute_ok(call));
}

Result<std::string> Client::list_handles_cursor(std::string_view prefix, std::string_view cursor,
                                                std::uint64_t page_size) const {
    Call call;
    call.target = "/api/handles?prefix=" + encode_path(prefix, false) +
                  "&pageSize=" + std::to_string(page_size);
    if (!cursor.empty())
        call.target += "&cursor=" + encode_path(cursor, false);
    call.idempotent = true;
    return body_of(impl_->execute_ok(call));
}

namespace {
Call get(std::string target) {
    Call c;
    c.target = std::move(target);
    c.idempotent = true;
    return c;
}
Call with_body(http::verb m, std::string target, std::string_view body, bool idempotent) {
    Call c;
    c.method = m;
    c.target = std::move(target);
    c.body = std::string(body);
    c.idempotent = idempotent;
    return c;
}
/// The node wants the current password before a caller that authenticated by login token
/// mints a lasting credential for itself (a key, a password): the client adds it when it logs
/// in with a password as `username` (the node ignores it when it is not needed).
void add_current_password(const ClientOptions& o, std::string_view username, json::object& body) {
    if (o.api_key.empty() && !o.password.empty() && o.username == username)
        body["current_password"] = o.password;
}
} // namespace

Result<std::string> Client::allocate_prefix(std::string_view request_json) const {
    return body_of(
        impl_->execute_ok(with_body(http::verb::post, "/api/v1/prefixes", request_json, false)));
}
Result<std::string> Client::list_prefixes() const {
    return body_of(impl_->execute_ok(get("/api/v1/prefixes")));
}
Result<std::string> Client::get_prefix(std::string_view prefix) const {
    return body_of(impl_->execute_ok(get("/api/v1/prefixes/" + encode_path(prefix, false))));
}
Status Client::suspend_prefix(std::string_view prefix) const {
    return status_of(impl_->execute_ok(
        with_body(http::verb::post, "/api/v1/prefixes/" + encode_path(prefix, false) + "/suspend",
                  {}, true)));
}
Status Client::resume_prefix(std::string_view prefix) const {
    return status_of(impl_->execute_ok(with_body(
        http::verb::post, "/api/v1/prefixes/" + encode_path(prefix, false) + "/resume", {}, true)));
}
Result<std::string> Client::create_account(std::string_view request_json) const {
    return body_of(
        impl_->execute_ok(with_body(http::verb::post, "/api/v1/accounts", request_json, false)));
}
Result<std::string> Client::list_accounts() const {
    return body_of(impl_->execute_ok(get("/api/v1/accounts")));
}
Status Client::set_password(std::string_view username, std::string_view password) const {
    json::object body{{"password", password}};
    add_current_password(impl_->options, username, body);
    return status_of(impl_->execute_ok(
        with_body(http::verb::put, "/api/v1/accounts/" + encode_path(username, false) + "/password",
                  json::serialize(body), true)));
}
Status Client::disable_account(std::string_view username) const {
    return status_of(impl_->execute_ok(
        with_body(http::verb::post, "/api/v1/accounts/" + encode_path(username, false) + "/disable",
                  {}, true)));
}
Status Client::enable_account(std::string_view username) const {
    return status_of(impl_->execute_ok(
        with_body(http::verb::post, "/api/v1/accounts/" + encode_path(username, false) + "/enable",
                  {}, true)));
}
Status Client::delete_account(std::string_view username) const {
    return status_of(impl_->execute_ok(with_body(
        http::verb::delete_, "/api/v1/accounts/" + encode_path(username, false), {}, false)));
}
Result<ApiKey> Client::create_key(std::string_view username) const {
    json::object body;
    add_current_password(impl_->options, username, body);
    auto r = impl_->execute_ok(
        with_body(http::verb::post, "/api/v1/accounts/" + encode_path(username, false) + "/keys",
                  body.empty() ? std::string() : json::serialize(body), false));
    if (!r)
        return r.error();
    error_code ec;
    json::value v = json::parse(r->body, ec);
    const json::object* o = ec ? nullptr : v.if_object();
    const json::value* id = o ? o->if_contains("key_id") : nullptr;
    const json::value* key = o ? o->if_contains("key") : nullptr;
    if (id == nullptr || key == nullptr || !id->is_string() || !key->is_string())
        return make_error(ErrorKind::protocol, "key answer without key_id and key", r->status);
    return ApiKey{std::string(id->get_string()), std::string(key->get_string())};
}
Status Client::revoke_key(std::string_view username, std::string_view key_id) const {
    return status_of(impl_->execute_ok(with_body(
        http::verb::delete_,
        "/api/v1/accounts/" + encode_path(username, false) + "/keys/" + encode_path(key_id, false),
        {}, false)));
}
Result<std::string> Client::list_templates() const {
    return body_of(impl_->execute_ok(get("/api/v1/templates")));
}
Result<std::string> Client::get_template(std::string_view prefix, std::string_view version) const {
    return body_of(impl_->execute_ok(get("/api/v1/templates/" + encode_path(prefix, false) + "/" +
                                         encode_path(version, false))));
}
Result<std::string> Client::create_template(std::string_view template_json) const {
    return body_of(
        impl_->execute_ok(with_body(http::verb::post, "/api/v1/templates", template_json, false)));
}
Result<std::string> Client::update_template(std::string_view prefix, std::string_view version,
                                            std::string_view template_json) const {
    return body_of(impl_->execute_ok(with_body(http::verb::put,
                                               "/api/v1/templates/" + encode_path(prefix, false) +
                                                   "/" + encode_path(version, false),
                                               template_json, true)));
}
Status Client::delete_template(std::string_view prefix, std::string_view version) const {
    return status_of(impl_->execute_ok(with_body(http::verb::delete_,
                                                 "/api/v1/templates/" + encode_path(prefix, false) +
                                                     "/" + encode_path(version, false),
                                                 {}, false)));
}
Result<std::string> Client::stats() const {
    return body_of(impl_->execute_ok(get("/api/v1/stats")));
}

Result<HttpResponse> Client::request(std::string_view method, std::string_view target,
                                     std::string_view body, bool idempotent) const {
    const http::verb verb = http::string_to_verb(method);
    if (verb == http::verb::unknown)
        return make_error(ErrorKind::invalid_argument,
                          "unknown HTTP method " + std::string(method));
    if (target.empty() || target.front() != '/')
        return make_error(ErrorKind::invalid_argument, "target must start with '/'");
    Call call;
    call.method = verb;
    call.target = std::string(target);
    call.body = std::string(body);
    call.idempotent = idempotent;
    return impl_->execute(call);
}

} // namespace idnode::sdk
