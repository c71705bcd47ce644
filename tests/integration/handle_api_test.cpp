// The Handle REST API and the native admin API against the real idnode binary: every route with
// its success and error codes, the role x route authorisation matrix, private-value visibility,
// case-insensitive resolution, and a restart that keeps everything.
#include "handle_wire_client.hpp"
#include "harness.hpp"
#include "idnode/resolver/handle_keys.hpp"
#include "idnode/resolver/handle_protocol.hpp"
#include "json_helpers.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <iterator>
#include <mutex>
#include <thread>

using namespace idnode::test;
namespace json = boost::json;
using V = http::verb;

namespace {

fs::path idctl_binary() {
    return IDNODE_IDCTL_BINARY;
}

int rc_of(const Response& r) {
    return static_cast<int>(body_of(r).at("responseCode").as_int64());
}

const char* kRecord = R"({"values":[
  {"index":1,"type":"URL","data":{"format":"string","value":"https://steel.example.cn/c/H1"}},
  {"index":2000,"type":"heat_no","data":{"format":"string","value":"炉号 H2024-001"}},
  {"index":2001,"type":"price","data":"4120.50","permissions":"1100"}]})";

/// A running node with: node prefix 88.118 (idctl init), enterprise prefixes 88.118.8 (account
/// "steel", API key) and 88.118.9 (account "pharma", password), and a reader granted 88.118.8.
struct ApiNode {
    NodeProcess node{"api"};
    std::string admin, steel, pharma_password = "pharma-secret-1", reader;

    ApiNode() {
        const auto init = run_command({idctl_binary().string(), "init", "--data-dir",
                                       (node.dir() / "db").string(), "--node-prefix", "88.118"});
        REQUIRE_MESSAGE(init.exit_code == 0, init.err);
        admin = "Bearer " +
                std::string(
                    body_of(Response{http::status::ok, 11, init.out}).at("admin_key").as_string());
        node.start();
        auto c = client();
        auto alloc = [&](const char* prefix) {
            auto r = c->request(
                V::post, "/api/v1/prefixes",
                std::string(R"({"prefix":")") + prefix +
                    R"(","enterprise":{"name":"宝钢","credit_code":"91310000631696382C","industry":"C3120","contact":"ops@example.cn"}})",
                {{"Authorization", admin}});
            REQUIRE_MESSAGE(r.result() == http::status::created, r.body());
        };
        alloc("88.118.8");
        alloc("88.118.9");
        auto account = [&](const std::string& body) {
            auto r = c->request(V::post, "/api/v1/accounts", body, {{"Authorization", admin}});
            REQUIRE_MESSAGE(r.result() == http::status::created, r.body());
        };
        account(R"({"username":"steel","role":"enterprise","prefixes":["88.118.8"]})");
        account(
            R"({"username":"pharma","role":"enterprise","prefixes":["88.118.9"],"password":"pharma-secret-1"})");
        account(R"({"username":"auditor","role":"reader","prefixes":["88.118.8"]})");
        steel = "Bearer " + key_for(c, "steel");
        reader = "Bearer " + key_for(c, "auditor");
    }

    std::string key_for(std::unique_ptr<HttpsClient>& c, const std::string& user) {
        auto r = c->request(V::post, "/api/v1/accounts/" + user + "/keys", {},
                            {{"Authorization", admin}});
        REQUIRE_MESSAGE(r.result() == http::status::created, r.body());
        return std::string(body_of(r).at("key").as_string());
    }

    std::unique_ptr<HttpsClient> client() {
        auto c = std::make_unique<HttpsClient>(node.https_port(), trust(node.pki().ca_cert));
        c->connect();
        return c;
    }
};

std::vector<int> indices_of(const Response& r) {
    std::vector<int> out;
    const json::value body = body_of(r);
    for (const auto& v : body.at("values").as_array())
        out.push_back(static_cast<int>(v.at("index").as_int64()));
    return out;
}

} // namespace

