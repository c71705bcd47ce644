// Administration over the Handle protocol against the real idnode (docs/handle-protocol.md
// #administration), driven by a client written here from the protocol: the byte sequences of
// HANDLE.NET 9.3.1's Java client and of CAICT ID-SDK 2.0.3 (tests/data/handle-admin.md) are sent
// as captured, and only what depends on this server's challenge - the answer's session id and
// the proof over its nonce and digest - is computed anew, with the capture's own keys (and, for
// DSA, which no capture has, with a key made here and signed as HANDLE.NET's client signs).
#include "handle_admin_support.hpp"

#include "idnode/codec/base64.hpp"
#include "test_keys.hpp"

#include <doctest/doctest.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

using namespace idnode::test;
using namespace idnode::test::handle_wire;
using namespace idnode::test::handle_admin;
using V = http::verb;

TEST_CASE("HANDLE.NET's secret-key admin flow: create, add, modify, remove, delete") {
    AdminNode n;
    const auto& flow = n.lines.at("seckey-admin-nosession");
    // client lines: request, answer, request, answer, ... (CREATE, ADD, MODIFY, REMOVE, DELETE)
    REQUIRE(flow.size() == 10);
    const std::uint32_t opcodes[] = {hp::opcode::kCreateHandle, hp::opcode::kAddValue,
                                     hp::opcode::kModifyValue, hp::opcode::kRemoveValue,
                                     hp::opcode::kDeleteHandle};
    for (std::size_t step = 0; step < 5; ++step) {
        CAPTURE(step);
        const std::string reply =
            n.challenged(flow[2 * step], flow[2 * step + 1], pbkdf2_proof("interop-secret"));
        CHECK(rc_of(reply) == hp::rc::kSuccess);
        CHECK(opcode_of(reply) == opcodes[step]);             // the challenged request's opcode
        CHECK(be32(reply, 4) == 0);                           // no session
        CHECK(be32(reply, 8) == be32(flow[2 * step + 1], 8)); // the answer's request id
        // Read-after-write over HTTPS.
        const auto [status, body] = n.get("88.118/ADMIN-SK");
        switch (step) {
        case 0: {
            REQUIRE(status == http::status::ok);
            CHECK(body_of(reply).size() == 4 + 15); // the handle
            CHECK(body.find("https://steel.example.cn/coil/H2024-001") != std::string::npos);
            CHECK(body.find("HS_ADMIN") != std::string::npos);
            break;
        }
        case 1:
            CHECK(body.find("qa@steel.example.cn") != std::string::npos);
            break;
        case 2:
            CHECK(body.find("H2024-002") != std::string::npos);
            break;
        case 3:
            CHECK(body.find("qa@steel.example.cn") == std::string::npos);
            break;
        case 4:
            CHECK(status == http::status::not_found);
            break;
        }
    }
    CHECK(n.node.stop() == 0);
}

