// HS_PUBKEY binary public keys (node/handle_public_key.hpp): RSA, DSA and SM2 keys made here go
// to HANDLE.NET's (and id-pointer-sdk's) layout byte for byte and back to the same key; and every
// way untrusted bytes can be wrong is refused with a message that names it.
#include "idnode/node/handle_public_key.hpp"
#include "test_keys.hpp"

#include <doctest/doctest.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/x509.h>

#include <functional>
#include <random>

using idnode::test::KeyPem;
using idnode::test::make_key;
namespace node = idnode::node;
namespace reg = idnode::registry;

namespace {

std::string u32be(std::uint32_t v) {
    std::string out(4, '\0');
    for (int i = 0; i < 4; ++i)
        out[static_cast<std::size_t>(i)] = static_cast<char>(v >> (24 - 8 * i));
    return out;
}

/// An int4-length-prefixed field.
std::string field(std::string_view bytes) {
    return u32be(static_cast<std::uint32_t>(bytes.size())) + std::string(bytes);
}

const std::string kNoFlags("\0\0", 2);
const std::string kInt4Zero("\0\0\0\0", 4);

struct PkeyFree {
    void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

Pkey read_pem(std::string_view pem) {
    std::unique_ptr<BIO, int (*)(BIO*)> bio(
        BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
    Pkey key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
    REQUIRE(key);
    return key;
}

/// The DER SubjectPublicKeyInfo of a PEM public key: the key, whatever the PEM's line breaks.
std::string der_of(std::string_view pem) {
    const Pkey key = read_pem(pem);
    unsigned char* der = nullptr;
    const int size = i2d_PUBKEY(key.get(), &der);
    REQUIRE(size > 0);
    std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(size));
    OPENSSL_free(der);
    return out;
}

/// The magnitude of a key's number as Java's BigInteger.toByteArray() writes it.
std::string java_number(std::string_view pem, const char* name) {
    const Pkey key = read_pem(pem);
    BIGNUM* n = nullptr;
    REQUIRE(EVP_PKEY_get_bn_param(key.get(), name, &n) == 1);
    std::string out(static_cast<std::size_t>(BN_num_bytes(n)), '\0');
    BN_bn2bin(n, reinterpret_cast<unsigned char*>(out.data()));
    BN_free(n);
    if ((static_cast<unsigned char>(out.front()) & 0x80) != 0)
        out.insert(out.begin(), '\0');
    return out;
}

std::string hs_of(const std::string& pem) {
    auto bytes = node::hs_public_key_from_pem(pem);
    REQUIRE(bytes.has_value());
    return *bytes;
}

/// The key back from HS_PUBKEY bytes, as DER.
std::string der_back(std::string_view bytes) {
    auto pem = node::pem_from_hs_public_key(bytes);
    REQUIRE_MESSAGE(pem.ok(), pem.error().message);
    CHECK(pem->rfind("-----BEGIN PUBLIC KEY-----\n", 0) == 0);
    return der_of(*pem);
}

/// Why `bytes` are refused (a test failure when they are not).
std::string refusal(std::string_view bytes) {
    auto pem = node::pem_from_hs_public_key(bytes);
    REQUIRE_FALSE(pem.ok());
    CHECK(pem.code() == reg::Errc::invalid_value);
    return pem.error().message;
}

void check_refused(std::string_view bytes, std::string_view expected) {
    CAPTURE(expected);
    const std::string message = refusal(bytes);
    CHECK_MESSAGE(message.find(expected) != std::string::npos, message);
}

// Key generation is the slow part (DSA parameters above all): once per run.
const KeyPem& rsa2048() {
    static const KeyPem key = make_key("RSA", 2048);
    return key;
}
const KeyPem& dsa2048() {
    static const KeyPem key = make_key("DSA", 2048);
    return key;
}
const KeyPem& sm2() {
    static const KeyPem key = make_key("SM2");
    return key;
}

} // namespace

TEST_CASE("RSA: HANDLE.NET's layout (type, flags, exponent, modulus, int4 0) and back") {
    const std::string& pem = rsa2048().public_pem;
    const std::string bytes = hs_of(pem);
    const std::string modulus = java_number(pem, OSSL_PKEY_PARAM_RSA_N);
    CHECK(modulus.size() == 257); // a 2048-bit modulus has its top bit set: Java's 0x00 leads
    CHECK(bytes == field("RSA_PUB_KEY") + kNoFlags + field(std::string("\x01\x00\x01", 3)) +
                       field(modulus) + kInt4Zero);
    CHECK(der_back(bytes) == der_of(pem));
    // Without HANDLE.NET's trailing int4 0 (a writer that sizes its buffer exactly): the same key.
    CHECK(der_back(bytes.substr(0, bytes.size() - 4)) == der_of(pem));
    // Numbers are read as unsigned magnitudes, as Java reads them: a modulus without the sign
    // byte, or with extra leading zeros, is the same number.
    CHECK(der_back(field("RSA_PUB_KEY") + kNoFlags + field(std::string("\x01\x00\x01", 3)) +
                   field(modulus.substr(1))) == der_of(pem));
    CHECK(der_back(field("RSA_PUB_KEY") + kNoFlags + field(std::string("\0\0\x01\x00\x01", 5)) +
                   field(std::string(3, '\0') + modulus)) == der_of(pem));
}

TEST_CASE("DSA: HANDLE.NET's layout (type, flags, q, p, g, y) and back") {
    const std::string& pem = dsa2048().public_pem;
    const std::string bytes = hs_of(pem);
    CHECK(bytes == field("DSA_PUB_KEY") + kNoFlags +
                       field(java_number(pem, OSSL_PKEY_PARAM_FFC_Q)) +
                       field(java_number(pem, OSSL_PKEY_PARAM_FFC_P)) +
                       field(java_number(pem, OSSL_PKEY_PARAM_FFC_G)) +
                       field(java_number(pem, OSSL_PKEY_PARAM_PUB_KEY)));
    CHECK(der_back(bytes) == der_of(pem));
}

TEST_CASE("SM2: id-pointer-sdk's layout (type, flags, X.509 DER) and back") {
    const std::string& pem = sm2().public_pem;
    const std::string bytes = hs_of(pem);
    CHECK(bytes == field("SM2_PUB_KEY") + kNoFlags + field(der_of(pem)));
    CHECK(der_back(bytes) == der_of(pem));
    // An EC key on the SM2 curve is the same kind of key.
    const KeyPem ec = make_key("EC", 0, "SM2");
    CHECK(hs_of(ec.public_pem) == field("SM2_PUB_KEY") + kNoFlags + field(der_of(ec.public_pem)));
}

TEST_CASE("keys other than RSA, DSA and SM2, and text that is no public key, have no encoding") {
    CHECK_FALSE(node::hs_public_key_from_pem(make_key("EC", 0, "P-256").public_pem));
    CHECK_FALSE(node::hs_public_key_from_pem(make_key("ED25519").public_pem));
    CHECK_FALSE(node::hs_public_key_from_pem("not a key"));
    CHECK_FALSE(node::hs_public_key_from_pem(""));
    // A private key is not read as its public half.
    CHECK_FALSE(node::hs_public_key_from_pem(rsa2048().private_pem));
}

TEST_CASE("a value cut short anywhere is refused, and the message names the field") {
    for (const auto* key : {&rsa2048(), &dsa2048(), &sm2()}) {
        const std::string bytes = hs_of(key->public_pem);
        CAPTURE(bytes.substr(4, 11));
        for (std::size_t size = 0; size < bytes.size(); ++size) {
            if (bytes.substr(4, 11) == "RSA_PUB_KEY" && size == bytes.size() - 4)
                continue; // the RSA value without its trailing int4 0: accepted above
            CAPTURE(size);
            CHECK_FALSE(node::pem_from_hs_public_key(bytes.substr(0, size)).ok());
        }
    }
    const std::string rsa = hs_of(rsa2048().public_pem);
    check_refused(rsa.substr(0, 2), "the key type is missing");
    check_refused(rsa.substr(0, 10), "the key type is cut short: 11 bytes announced, 6 left");
    check_refused(rsa.substr(0, 16), "the flags are cut short");
    check_refused(rsa.substr(0, 17), "the RSA exponent is missing");
    check_refused(rsa.substr(0, 22), "the RSA exponent is cut short");
    check_refused(rsa.substr(0, 26), "the RSA modulus is missing");
    check_refused(rsa.substr(0, 100), "the RSA modulus is cut short: 257 bytes announced");
    check_refused(rsa.substr(0, rsa.size() - 2), "2 bytes follow the RSA modulus");
    const std::string dsa = hs_of(dsa2048().public_pem);
    check_refused(dsa.substr(0, dsa.size() - 1), "the DSA y is cut short");
    const std::string sm2_bytes = hs_of(sm2().public_pem);
    check_refused(sm2_bytes.substr(0, sm2_bytes.size() - 1), "the SM2 key is cut short");
}

TEST_CASE("bytes after the last field are refused; only RSA's int4 0 is HANDLE.NET's") {
    const std::string rsa = hs_of(rsa2048().public_pem);
    check_refused(rsa + "x", "5 bytes follow the RSA modulus");
    check_refused(rsa.substr(0, rsa.size() - 4) + u32be(1), "4 bytes follow the RSA modulus");
    check_refused(hs_of(dsa2048().public_pem) + kInt4Zero, "4 bytes follow the DSA y");
    check_refused(hs_of(sm2().public_pem) + "x", "1 bytes follow the SM2 key");
}

TEST_CASE("empty, oversized, unknown types, flags, absurd and negative lengths are refused") {
    const std::string rsa = hs_of(rsa2048().public_pem);
    const std::string body = rsa.substr(4 + 11 + 2); // exponent, modulus, int4 0
    check_refused("", "empty");
    check_refused(std::string(node::kMaxHsPublicKeyBytes + 1, 'x'), "at most 16384");
    check_refused(field("DH_PUB_KEY") + kNoFlags + body, "key type \"DH_PUB_KEY\" is none of");
    check_refused(field("RSA_PRIV_KEY") + kNoFlags + body, "\"RSA_PRIV_KEY\"");
    check_refused(field("") + kNoFlags + body, "key type \"\" is none of");
    check_refused(field(std::string("\x01\xff", 2)) + kNoFlags + body, "not text");
    check_refused(field("RSA_PUB_KEY") + std::string("\0\x01", 2) + body, "flags are 1");
    // HANDLE.NET's private key file: an int4 encryption flag (1: none), then the private key.
    check_refused(u32be(1) + field("RSA_PRIV_KEY") + body, "none of");
    // Lengths: past what is read, past the end, negative as a Java int.
    check_refused(u32be(65) + std::string(65, 'A') + kNoFlags + body,
                  "the key type is 65 bytes long; at most 64");
    check_refused(field("RSA_PUB_KEY") + kNoFlags + u32be(3) + std::string("\x01\x00\x01", 3) +
                      u32be(0x7fff'fff0u) + std::string(300, '\x55'),
                  "the RSA modulus is 2147483632 bytes long; at most 2050");
    check_refused(field("RSA_PUB_KEY") + kNoFlags + u32be(3) + std::string("\x01\x00\x01", 3) +
                      u32be(1000) + std::string(300, '\x55'),
                  "the RSA modulus is cut short: 1000 bytes announced, 300 left");
    check_refused(field("RSA_PUB_KEY") + kNoFlags + u32be(0xffff'ffffu) + body,
                  "the RSA exponent has a negative length");
    check_refused(u32be(0x8000'0000u) + "RSA_PUB_KEY", "the key type has a negative length");
}

TEST_CASE("numbers no key has are refused before OpenSSL sees them") {
    const std::string& pem = rsa2048().public_pem;
    const std::string modulus = java_number(pem, OSSL_PKEY_PARAM_RSA_N);
    const std::string head = field("RSA_PUB_KEY") + kNoFlags;
    const std::string e = field(std::string("\x01\x00\x01", 3));
    check_refused(head + field("") + field(modulus), "the RSA exponent is empty");
    check_refused(head + e + field(std::string(4, '\0')), "the RSA modulus is zero");
    std::string even = modulus;
    even.back() = static_cast<char>(even.back() & ~1);
    check_refused(head + e + field(even), "the RSA modulus is even");
    check_refused(head + field("\x01") + field(modulus), "exponent must be odd, at least 3");
    check_refused(head + field("\x04") + field(modulus), "exponent must be odd, at least 3");
    check_refused(head + field(modulus) + field(modulus), "below the modulus");
    // 16384 bits is OpenSSL's limit: one more bit is refused (the field itself is within reach).
    check_refused(head + e + field("\x01" + std::string(2048, '\xff')),
                  "the RSA modulus has 16385 bits; at most 16384");

    const std::string& dsa_pem = dsa2048().public_pem;
    const std::string q = field(java_number(dsa_pem, OSSL_PKEY_PARAM_FFC_Q));
    const std::string p = field(java_number(dsa_pem, OSSL_PKEY_PARAM_FFC_P));
    const std::string g = field(java_number(dsa_pem, OSSL_PKEY_PARAM_FFC_G));
    const std::string y = field(java_number(dsa_pem, OSSL_PKEY_PARAM_PUB_KEY));
    const std::string dsa_head = field("DSA_PUB_KEY") + kNoFlags;
    CHECK(node::pem_from_hs_public_key(dsa_head + q + p + g + y).ok());
    check_refused(dsa_head + field(std::string(20, '\x7f')) + p + g + y,
                  "the DSA q has 159 bits; DSA's q has 160, 224 or 256");
    check_refused(dsa_head + q + p + field("\x01") + y, "g and y must lie in 2..p-1");
    check_refused(dsa_head + q + p + g + p, "g and y must lie in 2..p-1");
    check_refused(dsa_head + q + p + g + field("\x02"), "not in the subgroup of order q");
    check_refused(dsa_head + q +
                      field(java_number(dsa_pem, OSSL_PKEY_PARAM_FFC_P) + std::string(1, '\0')) +
                      g + y,
                  "is even");
}

TEST_CASE("an SM2 value holds one DER key on the SM2 curve") {
    const std::string head = field("SM2_PUB_KEY") + kNoFlags;
    check_refused(head + field("not DER"), "not a DER SubjectPublicKeyInfo");
    check_refused(head + field(""), "not a DER SubjectPublicKeyInfo");
    check_refused(head + field(der_of(sm2().public_pem) + "x"), "ends 1 bytes before its field");
    check_refused(head + field(der_of(make_key("EC", 0, "P-256").public_pem)),
                  "holds an EC key on curve prime256v1, not a key on the SM2 curve");
    check_refused(head + field(std::string(1025, '\x30')), "at most 1024");
}

TEST_CASE("damaged values are refused or decode to a key that encodes back to itself") {
    // Seeded: a failure reproduces. Flipped bits, cut and grown values, changed lengths.
    std::mt19937 random(20240611);
    int accepted = 0, refused = 0;
    for (const auto* key : {&rsa2048(), &dsa2048(), &sm2()}) {
        const std::string original = hs_of(key->public_pem);
        for (int round = 0; round < 1500; ++round) {
            std::string bytes = original;
            const auto at = std::uniform_int_distribution<std::size_t>(0, bytes.size() - 1)(random);
            switch (round % 4) {
            case 0:
                bytes[at] = static_cast<char>(bytes[at] ^ (1 << (round % 8)));
                break;
            case 1:
                bytes.resize(at);
                break;
            case 2:
                bytes.insert(at, 1, static_cast<char>(round));
                break;
            default: // a length field's bytes, where the lengths are
                bytes[at % 32] = static_cast<char>(random());
                break;
            }
            CAPTURE(round);
            auto pem = node::pem_from_hs_public_key(bytes);
            if (!pem.ok()) {
                ++refused;
                CHECK_FALSE(pem.error().message.empty());
                continue;
            }
            ++accepted;
            const auto again = node::hs_public_key_from_pem(*pem);
            REQUIRE(again.has_value());
            CHECK(node::pem_from_hs_public_key(*again).value() == *pem);
        }
    }
    CHECK(refused > 0);
    CHECK(accepted > 0); // e.g. a flipped bit in an RSA modulus is still an RSA key
}
