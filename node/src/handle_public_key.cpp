#include "idnode/node/handle_public_key.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <memory>
#include <new>
#include <utility>

namespace idnode::node {
namespace {

constexpr std::string_view kRsaType = "RSA_PUB_KEY";
constexpr std::string_view kDsaType = "DSA_PUB_KEY";
constexpr std::string_view kSm2Type = "SM2_PUB_KEY";

// The sizes OpenSSL verifies signatures with (OPENSSL_RSA_MAX_MODULUS_BITS,
// OPENSSL_DSA_MAX_MODULUS_BITS, the q sizes of its DSA verify): a key past them could be stored
// but never used, and refusing it early bounds the work an untrusted value can cause.
constexpr int kMaxRsaModulusBits = 16384;
constexpr int kMaxDsaPBits = 10000;
// An SM2 SubjectPublicKeyInfo is 91 bytes with the named curve, about 330 with explicit
// parameters; a field far longer holds something else.
constexpr std::size_t kMaxSm2DerBytes = 1024;
// Longer type strings are none of the three; the bound keeps the message short.
constexpr std::size_t kMaxTypeBytes = 64;

/// The longest field a number of at most `bits` takes: its magnitude and Java's sign byte.
constexpr std::size_t number_field_bytes(int bits) {
    return static_cast<std::size_t>(bits) / 8 + 2;
}

struct PkeyFree {
    void operator()(EVP_PKEY* key) const noexcept { EVP_PKEY_free(key); }
};
struct PkeyCtxFree {
    void operator()(EVP_PKEY_CTX* ctx) const noexcept { EVP_PKEY_CTX_free(ctx); }
};
struct BioFree {
    void operator()(BIO* bio) const noexcept { BIO_free(bio); }
};
struct BnFree {
    void operator()(BIGNUM* bn) const noexcept { BN_free(bn); }
};
struct ParamBldFree {
    void operator()(OSSL_PARAM_BLD* bld) const noexcept { OSSL_PARAM_BLD_free(bld); }
};
struct ParamFree {
    void operator()(OSSL_PARAM* params) const noexcept { OSSL_PARAM_free(params); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;

registry::Error invalid(std::string why) {
    return registry::Error{registry::Errc::invalid_value, std::move(why)};
}

bool is_sm2(EVP_PKEY* key) {
    if (EVP_PKEY_is_a(key, "SM2") == 1)
        return true;
    if (EVP_PKEY_is_a(key, "EC") != 1)
        return false;
    char group[64] = {};
    std::size_t length = 0;
    return EVP_PKEY_get_group_name(key, group, sizeof group, &length) == 1 &&
           std::string_view(group, length) == "SM2";
}

// ---- writing -----------------------------------------------------------------------------------

void put_u16(std::string& out, std::uint16_t v) {
    out.push_back(static_cast<char>(v >> 8));
    out.push_back(static_cast<char>(v));
}

void put_u32(std::string& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8)
        out.push_back(static_cast<char>(v >> shift));
}

void put_field(std::string& out, std::string_view bytes) {
    put_u32(out, static_cast<std::uint32_t>(bytes.size()));
    out.append(bytes);
}

/// What Java's BigInteger.toByteArray() gives for a non-negative number: the big-endian
/// magnitude with a leading 0x00 when its top bit is set (and one 0x00 for zero).
std::string java_integer(const BIGNUM* n) {
    std::string out(static_cast<std::size_t>(BN_num_bytes(n)), '\0');
    BN_bn2bin(n, reinterpret_cast<unsigned char*>(out.data()));
    if (out.empty() || (static_cast<unsigned char>(out.front()) & 0x80) != 0)
        out.insert(out.begin(), '\0');
    return out;
}

/// `type`, flags 0, then the key's named numbers in order; nullopt when one cannot be read.
std::optional<std::string> numbers_value(EVP_PKEY* key, std::string_view type,
                                         std::initializer_list<const char*> names) {
    std::string out;
    put_field(out, type);
    put_u16(out, 0);
    for (const char* name : names) {
        BIGNUM* raw = nullptr;
        if (EVP_PKEY_get_bn_param(key, name, &raw) != 1)
            return std::nullopt;
        const BnPtr number(raw);
        put_field(out, java_integer(number.get()));
    }
    return out;
}

std::optional<std::string> sm2_value(EVP_PKEY* key) {
    unsigned char* der = nullptr;
    const int size = i2d_PUBKEY(key, &der);
    if (size <= 0)
        return std::nullopt;
    std::string out;
    put_field(out, kSm2Type);
    put_u16(out, 0);
    put_field(out,
              std::string_view(reinterpret_cast<const char*>(der), static_cast<std::size_t>(size)));
    OPENSSL_free(der);
    return out;
}

// ---- reading -----------------------------------------------------------------------------------

/// Reads fields off the front of untrusted bytes; the first failure is kept as the message.
class Reader {
public:
    explicit Reader(std::string_view bytes) noexcept : rest_(bytes) {}

