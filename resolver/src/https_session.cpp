// One HTTPS connection's life: TLS detection and handshake, the read and write timers, draining
// and shedding, and closing (close_notify, then a lingering close). See https_session.hpp.
#include "https_session.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/detect_ssl.hpp>

#include <spdlog/logger.h>

namespace idnode::resolver::detail {

namespace {

constexpr std::chrono::milliseconds kLingerTimeout{2000};
constexpr std::chrono::milliseconds kDrainingLingerTimeout{250}; // while the server stops

} // namespace

bool is_disconnect(const error_code& ec) {
    return ec == asio::error::eof || ec == asio::error::connection_reset ||
           ec == asio::error::broken_pipe || ec == beast::http::error::end_of_stream ||
           ec == ssl::error::stream_truncated || ec == asio::error::operation_aborted ||
           ec == asio::error::bad_descriptor;
}

HttpsSession::HttpsSession(ServerCore& core, tcp::socket socket)
    : core_(core), tls_(core.tls.get()), stream_(std::move(socket), *tls_),
      read_timer_(stream_.get_executor()), write_timer_(stream_.get_executor()) {
    core_.open_connections.fetch_add(1, std::memory_order_relaxed);
    core_.metrics.open_connections.add(1);
    error_code ec;
    const auto peer = stream_.next_layer().remote_endpoint(ec);
    client_ip_ = ec ? std::string("unknown") : peer.address().to_string();
    stream_.next_layer().set_option(tcp::no_delay(true), ec);
}

HttpsSession::~HttpsSession() {
    core_.untrack(this);
    core_.metrics.open_connections.add(-1);
    core_.open_connections.fetch_sub(1, std::memory_order_relaxed);
}

void HttpsSession::start() {
    core_.track(this, weak_from_this());
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->detect(); });
}

void HttpsSession::post_drain() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->drain(); });
}

void HttpsSession::post_shed() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
        if (self->closed_ || !self->unproven())
            return;
        self->core_.metrics.rejected.with({"shed_idle"}).inc();
        self->close();
    });
}

void HttpsSession::drain() {
    if (closed_ || draining_)
        return;
    draining_ = true;
    read_stopped_ = true;
    if (consumer_)
        stop_stream();
    // Nothing in flight and only waiting for a next request (or a handshake): close now.
    // A request whose bytes are being read, or responses still queued, finish first.
    // A lingering close has delivered everything already.
    if (phase_ == Phase::lingering ||
        ((phase_ == Phase::awaiting || phase_ == Phase::handshake || phase_ == Phase::idle) &&
         pipeline_.empty() && !writing_))
        close();
}

void HttpsSession::arm_read_timer(std::chrono::steady_clock::duration d) {
    stream_timer_armed_ = false;
    read_timer_.expires_after(d);
    read_timer_.async_wait([self = shared_from_this()](error_code ec) {
        if (!ec)
            self->on_read_timer();
    });
}

void HttpsSession::disarm_read_timer() {
    read_timer_.cancel();
    stream_timer_armed_ = false;
}

void HttpsSession::on_read_timer() {
    if (closed_ || read_timer_.expiry() > steady_clock::now())
        return; // re-armed since this wait was queued
    static constexpr const char* kNames[] = {"handshake", "idle", "header",
                                             "body",      "idle", "linger"};
    if (phase_ != Phase::lingering) {
        const bool first_header = !served_any_ && phase_ == Phase::awaiting;
        core_.metrics.timeouts.with({first_header ? "header" : kNames[static_cast<int>(phase_)]})
            .inc();
    }
    close();
}

void HttpsSession::arm_write_timer() {
    write_timer_.expires_after(core_.config.limits.idle_timeout);
    write_timer_.async_wait([self = shared_from_this()](error_code ec) {
        if (!ec && !self->closed_ && self->write_timer_.expiry() <= steady_clock::now()) {
            self->core_.metrics.timeouts.with({"write"}).inc();
            self->close();
        }
    });
}

