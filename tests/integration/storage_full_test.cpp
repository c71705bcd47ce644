// Full disk (issue 9, DESIGN §4): a node with a small node.max_db_size fills up. Then every write
// path says "storage full" precisely (Handle REST 507 RC 2, bulk per-line `storage_full`, SNMS
// status -2 with a message), reads keep working, and the database stays
// consistent (`idctl verify`). After raising the limit and restarting, writes resume.
//
// The Handle protocol server (TCP/UDP 2641) answers RESOLUTION and GET_SITE_INFO only; it has no
// write operations, so its RC 2 for storage full cannot arise (see README).
#include "harness.hpp"
#include "json_helpers.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <cstdlib>

using namespace idnode::test;
namespace json = boost::json;
using V = http::verb;

namespace {

fs::path idctl_binary() {
    return IDNODE_IDCTL_BINARY;
}

json::object verify(const fs::path& data_dir) {
    auto r = run_command(
        {idctl_binary().string(), "--json", "verify", "--data-dir", data_dir.string()}, 60s);
    INFO("idctl verify stdout: " << r.out << "\nstderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    auto report = parse_json(r.out).as_object();
    CHECK(report.at("ok").as_bool());
    return report;
}

std::string values_json(const std::string& url, std::size_t padding) {
    json::array values;
    values.push_back(json::object{{"index", 1}, {"type", "URL"}, {"data", url}});
    if (padding > 0)
        values.push_back(
            json::object{{"index", 2001}, {"type", "pad"}, {"data", std::string(padding, 'p')}});
    return json::serialize(values);
}

std::string bulk_line(const std::string& handle, std::size_t padding) {
    return R"({"handle":")" + handle + R"(","values":)" +
           values_json("https://e.cn/" + handle, padding) + "}\n";
}

struct FullNode {
    NodeProcess node{"full"};
    std::string admin, steel;

    std::unique_ptr<HttpsClient> client() {
        auto c = std::make_unique<HttpsClient>(node.https_port(), trust(node.pki().ca_cert), 20s);
        c->connect();
        return c;
    }
    fs::path data_dir() const { return node.dir() / "db"; }

    /// Bulk-creates `lines`; returns (created, storage_full errors, other errors).
    std::tuple<int, int, int> bulk(HttpsClient& c, const std::string& body) {
        auto r = c.request(V::post, "/api/v1/bulk?mode=create&results=errors", body,
                           {{"Authorization", steel}});
        REQUIRE_MESSAGE(r.result() == http::status::ok, r.body());
        int full = 0, other = 0;
        auto lines = ndjson_values(r.body());
        for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
            const auto& e = lines[i].at("error");
            if (e.at("code") == "storage_full") {
                ++full;
                CHECK(std::string(e.at("message").as_string()).find("storage full") !=
                      std::string::npos);
            } else {
                ++other;
                MESSAGE("unexpected bulk error: " << json::serialize(lines[i]));
            }
        }
        const auto created = lines.back().at("summary").at("created").as_int64();
        return {static_cast<int>(created), full, other};
    }
};

} // namespace

