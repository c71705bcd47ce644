// One HTTPS connection: TLS detection and handshake, HTTP/1.1 keep-alive with pipelining,
// limits and timeouts.
//
// Concurrency: every member runs on the connection's strand (the socket's executor). The only
// entry from other threads is a Responder's sink, which dispatches onto the strand. One read and
// one write may be outstanding at the same time (TLS streams are full duplex on one strand).
//
// Pipelining: each request read gets a Slot at the back of `pipeline_`, numbered by `seq`.
// Handlers may finish in any order (async handlers); a finished response is parked in its slot
// and only the front slot is ever written, so responses leave in request order. Reading pauses
// while kMaxPipelineDepth requests are unanswered.
//
// Timeouts (one timer for the read side, one for the write side):
// - handshake and the first request header: limits.header_timeout from accept;
// - waiting for the next request on an idle keep-alive connection: limits.idle_timeout (only
//   while nothing is in flight; an unanswered request never times its own connection out);
// - a request header, once its first byte has arrived: limits.header_timeout;
// - a request body: limits.idle_timeout;
// - writing a response: limits.idle_timeout (a client that stops reading is dropped).
//
// Body limits: a body read whole may have limits.max_body_bytes, or the larger bound its route
// declares (core.body_limit_lookup, asked after the header only when the body could exceed the
// default: chunked or a larger Content-Length). A Content-Length over the bound is refused with
// 413 before any of the body is read; a chunked body as soon as it passes the bound.
//
// Per-IP rate limit (limits.rate_per_ip) counts anonymous requests: a request without an
// Authorization header takes a token before it is handled. One with credentials is admitted
// without a token (its account has limits.rate_per_account), unless the address is in debt on its
// second bucket ("<ip> credentials"); if its handler did not authenticate it (bad credentials,
// or a route that ignores them), that bucket is charged once it is answered. So sending any
// Authorization header does not lift the limit, and anonymous traffic from an address does not
// throttle an account calling from the same address.
//
// Streamed requests (streaming.hpp): when the header names a streaming route, the session hands
// the body to the route's BodyConsumer piece by piece (no body limit) instead of reading it whole,
// and the route's output is sent with chunked transfer encoding from the request's slot. Reading
// the body pauses while the consumer asks for it (writer backpressure) or while more than
// kMaxStreamBacklog response bytes wait for the client; a paused body has no read deadline (the
// write deadline still watches the client). A graceful stop ends the body early (on_stop); a
// lost connection aborts it (on_abort).
#include "server_core.hpp"

#include "idnode/resolver/version.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/detect_ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <spdlog/logger.h>

#include <array>
#include <boost/beast/http/buffer_body.hpp>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <deque>
#include <optional>
#include <sstream>

