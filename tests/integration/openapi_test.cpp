// GET /api/openapi.json of a live node validates as OpenAPI 3.1, and the node's answers of the
// main shapes (a Handle REST record and its errors, native stats, lists and errors, a bulk
// NDJSON answer with its summary line, SNMS envelopes) match the document's response schemas.
// The checking is done by tests/openapi/check.mjs on Node.js with validators from the npm
// registry (tests/openapi/package.json, installed by tools/dev). Without node or those packages
// this test fails: it never skips.
#include "harness.hpp"
#include "json_helpers.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <fstream>

using namespace idnode::test;
namespace json = boost::json;
using V = http::verb;

namespace {

void write_file(const fs::path& path, std::string_view text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
    if (!out)
        throw HarnessError("cannot write " + path.string());
}

/// The node's answers, each named with the document operation it belongs to.
struct Samples {
    json::array items;
    void add(std::string name, V method, std::string doc_path, const Response& r) {
        std::string m(http::to_string(method));
        for (auto& c : m)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        items.push_back(json::object{{"name", std::move(name)},
                                     {"method", m},
                                     {"path", std::move(doc_path)},
                                     {"status", r.result_int()},
                                     {"contentType", std::string(r[http::field::content_type])},
                                     {"body", r.body()}});
    }
};

} // namespace

