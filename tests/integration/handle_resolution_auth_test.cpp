// Resolution against the real idnode as Handle clients see it: identity handles with their
// HS_PUBKEY, prefix handles (docs/hierarchy.md#prefix-records), and the challenge of a RESOLUTION
// answered by an identity to read non-public values (docs/handle-protocol.md#resolution).
#include "handle_admin_support.hpp"

#include <doctest/doctest.h>

using namespace idnode::test;
using namespace idnode::test::handle_wire;
using namespace idnode::test::handle_admin;
using V = http::verb;

TEST_CASE("identity handles resolve with their HS_PUBKEY; secret keys never show") {
    AdminNode n;
    const std::string public_pem =
        capture_pem("-----BEGIN PUBLIC KEY-----", "-----END PUBLIC KEY-----");
    auto expected_key = hp::encode_public_key_pem(public_pem);
    REQUIRE(expected_key.ok());

    // 300:88.118.8/ADMIN has no stored record: the identity alone, over UDP, TCP and HTTPS.
    const std::string udp =
        reassemble(exchange_udp(n.node.handle_port(), resolution_request("88.118.8/admin")));
    auto values = values_of(udp);
    REQUIRE(values.size() == 1);
    CHECK(values[300].first == "HS_PUBKEY");
    CHECK(values[300].second == *expected_key);
    CHECK(values_of(exchange_tcp(n.node.handle_port(), resolution_request("88.118.8/ADMIN"))) ==
          values);
    auto [status, body] = n.get("88.118.8/ADMIN");
    REQUIRE(status == http::status::ok);
    CHECK(body.find("\"HS_PUBKEY\"") != std::string::npos);
    // Anonymous readers see it too: a public key is public.
    auto anonymous = n.client()->request(V::get, "/api/handles/88.118.8/ADMIN", {}, {});
    CHECK(anonymous.result() == http::status::ok);

    // The prefix handle carries the node's HS_SITE and the admin's public-key identity (300), but
    // never the secret-key one (301).
    values = values_of(exchange_tcp(n.node.handle_port(), resolution_request("0.NA/88.118")));
    CHECK(values.count(1) == 1);
    CHECK(values[1].first == "HS_SITE");
    CHECK(values[300].first == "HS_PUBKEY");
    CHECK(values.count(301) == 0);
    CHECK(values[100].first == "HS_ADMIN");
    // An enterprise prefix's handle adds the public part of its allocation.
    values = values_of(exchange_tcp(n.node.handle_port(), resolution_request("0.NA/88.118.8")));
    CHECK(values[1].first == "HS_SITE");
    CHECK(values[2] == std::pair<std::string, std::string>{"ORG_NAME", "宝钢"});
    CHECK(values[3] == std::pair<std::string, std::string>{"ORG_CODE", "91310000631696382C"});
    CHECK(values[4] == std::pair<std::string, std::string>{"ORG_INDUSTRY", "C3120"});
    CHECK(values[100].first == "HS_ADMIN");
    CHECK(values.size() == 5);
    CHECK(rc_of(exchange_tcp(n.node.handle_port(), resolution_request("0.NA/88.118.77"))) ==
          hp::rc::kHandleNotFound);
    // The same records over HTTPS, a bare prefix meaning its prefix handle; never writable there.
    for (const char* spelled : {"0.NA/88.118.8", "88.118.8"}) {
        CAPTURE(spelled);
        auto [code, json] = n.get(spelled);
        REQUIRE(code == http::status::ok);
        CHECK(json.find("\"HS_SITE\"") != std::string::npos);
        CHECK(json.find("\"ORG_NAME\"") != std::string::npos);
        CHECK(json.find("\"HS_ADMIN\"") != std::string::npos);
    }
    CHECK(n.get("0.NA/88.118.77").first == http::status::not_found);
    CHECK(n.get("0.NA/77.1").first != http::status::ok);
    auto prefix_put = n.client()->request(V::put, "/api/handles/0.NA/88.118.8",
                                          R"({"values":[{"index":1,"type":"URL","data":"x"}]})",
                                          {{"Authorization", n.admin}});
    CHECK(prefix_put.result() != http::status::created);
    CHECK(prefix_put.result() != http::status::ok);

    // A secret-key identity alone resolves to nothing.
    auto c = n.client();
    auto post = c->request(V::post, "/api/v1/accounts/steel/identities",
                           R"({"handle":"88.118.8/SECRET","index":300,"secret_key":"s3cret"})",
                           {{"Authorization", n.admin}});
    REQUIRE(post.result() == http::status::created);
    CHECK(n.get("88.118.8/SECRET").first == http::status::not_found);
    CHECK(rc_of(exchange_tcp(n.node.handle_port(), resolution_request("88.118.8/SECRET"))) ==
          hp::rc::kHandleNotFound);

    // A stored record under an identity's handle keeps its values; the identity's key takes its
    // index.
    auto put = c->request(V::put, "/api/handles/88.118.8/ADMIN",
                          R"({"values":[{"index":1,"type":"URL","data":"https://steel.example.cn"},
                                        {"index":300,"type":"EMAIL","data":"ops@steel.example.cn"}]})",
                          {{"Authorization", n.admin}});
    REQUIRE_MESSAGE(put.result() == http::status::created, put.body());
    values = values_of(exchange_tcp(n.node.handle_port(), resolution_request("88.118.8/ADMIN")));
    REQUIRE(values.size() == 2);
    CHECK(values[1].first == "URL");
    CHECK(values[300].first == "HS_PUBKEY");

    // Removing the identity leaves the stored record as it is.
    auto removed = c->request(V::delete_, "/api/v1/accounts/steel/identities/88.118.8/ADMIN/300",
                              {}, {{"Authorization", n.admin}});
    REQUIRE(removed.result() == http::status::no_content);
    values = values_of(exchange_tcp(n.node.handle_port(), resolution_request("88.118.8/ADMIN")));
    CHECK(values[300].first == "EMAIL");
    CHECK(n.node.stop() == 0);
}