TEST_CASE("register, resolve with visibility per role, update, delete") {
    ApiNode n;
    auto c = n.client();
    auto put = c->request(V::put, "/api/handles/88.118.8/SN-2024-0001", kRecord,
                          {{"Authorization", n.steel}});
    REQUIRE_MESSAGE(put.result() == http::status::created, put.body());
    CHECK(rc_of(put) == 1);

    // anonymous: public values only, spelling echoed as asked, case-insensitive
    auto anon = c->request(V::get, "/api/handles/88.118.8/sn-2024-0001");
    REQUIRE(anon.result() == http::status::ok);
    CHECK(body_of(anon).at("handle").as_string() == "88.118.8/sn-2024-0001");
    CHECK(indices_of(anon) == std::vector<int>{1, 2000});
    const json::value anon_body = body_of(anon);
    const auto& url = anon_body.at("values").as_array()[0];
    CHECK(url.at("data").at("format").as_string() == "string");
    CHECK(url.at("data").at("value").as_string() == "https://steel.example.cn/c/H1");
    CHECK(url.at("ttl").as_int64() == 86400);
    CHECK(url.at("timestamp").as_string().size() == 20); // 2026-11-22T20:00:00Z
    CHECK_FALSE(url.as_object().contains("permissions"));
    CHECK(body_of(anon).at("values").as_array()[1].at("data").at("value").as_string() ==
          "炉号 H2024-001");

    // owner, reader of the prefix and admin see the private value; another enterprise does not
    for (const auto& who : {n.steel, n.reader, n.admin}) {
        auto r =
            c->request(V::get, "/api/handles/88.118.8/SN-2024-0001", {}, {{"Authorization", who}});
        CHECK(indices_of(r) == std::vector<int>{1, 2000, 2001});
        CHECK(body_of(r).at("values").as_array()[2].at("permissions").as_string() == "1100");
    }
    auto other = c->request(V::get, "/api/handles/88.118.8/SN-2024-0001", {},
                            {{"Authorization", basic_authorization("pharma", n.pharma_password)}});
    CHECK(indices_of(other) == std::vector<int>{1, 2000});

    // filters: ANY type or ANY index
    auto filtered =
        c->request(V::get, "/api/handles/88.118.8/SN-2024-0001?type=url&index=2000&index=7");
    CHECK(indices_of(filtered) == std::vector<int>{1, 2000});
    CHECK(c->request(V::get, "/api/handles/88.118.8/SN-2024-0001?pretty").body().find("\n  ") !=
          std::string::npos);

    // replace (200), overwrite=false (409 RC 101), add one value by index, remove one by index
    auto replace =
        c->request(V::put, "/api/handles/88.118.8/SN-2024-0001",
                   R"([{"index":1,"type":"URL","data":"https://steel.example.cn/c/H2"}])",
                   {{"Authorization", n.steel}});
    CHECK(replace.result() == http::status::ok);
    CHECK(indices_of(c->request(V::get, "/api/handles/88.118.8/SN-2024-0001")) ==
          std::vector<int>{1});
    auto no_overwrite = c->request(V::put, "/api/handles/88.118.8/SN-2024-0001?overwrite=false",
                                   kRecord, {{"Authorization", n.steel}});
    CHECK(no_overwrite.result() == http::status::conflict);
    CHECK(rc_of(no_overwrite) == 101);
    auto add = c->request(V::put, "/api/handles/88.118.8/SN-2024-0001?index=2000", kRecord,
                          {{"Authorization", n.steel}});
    CHECK(add.result() == http::status::ok);
    CHECK(indices_of(c->request(V::get, "/api/handles/88.118.8/SN-2024-0001")) ==
          std::vector<int>{1, 2000});
    auto remove = c->request(V::delete_, "/api/handles/88.118.8/SN-2024-0001?index=1", {},
                             {{"Authorization", n.steel}});
    CHECK(remove.result() == http::status::ok);
    CHECK(indices_of(c->request(V::get, "/api/handles/88.118.8/SN-2024-0001")) ==
          std::vector<int>{2000});

    auto del = c->request(V::delete_, "/api/handles/88.118.8/sn-2024-0001", {},
                          {{"Authorization", n.steel}});
    CHECK(del.result() == http::status::ok);
    auto gone = c->request(V::get, "/api/handles/88.118.8/SN-2024-0001");
    CHECK(gone.result() == http::status::not_found);
    CHECK(rc_of(gone) == 100);
    auto del_again = c->request(V::delete_, "/api/handles/88.118.8/SN-2024-0001", {},
                                {{"Authorization", n.steel}});
    CHECK(del_again.result() == http::status::not_found);
}

TEST_CASE("bad identifiers, bodies and routes get precise errors and change nothing") {
    ApiNode n;
    auto c = n.client();
    struct Case {
        V method;
        std::string target, body;
        http::status status;
        int rc;
    } cases[] = {
        // No slash and not a prefix either (a bare prefix means its prefix handle 0.NA/<p>).
        {V::get, "/api/handles/88.118.8%20x", {}, http::status::bad_request, 102},
        {V::put, "/api/handles/88.118.8", R"({"values":[]})", http::status::bad_request, 102},
        {V::get, "/api/handles/88..1/x", {}, http::status::bad_request, 102}, // empty segment
        {V::get, "/api/handles/88.118.8/a%09b", {}, http::status::bad_request, 102}, // control char
        {V::get, "/api/handles/88.118.8/a%FFb", {}, http::status::bad_request, 102}, // bad UTF-8
        {V::get, "/api/handles/88.118.8/a%zz", {}, http::status::bad_request, 102},  // bad escape
        {V::get, "/api/handles/77.1/x", {}, http::status::bad_request, 301},         // not homed
        {V::put, "/api/handles/88.118.8/x", "{", http::status::bad_request, 202},    // bad JSON
        {V::put, "/api/handles/88.118.8/x", "{}", http::status::bad_request, 202},   // no values
        {V::put, "/api/handles/88.118.8/x", R"([{"index":0,"type":"URL","data":"a"}])",
         http::status::bad_request, 202},
        {V::put, "/api/handles/88.118.8/x", R"([{"index":1,"type":"","data":"a"}])",
         http::status::bad_request, 202},
        {V::put, "/api/handles/88.118.8/x",
         R"([{"index":1,"type":"A","data":"a"},{"index":1,"type":"B","data":"b"}])",
         http::status::bad_request, 202},
        {V::put, "/api/handles/88.118.8/x",
         R"([{"index":1,"type":"A","data":{"format":"base64","value":"***"}}])",
         http::status::bad_request, 202},
        {V::put, "/api/handles/88.118.7/x", R"([{"index":1,"type":"A","data":"a"}])",
         http::status::forbidden, 401},
    };
    for (const auto& k : cases) {
        CAPTURE(k.target);
        CAPTURE(k.body);
        auto r = c->request(k.method, k.target, k.body, {{"Authorization", n.steel}});
        CHECK(r.result() == k.status);
        CHECK(rc_of(r) == k.rc);
        CHECK(r.body().find("\"responseCode\"") != std::string::npos);
    }
    // Nothing was created by any of them.
    CHECK(c->request(V::get, "/api/handles/88.118.8/x").result() == http::status::not_found);
    // Unallocated prefix under the homed node prefix (admin may write anywhere it is allocated).
    auto unallocated =
        c->request(V::put, "/api/handles/88.118.77/x", R"([{"index":1,"type":"A","data":"a"}])",
                   {{"Authorization", n.admin}});
    CHECK(unallocated.result() == http::status::not_found);
    CHECK(body_of(unallocated).at("message").as_string().find("not allocated") !=
          std::string::npos);
}

