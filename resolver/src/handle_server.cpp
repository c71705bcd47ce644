// The Handle protocol server: UDP and TCP front ends over the pure responder. See
// handle_server.hpp for the contract; this file is the only one that sees Asio for it.
#include "idnode/resolver/handle_server.hpp"

#include "idnode/registry/identifier.hpp"
#include "idnode/registry/registry.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <unordered_map>
#include <utility>

namespace idnode::resolver::handle {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using udp = asio::ip::udp;
using SteadyClock = std::chrono::steady_clock;

bool prefix_is_homed(std::string_view prefix_key, const std::vector<std::string>& homed) noexcept {
    for (const auto& parent : homed) {
        if (registry::prefix_is_under(prefix_key, parent)) {
            return true;
        }
    }
    return false;
}

namespace {

// ---- Statistics --------------------------------------------------------------------------------

/// Opcodes counted one by one; every other value a client may send is counted as kOtherCode, so
/// the metric's label set stays bounded whatever arrives.
constexpr std::uint32_t kOtherCode = 0xFFFF'FFFF;
constexpr std::array<std::uint32_t, 18> kKnownOpcodes = {
    opcode::kReserved,     opcode::kResolution,        opcode::kGetSiteInfo,
    opcode::kCreateHandle, opcode::kDeleteHandle,      opcode::kAddValue,
    opcode::kRemoveValue,  opcode::kModifyValue,       opcode::kListHandles,
    opcode::kListPrefixes, opcode::kChallengeResponse, opcode::kVerifyResponse,
    opcode::kHomePrefix,   opcode::kUnhomePrefix,      opcode::kListHomedPrefixes,
    opcode::kSessionSetup, opcode::kSessionTerminate,  kOtherCode};

std::size_t opcode_slot(std::uint32_t code) noexcept {
    for (std::size_t i = 0; i + 1 < kKnownOpcodes.size(); ++i) {
        if (kKnownOpcodes[i] == code) {
            return i;
        }
    }
    return kKnownOpcodes.size() - 1;
}

/// Response codes are ours (all below 512).
constexpr std::size_t kRcSlots = 512;

/// Latency histogram bounds, microseconds.
constexpr std::array<std::uint32_t, 15> kLatencyBoundsUs = {
    10,    25,     50,     100,    250,     500,     1'000,    2'500,
    5'000, 10'000, 25'000, 50'000, 100'000, 250'000, 1'000'000};

struct Counters {
    using Counter = std::atomic<std::uint64_t>;
    std::array<Counter, kKnownOpcodes.size()> by_opcode{};
    std::array<Counter, kRcSlots> by_rc{};
    std::array<Counter, kLatencyBoundsUs.size() + 1> latency{}; // non-cumulative here
    Counter latency_sum_ns{0};
    Counter udp_requests{0}, udp_batches{0}, udp_datagrams_sent{0}, udp_truncated{0},
        udp_send_errors{0};
    Counter tcp_requests{0}, tcp_batches{0}, dropped{0}, malformed{0}, rate_limited{0},
        rate_limited_udp{0}, internal_errors{0};
    Counter tcp_open{0}, tcp_accepted{0}, tcp_rejected{0}, tcp_idle_closed{0},
        tcp_protocol_closed{0};

    static void add(Counter& c, std::uint64_t n = 1) noexcept {
        c.fetch_add(n, std::memory_order_relaxed);
    }

    void record(const Answer& a) noexcept {
        add(by_opcode[opcode_slot(a.opcode)]);
        if (a.disposition == Disposition::drop) {
            add(dropped);
        } else {
            add(by_rc[std::min<std::size_t>(a.response_code, kRcSlots - 1)]);
        }
        if (a.malformed) {
            add(malformed);
        }
    }

