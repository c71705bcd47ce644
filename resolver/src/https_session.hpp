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
//
// The session's members live in four files by concern: https_session.cpp (the connection's
// life: TLS detection and handshake, timers, closing), https_request.cpp (reading requests,
// framing and body limits, the per-IP rate decision, dispatch), https_stream.cpp (streamed
// requests and chunked responses) and https_response.cpp (the pipeline of responses, writing,
// keep-alive).
#pragma once

#include "server_core.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace idnode::resolver::detail {

namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using std::chrono::steady_clock;

/// A read or write error that only says the peer went away (or the session closed the socket):
/// not worth a log line.
bool is_disconnect(const error_code& ec);

/// `v` in lower-case hexadecimal (chunk sizes, request ids).
std::string hex(std::uint64_t v);

class HttpsSession : public std::enable_shared_from_this<HttpsSession> {
public:
    HttpsSession(ServerCore& core, tcp::socket socket);
    ~HttpsSession();
    void start();

    /// Thread-safe: asks the session, on its strand, to finish in-flight requests and close.
    void post_drain();

    /// Thread-safe: whether no complete request header has arrived yet.
    bool unproven() const noexcept { return !proven_.load(std::memory_order_relaxed); }

    /// Thread-safe: closes the connection (on its strand) if it is still unproven then.
    void post_shed();

private:
    void drain();

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

    /// The StreamChannel of one streamed request (https_stream.cpp).
    class Channel;

    // ---- timers ---------------------------------------------------------------------------

    void arm_read_timer(std::chrono::steady_clock::duration d);
    void disarm_read_timer();
    void on_read_timer();
    void arm_write_timer();

    // ---- TLS ------------------------------------------------------------------------------

    void detect();
    void on_detect(error_code ec, bool is_tls);

    /// Someone spoke plain HTTP (or anything else) to the TLS port: answer in plain text so that
    /// a confused client sees why, then close.
    void reject_plain_http();
    void on_handshake(error_code ec, std::size_t used);

    // ---- reading requests -------------------------------------------------------------------

    void read_next();
    /// Reads what has arrived into buffer_, then calls `then` unless the session has closed.
    void read_some(void (HttpsSession::*then)(error_code));
    void on_first_bytes(error_code ec);
    void read_header();
    void read_header_some();
    void on_header_bytes(error_code ec);
    void parse_header_bytes();

    /// `why` (with an error) replaces the parser's wording in the 400.
    void on_header(error_code ec, const char* why = nullptr);
    void on_body(error_code ec);

    /// 413 for a body over `body_limit_`, naming the bound and where it comes from.
    void reject_body_too_large();
    RequestContext new_context();
    Slot& push_slot(const Request& request);

    /// The per-IP rate decision for a request (see the top of this file).
    RateLimiter::Decision admit(const Request& request, Slot& slot);

    std::string credentials_key() const { return client_ip_ + " credentials"; }

    /// A request admitted on its credentials that turned out anonymous costs its address a token.
    void settle_rate(Slot& slot, const RequestContext& context);
    void on_request();

    // ---- streamed requests ------------------------------------------------------------------

    Slot* find_slot(std::uint64_t seq);
    void start_stream(const StreamHandler& handler, RequestContext context);
    void read_stream_body();
    void on_stream_body(error_code ec);
    void maybe_resume_stream();
    /// Lets go of the streamed body (its consumer is returned, for a last call) and its state.
    std::unique_ptr<BodyConsumer> release_stream();
    void end_stream();

    /// Graceful stop while a body streams in: no more body; the route finishes its response.
    void stop_stream();
    void stream_start(std::uint64_t seq, Response head);
    void stream_write(std::uint64_t seq, std::string bytes);
    void stream_finish(std::uint64_t seq, const RequestContext& context);
    void stream_send(std::uint64_t seq, Response response, const RequestContext& context);
    void stream_resume(std::uint64_t seq);
    void on_stream_write(error_code ec, bool last);

    // ---- responses ------------------------------------------------------------------------

    void push_interim(std::string bytes);

    /// Answers a request the server refuses before routing, then closes the connection.
    void reject_and_close(Refusal refusal, const std::string& message);
    void complete(std::uint64_t seq, Response&& response, RequestContext&& context);
    void try_write();
    /// The bookkeeping of a completed write; false when the session is, or now is, closed.
    bool write_completed(error_code ec);
    void on_write(error_code ec);

    /// The front slot's response is written completely: log it and move on.
    void retire_front();

    // ---- closing --------------------------------------------------------------------------

    /// Ends the connection after the last response: TLS close_notify, then a lingering close
    /// that discards whatever the client still sends (so that unread request bytes cannot turn
    /// our FIN into an RST that destroys the response before the client has read it).
    void finish();
    void linger_raw();
    void discard();
    void close();

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

} // namespace idnode::resolver::detail