TEST_CASE("authorisation matrix: who may write where") {
    ApiNode n;
    auto c = n.client();
    const std::string body = R"([{"index":1,"type":"URL","data":"https://x.example/1"}])";
    struct Row {
        std::string who, target;
        http::status status;
    } rows[] = {
        {"", "/api/handles/88.118.8/m1", http::status::unauthorized},
        {n.reader, "/api/handles/88.118.8/m1", http::status::forbidden},
        {basic_authorization("pharma", n.pharma_password), "/api/handles/88.118.8/m1",
         http::status::forbidden},
        {n.steel, "/api/handles/88.118.9/m1", http::status::forbidden},
        {n.steel, "/api/handles/88.118.8/m1", http::status::created},
        {basic_authorization("pharma", n.pharma_password), "/api/handles/88.118.9/m1",
         http::status::created},
        {n.admin, "/api/handles/88.118.9/m2", http::status::created},
        {n.admin, "/api/handles/88.118/node-level", http::status::created},
        {n.steel, "/api/handles/88.118/node-level-2", http::status::forbidden},
        {"Bearer idn_0000000000000000_" + std::string(64, 'a'), "/api/handles/88.118.8/m3",
         http::status::unauthorized},
        {"Bearer not-a-key", "/api/handles/88.118.8/m3", http::status::unauthorized},
        {basic_authorization("pharma", "wrong-password"), "/api/handles/88.118.9/m3",
         http::status::unauthorized},
        {basic_authorization("nobody", "whatever-pass"), "/api/handles/88.118.9/m3",
         http::status::unauthorized},
        {"Digest abc", "/api/handles/88.118.9/m3", http::status::unauthorized},
    };
    for (const auto& row : rows) {
        CAPTURE(row.who);
        CAPTURE(row.target);
        std::vector<std::pair<std::string, std::string>> headers;
        if (!row.who.empty())
            headers.emplace_back("Authorization", row.who);
        auto r = c->request(V::put, row.target, body, headers);
        CHECK(r.result() == row.status);
    }
    // Admin routes refuse everyone but admins.
    for (const auto& who : {n.steel, n.reader, basic_authorization("pharma", n.pharma_password)}) {
        CHECK(c->request(V::get, "/api/v1/accounts", {}, {{"Authorization", who}}).result() ==
              http::status::forbidden);
        CHECK(c->request(V::post, "/api/v1/prefixes", R"({"parent":"88.118"})",
                         {{"Authorization", who}})
                  .result() == http::status::forbidden);
    }
    CHECK(c->request(V::get, "/api/v1/prefixes").result() == http::status::unauthorized);
}

TEST_CASE("failed logins are throttled per client, then legitimate keys still work") {
    ApiNode n;
    auto c = n.client();
    int throttled = 0;
    for (int i = 0; i < 14; ++i) {
        auto r = c->request(
            V::get, "/api/handles/88.118.8/x", {},
            {{"Authorization", basic_authorization("pharma", "bad-" + std::to_string(i))}});
        if (r.result() == http::status::too_many_requests) {
            ++throttled;
            CHECK_FALSE(r[http::field::retry_after].empty());
        } else {
            CHECK(r.result() == http::status::unauthorized);
        }
    }
    CHECK(throttled >= 3);
    // Even the right password is refused while throttled: the attempt is not evaluated at all.
    auto right = c->request(V::get, "/api/handles/88.118.8/x", {},
                            {{"Authorization", basic_authorization("pharma", n.pharma_password)}});
    CHECK(right.result() == http::status::too_many_requests);

    // Legitimate traffic during the attack: anonymous resolution from the attacking address is
    // served (no credentials are evaluated), and another client (127.0.0.2) with a valid key is
    // served, while the attacked account stays throttled from there too.
    CHECK(c->request(V::get, "/api/handles/88.118.8/x").result() == http::status::not_found);
    TlsOptions elsewhere = trust(n.node.pki().ca_cert);
    elsewhere.source_address = "127.0.0.2";
    HttpsClient other(n.node.https_port(), elsewhere);
    other.connect();
    CHECK(
        other
            .request(V::put, "/api/handles/88.118.8/brute-1", kRecord, {{"Authorization", n.steel}})
            .result() == http::status::created);
    CHECK(other
              .request(V::get, "/api/handles/88.118.9/x", {},
                       {{"Authorization", basic_authorization("pharma", n.pharma_password)}})
              .result() == http::status::too_many_requests);
}

