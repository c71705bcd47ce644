// handle_load — a load generator for the Handle protocol (RESOLUTION over UDP or TCP).
//
//   handle_load --udp HOST:PORT (--handles FILE | --prefix P --count N) [--in-flight 64]
//               [--seconds S]
//   handle_load --tcp HOST:PORT ...
//   handle_load --self [--records 1000000] [--seconds S] [--in-flight 64] [--rounds R]
//               [--only udp|tcp] [--udp-batch 64] [--dir DIR]
//
// It keeps `in-flight` requests outstanding and asks for random keys among the given identifiers:
// - UDP: one socket; each outstanding request has its own request id (its slot in the low bits);
//   requests are sent and replies read in batches (sendmmsg / recvmmsg). A request unanswered for
//   a second counts as a timeout and its slot is reused.
// - TCP: one persistent connection with `in-flight` requests pipelined; replies come back in
//   order; each reply read sends the next request (all those of one read in one write).
// A reply counts as a resolution if it is RC 1 for the handle asked; anything else is an error.
//
// `--self` reproduces the issue's figures in one command: a registry in a temporary directory
// with `--records` identifiers of about 400 bytes (1,000 creates per Registry::write), a
// HandleServer on 127.0.0.1 (ephemeral port) on one io thread, then the UDP load and the TCP load
// against it, `--seconds` each (after a one-second warm-up), the load generator on this thread.
// `--rounds R` alternates the two loads R times (on a shared machine, neighbours' load then
// spreads over both) and reports each round and the totals. `--udp-batch 1` makes the server use
// one system call per datagram (the comparison point for recvmmsg/sendmmsg batching).
// Handles are `<prefix>/SN-2024-<10 digits>` for 0 <= i < count (the same as registry_bench).
//
// Prints a table, the server's own counters in --self mode, then `bench:` lines
// (docs/performance.md).
// Traffic goes only where HOST:PORT says; use a loopback address on shared machines.
#include "coil_values.hpp"
#include "idnode/registry/registry.hpp"
#include "idnode/resolver/handle_protocol.hpp"
#include "idnode/resolver/handle_server.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace hp = idnode::resolver::handle;
namespace reg = idnode::registry;
using Clock = std::chrono::steady_clock;

namespace {

// ---- Requests ----------------------------------------------------------------------------------

std::string handle_text(const std::string& prefix, std::uint64_t i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "/SN-2024-%010llu", static_cast<unsigned long long>(i));
    return prefix + buf;
}

void put32(char* p, std::uint32_t v) {
    p[0] = static_cast<char>(v >> 24);
    p[1] = static_cast<char>(v >> 16);
    p[2] = static_cast<char>(v >> 8);
    p[3] = static_cast<char>(v);
}

std::uint32_t get32(const char* p) {
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    return (std::uint32_t{u[0]} << 24) | (std::uint32_t{u[1]} << 16) | (std::uint32_t{u[2]} << 8) |
           u[3];
}

/// Pre-encoded RESOLUTION requests (PUBL set, optionally a type or index filter), one per handle;
/// the request id is patched in before sending. A filter is how a client keeps a UDP reply within
/// 512 bytes (a whole several-hundred-byte record is sent truncated and retried over TCP).
class Requests {
public:
    explicit Requests(const std::vector<std::string>& handles,
                      const std::vector<std::string>& types = {},
                      const std::vector<std::int32_t>& indices = {}) {
        std::vector<std::string_view> type_views(types.begin(), types.end());
        offsets_.reserve(handles.size() + 1);
        for (const auto& h : handles) {
            offsets_.push_back(bytes_.size());
            hp::Envelope env;
            hp::Header header;
            header.opcode = hp::opcode::kResolution;
            header.op_flags = hp::opflag::kPublicOnly;
            header.expiration = 0;
            std::string body;
            hp::encode_resolution_request(body, h, indices, type_views);
            hp::encode_message(bytes_, env, header, body);
        }
        offsets_.push_back(bytes_.size());
    }
    std::size_t size() const { return offsets_.size() - 1; }
    std::string_view get(std::size_t i) const {
        return std::string_view(bytes_).substr(offsets_[i], offsets_[i + 1] - offsets_[i]);
    }
    /// The handle inside request i (to check the reply echoes it).
    std::string_view handle(std::size_t i) const {
        const std::string_view r = get(i);
        const std::size_t at = hp::kEnvelopeSize + hp::kHeaderSize;
        return r.substr(at + 4, get32(r.data() + at));
    }

private:
    std::string bytes_;
    std::vector<std::size_t> offsets_;
};

