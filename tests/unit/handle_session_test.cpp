// Sessions as HANDLE.NET's client sets them up (resolver/src/handle_session.hpp), checked against
// the seckey-session-setup and seckey-admin-session captures of tests/data/handle-admin.md: the
// SESSION_SETUP body, the Diffie-Hellman exchange (the capture gives the client's secret, so the
// client's side of our exchange can be computed), and the HS_MAC of every captured request.
#include "handle_session.hpp"
#include "handle_test_support.hpp"

#include <doctest/doctest.h>

#include <openssl/bn.h>

using namespace handle_test;
namespace hd = idnode::resolver::handle::detail;

namespace {

constexpr std::string_view kClientSecretX = "a5c121a4dd95436b640c0777ab5ee2c3ac61e279";
constexpr std::string_view kCapturedSessionKey =
    "5f6ee3eda20c2a7a5d741920af9e2fbd5a6b23dec2e8e24a7a55e008b2f9c1f2";

const std::map<std::string, std::vector<CapturedLine>>& flows() {
    static const auto loaded = load_flows("handle-admin.md");
    return loaded;
}

std::string_view body_of(std::string_view message) {
    return message.substr(hp::kEnvelopeSize + hp::kHeaderSize,
                          be32(message, hp::kEnvelopeSize + 20));
}

/// y, p, g of a DH_PUB_KEY.
struct DhKey {
    std::string y, p, g;
};
DhKey parse_dh(std::string_view key) {
    DhKey out;
    std::size_t at = 0;
    auto field = [&] {
        const std::uint32_t n = be32(key, at);
        std::string v(key.substr(at + 4, n));
        at += 4 + n;
        return v;
    };
    REQUIRE(field() == "DH_PUB_KEY");
    at += 2;
    out.y = field();
    out.p = field();
    out.g = field();
    return out;
}

std::string mod_exp_bytes(std::string_view base, std::string_view exponent_hex,
                          std::string_view modulus) {
    auto bn = [](std::string_view b) {
        return BN_bin2bn(reinterpret_cast<const unsigned char*>(b.data()),
                         static_cast<int>(b.size()), nullptr);
    };
    BIGNUM* y = bn(base);
    BIGNUM* p = bn(modulus);
    BIGNUM* x = nullptr;
    REQUIRE(BN_hex2bn(&x, std::string(exponent_hex).c_str()) > 0);
    BIGNUM* r = BN_new();
    BN_CTX* ctx = BN_CTX_new();
    REQUIRE(BN_mod_exp(r, y, x, p, ctx) == 1);
    std::string out(static_cast<std::size_t>(BN_num_bytes(r)), '\0');
    BN_bn2bin(r, reinterpret_cast<unsigned char*>(out.data()));
    BN_free(y);
    BN_free(p);
    BN_free(x);
    BN_free(r);
    BN_CTX_free(ctx);
    return out;
}

} // namespace

TEST_CASE("HANDLE.NET's SESSION_SETUP body decodes, stray bytes and all") {
    const std::string& request = flows().at("seckey-session-setup").at(0).bytes;
    auto setup = hd::decode_session_setup(body_of(request));
    REQUIRE(setup.ok());
    CHECK(setup->mode == hd::kKeyExchangeDiffieHellman);
    CHECK(setup->timeout_s == 86400);
    CHECK(setup->identity_handle == "0.NA/88.118");
    CHECK(setup->identity_index == 301);
    const DhKey key = parse_dh(setup->exchange_key);
    CHECK(key.g == std::string("\x02", 1));
    CHECK(key.p.size() == 129); // 1024 bits and a sign byte

    // Without the two stray bytes it decodes too; other trailing bytes do not.
    const std::string_view body = body_of(request);
    CHECK(hd::decode_session_setup(body.substr(0, body.size() - 2)).ok());
    CHECK_FALSE(hd::decode_session_setup(std::string(body) + "x").ok());
    CHECK_FALSE(
        hd::decode_session_setup(std::string(body.substr(0, body.size() - 2)) + "\x01\x00").ok());
    CHECK_FALSE(hd::decode_session_setup(body.substr(0, 10)).ok());
}

TEST_CASE("the exchange gives the key the client computes from our public value") {
    const std::string& request = flows().at("seckey-session-setup").at(0).bytes;
    auto setup = hd::decode_session_setup(body_of(request));
    REQUIRE(setup.ok());
    CountingRandom counting;
    const hp::RandomFill random = [&](std::span<std::uint8_t> out) { counting(out); };
    auto exchange = hd::diffie_hellman(setup->exchange_key, random);
    REQUIRE(exchange.has_value());
    CHECK(exchange->session_key.size() == 32);
    const DhKey server = parse_dh(exchange->server_key);
    const DhKey client = parse_dh(setup->exchange_key);
    CHECK(server.p == client.p);
    CHECK(server.g == client.g);
    // The client's side: y_server ^ x_client mod p, first 32 bytes.
    CHECK(to_hex(mod_exp_bytes(server.y, kClientSecretX, client.p).substr(0, 32)) ==
          to_hex(exchange->session_key));

    // Groups and values we do not accept.
    std::string odd = std::string(setup->exchange_key);
    odd[odd.size() - 1] = 5; // g = 5
    CHECK_FALSE(hd::diffie_hellman(odd, random).has_value());
    std::string small_p = std::string(setup->exchange_key);
    small_p[4 + 10 + 2 + 4 + 129 + 4 + 60] ^= 1; // a bit of p
    CHECK_FALSE(hd::diffie_hellman(small_p, random).has_value());
    CHECK_FALSE(hd::diffie_hellman("junk", random).has_value());
}