TEST_CASE("non-public values: the RC 402 of a RESOLUTION answered by an identity reads them") {
    AdminNode n;
    auto c = n.client();
    auto put =
        c->request(V::put, "/api/handles/88.118.8/COIL-1",
                   R"({"values":[{"index":1,"type":"URL","data":"https://steel.example.cn/c/1"},
                                        {"index":2001,"type":"price","data":"4120.50","permissions":"1100"}]})",
                   {{"Authorization", n.admin}});
    REQUIRE_MESSAGE(put.result() == http::status::created, put.body());

    // Anonymous: PUBL leaves the private value out; without PUBL it is challenged.
    CHECK(values_of(exchange_tcp(n.node.handle_port(),
                                 resolution_request("88.118.8/COIL-1", hp::opflag::kPublicOnly)))
              .size() == 1);
    HandleConnection conn(n.node.handle_port());
    const std::string challenged = conn.exchange(resolution_request("88.118.8/COIL-1"));
    const Challenge challenge = challenge_of(challenged);
    // steel owns 88.118.8: its identity's answer gets the whole record, as the resolution's reply.
    const std::string reply = conn.exchange(steel_answer(n, challenge));
    CHECK(opcode_of(reply) == hp::opcode::kResolution);
    auto values = values_of(reply);
    REQUIRE(values.size() == 2);
    CHECK(values[2001].second == "4120.50");
    // The challenge was used up: answering it again is refused.
    CHECK(rc_of(conn.exchange(steel_answer(n, challenge))) == hp::rc::kAuthenticationTimeout);
    // A wrong proof reads nothing.
    const Challenge second = challenge_of(conn.exchange(resolution_request("88.118.8/COIL-1")));
    std::string forged = steel_answer(n, second);
    forged[forged.size() - 10] ^= 0x01;
    const std::string refused = conn.exchange(forged);
    CHECK(rc_of(refused) == hp::rc::kAuthenticationFailed);
    CHECK(body_of(refused).find("4120.50") == std::string_view::npos);

    CHECK(n.node.stop() == 0);
}
