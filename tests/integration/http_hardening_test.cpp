// Smaller HTTP holes against the real idnode binary: the Host field (RFC 9112 §3.2), HSTS and the
// caching headers of answers that carry private values, and the one per-record size limit of
// every write path (Handle REST PUT, SNMS single and batch, bulk NDJSON lines). The proxy's
// redirect targets and the QR code's URL are tested with the other page features in
// html_test.cpp.
#include "harness.hpp"
#include "json_helpers.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace idnode::test;
namespace json = boost::json;
using V = http::verb;

namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

/// A node homing 88.118 with enterprise prefix 88.118.8, owned by account "steel" (password and
/// API key). `settings` are extra configuration keys.
struct Node {
    NodeProcess node{"hardening"};
    std::string admin, steel;
    const std::string password = "steel-secret-1";

    explicit Node(const Headers& settings = {}) {
        const auto init = run_command({IDNODE_IDCTL_BINARY, "init", "--data-dir",
                                       (node.dir() / "db").string(), "--node-prefix", "88.118"});
        REQUIRE_MESSAGE(init.exit_code == 0, init.err);
        admin = "Bearer " +
                std::string(
                    body_of(Response{http::status::ok, 11, init.out}).at("admin_key").as_string());
        for (const auto& [key, value] : settings)
            node.set(key, value);
        node.start();
        auto c = client();
        auto created = [&](const std::string& target, const std::string& body) {
            auto r = c->request(V::post, target, body, {{"Authorization", admin}});
            REQUIRE_MESSAGE(r.result() == http::status::created, target << ": " << r.body());
            return r;
        };
        created(
            "/api/v1/prefixes",
            R"({"prefix":"88.118.8","enterprise":{"name":"示例钢铁","credit_code":"91310000631696382C","industry":"C3130","contact":""}})");
        created("/api/v1/accounts",
                R"({"username":"steel","role":"enterprise","prefixes":["88.118.8"],"password":")" +
                    password + R"("})");
        steel =
            "Bearer " +
            std::string(body_of(created("/api/v1/accounts/steel/keys", {})).at("key").as_string());
    }

    std::unique_ptr<HttpsClient> client() {
        auto c = std::make_unique<HttpsClient>(node.https_port(), trust(node.pki().ca_cert));
        c->connect();
        return c;
    }
};

/// The raw request's answer on a fresh connection.
Response raw(Node& n, const std::string& bytes) {
    auto c = n.client();
    c->write_raw(bytes);
    return c->read_response();
}

/// NDJSON response lines as JSON values.
std::vector<json::value> ndjson_values(const std::string& body) {
    std::vector<json::value> out;
    std::size_t start = 0;
    while (start < body.size()) {
        const auto end = body.find('\n', start);
        const std::string line = body.substr(start, end - start);
        if (!line.empty())
            out.push_back(json::parse(line));
        if (end == std::string::npos)
            break;
        start = end + 1;
    }
    return out;
}

/// `head` + a DESC value padded so that the whole text is exactly `size` bytes: `head` is the
/// start of a record object up to the values array's '[' ("{\"values\":[").
std::string record_of_size(const std::string& head, std::size_t size) {
    const std::string open = head + R"({"index":1,"type":"DESC","data":")";
    const std::string close = "\"}]}";
    REQUIRE(size > open.size() + close.size());
    return open + std::string(size - open.size() - close.size(), 'x') + close;
}

} // namespace