TEST_CASE("enterprise prefixes: allocate, list, suspend blocks writes, resume") {
    ApiNode n;
    auto c = n.client();
    const std::string ent =
        R"("enterprise":{"name":"光电","credit_code":"91420100MA4K2X8Y9Q","industry":"C3976","contact":"x"})";
    auto a1 = c->request(V::post, "/api/v1/prefixes", R"({"parent":"88.118",)" + ent + "}",
                         {{"Authorization", n.admin}});
    REQUIRE_MESSAGE(a1.result() == http::status::created, a1.body());
    CHECK(body_of(a1).at("prefix").as_string() == "88.118.10"); // after 8 and 9
    auto a2 = c->request(V::post, "/api/v1/prefixes", R"({"parent":"88.118",)" + ent + "}",
                         {{"Authorization", n.admin}});
    CHECK(body_of(a2).at("prefix").as_string() == "88.118.11");
    auto dup = c->request(V::post, "/api/v1/prefixes", R"({"prefix":"88.118.8",)" + ent + "}",
                          {{"Authorization", n.admin}});
    CHECK(dup.result() == http::status::conflict);
    auto foreign = c->request(V::post, "/api/v1/prefixes", R"({"prefix":"77.1.2",)" + ent + "}",
                              {{"Authorization", n.admin}});
    CHECK(foreign.result() == http::status::bad_request);
    auto bad_code = c->request(
        V::post, "/api/v1/prefixes",
        R"({"parent":"88.118","enterprise":{"name":"x","credit_code":"123","industry":"C3976"}})",
        {{"Authorization", n.admin}});
    CHECK(bad_code.result() == http::status::bad_request);
    CHECK(body_of(bad_code).at("error").at("code").as_string() == "invalid_value");
    auto bad_json =
        c->request(V::post, "/api/v1/prefixes", "{not json", {{"Authorization", n.admin}});
    CHECK(bad_json.result() == http::status::bad_request);

    auto list = c->request(V::get, "/api/v1/prefixes", {}, {{"Authorization", n.admin}});
    CHECK(body_of(list).at("prefixes").as_array().size() == 5); // 88.118 + 8, 9, 10, 11
    auto one = c->request(V::get, "/api/v1/prefixes/88.118.8", {}, {{"Authorization", n.admin}});
    CHECK(body_of(one).at("enterprise").at("name").as_string() == "宝钢");
    CHECK(c->request(V::get, "/api/v1/prefixes/88.118.99", {}, {{"Authorization", n.admin}})
              .result() == http::status::not_found);

    const std::string rec = R"([{"index":1,"type":"URL","data":"https://x.example/1"}])";
    CHECK(c->request(V::post, "/api/v1/prefixes/88.118.8/suspend", {}, {{"Authorization", n.admin}})
              .result() == http::status::ok);
    auto blocked =
        c->request(V::put, "/api/handles/88.118.8/s1", rec, {{"Authorization", n.steel}});
    CHECK(blocked.result() == http::status::forbidden);
    CHECK(rc_of(blocked) == 400);
    CHECK(c->request(V::post, "/api/v1/prefixes/88.118.8/resume", {}, {{"Authorization", n.admin}})
              .result() == http::status::ok);
    CHECK(c->request(V::put, "/api/handles/88.118.8/s1", rec, {{"Authorization", n.steel}})
              .result() == http::status::created);
    auto homed = c->request(V::get, "/api/prefixes");
    CHECK(body_of(homed).at("prefixes").as_array().size() == 5);
}

TEST_CASE("accounts and keys: duplicates, password change, key revocation") {
    ApiNode n;
    auto c = n.client();
    CHECK(c->request(V::post, "/api/v1/accounts", R"({"username":"steel","role":"reader"})",
                     {{"Authorization", n.admin}})
              .result() == http::status::conflict);
    CHECK(c->request(V::post, "/api/v1/accounts", R"({"username":"x y","role":"reader"})",
                     {{"Authorization", n.admin}})
              .result() == http::status::bad_request);
    CHECK(c->request(V::post, "/api/v1/accounts", R"({"username":"e2","role":"enterprise"})",
                     {{"Authorization", n.admin}})
              .result() == http::status::bad_request); // enterprise without prefixes
    CHECK(c->request(V::post, "/api/v1/accounts", R"({"username":"e3","role":"boss"})",
                     {{"Authorization", n.admin}})
              .result() == http::status::bad_request);
    auto accounts =
        body_of(c->request(V::get, "/api/v1/accounts", {}, {{"Authorization", n.admin}}));
    CHECK(accounts.at("accounts").as_array().size() == 4);
    CHECK(json::serialize(accounts).find("pbkdf2") == std::string::npos); // no secrets listed

    // The account changes its own password; the old one stops working.
    auto pw =
        c->request(V::put, "/api/v1/accounts/pharma/password", R"({"password":"new-secret-22"})",
                   {{"Authorization", basic_authorization("pharma", n.pharma_password)}});
    CHECK(pw.result() == http::status::ok);
    CHECK(c->request(V::get, "/api/handles/88.118.9/x", {},
                     {{"Authorization", basic_authorization("pharma", n.pharma_password)}})
              .result() == http::status::unauthorized);
    CHECK(c->request(V::get, "/api/handles/88.118.9/x", {},
                     {{"Authorization", basic_authorization("pharma", "new-secret-22")}})
              .result() == http::status::not_found);
    CHECK(c->request(V::put, "/api/v1/accounts/steel/password", R"({"password":"short"})",
                     {{"Authorization", n.admin}})
              .result() == http::status::bad_request);
    CHECK(c->request(V::put, "/api/v1/accounts/steel/password", R"({"password":"long-enough-1"})",
                     {{"Authorization", n.reader}})
              .result() == http::status::forbidden);

    // A second key (steel has no password to confirm a key of its own with: the admin makes
    // it); revoke the first; the first is refused, the second works.
    auto k2 = c->request(V::post, "/api/v1/accounts/steel/keys", {}, {{"Authorization", n.admin}});
    REQUIRE(k2.result() == http::status::created);
    const std::string second = "Bearer " + std::string(body_of(k2).at("key").as_string());
    const std::string first_id = n.steel.substr(std::string("Bearer idn_").size(), 16);
    CHECK(c->request(V::delete_, "/api/v1/accounts/pharma/keys/" + first_id, {},
                     {{"Authorization", n.admin}})
              .result() == http::status::not_found); // not pharma's key
    CHECK(c->request(V::delete_, "/api/v1/accounts/steel/keys/" + first_id, {},
                     {{"Authorization", n.admin}})
              .result() == http::status::no_content);
    CHECK(
        c->request(V::get, "/api/handles/88.118.8/x", {}, {{"Authorization", n.steel}}).result() ==
        http::status::unauthorized);
    CHECK(c->request(V::get, "/api/handles/88.118.8/x", {}, {{"Authorization", second}}).result() ==
          http::status::not_found);
}

