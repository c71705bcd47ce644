// The HTTPS listener of the real idnode binary: routing fallbacks, keep-alive, pipelining and
// TLS policy.
#include "harness.hpp"

#include <doctest/doctest.h>

#include <openssl/ssl.h>

#include <string>

using namespace idnode::test;

namespace {

TlsOptions trusting(const NodeProcess& node) {
    return trust(node.pki().ca_cert);
}

std::uint64_t request_id(const Response& r) {
    return std::stoull(std::string(r["X-Request-Id"]), nullptr, 16);
}

} // namespace

TEST_CASE("an unknown route answers 404 with the Handle-style JSON body") {
    NodeProcess node("unknown-route");
    node.start();
    HttpsClient client(node.https_port(), trusting(node));
    client.connect();
    const Response r = client.request(http::verb::get, "/no/such/route?x=1");
    CHECK(r.result() == http::status::not_found);
    CHECK(r[http::field::content_type] == "application/json");
    CHECK(r.body() == R"({"responseCode":4,"message":"unknown route"})");
    CHECK(r.keep_alive());
    CHECK(client.protocol() == "TLSv1.3");

    // HEAD gets the same status and Content-Length, without a body.
    const Response head = client.request(http::verb::head, "/no/such/route");
    CHECK(head.result() == http::status::not_found);
    CHECK(head[http::field::content_length] == "44");
    CHECK(head.body().empty());

    // A request with Connection: close is answered and then the server closes.
    const Response last = client.request(http::verb::get, "/bye", {}, {{"Connection", "close"}});
    CHECK(last.result() == http::status::not_found);
    CHECK_FALSE(last.keep_alive());
    CHECK(client.wait_closed(2s));

    // The access log got one line per request, without the query string.
    CHECK(node.stop() == 0);
    const std::string log = node.access_log();
    CHECK(log.find("GET \"/no/such/route\" route=unmatched status=404 bytes=44") !=
          std::string::npos);
    CHECK(log.find("x=1") == std::string::npos);
    CHECK(log.find("GET \"/bye\" route=unmatched status=404") != std::string::npos);
}

TEST_CASE("Expect: 100-continue gets an interim response before the body is sent") {
    NodeProcess node("expect");
    node.start();
    HttpsClient client(node.https_port(), trust(node.pki().ca_cert));
    client.connect();
    client.write_raw("POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
                     "Expect: 100-continue\r\n\r\n");
    const Response interim = client.read_response();
    CHECK(interim.result() == http::status::continue_);
    client.write_raw("hello");
    const Response final_response = client.read_response();
    // GET /{handle...} (the proxy route) matches every path, so other methods get 405.
    CHECK(final_response.result() == http::status::method_not_allowed);
    CHECK(final_response.keep_alive());
    CHECK(node.stop() == 0);
}

TEST_CASE("1,000 requests over one keep-alive connection") {
    NodeProcess node("keepalive");
    node.set("limits.rate_per_ip", "0"); // 1,000 anonymous requests at full speed
    node.start();
    HttpsClient client(node.https_port(), trusting(node));
    client.connect();
    const int count = 1000;
    std::uint64_t previous = 0;
    for (int i = 0; i < count; ++i) {
        const Response r = client.request(http::verb::get, "/k/" + std::to_string(i));
        REQUIRE(r.result() == http::status::not_found);
        REQUIRE(r.keep_alive());
        const auto id = request_id(r);
        REQUIRE(id > previous);
        previous = id;
    }
    // Requests are counted once their response is written: poll briefly.
    CHECK(eventually([&] {
        return metric_value(
                   http_get(node.ops_port(), "/metrics").body(),
                   R"(idnode_http_requests_total{method="GET",route="unmatched",status="404"})") ==
               count;
    }));
    CHECK(metric_value(http_get(node.ops_port(), "/metrics").body(),
                       R"(idnode_tls_handshakes_total{result="ok"})") == 1);
    CHECK(node.stop() == 0);
}