TEST_CASE("HTTP/1.1 requests without exactly one valid Host field get 400") {
    Node n;
    const std::string target = "GET /api/handles/88.118.8/none HTTP/1.1\r\n";
    for (const auto& [what, request] : std::vector<std::pair<const char*, std::string>>{
             {"no Host", target + "\r\n"},
             {"two Host fields", target + "Host: localhost\r\nHost: evil.example\r\n\r\n"},
             {"two equal Host fields", target + "Host: localhost\r\nHost: localhost\r\n\r\n"},
             {"invalid Host value", target + "Host: a b<c>\r\n\r\n"},
             {"HTTP/1.0 with two Host fields",
              "GET /api/handles/88.118.8/none HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"}}) {
        CAPTURE(what);
        const Response r = raw(n, request);
        CHECK(r.result() == http::status::bad_request);
        CHECK(contains(r.body(), "Host"));
    }
    // A streamed route is held to the same rule before any of its body is read.
    CHECK(raw(n, "POST /api/v1/bulk HTTP/1.1\r\nAuthorization: " + n.steel +
                     "\r\nContent-Length: 2\r\n\r\n{}")
              .result() == http::status::bad_request);
    // One Host field (empty is allowed, RFC 9112 §3.2), or HTTP/1.0 without one, is served.
    CHECK(raw(n, target + "Host: 127.0.0.1:8443\r\n\r\n").result() == http::status::not_found);
    CHECK(raw(n, target + "Host:\r\n\r\n").result() == http::status::not_found);
    CHECK(raw(n, "GET /api/handles/88.118.8/none HTTP/1.0\r\n\r\n").result() ==
          http::status::not_found);

    // The plain-HTTP ops listener applies the same rule.
    TcpClient ops(n.node.ops_port());
    ops.write("GET /healthz HTTP/1.1\r\n\r\n");
    const auto [answer, closed] = ops.read_until_closed(3s);
    CHECK(answer.rfind("HTTP/1.1 400", 0) == 0);
    CHECK(closed);
    CHECK(http_get(n.node.ops_port(), "/healthz").result() == http::status::ok);
}

TEST_CASE("every HTTPS answer carries HSTS; answers for a caller are private, no-store") {
    Node n;
    auto c = n.client();
    REQUIRE(c->request(V::put, "/api/handles/88.118.8/P-1",
                       R"([{"index":1,"type":"DESC","data":"public"},
                           {"index":2,"type":"price","data":"PRICE-1","permissions":"1100"}])",
                       {{"Authorization", n.steel}})
                .result() == http::status::created);
    auto has_authorization = [](const Response& r) {
        return contains(r[http::field::vary], "Authorization");
    };

    { // HSTS by default (one year) on answers of every kind, errors and refusals included
        for (const char* target : {"/api/handles/88.118.8/P-1", "/api/handles/88.118.8/none",
                                   "/no/such/route", "/api/v1/qr/88.118.8/P-1"}) {
            CAPTURE(target);
            CHECK(c->request(V::get, target)[http::field::strict_transport_security] ==
                  "max-age=31536000");
        }
        CHECK(raw(n, "GET / HTTP/1.1\r\n\r\n")[http::field::strict_transport_security] ==
              "max-age=31536000");
        auto bulk = c->request(V::post, "/api/v1/bulk", "\n", {{"Authorization", n.steel}});
        CHECK(bulk.result() == http::status::ok);
        CHECK(bulk[http::field::strict_transport_security] == "max-age=31536000");
        // Never on the plain-HTTP ops listener (RFC 6797 §7.2).
        const Response ops = http_get(n.node.ops_port(), "/healthz");
        CHECK(ops.find(http::field::strict_transport_security) == ops.end());
    }

    { // the owner reads the private value: never stored by a cache, varies by credentials
        auto owner =
            c->request(V::get, "/api/handles/88.118.8/P-1", {}, {{"Authorization", n.steel}});
        REQUIRE(owner.result() == http::status::ok);
        CHECK(contains(owner.body(), "PRICE-1"));
        CHECK(owner[http::field::cache_control] == "private, no-store");
        CHECK(has_authorization(owner));
        auto batch = c->request(V::post, "/api/v1/resolve", R"(["88.118.8/P-1"])",
                                {{"Authorization", n.steel}});
        REQUIRE(batch.result() == http::status::ok);
        CHECK(contains(batch.body(), "PRICE-1"));
        CHECK(batch[http::field::cache_control] == "private, no-store");
        CHECK(has_authorization(batch));
        // SNMS: the login token itself, and the detail with the private value.
        auto login = c->request(V::post, "/identity/token",
                                R"({"username":"steel","password":")" + n.password + R"("})");
        REQUIRE(body_of(login).at("status") == 1);
        CHECK(login[http::field::cache_control] == "private, no-store");
        const std::string token(body_of(login).at("data").at("token").as_string());
        auto detail = c->request(V::get, "/identityv2/data/detail?handle=88.118.8/P-1", {},
                                 {{"Authorization", "Bearer " + token}});
        REQUIRE(contains(detail.body(), "PRICE-1"));
        CHECK(detail[http::field::cache_control] == "private, no-store");
        CHECK(has_authorization(detail));
        // A new API key is shown once and never cached.
        auto key =
            c->request(V::post, "/api/v1/accounts/steel/keys", {}, {{"Authorization", n.admin}});
        REQUIRE(key.result() == http::status::created);
        CHECK(key[http::field::cache_control] == "private, no-store");
    }

    { // an anonymous caller gets the public values; the answer still varies by credentials
        auto anonymous = c->request(V::get, "/api/handles/88.118.8/P-1");
        REQUIRE(anonymous.result() == http::status::ok);
        CHECK_FALSE(contains(anonymous.body(), "PRICE-1"));
        CHECK(has_authorization(anonymous));
        CHECK(anonymous.find(http::field::cache_control) == anonymous.end());
    }
}

