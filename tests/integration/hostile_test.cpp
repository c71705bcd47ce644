// Hostile clients against the real idnode binary (docs/api.md#hostile-clients): slow senders,
// connection floods, request smuggling shapes, malformed and oversize headers, weak TLS, Handle
// protocol garbage. Every case checks that a legitimate client is still served while (or right
// after) the attack runs. Simpler cases live elsewhere: 431/413 and a single slow header in
// limits_test.cpp, plain HTTP on the TLS port, TLS 1.1 and CBC-only TLS 1.2 in https_test.cpp,
// failed-login throttling in handle_api_test.cpp.
#include "harness.hpp"
#include "idnode/resolver/handle_protocol.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <doctest/doctest.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace idnode::test;
namespace hp = idnode::resolver::handle;

namespace {

TlsOptions trusting(const NodeProcess& node) {
    return trust(node.pki().ca_cert);
}

std::string ops_metrics(const NodeProcess& node) {
    return http_get(node.ops_port(), "/metrics").body();
}

/// A legitimate request on a fresh connection: true if the node answered it normally.
bool fresh_client_served(const NodeProcess& node) {
    HttpsClient client(node.https_port(), trusting(node));
    client.connect();
    return client.request(http::verb::get, "/legit").result() == http::status::not_found;
}

sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return to;
}

/// A raw TCP socket connected to 127.0.0.1:port (blocking, with a receive timeout); -1 on error.
int tcp_connect(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    const sockaddr_in to = loopback(port);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) {
        ::close(fd);
        return -1;
    }
    timeval tv{3, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

struct FdCloser {
    std::vector<int> fds;
    ~FdCloser() {
        for (int fd : fds)
            ::close(fd);
    }
};

/// Raises this process's soft RLIMIT_NOFILE towards the hard limit (children inherit it) and
/// returns the resulting soft limit.
rlim_t raise_fd_limit(rlim_t wanted) {
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur < wanted) {
        limit.rlim_cur = std::min(wanted, limit.rlim_max);
        ::setrlimit(RLIMIT_NOFILE, &limit);
        ::getrlimit(RLIMIT_NOFILE, &limit);
    }
    return limit.rlim_cur;
}

// ---- Handle protocol ------------------------------------------------------------------------

std::string resolution_message(const std::string& handle, std::uint32_t request_id) {
    std::string body;
    hp::encode_resolution_request(body, handle, {}, {});
    hp::Envelope env;
    env.request_id = request_id;
    hp::Header header;
    header.opcode = hp::opcode::kResolution;
    header.op_flags = hp::opflag::kPublicOnly;
    header.body_length = static_cast<std::uint32_t>(body.size());
    std::string out;
    hp::encode_message(out, env, header, body);
    return out;
}

/// One request over UDP; the reply's response code, or -1 if nothing came back in time.
long udp_resolve(std::uint16_t port, const std::string& handle, std::uint32_t request_id) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    const sockaddr_in to = loopback(port);
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const std::string request = resolution_message(handle, request_id);
    ::sendto(fd, request.data(), request.size(), 0, reinterpret_cast<const sockaddr*>(&to),
             sizeof to);
    char buffer[2048];
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    ::close(fd);
    if (n <= 0)
        return -1;
    auto message = hp::decode_message(std::string_view(buffer, static_cast<std::size_t>(n)));
    if (!message || message->envelope.request_id != request_id)
        return -1;
    return message->header.response_code;
}

/// Reads one framed Handle message from a TCP socket; empty if the peer closed or timed out.
std::string read_frame(int fd) {
    std::string buffer;
    for (;;) {
        const auto probe = hp::probe_frame(buffer);
        if (probe.state == hp::FrameProbe::State::complete)
            return buffer.substr(0, probe.size);
        char chunk[4096];
        const ssize_t got = ::recv(fd, chunk, sizeof chunk, 0);
        if (got <= 0)
            return {};
        buffer.append(chunk, static_cast<std::size_t>(got));
    }
}

