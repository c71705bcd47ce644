// The Handle protocol server's internals, shared by its translation units: handle_server.cpp
// (binding, start and stop, statistics, the public face), handle_server_tcp.cpp (accepting and
// the TCP connections) and handle_server_udp.cpp (the batched UDP service). The contract is in
// handle_server.hpp; these files are the only ones that see Asio for it.
#pragma once

#include "idnode/resolver/handle_server.hpp"

#include "handle_admin.hpp"

#include "idnode/node/homing.hpp"
#include "idnode/node/resolution.hpp"
#include "idnode/resolver/prefix_records.hpp"

#include "idnode/registry/identifier.hpp"
#include "idnode/registry/registry.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

namespace idnode::resolver::handle {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using udp = asio::ip::udp;
using SteadyClock = std::chrono::steady_clock;

namespace detail {

// ---- Statistics --------------------------------------------------------------------------------

/// Opcodes counted one by one; every other value a client may send is counted as kOtherCode, so
/// the metric's label set stays bounded whatever arrives.
inline constexpr std::uint32_t kOtherCode = 0xFFFF'FFFF;
inline constexpr std::array<std::uint32_t, 18> kKnownOpcodes = {
    opcode::kReserved,     opcode::kResolution,        opcode::kGetSiteInfo,
    opcode::kCreateHandle, opcode::kDeleteHandle,      opcode::kAddValue,
    opcode::kRemoveValue,  opcode::kModifyValue,       opcode::kListHandles,
    opcode::kListPrefixes, opcode::kChallengeResponse, opcode::kVerifyResponse,
    opcode::kHomePrefix,   opcode::kUnhomePrefix,      opcode::kListHomedPrefixes,
    opcode::kSessionSetup, opcode::kSessionTerminate,  kOtherCode};

inline std::size_t opcode_slot(std::uint32_t code) noexcept {
    for (std::size_t i = 0; i + 1 < kKnownOpcodes.size(); ++i) {
        if (kKnownOpcodes[i] == code) {
            return i;
        }
    }
    return kKnownOpcodes.size() - 1;
}

/// Response codes are ours (all below 512).
inline constexpr std::size_t kRcSlots = 512;

/// Latency histogram bounds, microseconds.
inline constexpr std::array<std::uint32_t, 15> kLatencyBoundsUs = {
    10,    25,     50,     100,    250,     500,     1'000,    2'500,
    5'000, 10'000, 25'000, 50'000, 100'000, 250'000, 1'000'000};

struct Counters {
    using Counter = std::atomic<std::uint64_t>;
    std::array<Counter, kKnownOpcodes.size()> by_opcode{};
    std::array<Counter, kRcSlots> by_rc{};
    std::array<Counter, kLatencyBoundsUs.size() + 1> latency{}; // non-cumulative here
    Counter latency_sum_ns{0};
    Counter udp_requests{0}, udp_batches{0}, udp_datagrams_sent{0}, udp_fragmented{0},
        udp_too_large{0}, udp_send_errors{0};
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

inline IpKey ip_key(const sockaddr_storage& sa) noexcept {
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

inline IpKey ip_key(const asio::ip::address& address) noexcept {
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

inline std::int64_t steady_ns(SteadyClock::time_point t) noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

inline constexpr std::string_view kRateLimitedMessage = "rate limit exceeded; slow down";

/// The responder's view of the store for one batch of requests: one snapshot, taken at the first
/// lookup and dropped by end_batch() (before any asynchronous wait).
class BatchLookup {
public:
    /// `homing` and `site` (the server's) must outlive the lookup; `now` is the server's clock
    /// (unix seconds), which stamps composed prefix records.
    BatchLookup(registry::Registry& registry, const node::Homing& homing, const SiteInfo& site,
                std::function<std::uint32_t()> now)
        : registry_(registry),
          lookup_([this, &homing, &site, now = std::move(now)](const registry::Handle& handle,
                                                               const RecordVisitor& visit) {
              if (!snapshot_) {
                  snapshot_.emplace(registry_.snapshot());
              }
              return visit_served(*snapshot_, homing, site, handle, now(), visit);
          }) {}
    BatchLookup(const BatchLookup&) = delete;
    BatchLookup& operator=(const BatchLookup&) = delete;

    const Lookup& lookup() const noexcept { return lookup_; }
    /// The batch's snapshot (taken now if no lookup took it yet).
    const registry::ReadSnapshot& snapshot() {
        if (!snapshot_) {
            snapshot_.emplace(registry_.snapshot());
        }
        return *snapshot_;
    }
    void end_batch() noexcept { snapshot_.reset(); }

private:
    registry::Registry& registry_;
    std::optional<registry::ReadSnapshot> snapshot_;
    Lookup lookup_;
};

} // namespace detail

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
        homing_ = node::Homing(options_.homed_prefixes);
        if (options_.rate_per_ip > 0) {
            limiter_.emplace(options_.rate_per_ip, options_.rate_burst, options_.rate_table_size);
        }
        homed_ = [this](std::string_view prefix_key) { return homing_.homes(prefix_key); };
        random_ = options_.random
                      ? options_.random
                      : RandomFill([](std::span<std::uint8_t> out) { secure_random_fill(out); });
        if (options_.authenticator != nullptr) {
            detail::HandleAdminOptions admin;
            admin.authenticator = options_.authenticator;
            admin.account_rate = options_.account_rate;
            admin.max_record_bytes = options_.max_record_bytes;
            admin.log = options_.log;
            admin.allow_password_login = options_.allow_password_login;
            admin.homed_prefixes = options_.homed_prefixes;
            admin_.emplace(registry_, options_.responder, homing_, admin);
        }
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

    /// Counts one answer of the batch: the metrics, and a resolution in `tally` for the node's
    /// resolutions_today (see HandleServerOptions::resolutions), added by flush() once per batch.
    void account(const Answer& a, node::ResolutionTally& tally) {
        counters_.record(a);
        if (a.resolved && options_.resolutions != nullptr) {
            if (a.found_prefix.empty()) {
                tally.unresolved();
            } else {
                tally.found(a.found_prefix);
            }
        }
    }
    /// Adds a batch's resolutions to resolutions_today (counted on the wall clock, as the HTTPS
    /// routes count theirs).
    void flush(node::ResolutionTally& tally) {
        if (options_.resolutions != nullptr)
            options_.resolutions->add(tally);
    }

    /// True if `ip` is over its rate (never when the limit is off); takes a token otherwise.
    bool rate_limited(const detail::IpKey& ip, SteadyClock::time_point now) {
        return limiter_ && !limiter_->allow(ip, detail::steady_ns(now));
    }

    asio::io_context& io_;
    registry::Registry& registry_;
    HandleServerOptions options_;
    node::Homing homing_; // the HTTPS API's rule (node/homing.hpp), over the same prefixes
    HomedPredicate homed_;
    RandomFill random_;
    std::optional<detail::RateLimiter> limiter_;
    /// Administration over TCP; absent when HandleServerOptions::authenticator is null.
    std::optional<detail::HandleAdmin> admin_;
    detail::Counters counters_;

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
    /// Starts the UDP service on the bound socket (handle_server_udp.cpp).
    void start_udp();
    /// Accepting and TCP connections (handle_server_tcp.cpp).
    void do_accept();
    void on_accept(const boost::system::error_code& ec, tcp::socket socket);
    void forget(Connection* c) {
        std::lock_guard lock(connections_mutex_);
        connections_.erase(c);
    }
    /// From stop(): asks every open connection to close (after the reply being written).
    void shutdown_connections();
};

} // namespace idnode::resolver::handle