    std::string_view rest() const noexcept { return rest_; }
    const std::string& error() const noexcept { return error_; }

    bool fail(std::string why) {
        error_ = std::move(why);
        return false;
    }

    bool u16(std::uint16_t& v, std::string_view what) {
        if (rest_.size() < 2)
            return fail(std::string(what) + " are cut short");
        const auto* u = reinterpret_cast<const unsigned char*>(rest_.data());
        v = static_cast<std::uint16_t>((u[0] << 8) | u[1]);
        rest_.remove_prefix(2);
        return true;
    }

    /// The next int4-length-prefixed field of at most `max` bytes.
    bool field(std::string_view& v, std::string_view what, std::size_t max) {
        const std::string name(what);
        if (rest_.size() < 4)
            return fail(name + " is missing: the value ends before its length");
        const auto* u = reinterpret_cast<const unsigned char*>(rest_.data());
        const std::uint32_t n = (std::uint32_t{u[0]} << 24) | (std::uint32_t{u[1]} << 16) |
                                (std::uint32_t{u[2]} << 8) | std::uint32_t{u[3]};
        // Lengths are Java ints: HANDLE.NET reads one with the sign bit as negative.
        if (n > static_cast<std::uint32_t>(std::numeric_limits<std::int32_t>::max()))
            return fail(name + " has a negative length (" + std::to_string(n) + " as unsigned)");
        if (n > max)
            return fail(name + " is " + std::to_string(n) + " bytes long; at most " +
                        std::to_string(max) + " are read");
        if (n > rest_.size() - 4)
            return fail(name + " is cut short: " + std::to_string(n) + " bytes announced, " +
                        std::to_string(rest_.size() - 4) + " left");
        v = rest_.substr(4, n);
        rest_.remove_prefix(4 + static_cast<std::size_t>(n));
        return true;
    }

    /// A number field as Java reads it (an unsigned magnitude): neither empty nor zero.
    bool number(BnPtr& out, std::string_view what, std::size_t max) {
        std::string_view bytes;
        if (!field(bytes, what, max))
            return false;
        if (bytes.empty())
            return fail(std::string(what) + " is empty");
        out.reset(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                            static_cast<int>(bytes.size()), nullptr));
        if (!out)
            throw std::bad_alloc();
        if (BN_is_zero(out.get()))
            return fail(std::string(what) + " is zero");
        return true;
    }

private:
    std::string_view rest_;
    std::string error_;
};

/// 2 <= v <= p - 1.
bool in_group_range(const BIGNUM* v, const BIGNUM* p) {
    return !BN_is_zero(v) && !BN_is_one(v) && BN_cmp(v, p) < 0;
}

/// A public key of `algorithm` from its numbers, or null when OpenSSL refuses them.
PkeyPtr key_from_numbers(const char* algorithm,
                         std::initializer_list<std::pair<const char*, const BIGNUM*>> numbers) {
    const std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> build(OSSL_PARAM_BLD_new());
    if (!build)
        throw std::bad_alloc();
    for (const auto& [name, value] : numbers)
        if (OSSL_PARAM_BLD_push_BN(build.get(), name, value) != 1)
            return nullptr;
    const std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(build.get()));
    const PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, algorithm, nullptr));
    EVP_PKEY* key = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
        return nullptr;
    return PkeyPtr(key);
}