/// One request over a fresh TCP connection; the reply's response code, or -1.
long tcp_resolve(std::uint16_t port, const std::string& handle, std::uint32_t request_id) {
    const int fd = tcp_connect(port);
    if (fd < 0)
        return -1;
    const std::string request = resolution_message(handle, request_id);
    ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    const std::string reply = read_frame(fd);
    ::close(fd);
    auto message = hp::decode_message(reply);
    return message ? static_cast<long>(message->header.response_code) : -1;
}

/// True once the peer has closed the TCP connection (EOF or reset) within `timeout`.
bool tcp_peer_closes(int fd, Millis timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char chunk[4096];
    while (std::chrono::steady_clock::now() < deadline) {
        const ssize_t got = ::recv(fd, chunk, sizeof chunk, MSG_DONTWAIT);
        if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            return true;
        if (got < 0)
            std::this_thread::sleep_for(10ms);
    }
    return false;
}

} // namespace

TEST_CASE("slowloris: dripped headers and bodies are cut off; others are served meanwhile") {
    NodeProcess node("slowloris");
    node.set("limits.header_timeout_s", "1");
    node.set("limits.idle_timeout_s", "2");
    node.start();
    HttpsClient legit(node.https_port(), trusting(node));
    legit.connect();

    // Each attacker has already been served once, so the header deadline is the per-request one.
    struct Loris {
        std::unique_ptr<HttpsClient> client;
        std::string drip;
        std::chrono::steady_clock::time_point start;
        std::optional<std::chrono::steady_clock::duration> lasted;
    };
    std::vector<Loris> lorises;
    for (const bool body : {false, true}) {
        Loris loris;
        loris.client = std::make_unique<HttpsClient>(node.https_port(), trusting(node));
        loris.client->connect();
        REQUIRE(loris.client->request(http::verb::get, "/warm-up").result() ==
                http::status::not_found);
        loris.start = std::chrono::steady_clock::now();
        if (body) {
            loris.client->write_raw("PUT /api/handles/88.1/x HTTP/1.1\r\nHost: localhost\r\n"
                                    "Content-Length: 1000\r\n\r\n");
            loris.drip = "{";
        } else {
            loris.client->write_raw("GET /slow HTTP/1.1\r\nHost: localhost\r\n");
            loris.drip = "X-Drip: 1\r\n";
        }
        lorises.push_back(std::move(loris));
    }
    // Drip one piece every 100 ms for up to 4 s; serve the legitimate client in between.
    int legit_served = 0;
    for (int tick = 0; tick < 40; ++tick) {
        std::this_thread::sleep_for(100ms);
        for (auto& loris : lorises) {
            if (loris.lasted)
                continue;
            if (loris.client->peer_hung_up())
                loris.lasted = std::chrono::steady_clock::now() - loris.start;
            else
                loris.client->write_raw(loris.drip);
        }
        if (legit.request(http::verb::get, "/legit").result() == http::status::not_found)
            ++legit_served;
        if (lorises[0].lasted && lorises[1].lasted)
            break;
    }
    REQUIRE(lorises[0].lasted); // header: limits.header_timeout_s = 1
    CHECK(*lorises[0].lasted >= 900ms);
    CHECK(*lorises[0].lasted < 2000ms);
    REQUIRE(lorises[1].lasted); // body: the whole body must arrive within idle_timeout_s = 2
    CHECK(*lorises[1].lasted >= 1900ms);
    CHECK(*lorises[1].lasted < 3000ms);
    CHECK(legit_served >= 15);

    const auto metrics = ops_metrics(node);
    CHECK(metric_value(metrics, R"(idnode_http_timeouts_total{phase="header"})") >= 1);
    CHECK(metric_value(metrics, R"(idnode_http_timeouts_total{phase="body"})") >= 1);
    CHECK(node.stop() == 0);
}