TEST_CASE("HANDLE.NET's public-key flow, and every refusal writes nothing") {
    AdminNode n;
    const auto& flow = n.lines.at("pubkey-admin-nosession");
    REQUIRE(flow.size() == 4);
    std::string reply = n.challenged(flow[0], flow[1], rsa_proof());
    CHECK(rc_of(reply) == hp::rc::kSuccess);
    CHECK(n.get("88.118/ADMIN-PK").first == http::status::ok);

    // A wrong secret: 403, and nothing created.
    const auto& wrong = n.lines.at("wrong-secret");
    reply = n.challenged(wrong[0], wrong[1], pbkdf2_proof("wrong-secret"));
    CHECK(rc_of(reply) == hp::rc::kAuthenticationFailed);
    CHECK(opcode_of(reply) == hp::opcode::kCreateHandle);
    CHECK(n.get("88.118/ADMIN-WRONG").first == http::status::not_found);
    // One log line names the identity, the address and the reason; no secret, no proof.
    CHECK(eventually([&] {
        return n.node.stderr_text().find("301:0.NA/88.118 from 127.0.0.1 refused (RC 403)") !=
               std::string::npos;
    }));
    CHECK(n.node.stderr_text().find("secret\"") == std::string::npos);
    CHECK(n.node.stderr_text().find("wrong-secret") == std::string::npos);
    CHECK(n.node.stderr_text().find("interop-secret") == std::string::npos);

    // An answer replayed: the challenge was answered once; 405 the second time.
    {
        HandleConnection c(n.node.handle_port());
        const Challenge challenge = challenge_of(c.exchange(flow[2])); // DELETE ADMIN-PK
        const std::string answer = redo_answer(flow[3], challenge, rsa_proof());
        CHECK(rc_of(c.exchange(answer)) == hp::rc::kSuccess);
        CHECK(rc_of(c.exchange(answer)) == hp::rc::kAuthenticationTimeout);
    }
    CHECK(n.get("88.118/ADMIN-PK").first == http::status::not_found);

    // A secret-key answer for the public-key identity: 404, and an unknown identity: 403.
    {
        HandleConnection c(n.node.handle_port());
        const Challenge challenge = challenge_of(c.exchange(flow[0]));
        std::string answer = redo_answer(n.lines.at("seckey-admin-nosession")[1], challenge,
                                         pbkdf2_proof("interop-secret"));
        // "HS_SECKEY" "0.NA/88.118" 301 -> index 300
        put_be32(answer, hp::kEnvelopeSize + hp::kHeaderSize + 4 + 9 + 4 + 11, 300);
        CHECK(rc_of(c.exchange(answer)) == hp::rc::kInvalidCredential);
        const Challenge again = challenge_of(c.exchange(flow[0]));
        answer = redo_answer(n.lines.at("seckey-admin-nosession")[1], again,
                             pbkdf2_proof("interop-secret"));
        put_be32(answer, hp::kEnvelopeSize + hp::kHeaderSize + 4 + 9 + 4 + 11, 302);
        CHECK(rc_of(c.exchange(answer)) == hp::rc::kAuthenticationFailed);
    }
    CHECK(n.get("88.118/ADMIN-PK").first == http::status::not_found);

    // Over UDP administration is refused.
    const auto refused = exchange_udp(n.node.handle_port(), flow[0]);
    REQUIRE(refused.size() == 1);
    CHECK(rc_of(refused[0]) == hp::rc::kOperationNotSupported);
    CHECK(n.node.stop() == 0);
}

TEST_CASE("HANDLE.NET's public-key flow with a DSA identity registered from its binary key") {
    AdminNode n;
    // 302:0.NA/88.118, registered over HTTPS as HANDLE.NET's HS_PUBKEY bytes (admpub.bin).
    const auto dsa = make_key("DSA", 2048);
    const auto other = make_key("DSA", 2048);
    {
        auto r = n.client()->request(
            V::post, "/api/v1/accounts/admin/identities",
            boost::json::serialize(boost::json::object{
                {"handle", "0.NA/88.118"},
                {"index", 302},
                {"public_key_hs",
                 idnode::codec::base64_encode(handle_net_public_key(dsa.public_pem))}}),
            {{"Authorization", n.admin}});
        REQUIRE_MESSAGE(r.result() == http::status::created, r.body());
    }
    const auto& flow = n.lines.at("pubkey-admin-nosession"); // CREATE, answer, DELETE, answer
    REQUIRE(flow.size() == 4);
    // HANDLE.NET's way: the request, the 402, the answer on a new connection each.
    auto challenged = [&](const std::string& request, const std::string& captured_answer,
                          const std::string& private_pem) {
        Challenge challenge;
        {
            HandleConnection first(n.node.handle_port());
            challenge = challenge_of(first.exchange(request));
        }
        HandleConnection second(n.node.handle_port());
        return second.exchange(answer_as(captured_answer, challenge, "0.NA/88.118", 302,
                                         dsa_signed_response(private_pem, challenge)));
    };
    std::string reply = challenged(flow[0], flow[1], dsa.private_pem);
    CHECK(rc_of(reply) == hp::rc::kSuccess);
    CHECK(n.get("88.118/ADMIN-PK").first == http::status::ok);
    // Another DSA key's proof for the same identity: 403, nothing deleted.
    reply = challenged(flow[2], flow[3], other.private_pem);
    CHECK(rc_of(reply) == hp::rc::kAuthenticationFailed);
    CHECK(n.get("88.118/ADMIN-PK").first == http::status::ok);
    reply = challenged(flow[2], flow[3], dsa.private_pem);
    CHECK(rc_of(reply) == hp::rc::kSuccess);
    CHECK(n.get("88.118/ADMIN-PK").first == http::status::not_found);
    CHECK(n.node.stop() == 0);
}