    /// `requests` answered in one batch that took `elapsed`.
    void record_latency(std::size_t requests, SteadyClock::duration elapsed) noexcept {
        if (requests == 0) {
            return;
        }
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count();
        const auto us = static_cast<std::uint64_t>(ns < 0 ? 0 : ns) / 1000;
        std::size_t bucket = 0;
        while (bucket < kLatencyBoundsUs.size() && us > kLatencyBoundsUs[bucket]) {
            ++bucket;
        }
        add(latency[bucket], requests);
        add(latency_sum_ns, static_cast<std::uint64_t>(ns < 0 ? 0 : ns) * requests);
    }
};

// ---- Per-IP rate limit -------------------------------------------------------------------------

/// A client address as 16 bytes (IPv4 as ::ffff:a.b.c.d).
using IpKey = std::array<std::uint8_t, 16>;

struct IpKeyHash {
    std::size_t operator()(const IpKey& k) const noexcept {
        std::uint64_t a = 0, b = 0;
        std::memcpy(&a, k.data(), 8);
        std::memcpy(&b, k.data() + 8, 8);
        // splitmix-style mixing; the table is bounded, so a weak hash only costs speed.
        std::uint64_t h = a * 0x9E37'79B9'7F4A'7C15ull ^ (b + 0xBF58'476D'1CE4'E5B9ull);
        h ^= h >> 31;
        h *= 0x94D0'49BB'1331'11EBull;
        h ^= h >> 29;
        return static_cast<std::size_t>(h);
    }
};

IpKey ip_key(const sockaddr_storage& sa) noexcept {
    IpKey key{};
    if (sa.ss_family == AF_INET) {
        const auto& in = reinterpret_cast<const sockaddr_in&>(sa);
        key[10] = 0xFF;
        key[11] = 0xFF;
        std::memcpy(key.data() + 12, &in.sin_addr, 4);
    } else if (sa.ss_family == AF_INET6) {
        const auto& in6 = reinterpret_cast<const sockaddr_in6&>(sa);
        std::memcpy(key.data(), &in6.sin6_addr, 16);
    }
    return key;
}

IpKey ip_key(const asio::ip::address& address) noexcept {
    IpKey key{};
    if (address.is_v4()) {
        const auto bytes = address.to_v4().to_bytes();
        key[10] = 0xFF;
        key[11] = 0xFF;
        std::copy(bytes.begin(), bytes.end(), key.begin() + 12);
    } else {
        const auto bytes = address.to_v6().to_bytes();
        std::copy(bytes.begin(), bytes.end(), key.begin());
    }
    return key;
}

/// Token buckets per client address: `rate` tokens per second, at most `burst`, one per request.
class RateLimiter {
public:
    RateLimiter(std::uint32_t rate, std::uint32_t burst, std::size_t table_size)
        : rate_per_ns_(static_cast<double>(rate) / 1e9),
          burst_(static_cast<double>(burst == 0 ? rate : burst)),
          refill_ns_(static_cast<std::int64_t>(burst_ / static_cast<double>(rate) * 1e9) + 1),
          table_size_(std::max<std::size_t>(table_size, 16)) {}

    bool allow(const IpKey& ip, std::int64_t now_ns) {
        std::lock_guard lock(mutex_);
        auto it = table_.find(ip);
        if (it == table_.end()) {
            if (table_.size() >= table_size_) {
                evict(now_ns);
            }
            table_.emplace(ip, Bucket{burst_ - 1.0, now_ns});
            return true;
        }
        Bucket& b = it->second;
        const auto elapsed = static_cast<double>(std::max<std::int64_t>(now_ns - b.last_ns, 0));
        b.tokens = std::min(burst_, b.tokens + elapsed * rate_per_ns_);
        b.last_ns = now_ns;
        if (b.tokens >= 1.0) {
            b.tokens -= 1.0;
            return true;
        }
        return false;
    }

private:
    struct Bucket {
        double tokens;
        std::int64_t last_ns;
    };

    /// Forgets buckets that have refilled (they would start full anyway); if none has, forgets
    /// all: a flood of distinct addresses must not exhaust memory, and failing open is the lesser
    /// harm.
    void evict(std::int64_t now_ns) {
        for (auto it = table_.begin(); it != table_.end();) {
            it = now_ns - it->second.last_ns >= refill_ns_ ? table_.erase(it) : std::next(it);
        }
        if (table_.size() >= table_size_) {
            table_.clear();
        }
    }

    std::mutex mutex_;
    double rate_per_ns_;
    double burst_;
    std::int64_t refill_ns_;
    std::size_t table_size_;
    std::unordered_map<IpKey, Bucket, IpKeyHash> table_;
};

std::int64_t steady_ns(SteadyClock::time_point t) noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

constexpr std::string_view kRateLimitedMessage = "rate limit exceeded; slow down";

} // namespace

// ---- The server --------------------------------------------------------------------------------

class HandleServer::Impl : public std::enable_shared_from_this<HandleServer::Impl> {
public:
    Impl(asio::io_context& io, registry::Registry& registry, HandleServerOptions options)
        : io_(io), registry_(registry), options_(std::move(options)),
          acceptor_(asio::make_strand(io)), udp_socket_(asio::make_strand(io)),
          accept_retry_(acceptor_.get_executor()) {
        options_.udp_batch = std::clamp<std::size_t>(options_.udp_batch, 1, 1024);
        for (auto& prefix : options_.homed_prefixes) {
            prefix = registry::fold_case(prefix); // tolerate a configured "88.abc"
        }
        if (options_.rate_per_ip > 0) {
            limiter_.emplace(options_.rate_per_ip, options_.rate_burst, options_.rate_table_size);
        }
        homed_ = [this](std::string_view prefix_key) {
            return prefix_is_homed(prefix_key, options_.homed_prefixes);
        };
        random_ = options_.random
                      ? options_.random
                      : RandomFill([](std::span<std::uint8_t> out) { secure_random_fill(out); });
    }

