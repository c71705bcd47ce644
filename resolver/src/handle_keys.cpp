#include "idnode/resolver/handle_keys.hpp"

#include "handle_wire.hpp"
#include "idnode/node/handle_public_key.hpp"
#include "idnode/resolver/handle_protocol.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <limits>

namespace idnode::resolver::handle {

struct ServerKey::Pkey {
    explicit Pkey(EVP_PKEY* k) noexcept : key(k) {}
    ~Pkey() { EVP_PKEY_free(key); }
    Pkey(const Pkey&) = delete;
    Pkey& operator=(const Pkey&) = delete;
    EVP_PKEY* key;
};

namespace {

constexpr std::string_view kSignedType = "HS_SIGNED";
constexpr std::string_view kSignatureDigest = "SHA-256";
constexpr unsigned kMinimumBits = 2048;

registry::Error invalid(std::string why) {
    return registry::Error{registry::Errc::invalid_value, "server key: " + std::move(why)};
}

struct BioDeleter {
    void operator()(BIO* b) const noexcept { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

struct MdCtxDeleter {
    void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    return size > 0 ? std::string(data, static_cast<std::size_t>(size)) : std::string();
}

std::string public_pem_of(EVP_PKEY* key) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) {
        return {};
    }
    return bio_text(bio.get());
}

} // namespace

registry::Result<ServerKey> ServerKey::from_pem(std::string_view pem) {
    if (pem.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
        return invalid("PEM text is too large");
    }
    BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) {
        return invalid("out of memory");
    }
    EVP_PKEY* raw = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
    if (raw == nullptr) {
        return invalid("not an unencrypted PEM private key (expected -----BEGIN PRIVATE KEY-----)");
    }
    auto held = std::make_shared<const Pkey>(raw);
    if (EVP_PKEY_is_a(raw, "RSA") != 1) {
        return invalid("only RSA keys: HANDLE.NET clients verify RSA and DSA signatures");
    }
    if (EVP_PKEY_get_bits(raw) < static_cast<int>(kMinimumBits)) {
        return invalid("an RSA key of at least 2048 bits is needed (this one has " +
                       std::to_string(EVP_PKEY_get_bits(raw)) + ")");
    }
    auto encoded = encode_public_key_pem(public_pem_of(raw));
    if (!encoded) {
        return invalid(encoded.error().message);
    }
    ServerKey key;
    key.key_ = std::move(held);
    key.public_key_ = std::move(*encoded);
    return key;
}

std::string ServerKey::public_key_pem() const {
    return key_ ? public_pem_of(key_->key) : std::string();
}

std::string ServerKey::sign(std::string_view data) const {
    if (!key_) {
        return {};
    }
    MdCtxPtr ctx(EVP_MD_CTX_new());
    std::size_t size = 0;
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_->key) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &size, nullptr, 0) != 1) {
        return {};
    }
    std::string signature(size, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                       reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
        return {};
    }
    signature.resize(size);
    return signature;
}

std::string signed_credential(std::string_view signature) {
    std::string out;
    wire::put_u8(out, 0);     // credential version
    wire::put_u8(out, 0);     // reserved
    wire::put_u16(out, 0);    // flags
    wire::put_bytes(out, ""); // signer handle: the server itself
    wire::put_u32(out, 0);    // signer index / session counter
    wire::put_bytes(out, kSignedType);
    std::string section;
    wire::put_bytes(section, kSignatureDigest);
    wire::put_bytes(section, signature);
    wire::put_bytes(out, section);
    return out;
}

std::string signed_bytes(std::string_view message) {
    if (message.size() < kEnvelopeSize + kHeaderSize) {
        return {};
    }
    const std::size_t body_length = wire::load_u32(message.data() + kEnvelopeSize + 20);
    if (body_length > message.size() - kEnvelopeSize - kHeaderSize) {
        return {};
    }
    const auto major = static_cast<unsigned char>(message[0]);
    const auto minor = static_cast<unsigned char>(message[1]);
    const auto at_least = [&](unsigned want_major, unsigned want_minor) {
        return major > want_major || (major == want_major && minor >= want_minor);
    };
    std::string out;
    out.reserve(16 + kHeaderSize + body_length);
    if (at_least(2, 6)) {
        out.push_back(message[0]);
        out.push_back(message[1]);
        if (at_least(2, 8)) {
            // Byte 2 shares the suggested major version with the envelope flags; only the
            // version is signed (the flags change when a UDP reply is cut into fragments).
            out.push_back(static_cast<char>(static_cast<unsigned char>(message[2]) & 0x03));
            out.push_back(message[3]);
        }
        out.append(message.substr(4, 8)); // session id, request id
        wire::put_u32(out, 0);            // session counter: none outside a session
    }
    out.append(message.substr(kEnvelopeSize, kHeaderSize + body_length));
    return out;
}

bool verify_signature(std::string_view public_key_hs, std::string_view data,
                      std::string_view signature) {
    // One reader of HS_PUBKEY values for the whole node (node/handle_public_key.hpp).
    auto pem = node::pem_from_hs_public_key(public_key_hs);
    if (!pem) {
        return false;
    }
    BioPtr bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
    const std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
        bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr, &EVP_PKEY_free);
    if (!key || (EVP_PKEY_is_a(key.get(), "RSA") != 1 && EVP_PKEY_is_a(key.get(), "DSA") != 1)) {
        return false;
    }
    MdCtxPtr ctx(EVP_MD_CTX_new());
    return ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) == 1 &&
           EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                            signature.size(), reinterpret_cast<const unsigned char*>(data.data()),
                            data.size()) == 1;
}

} // namespace idnode::resolver::handle
