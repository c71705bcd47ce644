// Challenge-response proofs as the reference clients make them, checked against the captures in
// tests/data/handle-admin.md: HANDLE.NET's PBKDF2-HMAC-SHA1 secret-key answers and its
// SHA256withRSA public-key answers, the HMAC-SHA256 answer HANDLE.NET's server accepts, and
// CAICT ID-SDK's LOGIN_ID_SYSTEM answer. Every proof is verified against the nonce and digest of
// the RC 402 that precedes it in the capture. DSA proofs (no capture has one) are made here as
// HANDLE.NET's PublicKeyAuthenticationInfo makes them.
#include "handle_test_support.hpp"
#include "idnode/node/handle_public_key.hpp"
#include "idnode/resolver/handle_auth.hpp"
#include "test_keys.hpp"

#include <doctest/doctest.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

using namespace handle_test;

namespace {

constexpr std::string_view kInteropSecret = "interop-secret";

const std::map<std::string, std::vector<CapturedLine>>& flows() {
    static const auto loaded = load_flows("handle-admin.md");
    return loaded;
}

std::string_view body_of(std::string_view message) {
    const std::uint32_t length = be32(message, hp::kEnvelopeSize + 20);
    return message.substr(hp::kEnvelopeSize + hp::kHeaderSize, length);
}

/// The nonce and raw digest of an RC 402 body: algorithm byte, digest, int4 16, nonce.
struct ChallengeBytes {
    std::string nonce;
    std::string digest;
};
ChallengeBytes challenge_of(std::string_view message) {
    REQUIRE(be32(message, hp::kEnvelopeSize + 4) == hp::rc::kAuthenticationNeeded);
    const std::string_view body = body_of(message);
    REQUIRE(body.size() == 1 + 32 + 4 + 16);
    REQUIRE(body[0] == 3); // SHA-256
    return {std::string(body.substr(37, 16)), std::string(body.substr(1, 32))};
}

/// Every (402, RESPONSE_TO_CHALLENGE) pair of a flow, in order.
std::vector<std::pair<ChallengeBytes, hp::ChallengeAnswer>> proofs_in(const std::string& flow) {
    std::vector<std::pair<ChallengeBytes, hp::ChallengeAnswer>> out;
    const auto& lines = flows().at(flow);
    for (std::size_t i = 1; i < lines.size(); ++i) {
        const std::string& m = lines[i].bytes;
        if (be32(m, hp::kEnvelopeSize) != hp::opcode::kChallengeResponse) {
            continue;
        }
        const std::string& challenge = lines[i - 1].bytes;
        // The answer carries the challenge's session id.
        CHECK(be32(m, 4) == be32(challenge, 4));
        auto answer = hp::decode_challenge_answer(body_of(m));
        REQUIRE(answer.ok());
        out.emplace_back(challenge_of(challenge), *answer);
    }
    return out;
}

/// The 300:0.NA/88.118 public key of the capture (PEM in the intro).
std::string capture_identity_key_pem() {
    std::ifstream in(std::string(IDNODE_TEST_DATA_DIR) + "/handle-admin.md");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto begin = text.find("-----BEGIN PUBLIC KEY-----");
    const std::string end_marker = "-----END PUBLIC KEY-----";
    const auto end = text.find(end_marker, begin);
    REQUIRE(end != std::string::npos);
    return text.substr(begin, end + end_marker.size() - begin) + "\n";
}

std::string u32be(std::uint32_t v) {
    std::string out(4, '\0');
    for (int i = 0; i < 4; ++i)
        out[static_cast<std::size_t>(i)] = static_cast<char>(v >> (24 - 8 * i));
    return out;
}

} // namespace

