// Shared by the Handle-protocol administration tests (handle_admin_test.cpp,
// handle_resolution_auth_test.cpp): a node with the captures' identities, the captured client
// lines, and the proofs redone over this server's challenges.
#pragma once

#include "handle_wire_client.hpp"
#include "harness.hpp"
#include "json_helpers.hpp"

#include "idnode/codec/base64.hpp"
#include "idnode/resolver/handle_auth.hpp"
#include "idnode/resolver/handle_protocol.hpp"
#include "test_keys.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <fstream>
#include <map>
#include <sstream>

#ifndef IDNODE_TEST_DATA_DIR
#error "IDNODE_TEST_DATA_DIR must name tests/data"
#endif

namespace idnode::test::handle_admin {

using namespace idnode::test;
using namespace idnode::test::handle_wire;
using V = http::verb;

inline fs::path idctl_binary() {
    return IDNODE_IDCTL_BINARY;
}

inline std::string read_text(const fs::path& path) {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

/// Every "client"/"request" line of each section of the admin capture, in order.
inline std::map<std::string, std::vector<std::string>> client_lines() {
    std::map<std::string, std::vector<std::string>> out;
    std::istringstream in(read_text(fs::path(IDNODE_TEST_DATA_DIR) / "handle-admin.md"));
    std::string line, name;
    while (std::getline(in, line)) {
        if (line.rfind("## ", 0) == 0) {
            name = line.substr(3, line.find(' ', 3) - 3);
            continue;
        }
        std::istringstream words(line);
        std::string key, hex;
        if (!name.empty() && (words >> key >> hex) && (key == "client" || key == "request"))
            out[name].push_back(unhex(hex));
    }
    return out;
}

/// The PEM block of the capture's intro that starts with `begin`.
inline std::string capture_pem(std::string_view begin, std::string_view end) {
    const std::string text = read_text(fs::path(IDNODE_TEST_DATA_DIR) / "handle-admin.md");
    const auto from = text.find(begin);
    const auto to = text.find(end, from);
    REQUIRE(to != std::string::npos);
    return text.substr(from, to + end.size() - from) + "\n";
}

/// What a 402 asks the client to sign.
struct Challenge {
    std::uint32_t session_id = 0;
    std::string nonce;
    std::string digest;
};
inline Challenge challenge_of(std::string_view reply) {
    REQUIRE(rc_of(reply) == hp::rc::kAuthenticationNeeded);
    const std::string_view body = body_of(reply);
    REQUIRE(body.size() == 1 + 32 + 4 + 16);
    return {be32(reply, 4), std::string(body.substr(37, 16)), std::string(body.substr(1, 32))};
}

/// The captured RESPONSE_TO_CHALLENGE `answer`, re-addressed to `challenge` and with its proof
/// redone over the challenge's nonce and digest (`proof` makes the new signed response; it must
/// have the captured one's length, so the rest of the message stays byte for byte).
template <class Proof>
inline std::string redo_answer(std::string answer, const Challenge& challenge, Proof&& proof) {
    put_be32(answer, 4, challenge.session_id);
    auto decoded = hp::decode_challenge_answer(body_of(answer));
    REQUIRE(decoded.ok());
    const std::string signed_response = proof(challenge, std::string(decoded->signed_response));
    REQUIRE(signed_response.size() == decoded->signed_response.size());
    const std::size_t at = hp::kEnvelopeSize + hp::kHeaderSize +
                           be32(answer, hp::kEnvelopeSize + 20) - signed_response.size();
    answer.replace(at, signed_response.size(), signed_response);
    return answer;
}

/// HANDLE.NET's PBKDF2 proof with the captured salt and iterations.
inline auto pbkdf2_proof(std::string secret) {
    return [secret](const Challenge& c, const std::string& captured) {
        const std::string salt = captured.substr(5, 16);
        return hp::secret_key_proof_pbkdf2(secret, salt, 10'000, c.nonce, c.digest);
    };
}

/// SHA256withRSA with the capture's private key, laid out as the clients send it.
inline auto rsa_proof() {
    return [](const Challenge& c, const std::string& captured) {
        const std::string pem =
            capture_pem("-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----");
        std::unique_ptr<BIO, decltype(&BIO_free)> bio(
            BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
        std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
            PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
        REQUIRE(key);
        std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                    &EVP_MD_CTX_free);
        const std::string data = c.nonce + c.digest;
        std::size_t size = 256;
        std::string signature(size, '\0');
        REQUIRE(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) == 1);
        REQUIRE(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                               reinterpret_cast<const unsigned char*>(data.data()),
                               data.size()) == 1);
        // "SHA-256" and the signature, each length-prefixed, as captured.
        return captured.substr(0, captured.size() - 256) + signature;
    };
}

/// The captured RESPONSE_TO_CHALLENGE `answer` addressed to `challenge` with a new body: a
/// public-key answer for identity `index`:`handle` carrying `signed_response` (of any length: the
/// message and body lengths are fixed up; the credential stays empty).
inline std::string answer_as(const std::string& answer, const Challenge& challenge,
                             std::string_view handle, std::int32_t index,
                             std::string_view signed_response) {
    std::string body;
    hp::encode_challenge_answer(body, {hp::kPublicKeyAuth, handle, index, signed_response});
    std::string out =
        answer.substr(0, hp::kEnvelopeSize + hp::kHeaderSize) + body + std::string(4, '\0');
    put_be32(out, 4, challenge.session_id);
    put_be32(out, 16, static_cast<std::uint32_t>(out.size() - 20));
    put_be32(out, hp::kEnvelopeSize + 20, static_cast<std::uint32_t>(body.size()));
    return out;
}

/// HANDLE.NET's DSA answer (PublicKeyAuthenticationInfo with a DSA key, protocol 2.11):
/// "SHA-256", then the JCA's SHA256withDSA signature over nonce || digest, DER-encoded.
inline std::string dsa_signed_response(const std::string& private_pem, const Challenge& c) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(private_pem.data(), static_cast<int>(private_pem.size())), &BIO_free);
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
        PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
    REQUIRE(key);
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    const std::string data = c.nonce + c.digest;
    REQUIRE(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) == 1);
    std::size_t size = 0;
    REQUIRE(EVP_DigestSign(ctx.get(), nullptr, &size,
                           reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1);
    std::string signature(size, '\0');
    REQUIRE(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                           reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1);
    signature.resize(size);
    std::string out = std::string("\0\0\0\x07", 4) + "SHA-256" + std::string(4, '\0');
    put_be32(out, out.size() - 4, static_cast<std::uint32_t>(signature.size()));
    return out + signature;
}

