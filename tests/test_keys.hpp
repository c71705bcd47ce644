// Public keys made at test time with OpenSSL (identity validation: RSA, DSA, EC and SM2 keys of
// various sizes), as PEM "BEGIN PUBLIC KEY". Header-only; the test links OpenSSL::Crypto.
#pragma once

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

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

} // namespace idnode::test
