// HTTPS responses: the pipeline of slots answered in request order, the common headers, writing
// with keep-alive (or not), and retiring a written response to the access log. See
// https_session.hpp.
#include "https_session.hpp"

#include "idnode/resolver/version.hpp"

#include <boost/asio/write.hpp>
#include <boost/beast/http/write.hpp>

#include <cstdio>

namespace idnode::resolver::detail {

std::string hex(std::uint64_t v) {
    char buffer[17];
    const int n = std::snprintf(buffer, sizeof buffer, "%llx", static_cast<unsigned long long>(v));
    return std::string(buffer, static_cast<std::size_t>(n));
}

void HttpsSession::push_interim(std::string bytes) {
    Slot& slot = pipeline_.emplace_back();
    slot.seq = next_seq_++;
    slot.interim = true;
    slot.ready = true;
    slot.raw = std::move(bytes);
    try_write();
}

void HttpsSession::reject_and_close(Refusal refusal, const std::string& message) {
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
    context.route.assign(1, '-'); // `= "-"` trips GCC 12's -Wrestrict false positive here
    context.family = family;
    Response response = refusal_response(family, request.version(), false, refusal, message);
    response.keep_alive(false);
    complete(seq, std::move(response), std::move(context));
}

void HttpsSession::complete(std::uint64_t seq, Response&& response, RequestContext&& context) {
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

void HttpsSession::try_write() {
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
    if (draining_ && pipeline_.size() == 1 && phase_ != Phase::header && phase_ != Phase::body &&
        slot.keep_alive) {
        slot.keep_alive = false;
        slot.response.keep_alive(false);
    }
    http::async_write(stream_, slot.response,
                      [self](error_code ec, std::size_t) { self->on_write(ec); });
}

bool HttpsSession::write_completed(error_code ec) {
    writing_ = false;
    write_timer_.cancel();
    if (closed_)
        return false;
    if (ec) {
        close();
        return false;
    }
    return true;
}

void HttpsSession::on_write(error_code ec) {
    if (write_completed(ec))
        retire_front();
}

void HttpsSession::retire_front() {
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

} // namespace idnode::resolver::detail