/// A node with the capture's identities: 301:0.NA/88.118 (secret "interop-secret") and
/// 300:0.NA/88.118 (the capture's RSA key), both of the admin account; an enterprise "steel"
/// owning 88.118.8 with identity 300:88.118.8/ADMIN (the same RSA key).
struct AdminNode {
    NodeProcess node{"handle-admin"};
    std::string admin;
    std::map<std::string, std::vector<std::string>> lines = client_lines();

    AdminNode() {
        const auto init = run_command({idctl_binary().string(), "init", "--data-dir",
                                       (node.dir() / "db").string(), "--node-prefix", "88.118"});
        REQUIRE_MESSAGE(init.exit_code == 0, init.err);
        admin = "Bearer " + std::string(parse_json(init.out).at("admin_key").as_string());
        // The key idctl init made: SESSION_SETUP answers are signed (the client checks them).
        node.set("handle.private_key",
                 "\"" + (node.dir() / "db" / "handle-key.pem").string() + "\"");
        node.start();
        auto c = client();
        auto post = [&](const std::string& target, const boost::json::object& body) {
            auto r = c->request(V::post, target, boost::json::serialize(body),
                                {{"Authorization", admin}});
            REQUIRE_MESSAGE(r.result() == http::status::created, r.body());
        };
        const std::string public_pem =
            capture_pem("-----BEGIN PUBLIC KEY-----", "-----END PUBLIC KEY-----");
        post("/api/v1/accounts/admin/identities",
             {{"handle", "0.NA/88.118"}, {"index", 301}, {"secret_key", "interop-secret"}});
        post("/api/v1/accounts/admin/identities",
             {{"handle", "0.NA/88.118"}, {"index", 300}, {"public_key", public_pem}});
        post("/api/v1/prefixes", {{"prefix", "88.118.8"},
                                  {"enterprise",
                                   {{"name", "宝钢"},
                                    {"credit_code", "91310000631696382C"},
                                    {"industry", "C3120"},
                                    {"contact", "ops@example.cn"}}}});
        post("/api/v1/accounts", {{"username", "steel"},
                                  {"role", "enterprise"},
                                  {"prefixes", boost::json::array{"88.118.8"}},
                                  {"password", "steel-secret-1"}});
        post("/api/v1/accounts/steel/identities",
             {{"handle", "88.118.8/ADMIN"}, {"index", 300}, {"public_key", public_pem}});
    }