TEST_CASE("HANDLE.NET's PBKDF2-HMAC-SHA1 secret-key proofs verify with the secret, not without") {
    for (const char* flow :
         {"seckey-admin-nosession", "seckey-admin-session", "list-handles", "list-homed-nas"}) {
        CAPTURE(flow);
        const auto proofs = proofs_in(flow);
        REQUIRE_FALSE(proofs.empty());
        for (const auto& [challenge, answer] : proofs) {
            CHECK(answer.auth_type == hp::kSecretKeyAuth);
            CHECK(answer.identity_handle == "0.NA/88.118");
            CHECK(answer.identity_index == 301);
            CHECK(static_cast<unsigned char>(answer.signed_response[0]) == 0x22);
            CHECK(hp::verify_secret_key_proof(kInteropSecret, challenge.nonce, challenge.digest,
                                              answer.signed_response) == hp::ProofCheck::valid);
            CHECK(hp::verify_secret_key_proof("interop-secreT", challenge.nonce, challenge.digest,
                                              answer.signed_response) == hp::ProofCheck::mismatch);
            std::string other_nonce = challenge.nonce;
            other_nonce[0] ^= 1;
            CHECK(hp::verify_secret_key_proof(kInteropSecret, other_nonce, challenge.digest,
                                              answer.signed_response) == hp::ProofCheck::mismatch);
        }
    }
    // The wrong-secret capture: HANDLE.NET answered 403; so do we.
    const auto wrong = proofs_in("wrong-secret");
    REQUIRE(wrong.size() == 1);
    CHECK(hp::verify_secret_key_proof(kInteropSecret, wrong[0].first.nonce, wrong[0].first.digest,
                                      wrong[0].second.signed_response) == hp::ProofCheck::mismatch);
}

TEST_CASE("the HMAC-SHA256 proof HANDLE.NET's server accepts verifies too") {
    const auto proofs = proofs_in("seckey-hmac-sha256");
    REQUIRE(proofs.size() == 2);
    for (const auto& [challenge, answer] : proofs) {
        CHECK(static_cast<unsigned char>(answer.signed_response[0]) == 0x13);
        CHECK(hp::verify_secret_key_proof(kInteropSecret, challenge.nonce, challenge.digest,
                                          answer.signed_response) == hp::ProofCheck::valid);
        CHECK(hp::secret_key_proof_hmac_sha256(kInteropSecret, challenge.nonce, challenge.digest) ==
              answer.signed_response);
    }
}

TEST_CASE("SHA256withRSA proofs of HANDLE.NET and ID-SDK verify with the identity's public key") {
    const std::string pem = capture_identity_key_pem();
    for (const char* flow :
         {"pubkey-admin-nosession", "pubkey-admin-session", "idsdk-channel-login"}) {
        CAPTURE(flow);
        const auto proofs = proofs_in(flow);
        REQUIRE_FALSE(proofs.empty());
        for (const auto& [challenge, answer] : proofs) {
            CHECK(answer.auth_type == hp::kPublicKeyAuth);
            CHECK(answer.identity_index == 300);
            CHECK(hp::verify_public_key_proof(pem, challenge.nonce, challenge.digest,
                                              answer.signed_response) == hp::ProofCheck::valid);
            std::string tampered(answer.signed_response);
            tampered[tampered.size() - 1] ^= 1;
            CHECK(hp::verify_public_key_proof(pem, challenge.nonce, challenge.digest, tampered) ==
                  hp::ProofCheck::mismatch);
        }
    }
}

TEST_CASE("the identity key through its HS_PUBKEY bytes still verifies HANDLE.NET's proofs") {
    // An identity registered from HANDLE.NET's binary key (public_key_hs) is stored as the PEM
    // that pem_from_hs_public_key makes; that PEM must verify what the client signed.
    const auto bytes = idnode::node::hs_public_key_from_pem(capture_identity_key_pem());
    REQUIRE(bytes.has_value());
    const auto pem = idnode::node::pem_from_hs_public_key(*bytes);
    REQUIRE(pem.ok());
    const auto proofs = proofs_in("pubkey-admin-nosession");
    REQUIRE(proofs.size() == 2);
    for (const auto& [challenge, answer] : proofs)
        CHECK(hp::verify_public_key_proof(*pem, challenge.nonce, challenge.digest,
                                          answer.signed_response) == hp::ProofCheck::valid);
}

namespace {

/// A signed response as HANDLE.NET's PublicKeyAuthenticationInfo makes one with a DSA key:
/// Signature.getInstance("SHA256withDSA") (SHA1withDSA before protocol 2.11) over nonce ||
/// digest, whose output is the DER SEQUENCE { r, s } of the JCA, after the hash name "SHA-256"
/// (or "SHA1").
std::string dsa_proof(const std::string& private_pem, const EVP_MD* md, std::string_view name,
                      std::string_view nonce, std::string_view digest) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(private_pem.data(), static_cast<int>(private_pem.size())), &BIO_free);
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
        PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
    REQUIRE(key);
    REQUIRE(EVP_PKEY_is_a(key.get(), "DSA") == 1);
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    const std::string data = std::string(nonce) + std::string(digest);
    REQUIRE(EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key.get()) == 1);
    std::size_t size = 0;
    REQUIRE(EVP_DigestSign(ctx.get(), nullptr, &size,
                           reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1);
    std::string signature(size, '\0');
    REQUIRE(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                           reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1);
    signature.resize(size);
    REQUIRE(signature[0] == 0x30); // DER: a SEQUENCE
    return u32be(static_cast<std::uint32_t>(name.size())) + std::string(name) +
           u32be(static_cast<std::uint32_t>(signature.size())) + signature;
}

} // namespace