TEST_CASE("pipelined requests written in one go are answered in order (4 I/O threads)") {
    NodeProcess node("pipeline");
    node.set("https.threads", "4");
    node.start();
    HttpsClient client(node.https_port(), trusting(node));
    client.connect();
    const int count = 50; // more than the per-connection pipeline depth, so reading pauses too
    std::string batch;
    for (int i = 0; i < count; ++i) {
        // Alternate GET and HEAD so that a reordering would show up as a body in the wrong place.
        const char* method = i % 3 == 0 ? "HEAD" : "GET";
        batch += std::string(method) + " /p/" + std::to_string(i) +
                 " HTTP/1.1\r\nHost: localhost\r\n\r\n";
    }
    client.write_raw(batch);
    std::uint64_t previous = 0;
    for (int i = 0; i < count; ++i) {
        const bool head = i % 3 == 0;
        const Response r = client.read_response(head);
        REQUIRE(r.result() == http::status::not_found);
        CHECK(r.body().size() == (head ? 0u : 44u));
        const auto id = request_id(r);
        REQUIRE(id == previous + 1); // the server numbers requests in arrival order
        previous = id;
    }
    // The connection is still usable afterwards.
    CHECK(client.request(http::verb::get, "/after").result() == http::status::not_found);
    CHECK(node.stop() == 0);
}

TEST_CASE("a client that trusts another CA fails verification") {
    NodeProcess node("wrong-ca");
    node.start();
    HttpsClient wrong(node.https_port(), trust(node.pki().other_ca_cert));
    try {
        wrong.connect();
        FAIL("the handshake should have failed");
    } catch (const HarnessError& e) {
        CHECK(std::string(e.what()).find("certificate verify failed") != std::string::npos);
    }
    // The server keeps serving.
    HttpsClient right(node.https_port(), trusting(node));
    right.connect();
    CHECK(right.request(http::verb::get, "/x").result() == http::status::not_found);
    CHECK(node.stop() == 0);
}

TEST_CASE("plain HTTP to the TLS port gets a clear 400 and the server keeps serving") {
    NodeProcess node("plain-http");
    node.start();
    TcpClient plain(node.https_port());
    plain.write("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    const auto [reply, closed] = plain.read_until_closed(3s);
    CHECK(closed);
    CHECK(reply.rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
    CHECK(reply.find("tls_required") != std::string::npos);

    // Garbage that is neither TLS nor HTTP is dropped too.
    TcpClient garbage(node.https_port());
    garbage.write(std::string("\x00\x01\x02\x03 not tls at all\r\n\r\n", 24));
    CHECK(garbage.read_until_closed(3s).second);

    HttpsClient client(node.https_port(), trusting(node));
    client.connect();
    CHECK(client.request(http::verb::get, "/x").result() == http::status::not_found);
    const auto metrics = http_get(node.ops_port(), "/metrics").body();
    CHECK(metric_value(metrics, R"(idnode_tls_handshakes_total{result="failed"})") >= 2);
    CHECK(node.stop() == 0);
}

TEST_CASE("TLS policy: 1.1 is refused, 1.2 needs AEAD, 1.2 with AEAD works") {
    NodeProcess node("tls-policy");
    node.start();

    TlsOptions tls11 = trust(node.pki().ca_cert);
    tls11.min_version = TLS1_1_VERSION;
    tls11.max_version = TLS1_1_VERSION;
    tls11.legacy = true;
    HttpsClient old(node.https_port(), tls11);
    try {
        old.connect();
        FAIL("TLS 1.1 must be refused, got " << old.protocol());
    } catch (const HarnessError& e) {
        // The server's alert, not a local refusal: proves a 1.1 ClientHello reached the server.
        CHECK(std::string(e.what()).find("protocol version") != std::string::npos);
    }

    TlsOptions cbc_only = trust(node.pki().ca_cert);
    cbc_only.max_version = TLS1_2_VERSION;
    cbc_only.tls12_ciphers = "ECDHE-ECDSA-AES128-SHA256";
    HttpsClient cbc(node.https_port(), cbc_only);
    try {
        cbc.connect();
        FAIL("a CBC-only TLS 1.2 client must be refused");
    } catch (const HarnessError& e) {
        CHECK(std::string(e.what()).find("handshake failure") != std::string::npos);
    }

    TlsOptions gcm = trust(node.pki().ca_cert);
    gcm.max_version = TLS1_2_VERSION;
    gcm.tls12_ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256";
    HttpsClient modern(node.https_port(), gcm);
    modern.connect();
    CHECK(modern.protocol() == "TLSv1.2");
    CHECK(modern.request(http::verb::get, "/x").result() == http::status::not_found);
    CHECK(node.stop() == 0);
}
