// The ops listener: plain HTTP/1.1 on a loopback address by default, for probes and Prometheus.
// Requests on one connection are handled strictly one after another (read, answer, read...), so
// pipelined probes are answered in order without any queue. Limits: 8 KiB header, no body,
// header_timeout per request, idle_timeout between requests.
#include "server_core.hpp"

#include "idnode/resolver/version.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <optional>

namespace idnode::resolver::detail {

namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

class OpsSession : public std::enable_shared_from_this<OpsSession> {
public:
    OpsSession(ServerCore& core, tcp::socket socket)
        : core_(core), socket_(std::move(socket)), timer_(socket_.get_executor()) {}

    void start() {
        asio::dispatch(socket_.get_executor(), [self = shared_from_this()] { self->read(); });
    }

private:
    void arm(std::chrono::steady_clock::duration d) {
        timer_.expires_after(d);
        timer_.async_wait([self = shared_from_this()](error_code ec) {
            if (!ec && self->timer_.expiry() <= std::chrono::steady_clock::now()) {
                error_code ignored;
                self->socket_.close(ignored);
            }
        });
    }

    void read() {
        arm(first_ ? core_.config.limits.header_timeout : core_.config.limits.idle_timeout);
        first_ = false;
        parser_.emplace();
        parser_->header_limit(8 * 1024);
        parser_->body_limit(0);
        http::async_read(
            socket_, buffer_, *parser_,
            [self = shared_from_this()](error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(error_code ec) {
        timer_.cancel();
        if (ec) {
            error_code ignored;
            socket_.close(ignored);
            return;
        }
        const Request& request = parser_->get();
        if (const char* why = host_field_problem(request)) {
            response_ = text(http::status::bad_request, std::string(why) + "\n");
            request_close_ = true;
        } else {
            response_ = answer(request);
        }
        response_.version(request.version());
        response_.keep_alive(request.keep_alive() && !request_close_);
        response_.set(http::field::server, std::string("idnode/") + version());
        if (request.method() == http::verb::head) {
            const auto size = response_.body().size();
            response_.body().clear();
            response_.content_length(size);
        } else {
            response_.prepare_payload();
        }
        arm(core_.config.limits.idle_timeout);
        http::async_write(
            socket_, response_,
            [self = shared_from_this()](error_code ec, std::size_t) { self->on_write(ec); });
    }

    void on_write(error_code ec) {
        timer_.cancel();
        if (ec || !response_.keep_alive()) {
            error_code ignored;
            socket_.shutdown(tcp::socket::shutdown_send, ignored);
            socket_.close(ignored);
            return;
        }
        read();
    }

    Response answer(const Request& request) const {
        const std::string_view path = target_path(request.target());
        const bool known = path == "/healthz" || path == "/readyz" || path == "/metrics";
        if (!known)
            return text(http::status::not_found, "not found\n");
        if (request.method() != http::verb::get && request.method() != http::verb::head) {
            Response r = text(http::status::method_not_allowed, "method not allowed\n");
            r.set(http::field::allow, "GET, HEAD");
            return r;
        }
        if (path == "/healthz")
            return text(http::status::ok, "ok\n");
        if (path == "/readyz")
            return readiness();
        Response r = text(http::status::ok, core_.registry.render());
        r.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        return r;
    }

    Response readiness() const {
        if (!core_.ready.load())
            return text(http::status::service_unavailable, "not ready\n");
        for (const auto& check : core_.readiness_checks) {
            if (std::string why = check(); !why.empty())
                return text(http::status::service_unavailable, "not ready: " + why + "\n");
        }
        return text(http::status::ok, "ready\n");
    }

    static Response text(http::status status, std::string body) {
        Response r{status, 11};
        r.set(http::field::content_type, "text/plain; charset=utf-8");
        r.body() = std::move(body);
        return r;
    }

    ServerCore& core_;
    tcp::socket socket_;
    asio::steady_timer timer_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    Response response_;
    bool first_ = true;
    bool request_close_ = false; // a malformed request ends the connection after its 400
};

} // namespace

void start_ops_session(ServerCore& core, tcp::socket socket) {
    std::make_shared<OpsSession>(core, std::move(socket))->start();
}

} // namespace idnode::resolver::detail