TEST_CASE("SHA256withDSA and SHA1withDSA proofs verify with the DSA identity's key, not another") {
    const auto dsa = idnode::test::make_key("DSA", 2048);
    const auto other = idnode::test::make_key("DSA", 2048);
    // The capture's own challenge: the first one of the public-key flow.
    const auto challenge = proofs_in("pubkey-admin-nosession").at(0).first;
    const std::string& n = challenge.nonce;
    const std::string& d = challenge.digest;

    const std::string proof = dsa_proof(dsa.private_pem, EVP_sha256(), "SHA-256", n, d);
    CHECK(hp::verify_public_key_proof(dsa.public_pem, n, d, proof) == hp::ProofCheck::valid);
    // The identity registered from its HS_PUBKEY bytes: the same answer.
    const auto stored =
        idnode::node::pem_from_hs_public_key(*idnode::node::hs_public_key_from_pem(dsa.public_pem));
    REQUIRE(stored.ok());
    CHECK(hp::verify_public_key_proof(*stored, n, d, proof) == hp::ProofCheck::valid);
    // A protocol 2.10 client (ID-SDK's version) signs with SHA1withDSA and says "SHA1".
    CHECK(hp::verify_public_key_proof(dsa.public_pem, n, d,
                                      dsa_proof(dsa.private_pem, EVP_sha1(), "SHA1", n, d)) ==
          hp::ProofCheck::valid);

    // Another DSA key's proof, a proof over another challenge, the hash name lying: no match.
    CHECK(hp::verify_public_key_proof(
              dsa.public_pem, n, d, dsa_proof(other.private_pem, EVP_sha256(), "SHA-256", n, d)) ==
          hp::ProofCheck::mismatch);
    const std::string other_nonce(16, 'x');
    CHECK(hp::verify_public_key_proof(dsa.public_pem, other_nonce, d, proof) ==
          hp::ProofCheck::mismatch);
    CHECK(hp::verify_public_key_proof(dsa.public_pem, n, d,
                                      dsa_proof(dsa.private_pem, EVP_sha1(), "SHA-256", n, d)) ==
          hp::ProofCheck::mismatch);
    // r || s without the DER wrapping (IEEE P1363, what no Java client sends): no match.
    CHECK(hp::verify_public_key_proof(dsa.public_pem, n, d,
                                      u32be(7) + "SHA-256" + u32be(64) + std::string(64, '\x11')) ==
          hp::ProofCheck::mismatch);
}

TEST_CASE("our own PBKDF2 proof is HANDLE.NET's, byte for byte, given its salt") {
    const auto proofs = proofs_in("seckey-admin-nosession");
    REQUIRE_FALSE(proofs.empty());
    const auto& [challenge, answer] = proofs.front();
    const std::string salt(answer.signed_response.substr(5, 16));
    CHECK(hp::secret_key_proof_pbkdf2(kInteropSecret, salt, 10'000, challenge.nonce,
                                      challenge.digest) == answer.signed_response);
}