/// RC 1 for the handle asked?
bool good_reply(std::string_view reply, std::string_view handle) {
    constexpr std::size_t body = hp::kEnvelopeSize + hp::kHeaderSize;
    if (reply.size() < body + 4 + handle.size() ||
        get32(reply.data() + hp::kEnvelopeSize + 4) != hp::rc::kSuccess) {
        return false;
    }
    return get32(reply.data() + body) == handle.size() &&
           reply.substr(body + 4, handle.size()) == handle;
}

// ---- Results -----------------------------------------------------------------------------------

struct Result {
    std::string transport;
    double seconds = 0;
    std::uint64_t resolutions = 0;
    std::uint64_t errors = 0;
    std::uint64_t timeouts = 0;
    std::uint64_t truncated = 0;
    double p50_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
    double cpu_seconds = 0;          // process CPU (user + system) during the run, all threads
    std::vector<float> latencies_us; // sorted
    double rate() const { return seconds > 0 ? static_cast<double>(resolutions) / seconds : 0; }
};

double process_cpu_seconds() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

void finish_latencies(Result& r, std::vector<float>& latencies) {
    r.latencies_us = std::move(latencies);
    auto& latencies_us = r.latencies_us;
    if (latencies_us.empty()) {
        return;
    }
    std::sort(latencies_us.begin(), latencies_us.end());
    auto at = [&](double q) {
        const auto i = static_cast<std::size_t>(q * static_cast<double>(latencies_us.size() - 1));
        return static_cast<double>(latencies_us[i]);
    };
    r.p50_us = at(0.50);
    r.p99_us = at(0.99);
    r.p999_us = at(0.999);
    r.max_us = latencies_us.back();
}

float micros(Clock::duration d) {
    return static_cast<float>(std::chrono::duration<double, std::micro>(d).count());
}

sockaddr_storage parse_endpoint(const std::string& text, socklen_t& length) {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) {
        throw std::runtime_error("expected HOST:PORT, got '" + text + "'");
    }
    std::string host = text.substr(0, colon);
    const int port = std::stoi(text.substr(colon + 1));
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    sockaddr_storage ss{};
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<std::uint16_t>(port));
        length = sizeof(sockaddr_in);
    } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<std::uint16_t>(port));
        length = sizeof(sockaddr_in6);
    } else {
        throw std::runtime_error("not an IP address: '" + host + "'");
    }
    return ss;
}

// ---- UDP ---------------------------------------------------------------------------------------

