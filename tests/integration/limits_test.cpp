// Server-level limits of the real idnode binary (docs/api.md#limits): header and body size, slow
// and idle clients, connection cap, per-IP rate limit.
#include "harness.hpp"

#include <doctest/doctest.h>

#include <string>
#include <thread>

using namespace idnode::test;

namespace {

TlsOptions trusting(const NodeProcess& node) {
    return trust(node.pki().ca_cert);
}

std::string ops_metrics(const NodeProcess& node) {
    return http_get(node.ops_port(), "/metrics").body();
}

} // namespace

TEST_CASE("an oversize header gets 431 and an oversize body 413, both as JSON") {
    NodeProcess node("sizes");
    node.set("limits.max_header_bytes", "2048");
    node.set("limits.max_body_bytes", "1024");
    node.start();

    HttpsClient client(node.https_port(), trust(node.pki().ca_cert));
    client.connect();
    // Just under the limits: fine.
    CHECK(client
              .request(http::verb::post, "/x", std::string(1024, 'b'),
                       {{"X-Pad", std::string(1500, 'a')}})
              .result() == http::status::method_not_allowed);

    const Response big_header =
        client.request(http::verb::get, "/x", {}, {{"X-Pad", std::string(3000, 'a')}});
    CHECK(big_header.result() == http::status::request_header_fields_too_large);
    CHECK(big_header[http::field::content_type] == "application/json");
    // /x is a Handle path (the proxy route): the Handle shape, RC 4 (docs/api.md#error-bodies).
    CHECK(big_header.body().find(R"({"responseCode":4,"message":)") == 0);
    CHECK_FALSE(big_header.keep_alive());
    CHECK(client.wait_closed(3s));

    client.connect();
    const Response big_body = client.request(http::verb::post, "/x", std::string(1025, 'b'));
    CHECK(big_body.result() == http::status::payload_too_large);
    CHECK(big_body.body().find(R"({"responseCode":4,"message":)") == 0);
    CHECK(big_body.body().find("1024 bytes") != std::string::npos);
    CHECK_FALSE(big_body.keep_alive());

    // A chunked body has no Content-Length up front: the limit applies while reading.
    client.connect();
    client.write_raw("POST /x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "400\r\n" +
                     std::string(1024, 'c') + "\r\n10\r\n" + std::string(16, 'c') +
                     "\r\n0\r\n\r\n");
    const Response chunked = client.read_response();
    CHECK(chunked.result() == http::status::payload_too_large);

    // A malformed request line is a 400 with a reason (no path parsed: the native shape).
    client.connect();
    client.write_raw("GET /x HTTP/9.9\r\nHost: localhost\r\n\r\n");
    const Response bad = client.read_response();
    CHECK(bad.result() == http::status::bad_request);
    CHECK(bad.body().find(R"("code":"bad_request")") != std::string::npos);

    // And the server still serves.
    client.connect();
    CHECK(client.request(http::verb::get, "/x").result() == http::status::not_found);
    CHECK(node.stop() == 0);
}