/// exponent, modulus; then nothing or HANDLE.NET's int4 0.
PkeyPtr read_rsa(Reader& r) {
    constexpr std::size_t max = number_field_bytes(kMaxRsaModulusBits);
    BnPtr e, n;
    if (!r.number(e, "the RSA exponent", max) || !r.number(n, "the RSA modulus", max))
        return nullptr;
    if (BN_num_bits(n.get()) > kMaxRsaModulusBits) {
        r.fail("the RSA modulus has " + std::to_string(BN_num_bits(n.get())) + " bits; at most " +
               std::to_string(kMaxRsaModulusBits));
        return nullptr;
    }
    if (!BN_is_odd(n.get())) {
        r.fail("the RSA modulus is even: no RSA key has one");
        return nullptr;
    }
    if (!BN_is_odd(e.get()) || BN_is_one(e.get()) || BN_cmp(e.get(), n.get()) >= 0) {
        r.fail("the RSA exponent must be odd, at least 3 and below the modulus");
        return nullptr;
    }
    if (!r.rest().empty() && r.rest() != std::string_view("\0\0\0\0", 4)) {
        r.fail(std::to_string(r.rest().size()) +
               " bytes follow the RSA modulus; only HANDLE.NET's int4 0 may");
        return nullptr;
    }
    PkeyPtr key = key_from_numbers(
        "RSA", {{OSSL_PKEY_PARAM_RSA_N, n.get()}, {OSSL_PKEY_PARAM_RSA_E, e.get()}});
    if (!key)
        r.fail("OpenSSL refuses the RSA modulus and exponent");
    return key;
}

/// q, p, g, y; nothing after.
PkeyPtr read_dsa(Reader& r) {
    constexpr std::size_t max = number_field_bytes(kMaxDsaPBits);
    BnPtr q, p, g, y;
    if (!r.number(q, "the DSA q", max) || !r.number(p, "the DSA p", max) ||
        !r.number(g, "the DSA g", max) || !r.number(y, "the DSA y", max))
        return nullptr;
    const int p_bits = BN_num_bits(p.get());
    const int q_bits = BN_num_bits(q.get());
    if (p_bits > kMaxDsaPBits || !BN_is_odd(p.get())) {
        r.fail("the DSA p has " + std::to_string(p_bits) + " bits" +
               (BN_is_odd(p.get()) ? "; at most " + std::to_string(kMaxDsaPBits)
                                   : " and is even: not a prime"));
        return nullptr;
    }
    if ((q_bits != 160 && q_bits != 224 && q_bits != 256) || BN_cmp(q.get(), p.get()) >= 0) {
        r.fail("the DSA q has " + std::to_string(q_bits) + " bits; DSA's q has 160, 224 or 256");
        return nullptr;
    }
    if (!in_group_range(g.get(), p.get()) || !in_group_range(y.get(), p.get())) {
        r.fail("the DSA g and y must lie in 2..p-1");
        return nullptr;
    }
    if (!r.rest().empty()) {
        r.fail(std::to_string(r.rest().size()) + " bytes follow the DSA y");
        return nullptr;
    }
    PkeyPtr key = key_from_numbers("DSA", {{OSSL_PKEY_PARAM_FFC_P, p.get()},
                                           {OSSL_PKEY_PARAM_FFC_Q, q.get()},
                                           {OSSL_PKEY_PARAM_FFC_G, g.get()},
                                           {OSSL_PKEY_PARAM_PUB_KEY, y.get()}});
    if (!key) {
        r.fail("OpenSSL refuses the DSA numbers");
        return nullptr;
    }
    // y^q mod p == 1: one modular exponentiation with a q of at most 256 bits. A y outside the
    // group would verify nothing; it is refused here rather than stored.
    const PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
    if (!check)
        throw std::bad_alloc();
    if (EVP_PKEY_public_check(check.get()) != 1) {
        r.fail("the DSA y is not in the subgroup of order q that p and g make");
        return nullptr;
    }
    return key;
}

std::string key_description(EVP_PKEY* key) {
    if (EVP_PKEY_is_a(key, "EC") == 1) {
        char group[64] = {};
        std::size_t length = 0;
        if (EVP_PKEY_get_group_name(key, group, sizeof group, &length) == 1)
            return "an EC key on curve " + std::string(group, length);
    }
    const char* type = EVP_PKEY_get0_type_name(key);
    return std::string("a key of type ") + (type != nullptr ? type : "unknown");
}