TEST_CASE("storage full: writes fail with 507 / storage_full / SNMS -2, reads go on, restart with "
          "a larger limit resumes writes") {
    FullNode n;
    const auto init = run_command({idctl_binary().string(), "init", "--data-dir",
                                   n.data_dir().string(), "--node-prefix", "88.118"});
    REQUIRE_MESSAGE(init.exit_code == 0, init.err);
    n.admin = "Bearer " + std::string(parse_json(init.out).at("admin_key").as_string());
    n.node.set("node.max_db_size", "\"2MiB\"");
    n.node.start();
    auto c = n.client();
    {
        auto p = c->request(
            V::post, "/api/v1/prefixes",
            R"({"prefix":"88.118.8","enterprise":{"name":"E","credit_code":"91310000631696382C","industry":"C3120","contact":"ops@example.cn"}})",
            {{"Authorization", n.admin}});
        REQUIRE_MESSAGE(p.result() == http::status::created, p.body());
        auto a = c->request(V::post, "/api/v1/accounts",
                            R"({"username":"steel","role":"enterprise","prefixes":["88.118.8"],)"
                            R"("password":"steel-password-1"})",
                            {{"Authorization", n.admin}});
        REQUIRE_MESSAGE(a.result() == http::status::created, a.body());
        auto k =
            c->request(V::post, "/api/v1/accounts/steel/keys", {}, {{"Authorization", n.admin}});
        REQUIRE_MESSAGE(k.result() == http::status::created, k.body());
        n.steel = "Bearer " + std::string(parse_json(k.body()).at("key").as_string());
    }
    // An SNMS login token, taken while there is room (logging in writes nothing, but be sure).
    auto login = c->request(V::post, "/identity/token",
                            R"({"username":"steel","password":"steel-password-1"})",
                            {{"Content-Type", "application/json"}});
    REQUIRE_MESSAGE(login.result() == http::status::ok, login.body());
    const std::string token =
        "Bearer " + std::string(parse_json(login.body()).at("data").at("token").as_string());

    // Fill: bulk uploads of `batch` small records; when a batch no longer fits, halve it, down to
    // single records. Everything created stays readable.
    int next = 0, created_total = 0;
    for (int batch = 2000; batch >= 1;) {
        std::string body;
        for (int i = 0; i < batch; ++i)
            body += bulk_line("88.118.8/F-" + std::to_string(100000 + next + i), 200);
        const auto [created, full, other] = n.bulk(*c, body);
        CHECK(other == 0);
        REQUIRE(created + full == batch);
        created_total += created;
        next += batch;
        if (full > 0)
            batch /= 2;
        REQUIRE(next < 200000); // 2 MiB cannot hold that many
    }
    MESSAGE("filled 2 MiB with " << created_total << " records");
    REQUIRE(created_total > 1000);

    const std::string big = std::string(30000, 'b'); // needs fresh overflow pages: cannot fit

    // Handle REST: 507, RC 2, a message that says so.
    auto put = c->request(V::put, "/api/handles/88.118.8/FULL-1",
                          R"({"values":)" + values_json("https://e.cn/full", 30000) + "}",
                          {{"Authorization", n.steel}});
    CHECK(put.result() == http::status::insufficient_storage);
    auto put_body = parse_json(put.body());
    CHECK(put_body.at("responseCode") == 2);
    CHECK(std::string(put_body.at("message").as_string()).find("storage full") !=
          std::string::npos);

    // Bulk: HTTP 200 (the stream has begun), the line fails with storage_full.
    {
        const auto [created, full, other] = n.bulk(*c, bulk_line("88.118.8/FULL-2", 30000));
        CHECK(created == 0);
        CHECK(full == 1);
        CHECK(other == 0);
    }

    // SNMS: status -2 (business error) with a readable message, single and batch.
    auto snms = c->request(V::post, "/identityv2/data",
                           R"({"handle":"88.118.8/FULL-3","value":[{"index":1,"type":"URL",)"
                           R"("data":{"format":"string","value":")" +
                               big + R"("}}]})",
                           {{"Authorization", token}, {"Content-Type", "application/json"}});
    REQUIRE(snms.result() == http::status::ok);
    auto snms_body = parse_json(snms.body());
    CHECK(snms_body.at("status") == -2);
    CHECK(std::string(snms_body.at("message").as_string()).find("存储空间已满") !=
          std::string::npos);
    auto snms_batch = c->request(V::post, "/identityv2/data/batchCreate",
                                 R"([{"handle":"88.118.8/FULL-4","value":[{"index":1,"type":"URL",)"
                                 R"("data":{"format":"string","value":")" +
                                     big + R"("}}]}])",
                                 {{"Authorization", token}, {"Content-Type", "application/json"}});
    auto batch_body = parse_json(snms_batch.body());
    CHECK(batch_body.at("status") == 1); // the envelope; the record itself failed:
    CHECK(std::string(batch_body.at("data").as_array()[0].at("msg").as_string())
              .find("存储空间已满") != std::string::npos);

    // Reads keep working: Handle REST, batch resolve, SNMS detail, listing.
    auto get = c->request(V::get, "/api/handles/88.118.8/F-100000");
    CHECK(get.result() == http::status::ok);
    CHECK(get.body().find("https://e.cn/88.118.8/F-100000") != std::string::npos);
    CHECK(c->request(V::get, "/api/handles/88.118.8/FULL-1").result() == http::status::not_found);
    auto resolved = c->request(V::post, "/api/v1/resolve", R"(["88.118.8/F-100001"])");
    CHECK(parse_json(resolved.body()).as_array()[0].at("responseCode") == 1);
    auto detail = c->request(V::get, "/identityv2/data/detail?handle=88.118.8/F-100002");
    CHECK(parse_json(detail.body()).at("status") == 1);
    auto list = c->request(V::get, "/api/handles?prefix=88.118.8&pageSize=10", {},
                           {{"Authorization", n.steel}});
    CHECK(list.result() == http::status::ok);
    c.reset();

    // Nothing is corrupt.
    REQUIRE(n.node.stop() == 0);
    auto report = verify(n.data_dir());
    CHECK(report.at("identifiers") == created_total);

    // Raise the limit, restart: writes resume.
    n.node.set("node.max_db_size", "\"64MiB\"");
    n.node.start();
    c = n.client();
    auto again = c->request(V::put, "/api/handles/88.118.8/FULL-1",
                            R"({"values":)" + values_json("https://e.cn/full", 30000) + "}",
                            {{"Authorization", n.steel}});
    CHECK_MESSAGE(again.result() == http::status::created, again.body());
    {
        const auto [created, full, other] = n.bulk(*c, bulk_line("88.118.8/FULL-2", 30000));
        CHECK(created == 1);
        CHECK(full == 0);
        CHECK(other == 0);
    }
    auto snms_again = c->request(V::post, "/identityv2/data",
                                 R"({"handle":"88.118.8/FULL-3","value":[{"index":1,"type":"URL",)"
                                 R"("data":{"format":"string","value":")" +
                                     big + R"("}}]})",
                                 {{"Authorization", token}, {"Content-Type", "application/json"}});
    CHECK(parse_json(snms_again.body()).at("status") == 1);
    c.reset();
    REQUIRE(n.node.stop() == 0);
    report = verify(n.data_dir());
    CHECK(report.at("identifiers") == created_total + 3);
}