TEST_CASE("ID-SDK: site info, LOGIN_ID_SYSTEM, then admin requests on the one connection") {
    AdminNode n;
    const auto& login = n.lines.at("idsdk-channel-login"); // GET_SITE_INFO, LOGIN, answer
    REQUIRE(login.size() == 3);
    HandleConnection c(n.node.handle_port());
    CHECK(rc_of(c.exchange(login[0])) == hp::rc::kSuccess);
    // Before the login an admin request is challenged, not run.
    const std::string& create = n.lines.at("idsdk-createIdentifier")[0];
    CHECK(rc_of(c.exchange(create)) == hp::rc::kAuthenticationNeeded);
    const Challenge challenge = challenge_of(c.exchange(login[1]));
    const std::string logged_in = c.exchange(redo_answer(login[2], challenge, rsa_proof()));
    CHECK(rc_of(logged_in) == hp::rc::kSuccess);
    CHECK(opcode_of(logged_in) == 2001);

    // The SDK's requests, as captured (sessionId 0, no credential), pipelined in one write.
    std::string pipelined;
    for (const char* name : {"idsdk-createIdentifier", "idsdk-addIdentifierValues",
                             "idsdk-modifyIdentifierValues", "idsdk-removeIdentifierValues"}) {
        pipelined += n.lines.at(name)[0];
    }
    c.send(pipelined);
    for (int i = 0; i < 4; ++i) {
        CAPTURE(i);
        CHECK(rc_of(c.receive()) == hp::rc::kSuccess);
    }
    const auto [status, body] = n.get("88.118/IDSDK-001");
    REQUIRE(status == http::status::ok);
    CHECK(body.find("H2024-002") != std::string::npos);
    CHECK(body.find("qa@steel.example.cn") == std::string::npos);
    // ID-SDK adds no HS_ADMIN; the node names the identity that created the handle.
    CHECK(body.find("HS_ADMIN") != std::string::npos);
    CHECK(body.find("0.NA/88.118") != std::string::npos);

    // A value without public read: challenged on an anonymous connection, returned on the
    // logged-in one (the admin account may read it, as over HTTPS).
    auto put = n.client()->request(
        V::put, "/api/handles/88.118/PRIV-1",
        R"({"values":[{"index":1,"type":"URL","data":"https://steel.example.cn/p"},)"
        R"({"index":2001,"type":"price","data":"4120.50","permissions":"1100"}]})",
        {{"Authorization", n.admin}});
    REQUIRE(put.result() == http::status::created);
    std::string resolve_body;
    hp::encode_resolution_request(resolve_body, "88.118/PRIV-1", {}, {});
    hp::Envelope env;
    env.request_id = 77;
    hp::Header header;
    header.opcode = hp::opcode::kResolution;
    std::string resolve;
    hp::encode_message(resolve, env, header, resolve_body);
    {
        HandleConnection anonymous(n.node.handle_port());
        CHECK(rc_of(anonymous.exchange(resolve)) == hp::rc::kAuthenticationNeeded);
    }
    const std::string resolved = c.exchange(resolve);
    REQUIRE(rc_of(resolved) == hp::rc::kSuccess);
    auto record = hp::decode_resolution_response(body_of(resolved));
    REQUIRE(record.ok());
    CHECK(record->values.size() == 2);

    CHECK(rc_of(c.exchange(n.lines.at("idsdk-deleteIdentifier")[0])) == hp::rc::kSuccess);
    CHECK(n.get("88.118/IDSDK-001").first == http::status::not_found);
    // Logging in again on a logged-in connection is the IDIS "repeat login", and the connection
    // stays logged in as before.
    CHECK(rc_of(c.exchange(login[1])) == hp::rc::kIdisRelogin);
    CHECK(rc_of(c.exchange(n.lines.at("idsdk-login-password")[0])) == hp::rc::kIdisRelogin);
    CHECK(rc_of(c.exchange(resolve)) == hp::rc::kSuccess);
    {
        // An IDIS client (it asked to log in) that sends an admin request before its login
        // completes is told to log in first; a wrong proof leaves it there.
        HandleConnection idis(n.node.handle_port());
        const Challenge pending = challenge_of(idis.exchange(login[1]));
        CHECK(rc_of(idis.exchange(create)) == hp::rc::kIdisLoginFirst);
        std::string forged = redo_answer(login[2], pending, rsa_proof());
        forged[forged.size() - 10] ^= 0x01;
        CHECK(rc_of(idis.exchange(forged)) == hp::rc::kAuthenticationFailed);
        CHECK(rc_of(idis.exchange(create)) == hp::rc::kIdisLoginFirst);
        CHECK(n.get("88.118/IDSDK-001").first == http::status::not_found);
        // The password LOGIN is not offered.
        CHECK(rc_of(idis.exchange(n.lines.at("idsdk-login-password")[0])) ==
              hp::rc::kOperationNotSupported);
    }
    CHECK(n.node.stop() == 0);
}