void HttpsSession::detect() {
    phase_ = Phase::handshake;
    arm_read_timer(core_.config.limits.header_timeout);
    beast::async_detect_ssl(
        stream_.next_layer(), buffer_,
        [self = shared_from_this()](error_code ec, bool is_tls) { self->on_detect(ec, is_tls); });
}

void HttpsSession::on_detect(error_code ec, bool is_tls) {
    if (closed_)
        return;
    if (ec) {
        core_.metrics.handshakes.with({"failed"}).inc();
        close();
        return;
    }
    if (!is_tls) {
        core_.metrics.handshakes.with({"failed"}).inc();
        reject_plain_http();
        return;
    }
    // The defaulted second parameter works around Boost 1.81's ssl_stream, whose buffered
    // async_handshake checks the handler against void(error_code) although it calls it with
    // (error_code, size_t).
    stream_.async_handshake(ssl::stream_base::server, buffer_.data(),
                            [self = shared_from_this()](error_code ec, std::size_t used = 0) {
                                self->on_handshake(ec, used);
                            });
}

void HttpsSession::reject_plain_http() {
    const std::string body =
        error_body("tls_required", "this port speaks HTTPS only (TLS 1.2 or newer)");
    plain_reply_ = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                   "Content-Length: " +
                   std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    arm_write_timer();
    asio::async_write(stream_.next_layer(), asio::buffer(plain_reply_),
                      [self = shared_from_this()](error_code, std::size_t) {
                          self->write_timer_.cancel();
                          self->linger_raw();
                      });
}

void HttpsSession::on_handshake(error_code ec, std::size_t used) {
    if (closed_)
        return;
    if (ec) {
        core_.metrics.handshakes.with({"failed"}).inc();
        core_.logging.app().debug("TLS handshake with {} failed: {}", client_ip_, ec.message());
        close();
        return;
    }
    core_.metrics.handshakes.with({"ok"}).inc();
    buffer_.consume(used);
    read_next();
}

void HttpsSession::finish() {
    if (closed_ || phase_ == Phase::lingering)
        return;
    if (phase_ == Phase::awaiting || phase_ == Phase::header || phase_ == Phase::body) {
        close(); // a read is outstanding; a TLS shutdown cannot run beside it
        return;
    }
    phase_ = Phase::lingering;
    arm_read_timer(draining_ ? kDrainingLingerTimeout : kLingerTimeout);
    stream_.async_shutdown([self = shared_from_this()](error_code) { self->linger_raw(); });
}

void HttpsSession::linger_raw() {
    if (closed_)
        return;
    phase_ = Phase::lingering;
    error_code ignored;
    stream_.next_layer().shutdown(tcp::socket::shutdown_send, ignored);
    arm_read_timer(draining_ ? kDrainingLingerTimeout : kLingerTimeout);
    discard();
}

void HttpsSession::discard() {
    stream_.next_layer().async_read_some(asio::buffer(discard_buffer_),
                                         [self = shared_from_this()](error_code ec, std::size_t) {
                                             if (ec || self->closed_)
                                                 self->close();
                                             else
                                                 self->discard();
                                         });
}

void HttpsSession::close() {
    if (closed_)
        return;
    closed_ = true;
    if (consumer_) {
        auto consumer = std::move(consumer_);
        stream_parser_.reset();
        consumer->on_abort();
    }
    read_timer_.cancel();
    write_timer_.cancel();
    error_code ignored;
    stream_.next_layer().close(ignored);
    // pipeline_ is left alone: a pending write still references its front slot; everything
    // is released with the session once the aborted operations have completed.
}

void start_https_session(ServerCore& core, tcp::socket socket) {
    std::make_shared<HttpsSession>(core, std::move(socket))->start();
}

void drain_https_session(const std::shared_ptr<HttpsSession>& session) {
    session->post_drain();
}

bool https_session_unproven(const HttpsSession& session) {
    return session.unproven();
}

void shed_https_session(const std::shared_ptr<HttpsSession>& session) {
    session->post_shed();
}

} // namespace idnode::resolver::detail