/// One DER SubjectPublicKeyInfo on the SM2 curve; nothing after.
PkeyPtr read_sm2(Reader& r) {
    std::string_view der;
    if (!r.field(der, "the SM2 key", kMaxSm2DerBytes))
        return nullptr;
    if (!r.rest().empty()) {
        r.fail(std::to_string(r.rest().size()) + " bytes follow the SM2 key");
        return nullptr;
    }
    const auto* at = reinterpret_cast<const unsigned char*>(der.data());
    PkeyPtr key(d2i_PUBKEY(nullptr, &at, static_cast<long>(der.size())));
    if (!key) {
        r.fail("the SM2 key is not a DER SubjectPublicKeyInfo");
        return nullptr;
    }
    const auto used =
        static_cast<std::size_t>(at - reinterpret_cast<const unsigned char*>(der.data()));
    if (used != der.size()) {
        r.fail("the SM2 key's DER ends " + std::to_string(der.size() - used) +
               " bytes before its field");
        return nullptr;
    }
    if (!is_sm2(key.get())) {
        r.fail("the SM2_PUB_KEY value holds " + key_description(key.get()) +
               ", not a key on the SM2 curve");
        return nullptr;
    }
    return key;
}

/// The type as the message shows it: quoted when it is printable ASCII.
std::string shown_type(std::string_view type) {
    for (const char c : type)
        if (c < 0x20 || c > 0x7e)
            return "of " + std::to_string(type.size()) + " bytes that are not text";
    return "\"" + std::string(type) + "\"";
}

registry::Result<std::string> pem_of(std::string_view bytes) {
    if (bytes.empty())
        return invalid("the value is empty; an HS_PUBKEY value starts with its key type");
    if (bytes.size() > kMaxHsPublicKeyBytes)
        return invalid("the value is " + std::to_string(bytes.size()) + " bytes; at most " +
                       std::to_string(kMaxHsPublicKeyBytes));
    Reader r(bytes);
    std::string_view type;
    std::uint16_t flags = 0;
    if (!r.field(type, "the key type", kMaxTypeBytes) || !r.u16(flags, "the flags"))
        return invalid(r.error());
    PkeyPtr (*read)(Reader&) = nullptr;
    if (type == kRsaType)
        read = read_rsa;
    else if (type == kDsaType)
        read = read_dsa;
    else if (type == kSm2Type)
        read = read_sm2;
    else
        return invalid("key type " + shown_type(type) + " is none of " + std::string(kRsaType) +
                       ", " + std::string(kDsaType) + " and " + std::string(kSm2Type));
    if (flags != 0)
        return invalid("the flags are " + std::to_string(flags) + "; they are reserved and 0");
    const PkeyPtr key = read(r);
    if (!key)
        return invalid(r.error());
    const std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
    if (!bio)
        throw std::bad_alloc();
    char* data = nullptr;
    if (PEM_write_bio_PUBKEY(bio.get(), key.get()) != 1)
        return invalid("OpenSSL cannot write this key as PEM");
    const long size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(size > 0 ? size : 0));
}

} // namespace

std::optional<std::string> hs_public_key_from_pem(std::string_view pem) {
    if (pem.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
        return std::nullopt;
    const std::unique_ptr<BIO, BioFree> bio(
        BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio)
        throw std::bad_alloc();
    const PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
    std::optional<std::string> out;
    if (!key) {
        out = std::nullopt;
    } else if (EVP_PKEY_is_a(key.get(), "RSA") == 1) {
        out = numbers_value(key.get(), kRsaType, {OSSL_PKEY_PARAM_RSA_E, OSSL_PKEY_PARAM_RSA_N});
        if (out)
            put_u32(*out, 0); // HANDLE.NET's trailing int4 0 (see the header): hdl-keygen's bytes
    } else if (EVP_PKEY_is_a(key.get(), "DSA") == 1) {
        out = numbers_value(key.get(), kDsaType,
                            {OSSL_PKEY_PARAM_FFC_Q, OSSL_PKEY_PARAM_FFC_P, OSSL_PKEY_PARAM_FFC_G,
                             OSSL_PKEY_PARAM_PUB_KEY});
    } else if (is_sm2(key.get())) {
        out = sm2_value(key.get());
    }
    // A failed parse leaves its reasons on this thread's OpenSSL error queue, where a later
    // unrelated failure would report them.
    ERR_clear_error();
    return out;
}

registry::Result<std::string> pem_from_hs_public_key(std::string_view bytes) {
    auto pem = pem_of(bytes);
    ERR_clear_error(); // as above
    return pem;
}

} // namespace idnode::node
