// The Handle protocol server (docs/handle-protocol.md#udp, #tcp): TCP and UDP listeners on one
// port that answer requests with the pure responder (handle_responder.hpp) over the registry.
//
// Transports
// - UDP: one datagram per request, one reply per request. Datagrams are read and written in
//   batches (recvmmsg/sendmmsg, up to `udp_batch` per system call). A reply larger than the
//   policy's datagram (512 bytes) is sent as every fragment of an RFC 3652 multi-datagram message
//   (udp_datagrams()), as HANDLE.NET sends it; one that would take more than
//   `udp_policy.max_reply_bytes` is answered RC 2 "ask over TCP" instead, so a forged request is
//   amplified at most to that many bytes.
// - TCP: a connection carries any number of requests, answered in order, until the client closes
//   it, the idle timeout passes without traffic, or the responder asks to close (a declared length
//   over 256 KiB: RC 4, then close). Requests may be pipelined: everything readable is framed
//   (probe_frame), answered in order, and the replies are written with one write.
//
// Limits
// - Connection cap: a connection accepted while `max_connections` are open is closed at once.
// - Idle timeout: a connection that neither reads nor completes a write for `idle_timeout` is
//   closed. A client that stops reading its replies is closed by the same rule.
// - Per-IP rate limit (token bucket; `rate_per_ip` requests/s, bursts up to `rate_burst`): over
//   TCP a request over the limit is answered RC 3 (SERVER_TOO_BUSY) "rate limit exceeded" and the
//   connection is kept, the peer's address being proven by the handshake. Over UDP it is dropped
//   without an answer: a UDP source can be forged, and answering would let anyone aim our replies
//   at a victim; the Handle client's fallback after an unanswered UDP request is TCP, where it
//   then learns RC 3. Both are counted in stats().rate_limited.
//
// Homed prefixes: a prefix is homed (served here) if it equals one of `homed_prefixes` or lies
// under one (registry::prefix_is_under: `88.118.8` is under `88.118`). Others get RC 301.
//
// Threads: the server runs on the io_context it is given; the io_context may be run by any number
// of threads (every socket has its own strand). The registry is read with one snapshot per batch
// of requests (a UDP batch, or what one TCP read delivered); snapshots never cross an async wait.
// start(), stop() and stats() may be called from any thread.
//
// Lifetime: the Registry and the io_context must outlive the server and every handler it queued:
// stop() the server, let io_context::run() return (or join its threads), then destroy the server,
// the io_context and the Registry, in that order.
#pragma once

#include "idnode/resolver/handle_protocol.hpp"
#include "idnode/resolver/handle_responder.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace idnode::registry {
class Registry;
}

namespace idnode::node {
class Resolutions;
class Authenticator;
class AccountRateLimit;
} // namespace idnode::node

namespace idnode::resolver::handle {

struct HandleServerOptions {
    /// IP address to bind, IPv4 or IPv6 ("127.0.0.1", "0.0.0.0", "::1", "::").
    std::string address = "127.0.0.1";
    /// TCP and UDP port (the same number for both). 0 = an ephemeral port, the same for TCP and
    /// UDP; read it back with HandleServer::tcp_port() / udp_port() after start().
    std::uint16_t port = 2641;
    bool enable_tcp = true;
    bool enable_udp = true;

    /// Site information and handle limits for the responder. Interfaces of the site's servers
    /// whose port is 0 are given the bound TCP / UDP port at start() (useful with port 0).
    ResponderConfig responder;
    /// Prefixes this node homes ("88.118"; folded to upper case by the server). A prefix is homed
    /// if it equals one of these or lies under one (see the file comment).
    std::vector<std::string> homed_prefixes;

    /// UDP reply sizing: 512-byte datagrams, at most handle.udp_max_reply_bytes per request.
    UdpReplyPolicy udp_policy{};
    /// SO_RCVBUF / SO_SNDBUF of the UDP socket in bytes (0 = leave the system default; the kernel
    /// may cap the value at net.core.rmem_max / wmem_max).
    std::size_t udp_receive_buffer = 4u << 20;
    std::size_t udp_send_buffer = 4u << 20;
    /// Datagrams read (and replies written) per system call; 1..1024.
    std::size_t udp_batch = 64;