TEST_CASE("https.hsts_max_age_s sets the HSTS max-age; 0 sends none") {
    for (const auto& [setting, expected] :
         std::vector<std::pair<std::string, std::string>>{{"600", "max-age=600"}, {"0", ""}}) {
        CAPTURE(setting);
        NodeProcess node{"hsts"};
        node.set("https.hsts_max_age_s", setting);
        node.start();
        HttpsClient c(node.https_port(), trust(node.pki().ca_cert));
        c.connect();
        const Response r = c.request(V::get, "/api/handles/88.118/x");
        CHECK(r.result() == http::status::bad_request); // 88.118 is not homed: any answer will do
        CHECK(r[http::field::strict_transport_security] == expected);
        CHECK((r.find(http::field::strict_transport_security) == r.end()) == expected.empty());
    }
}

TEST_CASE("one per-record size limit on every write path: a record's JSON text as sent") {
    Node n;
    auto c = n.client();
    const std::size_t limit = 65536; // limits.max_body_bytes, unchanged
    const std::string steel_auth = n.steel;
    auto snms_batch = [&](V method, const std::string& target, const std::string& body) {
        auto r = c->request(method, target, body,
                            {{"Authorization", steel_auth}, {"Content-Type", "application/json"}});
        REQUIRE_MESSAGE(r.result() == http::status::ok, r.body().substr(0, 300));
        auto v = body_of(r);
        REQUIRE_MESSAGE(v.at("status") == 1, r.body().substr(0, 300));
        return v;
    };
    auto exists = [&](const std::string& handle) {
        return c->request(V::get, "/api/handles/" + handle).result() == http::status::ok;
    };

    { // SNMS batch: a 900 KB record fails alone; the small ones of the same batch are written
        const std::string big = record_of_size(R"({"handle":"88.118.8/BIG","value":[)", 900 * 1000);
        const std::string small1 =
            R"({"handle":"88.118.8/S-1","value":[{"index":1,"type":"DESC","data":"s"}]})";
        const std::string small2 =
            R"({"handle":"88.118.8/S-2","value":[{"index":1,"type":"DESC","data":"s"}]})";
        auto created = snms_batch(V::post, "/identityv2/data/batchCreate",
                                  "[" + small1 + ",\n  " + big + " ,\n" + small2 + "]");
        CHECK(created.at("message") == "成功2条，失败1条");
        const auto& data = created.at("data").as_array();
        REQUIRE(data.size() == 3);
        CHECK(data[1].at("handle") == "88.118.8/BIG");
        const std::string msg(data[1].at("msg").as_string());
        CHECK(msg.rfind("记录过大", 0) == 0);
        CHECK(contains(msg, "900000 bytes"));
        CHECK(contains(msg, "65536"));
        CHECK(exists("88.118.8/S-1"));
        CHECK(exists("88.118.8/S-2"));
        CHECK_FALSE(exists("88.118.8/BIG"));
        // batchUpdate: the same.
        auto updated =
            snms_batch(V::put, "/identityv2/data/batchUpdate", "[" + big + "," + small1 + "]");
        CHECK(updated.at("message") == "成功1条，失败1条");
        CHECK_FALSE(exists("88.118.8/BIG"));
        // The same size on every other path. Single-record routes refuse it from the announced
        // length, before reading the body (a 413 closes the connection).
        for (const char* line : {"PUT /api/handles/88.118.8/BIG", "POST /identityv2/data"}) {
            CAPTURE(line);
            c = n.client();
            c->write_raw(std::string(line) + " HTTP/1.1\r\nHost: localhost\r\nAuthorization: " +
                         n.steel + "\r\nContent-Length: 900000\r\n\r\n");
            CHECK(c->read_response().result() == http::status::payload_too_large);
        }
        c = n.client();
        auto bulk =
            c->request(V::post, "/api/v1/bulk",
                       record_of_size(R"({"handle":"88.118.8/BIG","values":[)", 900 * 1000) + "\n",
                       {{"Authorization", n.steel}});
        REQUIRE(bulk.result() == http::status::ok);
        auto lines = ndjson_values(bulk.body());
        REQUIRE(lines.size() == 2);
        CHECK(lines[0].at("error").at("code") == "too_large");
        CHECK_FALSE(exists("88.118.8/BIG"));
    }

    // At the limit every path accepts the record; one byte more and every path refuses it.
    for (const std::size_t size : {limit, limit + 1}) {
        CAPTURE(size);
        const bool fits = size == limit;
        const std::string tag = fits ? "AT" : "OVER";
        c = n.client();
        // Handle REST PUT: the body is the record.
        auto put = c->request(V::put, "/api/handles/88.118.8/" + tag + "-PUT",
                              record_of_size(R"({"values":[)", size), {{"Authorization", n.steel}});
        CHECK(put.result() == (fits ? http::status::created : http::status::payload_too_large));
        c = n.client();
        // SNMS create: the body is the record.
        const std::string snms_record =
            record_of_size(R"({"handle":"88.118.8/)" + tag + R"(-SNMS","value":[)", size);
        auto single =
            c->request(V::post, "/identityv2/data", snms_record, {{"Authorization", n.steel}});
        if (fits)
            CHECK(body_of(single).at("status") == 1);
        else
            CHECK(single.result() == http::status::payload_too_large);
        c = n.client();
        // SNMS batch: one element is the record.
        const std::string element =
            record_of_size(R"({"handle":"88.118.8/)" + tag + R"(-BATCH","value":[)", size);
        auto batch = snms_batch(V::post, "/identityv2/data/batchCreate", "[" + element + "]");
        CHECK(batch.at("message") == (fits ? "成功1条，失败0条" : "成功0条，失败1条"));
        // Bulk: one line is the record.
        const std::string line =
            record_of_size(R"({"handle":"88.118.8/)" + tag + R"(-BULK","values":[)", size);
        auto bulk = c->request(V::post, "/api/v1/bulk?results=all", line + "\n",
                               {{"Authorization", n.steel}});
        REQUIRE(bulk.result() == http::status::ok);
        auto lines = ndjson_values(bulk.body());
        REQUIRE(lines.size() == 2);
        if (fits)
            CHECK(lines[0].at("status") == "created");
        else
            CHECK(lines[0].at("error").at("code") == "too_large");
        for (const char* path : {"-PUT", "-SNMS", "-BATCH", "-BULK"})
            CHECK(exists("88.118.8/" + tag + path) == fits);
    }
}