namespace idnode::resolver::detail {

namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using std::chrono::steady_clock;

namespace {

constexpr std::chrono::milliseconds kLingerTimeout{2000};
constexpr std::chrono::milliseconds kDrainingLingerTimeout{250}; // while the server stops
constexpr std::size_t kFirstReadSize = 4096;

bool is_disconnect(const error_code& ec) {
    return ec == asio::error::eof || ec == asio::error::connection_reset ||
           ec == asio::error::broken_pipe || ec == beast::http::error::end_of_stream ||
           ec == ssl::error::stream_truncated || ec == asio::error::operation_aborted ||
           ec == asio::error::bad_descriptor;
}

/// Does the not yet parsed part of a request header fold a field line (obs-fold: a line starting
/// with SP or HT continues the previous one)? Beast accepts folds and joins the lines with a space;
/// RFC 9112 §5.2 lets a server reject them with 400 instead, which we do: a proxy in front that
/// unfolds differently, or not at all, must never disagree with us about what the header says.
/// `unparsed` starts at a line start (Beast consumes only whole field lines, and only once it
/// has seen the byte after their CRLF); the scan stops at the empty line ending the header, so
/// that body bytes are never taken for header lines.
bool has_obs_fold(std::string_view unparsed) {
    std::size_t line = 0;
    while (line < unparsed.size() && !unparsed.substr(line).starts_with("\r\n")) {
        const std::size_t newline = unparsed.find('\n', line);
        if (newline == std::string_view::npos || newline + 1 >= unparsed.size())
            return false; // the rest has not arrived yet: checked again when it has
        line = newline + 1;
        if (unparsed[line] == ' ' || unparsed[line] == '\t')
            return true;
    }
    return false;
}

/// Request framing that Beast accepts but a front proxy could read differently (request
/// smuggling), so the node refuses it: a repeated or list-valued Content-Length (Beast takes
/// "5, 5" or two equal fields as 5), and any Transfer-Encoding other than exactly one "chunked"
/// (Beast treats "gzip" or "chunked, identity" as no body at all, leaving the body bytes to be
/// read as the next request; RFC 9112 §6.3 requires a 400). Beast itself already rejects
/// Content-Length together with Transfer-Encoding and conflicting lengths. Returns the reason,
/// or nullptr when the framing is unambiguous.
const char* ambiguous_framing(const http::request_header<>& header) {
    const auto lengths = header.count(http::field::content_length);
    if (lengths > 1)
        return "repeated Content-Length";
    if (lengths == 1 && header[http::field::content_length].find(',') != beast::string_view::npos)
        return "Content-Length must be one number";
    const auto codings = header.count(http::field::transfer_encoding);
    if (codings > 1)
        return "repeated Transfer-Encoding";
    if (codings == 1 && !beast::iequals(header[http::field::transfer_encoding], "chunked"))
        return "unsupported Transfer-Encoding (only \"chunked\" is accepted)";
    return nullptr;
}

std::string hex(std::uint64_t v) {
    char buffer[17];
    const int n = std::snprintf(buffer, sizeof buffer, "%llx", static_cast<unsigned long long>(v));
    return std::string(buffer, static_cast<std::size_t>(n));
}

/// The body of a streamed request its route refused (401, 403, 409 ...) is read and thrown away,
/// up to this many bytes, before the connection may close: closing a socket with unread input
/// makes the kernel send a reset, which destroys the refusal in the client's receive buffer, so
/// an uploading client would see "connection reset" instead of the reason. Beyond the cap the
/// read stops and the idle timeout ends the connection.
constexpr std::uint64_t kMaxRefusedBodyDrain = 16 * 1024 * 1024;

class DiscardBody final : public BodyConsumer {
public:
    bool on_body(std::string_view bytes) override {
        drained_ += bytes.size();
        return drained_ <= kMaxRefusedBodyDrain;
    }
    void on_end() override {}
    void on_stop() override {}
    void on_abort() override {}

private:
    std::uint64_t drained_ = 0;
};

} // namespace

class HttpsSession : public std::enable_shared_from_this<HttpsSession> {
public:
    HttpsSession(ServerCore& core, tcp::socket socket)
        : core_(core), tls_(core.tls.get()), stream_(std::move(socket), *tls_),
          read_timer_(stream_.get_executor()), write_timer_(stream_.get_executor()) {
        core_.open_connections.fetch_add(1, std::memory_order_relaxed);
        core_.metrics.open_connections.add(1);
        error_code ec;
        const auto peer = stream_.next_layer().remote_endpoint(ec);
        client_ip_ = ec ? std::string("unknown") : peer.address().to_string();
        stream_.next_layer().set_option(tcp::no_delay(true), ec);
    }

    ~HttpsSession() {
        core_.untrack(this);
        core_.metrics.open_connections.add(-1);
        core_.open_connections.fetch_sub(1, std::memory_order_relaxed);
    }

    void start() {
        core_.track(this, weak_from_this());
        asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->detect(); });
    }

    /// Thread-safe: asks the session, on its strand, to finish in-flight requests and close.
    void post_drain() {
        asio::post(stream_.get_executor(), [self = shared_from_this()] { self->drain(); });
    }

    /// Thread-safe: whether no complete request header has arrived yet.
    bool unproven() const noexcept { return !proven_.load(std::memory_order_relaxed); }

    /// Thread-safe: closes the connection (on its strand) if it is still unproven then.
    void post_shed() {
        asio::post(stream_.get_executor(), [self = shared_from_this()] {
            if (self->closed_ || !self->unproven())
                return;
            self->core_.metrics.rejected.with({"shed_idle"}).inc();
            self->close();
        });
    }

