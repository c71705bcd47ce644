// Streamed HTTPS requests (streaming.hpp): the body handed to the route's BodyConsumer piece by
// piece with backpressure, the route's output sent with chunked transfer encoding from the
// request's slot. See https_session.hpp.
#include "https_session.hpp"

#include "idnode/resolver/version.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <spdlog/logger.h>

#include <sstream>

namespace idnode::resolver::detail {

namespace {

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

/// The StreamChannel of one streamed request: posts every call onto the session's strand.
/// It keeps the session alive (a paused body has no operation outstanding that would); the
/// cycle session -> consumer -> channel ends when the session lets go of the consumer
/// (body ended, stopped, or connection closed).
class HttpsSession::Channel : public StreamChannel, public std::enable_shared_from_this<Channel> {
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

HttpsSession::Slot* HttpsSession::find_slot(std::uint64_t seq) {
    if (closed_ || seq < front_seq_ || seq - front_seq_ >= pipeline_.size())
        return nullptr;
    return &pipeline_[seq - front_seq_];
}

void HttpsSession::start_stream(const StreamHandler& handler, RequestContext context) {
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
    stream_parser_ = std::make_shared<http::request_parser<http::buffer_body>>(std::move(*parser_));
    parser_.reset();
    stream_parser_->body_limit(boost::none);
    if (stream_buffer_.empty())
        stream_buffer_.resize(64 * 1024);
    read_stream_body();
}

void HttpsSession::read_stream_body() {
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

void HttpsSession::on_stream_body(error_code ec) {
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
            core_.logging.app().debug("streamed body from {} failed: {}", client_ip_, ec.message());
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

void HttpsSession::maybe_resume_stream() {
    if (consumer_ && phase_ != Phase::body && !stream_paused_by_consumer_ &&
        !stream_paused_by_backlog_)
        read_stream_body();
}

std::unique_ptr<BodyConsumer> HttpsSession::release_stream() {
    discarding_refused_ = false;
    auto consumer = std::move(consumer_);
    stream_parser_.reset();
    stream_paused_by_consumer_ = stream_paused_by_backlog_ = false;
    return consumer;
}

void HttpsSession::end_stream() {
    auto consumer = release_stream();
    phase_ = Phase::idle;
    disarm_read_timer();
    consumer->on_end();
    read_next();
}

void HttpsSession::stop_stream() {
    auto consumer = release_stream();
    // A read still outstanding (phase body) completes later and is ignored; until then
    // phase_ stays `body` so that closing does not start a TLS shutdown beside it.
    disarm_read_timer();
    if (Slot* slot = find_slot(stream_seq_))
        slot->keep_alive = false;
    consumer->on_stop();
}

void HttpsSession::stream_start(std::uint64_t seq, Response head) {
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

void HttpsSession::stream_write(std::uint64_t seq, std::string bytes) {
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

void HttpsSession::stream_finish(std::uint64_t seq, const RequestContext& context) {
    Slot* slot = find_slot(seq);
    if (slot == nullptr || slot->stream_status == 0 || slot->stream_done)
        return;
    slot->context = context;
    settle_rate(*slot, context);
    slot->pending += "0\r\n\r\n";
    slot->stream_done = true;
    try_write();
}

void HttpsSession::stream_send(std::uint64_t seq, Response response,
                               const RequestContext& context) {
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

void HttpsSession::stream_resume(std::uint64_t seq) {
    if (closed_ || !consumer_ || stream_seq_ != seq)
        return;
    stream_paused_by_consumer_ = false;
    maybe_resume_stream();
}

void HttpsSession::on_stream_write(error_code ec, bool last) {
    if (!write_completed(ec))
        return;
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

} // namespace idnode::resolver::detail
