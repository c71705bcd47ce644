// The Handle protocol server over real sockets: a Registry in a temporary directory, a
// HandleServer on 127.0.0.1 (ephemeral port) with one thread running its io_context, and plain
// blocking sockets as clients.
#include "handle_test_support.hpp"
#include "store_helpers.hpp"

#include "idnode/resolver/handle_server.hpp"

#include <boost/asio/io_context.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "idnode/node/homing.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <random>
#include <thread>

using namespace handle_test;
using idnode::test::reduced;
using idnode::test::TempDir;

namespace {

using Ms = std::chrono::milliseconds;

std::uint32_t rc_of(std::string_view message) {
    return be32(message, hp::kEnvelopeSize + 4);
}
std::uint32_t request_id_of(std::string_view message) {
    return be32(message, 8);
}

// ---- Masked comparison with the golden vectors (as in handle_vectors_test.cpp) ----------------

struct Range {
    std::size_t offset;
    std::size_t length;
};

std::vector<Range> masks_for(std::string_view captured) {
    std::vector<Range> masks{{4, 4}, {8, 4}, {hp::kEnvelopeSize + 16, 4}}; // session, request, exp
    const std::uint32_t rc = rc_of(captured);
    if (rc == hp::rc::kSuccess && be32(captured, hp::kEnvelopeSize) == hp::opcode::kResolution) {
        std::size_t at = hp::kEnvelopeSize + hp::kHeaderSize;
        at += 4 + be32(captured, at); // handle
        const std::uint32_t count = be32(captured, at);
        at += 4;
        for (std::uint32_t i = 0; i < count; ++i) {
            masks.push_back({at + 4, 4}); // timestamp
            at += 4 + 4 + 1 + 4 + 1;      // index, timestamp, ttl type, ttl, permissions
            at += 4 + be32(captured, at); // type
            at += 4 + be32(captured, at); // data
            const std::uint32_t refs = be32(captured, at);
            at += 4;
            for (std::uint32_t r = 0; r < refs; ++r) {
                at += 4 + be32(captured, at) + 4;
            }
        }
    }
    if (rc == hp::rc::kAuthenticationNeeded) {
        masks.push_back({captured.size() - 4 - 16, 16}); // the challenge nonce
    }
    return masks;
}

void check_same(std::string expected, std::string actual) {
    REQUIRE(actual.size() == expected.size());
    for (const auto& m : masks_for(expected)) {
        std::fill_n(expected.begin() + static_cast<std::ptrdiff_t>(m.offset), m.length, '\0');
        std::fill_n(actual.begin() + static_cast<std::ptrdiff_t>(m.offset), m.length, '\0');
    }
    CHECK(to_hex(actual) == to_hex(expected));
}

const char* const kVectors[] = {"resolve-all",
                                "resolve-lowercase",
                                "resolve-not-found",
                                "resolve-not-homed",
                                "resolve-filter-type-URL-index-2000",
                                "resolve-public-only-flag",
                                "get-site-info"};

// ---- The server under test ---------------------------------------------------------------------

constexpr std::string_view kBigHandle = "88.999/BIG-1";
constexpr int kNumbered = 200; // 88.999/N-0 .. N-199

std::string numbered(int i) {
    return "88.999/N-" + std::to_string(i);
}

class Rig {
public:
    explicit Rig(const std::function<void(hp::HandleServerOptions&)>& customize = {},
                 int io_threads = 1) {
        registry_ = reg::Registry::open(idnode::test::options_in(dir_));
        REQUIRE(registry_->write(idnode::test::put(kHandle, steel_values())).ok());
        REQUIRE(registry_
                    ->write(idnode::test::put(
                        kBigHandle, {idnode::test::val(1, "URL", "https://example.cn/big"),
                                     idnode::test::val(2, "DESC", std::string(1500, 'x'))}))
                    .ok());
        reg::WriteBatch batch;
        for (int i = 0; i < kNumbered; ++i) {
            batch.ops.emplace_back(idnode::test::put(
                numbered(i),
                {idnode::test::val(1, "URL", "https://example.cn/n/" + std::to_string(i))}));
        }
        for (const auto& r : registry_->write(std::move(batch))) {
            REQUIRE(r.ok());
        }

        hp::HandleServerOptions options;
        options.address = "127.0.0.1";
        options.port = 0;
        options.responder.site =
            capture_site(capture_rsa_modulus(vectors.at("get-site-info").response));
        options.homed_prefixes = {"88.999"};
        customize_defaults(options);
        if (customize) {
            customize(options);
        }
        server_ = std::make_unique<hp::HandleServer>(io_, *registry_, std::move(options));
        server_->start();
        for (int i = 0; i < io_threads; ++i) {
            threads_.emplace_back([this] { io_.run(); });
        }
    }

    ~Rig() { stop(); }

    void stop() {
        if (!threads_.empty()) {
            server_->stop();
            for (auto& t : threads_) {
                t.join();
            }
            threads_.clear();
        }
    }

    hp::HandleServer& server() { return *server_; }
    std::uint16_t tcp_port() const { return server_->tcp_port(); }
    std::uint16_t udp_port() const { return server_->udp_port(); }

