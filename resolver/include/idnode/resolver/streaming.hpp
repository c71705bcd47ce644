// Streamed requests: the seam for routes whose request body is too large to hold (bulk uploads).
//
// A streaming route (Router::add_streaming) is chosen as soon as the request *header* is read.
// Its StreamHandler gets the header and a StreamChannel and returns a BodyConsumer; the server
// then feeds the body to the consumer piece by piece (any size; limits.max_body_bytes does not
// apply) and the handler writes its response through the channel incrementally (HTTP/1.1
// chunked transfer encoding). The server still owns TLS, I/O, timeouts, pipelining order and the
// access log; the handler never sees a socket, so it can be tested with a channel of its own.
//
// Backpressure: BodyConsumer::on_body returns false to stop reading from the socket until
// StreamChannel::resume() is called. The server also stops reading while more than
// kMaxStreamBacklog bytes of the response wait for the client to read them.
//
// Threading: the consumer's methods run on the connection's executor, one at a time. Channel
// methods are thread-safe; they post onto that executor. Work finishing on another thread (the
// registry writer) should hop back with `post` before touching the consumer's state.
#pragma once

#include "idnode/resolver/http.hpp"

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace idnode::resolver {

/// Response bytes that may wait for a slow client before the server pauses reading the body.
inline constexpr std::size_t kMaxStreamBacklog = 1 << 20;

/// Receives the body of one streamed request. Calls, all on the connection's executor:
/// on_body* then exactly one of on_end, on_stop, on_abort.
class BodyConsumer {
public:
    virtual ~BodyConsumer() = default;
    /// The next piece of the body (valid only during the call). Return false to pause reading
    /// until the channel's resume() is called.
    virtual bool on_body(std::string_view bytes) = 0;
    /// The body ended. The handler finishes its response.
    virtual void on_end() = 0;
    /// The server is stopping gracefully: no more body will be read, but the response can still
    /// be completed (finish it promptly; the connection closes after it).
    virtual void on_stop() = 0;
    /// The connection is gone (client disconnect, timeout, protocol error): output is discarded.
    virtual void on_abort() = 0;
};

/// The response side of a streamed request. Implemented by the server (and by tests).
/// Every method is thread-safe. After the connection has closed, output calls are ignored.
class StreamChannel {
public:
    virtual ~StreamChannel() = default;
    /// Sends status and headers; the body follows in chunks. Call once, before write().
    virtual void start(Response head) = 0;
    /// Appends bytes to the response body.
    virtual void write(std::string bytes) = 0;
    /// Ends the response body.
    virtual void finish() = 0;
    /// Instead of start/write/finish: one complete response, e.g. refusing the request before
    /// its body is read (the connection then closes after this response).
    virtual void send(Response response) = 0;
    /// Resumes reading the body after on_body returned false.
    virtual void resume() = 0;
    /// Runs `fn` on the connection's executor, even if the connection has closed.
    virtual void post(std::function<void()> fn) = 0;
    /// The request's context (set `account` for the access log). Access it only from the
    /// connection's executor.
    virtual RequestContext& context() = 0;
};

/// Called on the connection's executor once the header of a request on a streaming route is
/// read. Returns the consumer of the body, or nullptr after answering with channel->send().
using StreamHandler = std::function<std::unique_ptr<BodyConsumer>(
    const Request& header, const std::shared_ptr<StreamChannel>& channel)>;

/// What the server asks after reading a header: the streaming handler for this request (setting
/// context.route and context.params), or nullptr when the request is read whole as usual.
using StreamDispatch =
    std::function<const StreamHandler*(const Request& header, RequestContext& context)>;

} // namespace idnode::resolver