    void start();
    void stop();
    HandleServerStats stats() const;

    std::uint32_t now_unix() const {
        if (options_.clock) {
            return options_.clock();
        }
        return static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count());
    }

    /// True if `ip` is over its rate (never when the limit is off); takes a token otherwise.
    bool rate_limited(const IpKey& ip, SteadyClock::time_point now) {
        return limiter_ && !limiter_->allow(ip, steady_ns(now));
    }

    asio::io_context& io_;
    registry::Registry& registry_;
    HandleServerOptions options_;
    HomedPredicate homed_;
    RandomFill random_;
    std::optional<RateLimiter> limiter_;
    Counters counters_;

    tcp::acceptor acceptor_;
    udp::socket udp_socket_;
    asio::steady_timer accept_retry_;
    std::uint16_t tcp_port_ = 0;
    std::uint16_t udp_port_ = 0;
    std::atomic<bool> started_{false};
    std::atomic<bool> stopped_{false};

    class Connection;
    class UdpService;
    std::mutex connections_mutex_;
    std::unordered_map<Connection*, std::weak_ptr<Connection>> connections_;

    void bind(const asio::ip::address& address);
    void do_accept();
    void on_accept(const boost::system::error_code& ec, tcp::socket socket);
    void forget(Connection* c) {
        std::lock_guard lock(connections_mutex_);
        connections_.erase(c);
    }
};

namespace {

/// The responder's view of the store for one batch of requests: one snapshot, taken at the first
/// lookup and dropped by end_batch() (before any asynchronous wait).
class BatchLookup {
public:
    explicit BatchLookup(registry::Registry& registry)
        : registry_(registry),
          lookup_([this](const registry::Handle& handle, const RecordVisitor& visit) {
              if (!snapshot_) {
                  snapshot_.emplace(registry_.snapshot());
              }
              return snapshot_->visit(handle, visit);
          }) {}
    BatchLookup(const BatchLookup&) = delete;
    BatchLookup& operator=(const BatchLookup&) = delete;

    const Lookup& lookup() const noexcept { return lookup_; }
    void end_batch() noexcept { snapshot_.reset(); }

private:
    registry::Registry& registry_;
    std::optional<registry::ReadSnapshot> snapshot_;
    Lookup lookup_;
};

} // namespace

// ---- TCP ---------------------------------------------------------------------------------------

class HandleServer::Impl::Connection : public std::enable_shared_from_this<Connection> {
public:
    Connection(std::shared_ptr<Impl> server, tcp::socket socket)
        : server_(std::move(server)), socket_(std::move(socket)), timer_(socket_.get_executor()),
          lookup_(server_->registry_) {
        in_.resize(kInitialBuffer);
    }

    void start() {
        if (server_->stopped_) {
            close(); // accepted while stop() ran: it may not have seen this connection
            return;
        }
        boost::system::error_code ec;
        socket_.set_option(tcp::no_delay(true), ec);
        const auto peer = socket_.remote_endpoint(ec);
        if (ec) {
            close();
            return;
        }
        peer_ = ip_key(peer.address());
        last_activity_ = SteadyClock::now();
        if (server_->options_.idle_timeout.count() > 0) {
            arm_idle_timer(last_activity_ + server_->options_.idle_timeout);
        }
        do_read();
    }

    /// Runs start() on the connection's strand.
    void start_on_strand(std::shared_ptr<Connection> self) {
        asio::post(socket_.get_executor(), [self = std::move(self)] { self->start(); });
    }

    /// Runs shutdown_by_server() on the connection's strand.
    void post_shutdown(std::shared_ptr<Connection> self) {
        asio::post(socket_.get_executor(),
                   [self = std::move(self)] { self->shutdown_by_server(); });
    }

    /// From stop(): close now, or after the reply being written.
    void shutdown_by_server() {
        if (closed_) {
            return;
        }
        if (writing_) {
            closing_ = true;
            return;
        }
        close();
    }

private:
    /// The read buffer starts small (idle connections are cheap), doubles up to kPipelineBuffer
    /// while reads fill it (pipelining clients), and grows beyond only for one large frame.
    static constexpr std::size_t kInitialBuffer = 4 * 1024;
    static constexpr std::size_t kPipelineBuffer = 64 * 1024;
    static constexpr std::size_t kMaxBuffer = kEnvelopeSize + kMaxMessageLength;
    /// How long a connection being closed by us still reads (and discards) what the peer sends.
    static constexpr std::chrono::seconds kLinger{2};