TEST_CASE("an identity acts with its account's rights, through the HTTPS write policy") {
    AdminNode n;
    // steel's identity may write under 88.118.8, not under the node prefix 88.118.
    HandleConnection c(n.node.handle_port());
    login_as_steel(n, c);

    // 88.118/IDSDK-001 is under the node prefix: only an admin writes there.
    CHECK(rc_of(c.exchange(n.lines.at("idsdk-createIdentifier")[0])) ==
          hp::rc::kInsufficientPermissions);
    CHECK(n.get("88.118/IDSDK-001").first == http::status::not_found);
    CHECK(n.node.stop() == 0);
}

TEST_CASE("IDIS password LOGIN: refused by default, accepted when the operator turns it on") {
    AdminNode n;
    const std::string& login = n.lines.at("idsdk-login-password")[0]; // "testuser" / "testpass"
    {
        HandleConnection c(n.node.handle_port());
        CHECK(rc_of(c.exchange(login)) == hp::rc::kOperationNotSupported);
    }
    auto r = n.client()->request(V::post, "/api/v1/accounts",
                                 R"({"username":"testuser","role":"admin","password":"testpass"})",
                                 {{"Authorization", n.admin}});
    REQUIRE_MESSAGE(r.result() == http::status::created, r.body());
    REQUIRE(n.node.stop() == 0);
    n.node.set("handle.allow_password_login", "true");
    n.node.start();

    HandleConnection c(n.node.handle_port());
    const std::string reply = c.exchange(login);
    REQUIRE(rc_of(reply) == hp::rc::kSuccess);
    CHECK(opcode_of(reply) == 2000);
    auto body = hp::decode_resolution_response(body_of(reply));
    REQUIRE(body.ok());
    CHECK(body->spelling == "testuser");
    CHECK(body->values.empty());
    // Logged in: ID-SDK's create runs without a challenge; no identity, so no HS_ADMIN.
    CHECK(rc_of(c.exchange(n.lines.at("idsdk-createIdentifier")[0])) == hp::rc::kSuccess);
    const auto [status, json] = n.get("88.118/IDSDK-001");
    CHECK(status == http::status::ok);
    CHECK(json.find("HS_ADMIN") == std::string::npos);

    // A wrong password: 403 on a fresh connection, which stays logged out ("log in first").
    std::string wrong = login;
    wrong[wrong.size() - 5] ^= 1; // the last byte of "testpass"
    HandleConnection other(n.node.handle_port());
    CHECK(rc_of(other.exchange(wrong)) == hp::rc::kAuthenticationFailed);
    CHECK(rc_of(other.exchange(n.lines.at("idsdk-deleteIdentifier")[0])) ==
          hp::rc::kIdisLoginFirst);
    CHECK(n.get("88.118/IDSDK-001").first == http::status::ok);
    CHECK(n.node.stop() == 0);
}

namespace {

/// A captured session request moved into session `id` and MAC'd with `key` (same counter).
std::string restamp(std::string message, std::uint32_t id, const std::string& key) {
    put_be32(message, 4, id);
    const std::size_t body_end =
        hp::kEnvelopeSize + hp::kHeaderSize + be32(message, hp::kEnvelopeSize + 20);
    const std::uint32_t counter =
        be32(message, body_end + 4 + 4 + 4); // cred: len, ver.., "", index
    std::string data = message.substr(0, 12);
    std::string counter_bytes(4, '\0');
    put_be32(counter_bytes, 0, counter);
    data += counter_bytes;
    data += message.substr(hp::kEnvelopeSize, body_end - hp::kEnvelopeSize);
    unsigned char mac[32];
    unsigned int size = 0;
    REQUIRE(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                 reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac,
                 &size) != nullptr);
    message.replace(message.size() - 32, 32, reinterpret_cast<const char*>(mac), 32);
    return message;
}

} // namespace