Result run_udp(const sockaddr_storage& server, socklen_t server_length, const Requests& requests,
               unsigned in_flight, double seconds) {
    Result result;
    result.transport = "udp";
    const int fd = ::socket(server.ss_family, SOCK_DGRAM, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&server), server_length) != 0) {
        throw std::runtime_error(std::string("udp: cannot connect: ") + std::strerror(errno));
    }
    int buffer = 4 << 20;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);

    // request id = generation << 12 | slot
    constexpr std::uint32_t kSlotBits = 12;
    constexpr std::uint32_t kSlotMask = (1u << kSlotBits) - 1;
    in_flight = std::clamp(in_flight, 1u, kSlotMask + 1);
    struct Slot {
        std::uint32_t id = 0;
        std::size_t key = 0;
        Clock::time_point sent{};
        bool busy = false;
    };
    std::vector<Slot> slots(in_flight);
    std::uint32_t generation = 1;
    std::mt19937_64 rng(12345);

    constexpr std::size_t kMaxDatagram = 2048;
    std::vector<std::string> tx(in_flight);
    std::vector<mmsghdr> tx_msgs(in_flight);
    std::vector<iovec> tx_iov(in_flight);
    std::vector<char> rx(in_flight * kMaxDatagram);
    std::vector<mmsghdr> rx_msgs(in_flight);
    std::vector<iovec> rx_iov(in_flight);
    for (unsigned i = 0; i < in_flight; ++i) {
        rx_iov[i] = {rx.data() + i * kMaxDatagram, kMaxDatagram};
    }
    std::vector<unsigned> to_send;
    to_send.reserve(in_flight);
    std::vector<float> latencies;
    latencies.reserve(static_cast<std::size_t>(seconds * 300'000));

    auto prepare = [&](unsigned slot) {
        Slot& s = slots[slot];
        s.key = static_cast<std::size_t>(rng() % requests.size());
        s.id = (generation++ << kSlotBits | slot) & 0x7FFF'FFFF;
        s.busy = true;
        tx[slot].assign(requests.get(s.key));
        put32(tx[slot].data() + 8, s.id);
        to_send.push_back(slot);
    };
    auto flush = [&](Clock::time_point now) {
        std::size_t sent = 0;
        while (sent < to_send.size()) {
            const std::size_t n = to_send.size() - sent;
            for (std::size_t i = 0; i < n; ++i) {
                const unsigned slot = to_send[sent + i];
                tx_iov[i] = {tx[slot].data(), tx[slot].size()};
                tx_msgs[i] = {};
                tx_msgs[i].msg_hdr.msg_iov = &tx_iov[i];
                tx_msgs[i].msg_hdr.msg_iovlen = 1;
                slots[slot].sent = now;
            }
            const int r = ::sendmmsg(fd, tx_msgs.data(), static_cast<unsigned>(n), 0);
            if (r < 0) {
                if (errno == EINTR || errno == EAGAIN || errno == ENOBUFS ||
                    errno == ECONNREFUSED) {
                    continue; // ECONNREFUSED: an earlier datagram met a closed port; retry
                }
                throw std::runtime_error(std::string("udp: sendmmsg: ") + std::strerror(errno));
            }
            sent += static_cast<std::size_t>(r);
        }
        to_send.clear();
    };

    const auto start = Clock::now();
    const auto cpu0 = process_cpu_seconds();
    const auto end =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    auto next_timeout_scan = start + std::chrono::milliseconds(100);
    for (unsigned i = 0; i < in_flight; ++i) {
        prepare(i);
    }
    flush(Clock::now());
    Clock::time_point now = start;
    while (now < end) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 10) < 0 && errno != EINTR) {
            throw std::runtime_error("udp: poll failed");
        }
        for (unsigned i = 0; i < in_flight; ++i) {
            rx_msgs[i] = {};
            rx_msgs[i].msg_hdr.msg_iov = &rx_iov[i];
            rx_msgs[i].msg_hdr.msg_iovlen = 1;
        }
        const int n = ::recvmmsg(fd, rx_msgs.data(), in_flight, MSG_DONTWAIT, nullptr);
        now = Clock::now();
        for (int i = 0; i < n; ++i) {
            const auto k = static_cast<std::size_t>(i);
            const std::string_view reply(static_cast<const char*>(rx_iov[k].iov_base),
                                         rx_msgs[k].msg_len);
            if (reply.size() < hp::kEnvelopeSize + hp::kHeaderSize) {
                ++result.errors;
                continue;
            }
            const std::uint32_t id = get32(reply.data() + 8);
            const unsigned slot = id & kSlotMask;
            if (slot >= in_flight || !slots[slot].busy || slots[slot].id != id) {
                continue; // a late reply to a request already given up on
            }
            Slot& s = slots[slot];
            s.busy = false;
            if ((static_cast<unsigned char>(reply[2]) & hp::envflag::kTruncated) != 0) {
                ++result.truncated;
                ++result.errors;
            } else if (good_reply(reply, requests.handle(s.key))) {
                ++result.resolutions;
                latencies.push_back(micros(now - s.sent));
            } else {
                ++result.errors;
            }
            prepare(slot);
        }
        if (now >= next_timeout_scan) {
            next_timeout_scan = now + std::chrono::milliseconds(100);
            for (unsigned slot = 0; slot < in_flight; ++slot) {
                if (slots[slot].busy && now - slots[slot].sent > std::chrono::seconds(1)) {
                    ++result.timeouts;
                    prepare(slot);
                }
            }
        }
        flush(now);
    }
    result.seconds = std::chrono::duration<double>(now - start).count();
    result.cpu_seconds = process_cpu_seconds() - cpu0;
    ::close(fd);
    finish_latencies(result, latencies);
    return result;
}