    void arm_idle_timer(SteadyClock::time_point deadline) {
        timer_.expires_at(deadline);
        timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
            self->on_idle_timer(ec);
        });
    }

    void on_idle_timer(const boost::system::error_code& ec) {
        if (ec || closed_) {
            return;
        }
        const auto deadline = last_activity_ + server_->options_.idle_timeout;
        if (SteadyClock::now() >= deadline) {
            if (!draining_) {
                Counters::add(server_->counters_.tcp_idle_closed);
            }
            close();
            return;
        }
        arm_idle_timer(deadline);
    }

    void do_read() {
        if (in_begin_ > 0) {
            // What is left is at most one partial frame: move it to the front.
            std::memmove(in_.data(), in_.data() + in_begin_, in_end_ - in_begin_);
            in_end_ -= in_begin_;
            in_begin_ = 0;
        }
        if (in_end_ == in_.size()) {
            // Only a partial frame is buffered; grow for the frame probe_frame announced.
            in_.resize(std::min(kMaxBuffer, std::max(in_.size() * 2, need_)));
        } else if (last_read_filled_ && in_.size() < kPipelineBuffer) {
            // The client sends faster than we read: read more at a time.
            in_.resize(in_.size() * 2);
        } else if (in_.size() > kPipelineBuffer && in_end_ <= kPipelineBuffer / 2 &&
                   need_ <= kPipelineBuffer) {
            // A large frame has passed: give the memory back.
            in_.resize(kPipelineBuffer);
            in_.shrink_to_fit();
        }
        socket_.async_read_some(
            asio::buffer(in_.data() + in_end_, in_.size() - in_end_),
            [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                self->on_read(ec, n);
            });
    }

    void on_read(const boost::system::error_code& ec, std::size_t n) {
        if (ec) {
            close(); // EOF, reset, or cancelled by close()
            return;
        }
        if (draining_) {
            drained_ += n;
            if (drained_ > kMaxBuffer) {
                close();
                return;
            }
            in_begin_ = in_end_ = 0;
            do_read();
            return;
        }
        last_activity_ = SteadyClock::now();
        last_read_filled_ = in_end_ + n == in_.size();
        in_end_ += n;
        process();
    }

    /// Answers every complete frame buffered, in order; one write for all the replies.
    void process() {
        Impl& s = *server_;
        const std::uint32_t now = s.now_unix();
        const RequestContext context{lookup_.lookup(), s.homed_, s.random_, now};
        batch_requests_ = 0;
        batch_answered_ = 0;
        while (!closing_) {
            const std::string_view buffered(in_.data() + in_begin_, in_end_ - in_begin_);
            const FrameProbe probe = probe_frame(buffered);
            if (probe.state == FrameProbe::State::need_more) {
                need_ = probe.size;
                break;
            }
            const std::string_view request = buffered.substr(0, probe.size);
            in_begin_ += probe.size;
            ++batch_requests_;
            Counters::add(s.counters_.tcp_requests);
            Answer a;
            try {
                if (s.rate_limited(peer_, last_activity_)) {
                    a = refuse(request, rc::kServerTooBusy, kRateLimitedMessage,
                               s.options_.responder, now);
                    Counters::add(s.counters_.rate_limited);
                } else {
                    a = answer(request, s.options_.responder, context);
                }
            } catch (const std::exception&) {
                // Out of memory, or the registry cannot start a read transaction: this request
                // gets no answer, so the stream of replies cannot continue in order. Close after
                // what was answered.
                Counters::add(s.counters_.internal_errors);
                closing_ = true;
                break;
            }
            if (probe.state == FrameProbe::State::oversize) {
                // The rest of the stream cannot be framed: whatever was answered, close after it.
                a.disposition = a.disposition == Disposition::drop ? Disposition::drop
                                                                   : Disposition::reply_and_close;
                closing_ = true;
            }
            s.counters_.record(a);
            if (a.disposition == Disposition::drop) {
                continue;
            }
            out_.append(a.message);
            ++batch_answered_;
            if (a.disposition == Disposition::reply_and_close) {
                Counters::add(s.counters_.tcp_protocol_closed);
                closing_ = true;
            }
        }
        lookup_.end_batch();
        if (batch_requests_ > 0) {
            Counters::add(s.counters_.tcp_batches);
        }

        if (!out_.empty()) {
            writing_ = true;
            asio::async_write(socket_, asio::buffer(out_),
                              [self = shared_from_this()](const boost::system::error_code& ec,
                                                          std::size_t) { self->on_write(ec); });
            return;
        }
        if (closing_) {
            finish();
            return;
        }
        do_read();
    }

    void on_write(const boost::system::error_code& ec) {
        writing_ = false;
        if (ec) {
            close();
            return;
        }
        const auto now = SteadyClock::now();
        server_->counters_.record_latency(batch_answered_, now - last_activity_);
        last_activity_ = now;
        out_.clear();
        if (out_.capacity() > kMaxBuffer) {
            std::string().swap(out_); // do not keep a huge buffer for an idle connection
        }
        if (closing_) {
            finish();
            return;
        }
        do_read();
    }

    /// Ends the connection after its last reply: stop sending, read (and discard) what the peer
    /// still sends for a moment so closing does not reset the connection before the peer has
    /// read our reply, then close.
    void finish() {
        if (closed_) {
            return;
        }
        if (server_->stopped_) {
            close();
            return;
        }
        boost::system::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_send, ignored);
        draining_ = true;
        in_begin_ = in_end_ = 0;
        const auto idle = server_->options_.idle_timeout;
        const auto linger = idle.count() > 0 ? std::min<SteadyClock::duration>(idle, kLinger)
                                             : SteadyClock::duration(kLinger);
        // The idle timer ends the lingering: its deadline is last_activity_ + idle_timeout.
        last_activity_ = SteadyClock::now() - idle + linger;
        arm_idle_timer(last_activity_ + idle);
        do_read();
    }

    void close() {
        if (closed_) {
            return;
        }
        closed_ = true;
        boost::system::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
        timer_.cancel();
        Counters::add(server_->counters_.tcp_open, static_cast<std::uint64_t>(-1));
        server_->forget(this);
    }

    std::shared_ptr<Impl> server_;
    tcp::socket socket_;
    asio::steady_timer timer_;
    BatchLookup lookup_;
    IpKey peer_{};
    std::vector<char> in_;
    std::size_t in_begin_ = 0;
    std::size_t in_end_ = 0;
    std::size_t need_ = kEnvelopeSize;
    std::string out_;
    std::size_t batch_requests_ = 0; // frames in the batch being answered
    std::size_t batch_answered_ = 0; // ... of which got a reply
    SteadyClock::time_point last_activity_{};
    bool last_read_filled_ = false;
    bool writing_ = false;
    bool closing_ = false;
    bool draining_ = false;
    bool closed_ = false;
    std::size_t drained_ = 0;
};