    /// A TCP connection idle this long is closed (limits.idle_timeout_s, default 60 s,
    /// docs/configuration.md#limits); 0 = never.
    std::chrono::milliseconds idle_timeout{60'000};
    /// At most this many TCP connections at once (limits.max_connections); 0 = no limit.
    std::size_t max_connections = 10'000;
    /// Requests per second per client IP address, TCP and UDP together; 0 = no limit
    /// (limits.rate_per_ip). `rate_burst` is the bucket size (0 = the same as rate_per_ip).
    std::uint32_t rate_per_ip = 0;
    std::uint32_t rate_burst = 0;
    /// At most this many client addresses are tracked by the rate limiter; past it, buckets that
    /// have refilled are forgotten, and if all are in use the table is cleared (fail open).
    std::size_t rate_table_size = 65'536;

    /// Unix time in seconds for response expirations; empty = the system clock. (Tests.)
    std::function<std::uint32_t()> clock;
    /// Randomness for challenge nonces and session ids; empty = secure_random_fill.
    RandomFill random;
    /// Where answered resolutions are counted: the node's resolutions_today, the counter the
    /// HTTPS API counts its resolutions in (NodeApi::resolutions()). A RESOLUTION counts when its
    /// handle is valid and homed, found or not, like a Handle REST GET; refused ones (malformed,
    /// invalid, not homed, over the rate limit) do not. nullptr = not counted. Must outlive the
    /// server.
    node::Resolutions* resolutions = nullptr;

    /// Administration over TCP (docs/handle-protocol.md#administration): identities answer
    /// challenges, proofs count as logins in this authenticator (its failed-login throttle), and
    /// writes draw on `account_rate`. nullptr = administrative opcodes are answered RC 5 as
    /// before. Both must outlive the server.
    node::Authenticator* authenticator = nullptr;
    node::AccountRateLimit* account_rate = nullptr;
    /// limits.max_body_bytes: the largest record a CREATE/ADD/MODIFY may carry.
    std::size_t max_record_bytes = 64 * 1024;
    /// handle.allow_password_login: the IDIS password LOGIN (opcode 2000), whose password
    /// crosses the network in clear. Off = refused (RC 5) with a message.
    bool allow_password_login = false;
    /// One line per authentication event of the administration (a refused proof: warning; a
    /// login: not), naming the identity, the client address and the reason - never a secret or a
    /// proof. Empty = not logged. Called on the server's threads; must be thread-safe.
    std::function<void(bool warning, const std::string& line)> log;
};

/// Counters since start(), for the ops endpoint (Prometheus). All monotonic except the gauges
/// noted.
struct HandleServerStats {
    struct CodeCount {
        std::uint32_t code = 0;
        std::uint64_t count = 0;
    };
    /// Requests answered or dropped, by the request's opcode (0 = unreadable), ascending, zeros
    /// left out. Requests refused by the rate limit over TCP are counted here too; UDP datagrams
    /// dropped by it are not (they are not read).
    std::vector<CodeCount> requests_by_opcode;
    /// Responses sent, by response code, ascending, zeros left out.
    std::vector<CodeCount> responses_by_rc;

    std::uint64_t udp_requests = 0;       // datagrams received
    std::uint64_t udp_datagrams_sent = 0; // reply datagrams sent
    std::uint64_t udp_fragmented = 0;     // replies sent as several datagrams
    std::uint64_t udp_too_large = 0;      // replies over udp_max_reply_bytes, answered RC 2
    std::uint64_t udp_send_errors = 0;    // replies the kernel refused
    std::uint64_t udp_batches = 0;        // recvmmsg calls that returned datagrams
    std::uint64_t tcp_requests = 0;       // frames received (oversize ones included)
    std::uint64_t tcp_batches = 0;        // reads that completed at least one frame
    std::uint64_t dropped = 0;            // requests not answered (too short, or responses)
    std::uint64_t malformed = 0;          // requests answered RC 4 (or dropped as unreadable)
    std::uint64_t rate_limited = 0;       // requests refused by the per-IP limit (TCP + UDP)
    std::uint64_t rate_limited_udp = 0;   // ... of which dropped UDP datagrams
    std::uint64_t internal_errors = 0;    // requests not answered for lack of memory or a read
                                          // transaction (a TCP connection is then closed)

    std::uint64_t tcp_connections_open = 0; // gauge
    std::uint64_t tcp_connections_accepted = 0;
    std::uint64_t tcp_connections_rejected = 0; // over max_connections
    std::uint64_t tcp_idle_closed = 0;
    std::uint64_t tcp_protocol_closed = 0; // closed after a reply_and_close answer

    /// Server-side latency of each answered request: from the moment the batch holding it was
    /// read to the moment its reply was handed to the kernel. Upper bounds in seconds of the
    /// Prometheus histogram buckets (the last, +Inf, is implicit) and cumulative counts per bucket
    /// (latency_counts.size() == latency_bounds.size() + 1; the last is the total).
    std::vector<double> latency_bounds;
    std::vector<std::uint64_t> latency_counts;
    double latency_sum_seconds = 0;
};

class HandleServer {
public:
    /// Nothing is bound until start(). `registry` and `io` must outlive the server (see above).
    HandleServer(boost::asio::io_context& io, registry::Registry& registry,
                 HandleServerOptions options);
    ~HandleServer();
    HandleServer(const HandleServer&) = delete;
    HandleServer& operator=(const HandleServer&) = delete;

    /// Binds the TCP and UDP sockets and starts serving on the io_context. Throws
    /// std::system_error naming the address if binding fails. Call once.
    void start();

    /// Graceful stop: stops accepting, closes the UDP socket and every TCP connection (a reply
    /// being written is finished first). Returns at once; the work is done by the io_context's
    /// threads. Idempotent.
    void stop();

    /// The bound ports (0 before start() or for a disabled transport).
    std::uint16_t tcp_port() const noexcept;
    std::uint16_t udp_port() const noexcept;

    HandleServerStats stats() const;

    /// The configuration in force (site interfaces with the bound ports filled in after start()).
    const ResponderConfig& responder_config() const noexcept;

    class Impl;

private:
    std::shared_ptr<Impl> impl_;
};

} // namespace idnode::resolver::handle
