// The idnode process as an operator sees it: command line, startup failures, the ops listener,
// signals.
#include "harness.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <fstream>

using namespace idnode::test;

namespace {

TlsOptions trusting(const NodeProcess& node) {
    return trust(node.pki().ca_cert);
}

bool contains(const std::string& text, std::string_view part) {
    return text.find(part) != std::string::npos;
}

void write_text(const fs::path& path, std::string_view text) {
    std::ofstream out(path);
    out << text;
}

} // namespace

TEST_CASE("--version, --help and --check-config") {
    const auto version = run_command({idnode_binary().string(), "--version"});
    CHECK(version.exit_code == 0);
    CHECK(contains(version.out, "idnode 0."));

    const auto help = run_command({idnode_binary().string(), "--help"});
    CHECK(help.exit_code == 0);
    CHECK(contains(help.out, "--check-config"));

    TempDir dir("check-config");
    const auto bad = dir.path() / "bad.toml";
    write_text(bad, "[https]\nlisten = \"127.0.0.1:8443\"\nlisen = \"127.0.0.1:9\"\n");
    const auto rejected = run_command({idnode_binary().string(), "--check-config", bad.string()});
    CHECK(rejected.exit_code == 1);
    CHECK(contains(rejected.err, "bad.toml:3:1: unknown key 'https.lisen'"));

    const auto wrong_type = dir.path() / "type.toml";
    write_text(wrong_type, "[limits]\nmax_connections = \"many\"\n");
    const auto typed =
        run_command({idnode_binary().string(), "--check-config", wrong_type.string()});
    CHECK(typed.exit_code == 1);
    CHECK(contains(typed.err, "key 'limits.max_connections' must be an integer (got string)"));

    // A syntactically fine file whose certificate is missing is not valid either.
    const auto no_cert = dir.path() / "nocert.toml";
    write_text(no_cert, "[https]\ncert = \"" + (dir.path() / "missing.pem").string() + "\"\n");
    const auto missing =
        run_command({idnode_binary().string(), "--check-config", no_cert.string()});
    CHECK(missing.exit_code == 1);
    CHECK(contains(missing.err, "https.cert"));
    CHECK(contains(missing.err, "missing.pem"));

    // A complete, valid configuration passes.
    NodeProcess node("check-ok");
    std::ofstream(node.config_path()) << node.config_text();
    const auto good =
        run_command({idnode_binary().string(), "--check-config", node.config_path().string()});
    CHECK(good.exit_code == 0);
    CHECK(good.err.empty());
}

TEST_CASE("startup failures exit 1 with a clear reason") {
    SUBCASE("certificate missing") {
        NodeProcess node("no-cert");
        fs::remove(node.cert_path());
        CHECK_THROWS_WITH_AS(node.start(), doctest::Contains("https.cert"), HarnessError);
        CHECK(node.wait() == 1);
        CHECK(contains(node.stderr_text(), "no such file"));
    }
    SUBCASE("key does not match the certificate") {
        NodeProcess node("bad-key");
        fs::copy_file(node.pki().ca_key, node.key_path(), fs::copy_options::overwrite_existing);
        CHECK_THROWS_AS(node.start(), HarnessError);
        CHECK(node.wait() == 1);
        CHECK(contains(node.stderr_text(), "does not match"));
    }
    SUBCASE("port in use") {
        NodeProcess first("port-a");
        first.start();
        NodeProcess second("port-b");
        second.set("https.listen", "\"127.0.0.1:" + std::to_string(first.https_port()) + "\"");
        CHECK_THROWS_AS(second.start(), HarnessError);
        CHECK(second.wait() == 1);
        CHECK(contains(second.stderr_text(), "cannot listen on https.listen 127.0.0.1:" +
                                                 std::to_string(first.https_port())));
        CHECK(first.stop() == 0);
    }
    SUBCASE("bad configuration") {
        NodeProcess node("bad-config");
        node.set("log.format", "\"xml\"");
        CHECK_THROWS_AS(node.start(), HarnessError);
        CHECK(node.wait() == 1);
        CHECK(contains(node.stderr_text(), "'xml' is not one of text, json"));
    }
}