TEST_CASE("an idle-connection flood at the cap sheds idle connections, not clients") {
    // 10,000 idle connections (a few hundred in the reduced run) against a cap of that size:
    // the node holds them until the cap, then each new connection sheds the oldest connection
    // that never sent a request, so legitimate clients (new and already connected) are served.
    // This process and the node (which inherits the limit) each need one fd per connection.
    int flood = reduced_mode() ? 500 : 10000;
    const rlim_t fds = raise_fd_limit(static_cast<rlim_t>(flood) + 512);
    if (fds < static_cast<rlim_t>(flood) + 512) {
        flood = static_cast<int>(fds) - 512;
        MESSAGE("RLIMIT_NOFILE allows only " << fds << " fds: flooding with " << flood);
    }
    REQUIRE(flood >= 100);
    NodeProcess node("flood");
    node.set("limits.max_connections", std::to_string(flood));
    node.set("limits.header_timeout_s", "60"); // the flood must not simply time out
    node.start();

    HttpsClient regular(node.https_port(), trusting(node));
    regular.connect();
    REQUIRE(regular.request(http::verb::get, "/before").result() == http::status::not_found);

    const auto started = std::chrono::steady_clock::now();
    FdCloser attackers;
    attackers.fds.reserve(static_cast<std::size_t>(flood));
    // Non-blocking connects in batches of 1,000 (well under the listen backlog), each batch
    // accepted before the next: a burst beyond the backlog would only measure the kernel's SYN
    // retransmission back-off. 100 more than the cap, so that the flood itself is shed from.
    const sockaddr_in to = loopback(node.https_port());
    auto open_now = [&] {
        return metric_value(ops_metrics(node), "idnode_https_open_connections").value_or(-1);
    };
    const int total = flood + 100;
    for (int i = 0; i < total; ++i) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        REQUIRE_MESSAGE(fd >= 0, "socket #" << i << ": " << std::strerror(errno));
        attackers.fds.push_back(fd);
        const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to);
        REQUIRE_MESSAGE((rc == 0 || errno == EINPROGRESS),
                        "connect #" << i << ": " << std::strerror(errno));
        if ((i + 1) % 1000 == 0 || i + 1 == total) {
            const double expected = std::min(i + 2, flood); // + the regular client
            REQUIRE_MESSAGE(eventually([&] { return open_now() >= expected; }, 20s),
                            "the node holds " << open_now() << " connections, expected "
                                              << expected);
        }
    }
    MESSAGE(total << " idle connections opened and accepted in "
                  << std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - started)
                         .count()
                  << " ms");
    // The node is at its cap: every slot is taken (the regular client plus the flood).
    CHECK(eventually([&] { return open_now() == static_cast<double>(flood); }));

    // A connection that already sent a request is never shed; new clients get in.
    CHECK(regular.request(http::verb::get, "/during").result() == http::status::not_found);
    // The attacker keeps the cap full (one more idle connection after each client leaves).
    for (int i = 0; i < 5; ++i) {
        CHECK(fresh_client_served(node));
        const int fd = tcp_connect(node.https_port());
        REQUIRE(fd >= 0);
        attackers.fds.push_back(fd);
    }
    const auto metrics = ops_metrics(node);
    CHECK(metric_value(metrics, R"(idnode_connections_rejected_total{reason="shed_idle"})") >= 6);
    // The oldest attackers were the ones shed.
    CHECK(tcp_peer_closes(attackers.fds.front(), 2s));
    CHECK(regular.request(http::verb::get, "/after").result() == http::status::not_found);
    CHECK(node.stop() == 0);
}