// ---- UDP ---------------------------------------------------------------------------------------

class HandleServer::Impl::UdpService : public std::enable_shared_from_this<UdpService> {
public:
    explicit UdpService(std::shared_ptr<Impl> server)
        : server_(std::move(server)), socket_(server_->udp_socket_),
          batch_(server_->options_.udp_batch), lookup_(server_->registry_) {
        rx_buffer_.resize(batch_ * kSlot);
        rx_msgs_.resize(batch_);
        rx_iov_.resize(batch_);
        peers_.resize(batch_);
        for (std::size_t i = 0; i < batch_; ++i) {
            rx_iov_[i] = {rx_buffer_.data() + i * kSlot, kSlot};
        }
    }

    void start() { wait_readable(); }

private:
    /// Largest request read whole; a longer datagram is answered from its first kSlot bytes (it
    /// then fails to decode: RC 4). Requests are small; a client with more to say uses TCP.
    static constexpr std::size_t kSlot = 8 * 1024;
    /// Batches handled before yielding to other work on the io_context.
    static constexpr int kBatchesPerTurn = 16;

    void wait_readable() {
        socket_.async_wait(udp::socket::wait_read,
                           [self = shared_from_this()](const boost::system::error_code& ec) {
                               if (!ec) {
                                   self->on_readable();
                               }
                           });
    }

    void wait_writable() {
        socket_.async_wait(udp::socket::wait_write,
                           [self = shared_from_this()](const boost::system::error_code& ec) {
                               if (!ec) {
                                   self->resume_send();
                               }
                           });
    }

    void on_readable() {
        for (int turn = 0; turn < kBatchesPerTurn; ++turn) {
            const int n = receive();
            if (n <= 0) {
                wait_readable();
                return;
            }
            answer_batch(static_cast<std::size_t>(n));
            if (!send()) {
                wait_writable(); // socket buffer full: finish sending before reading more
                return;
            }
        }
        // Still busy: let other handlers run, then carry on.
        asio::post(socket_.get_executor(), [self = shared_from_this()] { self->on_readable(); });
    }

    void resume_send() {
        if (!send()) {
            wait_writable();
            return;
        }
        on_readable();
    }