TEST_CASE("listing, proxy redirects, minted suffixes, and a restart keeps everything") {
    ApiNode n;
    {
        auto c = n.client();
        for (int i = 0; i < 25; ++i) {
            auto r = c->request(V::put, "/api/handles/88.118.8/L-" + std::to_string(100 + i),
                                R"([{"index":1,"type":"URL","data":"https://x.example/)" +
                                    std::to_string(i) + R"("}])",
                                {{"Authorization", n.steel}});
            REQUIRE(r.result() == http::status::created);
        }
        CHECK(c->request(V::get, "/api/handles?prefix=88.118.8").result() ==
              http::status::unauthorized);
        CHECK(c->request(V::get, "/api/handles?prefix=88.118.8", {},
                         {{"Authorization", basic_authorization("pharma", n.pharma_password)}})
                  .result() == http::status::forbidden);
        std::vector<std::string> all;
        for (int page = 0; page < 4; ++page) {
            auto r = c->request(
                V::get, "/api/handles?prefix=88.118.8&pageSize=10&page=" + std::to_string(page), {},
                {{"Authorization", n.steel}});
            REQUIRE(r.result() == http::status::ok);
            CHECK(body_of(r).at("totalCount").as_string() == "25");
            const json::value body = body_of(r);
            for (const auto& h : body.at("handles").as_array())
                all.emplace_back(h.as_string());
        }
        REQUIRE(all.size() == 25);
        CHECK(all.front() == "88.118.8/L-100");
        CHECK(all.back() == "88.118.8/L-124");

        auto redirect = c->request(V::get, "/88.118.8/L-103");
        CHECK(redirect.result() == http::status::found);
        CHECK(redirect[http::field::location] == "https://x.example/3");
        CHECK(c->request(V::get, "/88.118.8/L-103?noredirect").result() == http::status::ok);
        CHECK(c->request(V::get, "/88.118.8/none").result() == http::status::not_found);

        auto minted = c->request(V::put, "/api/handles/88.118.8/order-?mintNewSuffix=true",
                                 R"([{"index":1,"type":"URL","data":"https://x.example/o"}])",
                                 {{"Authorization", n.steel}});
        REQUIRE(minted.result() == http::status::created);
        const std::string minted_handle(body_of(minted).at("handle").as_string());
        CHECK(minted_handle.size() == std::string("88.118.8/order-").size() + 36);
        CHECK(c->request(V::get, "/api/handles/" + minted_handle).result() == http::status::ok);
        const std::string metrics = http_get(n.node.ops_port(), "/metrics").body();
        CHECK(metric_value(metrics, "idnode_identifiers") == 26);
        CHECK(metric_value(metrics, "idnode_db_used_bytes") > 0);
        CHECK(metric_value(metrics, "idnode_writer_committed_ops") >= 26);
    }
    CHECK(n.node.stop() == 0);
    n.node.start();
    auto c = n.client();
    auto r = c->request(V::get, "/api/handles/88.118.8/L-124");
    CHECK(r.result() == http::status::ok);
    CHECK(c->request(V::get, "/api/handles/88.118.8/L-124", {}, {{"Authorization", n.steel}})
              .result() == http::status::ok);
    CHECK(c->request(V::get, "/api/v1/prefixes/88.118.9", {}, {{"Authorization", n.admin}})
              .result() == http::status::ok);
}

