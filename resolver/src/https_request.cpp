// Reading HTTPS requests: the header read in bounded steps (size, obs-fold, ambiguous framing),
// the body limit of the route, 100-continue, the per-IP rate decision, and dispatch to the
// router. See https_session.hpp.
#include "https_session.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/read.hpp>

#include <spdlog/logger.h>

#include <cmath>

namespace idnode::resolver::detail {

namespace {

constexpr std::size_t kFirstReadSize = 4096;

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

} // namespace

void HttpsSession::read_next() {
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
    read_some(&HttpsSession::on_first_bytes);
}

void HttpsSession::read_some(void (HttpsSession::*then)(error_code)) {
    stream_.async_read_some(buffer_.prepare(kFirstReadSize),
                            [self = shared_from_this(), then](error_code ec, std::size_t n) {
                                self->buffer_.commit(n);
                                if (!self->closed_)
                                    ((*self).*then)(ec);
                            });
}

void HttpsSession::on_first_bytes(error_code ec) {
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

void HttpsSession::read_header() {
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
void HttpsSession::read_header_some() {
    if (buffer_.size() > 0 && !header_needs_more_) {
        parse_header_bytes();
        return;
    }
    read_some(&HttpsSession::on_header_bytes);
}

void HttpsSession::on_header_bytes(error_code ec) {
    if (ec) {
        on_header(ec); // a disconnect closes quietly; the rest is answered 400
        return;
    }
    parse_header_bytes();
}

void HttpsSession::parse_header_bytes() {
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

void HttpsSession::on_header(error_code ec, const char* why) {
    if (closed_)
        return;
    served_any_ = true; // from now on the first-request deadline no longer applies
    proven_.store(true, std::memory_order_relaxed); // no longer shed at the connection cap
    if (ec == http::error::body_limit) {            // Content-Length already says it is too large
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

void HttpsSession::on_body(error_code ec) {
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

void HttpsSession::reject_body_too_large() {
    const std::string bound = std::to_string(body_limit_.max_bytes) + " bytes";
    reject_and_close(Refusal::body_too_large,
                     body_limit_.route.empty()
                         ? "the request body exceeds " + bound + " (limits.max_body_bytes)"
                         : "the request body exceeds " + bound + ", the limit of " +
                               std::string(parser_->get().method_string()) + " " +
                               std::string(body_limit_.route));
}

RequestContext HttpsSession::new_context() {
    RequestContext context;
    context.client_ip = client_ip_;
    context.tls = true;
    context.ip_limiter = &core_.ip_limiter;
    context.request_id = core_.next_request_id.fetch_add(1, std::memory_order_relaxed);
    context.received = header_done_;
    return context;
}

HttpsSession::Slot& HttpsSession::push_slot(const Request& request) {
    Slot& slot = pipeline_.emplace_back();
    slot.seq = next_seq_++;
    slot.head = request.method() == http::verb::head;
    slot.keep_alive = request.keep_alive() && !draining_;
    slot.version = request.version();
    slot.method = std::string(request.method_string());
    slot.path = std::string(target_path(request.target()));
    return slot;
}

RateLimiter::Decision HttpsSession::admit(const Request& request, Slot& slot) {
    if (request[http::field::authorization].empty())
        return core_.ip_limiter.acquire(client_ip_);
    if (!core_.ip_limiter.would_admit(credentials_key()))
        return {false, std::chrono::seconds(1)};
    slot.ip_deferred = true;
    return {};
}

void HttpsSession::settle_rate(Slot& slot, const RequestContext& context) {
    if (slot.ip_deferred && context.account.empty())
        core_.ip_limiter.spend(credentials_key(), 1);
    slot.ip_deferred = false;
}

void HttpsSession::on_request() {
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

} // namespace idnode::resolver::detail