    /// Reads up to batch_ datagrams without blocking; 0 when none is waiting (or on error).
    int receive() {
        for (std::size_t i = 0; i < batch_; ++i) {
            auto& h = rx_msgs_[i].msg_hdr;
            h = {};
            h.msg_name = &peers_[i];
            h.msg_namelen = sizeof(sockaddr_storage);
            h.msg_iov = &rx_iov_[i];
            h.msg_iovlen = 1;
            rx_msgs_[i].msg_len = 0;
        }
        const int fd = socket_.native_handle();
        int n;
        do {
            n = ::recvmmsg(fd, rx_msgs_.data(), static_cast<unsigned>(batch_), MSG_DONTWAIT,
                           nullptr);
        } while (n < 0 && errno == EINTR);
        received_at_ = SteadyClock::now();
        return n < 0 ? 0 : n;
    }

    void answer_batch(std::size_t n) {
        Impl& s = *server_;
        const std::uint32_t now = s.now_unix();
        const RequestContext context{lookup_.lookup(), s.homed_, s.random_, now};
        const UdpReplyPolicy& policy = s.options_.udp_policy;
        out_count_ = 0;
        out_sent_ = 0;
        Counters::add(s.counters_.udp_requests, n);
        Counters::add(s.counters_.udp_batches);
        batch_answered_ = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t length = std::min<std::size_t>(rx_msgs_[i].msg_len, kSlot);
            const std::string_view request(rx_buffer_.data() + i * kSlot, length);
            if (s.limiter_ && s.rate_limited(ip_key(peers_[i]), received_at_)) {
                Counters::add(s.counters_.rate_limited);
                Counters::add(s.counters_.rate_limited_udp);
                continue;
            }
            Answer a;
            try {
                a = answer(request, s.options_.responder, context);
            } catch (const std::exception&) {
                // Out of memory, or no read transaction to be had: no answer to this one.
                Counters::add(s.counters_.internal_errors);
                lookup_.end_batch();
                continue;
            }
            s.counters_.record(a);
            if (a.disposition == Disposition::drop) {
                continue;
            }
            ++batch_answered_;
            if (a.message.size() <= policy.max_datagram) {
                push(std::move(a.message), i);
                continue;
            }
            Counters::add(s.counters_.udp_truncated);
            for (auto& datagram : udp_datagrams(a.message, length, policy)) {
                push(std::move(datagram), i);
            }
        }
        lookup_.end_batch();
    }

    void push(std::string&& datagram, std::size_t peer) {
        if (out_count_ == out_.size()) {
            out_.emplace_back();
            out_peer_.emplace_back();
        }
        out_[out_count_] = std::move(datagram);
        out_peer_[out_count_] = peer;
        ++out_count_;
    }

    /// Sends the replies not sent yet. False if the socket buffer is full (wait, then resume).
    bool send() {
        if (out_sent_ < out_count_) {
            tx_msgs_.resize(std::max(tx_msgs_.size(), out_count_));
            tx_iov_.resize(std::max(tx_iov_.size(), out_count_));
            for (std::size_t i = out_sent_; i < out_count_; ++i) {
                tx_iov_[i] = {out_[i].data(), out_[i].size()};
                auto& h = tx_msgs_[i].msg_hdr;
                h = {};
                const auto& peer = peers_[out_peer_[i]];
                h.msg_name = const_cast<sockaddr_storage*>(&peer);
                h.msg_namelen =
                    peer.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
                h.msg_iov = &tx_iov_[i];
                h.msg_iovlen = 1;
            }
        }
        const int fd = socket_.native_handle();
        while (out_sent_ < out_count_) {
            const int n = ::sendmmsg(fd, tx_msgs_.data() + out_sent_,
                                     static_cast<unsigned>(out_count_ - out_sent_), MSG_DONTWAIT);
            if (n > 0) {
                out_sent_ += static_cast<std::size_t>(n);
                Counters::add(server_->counters_.udp_datagrams_sent, static_cast<std::uint64_t>(n));
                continue;
            }
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
                return false;
            }
            // This datagram cannot be sent (e.g. an unreachable or invalid address): skip it.
            Counters::add(server_->counters_.udp_send_errors);
            ++out_sent_;
        }
        server_->counters_.record_latency(batch_answered_, SteadyClock::now() - received_at_);
        batch_answered_ = 0;
        for (std::size_t i = 0; i < out_count_; ++i) {
            out_[i].clear();
        }
        out_count_ = out_sent_ = 0;
        return true;
    }

    std::shared_ptr<Impl> server_;
    udp::socket& socket_;
    std::size_t batch_;
    BatchLookup lookup_;
    std::vector<char> rx_buffer_;
    std::vector<mmsghdr> rx_msgs_;
    std::vector<iovec> rx_iov_;
    std::vector<sockaddr_storage> peers_;
    SteadyClock::time_point received_at_{};
    std::size_t batch_answered_ = 0;
    std::vector<std::string> out_;
    std::vector<std::size_t> out_peer_;
    std::size_t out_count_ = 0;
    std::size_t out_sent_ = 0;
    std::vector<mmsghdr> tx_msgs_;
    std::vector<iovec> tx_iov_;
};

