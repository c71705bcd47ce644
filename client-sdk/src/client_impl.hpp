// Internals of the SDK shared by client.cpp, bulk.cpp and c_api.cpp: one TLS connection, the
// keep-alive pool, credentials, and the request loop with retries. Not installed.
#pragma once

#include "idnode/sdk/client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json/fwd.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>

namespace idnode::sdk::detail {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using boost::system::error_code;
using Millis = std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

/// Where the node is (parsed from ClientOptions::url).
struct Endpoint {
    std::string host; // without brackets
    std::string port;
    std::string host_header;
    bool host_is_ip = false;
};

Result<Endpoint> parse_url(std::string_view url);

Error make_error(ErrorKind kind, std::string message, int http_status = 0, int rc = 0);

/// Classifies a transport error code (timeout, TLS, reset, ...).
Error transport_error(const error_code& ec, const char* what);

/// The Error for an HTTP answer with status >= 400: both body shapes (Handle REST
/// {"responseCode","message"} and native {"error":{"code","message"}}) and the SNMS envelope.
Error error_from_response(int status, std::string_view body);

/// One TLS connection with its own io_context, so that the thread using it runs its operations
/// with deadlines and no other thread is involved. Used by one thread at a time.
class Connection {
public:
    Connection(ssl::context& ctx, const Endpoint& endpoint);

    /// TCP connect (all resolved addresses), SNI, host name verification, TLS handshake.
    error_code connect(Millis timeout);

    /// Writes `request` and reads the answer. `wrote_any` tells whether the request went out
    /// (a failure before that is always safe to retry).
    error_code round_trip(http::request<http::string_body>& request,
                          http::response<http::string_body>& response, Millis timeout,
                          bool& wrote_any);

    /// Non-blocking: true if the server has closed (or sent anything on) this idle connection.
    bool unusable_when_idle();

    /// Runs one asynchronous operation started by `start(handler)` to completion or `timeout`.
    template <class Start> error_code run(Millis timeout, Start&& start) {
        error_code result = net::error::would_block;
        beast::get_lowest_layer(stream).expires_after(timeout);
        start([&result](error_code ec, auto&&...) { result = ec; });
        ioc.restart();
        ioc.run();
        return result;
    }

    net::io_context ioc{1};
    beast::ssl_stream<beast::tcp_stream> stream;
    beast::flat_buffer buffer;
    const Endpoint& endpoint;
    bool connected = false;
    Clock::time_point idle_since{};
};

/// Keep-alive connections, at most `max` checked out or idle at once.
class Pool {
public:
    Pool(ssl::context& ctx, const Endpoint& endpoint, int max)
        : ctx_(ctx), endpoint_(endpoint), max_(max) {}

    /// An idle connection (checked for staleness) or a new unconnected one; waits up to
    /// `timeout` for a free slot (nullptr then).
    std::unique_ptr<Connection> acquire(Millis timeout);
    /// Returns a connection; `reusable` = keep-alive and in a clean state.
    void release(std::unique_ptr<Connection> connection, bool reusable);

private:
    ssl::context& ctx_;
    const Endpoint& endpoint_;
    const int max_;
    std::mutex mutex_;
    std::condition_variable freed_;
    std::vector<std::unique_ptr<Connection>> idle_;
    int total_ = 0;
};

/// One HTTP call as the request loop sees it.
struct Call {
    http::verb method = http::verb::get;
    std::string target;
    std::string body;
    std::string content_type = "application/json";
    bool idempotent = false;
    bool authenticate = true;
};

} // namespace idnode::sdk::detail

namespace idnode::sdk {

struct Client::Impl {
    using Call = detail::Call;
    using Endpoint = detail::Endpoint;
    using Pool = detail::Pool;
    using Millis = detail::Millis;
    using Clock = detail::Clock;
    using HttpResponse = sdk::HttpResponse;
    explicit Impl(const ClientOptions& options);

    /// Sends `call` with credentials and retries; any HTTP status is a value here.
    Result<HttpResponse> execute(const Call& call);
    /// execute + status >= 400 → Error.
    Result<HttpResponse> execute_ok(const Call& call);

    /// The Authorization header value to send ("" = none). `stale` = the one that just got 401.
    Result<std::string> authorization(const std::string& stale);
    std::string auth_method();

    /// Sleeps before retry `attempt` (1 = first retry).
    void backoff(int attempt, Millis retry_after) const;

    ClientOptions options;
    Endpoint endpoint;
    detail::ssl::context tls{detail::ssl::context::tls_client};
    std::optional<Pool> pool;
    std::string user_agent;

    // credentials
    enum class Method { none, api_key, token, basic };
    std::mutex auth_mutex;
    Method method = Method::none;
    std::string auth_header;
    Clock::time_point token_obtained{};
    std::chrono::seconds token_lifetime{INT32_MAX}; // "never"; fits steady_clock ns
    bool token_endpoint_missing = false;

private:
    Result<std::string> fetch_token();
    Result<HttpResponse> send_once(const Call& call, const std::string& authorization,
                                   bool& retryable, Millis& retry_after);
};

} // namespace idnode::sdk

namespace idnode::sdk::detail {

/// An integer member of the node's JSON (0 when absent or not an integer).
int int_of(const boost::json::value* v);

/// {"handle"?,"templateVersion"?,"values":[…]}: a record as the SDK sends it (record_json.cpp).
boost::json::object record_json(const Record& r, bool with_handle);
/// A record from the Handle REST / bulk shape (a bare values array takes `handle`).
Result<Record> record_from(const boost::json::value& jv, std::string_view handle);

} // namespace idnode::sdk::detail