TEST_CASE("every HS_MAC of the captured session verifies with its key, and only then") {
    const std::string key = from_hex(kCapturedSessionKey);
    int verified = 0;
    for (const auto& line : flows().at("seckey-admin-session")) {
        auto message = hp::decode_message(line.bytes);
        REQUIRE(message.ok());
        if (!message->credential || message->credential->type != "HS_MAC") {
            continue;
        }
        CAPTURE(verified);
        CHECK(hd::verify_session_mac(line.bytes, *message->credential, key));
        std::string other_key = key;
        other_key[0] ^= 1;
        CHECK_FALSE(hd::verify_session_mac(line.bytes, *message->credential, other_key));
        std::string tampered = line.bytes;
        tampered[hp::kEnvelopeSize + hp::kHeaderSize + 6] ^= 1;
        auto tampered_message = hp::decode_message(tampered);
        REQUIRE(tampered_message.ok());
        CHECK_FALSE(hd::verify_session_mac(tampered, *tampered_message->credential, key));
        ++verified;
    }
    CHECK(verified == 5); // CREATE, ADD, MODIFY, REMOVE, DELETE
}

TEST_CASE("the session table: bounded, counters only go up, expiry") {
    hd::SessionTable table(2, std::chrono::seconds(3600));
    const auto now = std::chrono::steady_clock::now();
    CHECK(table.add(1, "k1", std::chrono::seconds(60), now));
    CHECK(table.add(2, "k2", std::chrono::seconds(60), now));
    CHECK(table.add(3, "k3", std::chrono::seconds(60), now + std::chrono::seconds(61)));
    CHECK_FALSE(table.find(1, now + std::chrono::seconds(61)).has_value());
    CHECK(table.find(3, now).has_value());
    CHECK(table.advance(3, 1));
    CHECK(table.advance(3, 2));
    CHECK_FALSE(table.advance(3, 2)); // a replayed counter
    CHECK_FALSE(table.advance(99, 1));
}

TEST_CASE("a full table makes room: unanswered challenges and unauthenticated sessions give way") {
    const auto now = std::chrono::steady_clock::now();
    hd::PendingChallenges pending(3, std::chrono::seconds(120));
    for (std::uint32_t id = 1; id <= 5; ++id) {
        pending.add(id, {"request", "nonce", "digest", {}}, now);
    }
    CHECK_FALSE(pending.take(1, now).has_value()); // the oldest two were pushed out
    CHECK_FALSE(pending.take(2, now).has_value());
    CHECK(pending.take(5, now).has_value());
    CHECK_FALSE(pending.take(5, now).has_value());                             // answered once
    CHECK_FALSE(pending.take(3, now + std::chrono::seconds(121)).has_value()); // expired

    hd::SessionTable sessions(2, std::chrono::seconds(3600));
    REQUIRE(sessions.add(1, "k1", std::chrono::seconds(60), now));
    sessions.authenticate(1, idnode::node::Principal{}, {});
    REQUIRE(sessions.add(2, "k2", std::chrono::seconds(60), now));
    CHECK(sessions.add(3, "k3", std::chrono::seconds(60), now)); // 2 gives way, 1 stays
    CHECK(sessions.find(1, now).has_value());
    CHECK_FALSE(sessions.find(2, now).has_value());
    sessions.authenticate(3, idnode::node::Principal{}, {});
    CHECK_FALSE(sessions.add(4, "k4", std::chrono::seconds(60), now)); // all authenticated
}

TEST_CASE("unanswered challenges are bounded in bytes too: big requests push the oldest out") {
    const auto now = std::chrono::steady_clock::now();
    hd::PendingChallenges pending(100, std::chrono::seconds(120), 1000);
    for (std::uint32_t id = 1; id <= 10; ++id) {
        pending.add(id, {std::string(300, 'r'), "nonce", "digest", {}}, now);
        CHECK(pending.bytes() <= 1000);
    }
    CHECK(pending.bytes() == 900); // the last three
    CHECK_FALSE(pending.take(7, now).has_value());
    CHECK(pending.take(8, now).has_value());
    CHECK(pending.bytes() == 600);
    pending.add(9, {std::string(10, 'r'), "n", "d", {}}, now); // replaces 9's challenge
    CHECK(pending.bytes() == 310);
    CHECK_FALSE(pending.take(10, now + std::chrono::seconds(121)).has_value()); // expired
    CHECK(pending.bytes() == 10);
}