// ---- Start, accept, stop -----------------------------------------------------------------------

void HandleServer::Impl::bind(const asio::ip::address& address) {
    const auto fail = [&](const boost::system::error_code& ec, const char* what,
                          std::uint16_t port) {
        throw std::system_error(ec.value(), std::system_category(),
                                std::string("handle server: cannot ") + what + " " +
                                    address.to_string() + ":" + std::to_string(port));
    };
    // With port 0 the kernel picks the TCP port; UDP must then get the same number, which another
    // program may hold: try a few.
    const int attempts = options_.port == 0 && options_.enable_tcp && options_.enable_udp ? 32 : 1;
    for (int attempt = 1;; ++attempt) {
        boost::system::error_code ec;
        std::uint16_t port = options_.port;
        if (options_.enable_tcp) {
            const tcp::endpoint endpoint(address, port);
            acceptor_.open(endpoint.protocol(), ec);
            if (!ec) {
                acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
            }
            if (!ec) {
                acceptor_.bind(endpoint, ec);
            }
            if (!ec) {
                acceptor_.listen(asio::socket_base::max_listen_connections, ec);
            }
            if (ec) {
                fail(ec, "listen on TCP", port);
            }
            port = acceptor_.local_endpoint().port();
        }
        if (options_.enable_udp) {
            const udp::endpoint endpoint(address, port);
            udp_socket_.open(endpoint.protocol(), ec);
            if (!ec) {
                udp_socket_.bind(endpoint, ec);
            }
            if (ec) {
                udp_socket_.close();
                if (attempt < attempts && ec == asio::error::address_in_use) {
                    acceptor_.close();
                    continue;
                }
                fail(ec, "bind UDP", port);
            }
            boost::system::error_code ignored;
            if (options_.udp_receive_buffer > 0) {
                udp_socket_.set_option(
                    asio::socket_base::receive_buffer_size(static_cast<int>(
                        std::min<std::size_t>(options_.udp_receive_buffer, std::size_t{1} << 30))),
                    ignored);
            }
            if (options_.udp_send_buffer > 0) {
                udp_socket_.set_option(
                    asio::socket_base::send_buffer_size(static_cast<int>(
                        std::min<std::size_t>(options_.udp_send_buffer, std::size_t{1} << 30))),
                    ignored);
            }
            udp_socket_.non_blocking(true, ignored);
            udp_port_ = udp_socket_.local_endpoint().port();
        }
        if (options_.enable_tcp) {
            tcp_port_ = acceptor_.local_endpoint().port();
        }
        return;
    }
}

void HandleServer::Impl::start() {
    if (started_.exchange(true)) {
        throw std::logic_error("HandleServer::start() called twice");
    }
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(options_.address, ec);
    if (ec) {
        throw std::system_error(ec.value(), std::system_category(),
                                "handle server: invalid listen address '" + options_.address + "'");
    }
    bind(address);
    for (auto& server : options_.responder.site.servers) {
        for (auto& interface : server.interfaces) {
            if (interface.port != 0) {
                continue;
            }
            if (interface.transport == Transport::tcp) {
                interface.port = tcp_port_;
            } else if (interface.transport == Transport::udp) {
                interface.port = udp_port_;
            }
        }
    }
    auto self = shared_from_this();
    if (options_.enable_tcp) {
        asio::post(acceptor_.get_executor(), [self] { self->do_accept(); });
    }
    if (options_.enable_udp) {
        auto service = std::make_shared<UdpService>(self);
        asio::post(udp_socket_.get_executor(), [service] { service->start(); });
    }
}

void HandleServer::Impl::do_accept() {
    if (stopped_) {
        return;
    }
    acceptor_.async_accept(
        asio::make_strand(io_),
        [self = shared_from_this()](const boost::system::error_code& ec, tcp::socket socket) {
            self->on_accept(ec, std::move(socket));
        });
}