TEST_CASE("the served OpenAPI document validates and the live node's answers match it") {
    NodeProcess node("openapi");
    const auto init = run_command({IDNODE_IDCTL_BINARY, "init", "--data-dir",
                                   (node.dir() / "db").string(), "--node-prefix", "88.118"});
    REQUIRE_MESSAGE(init.exit_code == 0, init.err);
    const std::string admin =
        "Bearer " +
        std::string(body_of(Response{http::status::ok, 11, init.out}).at("admin_key").as_string());
    node.start();
    HttpsClient c(node.https_port(), trust(node.pki().ca_cert));
    c.connect();
    const std::vector<std::pair<std::string, std::string>> as_admin{{"Authorization", admin}};

    // A prefix, an account with a password (for the SNMS login) and a record.
    auto setup = [&](V method, const std::string& target, const std::string& body) {
        auto r = c.request(method, target, body, as_admin);
        REQUIRE_MESSAGE(r.result_int() < 300, target << ": " << r.body());
        return r;
    };
    setup(
        V::post, "/api/v1/prefixes",
        R"({"prefix":"88.118.8","enterprise":{"name":"示例钢铁","credit_code":"91310000631696382C","industry":"C3120","contact":"ops@example.cn"}})");
    setup(
        V::post, "/api/v1/accounts",
        R"({"username":"steel","role":"enterprise","prefixes":["88.118.8"],"password":"steel-secret-1"})");

    Samples s;
    auto probe = [&](std::string name, V method, const std::string& target, std::string doc_path,
                     std::string body = {},
                     std::vector<std::pair<std::string, std::string>> headers = {}) {
        auto r = c.request(method, target, std::move(body), headers);
        s.add(std::move(name), method, std::move(doc_path), r);
        return r;
    };

    // ---- the document itself, as served --------------------------------------------------------
    auto doc = probe("the document", V::get, "/api/openapi.json", "/api/openapi.json");
    REQUIRE(doc.result() == http::status::ok);
    CHECK(doc[http::field::content_type] == "application/json");
    CHECK(doc[http::field::cache_control] == "public, max-age=3600");

    // ---- Handle REST ---------------------------------------------------------------------------
    const std::string record =
        R"({"values":[{"index":1,"type":"URL","data":{"format":"string","value":"https://steel.example.cn/c/H1"}},)"
        R"({"index":2000,"type":"heat_no","data":"炉号 H2024-001"},)"
        R"({"index":2001,"type":"price","data":"4120.50","permissions":"1100"},)"
        R"({"index":2002,"type":"blob","data":{"format":"hex","value":"00ff10"}}]})";
    CHECK(probe("create", V::put, "/api/handles/88.118.8/REC-1", "/api/handles/{handle}", record,
                as_admin)
              .result() == http::status::created);
    CHECK(probe("replace", V::put, "/api/handles/88.118.8/REC-1", "/api/handles/{handle}", record,
                as_admin)
              .result() == http::status::ok);
    CHECK(probe("record", V::get, "/api/handles/88.118.8/REC-1", "/api/handles/{handle}", {},
                as_admin)
              .result() == http::status::ok);
    CHECK(probe("record, pretty", V::get, "/api/handles/88.118.8/REC-1?pretty",
                "/api/handles/{handle}")
              .result() == http::status::ok);
    CHECK(probe("not found", V::get, "/api/handles/88.118.8/NOPE", "/api/handles/{handle}")
              .result() == http::status::not_found);
    CHECK(probe("not homed", V::get, "/api/handles/99.1/x", "/api/handles/{handle}").result() ==
          http::status::bad_request);
    CHECK(probe("bad credentials", V::get, "/api/handles/88.118.8/REC-1", "/api/handles/{handle}",
                {}, {{"Authorization", "Bearer idn_nope"}})
              .result() == http::status::unauthorized);
    CHECK(probe("invalid value", V::put, "/api/handles/88.118.8/REC-2", "/api/handles/{handle}",
                R"({"values":[{"index":0,"type":"URL","data":"x"}]})", as_admin)
              .result() == http::status::bad_request);
    CHECK(probe("list", V::get, "/api/handles?prefix=88.118.8&pageSize=1", "/api/handles", {},
                as_admin)
              .result() == http::status::ok);
    CHECK(probe("homed prefixes", V::get, "/api/prefixes", "/api/prefixes").result() ==
          http::status::ok);
    CHECK(probe("proxy redirect", V::get, "/88.118.8/REC-1", "/{handle}").result() ==
          http::status::found);
    CHECK(probe("proxy JSON", V::get, "/88.118.8/REC-1?noredirect", "/{handle}").result() ==
          http::status::ok);
    CHECK(probe("unknown route", V::get, "/no-such-page", "/{handle}").result() ==
          http::status::not_found);
    CHECK(probe("search page", V::get, "/", "/").result() == http::status::ok);

    // ---- native --------------------------------------------------------------------------------
    CHECK(probe("stats", V::get, "/api/v1/stats", "/api/v1/stats", {}, as_admin).result() ==
          http::status::ok);
    CHECK(probe("stats, anonymous", V::get, "/api/v1/stats", "/api/v1/stats").result() ==
          http::status::unauthorized);
    CHECK(probe("batch resolve", V::post, "/api/v1/resolve", "/api/v1/resolve",
                R"(["88.118.8/REC-1","88.118.8/NOPE","88.118.8/rec-1","bad"])")
              .result() == http::status::ok);
    CHECK(probe("batch resolve, not an array", V::post, "/api/v1/resolve", "/api/v1/resolve",
                R"({"handle":"88.118.8/REC-1"})")
              .result() == http::status::bad_request);
    CHECK(
        probe("prefixes", V::get, "/api/v1/prefixes", "/api/v1/prefixes", {}, as_admin).result() ==
        http::status::ok);
    CHECK(probe("prefix", V::get, "/api/v1/prefixes/88.118.8", "/api/v1/prefixes/{prefix}", {},
                as_admin)
              .result() == http::status::ok);
    CHECK(probe("prefix not allocated", V::get, "/api/v1/prefixes/88.118.77",
                "/api/v1/prefixes/{prefix}", {}, as_admin)
              .result() == http::status::not_found);
    // A route to an enterprise node, the write it refuses, and back.
    const std::string route_path = "/api/v1/prefixes/{prefix}/route";
    CHECK(probe("set route", V::put, "/api/v1/prefixes/88.118.8/route", route_path,
                R"({"servers":[{"address":"192.0.2.10","tcp":2641,"udp":2641,"https":8443}]})",
                as_admin)
              .result() == http::status::ok);
    CHECK(probe("route", V::get, "/api/v1/prefixes/88.118.8/route", route_path, {}, as_admin)
              .result() == http::status::ok);
    CHECK(probe("routed elsewhere", V::put, "/api/handles/88.118.8/ROUTED", "/api/handles/{handle}",
                record, as_admin)
              .result() == http::status::conflict);
    CHECK(probe("route, both shapes", V::put, "/api/v1/prefixes/88.118.8/route", route_path,
                R"({"servers":[{"address":"192.0.2.10","tcp":2641}],"service_handle":"0.NA/X.1"})",
                as_admin)
              .result() == http::status::bad_request);
    CHECK(probe("set service handle", V::put, "/api/v1/prefixes/88.118.8/route", route_path,
                R"({"service_handle":"0.NA/88.118.8.SERV"})", as_admin)
              .result() == http::status::ok);
    CHECK(probe("clear route", V::delete_, "/api/v1/prefixes/88.118.8/route", route_path, {},
                as_admin)
              .result() == http::status::no_content);
    CHECK(probe("not routed", V::get, "/api/v1/prefixes/88.118.8/route", route_path, {}, as_admin)
              .result() == http::status::not_found);
    CHECK(
        probe("accounts", V::get, "/api/v1/accounts", "/api/v1/accounts", {}, as_admin).result() ==
        http::status::ok);
    CHECK(probe("new key", V::post, "/api/v1/accounts/steel/keys", "/api/v1/accounts/{user}/keys",
                {}, as_admin)
              .result() == http::status::created);
    CHECK(probe("new identity", V::post, "/api/v1/accounts/steel/identities",
                "/api/v1/accounts/{user}/identities",
                R"({"handle":"88.118.8/ADMIN","index":300,"secret_key":"interop-secret"})",
                as_admin)
              .result() == http::status::created);
    CHECK(probe("identities", V::get, "/api/v1/accounts/steel/identities",
                "/api/v1/accounts/{user}/identities", {}, as_admin)
              .result() == http::status::ok);
    CHECK(probe("identity, both keys", V::post, "/api/v1/accounts/steel/identities",
                "/api/v1/accounts/{user}/identities",
                R"({"handle":"88.118.8/ADMIN","index":301,"secret_key":"a","public_key":"b"})",
                as_admin)
              .result() == http::status::bad_request);
    CHECK(probe("remove identity", V::delete_,
                "/api/v1/accounts/steel/identities/88.118.8/ADMIN/300",
                "/api/v1/accounts/{user}/identities/{identity}", {}, as_admin)
              .result() == http::status::no_content);
    CHECK(probe("templates", V::get, "/api/v1/templates", "/api/v1/templates", {}, as_admin)
              .result() == http::status::ok);
    CHECK(probe("QR code", V::get, "/api/v1/qr/88.118.8/REC-1", "/api/v1/qr/{handle}").result() ==
          http::status::ok);
    CHECK(probe("QR code, bad format", V::get, "/api/v1/qr/88.118.8/REC-1?format=gif",
                "/api/v1/qr/{handle}")
              .result() == http::status::bad_request);
    const std::string ndjson =
        R"({"handle":"88.118.8/B-1","values":[{"index":1,"type":"URL","data":"https://e.cn/1"}]})"
        "\n"
        R"({"handle":"88.118.8/B-2","values":[{"index":1,"type":"URL","data":"https://e.cn/2"}]})"
        "\n"
        "not json\n"
        R"({"handle":"77.1/B-3","values":[]})"
        "\n";
    auto bulk = probe("bulk", V::post, "/api/v1/bulk?mode=create", "/api/v1/bulk", ndjson,
                      {{"Authorization", admin}, {"Content-Type", "application/x-ndjson"}});
    CHECK(bulk.result() == http::status::ok);
    CHECK(bulk.body().find("\"summary\"") != std::string::npos);
    CHECK(probe("bulk, bad mode", V::post, "/api/v1/bulk?mode=merge", "/api/v1/bulk", ndjson,
                as_admin)
              .result() == http::status::bad_request);

    // ---- SNMS ----------------------------------------------------------------------------------
    auto login = probe("login", V::post, "/identity/token", "/identity/token",
                       R"({"username":"steel","password":"steel-secret-1"})");
    REQUIRE(login.result() == http::status::ok);
    REQUIRE(body_of(login).at("status").as_int64() == 1);
    const std::string token =
        "Bearer " + std::string(body_of(login).at("data").at("token").as_string());
    probe("login, wrong password", V::post, "/identity/token", "/identity/token",
          R"({"username":"steel","password":"wrong-password"})");
    probe("detail", V::get, "/identityv2/data/detail?handle=88.118.8/REC-1",
          "/identityv2/data/detail");
    probe("detail, not found", V::get, "/identityv2/data/detail?handle=88.118.8/NOPE",
          "/identityv2/data/detail");
    probe(
        "create", V::post, "/identityv2/data", "/identityv2/data",
        R"({"handle":"88.118.8/S-1","value":[{"index":1,"type":"URL","data":{"format":"string","value":"https://e.cn/s1"}}]})",
        {{"Authorization", token}});
    probe("create, not logged in", V::post, "/identityv2/data", "/identityv2/data",
          R"({"handle":"88.118.8/S-2","value":[]})");
    probe(
        "batch create", V::post, "/identityv2/data/batchCreate", "/identityv2/data/batchCreate",
        R"([{"handle":"88.118.8/S-3","value":[{"index":1,"type":"URL","data":"https://e.cn/3"}]},{"handle":"bad"}])",
        {{"Authorization", token}});
    probe("batch delete", V::delete_, "/identityv2/data/batchDelete",
          "/identityv2/data/batchDelete", R"(["88.118.8/S-3","88.118.8/NOPE"])",
          {{"Authorization", token}});
    probe("templates", V::get, "/snms/api/v5/template?prefix=88.118.8", "/snms/api/v5/template", {},
          {{"Authorization", token}});
    // Unknown GET paths reach the catch-all route, which answers in the family of the path.
    CHECK(probe("unknown SNMS route", V::get, "/snms/api/v5/nothing", "/{handle}").result() ==
          http::status::not_found);
    CHECK(probe("unknown native route", V::get, "/api/v1/nothing", "/{handle}").result() ==
          http::status::not_found);

    // ---- the check ----------------------------------------------------------------------------
    write_file(node.dir() / "openapi.json", doc.body());
    write_file(node.dir() / "samples.json", json::serialize(s.items));
    const fs::path script = fs::path(IDNODE_SOURCE_DIR) / "tests/openapi/check.mjs";
    const auto check = run_command({"node", script.string(), (node.dir() / "openapi.json").string(),
                                    (node.dir() / "samples.json").string()},
                                   60s);
    INFO(check.out);
    INFO(check.err);
    CHECK_MESSAGE(check.exit_code == 0,
                  "tests/openapi/check.mjs failed (node and its packages come from tools/dev: "
                  "`tools/dev deps`, or `npm ci --prefix tests/openapi`)");
    CHECK(node.stop() == 0);
}