private:
    void drain() {
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

    enum class Phase { handshake, awaiting, header, body, idle, lingering };

    struct Slot {
        std::uint64_t seq = 0;
        bool ready = false;
        bool interim = false; // a "100 Continue" (raw bytes), not a final response
        bool head = false;
        bool keep_alive = true;
        unsigned version = 11;
        std::string method;
        std::string path;
        std::string raw;
        Response response;
        RequestContext context;
        // A streamed response (streaming.hpp): bytes wait in `pending` until the slot is at the
        // front; `ready` then stays false unless the route answered with a whole response.
        bool streaming = false;
        bool stream_done = false; // the last chunk is in `pending` (or written)
        unsigned stream_status = 0;
        std::uint64_t stream_bytes = 0; // body bytes, for the access log
        std::string pending;
        std::string in_flight;
        // Admitted with credentials and no per-IP token: charged when answered unauthenticated.
        bool ip_deferred = false;
    };

    /// The StreamChannel of one streamed request: posts every call onto the session's strand.
    /// It keeps the session alive (a paused body has no operation outstanding that would); the
    /// cycle session -> consumer -> channel ends when the session lets go of the consumer
    /// (body ended, stopped, or connection closed).
    class Channel : public StreamChannel, public std::enable_shared_from_this<Channel> {
    public:
        Channel(std::shared_ptr<HttpsSession> session, asio::any_io_executor executor,
                std::uint64_t seq, RequestContext context)
            : session_(std::move(session)), executor_(std::move(executor)), seq_(seq),
              context_(std::move(context)) {}

        void start(Response head) override {
            on_session([head = std::move(head)](HttpsSession& s, Channel& c) mutable {
                s.stream_start(c.seq_, std::move(head));
            });
        }
        void write(std::string bytes) override {
            on_session([bytes = std::move(bytes)](HttpsSession& s, Channel& c) mutable {
                s.stream_write(c.seq_, std::move(bytes));
            });
        }
        void finish() override {
            on_session([](HttpsSession& s, Channel& c) { s.stream_finish(c.seq_, c.context_); });
        }
        void send(Response response) override {
            on_session([response = std::move(response)](HttpsSession& s, Channel& c) mutable {
                s.stream_send(c.seq_, std::move(response), c.context_);
            });
        }
        void resume() override {
            on_session([](HttpsSession& s, Channel& c) { s.stream_resume(c.seq_); });
        }
        void post(std::function<void()> fn) override { asio::post(executor_, std::move(fn)); }
        RequestContext& context() override { return context_; }

    private:
        template <class Fn> void on_session(Fn&& fn) {
            asio::post(executor_, [self = shared_from_this(), fn = std::forward<Fn>(fn)]() mutable {
                fn(*self->session_, *self);
            });
        }

        std::shared_ptr<HttpsSession> session_;
        asio::any_io_executor executor_;
        std::uint64_t seq_;
        RequestContext context_;
    };

    // ---- timers ---------------------------------------------------------------------------

    void arm_read_timer(std::chrono::steady_clock::duration d) {
        stream_timer_armed_ = false;
        read_timer_.expires_after(d);
        read_timer_.async_wait([self = shared_from_this()](error_code ec) {
            if (!ec)
                self->on_read_timer();
        });
    }
    void disarm_read_timer() {
        read_timer_.cancel();
        stream_timer_armed_ = false;
    }

    void on_read_timer() {
        if (closed_ || read_timer_.expiry() > steady_clock::now())
            return; // re-armed since this wait was queued
        static constexpr const char* kNames[] = {"handshake", "idle", "header",
                                                 "body",      "idle", "linger"};
        if (phase_ != Phase::lingering) {
            const bool first_header = !served_any_ && phase_ == Phase::awaiting;
            core_.metrics.timeouts
                .with({first_header ? "header" : kNames[static_cast<int>(phase_)]})
                .inc();
        }
        close();
    }

    void arm_write_timer() {
        write_timer_.expires_after(core_.config.limits.idle_timeout);
        write_timer_.async_wait([self = shared_from_this()](error_code ec) {
            if (!ec && !self->closed_ && self->write_timer_.expiry() <= steady_clock::now()) {
                self->core_.metrics.timeouts.with({"write"}).inc();
                self->close();
            }
        });
    }

    // ---- TLS ------------------------------------------------------------------------------

    void detect() {
        phase_ = Phase::handshake;
        arm_read_timer(core_.config.limits.header_timeout);
        beast::async_detect_ssl(stream_.next_layer(), buffer_,
                                [self = shared_from_this()](error_code ec, bool is_tls) {
                                    self->on_detect(ec, is_tls);
                                });
    }

    void on_detect(error_code ec, bool is_tls) {
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

    /// Someone spoke plain HTTP (or anything else) to the TLS port: answer in plain text so that
    /// a confused client sees why, then close.
    void reject_plain_http() {
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

    void on_handshake(error_code ec, std::size_t used) {
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

    // ---- reading requests -------------------------------------------------------------------

    void read_next() {
        if (closed_)
            return;
        if (read_stopped_) {
            phase_ = Phase::idle;
            if (pipeline_.empty() && !writing_)
                finish();
            return;
        }
        if (pipeline_.size() >= kMaxPipelineDepth) {
            phase_ = Phase::idle;
            read_paused_ = true;
            return;
        }
        if (buffer_.size() > 0) {
            read_header();
            return;
        }
        // Wait for the first bytes of the next request.
        const bool first = !served_any_;
        phase_ = Phase::awaiting;
        if (first)
            ; // the handshake's header_timeout keeps running until the first header is complete
        else if (pipeline_.empty())
            arm_read_timer(core_.config.limits.idle_timeout);
        else
            disarm_read_timer(); // in-flight requests: the write side watches the connection
        stream_.async_read_some(buffer_.prepare(kFirstReadSize),
                                [self = shared_from_this()](error_code ec, std::size_t n) {
                                    self->on_first_bytes(ec, n);
                                });
    }

    void on_first_bytes(error_code ec, std::size_t n) {
        buffer_.commit(n);
        if (closed_)
            return;
        if (ec) {
            phase_ = Phase::idle;
            if ((ec == asio::error::eof || ec == ssl::error::stream_truncated) &&
                (!pipeline_.empty() || writing_)) {
                // The client finished sending (half-close) but still waits for answers.
                read_stopped_ = true;
                return;
            }
            if (!is_disconnect(ec))
                core_.logging.app().debug("read from {} failed: {}", client_ip_, ec.message());
            close();
            return;
        }
        if (buffer_.size() == 0) {
            read_next();
            return;
        }
        read_header();
    }

    void read_header() {
        phase_ = Phase::header;
        if (served_any_)
            arm_read_timer(core_.config.limits.header_timeout);
        parser_.emplace();
        parser_->header_limit(static_cast<std::uint32_t>(core_.config.limits.max_header_bytes));
        // The body limit is decided once the route is known (streaming routes have none).
        parser_->body_limit(boost::none);
        header_bytes_ = 0;
        header_needs_more_ = false;
        read_header_some();
    }

    // Beast's header_limit bounds only the bytes the parser holds at once: complete field lines
    // are consumed as they arrive, so a header sent in many small pieces (many short fields)
    // was never limited and grew the parsed fields without bound. Read in steps instead and
    // count every byte the parser consumed. Each step's bytes are checked for obs-fold
    // (has_obs_fold) before the parser sees them, which is why this reads the stream itself
    // and feeds the parser with put() rather than using http::async_read_some.
    void read_header_some() {
        if (buffer_.size() > 0 && !header_needs_more_) {
            parse_header_bytes();
            return;
        }
        stream_.async_read_some(buffer_.prepare(kFirstReadSize),
                                [self = shared_from_this()](error_code ec, std::size_t n) {
                                    self->on_header_bytes(ec, n);
                                });
    }

    void on_header_bytes(error_code ec, std::size_t n) {
        buffer_.commit(n);
        if (closed_)
            return;
        if (ec) {
            on_header(ec); // a disconnect closes quietly; the rest is answered 400
            return;
        }
        parse_header_bytes();
    }

    void parse_header_bytes() {
        const auto bytes = buffer_.data();
        if (has_obs_fold(std::string_view(static_cast<const char*>(bytes.data()), bytes.size()))) {
            on_header(http::error::bad_field, "obsolete line folding (a header line starting "
                                              "with a space or tab) is not accepted");
            return;
        }
        error_code ec;
        const std::size_t used = parser_->put(bytes, ec);
        buffer_.consume(used);
        header_bytes_ += used;
        header_needs_more_ = ec == http::error::need_more; // what is buffered is not enough
        if (header_needs_more_)
            ec = {};
        if (!ec && header_bytes_ > core_.config.limits.max_header_bytes)
            ec = http::error::header_limit;
        if (!ec && !parser_->is_header_done()) {
            read_header_some();
            return;
        }
        on_header(ec);
    }

    /// `why` (with an error) replaces the parser's wording in the 400.
    void on_header(error_code ec, const char* why = nullptr) {
        if (closed_)
            return;
        served_any_ = true; // from now on the first-request deadline no longer applies
        proven_.store(true, std::memory_order_relaxed); // no longer shed at the connection cap
        if (ec == http::error::body_limit) { // Content-Length already says it is too large
            body_limit_ = {core_.config.limits.max_body_bytes, {}};
            reject_body_too_large();
            return;
        }
        if (ec == http::error::header_limit) {
            reject_and_close(Refusal::header_too_large,
                             "the request header exceeds " +
                                 std::to_string(core_.config.limits.max_header_bytes) + " bytes");
            return;
        }
        if (ec) {
            if (is_disconnect(ec) || ec == http::error::partial_message) {
                close();
                return;
            }
            reject_and_close(Refusal::bad_request,
                             "malformed HTTP request: " + (why ? std::string(why) : ec.message()));
            return;
        }
        header_done_ = steady_clock::now();
        const auto& header = parser_->get();
        if (const char* why = ambiguous_framing(header)) {
            reject_and_close(Refusal::bad_request, std::string("malformed HTTP request: ") + why);
            return;
        }
        if (const char* why = host_field_problem(header)) {
            reject_and_close(Refusal::bad_request, std::string("malformed HTTP request: ") + why);
            return;
        }
        if (core_.stream_dispatch) {
            RequestContext route; // only the route and params; ids are numbered below
            if (const StreamHandler* handler = core_.stream_dispatch(header, route)) {
                RequestContext context = new_context();
                context.route = std::move(route.route);
                context.params = std::move(route.params);
                context.family = api_family(header.target());
                start_stream(*handler, std::move(context));
                return;
            }
        }
        // The route may declare a larger bound than limits.max_body_bytes (a batch of 2000
        // records); it is asked only for bodies that could need it (chunked or a larger
        // Content-Length), so ordinary requests do not pay a second route lookup.
        body_limit_ = {core_.config.limits.max_body_bytes, {}};
        const auto length = parser_->content_length();
        if (!parser_->is_done() && (!length || *length > body_limit_.max_bytes) &&
            core_.body_limit_lookup) {
            if (const BodyLimit route = core_.body_limit_lookup(header);
                route.max_bytes > body_limit_.max_bytes)
                body_limit_ = route;
        }
        parser_->body_limit(body_limit_.max_bytes);
        if (length && *length > body_limit_.max_bytes) {
            reject_body_too_large();
            return;
        }
        if (parser_->is_done()) {
            on_request();
            return;
        }
        if (beast::iequals(header[http::field::expect], "100-continue"))
            push_interim("HTTP/1.1 100 Continue\r\n\r\n");
        phase_ = Phase::body;
        arm_read_timer(core_.config.limits.idle_timeout);
        http::async_read(
            stream_, buffer_, *parser_,
            [self = shared_from_this()](error_code ec, std::size_t) { self->on_body(ec); });
    }

    void on_body(error_code ec) {
        if (closed_)
            return;
        if (ec == http::error::body_limit) {
            reject_body_too_large();
            return;
        }
        if (ec) {
            if (is_disconnect(ec) || ec == http::error::partial_message) {
                close();
                return;
            }
            reject_and_close(Refusal::bad_request, "malformed HTTP request body: " + ec.message());
            return;
        }
        on_request();
    }

    /// 413 for a body over `body_limit_`, naming the bound and where it comes from.
    void reject_body_too_large() {
        const std::string bound = std::to_string(body_limit_.max_bytes) + " bytes";
        reject_and_close(Refusal::body_too_large,
                         body_limit_.route.empty()
                             ? "the request body exceeds " + bound + " (limits.max_body_bytes)"
                             : "the request body exceeds " + bound + ", the limit of " +
                                   std::string(parser_->get().method_string()) + " " +
                                   std::string(body_limit_.route));
    }

    RequestContext new_context() {
        RequestContext context;
        context.client_ip = client_ip_;
        context.tls = true;
        context.ip_limiter = &core_.ip_limiter;
        context.request_id = core_.next_request_id.fetch_add(1, std::memory_order_relaxed);
        context.received = header_done_;
        return context;
    }

    Slot& push_slot(const Request& request) {
        Slot& slot = pipeline_.emplace_back();
        slot.seq = next_seq_++;
        slot.head = request.method() == http::verb::head;
        slot.keep_alive = request.keep_alive() && !draining_;
        slot.version = request.version();
        slot.method = std::string(request.method_string());
        slot.path = std::string(target_path(request.target()));
        return slot;
    }

    /// The per-IP rate decision for a request (see the top of this file).
    RateLimiter::Decision admit(const Request& request, Slot& slot) {
        if (request[http::field::authorization].empty())
            return core_.ip_limiter.acquire(client_ip_);
        if (!core_.ip_limiter.would_admit(credentials_key()))
            return {false, std::chrono::seconds(1)};
        slot.ip_deferred = true;
        return {};
    }

    std::string credentials_key() const { return client_ip_ + " credentials"; }

    /// A request admitted on its credentials that turned out anonymous costs its address a token.
    void settle_rate(Slot& slot, const RequestContext& context) {
        if (slot.ip_deferred && context.account.empty())
            core_.ip_limiter.spend(credentials_key(), 1);
        slot.ip_deferred = false;
    }

    void on_request() {
        phase_ = Phase::idle;
        disarm_read_timer();
        Request request = parser_->release();
        parser_.reset();

        const std::uint64_t seq = push_slot(request).seq;
        if (!pipeline_.back().keep_alive)
            read_stopped_ = true;
        RequestContext context = new_context();
        const ApiFamily family = api_family(request.target());
        context.family = family;

        if (core_.ip_limiter.enabled()) {
            const auto decision = admit(request, pipeline_.back());
            if (!decision.allowed) {
                core_.metrics.rate_limited.inc();
                const auto seconds = std::max<long long>(
                    1, static_cast<long long>(
                           std::ceil(std::chrono::duration<double>(decision.retry_after).count())));
                Response response =
                    refusal_response(request, Refusal::rate_limited,
                                     "too many requests from " + client_ip_ + "; retry after " +
                                         std::to_string(seconds) + " s");
                response.set(http::field::retry_after, std::to_string(seconds));
                context.route = "-";
                complete(seq, std::move(response), std::move(context));
                read_next();
                return;
            }
        }

        Responder responder(
            std::move(context), [self = shared_from_this(), seq](Response&& r, RequestContext&& c) {
                asio::dispatch(self->stream_.get_executor(),
                               [self, seq, r = std::move(r), c = std::move(c)]() mutable {
                                   self->complete(seq, std::move(r), std::move(c));
                               });
            });
        try {
            core_.dispatch(std::move(request), responder);
        } catch (const std::exception& e) {
            core_.logging.app().error("request handler threw: {}", e.what());
            responder.send(refusal_response(family, 11, true, Refusal::internal, "internal error"));
        }
        read_next();
    }

    // ---- streamed requests ------------------------------------------------------------------

    Slot* find_slot(std::uint64_t seq) {
        if (closed_ || seq < front_seq_ || seq - front_seq_ >= pipeline_.size())
            return nullptr;
        return &pipeline_[seq - front_seq_];
    }

    void start_stream(const StreamHandler& handler, RequestContext context) {
        phase_ = Phase::idle;
        disarm_read_timer();
        const Request& header = parser_->get();
        Slot& slot = push_slot(header);
        slot.streaming = true;
        slot.context = context;
        const std::uint64_t seq = slot.seq;
        if (core_.ip_limiter.enabled() && !admit(header, slot).allowed) {
            core_.metrics.rate_limited.inc();
            Response response =
                refusal_response(header, Refusal::rate_limited,
                                 "too many requests from " + client_ip_ + "; retry after 1 s");
            response.set(http::field::retry_after, "1");
            response.keep_alive(false);
            slot.streaming = false;
            read_stopped_ = true;
            parser_.reset();
            complete(seq, std::move(response), std::move(context));
            return;
        }
        if (beast::iequals(header[http::field::expect], "100-continue"))
            slot.pending = "HTTP/1.1 100 Continue\r\n\r\n";
        auto channel =
            std::make_shared<Channel>(shared_from_this(), stream_.get_executor(), seq, context);
        std::unique_ptr<BodyConsumer> consumer;
        try {
            consumer = handler(header, channel);
        } catch (const std::exception& e) {
            core_.logging.app().error("streaming handler threw: {}", e.what());
            channel->send(refusal_response(header, Refusal::internal, "internal error"));
        }
        if (!consumer) { // answered with send()
            if (parser_->is_done()) {
                parser_.reset();
                read_next();
                return;
            }
            // Read the unwanted body (bounded) so that the refusal reaches the client.
            consumer = std::make_unique<DiscardBody>();
            discarding_refused_ = true;
        }
        consumer_ = std::move(consumer);
        stream_seq_ = seq;
        stream_parser_ =
            std::make_shared<http::request_parser<http::buffer_body>>(std::move(*parser_));
        parser_.reset();
        stream_parser_->body_limit(boost::none);
        if (stream_buffer_.empty())
            stream_buffer_.resize(64 * 1024);
        read_stream_body();
    }

    void read_stream_body() {
        if (closed_ || !consumer_)
            return;
        if (stream_parser_->is_done()) {
            end_stream();
            return;
        }
        const Slot* slot = find_slot(stream_seq_);
        if (slot != nullptr && slot->pending.size() > kMaxStreamBacklog) {
            stream_paused_by_backlog_ = true;
            phase_ = Phase::idle;
            disarm_read_timer();
            return;
        }
        phase_ = Phase::body;
        // Re-arming a timer per 16 KiB TLS record costs more than the record's parsing; the
        // deadline only needs to move once half of it has passed.
        const auto idle = core_.config.limits.idle_timeout;
        if (!stream_timer_armed_ || read_timer_.expiry() - steady_clock::now() < idle / 2) {
            arm_read_timer(idle);
            stream_timer_armed_ = true;
        }
        auto& body = stream_parser_->get().body();
        body.data = stream_buffer_.data();
        body.size = stream_buffer_.size();
        body.more = true;
        // The read holds its own reference to the parser: closing, stopping or refusing the
        // stream drops the session's reference while this read may still be parsing into it.
        http::async_read_some(stream_, buffer_, *stream_parser_,
                              [self = shared_from_this(), parser = stream_parser_](
                                  error_code ec, std::size_t) { self->on_stream_body(ec); });
    }

    void on_stream_body(error_code ec) {
        if (closed_)
            return;
        if (!consumer_) { // the stream was stopped or refused while this read was outstanding
            phase_ = Phase::idle;
            if (pipeline_.empty() && !writing_)
                finish();
            return;
        }
        if (ec == http::error::need_buffer)
            ec = {};
        if (ec) {
            if (!is_disconnect(ec) && ec != http::error::partial_message)
                core_.logging.app().debug("streamed body from {} failed: {}", client_ip_,
                                          ec.message());
            close(); // aborts the consumer
            return;
        }
        const std::size_t n = stream_buffer_.size() - stream_parser_->get().body().size;
        bool more = true;
        if (n > 0)
            more = consumer_->on_body(std::string_view(stream_buffer_.data(), n));
        if (closed_ || !consumer_)
            return;
        if (stream_parser_->is_done()) {
            end_stream();
            return;
        }
        if (!more) {
            stream_paused_by_consumer_ = true;
            phase_ = Phase::idle;
            disarm_read_timer();
            return;
        }
        read_stream_body();
    }

    void maybe_resume_stream() {
        if (consumer_ && phase_ != Phase::body && !stream_paused_by_consumer_ &&
            !stream_paused_by_backlog_)
            read_stream_body();
    }

    void end_stream() {
        discarding_refused_ = false;
        auto consumer = std::move(consumer_);
        stream_parser_.reset();
        stream_paused_by_consumer_ = stream_paused_by_backlog_ = false;
        phase_ = Phase::idle;
        disarm_read_timer();
        consumer->on_end();
        read_next();
    }

    /// Graceful stop while a body streams in: no more body; the route finishes its response.
    void stop_stream() {
        discarding_refused_ = false;
        auto consumer = std::move(consumer_);
        stream_parser_.reset();
        stream_paused_by_consumer_ = stream_paused_by_backlog_ = false;
        // A read still outstanding (phase body) completes later and is ignored; until then
        // phase_ stays `body` so that closing does not start a TLS shutdown beside it.
        disarm_read_timer();
        if (Slot* slot = find_slot(stream_seq_))
            slot->keep_alive = false;
        consumer->on_stop();
    }

    void stream_start(std::uint64_t seq, Response head) {
        Slot* slot = find_slot(seq);
        if (slot == nullptr || !slot->streaming || slot->ready || slot->stream_status != 0)
            return;
        head.version(slot->version);
        if (draining_ || !head.keep_alive())
            slot->keep_alive = false;
        head.keep_alive(slot->keep_alive);
        head.set(http::field::server, std::string("idnode/") + version());
        head.set("X-Request-Id", hex(slot->context.request_id));
        add_common_headers(head.base(), slot->context, core_.config);
        head.body().clear();
        head.chunked(true);
        slot->stream_status = head.result_int();
        std::ostringstream out;
        out << head.base();
        slot->pending += out.str();
        try_write();
    }

    void stream_write(std::uint64_t seq, std::string bytes) {
        Slot* slot = find_slot(seq);
        if (slot == nullptr || slot->stream_status == 0 || slot->stream_done || bytes.empty())
            return;
        slot->pending += hex(bytes.size());
        slot->pending += "\r\n";
        slot->pending += bytes;
        slot->pending += "\r\n";
        slot->stream_bytes += bytes.size();
        try_write();
    }

    void stream_finish(std::uint64_t seq, const RequestContext& context) {
        Slot* slot = find_slot(seq);
        if (slot == nullptr || slot->stream_status == 0 || slot->stream_done)
            return;
        slot->context = context;
        settle_rate(*slot, context);
        slot->pending += "0\r\n\r\n";
        slot->stream_done = true;
        try_write();
    }

    void stream_send(std::uint64_t seq, Response response, const RequestContext& context) {
        Slot* slot = find_slot(seq);
        if (slot == nullptr || !slot->streaming || slot->stream_status != 0)
            return;
        if (consumer_ && stream_seq_ == seq && !discarding_refused_) {
            // refused mid-body: stop reading it, then close
            consumer_.reset();
            stream_parser_.reset();
            disarm_read_timer();
            read_stopped_ = true;
        }
        if (read_stopped_)
            response.keep_alive(false);
        slot->streaming = false;
        RequestContext copy = context;
        complete(seq, std::move(response), std::move(copy));
    }

    void stream_resume(std::uint64_t seq) {
        if (closed_ || !consumer_ || stream_seq_ != seq)
            return;
        stream_paused_by_consumer_ = false;
        maybe_resume_stream();
    }

    void on_stream_write(error_code ec, bool last) {
        writing_ = false;
        write_timer_.cancel();
        if (closed_)
            return;
        if (ec) {
            close();
            return;
        }
        if (last) {
            retire_front();
            return;
        }
        if (stream_paused_by_backlog_) {
            stream_paused_by_backlog_ = false;
            maybe_resume_stream();
        }
        try_write();
    }

    // ---- responses ------------------------------------------------------------------------

    void push_interim(std::string bytes) {
        Slot& slot = pipeline_.emplace_back();
        slot.seq = next_seq_++;
        slot.interim = true;
        slot.ready = true;
        slot.raw = std::move(bytes);
        try_write();
    }

    /// Answers a request the server refuses before routing, then closes the connection.
    void reject_and_close(Refusal refusal, const std::string& message) {
        phase_ = Phase::idle;
        disarm_read_timer();
        read_stopped_ = true;
        if (header_done_ == steady_clock::time_point{})
            header_done_ = steady_clock::now();
        Request request;
        // The body shape follows the path's API family; the request line is parsed before the
        // fields, so an oversize header still has its target (none at all: the native shape).
        const ApiFamily family = parser_ ? api_family(parser_->get().target()) : ApiFamily::native;
        if (parser_ && parser_->is_header_done())
            request = Request(parser_->get().base());
        request.keep_alive(false);
        parser_.reset();
        const std::uint64_t seq = push_slot(request).seq;
        RequestContext context = new_context();
        context.route = "-";
        context.family = family;
        Response response = refusal_response(family, request.version(), false, refusal, message);
        response.keep_alive(false);
        complete(seq, std::move(response), std::move(context));
    }

    void complete(std::uint64_t seq, Response&& response, RequestContext&& context) {
        if (closed_ || seq < front_seq_ || seq - front_seq_ >= pipeline_.size())
            return;
        Slot& slot = pipeline_[seq - front_seq_];
        if (slot.ready)
            return;
        response.version(slot.version);
        if (!response.keep_alive())
            slot.keep_alive = false;
        if (!slot.keep_alive)
            read_stopped_ = true;
        response.keep_alive(slot.keep_alive);
        response.set(http::field::server, std::string("idnode/") + version());
        response.set("X-Request-Id", hex(context.request_id));
        add_common_headers(response.base(), context, core_.config);
        settle_rate(slot, context);
        if (slot.head) {
            const auto size = response.body().size();
            response.body().clear();
            response.content_length(size);
        } else {
            response.prepare_payload();
        }
        slot.response = std::move(response);
        slot.context = std::move(context);
        slot.ready = true;
        try_write();
    }

    void try_write() {
        if (writing_ || closed_ || pipeline_.empty())
            return;
        Slot& slot = pipeline_.front();
        if (slot.streaming && !slot.ready) {
            if (slot.pending.empty())
                return;
            writing_ = true;
            arm_write_timer();
            slot.in_flight = std::move(slot.pending);
            slot.pending.clear();
            const bool last = slot.stream_done;
            asio::async_write(stream_, asio::buffer(slot.in_flight),
                              [self = shared_from_this(), last](error_code ec, std::size_t) {
                                  self->on_stream_write(ec, last);
                              });
            return;
        }
        if (!slot.ready)
            return;
        writing_ = true;
        arm_write_timer();
        auto self = shared_from_this();
        if (slot.interim) {
            asio::async_write(stream_, asio::buffer(slot.raw),
                              [self](error_code ec, std::size_t) { self->on_write(ec); });
            return;
        }
        // While draining, the last response before closing says so.
        if (draining_ && pipeline_.size() == 1 && phase_ != Phase::header &&
            phase_ != Phase::body && slot.keep_alive) {
            slot.keep_alive = false;
            slot.response.keep_alive(false);
        }
        http::async_write(stream_, slot.response,
                          [self](error_code ec, std::size_t) { self->on_write(ec); });
    }

    void on_write(error_code ec) {
        writing_ = false;
        write_timer_.cancel();
        if (closed_)
            return;
        if (ec) {
            close();
            return;
        }
        retire_front();
    }

    /// The front slot's response is written completely: log it and move on.
    void retire_front() {
        Slot done = std::move(pipeline_.front());
        pipeline_.pop_front();
        ++front_seq_;
        if (!done.interim) {
            if (done.streaming)
                core_.record(done.context, done.method, done.path, done.stream_status,
                             done.stream_bytes);
            else
                core_.record(done.context, done.method, done.path, done.response.result_int(),
                             done.head ? 0 : done.response.body().size());
            if (!done.keep_alive) {
                read_stopped_ = true;
                finish();
                return;
            }
        }
        if (pipeline_.empty() && phase_ == Phase::awaiting && served_any_)
            arm_read_timer(core_.config.limits.idle_timeout);
        if (read_paused_) {
            read_paused_ = false;
            read_next();
        } else if (read_stopped_ && pipeline_.empty() &&
                   (phase_ == Phase::idle || phase_ == Phase::awaiting)) {
            finish();
            return;
        }
        try_write();
    }

    // ---- closing --------------------------------------------------------------------------

    /// Ends the connection after the last response: TLS close_notify, then a lingering close
    /// that discards whatever the client still sends (so that unread request bytes cannot turn
    /// our FIN into an RST that destroys the response before the client has read it).
    void finish() {
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

    void linger_raw() {
        if (closed_)
            return;
        phase_ = Phase::lingering;
        error_code ignored;
        stream_.next_layer().shutdown(tcp::socket::shutdown_send, ignored);
        arm_read_timer(draining_ ? kDrainingLingerTimeout : kLingerTimeout);
        discard();
    }

    void discard() {
        stream_.next_layer().async_read_some(
            asio::buffer(discard_buffer_), [self = shared_from_this()](error_code ec, std::size_t) {
                if (ec || self->closed_)
                    self->close();
                else
                    self->discard();
            });
    }

    void close() {
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

    ServerCore& core_;
    std::shared_ptr<ssl::context> tls_; // keeps this connection's certificate alive across reloads
    beast::ssl_stream<tcp::socket> stream_;
    asio::steady_timer read_timer_;
    asio::steady_timer write_timer_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    // The streamed request whose body is being read (at most one at a time).
    // Shared with the outstanding body read (see read_stream_body), never destroyed under it.
    std::shared_ptr<http::request_parser<http::buffer_body>> stream_parser_;
    std::unique_ptr<BodyConsumer> consumer_;
    bool discarding_refused_ = false; // consumer_ is a DiscardBody after a refusal
    std::uint64_t stream_seq_ = 0;
    bool stream_paused_by_consumer_ = false;
    bool stream_paused_by_backlog_ = false;
    bool stream_timer_armed_ = false; // the read timer guards the streamed body
    std::vector<char> stream_buffer_;
    std::deque<Slot> pipeline_;
    std::uint64_t next_seq_ = 0;
    std::uint64_t front_seq_ = 0;
    std::string client_ip_;
    std::string plain_reply_;
    std::array<char, 4096> discard_buffer_{};
    steady_clock::time_point header_done_{};
    std::uint64_t header_bytes_ = 0; // consumed by the parser for the current request header
    bool header_needs_more_ = false; // the parser has seen all buffered bytes of the header
    BodyLimit body_limit_;           // the bound on the current request's body
    Phase phase_ = Phase::handshake;
    bool served_any_ = false; // a request header has been read (the first-request deadline ended)
    bool writing_ = false;
    bool read_paused_ = false;
    bool read_stopped_ = false;
    bool draining_ = false;
    bool closed_ = false;
    // Set once a request header has been read (even a malformed one); read from the accept
    // strand when the connection cap is reached (ServerCore::shed_oldest_unproven).
    std::atomic<bool> proven_{false};
};

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