    std::map<std::string, Vector> vectors = load_vectors();

private:
    static void customize_defaults(hp::HandleServerOptions& options) {
        options.idle_timeout = Ms(10'000);
    }

    TempDir dir_{"idnode-handle-server"};
    std::unique_ptr<reg::Registry> registry_;
    boost::asio::io_context io_;
    std::unique_ptr<hp::HandleServer> server_;
    std::vector<std::thread> threads_;
};

// ---- Blocking clients --------------------------------------------------------------------------

sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

/// Waits until `fd` is readable; false on timeout.
bool readable(int fd, Ms timeout) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(timeout.count())) == 1;
}

class Socket {
public:
    explicit Socket(int fd) : fd_(fd) { REQUIRE(fd_ >= 0); }
    ~Socket() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    int fd() const { return fd_; }

protected:
    int fd_;
};

class UdpClient : public Socket {
public:
    explicit UdpClient(std::uint16_t port) : Socket(::socket(AF_INET, SOCK_DGRAM, 0)) {
        const auto a = loopback(port);
        REQUIRE(::connect(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0);
    }
    void send(std::string_view datagram) {
        REQUIRE(::send(fd_, datagram.data(), datagram.size(), 0) ==
                static_cast<ssize_t>(datagram.size()));
    }
    /// The next datagram, or nullopt if none arrives in time.
    std::optional<std::string> receive(Ms timeout = Ms(3000)) {
        if (!readable(fd_, timeout)) {
            return std::nullopt;
        }
        std::string buf(70'000, '\0');
        const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
        if (n < 0) {
            return std::nullopt;
        }
        buf.resize(static_cast<std::size_t>(n));
        return buf;
    }
    std::string exchange(std::string_view request) {
        send(request);
        auto reply = receive();
        REQUIRE_MESSAGE(reply.has_value(), "no UDP reply");
        return *reply;
    }
};

class TcpClient : public Socket {
public:
    explicit TcpClient(std::uint16_t port) : Socket(::socket(AF_INET, SOCK_STREAM, 0)) {
        const auto a = loopback(port);
        REQUIRE(::connect(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0);
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    void send(std::string_view bytes) {
        while (!bytes.empty()) {
            const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            REQUIRE(n > 0);
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
    }
    /// Exactly n bytes, or nullopt if the connection ends (or nothing comes) first.
    std::optional<std::string> read_exactly(std::size_t n, Ms timeout = Ms(5000)) {
        std::string out(n, '\0');
        std::size_t got = 0;
        while (got < n) {
            if (!readable(fd_, timeout)) {
                return std::nullopt;
            }
            const ssize_t r = ::recv(fd_, out.data() + got, n - got, 0);
            if (r <= 0) {
                return std::nullopt;
            }
            got += static_cast<std::size_t>(r);
        }
        return out;
    }
    /// One whole message (envelope + message_length bytes).
    std::optional<std::string> read_message(Ms timeout = Ms(5000)) {
        auto envelope = read_exactly(hp::kEnvelopeSize, timeout);
        if (!envelope) {
            return std::nullopt;
        }
        auto rest = read_exactly(be32(*envelope, 16), timeout);
        if (!rest) {
            return std::nullopt;
        }
        return *envelope + *rest;
    }
    std::string exchange(std::string_view request) {
        send(request);
        auto reply = read_message();
        REQUIRE_MESSAGE(reply.has_value(), "no TCP reply");
        return *reply;
    }
    /// True if the server closes the connection (EOF or reset) within `timeout`.
    bool closed_by_peer(Ms timeout = Ms(3000)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        char buf[4096];
        while (std::chrono::steady_clock::now() < deadline) {
            if (!readable(fd_, Ms(50))) {
                continue;
            }
            const ssize_t r = ::recv(fd_, buf, sizeof buf, 0);
            if (r <= 0) {
                return true;
            }
        }
        return false;
    }
};

std::string resolve_with_id(std::string_view handle, std::uint32_t request_id,
                            std::uint32_t op_flags = hp::opflag::kPublicOnly) {
    RequestSpec spec;
    spec.request_id = request_id;
    spec.op_flags = op_flags;
    return resolve(handle, {}, {}, spec);
}

template <class Predicate> bool eventually(Predicate p, Ms timeout = Ms(3000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!p()) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        std::this_thread::sleep_for(Ms(5));
    }
    return true;
}

std::uint64_t count_of(const std::vector<hp::HandleServerStats::CodeCount>& v, std::uint32_t code) {
    for (const auto& c : v) {
        if (c.code == code) {
            return c.count;
        }
    }
    return 0;
}

} // namespace

TEST_CASE("homed prefixes: equal to or under a configured one (node::Homing, as the HTTPS API)") {
    const idnode::node::Homing homing({"88.118", "20.500.123"});
    CHECK(homing.homes("88.118"));
    CHECK(homing.homes("88.118.8"));
    CHECK(homing.homes("88.118.8.1"));
    CHECK(homing.homes("20.500.123"));
    CHECK_FALSE(homing.homes("88.1180"));
    CHECK_FALSE(homing.homes("88"));
    CHECK_FALSE(homing.homes("20.500"));
    CHECK_FALSE(idnode::node::Homing().homes("88.118"));
}

TEST_CASE("golden vectors over TCP, one connection for all, byte for byte (clock fields masked)") {
    Rig rig;
    TcpClient client(rig.tcp_port());
    for (const char* name : kVectors) {
        INFO("vector " << name);
        const Vector& v = rig.vectors.at(name);
        const std::string reply = client.exchange(v.request);
        check_same(v.response, reply);
        CHECK(request_id_of(reply) == request_id_of(v.request));
    }
}

TEST_CASE("golden vectors over UDP: the same bytes") {
    Rig rig;
    UdpClient client(rig.udp_port());
    for (const char* name : kVectors) {
        INFO("vector " << name);
        const Vector& v = rig.vectors.at(name);
        const std::string reply = client.exchange(v.request);
        REQUIRE(v.response.size() <= hp::kMaxUdpDatagram); // each fits one datagram
        check_same(v.response, reply);
        CHECK(request_id_of(reply) == request_id_of(v.request));
    }
}

TEST_CASE("filters, PUBL, RC 200, not found, not homed and invalid handles over both transports") {
    Rig rig;
    TcpClient tcp(rig.tcp_port());
    UdpClient udp(rig.udp_port());
    for (int transport = 0; transport < 2; ++transport) {
        INFO((transport == 0 ? "tcp" : "udp"));
        auto ask = [&](const std::string& request) {
            return transport == 0 ? tcp.exchange(request) : udp.exchange(request);
        };
        RequestSpec publ;
        publ.op_flags = hp::opflag::kPublicOnly;

        // Index filter: only index 2000.
        auto r = parse(ask(resolve(kHandle, {2000}, {}, publ)));
        REQUIRE(r.view.header.response_code == hp::rc::kSuccess);
        auto record = hp::decode_resolution_response(r.view.body);
        REQUIRE(record.ok());
        REQUIRE(record->values.size() == 1);
        CHECK(record->values[0].type == "heat_no");

        // Type filter with a subtype match ("URL." would match URL.x; "URL" matches URL).
        r = parse(ask(resolve(kHandle, {}, {"URL"})));
        REQUIRE(r.view.header.response_code == hp::rc::kSuccess);
        record = hp::decode_resolution_response(r.view.body);
        REQUIRE(record.ok());
        REQUIRE(record->values.size() == 1);
        CHECK(record->values[0].index == 1);

        // PUBL: the private price is left out, the rest comes back.
        r = parse(ask(resolve(kHandle, {}, {}, publ)));
        REQUIRE(r.view.header.response_code == hp::rc::kSuccess);
        record = hp::decode_resolution_response(r.view.body);
        REQUIRE(record.ok());
        CHECK(record->values.size() == 2);
        // Without PUBL the private value asks for authentication.
        CHECK(rc_of(ask(resolve(kHandle))) == hp::rc::kAuthenticationNeeded);
        // Filters that match nothing.
        CHECK(rc_of(ask(resolve(kHandle, {77}, {}, publ))) == hp::rc::kValuesNotFound);
        // Case-insensitive match, handle echoed as spelled.
        r = parse(ask(resolve("88.999/steel-h2024-001", {1})));
        REQUIRE(r.view.header.response_code == hp::rc::kSuccess);
        CHECK(hp::decode_resolution_response(r.view.body)->spelling == "88.999/steel-h2024-001");

        CHECK(rc_of(ask(resolve("88.999/NO-SUCH", {}, {}, publ))) == hp::rc::kHandleNotFound);
        CHECK(rc_of(ask(resolve("77.1/X", {}, {}, publ))) == hp::rc::kServerNotResponsible);
        CHECK(rc_of(ask(resolve("no-slash", {}, {}, publ))) == hp::rc::kInvalidHandle);
        CHECK(rc_of(ask(resolve("88.999/", {}, {}, publ))) == hp::rc::kInvalidHandle);
        CHECK(rc_of(ask(resolve("88.999/bad\x01", {}, {}, publ))) == hp::rc::kInvalidHandle);
        // A prefix under a homed one is homed: it is simply not found here.
        CHECK(rc_of(ask(resolve("88.999.1/X", {}, {}, publ))) == hp::rc::kHandleNotFound);
        // Unsupported opcode.
        RequestSpec list;
        list.opcode = hp::opcode::kListHandles;
        CHECK(rc_of(ask(make_message(list, resolution_body("88.999/X")))) ==
              hp::rc::kOperationNotSupported);
    }
}

TEST_CASE("0.NA/<homed prefix> resolves to the site, with the bound ports filled in") {
    Rig rig([](hp::HandleServerOptions& o) {
        for (auto& i : o.responder.site.servers.at(0).interfaces) {
            if (i.transport != hp::Transport::http) {
                i.port = 0; // "the port we get"
            }
        }
    });
    const auto& site = rig.server().responder_config().site;
    CHECK(site.servers.at(0).interfaces.at(0).port == rig.tcp_port());
    CHECK(site.servers.at(0).interfaces.at(1).port == rig.udp_port());
    CHECK(rig.tcp_port() == rig.udp_port());

    TcpClient client(rig.tcp_port());
    auto r = parse(client.exchange(resolve("0.NA/88.999")));
    REQUIRE(r.view.header.response_code == hp::rc::kSuccess);
    auto record = hp::decode_resolution_response(r.view.body);
    REQUIRE(record.ok());
    // The node prefix's record: its HS_SITE and its HS_ADMIN (prefix_records.hpp).
    REQUIRE(record->values.size() == 2);
    CHECK(record->values[0].index == 1);
    CHECK(record->values[0].type == "HS_SITE");
    auto decoded = hp::decode_site_info(record->values[0].data);
    REQUIRE(decoded.ok());
    CHECK(decoded->servers.at(0).interfaces.at(0).port == rig.tcp_port());
    CHECK(record->values[1].index == 100);
    CHECK(record->values[1].type == "HS_ADMIN");
    CHECK(record->values[1].data == hp::encode_admin_value("0.NA/88.999", 300));
    CHECK(rc_of(client.exchange(resolve("0.NA/77.1"))) == hp::rc::kServerNotResponsible);
    // A prefix under the node prefix that was never allocated has no record.
    CHECK(rc_of(client.exchange(resolve("0.NA/88.999.7"))) == hp::rc::kHandleNotFound);
}

TEST_CASE("a reply over 512 bytes goes out as every fragment over UDP, and whole over TCP") {
    Rig rig;
    const std::string request = resolve(kBigHandle);
    UdpClient udp(rig.udp_port());
    udp.send(request);
    std::vector<std::string> parts;
    while (auto d = udp.receive(Ms(parts.empty() ? 3000 : 300))) {
        parts.push_back(*d);
    }
    REQUIRE(parts.size() >= 2);
    std::string payload;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        CAPTURE(i);
        CHECK(parts[i].size() <= hp::kMaxUdpDatagram);
        if (i + 1 < parts.size()) {
            CHECK(parts[i].size() == hp::kMaxUdpDatagram); // clients place fragment i at i x 492
        }
        CHECK((static_cast<unsigned char>(parts[i][2]) & hp::envflag::kTruncated) != 0);
        CHECK(be32(parts[i], 12) == i); // message_id = sequence number
        CHECK(be32(parts[i], 16) == be32(parts[0], 16));
        payload += parts[i].substr(hp::kEnvelopeSize);
    }
    CHECK(payload.size() == be32(parts[0], 16));

    TcpClient tcp(rig.tcp_port());
    const std::string whole = tcp.exchange(request);
    auto r = parse(whole);
    REQUIRE(r.view.header.response_code == hp::rc::kSuccess);
    auto record = hp::decode_resolution_response(r.view.body);
    REQUIRE(record.ok());
    CHECK(record->values.size() == 2);
    // Reassembled, the fragments are the TCP answer (the header's expiration, a clock field,
    // aside).
    CHECK(payload.substr(hp::kHeaderSize) == whole.substr(hp::kEnvelopeSize + hp::kHeaderSize));

    const auto stats = rig.server().stats();
    CHECK(stats.udp_fragmented == 1);
    CHECK(stats.udp_too_large == 0);
    CHECK(stats.udp_datagrams_sent == parts.size());
}

TEST_CASE("10,000 requests on one TCP connection") {
    Rig rig;
    TcpClient client(rig.tcp_port());
    const int total = reduced() ? 1'000 : 10'000;
    std::mt19937 rng(7);
    int ok = 0;
    for (int i = 0; i < total; ++i) {
        const int n = static_cast<int>(rng() % kNumbered);
        const auto id = static_cast<std::uint32_t>(i + 1);
        const std::string reply = client.exchange(resolve_with_id(numbered(n), id));
        ok += (rc_of(reply) == hp::rc::kSuccess && request_id_of(reply) == id) ? 1 : 0;
    }
    CHECK(ok == total);
    const auto stats = rig.server().stats();
    CHECK(stats.tcp_requests == static_cast<std::uint64_t>(total));
    CHECK(stats.tcp_connections_accepted == 1);
    CHECK(stats.tcp_connections_open == 1);
    CHECK(count_of(stats.requests_by_opcode, hp::opcode::kResolution) ==
          static_cast<std::uint64_t>(total));
    CHECK(count_of(stats.responses_by_rc, hp::rc::kSuccess) == static_cast<std::uint64_t>(total));
    CHECK(stats.latency_counts.size() == stats.latency_bounds.size() + 1);
    // The last latency is recorded when the server's write completes, which may be after the
    // client has read the reply.
    CHECK(eventually([&] {
        return rig.server().stats().latency_counts.back() == static_cast<std::uint64_t>(total);
    }));
}

TEST_CASE("pipelined requests: 100 in one send, 100 replies in order") {
    Rig rig;
    TcpClient client(rig.tcp_port());
    for (int round = 0; round < 3; ++round) {
        std::string burst;
        for (int i = 0; i < 100; ++i) {
            // Every fourth one is not found, to mix reply sizes.
            const std::string h = i % 4 == 3 ? "88.999/MISSING" : numbered(i);
            burst += resolve_with_id(h, static_cast<std::uint32_t>(round * 1000 + i));
        }
        client.send(burst);
        for (int i = 0; i < 100; ++i) {
            auto reply = client.read_message();
            REQUIRE(reply.has_value());
            CHECK(request_id_of(*reply) == static_cast<std::uint32_t>(round * 1000 + i));
            CHECK(rc_of(*reply) == (i % 4 == 3 ? hp::rc::kHandleNotFound : hp::rc::kSuccess));
        }
    }
    // A frame split over several sends is reassembled.
    const std::string request = resolve_with_id(numbered(5), 4242);
    for (char c : request) {
        client.send(std::string_view(&c, 1));
    }
    const std::string reply = client.exchange("");
    CHECK(request_id_of(reply) == 4242);
    CHECK(rc_of(reply) == hp::rc::kSuccess);
}

TEST_CASE("garbage, short and oversize input over TCP: RC 4 or closed; others keep being served") {
    Rig rig;
    TcpClient bystander(rig.tcp_port());
    CHECK(rc_of(bystander.exchange(resolve_with_id(numbered(1), 1))) == hp::rc::kSuccess);

    SUBCASE("oversize declared length: RC 4, then closed") {
        TcpClient c(rig.tcp_port());
        RequestSpec spec;
        spec.request_id = 99;
        std::string msg = make_message(spec, resolution_body(numbered(1)));
        msg[16] = '\x7f'; // message_length way over 256 KiB
        c.send(msg);
        auto reply = c.read_message();
        REQUIRE(reply.has_value());
        CHECK(rc_of(*reply) == hp::rc::kProtocolError);
        CHECK(request_id_of(*reply) == 99);
        CHECK(c.closed_by_peer());
    }
    SUBCASE("a well-framed message with a garbage body: RC 4, connection kept") {
        TcpClient c(rig.tcp_port());
        RequestSpec spec;
        spec.request_id = 5;
        c.send(make_message(spec, "\xff\xff\xff\xff garbage"));
        auto reply = c.read_message();
        REQUIRE(reply.has_value());
        CHECK(rc_of(*reply) == hp::rc::kProtocolError);
        CHECK(rc_of(c.exchange(resolve_with_id(numbered(2), 6))) == hp::rc::kSuccess);
    }
    SUBCASE("wrong major version and lengths that disagree: RC 4") {
        TcpClient c(rig.tcp_port());
        std::string msg = resolve_with_id(numbered(1), 8);
        msg[0] = 7;
        CHECK(rc_of(c.exchange(msg)) == hp::rc::kProtocolError);
        msg = resolve_with_id(numbered(1), 9);
        msg[hp::kEnvelopeSize + 23] =
            static_cast<char>(msg[hp::kEnvelopeSize + 23] + 1); // body len
        CHECK(rc_of(c.exchange(msg)) == hp::rc::kProtocolError);
        CHECK(rc_of(c.exchange(resolve_with_id(numbered(3), 10))) == hp::rc::kSuccess);
    }
    SUBCASE("random bytes: answered, dropped or closed, never a crash") {
        std::mt19937 rng(11);
        for (int i = 0; i < 20; ++i) {
            TcpClient c(rig.tcp_port());
            std::string junk(static_cast<std::size_t>(rng() % 200 + 1), '\0');
            for (auto& ch : junk) {
                ch = static_cast<char>(rng());
            }
            c.send(junk);
            ::shutdown(c.fd(), SHUT_WR);
            CHECK(c.closed_by_peer());
        }
    }
    SUBCASE("a short input then the client closes") {
        {
            TcpClient c(rig.tcp_port());
            c.send("\x02\x0b\x02");
        }
        TcpClient c(rig.tcp_port());
        c.send(std::string("\x02\x0b", 2));
        ::shutdown(c.fd(), SHUT_WR);
        CHECK(c.closed_by_peer());
    }
    SUBCASE("a response sent to the server is not answered") {
        TcpClient c(rig.tcp_port());
        std::string msg = resolve_with_id(numbered(1), 12);
        msg[hp::kEnvelopeSize + 7] = 1; // response code 1: it is a response
        c.send(msg);
        CHECK(rc_of(c.exchange(resolve_with_id(numbered(1), 13))) == hp::rc::kSuccess);
    }
    CHECK(rc_of(bystander.exchange(resolve_with_id(numbered(4), 2))) == hp::rc::kSuccess);
}

TEST_CASE("garbage, short and oversize datagrams: no crash, others keep being served") {
    Rig rig;
    UdpClient c(rig.udp_port());
    c.send("x");                                  // shorter than an envelope: dropped
    c.send(std::string(hp::kEnvelopeSize, '\0')); // an envelope and nothing else
    std::string oversize = resolve_with_id(numbered(1), 21);
    oversize[16] = '\x7f';
    c.send(oversize);
    std::string big = resolve_with_id(numbered(1), 22);
    big.append(20'000, 'z'); // longer than the server reads whole
    c.send(big);
    std::mt19937 rng(3);
    for (int i = 0; i < 50; ++i) {
        std::string junk(static_cast<std::size_t>(rng() % 600 + 1), '\0');
        for (auto& ch : junk) {
            ch = static_cast<char>(rng());
        }
        c.send(junk);
    }
    // Whatever came back is a framed RC 4 answer no larger than the UDP policy.
    while (auto reply = c.receive(Ms(300))) {
        REQUIRE(reply->size() >= hp::kEnvelopeSize + hp::kHeaderSize);
        CHECK(reply->size() <= hp::kMaxUdpDatagram);
        CHECK(rc_of(*reply) == hp::rc::kProtocolError);
    }
    UdpClient other(rig.udp_port());
    const std::string reply = other.exchange(resolve_with_id(numbered(9), 23));
    CHECK(rc_of(reply) == hp::rc::kSuccess);
    CHECK(request_id_of(reply) == 23);
    CHECK(rig.server().stats().malformed >= 3);
}

TEST_CASE("concurrent UDP and TCP clients from several threads") {
    // One io thread, and three: every socket runs on its own strand.
    for (const int io_threads : {1, 3}) {
        INFO("io threads: " << io_threads);
        Rig rig({}, io_threads);
        const int per_thread = reduced() ? 100 : 500;
        std::atomic<int> good{0};
        std::atomic<int> bad{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < 6; ++t) {
            threads.emplace_back([&, t] {
                std::mt19937 rng(static_cast<unsigned>(t));
                std::unique_ptr<UdpClient> udp;
                std::unique_ptr<TcpClient> tcp;
                if (t % 2 == 0) {
                    udp = std::make_unique<UdpClient>(rig.udp_port());
                } else {
                    tcp = std::make_unique<TcpClient>(rig.tcp_port());
                }
                for (int i = 0; i < per_thread; ++i) {
                    const int n = static_cast<int>(rng() % kNumbered);
                    const auto id = static_cast<std::uint32_t>(t * 100'000 + i);
                    const std::string req = resolve_with_id(numbered(n), id);
                    std::optional<std::string> reply;
                    if (udp) {
                        udp->send(req);
                        reply = udp->receive();
                    } else {
                        tcp->send(req);
                        reply = tcp->read_message();
                    }
                    if (!reply || request_id_of(*reply) != id ||
                        rc_of(*reply) != hp::rc::kSuccess) {
                        ++bad;
                        continue;
                    }
                    auto record = hp::decode_resolution_response(parse(*reply).view.body);
                    if (record.ok() && record->spelling == numbered(n)) {
                        ++good;
                    } else {
                        ++bad;
                    }
                }
            });
        }
        for (auto& t : threads) {
            t.join();
        }
        CHECK(bad == 0);
        CHECK(good == 6 * per_thread);
    }
}

TEST_CASE("stop() while clients are busy, three io threads: no hang, no crash") {
    Rig rig({}, 3);
    std::atomic<bool> done{false};
    std::atomic<int> answered{0};
    std::vector<std::thread> clients;
    for (int t = 0; t < 4; ++t) {
        clients.emplace_back([&, t] {
            // Raw sockets without REQUIRE: failures are expected once the server stops.
            while (!done) {
                const int fd = ::socket(AF_INET, t % 2 == 0 ? SOCK_STREAM : SOCK_DGRAM, 0);
                const auto a = loopback(t % 2 == 0 ? rig.tcp_port() : rig.udp_port());
                if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
                    if (fd >= 0) {
                        ::close(fd);
                    }
                    std::this_thread::sleep_for(Ms(5));
                    continue;
                }
                std::string burst;
                for (int i = 0; i < 20; ++i) {
                    burst += resolve_with_id(numbered(i), static_cast<std::uint32_t>(i));
                }
                if (t % 2 == 0) {
                    (void)::send(fd, burst.data(), burst.size(), MSG_NOSIGNAL);
                } else {
                    const std::string one = resolve_with_id(numbered(1), 1);
                    (void)::send(fd, one.data(), one.size(), 0);
                }
                char buf[4096];
                if (readable(fd, Ms(200)) && ::recv(fd, buf, sizeof buf, 0) > 0) {
                    ++answered;
                }
                ::close(fd); // often with replies unread: the server sees resets
            }
        });
    }
    CHECK(eventually([&] { return answered.load() > 20; }));
    rig.stop(); // joins the io threads: returns only if every handler finished
    done = true;
    for (auto& c : clients) {
        c.join();
    }
    CHECK(rig.server().stats().tcp_connections_open == 0);
}

TEST_CASE("an idle connection is closed after the idle timeout; an active one is not") {
    Rig rig([](hp::HandleServerOptions& o) { o.idle_timeout = Ms(500); });
    TcpClient idle(rig.tcp_port());
    TcpClient active(rig.tcp_port());
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 8; ++i) {
        std::this_thread::sleep_for(Ms(100));
        CHECK(rc_of(active.exchange(resolve_with_id(numbered(i), 1))) == hp::rc::kSuccess);
    }
    CHECK(idle.closed_by_peer(Ms(2000)));
    CHECK(std::chrono::steady_clock::now() - start >= Ms(500));
    CHECK(rc_of(active.exchange(resolve_with_id(numbered(1), 2))) == hp::rc::kSuccess);
    CHECK(eventually([&] { return rig.server().stats().tcp_idle_closed == 1; }));
}

TEST_CASE("connections over the cap are closed at once; room frees up when one closes") {
    Rig rig([](hp::HandleServerOptions& o) { o.max_connections = 2; });
    auto a = std::make_unique<TcpClient>(rig.tcp_port());
    TcpClient b(rig.tcp_port());
    CHECK(rc_of(a->exchange(resolve_with_id(numbered(1), 1))) == hp::rc::kSuccess);
    CHECK(rc_of(b.exchange(resolve_with_id(numbered(1), 2))) == hp::rc::kSuccess);
    {
        TcpClient c(rig.tcp_port());
        CHECK(c.closed_by_peer());
    }
    CHECK(rig.server().stats().tcp_connections_rejected == 1);
    a.reset();
    CHECK(eventually([&] { return rig.server().stats().tcp_connections_open == 1; }));
    TcpClient d(rig.tcp_port());
    CHECK(rc_of(d.exchange(resolve_with_id(numbered(1), 3))) == hp::rc::kSuccess);
}

TEST_CASE("per-IP rate limit: RC 3 over TCP, silence over UDP, tokens come back") {
    Rig rig([](hp::HandleServerOptions& o) {
        o.rate_per_ip = 4;
        o.rate_burst = 5;
    });
    TcpClient tcp(rig.tcp_port());
    int ok = 0, busy = 0;
    std::string burst;
    for (int i = 0; i < 10; ++i) {
        burst += resolve_with_id(numbered(i), static_cast<std::uint32_t>(i));
    }
    tcp.send(burst); // one read: the bucket cannot refill in between
    for (int i = 0; i < 10; ++i) {
        auto reply = tcp.read_message();
        REQUIRE(reply.has_value());
        CHECK(request_id_of(*reply) == static_cast<std::uint32_t>(i));
        const auto rc = rc_of(*reply);
        ok += rc == hp::rc::kSuccess ? 1 : 0;
        busy += rc == hp::rc::kServerTooBusy ? 1 : 0;
    }
    CHECK(ok >= 5);
    CHECK(ok <= 6);
    CHECK(ok + busy == 10);

    // The bucket is empty: UDP datagrams are dropped without a word.
    UdpClient udp(rig.udp_port());
    udp.send(resolve_with_id(numbered(1), 100));
    udp.send(resolve_with_id(numbered(1), 101));
    int udp_replies = 0;
    while (udp.receive(Ms(20))) {
        ++udp_replies;
    }
    CHECK(udp_replies <= 1);
    const auto stats = rig.server().stats();
    CHECK(stats.rate_limited >= 5);
    CHECK(stats.rate_limited_udp >= 1);
    CHECK(count_of(stats.responses_by_rc, hp::rc::kServerTooBusy) ==
          static_cast<std::uint64_t>(busy));

    // After a while (4 tokens/s) requests are served again.
    std::this_thread::sleep_for(Ms(600));
    CHECK(rc_of(tcp.exchange(resolve_with_id(numbered(1), 200))) == hp::rc::kSuccess);
    CHECK(rc_of(udp.exchange(resolve_with_id(numbered(1), 201))) == hp::rc::kSuccess);
}

TEST_CASE("stop() closes connections and listeners and lets the io_context finish") {
    auto rig = std::make_unique<Rig>();
    const auto port = rig->tcp_port();
    TcpClient client(port);
    CHECK(rc_of(client.exchange(resolve_with_id(numbered(1), 1))) == hp::rc::kSuccess);
    rig->stop(); // returns only once io_context::run() has returned
    CHECK(client.closed_by_peer());
    const auto a = loopback(port);
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    CHECK(::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0);
    ::close(fd);
}

TEST_CASE("a port in use is a clear startup error") {
    Rig first;
    const auto port = first.tcp_port();
    TempDir dir("idnode-handle-server-2");
    auto registry = reg::Registry::open(idnode::test::options_in(dir));
    boost::asio::io_context io;
    hp::HandleServerOptions options;
    options.port = port;
    hp::HandleServer second(io, *registry, options);
    const std::string port_text = std::to_string(port);
    CHECK_THROWS_WITH_AS(second.start(), doctest::Contains(port_text.c_str()), std::system_error);

    options.address = "not-an-address";
    hp::HandleServer third(io, *registry, options);
    CHECK_THROWS_AS(third.start(), std::system_error);
}

TEST_CASE("a reply over udp_max_reply_bytes is refused with RC 2 so the client asks over TCP") {
    Rig rig([](hp::HandleServerOptions& o) { o.udp_policy.max_reply_bytes = 600; });
    UdpClient udp(rig.udp_port());
    const std::string request = resolve_with_id(kBigHandle, 4242);
    udp.send(request);
    const auto reply = udp.receive(Ms(3000));
    REQUIRE(reply.has_value());
    CHECK_FALSE(udp.receive(Ms(200)).has_value()); // one short datagram, nothing more
    CHECK(reply->size() < 200);
    auto r = parse(*reply);
    CHECK(r.view.envelope.request_id == 4242);
    CHECK(r.view.header.response_code == hp::rc::kError);
    const auto message = hp::decode_error_body(r.view.body);
    REQUIRE(message.ok());
    CHECK(std::string(*message).find("ask over TCP") != std::string::npos);

    TcpClient tcp(rig.tcp_port());
    CHECK(rc_of(tcp.exchange(request)) == hp::rc::kSuccess);
    const auto stats = rig.server().stats();
    CHECK(stats.udp_too_large == 1);
    CHECK(stats.udp_fragmented == 0);
}

TEST_CASE("refuse(): an error response addressed like answer()'s, nothing for responses") {
    Fixture f;
    RequestSpec spec;
    spec.request_id = 77;
    spec.op_flags = hp::opflag::kRequestDigest | hp::opflag::kPublicOnly;
    const std::string request = resolve(kHandle, {}, {}, spec);
    const hp::Answer a = hp::refuse(request, hp::rc::kServerTooBusy, "slow down", f.config, 1000);
    REQUIRE(a.disposition == hp::Disposition::reply);
    CHECK(a.response_code == hp::rc::kServerTooBusy);
    CHECK(a.opcode == hp::opcode::kResolution);
    auto r = parse(a.message);
    CHECK(r.view.envelope.request_id == 77);
    CHECK(r.view.header.expiration == 1000 + hp::kResponseLifetimeSeconds);
    CHECK((r.view.header.op_flags & hp::opflag::kRequestDigest) != 0);
    auto digest = hp::decode_request_digest(r.view.body);
    REQUIRE(digest.ok());
    CHECK(hp::decode_error_body(digest->rest).value() == "slow down");
    CHECK(f.lookups == 0);

    std::string response = request;
    response[hp::kEnvelopeSize + 7] = 1;
    CHECK(hp::refuse(response, hp::rc::kServerTooBusy, "x", f.config, 0).disposition ==
          hp::Disposition::drop);
    CHECK(hp::refuse("short", hp::rc::kServerTooBusy, "x", f.config, 0).disposition ==
          hp::Disposition::drop);
}

TEST_CASE("stats: requests by opcode and RC, per transport") {
    Rig rig;
    UdpClient udp(rig.udp_port());
    TcpClient tcp(rig.tcp_port());
    CHECK(rc_of(udp.exchange(resolve_with_id(numbered(1), 1))) == hp::rc::kSuccess);
    CHECK(rc_of(udp.exchange(resolve_with_id("88.999/NOPE", 2))) == hp::rc::kHandleNotFound);
    RequestSpec site;
    site.opcode = hp::opcode::kGetSiteInfo;
    CHECK(rc_of(tcp.exchange(make_message(site, ""))) == hp::rc::kSuccess);
    RequestSpec odd;
    odd.opcode = 9999;
    CHECK(rc_of(tcp.exchange(make_message(odd, ""))) == hp::rc::kOperationNotSupported);
    udp.send("tiny");
    CHECK(eventually([&] { return rig.server().stats().dropped == 1; }));
    const auto s = rig.server().stats();
    CHECK(s.udp_requests == 3);
    CHECK(s.udp_datagrams_sent == 2);
    CHECK(s.tcp_requests == 2);
    CHECK(count_of(s.requests_by_opcode, hp::opcode::kResolution) == 2);
    CHECK(count_of(s.requests_by_opcode, hp::opcode::kGetSiteInfo) == 1);
    CHECK(count_of(s.requests_by_opcode, 0xFFFF'FFFF) == 1); // unknown opcodes lumped together
    CHECK(count_of(s.requests_by_opcode, 0) == 1);           // unreadable
    CHECK(count_of(s.responses_by_rc, hp::rc::kSuccess) == 2);
    CHECK(count_of(s.responses_by_rc, hp::rc::kHandleNotFound) == 1);
    CHECK(count_of(s.responses_by_rc, hp::rc::kOperationNotSupported) == 1);
    CHECK(s.tcp_connections_open == 1);
}

TEST_CASE("a large request over TCP (about 160 KiB) is read whole; the connection goes on") {
    Rig rig;
    TcpClient client(rig.tcp_port());
    std::vector<std::string> names;
    for (int i = 0; i < 16'000; ++i) {
        names.push_back("TYPE-" + std::to_string(i));
    }
    std::vector<std::string_view> types(names.begin(), names.end());
    types.push_back("URL");
    const std::string big = resolve(kHandle, {}, types);
    REQUIRE(big.size() > 128 * 1024);
    REQUIRE(big.size() < hp::kMaxMessageLength);
    for (int round = 0; round < 2; ++round) {
        auto r = parse(client.exchange(big));
        REQUIRE(r.view.header.response_code == hp::rc::kSuccess);
        auto record = hp::decode_resolution_response(r.view.body);
        REQUIRE(record.ok());
        REQUIRE(record->values.size() == 1);
        CHECK(record->values[0].type == "URL");
        CHECK(rc_of(client.exchange(resolve_with_id(numbered(1), 5))) == hp::rc::kSuccess);
    }
}