TEST_CASE("malformed, unsupported and costly proofs are refused without a match") {
    const std::string nonce(16, 'n');
    const std::string digest(32, 'd');
    CHECK(hp::verify_secret_key_proof("s", nonce, digest, "") == hp::ProofCheck::malformed);
    CHECK(hp::verify_secret_key_proof("s", nonce, digest, "\x01" + std::string(16, 'x')) ==
          hp::ProofCheck::unsupported); // MD5 of old clients
    CHECK(hp::verify_secret_key_proof("s", nonce, digest, std::string("\x22\x00\x00", 3)) ==
          hp::ProofCheck::malformed);
    // PBKDF2 with more iterations than the server will spend, or an odd key size.
    const std::string costly = hp::secret_key_proof_pbkdf2("s", "salt", 10, nonce, digest);
    std::string many = costly;
    many.replace(1 + 4 + 4, 4, u32be(hp::kMaxPbkdf2Iterations + 1));
    CHECK(hp::verify_secret_key_proof("s", nonce, digest, many) == hp::ProofCheck::unsupported);
    std::string bits = costly;
    bits.replace(1 + 4 + 4 + 4, 4, u32be(128));
    CHECK(hp::verify_secret_key_proof("s", nonce, digest, bits) == hp::ProofCheck::unsupported);
    CHECK(hp::verify_secret_key_proof("s", nonce, digest, costly) == hp::ProofCheck::valid);

    const std::string pem = capture_identity_key_pem();
    CHECK(hp::verify_public_key_proof(pem, nonce, digest, "junk") == hp::ProofCheck::malformed);
    CHECK(hp::verify_public_key_proof(pem, nonce, digest, u32be(3) + "MD5" + u32be(4) + "sign") ==
          hp::ProofCheck::unsupported);
    CHECK(hp::verify_public_key_proof("not a key", nonce, digest,
                                      u32be(7) + "SHA-256" + u32be(4) + "sign") ==
          hp::ProofCheck::unsupported);
    CHECK(
        hp::verify_public_key_proof(pem, nonce, digest, u32be(7) + "SHA-256" + u32be(4) + "sign") ==
        hp::ProofCheck::mismatch);

    // The answer body itself.
    std::string body;
    hp::encode_challenge_answer(body, {hp::kSecretKeyAuth, "0.NA/88.118", 301, "proof"});
    auto decoded = hp::decode_challenge_answer(body);
    REQUIRE(decoded.ok());
    CHECK(decoded->identity_index == 301);
    CHECK(decoded->signed_response == "proof");
    CHECK_FALSE(hp::decode_challenge_answer(body + "x").ok());
    CHECK_FALSE(hp::decode_challenge_answer(body.substr(0, body.size() - 1)).ok());
}

TEST_CASE(
    "SM2 proofs as id-pointer-sdk makes them: SM3(nonce || digest), the identity as user id") {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
        EVP_PKEY_Q_keygen(nullptr, nullptr, "SM2"), &EVP_PKEY_free);
    REQUIRE(key);
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
    REQUIRE(PEM_write_bio_PUBKEY(bio.get(), key.get()) == 1);
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    const std::string pem(data, static_cast<std::size_t>(size));

    const std::string nonce(16, 'n');
    const std::string digest(32, 'd');
    const std::string identity = "88.118.8/sm2user1";
    auto sign = [&](std::string_view user_id) {
        unsigned char m[32];
        unsigned int m_size = 0;
        const std::string challenge = nonce + digest;
        REQUIRE(EVP_Digest(challenge.data(), challenge.size(), m, &m_size, EVP_sm3(), nullptr) ==
                1);
        std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> pctx(
            EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr), &EVP_PKEY_CTX_free);
        std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                    &EVP_MD_CTX_free);
        REQUIRE(EVP_PKEY_CTX_set1_id(pctx.get(), user_id.data(),
                                     static_cast<int>(user_id.size())) == 1);
        EVP_MD_CTX_set_pkey_ctx(ctx.get(), pctx.get());
        REQUIRE(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sm3(), nullptr, key.get()) == 1);
        std::size_t sig_size = 0;
        REQUIRE(EVP_DigestSign(ctx.get(), nullptr, &sig_size, m, m_size) == 1);
        std::string sig(sig_size, '\0');
        REQUIRE(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &sig_size,
                               m, m_size) == 1);
        sig.resize(sig_size);
        return u32be(3) + "SM3" + u32be(static_cast<std::uint32_t>(sig.size())) + sig;
    };
    const std::string proof = sign(identity);
    CHECK(hp::verify_public_key_proof(pem, nonce, digest, proof, identity) ==
          hp::ProofCheck::valid);
    // Another identity's user id, or the SM2 default id: the Z value differs.
    CHECK(hp::verify_public_key_proof(pem, nonce, digest, proof, "88.118.8/other") ==
          hp::ProofCheck::mismatch);
    CHECK(hp::verify_public_key_proof(pem, nonce, digest, sign("1234567812345678"), identity) ==
          hp::ProofCheck::mismatch);
    // "SM3" with an RSA key, "SHA-256" with an SM2 key: not a combination anyone signs.
    CHECK(hp::verify_public_key_proof(capture_identity_key_pem(), nonce, digest, proof, identity) ==
          hp::ProofCheck::unsupported);
    CHECK(hp::verify_public_key_proof(pem, nonce, digest, u32be(7) + "SHA-256" + u32be(4) + "sign",
                                      identity) == hp::ProofCheck::unsupported);
}
