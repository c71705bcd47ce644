// The read side as the reference clients exercise it, replayed from HANDLE.NET 9.3.1's captures
// (tests/data/handle-admin.md): a reply larger than a datagram goes out as every fragment, a
// request with CERT is answered signed with the server's key, and RESOLUTION bodies may carry
// bytes after the type list (id-pointer-sdk's authentication field).
#include "handle_test_support.hpp"
#include "idnode/node/handle_public_key.hpp"
#include "idnode/resolver/handle_keys.hpp"

#include <doctest/doctest.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <deque>

using namespace handle_test;

namespace {

constexpr std::size_t kFragmentPayload = hp::kMaxUdpDatagram - hp::kEnvelopeSize; // 492

const std::map<std::string, std::vector<CapturedLine>>& flows() {
    static const auto loaded = load_flows("handle-admin.md");
    return loaded;
}

/// The whole message carried by a multi-datagram reply, each fragment's payload placed at
/// sequence x 492 as HANDLE.NET's client places it, with the envelope of an unfragmented message.
std::string reassemble(const std::vector<std::string>& datagrams) {
    REQUIRE_FALSE(datagrams.empty());
    const std::uint32_t length = be32(datagrams[0], 16);
    std::string message(length, '\0');
    std::size_t filled = 0;
    for (const auto& d : datagrams) {
        const std::uint32_t sequence = be32(d, 12);
        const std::string_view payload = std::string_view(d).substr(hp::kEnvelopeSize);
        REQUIRE(sequence * kFragmentPayload + payload.size() <= length);
        std::copy(payload.begin(), payload.end(),
                  message.begin() + static_cast<std::ptrdiff_t>(sequence * kFragmentPayload));
        filled += payload.size();
    }
    REQUIRE(filled == length);
    std::string envelope = datagrams[0].substr(0, hp::kEnvelopeSize);
    envelope[2] = static_cast<char>(envelope[2] & ~hp::envflag::kTruncated);
    put_be32(envelope, 12, 0);
    return envelope + message;
}

/// A responder over the record a captured RESOLUTION answer carries (its values, timestamps
/// included), with 88.118.8 homed, as on the captured server.
std::unique_ptr<Fixture> fixture_from(const std::string& response) {
    auto message = hp::decode_message(response);
    REQUIRE(message.ok());
    auto record = hp::decode_resolution_response(message->body);
    REQUIRE(record.ok());
    auto fixture = std::make_unique<Fixture>(record->values, record->spelling);
    fixture->homed = {"88.118.8"};
    return fixture;
}

/// The clock the capture's server had: its answer's expiration minus the response lifetime.
std::uint32_t capture_clock(std::string_view response) {
    return be32(response, hp::kEnvelopeSize + 16) - hp::kResponseLifetimeSeconds;
}

std::string fresh_rsa_pem() {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_RSA_gen(2048), &EVP_PKEY_free);
    REQUIRE(key);
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
    REQUIRE(PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) ==
            1);
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
}

std::shared_ptr<const hp::ServerKey> fresh_server_key() {
    static const auto key = [] {
        auto loaded = hp::ServerKey::from_pem(fresh_rsa_pem());
        REQUIRE(loaded.ok());
        return std::make_shared<const hp::ServerKey>(std::move(*loaded));
    }();
    return key;
}

/// The captured server's public key, as the vectors file gives it (PEM).
std::string capture_server_key_pem() {
    std::ifstream in(std::string(IDNODE_TEST_DATA_DIR) + "/handle-admin.md");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto section = text.find("- Server key 127.0.0.1:3642");
    REQUIRE(section != std::string::npos);
    const auto begin = text.find("-----BEGIN PUBLIC KEY-----", section);
    const std::string end_marker = "-----END PUBLIC KEY-----";
    const auto end = text.find(end_marker, begin);
    REQUIRE(end != std::string::npos);
    return text.substr(begin, end + end_marker.size() - begin) + "\n";
}

std::size_t body_end(std::string_view message) {
    return hp::kEnvelopeSize + hp::kHeaderSize + be32(message, hp::kEnvelopeSize + 20);
}

/// `request` with `extra` appended to its body (lengths fixed up), credential kept.
std::string with_trailing_body_bytes(const std::string& request, std::string_view extra) {
    const std::size_t end = body_end(request);
    std::string out = request.substr(0, end);
    out.append(extra);
    out.append(request.substr(end));
    put_be32(out, 16, be32(out, 16) + static_cast<std::uint32_t>(extra.size()));
    put_be32(out, hp::kEnvelopeSize + 20,
             be32(out, hp::kEnvelopeSize + 20) + static_cast<std::uint32_t>(extra.size()));
    return out;
}

} // namespace

