#include "idnode/resolver/handle_auth.hpp"

#include "handle_wire.hpp"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <limits>
#include <memory>

namespace idnode::resolver::handle {
namespace {

constexpr std::uint8_t kHmacSha1 = 0x12;
constexpr std::uint8_t kHmacSha256 = 0x13;
constexpr std::uint8_t kPbkdf2HmacSha1 = 0x22;
constexpr std::uint32_t kPbkdf2KeyBits = 160;
constexpr std::string_view kSm2DigestName = "SM3";

template <class T> Decoded<T> failure(const wire::Reader& r) {
    return r.error();
}

std::string hmac(const EVP_MD* md, std::string_view key, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (key.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()) ||
        HMAC(md, key.data(), static_cast<int>(key.size()),
             reinterpret_cast<const unsigned char*>(data.data()), data.size(), out,
             &size) == nullptr) {
        return {};
    }
    return std::string(reinterpret_cast<const char*>(out), size);
}

std::string pbkdf2_sha1(std::string_view secret, std::string_view salt, std::uint32_t iterations,
                        std::size_t bytes) {
    std::string derived(bytes, '\0');
    if (PKCS5_PBKDF2_HMAC(secret.data(), static_cast<int>(secret.size()),
                          reinterpret_cast<const unsigned char*>(salt.data()),
                          static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha1(),
                          static_cast<int>(bytes),
                          reinterpret_cast<unsigned char*>(derived.data())) != 1) {
        return {};
    }
    return derived;
}

bool same(std::string_view expected, std::string_view actual) {
    return !expected.empty() && expected.size() == actual.size() &&
           CRYPTO_memcmp(expected.data(), actual.data(), expected.size()) == 0;
}

std::string concat(std::string_view a, std::string_view b) {
    std::string out;
    out.reserve(a.size() + b.size());
    out.append(a);
    out.append(b);
    return out;
}

const EVP_MD* digest_named(std::string_view name) {
    if (name == "SHA-256" || name == "SHA256") {
        return EVP_sha256();
    }
    if (name == "SHA1" || name == "SHA-1") {
        return EVP_sha1();
    }
    return nullptr;
}

} // namespace

Decoded<ChallengeAnswer> decode_challenge_answer(std::string_view body) {
    wire::Reader r(body);
    ChallengeAnswer a;
    if (!r.bytes(a.auth_type, "authentication type") ||
        !r.bytes(a.identity_handle, "identity handle") ||
        !r.i32(a.identity_index, "identity index") ||
        !r.bytes(a.signed_response, "signed response") || !r.at_end("after the signed response")) {
        return failure<ChallengeAnswer>(r);
    }
    return a;
}

void encode_challenge_answer(std::string& out, const ChallengeAnswer& answer) {
    wire::put_bytes(out, answer.auth_type);
    wire::put_bytes(out, answer.identity_handle);
    wire::put_u32(out, static_cast<std::uint32_t>(answer.identity_index));
    wire::put_bytes(out, answer.signed_response);
}

ProofCheck verify_secret_key_proof(std::string_view secret, std::string_view nonce,
                                   std::string_view digest, std::string_view signed_response) {
    wire::Reader r(signed_response);
    std::uint8_t algorithm = 0;
    if (!r.u8(algorithm, "algorithm")) {
        return ProofCheck::malformed;
    }
    const std::string challenge = concat(nonce, digest);
    std::string_view mac;
    switch (algorithm) {
    case kHmacSha1:
    case kHmacSha256: {
        mac = r.rest(); // the MAC runs to the end: no length of its own
        const EVP_MD* md = algorithm == kHmacSha1 ? EVP_sha1() : EVP_sha256();
        return same(hmac(md, secret, challenge), mac) ? ProofCheck::valid : ProofCheck::mismatch;
    }
    case kPbkdf2HmacSha1: {
        std::string_view salt;
        std::uint32_t iterations = 0;
        std::uint32_t bits = 0;
        if (!r.bytes(salt, "salt") || !r.u32(iterations, "iterations") || !r.u32(bits, "bits") ||
            !r.bytes(mac, "mac") || !r.at_end("after the mac")) {
            return ProofCheck::malformed;
        }
        if (iterations == 0 || iterations > kMaxPbkdf2Iterations || bits != kPbkdf2KeyBits ||
            salt.size() > 1024) {
            return ProofCheck::unsupported;
        }
        const std::string key = pbkdf2_sha1(secret, salt, iterations, bits / 8);
        return same(hmac(EVP_sha1(), key, challenge), mac) ? ProofCheck::valid
                                                           : ProofCheck::mismatch;
    }
    default:
        // 0x01-0x03 (digests of secret and challenge, protocol < 2.1 clients) are not accepted:
        // no client of this node's era sends them.
        return ProofCheck::unsupported;
    }
}