TEST_CASE("a slow-header client is cut off after header_timeout; an idle one after idle_timeout") {
    NodeProcess node("timeouts");
    node.set("limits.header_timeout_s", "1");
    node.set("limits.idle_timeout_s", "2");
    node.start();

    // Slow loris: a header that never completes, one more line every 100 ms.
    HttpsClient loris(node.https_port(), trust(node.pki().ca_cert));
    loris.connect();
    CHECK(loris.request(http::verb::get, "/first").result() == http::status::not_found);
    const auto loris_start = std::chrono::steady_clock::now();
    loris.write_raw("GET /slow HTTP/1.1\r\nHost: localhost\r\n");
    bool closed = false;
    for (int i = 0; i < 25 && !closed; ++i) {
        std::this_thread::sleep_for(100ms);
        closed = loris.peer_hung_up();
        if (!closed)
            loris.write_raw("X-Drip-" + std::to_string(i) + ": 1\r\n");
    }
    const auto loris_lasted = std::chrono::steady_clock::now() - loris_start;
    CHECK(closed);
    CHECK(loris_lasted >= 900ms);
    CHECK(loris_lasted < 2500ms);

    // An idle keep-alive connection is closed after idle_timeout (2 s), not header_timeout.
    HttpsClient idle(node.https_port(), trust(node.pki().ca_cert));
    idle.connect();
    CHECK(idle.request(http::verb::get, "/x").result() == http::status::not_found);
    const auto idle_start = std::chrono::steady_clock::now();
    CHECK(idle.wait_closed(4s));
    const auto idle_lasted = std::chrono::steady_clock::now() - idle_start;
    CHECK(idle_lasted >= 1800ms);

    // A connection that never even starts a handshake is closed after header_timeout.
    TcpClient silent(node.https_port());
    CHECK(silent.read_until_closed(3s).second);

    const auto metrics = ops_metrics(node);
    CHECK(metric_value(metrics, R"(idnode_http_timeouts_total{phase="header"})") >= 1);
    CHECK(metric_value(metrics, R"(idnode_http_timeouts_total{phase="idle"})") >= 1);
    CHECK(metric_value(metrics, R"(idnode_http_timeouts_total{phase="handshake"})") >= 1);
    CHECK(node.stop() == 0);
}

TEST_CASE("max_connections: extra connections are closed at once; freed slots serve again") {
    NodeProcess node("max-conn");
    node.set("limits.max_connections", "3");
    node.start();
    std::vector<std::unique_ptr<HttpsClient>> held;
    for (int i = 0; i < 3; ++i) {
        held.push_back(std::make_unique<HttpsClient>(node.https_port(), trusting(node)));
        held.back()->connect();
        CHECK(held.back()->request(http::verb::get, "/x").result() == http::status::not_found);
    }
    HttpsClient extra(node.https_port(), trusting(node));
    CHECK_THROWS_AS(extra.connect(), HarnessError);

    // The held connections are still served while the cap is reached.
    CHECK(held[0]->request(http::verb::get, "/y").result() == http::status::not_found);

    held.pop_back(); // closes one connection
    CHECK(eventually([&] {
        try {
            HttpsClient again(node.https_port(), trusting(node));
            again.connect();
            return again.request(http::verb::get, "/z").result() == http::status::not_found;
        } catch (const HarnessError&) {
            return false;
        }
    }));
    const auto metrics = ops_metrics(node);
    CHECK(metric_value(metrics, R"(idnode_connections_rejected_total{reason="max_connections"})") >=
          1);
    CHECK(node.stop() == 0);
}

TEST_CASE("per-IP rate limit answers 429 with Retry-After, then lets the client back in") {
    NodeProcess node("rate");
    node.set("limits.rate_per_ip", "5"); // burst of 5, one token every 200 ms
    node.start();
    HttpsClient client(node.https_port(), trusting(node));
    client.connect();
    int ok = 0;
    std::optional<Response> refused;
    for (int i = 0; i < 12 && !refused; ++i) {
        Response r = client.request(http::verb::get, "/x");
        if (r.result() == http::status::too_many_requests)
            refused = std::move(r);
        else
            ++ok;
    }
    REQUIRE(refused);
    CHECK(ok >= 5);
    CHECK(ok <= 6);
    CHECK((*refused)[http::field::retry_after] == "1");
    CHECK(refused->body().find(R"({"responseCode":3,"message":)") == 0);
    CHECK(refused->keep_alive()); // a 429 does not cost the client its connection

    CHECK(eventually(
        [&] { return client.request(http::verb::get, "/x").result() == http::status::not_found; },
        2s));
    CHECK(metric_value(ops_metrics(node), "idnode_http_rate_limited_total") >= 1);
    CHECK(node.stop() == 0);
}