TEST_CASE("HANDLE.NET's default client: SESSION_SETUP over UDP, then MAC'd requests") {
    AdminNode n;
    // The capture's SESSION_SETUP, sent as captured; we know the client's DH secret.
    const std::string setup = n.lines.at("seckey-session-setup").at(0);
    const std::string reply = reassemble(exchange_udp(n.node.handle_port(), setup));
    auto decoded = hp::decode_message(reply);
    REQUIRE(decoded.ok());
    REQUIRE(decoded->header.response_code == hp::rc::kSuccess);
    const std::uint32_t session = decoded->envelope.session_id;
    CHECK(session != 0);
    CHECK((decoded->header.op_flags & hp::opflag::kCertified) != 0);
    REQUIRE(decoded->credential.has_value()); // signed, as the client insists
    // Body: request digest (33), mode 4, int4 length + (cipher 3, DH_PUB_KEY), 2 zero bytes.
    const std::string_view body = decoded->body;
    REQUIRE(body.size() > 33 + 2 + 4 + 4);
    CHECK(be32(body, 33 + 2 + 4) == 3);
    std::string_view key = body.substr(33 + 2 + 4 + 4);
    auto field = [&](std::string_view& from) {
        const std::uint32_t len = be32(from, 0);
        std::string v(from.substr(4, len));
        from.remove_prefix(4 + len);
        return v;
    };
    CHECK(field(key) == "DH_PUB_KEY");
    key.remove_prefix(2);
    const std::string y = field(key);
    const std::string p = field(key);
    BIGNUM* yb = BN_bin2bn(reinterpret_cast<const unsigned char*>(y.data()),
                           static_cast<int>(y.size()), nullptr);
    BIGNUM* pb = BN_bin2bn(reinterpret_cast<const unsigned char*>(p.data()),
                           static_cast<int>(p.size()), nullptr);
    BIGNUM* xb = nullptr;
    REQUIRE(BN_hex2bn(&xb, "a5c121a4dd95436b640c0777ab5ee2c3ac61e279") > 0);
    BIGNUM* shared = BN_new();
    BN_CTX* ctx = BN_CTX_new();
    REQUIRE(BN_mod_exp(shared, yb, xb, pb, ctx) == 1);
    std::string session_key(static_cast<std::size_t>(BN_num_bytes(shared)), '\0');
    BN_bn2bin(shared, reinterpret_cast<unsigned char*>(session_key.data()));
    session_key.resize(32);
    BN_free(yb);
    BN_free(pb);
    BN_free(xb);
    BN_free(shared);
    BN_CTX_free(ctx);

    // CREATE, the 402 in the session, the answer; then ADD, MODIFY, REMOVE, DELETE with no
    // challenge. One TCP connection per message, as the client does it.
    const auto& flow = n.lines.at("seckey-admin-session");
    REQUIRE(flow.size() == 6);
    auto send = [&](const std::string& message) {
        return exchange_tcp(n.node.handle_port(), message);
    };
    const std::string challenged = send(restamp(flow[0], session, session_key));
    REQUIRE(rc_of(challenged) == hp::rc::kAuthenticationNeeded);
    CHECK(be32(challenged, 4) == session); // the session's id, not a fresh one
    const Challenge challenge = challenge_of(challenged);
    const std::string created =
        send(redo_answer(flow[1], challenge, pbkdf2_proof("interop-secret")));
    CHECK(rc_of(created) == hp::rc::kSuccess);
    CHECK(opcode_of(created) == hp::opcode::kCreateHandle);
    CHECK(be32(created, 4) == session);
    for (std::size_t i = 2; i < flow.size(); ++i) {
        CAPTURE(i);
        const std::string done = send(restamp(flow[i], session, session_key));
        CHECK(rc_of(done) == hp::rc::kSuccess);
        if (i == 2) {
            CHECK(n.get("88.118/ADMIN-SK").second.find("qa@steel.example.cn") != std::string::npos);
        }
    }
    CHECK(n.get("88.118/ADMIN-SK").first == http::status::not_found);

    // A RESOLUTION in the authenticated session reads what its identity (the admin's) may read,
    // over TCP and UDP; the same request outside the session is challenged.
    auto put =
        n.client()->request(V::put, "/api/handles/88.118/PRIV-1",
                            R"({"values":[{"index":1,"type":"URL","data":"https://example.cn/p"},
                      {"index":2001,"type":"price","data":"17.5","permissions":"1100"}]})",
                            {{"Authorization", n.admin}});
    REQUIRE_MESSAGE(put.result() == http::status::created, put.body());
    auto mac_d = [&](std::uint32_t counter) {
        // The resolution with the captured HS_MAC credential section, at `counter`.
        std::string message = resolution_request("88.118/PRIV-1", 0, session);
        const std::string& captured = flow[2];
        const std::size_t body_end =
            hp::kEnvelopeSize + hp::kHeaderSize + be32(captured, hp::kEnvelopeSize + 20);
        message.resize(message.size() - 4);
        message += captured.substr(body_end);
        put_be32(message, 16, static_cast<std::uint32_t>(message.size() - hp::kEnvelopeSize));
        const std::size_t cred = message.size() - (captured.size() - body_end);
        put_be32(message, cred + 12, counter);
        return restamp(message, session, session_key);
    };
    const std::string tcp_read = send(mac_d(1000));
    CHECK(be32(tcp_read, 4) == session);
    CHECK(values_of(tcp_read)[2001].second == "17.5");
    const std::string udp_read = reassemble(exchange_udp(n.node.handle_port(), mac_d(1001)));
    CHECK(values_of(udp_read)[2001].second == "17.5");
    CHECK(rc_of(send(mac_d(1001))) == hp::rc::kSessionFailed); // the counter was used
    CHECK(rc_of(send(resolution_request("88.118/PRIV-1"))) == hp::rc::kAuthenticationNeeded);

    // A replayed MAC'd request (its counter used), a MAC made with another key, an unknown
    // session: refused with the session RCs the client recovers from, nothing written.
    CHECK(rc_of(send(restamp(flow[0], session, session_key))) == hp::rc::kSessionFailed);
    CHECK(rc_of(send(restamp(flow[0], session, std::string(32, 'k')))) == hp::rc::kSessionFailed);
    CHECK(rc_of(send(restamp(flow[0], session + 1, session_key))) == hp::rc::kSessionTimeout);
    CHECK(n.get("88.118/ADMIN-SK").first == http::status::not_found);
    CHECK(n.node.stop() == 0);
}