ProofCheck verify_public_key_proof(std::string_view public_key_pem, std::string_view nonce,
                                   std::string_view digest, std::string_view signed_response,
                                   std::string_view identity_handle) {
    wire::Reader r(signed_response);
    std::string_view digest_name, signature;
    if (!r.bytes(digest_name, "digest name") || !r.bytes(signature, "signature") ||
        !r.at_end("after the signature")) {
        return ProofCheck::malformed;
    }
    if (public_key_pem.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
        return ProofCheck::unsupported;
    }
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(public_key_pem.data(), static_cast<int>(public_key_pem.size())), &BIO_free);
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
        bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr, &EVP_PKEY_free);
    if (!key) {
        return ProofCheck::unsupported;
    }
    // The SM2 context outlives the digest context that borrows it.
    std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> sm2(nullptr, &EVP_PKEY_CTX_free);
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    if (!ctx) {
        return ProofCheck::unsupported;
    }
    std::string challenge = concat(nonce, digest);
    const EVP_MD* md = nullptr;
    if (digest_name == kSm2DigestName) {
        // id-pointer-sdk signs SM3(nonce || digest) with SM2, the identity handle as the user
        // id (it enters the Z value), DER-encoded.
        if (EVP_PKEY_is_a(key.get(), "SM2") != 1) {
            return ProofCheck::unsupported;
        }
        unsigned char m[EVP_MAX_MD_SIZE];
        unsigned int m_size = 0;
        if (EVP_Digest(challenge.data(), challenge.size(), m, &m_size, EVP_sm3(), nullptr) != 1) {
            return ProofCheck::unsupported;
        }
        challenge.assign(reinterpret_cast<const char*>(m), m_size);
        sm2.reset(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
        if (!sm2 || EVP_PKEY_CTX_set1_id(sm2.get(), identity_handle.data(),
                                         static_cast<int>(identity_handle.size())) != 1) {
            return ProofCheck::unsupported;
        }
        EVP_MD_CTX_set_pkey_ctx(ctx.get(), sm2.get());
        md = EVP_sm3();
    } else {
        md = digest_named(digest_name);
        if (md == nullptr ||
            (EVP_PKEY_is_a(key.get(), "RSA") != 1 && EVP_PKEY_is_a(key.get(), "DSA") != 1)) {
            return ProofCheck::unsupported;
        }
    }
    if (EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key.get()) != 1) {
        return ProofCheck::unsupported;
    }
    const int verified = EVP_DigestVerify(
        ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
        reinterpret_cast<const unsigned char*>(challenge.data()), challenge.size());
    return verified == 1 ? ProofCheck::valid : ProofCheck::mismatch;
}

std::string secret_key_proof_pbkdf2(std::string_view secret, std::string_view salt,
                                    std::uint32_t iterations, std::string_view nonce,
                                    std::string_view digest) {
    std::string out;
    wire::put_u8(out, kPbkdf2HmacSha1);
    wire::put_bytes(out, salt);
    wire::put_u32(out, iterations);
    wire::put_u32(out, kPbkdf2KeyBits);
    const std::string key = pbkdf2_sha1(secret, salt, iterations, kPbkdf2KeyBits / 8);
    wire::put_bytes(out, hmac(EVP_sha1(), key, concat(nonce, digest)));
    return out;
}

std::string secret_key_proof_hmac_sha256(std::string_view secret, std::string_view nonce,
                                         std::string_view digest) {
    std::string out;
    wire::put_u8(out, kHmacSha256);
    out.append(hmac(EVP_sha256(), secret, concat(nonce, digest)));
    return out;
}

} // namespace idnode::resolver::handle