TEST_CASE("ops listener: /healthz, /readyz, /metrics") {
    NodeProcess node("ops");
    node.start();
    const Response health = http_get(node.ops_port(), "/healthz");
    CHECK(health.result() == http::status::ok);
    CHECK(health.body() == "ok\n");
    const Response ready = http_get(node.ops_port(), "/readyz");
    CHECK(ready.result() == http::status::ok);
    CHECK(http_get(node.ops_port(), "/nope").result() == http::status::not_found);

    HttpsClient client(node.https_port(), trusting(node));
    client.connect();
    for (int i = 0; i < 3; ++i)
        CHECK(client.request(http::verb::get, "/x").result() == http::status::not_found);

    // Requests are counted when their response has been written, which may be a moment after
    // the client has read it.
    CHECK(eventually([&] {
        return metric_value(
                   http_get(node.ops_port(), "/metrics").body(),
                   R"(idnode_http_requests_total{method="GET",route="unmatched",status="404"})") ==
               3;
    }));
    const Response metrics = http_get(node.ops_port(), "/metrics");
    CHECK(metrics.result() == http::status::ok);
    CHECK(contains(std::string(metrics[http::field::content_type]), "text/plain; version=0.0.4"));
    const std::string& text = metrics.body();
    CHECK(contains(text, "# TYPE idnode_http_requests_total counter\n"));
    CHECK(metric_value(
              text, R"(idnode_http_requests_total{method="GET",route="unmatched",status="404"})") ==
          3);
    CHECK(contains(text, "# TYPE idnode_http_request_duration_seconds histogram\n"));
    CHECK(metric_value(text, R"(idnode_http_request_duration_seconds_count{route="unmatched"})") ==
          3);
    CHECK(metric_value(
              text,
              R"(idnode_http_request_duration_seconds_bucket{route="unmatched",le="+Inf"})") == 3);
    CHECK(metric_value(text, "idnode_https_open_connections") == 1);
    CHECK(metric_value(text, R"(idnode_tls_handshakes_total{result="ok"})") == 1);
    CHECK(metric_value(text, "idnode_ready") == 1);
    CHECK(contains(text, "idnode_build_info{version=\""));

    client.close();
    CHECK(eventually([&] {
        return metric_value(http_get(node.ops_port(), "/metrics").body(),
                            "idnode_https_open_connections") == 0;
    }));
    CHECK(node.stop() == 0);
}

TEST_CASE("SIGTERM: readyz turns 503, an in-flight request is answered, idle ones close, exit 0") {
    NodeProcess node("sigterm");
    node.set("limits.header_timeout_s", "5");
    node.start();
    HttpsClient idle(node.https_port(), trusting(node));
    idle.connect();
    CHECK(idle.request(http::verb::get, "/x").result() == http::status::not_found);
    HttpsClient busy(node.https_port(), trusting(node));
    busy.connect();
    CHECK(busy.request(http::verb::get, "/x").result() == http::status::not_found);
    // A request the server is provably in the middle of: it has read the header (and said so
    // with "100 Continue") but not the body yet.
    busy.write_raw("POST /in-flight HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
                   "Expect: 100-continue\r\n\r\n");
    CHECK(busy.read_response().result() == http::status::continue_);

    node.signal(SIGTERM);
    CHECK(idle.wait_closed(3s)); // the idle keep-alive connection is closed promptly
    CHECK(eventually([&] {
        return http_get(node.ops_port(), "/readyz").result() == http::status::service_unavailable;
    }));
    CHECK(node.running()); // still draining: the busy connection has a request in flight

    busy.write_raw("hello");
    const Response last = busy.read_response();
    CHECK(last.result() == http::status::method_not_allowed); // POST on the GET-only proxy route
    CHECK_FALSE(last.keep_alive());                           // told that the connection ends here
    CHECK(node.wait() == 0);
    CHECK(contains(node.stderr_text(), "stopping gracefully"));
    // Nothing listens any more.
    HttpsClient late(node.https_port(), trusting(node), 1s);
    CHECK_THROWS_AS(late.connect(), HarnessError);
}

TEST_CASE("SIGINT also stops gracefully") {
    NodeProcess node("sigint");
    node.start();
    node.signal(SIGINT);
    CHECK(node.wait() == 0);
}

TEST_CASE("SIGHUP reloads the certificate without dropping existing connections") {
    NodeProcess node("sighup");
    node.start();
    HttpsClient before(node.https_port(), trusting(node));
    before.connect();
    CHECK(before.peer_common_name() == "localhost");
    CHECK(before.request(http::verb::get, "/x").result() == http::status::not_found);

    node.pki().issue_server_cert(node.cert_path(), node.key_path(), "reloaded.localhost");
    node.signal(SIGHUP);
    CHECK(eventually([&] {
        HttpsClient probe(node.https_port(), trusting(node));
        probe.connect();
        return probe.peer_common_name() == "reloaded.localhost";
    }));
    // The connection made before the reload still works, with its original certificate.
    CHECK(before.request(http::verb::get, "/y").result() == http::status::not_found);
    CHECK(before.peer_common_name() == "localhost");

    // A broken replacement is refused and the current certificate stays in service.
    std::ofstream(node.cert_path()) << "not a certificate\n";
    node.signal(SIGHUP);
    CHECK(eventually([&] {
        return metric_value(http_get(node.ops_port(), "/metrics").body(),
                            R"(idnode_tls_certificate_reloads_total{result="failed"})") == 1;
    }));
    HttpsClient after(node.https_port(), trusting(node));
    after.connect();
    CHECK(after.peer_common_name() == "reloaded.localhost");
    CHECK(node.running());
    CHECK(node.stop() == 0);
}