void HandleServer::Impl::on_accept(const boost::system::error_code& ec, tcp::socket socket) {
    if (stopped_ || ec == asio::error::operation_aborted) {
        return;
    }
    if (ec) {
        // Out of descriptors or memory: accepting again at once would spin. Try again shortly.
        accept_retry_.expires_after(std::chrono::milliseconds(100));
        accept_retry_.async_wait([self = shared_from_this()](const boost::system::error_code& e) {
            if (!e) {
                self->do_accept();
            }
        });
        return;
    }
    Counters::add(counters_.tcp_accepted);
    if (options_.max_connections > 0 &&
        counters_.tcp_open.load(std::memory_order_relaxed) >= options_.max_connections) {
        Counters::add(counters_.tcp_rejected);
        boost::system::error_code ignored;
        socket.close(ignored);
    } else {
        Counters::add(counters_.tcp_open);
        auto connection = std::make_shared<Connection>(shared_from_this(), std::move(socket));
        {
            std::lock_guard lock(connections_mutex_);
            connections_.emplace(connection.get(), connection);
        }
        // The socket already runs on its own strand: start there.
        connection->start_on_strand(connection);
    }
    do_accept();
}

void HandleServer::Impl::stop() {
    if (stopped_.exchange(true)) {
        return;
    }
    auto self = shared_from_this();
    asio::post(acceptor_.get_executor(), [self] {
        boost::system::error_code ignored;
        self->acceptor_.close(ignored);
        self->accept_retry_.cancel();
    });
    asio::post(udp_socket_.get_executor(), [self] {
        boost::system::error_code ignored;
        self->udp_socket_.close(ignored);
    });
    std::vector<std::shared_ptr<Connection>> open;
    {
        std::lock_guard lock(connections_mutex_);
        for (auto& [raw, weak] : connections_) {
            if (auto c = weak.lock()) {
                open.push_back(std::move(c));
            }
        }
    }
    for (auto& c : open) {
        c->post_shutdown(c);
    }
}

HandleServerStats HandleServer::Impl::stats() const {
    HandleServerStats out;
    const auto load = [](const Counters::Counter& c) { return c.load(std::memory_order_relaxed); };
    for (std::size_t i = 0; i < kKnownOpcodes.size(); ++i) {
        if (const auto n = load(counters_.by_opcode[i])) {
            out.requests_by_opcode.push_back({kKnownOpcodes[i], n});
        }
    }
    for (std::size_t i = 0; i < kRcSlots; ++i) {
        if (const auto n = load(counters_.by_rc[i])) {
            out.responses_by_rc.push_back({static_cast<std::uint32_t>(i), n});
        }
    }
    out.udp_requests = load(counters_.udp_requests);
    out.udp_datagrams_sent = load(counters_.udp_datagrams_sent);
    out.udp_truncated = load(counters_.udp_truncated);
    out.udp_send_errors = load(counters_.udp_send_errors);
    out.udp_batches = load(counters_.udp_batches);
    out.tcp_requests = load(counters_.tcp_requests);
    out.tcp_batches = load(counters_.tcp_batches);
    out.dropped = load(counters_.dropped);
    out.malformed = load(counters_.malformed);
    out.rate_limited = load(counters_.rate_limited);
    out.rate_limited_udp = load(counters_.rate_limited_udp);
    out.internal_errors = load(counters_.internal_errors);
    out.tcp_connections_open = load(counters_.tcp_open);
    out.tcp_connections_accepted = load(counters_.tcp_accepted);
    out.tcp_connections_rejected = load(counters_.tcp_rejected);
    out.tcp_idle_closed = load(counters_.tcp_idle_closed);
    out.tcp_protocol_closed = load(counters_.tcp_protocol_closed);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kLatencyBoundsUs.size(); ++i) {
        out.latency_bounds.push_back(static_cast<double>(kLatencyBoundsUs[i]) / 1e6);
        cumulative += load(counters_.latency[i]);
        out.latency_counts.push_back(cumulative);
    }
    cumulative += load(counters_.latency[kLatencyBoundsUs.size()]);
    out.latency_counts.push_back(cumulative);
    out.latency_sum_seconds = static_cast<double>(load(counters_.latency_sum_ns)) / 1e9;
    return out;
}

// ---- Public face -------------------------------------------------------------------------------

HandleServer::HandleServer(asio::io_context& io, registry::Registry& registry,
                           HandleServerOptions options)
    : impl_(std::make_shared<Impl>(io, registry, std::move(options))) {}

HandleServer::~HandleServer() {
    impl_->stop();
}

void HandleServer::start() {
    impl_->start();
}

void HandleServer::stop() {
    impl_->stop();
}

std::uint16_t HandleServer::tcp_port() const noexcept {
    return impl_->tcp_port_;
}

std::uint16_t HandleServer::udp_port() const noexcept {
    return impl_->udp_port_;
}

HandleServerStats HandleServer::stats() const {
    return impl_->stats();
}

const ResponderConfig& HandleServer::responder_config() const noexcept {
    return impl_->options_.responder;
}

} // namespace idnode::resolver::handle