// ---- TCP ---------------------------------------------------------------------------------------

Result run_tcp(const sockaddr_storage& server, socklen_t server_length, const Requests& requests,
               unsigned in_flight, double seconds) {
    Result result;
    result.transport = "tcp";
    const int fd = ::socket(server.ss_family, SOCK_STREAM, 0);
    if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&server), server_length) != 0) {
        throw std::runtime_error(std::string("tcp: cannot connect: ") + std::strerror(errno));
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    in_flight = std::max(in_flight, 1u);

    struct Pending {
        std::uint32_t id;
        std::size_t key;
        Clock::time_point sent;
    };
    std::vector<Pending> fifo(in_flight); // ring buffer
    std::size_t head = 0, count = 0;
    std::uint32_t next_id = 1;
    std::mt19937_64 rng(54321);
    std::string out;
    std::vector<char> in(1 << 20);
    std::size_t in_begin = 0, in_end = 0;
    std::vector<float> latencies;
    latencies.reserve(static_cast<std::size_t>(seconds * 300'000));

    auto queue = [&](Clock::time_point now) {
        const std::size_t key = static_cast<std::size_t>(rng() % requests.size());
        const std::uint32_t id = next_id++ & 0x7FFF'FFFF;
        const std::size_t at = out.size();
        out.append(requests.get(key));
        put32(out.data() + at + 8, id);
        fifo[(head + count) % in_flight] = {id, key, now};
        ++count;
    };
    auto flush = [&] {
        std::size_t sent = 0;
        while (sent < out.size()) {
            const ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                throw std::runtime_error(std::string("tcp: send: ") + std::strerror(errno));
            }
            sent += static_cast<std::size_t>(n);
        }
        out.clear();
    };

    const auto start = Clock::now();
    const auto cpu0 = process_cpu_seconds();
    const auto end =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    for (unsigned i = 0; i < in_flight; ++i) {
        queue(start);
    }
    flush();
    Clock::time_point now = start;
    while (now < end) {
        pollfd p{fd, POLLIN, 0};
        const int ready = ::poll(&p, 1, 1000);
        now = Clock::now();
        if (ready == 0) {
            ++result.timeouts; // nothing for a second: the server is stuck
            if (now >= end) {
                break;
            }
            continue;
        }
        if (in_end == in.size()) {
            std::memmove(in.data(), in.data() + in_begin, in_end - in_begin);
            in_end -= in_begin;
            in_begin = 0;
        }
        const ssize_t n = ::recv(fd, in.data() + in_end, in.size() - in_end, 0);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            std::fprintf(stderr, "tcp: the server closed the connection\n");
            ++result.errors;
            break;
        }
        in_end += static_cast<std::size_t>(n);
        now = Clock::now();
        while (in_end - in_begin >= hp::kEnvelopeSize) {
            const std::size_t size = hp::kEnvelopeSize + get32(in.data() + in_begin + 16);
            if (in_end - in_begin < size) {
                break;
            }
            const std::string_view reply(in.data() + in_begin, size);
            in_begin += size;
            if (count == 0) {
                ++result.errors;
                continue;
            }
            const Pending pending = fifo[head];
            head = (head + 1) % in_flight;
            --count;
            if (get32(reply.data() + 8) == pending.id &&
                good_reply(reply, requests.handle(pending.key))) {
                ++result.resolutions;
                latencies.push_back(micros(now - pending.sent));
            } else {
                ++result.errors;
            }
            queue(now);
        }
        if (in_begin == in_end) {
            in_begin = in_end = 0;
        }
        flush();
    }
    result.seconds = std::chrono::duration<double>(now - start).count();
    result.cpu_seconds = process_cpu_seconds() - cpu0;
    ::close(fd);
    finish_latencies(result, latencies);
    return result;
}