TEST_CASE("the admin capture holds every read-side flow this file replays") {
    const auto& f = flows();
    REQUIRE(f.count("udp-multipacket") == 1);
    CHECK(f.at("udp-multipacket").size() == 5); // the request and four datagrams
    REQUIRE(f.count("resolve-certified") == 1);
    CHECK(f.at("resolve-certified").size() == 2);
    REQUIRE(f.count("get-site-info") == 1);
}

TEST_CASE("a reply over 512 bytes goes out as every fragment, byte for byte as HANDLE.NET's") {
    const auto& flow = flows().at("udp-multipacket");
    const std::string& request = flow[0].bytes;
    std::vector<std::string> captured;
    for (std::size_t i = 1; i < flow.size(); ++i) {
        captured.push_back(flow[i].bytes);
    }
    const std::string whole = reassemble(captured);
    auto fixture = fixture_from(whole);

    const hp::Answer a = fixture->ask(request, capture_clock(whole));
    REQUIRE(a.response_code == hp::rc::kSuccess);
    CHECK(to_hex(a.message) == to_hex(whole));
    const auto datagrams = hp::udp_datagrams(a.message);
    REQUIRE(datagrams.size() == captured.size());
    for (std::size_t i = 0; i < datagrams.size(); ++i) {
        CAPTURE(i);
        CHECK(datagrams[i].size() <= hp::kMaxUdpDatagram);
        CHECK(to_hex(datagrams[i]) == to_hex(captured[i]));
    }
}

TEST_CASE("udp_datagrams: fits, fragments, and nothing past max_reply_bytes") {
    const auto& flow = flows().at("udp-multipacket");
    std::vector<std::string> captured;
    for (std::size_t i = 1; i < flow.size(); ++i) {
        captured.push_back(flow[i].bytes);
    }
    const std::string whole = reassemble(captured); // 20 + 1676 bytes: 4 fragments, 1756 sent

    hp::UdpReplyPolicy policy;
    CHECK(hp::udp_datagrams(whole, policy).size() == 4);
    policy.max_reply_bytes = 1756;
    CHECK(hp::udp_datagrams(whole, policy).size() == 4);
    policy.max_reply_bytes = 1755;
    CHECK(hp::udp_datagrams(whole, policy).empty());

    const std::string small = whole.substr(0, 300);
    policy.max_reply_bytes = 512;
    const auto alone = hp::udp_datagrams(small, policy);
    REQUIRE(alone.size() == 1);
    CHECK(alone[0] == small); // unchanged: no TC flag, no sequence number

    const std::string message = hp::udp_too_large_message(1796, 1024);
    CHECK(message.find("1796") != std::string::npos);
    CHECK(message.find("TCP") != std::string::npos);
}

TEST_CASE("HANDLE.NET's HS_PUBKEY bytes of its server key decode to the key that signed its "
          "answer") {
    // The key as HANDLE.NET's server wrote it into its site info (get-site-info), not as we would.
    const std::string& site_reply = flows().at("get-site-info")[1].bytes;
    auto site = hp::decode_site_info(
        std::string_view(site_reply)
            .substr(hp::kEnvelopeSize + hp::kHeaderSize, be32(site_reply, hp::kEnvelopeSize + 20)));
    REQUIRE(site.ok());
    REQUIRE(site->servers.size() == 1);
    const std::string& captured = site->servers[0].public_key;
    CHECK(captured.substr(0, 15) == std::string("\0\0\0\x0b", 4) + "RSA_PUB_KEY");
    CHECK(captured.substr(captured.size() - 4) == std::string(4, '\0')); // the unused int4 0

    auto pem = idnode::node::pem_from_hs_public_key(captured);
    REQUIRE_MESSAGE(pem.ok(), pem.error().message);
    CHECK(*pem == capture_server_key_pem()); // the PEM the capture's intro gives for it
    // And back: our encoding of that PEM is HANDLE.NET's, byte for byte.
    CHECK(idnode::node::hs_public_key_from_pem(*pem) == captured);

    // The decoded key verifies the signature HANDLE.NET made on resolve-certified (checked here
    // with OpenSSL on the PEM, independently of verify_signature).
    const std::string& response = flows().at("resolve-certified")[1].bytes;
    const std::string signature = response.substr(response.size() - 256);
    const std::string data = hp::signed_bytes(response);
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())), &BIO_free);
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
        PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
    REQUIRE(key);
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    REQUIRE(EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) == 1);
    CHECK(EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                           signature.size(), reinterpret_cast<const unsigned char*>(data.data()),
                           data.size()) == 1);
    CHECK(hp::verify_signature(captured, data, signature));
    // The same bytes cut short or with a byte too many verify nothing.
    CHECK_FALSE(hp::verify_signature(captured.substr(0, captured.size() - 5), data, signature));
    CHECK_FALSE(hp::verify_signature(captured + "x", data, signature));
}