TEST_CASE("SIGTERM during write load loses no acknowledged write") {
    ApiNode n;
    std::atomic<bool> stop{false};
    std::mutex mutex;
    std::vector<std::string> acknowledged;
    std::vector<std::thread> writers;
    const int threads = 4;
    for (int t = 0; t < threads; ++t) {
        writers.emplace_back([&, t] {
            try {
                auto c = n.client();
                for (int i = 0; !stop; ++i) {
                    const std::string h =
                        "88.118.8/T" + std::to_string(t) + "-" + std::to_string(i);
                    auto r = c->request(V::put, "/api/handles/" + h,
                                        R"([{"index":1,"type":"URL","data":"https://x/1"}])",
                                        {{"Authorization", n.steel}});
                    if (r.result() == http::status::created) {
                        std::lock_guard lock(mutex);
                        acknowledged.push_back(h);
                    }
                    if (!r.keep_alive()) {
                        break; // the server is draining: this connection ends here
                    }
                }
            } catch (const std::exception&) {
                // connection closed by the stopping server: whatever was acknowledged counts
            }
        });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(reduced_mode() ? 800 : 400));
    n.node.signal(SIGTERM);
    const int status = n.node.wait(15s);
    stop = true;
    for (auto& w : writers)
        w.join();
    CHECK(status == 0);
    REQUIRE(acknowledged.size() > 10);
    n.node.start();
    auto c = n.client();
    int missing = 0;
    for (const auto& h : acknowledged) { // as the owner: more reads than the anonymous rate
        if (c->request(V::get, "/api/handles/" + h, {}, {{"Authorization", n.steel}}).result() !=
            http::status::ok)
            ++missing;
    }
    CHECK(missing == 0);
    MESSAGE(acknowledged.size() << " acknowledged writes, all present after restart");
}

TEST_CASE("limits.rate_per_account: an account beyond its rate gets 429, others are unaffected") {
    ApiNode n; // started with defaults; restart with the limit set
    CHECK(n.node.stop() == 0);
    n.node.set("limits.rate_per_account", "5");
    n.node.start();
    auto c = n.client();
    int limited = 0;
    for (int i = 0; i < 15; ++i) {
        auto r = c->request(V::get, "/api/handles/88.118.8/x", {}, {{"Authorization", n.steel}});
        if (r.result() == http::status::too_many_requests) {
            ++limited;
            CHECK_FALSE(r[http::field::retry_after].empty());
        }
    }
    CHECK(limited >= 5);
    // Another account and anonymous callers still get answers.
    CHECK(
        c->request(V::get, "/api/handles/88.118.8/x", {}, {{"Authorization", n.reader}}).result() ==
        http::status::not_found);
    CHECK(c->request(V::get, "/api/handles/88.118.8/x").result() == http::status::not_found);
}

// ---- the Handle protocol served by the same binary -------------------------------------------

namespace {

std::string resolution_message(const std::string& handle, std::uint32_t request_id,
                               std::uint32_t flags) {
    namespace hp = idnode::resolver::handle;
    std::string body;
    hp::encode_resolution_request(body, handle, {}, {});
    hp::Envelope env;
    env.request_id = request_id;
    hp::Header header;
    header.opcode = hp::opcode::kResolution;
    header.op_flags = flags;
    header.body_length = static_cast<std::uint32_t>(body.size());
    std::string out;
    hp::encode_message(out, env, header, body);
    return out;
}

std::string exchange_udp(std::uint16_t port, const std::string& request) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::sendto(fd, request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    char buf[2048];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    ::close(fd);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

} // namespace

TEST_CASE("the Handle protocol on the node's port resolves what the REST API registered") {
    namespace hp = idnode::resolver::handle;
    ApiNode n;
    REQUIRE(n.node.handle_port() != 0);
    auto c = n.client();
    REQUIRE(c->request(V::put, "/api/handles/88.118.8/HP-1", kRecord, {{"Authorization", n.steel}})
                .result() == http::status::created);

    // UDP, public-only flag: the two public values, in the stored wire form.
    const std::string reply = exchange_udp(
        n.node.handle_port(), resolution_message("88.118.8/hp-1", 7, hp::opflag::kPublicOnly));
    REQUIRE_FALSE(reply.empty());
    auto msg = hp::decode_message(reply);
    REQUIRE(msg.ok());
    CHECK(msg->envelope.request_id == 7);
    CHECK(msg->header.response_code == hp::rc::kSuccess);
    auto record = hp::decode_resolution_response(msg->body);
    REQUIRE(record.ok());
    REQUIRE(record->values.size() == 2);
    CHECK(record->values[1].data == "炉号 H2024-001");

    // TCP, one connection, several requests: found, not found, not homed.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(n.node.handle_port());
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0);
    timeval tv{3, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const std::pair<std::string, std::uint32_t> asks[] = {
        {"88.118.8/HP-1", hp::rc::kSuccess},
        {"88.118.8/none", hp::rc::kHandleNotFound},
        {"77.1/x", hp::rc::kServerNotResponsible}};
    for (const auto& [handle, expected] : asks) {
        const std::string request = resolution_message(handle, 9, hp::opflag::kPublicOnly);
        REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(request.size()));
        std::string buffer;
        while (hp::probe_frame(buffer).state != hp::FrameProbe::State::complete) {
            char chunk[4096];
            const ssize_t got = ::recv(fd, chunk, sizeof chunk, 0);
            REQUIRE(got > 0);
            buffer.append(chunk, static_cast<std::size_t>(got));
        }
        auto m =
            hp::decode_message(std::string_view(buffer).substr(0, hp::probe_frame(buffer).size));
        REQUIRE(m.ok());
        CAPTURE(handle);
        CHECK(m->header.response_code == expected);
    }
    ::close(fd);