// ---- --self: registry + server in this process -------------------------------------------------

void load_registry(reg::Registry& registry, const std::string& prefix, std::uint64_t records) {
    const auto start = Clock::now();
    constexpr std::uint64_t kBatch = 1000;
    for (std::uint64_t i = 0; i < records; i += kBatch) {
        reg::WriteBatch batch;
        for (std::uint64_t j = i; j < std::min(records, i + kBatch); ++j) {
            batch.ops.push_back(reg::PutRecord{reg::parse_handle(handle_text(prefix, j)).value(),
                                               idnode::bench::coil_values(j),
                                               reg::PutMode::create});
        }
        for (const auto& r : registry.write(std::move(batch))) {
            if (!r.ok()) {
                throw std::runtime_error("load failed: " + r.error.message);
            }
        }
    }
    (void)registry.sync();
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("loaded %llu identifiers in %.1f s (%.0f/s), %.0f MiB used\n",
                static_cast<unsigned long long>(records), s, static_cast<double>(records) / s,
                static_cast<double>(registry.stats().used_bytes) / 1048576.0);
}

void print_server_stats(const hp::HandleServerStats& s) {
    std::printf("server: udp requests %llu, tcp requests %llu, udp datagrams sent %llu, "
                "fragmented %llu, too large %llu, malformed %llu, dropped %llu\n",
                static_cast<unsigned long long>(s.udp_requests),
                static_cast<unsigned long long>(s.tcp_requests),
                static_cast<unsigned long long>(s.udp_datagrams_sent),
                static_cast<unsigned long long>(s.udp_fragmented),
                static_cast<unsigned long long>(s.udp_too_large),
                static_cast<unsigned long long>(s.malformed),
                static_cast<unsigned long long>(s.dropped));
    std::printf("server: requests per batch: udp %.1f, tcp %.1f\n",
                s.udp_batches ? static_cast<double>(s.udp_requests) / s.udp_batches : 0.0,
                s.tcp_batches ? static_cast<double>(s.tcp_requests) / s.tcp_batches : 0.0);
    std::printf("server: responses by RC:");
    for (const auto& c : s.responses_by_rc) {
        std::printf(" %u=%llu", c.code, static_cast<unsigned long long>(c.count));
    }
    std::printf("\nserver: batch latency (read to reply handed to the kernel), cumulative:");
    for (std::size_t i = 0; i < s.latency_bounds.size(); ++i) {
        if (i > 0 && s.latency_counts[i] == s.latency_counts[i - 1]) {
            continue;
        }
        std::printf(" <=%gus:%llu", s.latency_bounds[i] * 1e6,
                    static_cast<unsigned long long>(s.latency_counts[i]));
    }
    std::printf(" all:%llu\n", static_cast<unsigned long long>(s.latency_counts.back()));
}

void print_bench_lines(const std::vector<Result>& results) {
    std::printf("\n");
    for (const auto& r : results) {
        std::printf("bench: handle_%s_resolutions %.0f req/s\n", r.transport.c_str(), r.rate());
        std::printf("bench: handle_%s_p50 %.0f us\n", r.transport.c_str(), r.p50_us);
        std::printf("bench: handle_%s_p99 %.0f us\n", r.transport.c_str(), r.p99_us);
        std::printf("bench: handle_%s_errors %llu count\n", r.transport.c_str(),
                    static_cast<unsigned long long>(r.errors + r.timeouts));
        // Replies with the truncated flag (the record does not fit a UDP reply; a client retries
        // over TCP): counted in the errors above too.
        std::printf("bench: handle_%s_truncated %llu count\n", r.transport.c_str(),
                    static_cast<unsigned long long>(r.truncated));
    }
}