TEST_CASE("signed_bytes() is what HANDLE.NET signed: the captured signature verifies") {
    const std::string& response = flows().at("resolve-certified")[1].bytes;
    auto server_key = hp::encode_public_key_pem(capture_server_key_pem());
    REQUIRE(server_key.ok());
    const std::string signature = response.substr(response.size() - 256);
    CHECK(hp::verify_signature(*server_key, hp::signed_bytes(response), signature));

    // Any byte of the header or body changes the answer; the credential is not covered.
    std::string tampered = response;
    tampered[hp::kEnvelopeSize + hp::kHeaderSize + 10] ^= 1;
    CHECK_FALSE(hp::verify_signature(*server_key, hp::signed_bytes(tampered), signature));
    std::string other_request = response;
    other_request[11] ^= 1; // request id
    CHECK_FALSE(hp::verify_signature(*server_key, hp::signed_bytes(other_request), signature));
    std::string fragment = response;
    fragment[2] = static_cast<char>(fragment[2] | hp::envflag::kTruncated); // not signed
    CHECK(hp::verify_signature(*server_key, hp::signed_bytes(fragment), signature));

    // Layouts by version: from 2.8 a 16-byte prefix, 2.6-2.7 14, before 2.6 none.
    const std::size_t covered = body_end(response) - hp::kEnvelopeSize;
    CHECK(hp::signed_bytes(response).size() == 16 + covered);
    std::string v27 = response;
    v27[1] = 7;
    CHECK(hp::signed_bytes(v27).size() == 14 + covered);
    std::string v25 = response;
    v25[1] = 5;
    CHECK(hp::signed_bytes(v25).size() == covered);
    CHECK(hp::signed_bytes(response.substr(0, 30)).empty());
}

