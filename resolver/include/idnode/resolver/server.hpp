// The node's network front: the HTTPS listener (API) and the plain-HTTP ops listener
// (/healthz, /readyz, /metrics) on `https.threads` threads, one io_context per thread: HTTPS
// connections are spread round robin over them (a connection's handlers need no strand); the
// acceptors, signals, ops sessions and io_context() live on the first.
//
// Behaviour (details in docs at the top of resolver/src/https_session.cpp):
// - TLS 1.2/1.3 only, AEAD ciphers only; certificate chain and key from https.cert/https.key.
// - HTTP/1.1 keep-alive; pipelined requests are answered in order.
// - limits.max_header_bytes -> 431, limits.max_body_bytes (or the larger bound a route declares,
//   set_body_limit_lookup) -> 413 (JSON error, then close);
//   limits.header_timeout_s / idle_timeout_s close slow or idle connections;
//   limits.rate_per_ip -> 429 with Retry-After (0 = off), for anonymous requests (requests with
//   credentials count per account, see https_session.cpp).
// - limits.max_connections: connections beyond the cap are ACCEPTED AND CLOSED IMMEDIATELY
//   (the client sees the connection end during its TLS handshake; counted in
//   idnode_connections_rejected_total{reason="max_connections"}). Leaving them in the kernel
//   backlog instead would make clients hang without an answer.
// - Plain HTTP sent to the HTTPS port gets a plain-text 400 JSON answer and is closed.
// - A request without exactly one valid Host field (none is fine for HTTP/1.0) gets 400 on both
//   listeners. HTTPS responses carry HSTS (https.hsts_max_age_s), "Authorization" in Vary, and
//   "Cache-Control: private, no-store" when the caller authenticated (server_core.hpp).
// - Signals (installed by `run`): SIGTERM/SIGINT stop gracefully: /readyz turns 503, the HTTPS
//   listener closes, idle connections close, in-flight requests are answered (their responses
//   carry "Connection: close"), then `run` returns. A second SIGTERM/SIGINT, or 10 s of draining,
//   closes whatever is left. SIGHUP reloads https.cert/https.key: new handshakes use the new
//   certificate, existing connections keep theirs; a bad file is logged and the old one stays.
//
// Errors: the constructor throws `StartupError` with a one-line reason (certificate unreadable,
// address in use, ...). Nothing after construction throws to the caller.
// Thread safety: `request_stop` and `reload_certificate` may be called from any thread; the rest
// from the owning thread.
#pragma once

#include "idnode/resolver/config.hpp"
#include "idnode/resolver/http.hpp"
#include "idnode/resolver/streaming.hpp"

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

namespace boost::asio {
class io_context;
}

namespace idnode::resolver {

class Logging;
class MetricsRegistry;

/// A failure to start the server; what() is the reason for the operator.
class StartupError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Loads https.cert/https.key exactly as the server would, without binding anything.
/// Throws StartupError with the reason (used by `idnode --check-config`).
void check_tls_files(const NodeConfig& config);

class Server {
public:
    /// Loads the certificate and binds both listeners (ports 0 become ephemeral ports).
    /// `dispatch` (usually `router.as_dispatch()`), `metrics` and `logging` must outlive the
    /// Server. Registers the server's metrics in `metrics` (once per registry).
    Server(const NodeConfig& config, Dispatch dispatch, MetricsRegistry& metrics, Logging& logging);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    /// Enables streamed request bodies (streaming.hpp), usually `router.as_stream_dispatch()`.
    /// Call before run(); must outlive the Server.
    void set_stream_dispatch(StreamDispatch dispatch);

    /// Lets routes widen limits.max_body_bytes for their own bodies (Router::body_limit, usually
    /// `router.as_body_limit_lookup()`), asked before a body is read. Call before run(); must
    /// outlive the Server. Without it every body has limits.max_body_bytes.
    void set_body_limit_lookup(BodyLimitLookup lookup);

    /// The addresses actually bound.
    HostPort https_endpoint() const;
    HostPort ops_endpoint() const;

    /// Serves on config.effective_threads() threads (the calling thread is one of them) until a
    /// graceful stop completes. Installs the signal handlers described above. Call once.
    void run();

    /// Starts a graceful stop, as SIGTERM does.
    void request_stop();

    /// Reloads the certificate, as SIGHUP does. Returns false (and logs why) if the new files
    /// cannot be used; the current certificate then stays in service.
    bool reload_certificate();

    /// The first I/O thread's io_context (for other listeners, such as the Handle protocol
    /// server; run by that one thread only). Valid for the Server's lifetime.
    boost::asio::io_context& io_context() noexcept;

    /// Registers `hook` to run (on an I/O thread) when a graceful stop begins, before the drain:
    /// other listeners on io_context() stop accepting there. Call before run().
    void on_stop(std::function<void()> hook);

    /// Adds a condition to /readyz: `reason` is asked on every probe (on the ops thread; keep it
    /// cheap) and returns "" when ready, otherwise why not (/readyz then answers 503
    /// "not ready: <reason>"). Call before run().
    void add_readiness_check(std::function<std::string()> reason);

private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace idnode::resolver