TEST_CASE("pipelined creates on a logged-in connection: committed together, answered in order") {
    AdminNode n;
    const auto& login = n.lines.at("idsdk-channel-login");
    HandleConnection c(n.node.handle_port());
    const Challenge challenge = challenge_of(c.exchange(login[1]));
    REQUIRE(rc_of(c.exchange(redo_answer(login[2], challenge, rsa_proof()))) == hp::rc::kSuccess);

    // 60 creates (IDSDK-000 ... IDSDK-059), then a resolution of the last and an ADD to the
    // first: the two must wait for the creates before them, and every reply comes in order.
    const std::string create = n.lines.at("idsdk-createIdentifier")[0]; // 88.118/IDSDK-001
    const std::size_t digits = hp::kEnvelopeSize + hp::kHeaderSize + 4 + 13;
    std::string pipelined;
    for (int i = 0; i < 60; ++i) {
        std::string m = create;
        const std::string number = (i < 10 ? "00" : "0") + std::to_string(i);
        m.replace(digits, 3, number);
        put_be32(m, 8, static_cast<std::uint32_t>(1000 + i));
        pipelined += m;
    }
    std::string resolve_body;
    hp::encode_resolution_request(resolve_body, "88.118/IDSDK-059", {}, {});
    hp::Envelope env;
    env.request_id = 2000;
    hp::Header header;
    header.opcode = hp::opcode::kResolution;
    hp::encode_message(pipelined, env, header, resolve_body);
    std::string add = n.lines.at("idsdk-addIdentifierValues")[0]; // ADD to 88.118/IDSDK-001
    add.replace(digits, 3, "000");
    put_be32(add, 8, 2001);
    pipelined += add;
    c.send(pipelined);
    for (int i = 0; i < 60; ++i) {
        CAPTURE(i);
        const std::string reply = c.receive();
        CHECK(be32(reply, 8) == static_cast<std::uint32_t>(1000 + i));
        CHECK(rc_of(reply) == hp::rc::kSuccess);
    }
    const std::string resolved = c.receive();
    CHECK(be32(resolved, 8) == 2000);
    CHECK(rc_of(resolved) == hp::rc::kSuccess); // read-after-write on the connection
    const std::string added = c.receive();
    CHECK(be32(added, 8) == 2001);
    CHECK(rc_of(added) == hp::rc::kSuccess);
    CHECK(n.get("88.118/IDSDK-000").second.find("qa@steel.example.cn") != std::string::npos);
    CHECK(n.get("88.118/IDSDK-059").first == http::status::ok);
    CHECK(n.node.stop() == 0);
}