TEST_CASE("a request with CERT is answered signed with the server's key, as HANDLE.NET signs") {
    const auto& flow = flows().at("resolve-certified");
    const std::string& request = flow[0].bytes;
    const std::string& captured = flow[1].bytes;
    auto fixture = fixture_from(captured);
    fixture->config.server_key = fresh_server_key();

    const hp::Answer a = fixture->ask(request, capture_clock(captured));
    REQUIRE(a.response_code == hp::rc::kSuccess);
    REQUIRE(a.message.size() == captured.size()); // RSA-2048: the same 300-byte credential
    // Everything but the signature itself is the captured answer (CT echoed: 0xd9000000).
    const std::size_t signature_at = captured.size() - 256;
    CHECK(to_hex(a.message.substr(0, signature_at)) == to_hex(captured.substr(0, signature_at)));
    CHECK(be32(a.message, hp::kEnvelopeSize + 8) == 0xd900'0000u);
    CHECK(hp::verify_signature(fixture->config.server_key->public_key(),
                               hp::signed_bytes(a.message), a.message.substr(signature_at)));

    // Errors are signed too: the client checks every answer to a CERT request.
    const std::string other = request; // same bytes, a handle that is not there
    auto empty = std::make_unique<Fixture>(steel_values(), "88.118.8/OTHER");
    empty->homed = {"88.118.8"};
    empty->config.server_key = fresh_server_key();
    const hp::Answer missing = empty->ask(other, capture_clock(captured));
    CHECK(missing.response_code == hp::rc::kHandleNotFound);
    auto decoded = hp::decode_message(missing.message);
    REQUIRE(decoded.ok());
    REQUIRE(decoded->credential.has_value());
    CHECK(hp::verify_signature(empty->config.server_key->public_key(),
                               hp::signed_bytes(missing.message),
                               missing.message.substr(missing.message.size() - 256)));

    // Without a key there is nothing to sign with: no CT, no credential.
    fixture->config.server_key.reset();
    const hp::Answer plain = fixture->ask(request, capture_clock(captured));
    CHECK(be32(plain.message, hp::kEnvelopeSize + 8) == 0x9900'0000u);
    CHECK(be32(plain.message, plain.message.size() - 4) == 0);
    CHECK(plain.message.size() == body_end(plain.message) + 4);

    // Without CERT a keyed server does not sign.
    fixture->config.server_key = fresh_server_key();
    std::string uncertified = request;
    put_be32(uncertified, hp::kEnvelopeSize + 8, 0x1900'0000u);
    const hp::Answer unsigned_answer = fixture->ask(uncertified, capture_clock(captured));
    CHECK(unsigned_answer.message.size() == body_end(unsigned_answer.message) + 4);
}

TEST_CASE("ServerKey refuses what cannot sign for HANDLE.NET clients") {
    CHECK_FALSE(hp::ServerKey::from_pem("not a key").ok());
    CHECK_FALSE(hp::ServerKey::from_pem(capture_server_key_pem()).ok()); // public, not private
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> ec(EVP_EC_gen("P-256"), &EVP_PKEY_free);
    REQUIRE(ec);
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
    REQUIRE(PEM_write_bio_PrivateKey(bio.get(), ec.get(), nullptr, nullptr, 0, nullptr, nullptr) ==
            1);
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    const auto refused = hp::ServerKey::from_pem(std::string(data, static_cast<std::size_t>(size)));
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().message.find("RSA") != std::string::npos);

    const auto key = fresh_server_key();
    CHECK(key->public_key_pem().find("BEGIN PUBLIC KEY") != std::string::npos);
    CHECK(hp::encode_public_key_pem(key->public_key_pem()).value() == key->public_key());
}

TEST_CASE("bytes after a RESOLUTION type list are accepted; an auth field is read") {
    const auto& flow = flows().at("resolve-certified");
    std::string request = flow[0].bytes;
    put_be32(request, hp::kEnvelopeSize + 8, 0x1900'0000u); // no CERT: compare plain answers
    auto fixture = fixture_from(flow[1].bytes);
    const std::uint32_t now = capture_clock(flow[1].bytes);
    const hp::Answer reference = fixture->ask(request, now);
    REQUIRE(reference.response_code == hp::rc::kSuccess);

    const std::string none("\0\0\0\0", 4); // id-pointer-sdk: no credential
    const std::string token = std::string("\0\0\0\x05", 4) + "abcde"; // one length-prefixed field
    const std::string odd = "\x01\x02\x03";                           // not a field: still accepted
    for (const std::string* extra : {&none, &token, &odd}) {
        CAPTURE(to_hex(*extra));
        const std::string tolerant = with_trailing_body_bytes(request, *extra);
        const hp::Answer a = fixture->ask(tolerant, now);
        CHECK(a.response_code == hp::rc::kSuccess);
        CHECK_FALSE(a.malformed.has_value());
        CHECK(to_hex(a.message) == to_hex(reference.message)); // the same answer, byte for byte
    }

    // The decoded request views its body: keep every body alive (a deque does not move them).
    std::deque<std::string> bodies;
    auto decode_body = [&](std::string_view extra) {
        std::string& body = bodies.emplace_back();
        hp::encode_resolution_request(body, "88.118.8/X", {}, {});
        body.append(extra);
        return hp::decode_resolution_request(body);
    };
    auto plain = decode_body("");
    REQUIRE(plain.ok());
    CHECK(plain->trailing.empty());
    CHECK_FALSE(plain->auth_field.has_value());
    auto empty_field = decode_body(none);
    REQUIRE(empty_field.ok());
    REQUIRE(empty_field->auth_field.has_value());
    CHECK(empty_field->auth_field->empty());
    auto field = decode_body(token);
    REQUIRE(field.ok());
    CHECK(field->auth_field.value() == "abcde");
    auto garbage = decode_body(odd);
    REQUIRE(garbage.ok());
    CHECK(garbage->trailing == odd);
    CHECK_FALSE(garbage->auth_field.has_value());
    // Before the type list nothing changed: a short type list is still malformed.
    std::string cut;
    hp::encode_resolution_request(cut, "88.118.8/X", {}, {});
    cut.resize(cut.size() - 2);
    CHECK_FALSE(hp::decode_resolution_request(cut).ok());
}