    // /metrics breaks the four requests down by opcode and response code, with a latency
    // histogram over the same requests.
    const std::string metrics = http_get(n.node.ops_port(), "/metrics").body();
    CHECK(metric_value(metrics, "idnode_handle_requests_total{opcode=\"1\"}") == 4);
    CHECK(metric_value(metrics, "idnode_handle_responses_total{rc=\"1\"}") == 2);
    CHECK(metric_value(metrics, "idnode_handle_responses_total{rc=\"100\"}") == 1);
    CHECK(metric_value(metrics, "idnode_handle_responses_total{rc=\"301\"}") == 1);
    CHECK(metric_value(metrics, "idnode_handle_request_seconds_count") == 4);
    CHECK(metric_value(metrics, "idnode_handle_request_seconds_bucket{le=\"+Inf\"}") == 4);
    CHECK(metric_value(metrics, "idnode_handle_udp_requests_total") == 1);
    CHECK(metric_value(metrics, "idnode_handle_tcp_requests_total") == 3);
    CHECK(metrics.find("# TYPE idnode_handle_requests_total counter") != std::string::npos);
    CHECK(n.node.stop() == 0);
}

TEST_CASE("handle.public_key is published in HS_SITE; a bad key file fails startup clearly") {
    namespace hp = idnode::resolver::handle;
    NodeProcess node("sitekey");
    const auto private_pem = node.dir() / "site-key.pem";
    const auto public_pem = node.dir() / "site-pub.pem";
    REQUIRE(run_command({"openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                         "rsa_keygen_bits:2048", "-out", private_pem.string()})
                .exit_code == 0);
    REQUIRE(run_command({"openssl", "pkey", "-in", private_pem.string(), "-pubout", "-out",
                         public_pem.string()})
                .exit_code == 0);
    std::ifstream in(public_pem);
    const std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto expected = hp::encode_public_key_pem(pem);
    REQUIRE(expected.ok());

    // A missing file, then a private key where a public one belongs: startup fails (start()
    // writes the config file), and --check-config names the key.
    for (const auto& wrong : {private_pem.string() + ".missing", private_pem.string()}) {
        CAPTURE(wrong);
        node.set("handle.public_key", "\"" + wrong + "\"");
        CHECK_THROWS(node.start());
        const auto checked =
            run_command({idnode_binary().string(), "--check-config", node.config_path().string()});
        CHECK(checked.exit_code == 1);
        CHECK(checked.err.find("handle.public_key") != std::string::npos);
    }

    node.set("handle.public_key", "\"" + public_pem.string() + "\"");
    node.start();
    std::string body;
    hp::Envelope env;
    env.request_id = 5;
    hp::Header header;
    header.opcode = hp::opcode::kGetSiteInfo;
    std::string request;
    hp::encode_message(request, env, header, body);
    const std::string reply = exchange_udp(node.handle_port(), request);
    REQUIRE_FALSE(reply.empty());
    auto msg = hp::decode_message(reply);
    REQUIRE(msg.ok());
    REQUIRE(msg->header.response_code == hp::rc::kSuccess);
    auto site = hp::decode_site_info(msg->body);
    REQUIRE(site.ok());
    REQUIRE(site->servers.size() == 1);
    CHECK(site->servers[0].public_key == *expected);
    CHECK(node.stop() == 0);
}

namespace {

namespace hp = idnode::resolver::handle;

// Requests exactly as HANDLE.NET 9.3.1's Java client sent them (tests/data/handle-admin.md):
// RESOLUTION of 88.118.8/BIG-001 over UDP (REC|CA|PO, version 2.3 suggesting 2.11), GET_SITE_INFO
// over TCP, and the certified (CT|REC|CA|PO) RESOLUTION of 88.118.8/SN-2024-000123.
constexpr std::string_view kHdlUdpBigRequest =
    "0203020b0000000078c82e5b0000000000000038000000010000000019000000ffff00006b1732c80000001c000000"
    "1038382e3131382e382f4249472d303031000000000000000000000000";
constexpr std::string_view kHdlSiteInfoRequest = "0203020b00000000190de5040000000000000021000000020"
                                                 "000000019000000ffff00006b1732ce0000000500000001"
                                                 "2f00000000";
constexpr std::string_view kHdlCertifiedRequest =
    "020b020b000000004f897502000000000000003f000000010000000059000000000100006b1732ce00000023000000"
    "17"
    "38382e3131382e382f534e2d323032342d303030313233000000000000000000000000";

std::string read_text(const fs::path& path) {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

} // namespace

TEST_CASE("HANDLE.NET's own requests: every UDP fragment, signed answers, honest site info") {
    namespace hw = idnode::test::handle_wire;
    using hw::be32;
    using hw::exchange_tcp;
    using hw::put_be32;
    using hw::reassemble;
    using hw::unhex;
    ApiNode n;
    auto c = n.client();
    const std::string big_values =
        R"({"values":[{"index":1,"type":"URL","data":"https://steel.example.cn/coil/BIG-001"},)"
        R"({"index":2,"type":"DESC","data":")" +
        std::string(1500, 'd') + R"("}]})";
    const std::string huge_values =
        R"({"values":[{"index":1,"type":"DESC","data":")" + std::string(9000, 'h') + R"("}]})";
    for (const auto& [handle, body] :
         {std::pair{"88.118.8/BIG-001", big_values}, std::pair{"88.118.8/HUGE-01", huge_values},
          std::pair{"88.118.8/SN-2024-000123", std::string(kRecord)}}) {
        auto r = c->request(V::put, std::string("/api/handles/") + handle, body,
                            {{"Authorization", n.steel}});
        REQUIRE_MESSAGE(r.result() == http::status::created, r.body());
    }

    // idctl init made the server's key pair; the node signs with it once configured.
    const fs::path key_file = n.node.dir() / "db" / "handle-key.pem";
    REQUIRE(fs::exists(key_file));
    CHECK((fs::status(key_file).permissions() & (fs::perms::group_all | fs::perms::others_all)) ==
          fs::perms::none);
    auto key = hp::ServerKey::from_pem(read_text(key_file));
    REQUIRE(key.ok());
    REQUIRE(n.node.stop() == 0);
    n.node.set("handle.private_key", "\"" + key_file.string() + "\"");
    n.node.start();
    const std::uint16_t port = n.node.handle_port();

    // GET_SITE_INFO: the key's public half, and only the interfaces that speak the protocol.
    const std::string site_bytes = exchange_tcp(port, unhex(kHdlSiteInfoRequest));
    auto site_reply = hp::decode_message(site_bytes); // views into site_bytes
    REQUIRE(site_reply.ok());
    REQUIRE(site_reply->header.response_code == hp::rc::kSuccess);
    auto site = hp::decode_site_info(site_reply->body);
    REQUIRE(site.ok());
    REQUIRE(site->servers.size() == 1);
    CHECK(site->servers[0].public_key == key->public_key());
    REQUIRE(site->servers[0].interfaces.size() == 2);
    for (const auto& i : site->servers[0].interfaces) {
        CHECK((i.transport == hp::Transport::tcp || i.transport == hp::Transport::udp));
        CHECK(i.port == port);
    }

    // The 1.6 KB record over UDP: every fragment, reassembled by offset into the whole answer.
    const auto datagrams = hw::exchange_udp(port, unhex(kHdlUdpBigRequest));
    REQUIRE(datagrams.size() >= 2);
    const std::uint32_t length = be32(datagrams[0], 16);
    CHECK(datagrams.size() == (length + 491) / 492);
    for (std::size_t i = 0; i < datagrams.size(); ++i) {
        CHECK(datagrams[i].size() <= hp::kMaxUdpDatagram);
        CHECK(be32(datagrams[i], 8) == 0x78c82e5bu); // the client's request id
    }
    const std::string big_bytes = reassemble(datagrams);
    auto big = hp::decode_message(big_bytes);
    REQUIRE(big.ok());
    CHECK(big->header.response_code == hp::rc::kSuccess);
    auto big_record = hp::decode_resolution_response(big->body);
    REQUIRE(big_record.ok());
    CHECK(big_record->values.size() == 2);

    // Over handle.udp_max_reply_bytes (8 KiB): one short RC 2, and TCP has the whole answer.
    // (The captured request with a handle of the same length.)
    std::string huge_request = unhex(kHdlUdpBigRequest);
    huge_request.replace(hp::kEnvelopeSize + hp::kHeaderSize + 4, 16, "88.118.8/HUGE-01");
    const auto refused = hw::exchange_udp(port, huge_request);
    REQUIRE(refused.size() == 1);
    auto too_large = hp::decode_message(refused[0]);
    REQUIRE(too_large.ok());
    CHECK(too_large->header.response_code == hp::rc::kError);
    const std::string whole_bytes = exchange_tcp(port, huge_request);
    auto whole = hp::decode_message(whole_bytes);
    REQUIRE(whole.ok());
    CHECK(whole->header.response_code == hp::rc::kSuccess);

    // CERT: signed with the server key, verifiable with the key in site info, TCP and UDP.
    for (const bool over_udp : {false, true}) {
        CAPTURE(over_udp);
        const std::string request = unhex(kHdlCertifiedRequest);
        const std::string reply =
            over_udp ? reassemble(hw::exchange_udp(port, request)) : exchange_tcp(port, request);
        auto signed_answer = hp::decode_message(reply);
        REQUIRE(signed_answer.ok());
        CHECK(signed_answer->header.response_code == hp::rc::kSuccess);
        CHECK((signed_answer->header.op_flags & hp::opflag::kCertified) != 0);
        REQUIRE(signed_answer->credential.has_value());
        CHECK(hp::verify_signature(site->servers[0].public_key, hp::signed_bytes(reply),
                                   reply.substr(reply.size() - 256)));
    }

    // id-pointer-sdk >= 2.2.3: an empty authentication field after the type list (CT off).
    std::string with_auth = unhex(kHdlCertifiedRequest);
    const std::size_t body_length_at = hp::kEnvelopeSize + 20;
    const std::size_t body_end =
        hp::kEnvelopeSize + hp::kHeaderSize + be32(with_auth, body_length_at);
    with_auth.insert(body_end, std::string(4, '\0'));
    put_be32(with_auth, 16, be32(with_auth, 16) + 4);
    put_be32(with_auth, body_length_at, be32(with_auth, body_length_at) + 4);
    put_be32(with_auth, hp::kEnvelopeSize + 8, 0x1900'0000u);
    const std::string tolerated_bytes = exchange_tcp(port, with_auth);
    auto tolerated = hp::decode_message(tolerated_bytes);
    REQUIRE(tolerated.ok());
    CHECK(tolerated->header.response_code == hp::rc::kSuccess);
    CHECK(n.node.stop() == 0);
}
