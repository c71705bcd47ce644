// Public keys made at test time with OpenSSL (identity validation: RSA, DSA, EC and SM2 keys of
// various sizes), as PEM "BEGIN PUBLIC KEY", and as HANDLE.NET's binary HS_PUBKEY bytes.
// Header-only; the test links OpenSSL::Crypto.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/buffer.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>

namespace idnode::test {

struct KeyPem {
    std::string public_pem;
    std::string private_pem;
};

/// `algorithm` "RSA" (bits), "DSA" (bits), "EC" (`curve`, e.g. "P-256" or "SM2"), "SM2",
/// "ED25519". Throws when OpenSSL fails (a broken test environment).
inline KeyPem make_key(const std::string& algorithm, int bits = 0, const std::string& curve = {}) {
    EVP_PKEY* key = nullptr;
    if (algorithm == "RSA") {
        key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits));
    } else if (algorithm == "EC") {
        key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve.c_str());
    } else if (algorithm == "DSA") {
        EVP_PKEY_CTX* pctx = EVP_PKEY_CTX_new_from_name(nullptr, "DSA", nullptr);
        EVP_PKEY* params = nullptr;
        if (pctx && EVP_PKEY_paramgen_init(pctx) == 1 &&
            EVP_PKEY_CTX_set_dsa_paramgen_bits(pctx, bits) == 1 &&
            EVP_PKEY_paramgen(pctx, &params) == 1) {
            EVP_PKEY_CTX* kctx = EVP_PKEY_CTX_new_from_pkey(nullptr, params, nullptr);
            if (kctx && EVP_PKEY_keygen_init(kctx) == 1)
                EVP_PKEY_keygen(kctx, &key);
            EVP_PKEY_CTX_free(kctx);
        }
        EVP_PKEY_free(params);
        EVP_PKEY_CTX_free(pctx);
    } else {
        key = EVP_PKEY_Q_keygen(nullptr, nullptr, algorithm.c_str());
    }
    if (key == nullptr)
        throw std::runtime_error("cannot generate a " + algorithm + " key");
    std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> owned(key, EVP_PKEY_free);
    auto pem = [](auto write) {
        std::unique_ptr<BIO, int (*)(BIO*)> bio(BIO_new(BIO_s_mem()), BIO_free);
        if (!bio || write(bio.get()) != 1)
            throw std::runtime_error("cannot write a PEM");
        BUF_MEM* mem = nullptr;
        BIO_get_mem_ptr(bio.get(), &mem);
        return std::string(mem->data, mem->length);
    };
    return KeyPem{pem([&](BIO* b) { return PEM_write_bio_PUBKEY(b, key); }), pem([&](BIO* b) {
                      return PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr,
                                                      nullptr);
                  })};
}

/// What HANDLE.NET's client stores for an RSA or DSA public key (hdllib
/// Util.getBytesFromPublicKey, hdl-keygen's admpub.bin), written here from OpenSSL's numbers
/// rather than by the code under test: int4-length type, int2 flags 0, then the numbers as
/// Java's BigInteger.toByteArray() (RSA: exponent, modulus, int4 0; DSA: q, p, g, y). Throws for
/// other keys.
inline std::string handle_net_public_key(const std::string& public_pem) {
    std::unique_ptr<BIO, int (*)(BIO*)> bio(
        BIO_new_mem_buf(public_pem.data(), static_cast<int>(public_pem.size())), BIO_free);
    std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> key(
        PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
    if (!key)
        throw std::runtime_error("not a PEM public key");
    auto u32 = [](std::uint32_t v) {
        std::string out(4, '\0');
        for (int i = 0; i < 4; ++i)
            out[static_cast<std::size_t>(i)] = static_cast<char>(v >> (24 - 8 * i));
        return out;
    };
    auto field = [&](const std::string& bytes) {
        return u32(static_cast<std::uint32_t>(bytes.size())) + bytes;
    };
    auto numbers = [&](std::initializer_list<const char*> names) {
        std::string out;
        for (const char* name : names) {
            BIGNUM* n = nullptr;
            if (EVP_PKEY_get_bn_param(key.get(), name, &n) != 1)
                throw std::runtime_error(std::string("no ") + name);
            std::string bytes(static_cast<std::size_t>(BN_num_bytes(n)), '\0');
            BN_bn2bin(n, reinterpret_cast<unsigned char*>(bytes.data()));
            BN_free(n);
            if (bytes.empty() || (static_cast<unsigned char>(bytes.front()) & 0x80) != 0)
                bytes.insert(bytes.begin(), '\0');
            out += field(bytes);
        }
        return out;
    };
    const std::string no_flags(2, '\0');
    if (EVP_PKEY_is_a(key.get(), "RSA") == 1)
        return field("RSA_PUB_KEY") + no_flags +
               numbers({OSSL_PKEY_PARAM_RSA_E, OSSL_PKEY_PARAM_RSA_N}) + u32(0);
    if (EVP_PKEY_is_a(key.get(), "DSA") == 1)
        return field("DSA_PUB_KEY") + no_flags +
               numbers({OSSL_PKEY_PARAM_FFC_Q, OSSL_PKEY_PARAM_FFC_P, OSSL_PKEY_PARAM_FFC_G,
                        OSSL_PKEY_PARAM_PUB_KEY});
    throw std::runtime_error("HANDLE.NET encodes only RSA and DSA keys");
}

} // namespace idnode::test