    std::unique_ptr<HttpsClient> client() {
        auto c = std::make_unique<HttpsClient>(node.https_port(), trust(node.pki().ca_cert));
        c->connect();
        return c;
    }

    /// GET /api/handles/{h} as the admin: its status and JSON body.
    std::pair<http::status, std::string> get(const std::string& handle) {
        auto r =
            client()->request(V::get, "/api/handles/" + handle, {}, {{"Authorization", admin}});
        return {r.result(), r.body()};
    }

    /// HANDLE.NET's way: each message on a new connection; a request, the 402, the answer (with
    /// `proof`), the reply.
    template <class Proof>
    std::string challenged(const std::string& request, const std::string& captured_answer,
                           Proof&& proof) {
        std::string challenge_reply;
        {
            HandleConnection first(node.handle_port());
            challenge_reply = first.exchange(request);
        }
        CHECK(opcode_of(challenge_reply) == opcode_of(request));
        const Challenge challenge = challenge_of(challenge_reply);
        HandleConnection second(node.handle_port());
        return second.exchange(redo_answer(captured_answer, challenge, proof));
    }
};

/// steel's RESPONSE_TO_CHALLENGE to `challenge` as identity 300:88.118.8/ADMIN: ID-SDK's captured
/// login answer with the identity swapped in and the proof redone.
inline std::string steel_answer(AdminNode& n, const Challenge& challenge) {
    const std::string captured =
        redo_answer(n.lines.at("idsdk-channel-login")[2], challenge, rsa_proof());
    auto decoded = hp::decode_challenge_answer(body_of(captured));
    REQUIRE(decoded.ok());
    return answer_as(captured, challenge, "88.118.8/ADMIN", 300,
                     std::string(decoded->signed_response));
}

/// A RESOLUTION request for `handle` (every value) with `op_flags`, in session `session_id`.
inline std::string resolution_request(std::string_view handle, std::uint32_t op_flags = 0,
                                      std::uint32_t session_id = 0, std::uint32_t request_id = 7) {
    hp::Envelope envelope;
    envelope.request_id = request_id;
    envelope.session_id = session_id;
    hp::Header header;
    header.opcode = hp::opcode::kResolution;
    header.op_flags = op_flags;
    std::string body;
    hp::encode_resolution_request(body, handle, {}, {});
    std::string out;
    hp::encode_message(out, envelope, header, body);
    return out;
}

/// The values of an RC 1 answer to a RESOLUTION, by index: type and data.
inline std::map<std::int32_t, std::pair<std::string, std::string>>
values_of(std::string_view reply) {
    REQUIRE(rc_of(reply) == hp::rc::kSuccess);
    auto record = hp::decode_resolution_response(body_of(reply));
    REQUIRE(record.ok());
    std::map<std::int32_t, std::pair<std::string, std::string>> out;
    for (const auto& v : record->values) {
        out[v.index] = {v.type, v.data};
    }
    return out;
}

/// ID-SDK's LOGIN_ID_SYSTEM on `c` as steel's identity 300:88.118.8/ADMIN (the captured login and
/// answer with the identity swapped in and the proof redone).
inline void login_as_steel(AdminNode& n, HandleConnection& c) {
    const auto& login = n.lines.at("idsdk-channel-login");
    const std::string identity = "88.118.8/ADMIN";
    std::string body = std::string("\0\0\0", 3) + static_cast<char>(identity.size()) + identity +
                       std::string("\0\0\x01\x2c", 4);
    std::string login_request =
        login[1].substr(0, hp::kEnvelopeSize + hp::kHeaderSize) + body + std::string(4, '\0');
    put_be32(login_request, 16, static_cast<std::uint32_t>(login_request.size() - 20));
    put_be32(login_request, hp::kEnvelopeSize + 20, static_cast<std::uint32_t>(body.size()));
    const Challenge challenge = challenge_of(c.exchange(login_request));
    REQUIRE(rc_of(c.exchange(steel_answer(n, challenge))) == hp::rc::kSuccess);
}

} // namespace idnode::test::handle_admin