TEST_CASE("LIST_HANDLES and LIST_HOMED_NAS as HANDLE.NET's client asks, after the challenge") {
    AdminNode n;
    for (const char* handle :
         {"88.118.8/SN-2024-000123", "88.118.8/LOAD-1", "88.118.8/BIG-001", "88.118.8/LOAD-0"}) {
        auto r =
            n.client()->request(V::put, std::string("/api/handles/") + handle,
                                R"({"values":[{"index":1,"type":"URL","data":"https://x.cn"}]})",
                                {{"Authorization", n.admin}});
        REQUIRE_MESSAGE(r.result() == http::status::created, r.body());
    }
    const auto& flow = n.lines.at("list-handles"); // request, answer
    const std::string listed = n.challenged(flow[0], flow[1], pbkdf2_proof("interop-secret"));
    REQUIRE(rc_of(listed) == hp::rc::kSuccess);
    CHECK(opcode_of(listed) == hp::opcode::kListHandles);
    // The body HANDLE.NET's server sent for the same four records, byte for byte.
    CHECK(hp::decode_resolution_response(body_of(listed)).ok() == false); // a list, not a record
    std::string expected;
    expected += std::string("\0\0\0\x04", 4);
    for (const char* h :
         {"88.118.8/BIG-001", "88.118.8/LOAD-0", "88.118.8/LOAD-1", "88.118.8/SN-2024-000123"}) {
        std::string length(4, '\0');
        put_be32(length, 0, static_cast<std::uint32_t>(std::string_view(h).size()));
        expected += length + h;
    }
    CHECK(std::string(body_of(listed)) == expected);

    const auto& homed = n.lines.at("list-homed-nas");
    const std::string nas = n.challenged(homed[0], homed[1], pbkdf2_proof("interop-secret"));
    REQUIRE(rc_of(nas) == hp::rc::kSuccess);
    const std::string_view nas_body = body_of(nas);
    REQUIRE(be32(nas_body, 0) == 1);
    CHECK(nas_body.substr(8) == "0.NA/88.118");

    // steel's identity may list its own prefix, not the node's homed prefixes.
    HandleConnection c(n.node.handle_port());
    login_as_steel(n, c);
    CHECK(rc_of(c.exchange(flow[0])) == hp::rc::kSuccess);
    CHECK(rc_of(c.exchange(homed[0])) == hp::rc::kInsufficientPermissions);
    CHECK(n.node.stop() == 0);
}