/// Several runs of one transport as one: totals, and percentiles over every latency.
Result combine(const std::vector<Result>& runs, const std::string& transport) {
    Result all;
    all.transport = transport;
    std::vector<float> latencies;
    for (const auto& r : runs) {
        if (r.transport != transport) {
            continue;
        }
        all.seconds += r.seconds;
        all.resolutions += r.resolutions;
        all.errors += r.errors;
        all.timeouts += r.timeouts;
        all.truncated += r.truncated;
        all.cpu_seconds += r.cpu_seconds;
        latencies.insert(latencies.end(), r.latencies_us.begin(), r.latencies_us.end());
    }
    finish_latencies(all, latencies);
    return all;
}

void print_row(const Result& r, unsigned in_flight, const char* label) {
    std::printf("%-9s %9u %10.1f %12.0f %9.0f %9.0f %9.0f %9.0f %8llu %8llu %9.1f\n", label,
                in_flight, r.seconds, r.rate(), r.p50_us, r.p99_us, r.p999_us, r.max_us,
                static_cast<unsigned long long>(r.errors),
                static_cast<unsigned long long>(r.timeouts), r.cpu_seconds);
}

void print_table(const std::vector<Result>& runs, unsigned in_flight) {
    std::printf("\n%-9s %9s %10s %12s %9s %9s %9s %9s %8s %8s %9s\n", "run", "in-flight", "seconds",
                "resolutions/s", "p50 us", "p99 us", "p99.9 us", "max us", "errors", "timeouts",
                "cpu s");
    std::vector<Result> results;
    for (const char* transport : {"udp", "tcp"}) {
        std::size_t n = 0;
        for (const auto& r : runs) {
            if (r.transport == transport) {
                ++n;
            }
        }
        if (n == 0) {
            continue;
        }
        if (n > 1) {
            std::size_t round = 0;
            for (const auto& r : runs) {
                if (r.transport == transport) {
                    const std::string label = r.transport + " #" + std::to_string(++round);
                    print_row(r, in_flight, label.c_str());
                }
            }
        }
        results.push_back(combine(runs, transport));
        print_row(results.back(), in_flight,
                  n > 1 ? (std::string(transport) + " all").c_str() : transport);
    }
    std::printf("(cpu s: CPU time of the whole process, server and load generator, in that run)\n");
    print_bench_lines(results);
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"handle_load — Handle protocol resolution load generator"};
    std::string udp_target, tcp_target, handles_file, dir = "build/bench/handle";
    std::string prefix = "88.118.8";
    std::uint64_t count = 1'000'000;
    unsigned in_flight = 64;
    double seconds = 10;
    bool self = false;
    std::string only;
    std::size_t udp_batch = 64;
    unsigned rounds = 1;
    std::vector<std::string> types;
    std::vector<std::int32_t> indices;
    auto* udp_opt = app.add_option("--udp", udp_target, "UDP target HOST:PORT");
    auto* tcp_opt = app.add_option("--tcp", tcp_target, "TCP target HOST:PORT");
    auto* self_opt =
        app.add_flag("--self", self, "in-process registry + HandleServer, then UDP and TCP loads");
    app.add_option("--handles", handles_file, "file with one handle per line");
    app.add_option("--prefix", prefix, "handles are PREFIX/SN-2024-<10 digits> (default 88.118.8)");
    app.add_option("--count,--records", count,
                   "number of such handles (and, with --self, identifiers registered; default "
                   "1,000,000)");
    app.add_option("--in-flight", in_flight, "outstanding requests (default 64)");
    app.add_option("--seconds", seconds, "duration of each load (default 10)")
        ->check(CLI::Range(0.1, 600.0));
    app.add_option("--rounds", rounds,
                   "--self: alternate the UDP and TCP loads this many times (default 1); the "
                   "figures are over all rounds")
        ->check(CLI::Range(1u, 100u));
    app.add_option("--dir", dir, "--self: scratch directory for the registry (removed afterwards)");
    app.add_option("--only", only, "--self: run only this load (udp or tcp)")
        ->check(CLI::IsMember({"udp", "tcp"}));
    app.add_option("--udp-batch", udp_batch,
                   "--self: datagrams the server reads/writes per system call (default 64; 1 = "
                   "one system call per datagram)");
    app.add_option("--types", types,
                   "ask only for these value types (comma-separated, e.g. URL); default: the "
                   "whole record")
        ->delimiter(',');
    app.add_option("--indices", indices,
                   "ask only for the values at these indices (comma-separated, e.g. 2000)")
        ->delimiter(',');
    udp_opt->excludes(self_opt);
    tcp_opt->excludes(self_opt);
    CLI11_PARSE(app, argc, argv);
    if (!self && udp_target.empty() && tcp_target.empty()) {
        std::fprintf(stderr, "give --udp HOST:PORT, --tcp HOST:PORT or --self\n");
        return 2;
    }

    try {
        std::vector<std::string> handles;
        if (!handles_file.empty()) {
            std::ifstream in(handles_file);
            if (!in) {
                throw std::runtime_error("cannot read " + handles_file);
            }
            for (std::string line; std::getline(in, line);) {
                if (!line.empty()) {
                    handles.push_back(line);
                }
            }
        } else {
            handles.reserve(count);
            for (std::uint64_t i = 0; i < count; ++i) {
                handles.push_back(handle_text(prefix, i));
            }
        }
        if (handles.empty()) {
            throw std::runtime_error("no handles to ask for");
        }
        const Requests requests(handles, types, indices);
        handles.clear();
        handles.shrink_to_fit();
        std::vector<Result> results;

        if (!self) {
            socklen_t length = 0;
            if (!udp_target.empty()) {
                const auto target = parse_endpoint(udp_target, length);
                results.push_back(run_udp(target, length, requests, in_flight, seconds));
            }
            if (!tcp_target.empty()) {
                const auto target = parse_endpoint(tcp_target, length);
                results.push_back(run_tcp(target, length, requests, in_flight, seconds));
            }
            print_table(results, in_flight);
            return 0;
        }

        const std::filesystem::path base(dir);
        std::filesystem::remove_all(base);
        std::filesystem::create_directories(base);
        hp::HandleServerStats server_stats;
        {
            reg::RegistryOptions o;
            o.data_dir = base / "db";
            o.max_db_size = 16ull << 30;
            o.durable = false; // a scratch load; synced once at the end
            auto registry = reg::Registry::open(o);
            load_registry(*registry, prefix, count);

            boost::asio::io_context io;
            hp::HandleServerOptions options;
            options.address = "127.0.0.1";
            options.port = 0;
            options.homed_prefixes = {reg::fold_case(prefix)};
            options.udp_batch = udp_batch;
            options.responder.site.servers.push_back(
                {1,
                 hp::ipv4_site_address(127, 0, 0, 1),
                 {},
                 {{3, hp::Transport::tcp, 0}, {2, hp::Transport::udp, 0}}});
            hp::HandleServer server(io, *registry, options);
            server.start();
            std::thread io_thread([&] { io.run(); });
            std::printf("server on 127.0.0.1:%u (TCP and UDP), 1 io thread; load generator on "
                        "this thread, %u in flight, %.0f s each\n",
                        server.tcp_port(), in_flight, seconds);

            socklen_t length = 0;
            const auto target =
                parse_endpoint("127.0.0.1:" + std::to_string(server.udp_port()), length);
            for (unsigned round = 0; round < rounds; ++round) {
                if (only != "tcp") {
                    if (round == 0) {
                        (void)run_udp(target, length, requests, in_flight, 1.0); // warm-up
                    }
                    results.push_back(run_udp(target, length, requests, in_flight, seconds));
                }
                if (only != "udp") {
                    if (round == 0) {
                        (void)run_tcp(target, length, requests, in_flight, 1.0);
                    }
                    results.push_back(run_tcp(target, length, requests, in_flight, seconds));
                }
            }

            server_stats = server.stats();
            server.stop();
            io_thread.join();
        }
        std::filesystem::remove_all(base);
        print_server_stats(server_stats);
        print_table(results, in_flight);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "handle_load: %s\n", e.what());
        return 1;
    }
    return 0;
}