TEST_CASE("request smuggling shapes and malformed headers get 400 and lose the connection") {
    NodeProcess node("smuggling");
    node.set("limits.max_header_bytes", "4096");
    node.start();
    HttpsClient legit(node.https_port(), trusting(node));
    legit.connect();

    const std::string post = "POST /x HTTP/1.1\r\nHost: localhost\r\n";
    const std::pair<const char*, std::string> cases[] = {
        {"Content-Length with Transfer-Encoding",
         post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
        {"Transfer-Encoding with Content-Length",
         post + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"},
        {"conflicting Content-Length",
         post + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"},
        {"duplicate Content-Length", post + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello"},
        {"Content-Length list", post + "Content-Length: 5, 5\r\n\r\nhello"},
        {"signed Content-Length", post + "Content-Length: +5\r\n\r\nhello"},
        {"Transfer-Encoding not ending in chunked",
         post + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"},
        {"unknown Transfer-Encoding", post + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"},
        {"space before the colon", post + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"},
        {"folded Transfer-Encoding list",
         post + "Transfer-Encoding: chunked,\r\n gzip\r\n\r\n0\r\n\r\n"},
        {"Transfer-Encoding twice",
         post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
        {"chunk size not hex", post + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"},
        {"chunk size overflow",
         post + "Transfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n"},
        {"negative chunk size",
         post + "Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n"},
        {"chunk longer than its size",
         post + "Transfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n"},
        {"header without colon", "GET /x HTTP/1.1\r\nHost: localhost\r\nNoColonHere\r\n\r\n"},
        {"space in header name", "GET /x HTTP/1.1\r\nHost: localhost\r\nBad Name: x\r\n\r\n"},
        {"control byte in header value",
         [] {
             static constexpr char raw[] =
                 "GET /x HTTP/1.1\r\nHost: localhost\r\nX-Nul: a\0b\r\n\r\n";
             return std::string(raw, sizeof raw - 1); // the NUL inside included, the final one not
         }()},
        {"bare LF line ends", "GET /x HTTP/1.1\nHost: localhost\n\n"},
        {"garbage request line", "\x16\x03\x01 what is this\r\n\r\n"},
        {"missing HTTP version", "GET /x\r\nHost: localhost\r\n\r\n"},
    };
    for (const auto& [name, bytes] : cases) {
        CAPTURE(name);
        HttpsClient attacker(node.https_port(), trusting(node));
        attacker.connect();
        attacker.write_raw(bytes);
        Response response;
        try {
            response = attacker.read_response();
        } catch (const HarnessError& e) {
            FAIL_CHECK("no response: " << e.what());
            continue;
        }
        CHECK(response.result() == http::status::bad_request);
        // The Handle shape when the request line named a path (/x), the native one when it
        // could not be parsed (docs/api.md#error-bodies; each exactly in integration_authz_test).
        CHECK((response.body().find(R"("code":"bad_request")") != std::string::npos ||
               response.body().find(R"({"responseCode":4,"message":)") == 0));
        CHECK_FALSE(response.keep_alive());
        CHECK(attacker.wait_closed(3s));
        CHECK(legit.request(http::verb::get, "/legit").result() == http::status::not_found);
    }

    // obs-fold (a header line starting with SP or HT continues the previous one): Beast would
    // join the lines, a proxy in front might not, so it is refused (RFC 9112 §5.2 allows either),
    // wherever the fold is and however the bytes arrive.
    const std::pair<const char*, std::vector<std::string>> folds[] = {
        {"folded field value", {"GET /x HTTP/1.1\r\nHost: localhost\r\nX-Folded: a\r\n b\r\n\r\n"}},
        {"fold starting the value, tab",
         {post + "Transfer-Encoding:\r\n\tchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"}},
        {"fold in the last field", {"GET /x HTTP/1.1\r\nX-A: 1\r\nHost: localhost\r\n  x\r\n\r\n"}},
        {"fold arriving in a later write",
         {"GET /x HTTP/1.1\r\nHost: localhost\r\nX-Folded: a\r\n", " b\r\n\r\n"}},
        {"fold after the CR LF arrived alone",
         {"GET /x HTTP/1.1\r\nHost: localhost\r\nX-Folded: a\r", "\n", "\tb\r\n\r\n"}},
    };
    for (const auto& [name, writes] : folds) {
        CAPTURE(name);
        HttpsClient attacker(node.https_port(), trusting(node));
        attacker.connect();
        for (const auto& bytes : writes) {
            attacker.write_raw(bytes);
            std::this_thread::sleep_for(std::chrono::milliseconds(20)); // separate reads
        }
        const Response response = attacker.read_response();
        CHECK(response.result() == http::status::bad_request);
        CHECK(response.body().find("obsolete line folding") != std::string::npos);
        CHECK_FALSE(response.keep_alive());
        CHECK(attacker.wait_closed(3s));
        CHECK(legit.request(http::verb::get, "/legit").result() == http::status::not_found);
    }
    // Only the header is checked: a body with a line starting with a space is just bytes, and
    // the request after it on the same connection is framed correctly.
    {
        HttpsClient client(node.https_port(), trusting(node));
        client.connect();
        client.write_raw(post + "Content-Length: 6\r\n\r\na\r\n b\n" +
                         "GET /after HTTP/1.1\r\nHost: localhost\r\n\r\n");
        CHECK(client.read_response().result() == http::status::method_not_allowed);
        const Response after = client.read_response();
        CHECK(after.result() == http::status::not_found);
        CHECK(after.keep_alive());
    }

    // Oversize headers in other shapes than one long field: 431 and closed.
    const std::pair<const char*, std::string> oversize[] = {
        {"many small fields",
         [] {
             std::string r = "GET /x HTTP/1.1\r\nHost: localhost\r\n";
             for (int i = 0; i < 800; ++i)
                 r += "X-" + std::to_string(i) + ": 1\r\n";
             return r + "\r\n";
         }()},
        {"long request target", "GET /" + std::string(5000, 'a') + " HTTP/1.1\r\n\r\n"},
        {"endless header line", "GET /x HTTP/1.1\r\nX-Endless: " + std::string(8000, 'a')},
    };
    for (const auto& [name, bytes] : oversize) {
        CAPTURE(name);
        HttpsClient attacker(node.https_port(), trusting(node));
        attacker.connect();
        attacker.write_raw(bytes);
        const Response response = attacker.read_response();
        CHECK(response.result() == http::status::request_header_fields_too_large);
        CHECK_FALSE(response.keep_alive());
        CHECK(attacker.wait_closed(3s));
        CHECK(legit.request(http::verb::get, "/legit").result() == http::status::not_found);
    }
    CHECK(node.stop() == 0);
}

TEST_CASE("TLS 1.0, 1.1 and non-AEAD ciphers are refused; garbage on the TLS port is dropped") {
    NodeProcess node("weak-tls");
    node.set("limits.header_timeout_s", "2"); // a stalled handshake is cut after 2 s
    node.start();
    HttpsClient legit(node.https_port(), trusting(node));
    legit.connect();
    REQUIRE(legit.request(http::verb::get, "/legit").result() == http::status::not_found);

    auto refused = [&](const char* what, TlsOptions tls) {
        CAPTURE(what);
        try {
            HttpsClient weak(node.https_port(), std::move(tls));
            weak.connect();
            FAIL_CHECK("the handshake succeeded with " << weak.protocol());
        } catch (const HarnessError& e) {
            // An alert from the server, not a local refusal to offer the protocol or ciphers.
            const std::string message = e.what();
            CHECK_MESSAGE((message.find("protocol version") != std::string::npos ||
                           message.find("handshake failure") != std::string::npos),
                          message);
        }
        CHECK(legit.request(http::verb::get, "/legit").result() == http::status::not_found);
    };
    for (const int version : {TLS1_VERSION, TLS1_1_VERSION}) {
        TlsOptions old = trusting(node);
        old.min_version = version;
        old.max_version = version;
        old.legacy = true; // Debian's OpenSSL refuses TLS < 1.2 at the default security level
        refused(version == TLS1_VERSION ? "TLS 1.0" : "TLS 1.1", old);
    }
    for (const char* cipher : {"ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384",
                               "ECDHE-ECDSA-NULL-SHA", "AES128-SHA:AES256-SHA:DES-CBC3-SHA"}) {
        TlsOptions weak = trusting(node);
        weak.max_version = TLS1_2_VERSION;
        weak.legacy = true; // allows SHA-1 and NULL suites on the client
        weak.tls12_ciphers = std::string(cipher) + ":@SECLEVEL=0";
        refused(cipher, weak);
    }

    // Garbage of several shapes on the TLS port: random bytes, a truncated ClientHello, a
    // ClientHello record header announcing a huge length. Each is closed within header_timeout.
    std::mt19937 random(9);
    std::string noise(4096, '\0');
    for (auto& c : noise)
        c = static_cast<char>(random());
    const std::string shapes[] = {noise, std::string("\x16\x03\x01\x00\x40\x01\x00\x00", 8),
                                  std::string("\x16\x03\x03\xff\xff", 5) + noise};
    for (const auto& bytes : shapes) {
        TcpClient garbage(node.https_port());
        garbage.write(bytes);
        CHECK(garbage.read_until_closed(4s).second);
        CHECK(legit.request(http::verb::get, "/legit").result() == http::status::not_found);
    }
    CHECK(fresh_client_served(node));
    CHECK(node.stop() == 0);
}

TEST_CASE("Handle protocol garbage over UDP and TCP: dropped or refused; resolution continues") {
    NodeProcess node("handle-garbage");
    node.set("node.homed_prefixes", R"(["88.118"])");
    node.set("limits.idle_timeout_s", "2"); // the Handle server shares it
    // 2,000 datagrams from one address in a burst: beyond the default per-IP rate, which would
    // drop the legitimate queries among them (this test is about garbage, not rates).
    node.set("limits.rate_per_ip", "0");
    node.start();
    const std::uint16_t port = node.handle_port();
    REQUIRE(port != 0);
    // The legitimate query: a homed handle that does not exist (RC 100) — a real lookup.
    REQUIRE(udp_resolve(port, "88.118/none", 1) == hp::rc::kHandleNotFound);

    std::mt19937 random(11);
    auto noise = [&](std::size_t size) {
        std::string out(size, '\0');
        for (auto& c : out)
            c = static_cast<char>(random());
        return out;
    };
    const std::string valid = resolution_message("88.118/none", 5);

    // UDP: random datagrams, truncated and bit-flipped requests, absurd lengths.
    const int udp = ::socket(AF_INET, SOCK_DGRAM, 0);
    const sockaddr_in to = loopback(port);
    for (int i = 0; i < 2000; ++i) {
        std::string datagram;
        switch (i % 4) {
        case 0:
            datagram = noise(1 + random() % 1400);
            break;
        case 1:
            datagram = valid.substr(0, random() % valid.size());
            break;
        case 2:
            datagram = valid;
            datagram[random() % datagram.size()] ^= static_cast<char>(1 << (random() % 8));
            break;
        default:
            datagram = valid;
            datagram[16] = '\x7f'; // message length far beyond the datagram
            break;
        }
        ::sendto(udp, datagram.data(), datagram.size(), 0, reinterpret_cast<const sockaddr*>(&to),
                 sizeof to);
        if (i % 500 == 0)
            CHECK(udp_resolve(port, "88.118/none", 100 + i) == hp::rc::kHandleNotFound);
    }
    ::close(udp);
    CHECK(udp_resolve(port, "88.118/none", 2) == hp::rc::kHandleNotFound);
    CHECK(tcp_resolve(port, "88.118/none", 3) == hp::rc::kHandleNotFound);

    // TCP: an envelope declaring a 1 GiB message gets an error reply and the connection closes.
    {
        const int fd = tcp_connect(port);
        REQUIRE(fd >= 0);
        std::string envelope = valid.substr(0, hp::kEnvelopeSize);
        envelope[16] = '\x40';
        envelope[17] = envelope[18] = envelope[19] = '\0';
        ::send(fd, envelope.data(), envelope.size(), MSG_NOSIGNAL);
        CHECK(tcp_peer_closes(fd, 3s));
        ::close(fd);
    }
    // TCP: random bytes, and a valid request followed by noise on the same connection; the
    // connection ends (error reply or close) and the server is unaffected.
    for (int i = 0; i < 6; ++i) {
        const int fd = tcp_connect(port);
        REQUIRE(fd >= 0);
        const std::string bytes =
            (i % 2 == 0 ? std::string() : valid) + noise(64 + random() % 4000);
        ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        CHECK(tcp_peer_closes(fd, 4s));
        ::close(fd);
        CHECK(tcp_resolve(port, "88.118/none", 200 + i) == hp::rc::kHandleNotFound);
    }
    // TCP: a half-sent envelope that then goes quiet is closed after the idle timeout.
    {
        const int fd = tcp_connect(port);
        REQUIRE(fd >= 0);
        ::send(fd, valid.data(), 10, MSG_NOSIGNAL);
        CHECK(tcp_resolve(port, "88.118/none", 4) == hp::rc::kHandleNotFound);
        CHECK(tcp_peer_closes(fd, 4s));
        ::close(fd);
    }
    CHECK(udp_resolve(port, "88.118/none", 6) == hp::rc::kHandleNotFound);
    CHECK(fresh_client_served(node));
    CHECK(node.stop() == 0);
}