TEST_CASE("id-pointer-sdk: LOGIN_ID_SYSTEM with an SM2 identity, admin requests, the auth field") {
    AdminNode n;
    // An SM2 identity of the admin account, registered as the IDIS SDKs hold it (PEM).
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
        EVP_PKEY_Q_keygen(nullptr, nullptr, "SM2"), &EVP_PKEY_free);
    REQUIRE(key);
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
    REQUIRE(PEM_write_bio_PUBKEY(bio.get(), key.get()) == 1);
    char* pem_data = nullptr;
    const long pem_size = BIO_get_mem_data(bio.get(), &pem_data);
    boost::json::object identity_body{
        {"handle", "0.NA/88.118"}, {"index", 302}, {"public_key", std::string(pem_data, pem_size)}};
    auto post =
        n.client()->request(V::post, "/api/v1/accounts/admin/identities",
                            boost::json::serialize(identity_body), {{"Authorization", n.admin}});
    REQUIRE_MESSAGE(post.result() == http::status::created, post.body());

    // id-pointer-sdk's proof: SM2 over SM3(nonce || digest) with the identity handle as user id,
    // sent as "SM3" + the DER signature.
    auto sm2_proof = [&](const Challenge& challenge, std::string_view user_id) {
        const std::string data = challenge.nonce + challenge.digest;
        unsigned char m[32];
        unsigned int m_size = 0;
        REQUIRE(EVP_Digest(data.data(), data.size(), m, &m_size, EVP_sm3(), nullptr) == 1);
        std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> pctx(
            EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr), &EVP_PKEY_CTX_free);
        std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                    &EVP_MD_CTX_free);
        REQUIRE(EVP_PKEY_CTX_set1_id(pctx.get(), user_id.data(),
                                     static_cast<int>(user_id.size())) == 1);
        EVP_MD_CTX_set_pkey_ctx(ctx.get(), pctx.get());
        REQUIRE(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sm3(), nullptr, key.get()) == 1);
        std::size_t size = 0;
        REQUIRE(EVP_DigestSign(ctx.get(), nullptr, &size, m, m_size) == 1);
        std::string signature(size, '\0');
        REQUIRE(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                               m, m_size) == 1);
        signature.resize(size);
        std::string out(4, '\0');
        put_be32(out, 0, 3);
        out += "SM3";
        std::string length(4, '\0');
        put_be32(length, 0, static_cast<std::uint32_t>(signature.size()));
        return out + length + signature;
    };

    // GET_SITE_INFO, then LOGIN_ID_SYSTEM as 302:0.NA/88.118 (the ID-SDK login's shape, which
    // id-pointer-sdk shares), answered with the SM2 proof.
    const auto& login = n.lines.at("idsdk-channel-login");
    HandleConnection c(n.node.handle_port());
    CHECK(rc_of(c.exchange(login[0])) == hp::rc::kSuccess);
    std::string login_request = login[1];
    put_be32(login_request, login_request.size() - 8, 302); // the index, before the credential
    auto answer_for = [&](std::string_view user_id) {
        const Challenge challenge = challenge_of(c.exchange(login_request));
        return answer_as(login[2], challenge, "0.NA/88.118", 302, sm2_proof(challenge, user_id));
    };
    // A proof made with another user id (SM2's default) does not verify: nothing logged in.
    CHECK(rc_of(c.exchange(answer_for("1234567812345678"))) == hp::rc::kAuthenticationFailed);
    CHECK(rc_of(c.exchange(n.lines.at("idsdk-createIdentifier")[0])) == hp::rc::kIdisLoginFirst);
    const std::string logged_in = c.exchange(answer_for("0.NA/88.118"));
    REQUIRE(rc_of(logged_in) == hp::rc::kSuccess);
    CHECK(opcode_of(logged_in) == 2001);

    // Administration on the logged-in connection, as the SDK sends it.
    CHECK(rc_of(c.exchange(n.lines.at("idsdk-createIdentifier")[0])) == hp::rc::kSuccess);
    CHECK(n.get("88.118/IDSDK-001").first == http::status::ok);

    // Its resolution carries the authentication field (opFlag 0x4, RECU_AUTH): read, answered
    // as any resolution, the field proving nothing by itself.
    std::string body;
    hp::encode_resolution_request(body, "88.118/IDSDK-001", {}, {});
    const std::string token = "eyJhbGciOi.opaque.token";
    std::string field(4, '\0');
    put_be32(field, 0, static_cast<std::uint32_t>(token.size()));
    body += field + token;
    hp::Envelope envelope;
    envelope.request_id = 99;
    hp::Header header;
    header.opcode = hp::opcode::kResolution;
    header.op_flags = 0x4;
    std::string resolution;
    hp::encode_message(resolution, envelope, header, body);
    HandleConnection anonymous(n.node.handle_port());
    const auto values = values_of(anonymous.exchange(resolution));
    CHECK(values.count(1) == 1);
    CHECK(n.node.stop() == 0);
}
