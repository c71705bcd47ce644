#include "idnode/node/identities.hpp"

#include "idnode/node/handle_public_key.hpp"
#include "idnode/node/policy.hpp"
#include "idnode/registry/identifier.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>

namespace idnode::node {
using registry::Errc;
using registry::Identity;
using registry::IdentityKeyKind;

namespace {

constexpr std::int64_t kMaxIndex = 0x7fffffff;

Refusal invalid(std::string message) {
    return Refusal{Outcome::invalid, {}, std::move(message), {}};
}

std::optional<Refusal> index_refusal(std::int64_t index) {
    if (index < 1 || index > kMaxIndex)
        return invalid("index must be 1 to 2147483647");
    return std::nullopt;
}

/// The prefix whose standing an identity handle needs: "0.NA/<prefix>" names the prefix itself
/// (Handle's prefix handles), any other handle its own prefix. Folded.
std::string standing_prefix(const registry::Handle& handle) {
    if (handle.prefix_key() == "0.NA")
        return std::string(std::string_view(handle.key()).substr(handle.prefix().size() + 1));
    return std::string(handle.prefix_key());
}

Principal principal_of(const registry::Account& account) {
    Principal p;
    p.username = account.username;
    p.role = account.role;
    p.prefixes = account.prefixes;
    return p;
}

struct PkeyFree {
    void operator()(EVP_PKEY* key) const noexcept { EVP_PKEY_free(key); }
};
struct BioFree {
    void operator()(BIO* bio) const noexcept { BIO_free(bio); }
};

/// public_key_refusal, its messages naming the request field `field` the key came from.
std::optional<std::string> key_refusal(std::string_view pem, const std::string& field) {
    if (pem.empty() || pem.size() > kMaxIdentityPublicKeyBytes)
        return field + " must be a PEM of 1 to " + std::to_string(kMaxIdentityPublicKeyBytes) +
               " bytes";
    if (pem.find("PRIVATE KEY") != std::string_view::npos)
        return field + " is a private key: register only its public half (BEGIN PUBLIC KEY)";
    if (pem.find("-----BEGIN PUBLIC KEY-----") == std::string_view::npos)
        return field + " must be a PEM \"BEGIN PUBLIC KEY\" block";
    std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio)
        throw std::bad_alloc();
    std::unique_ptr<EVP_PKEY, PkeyFree> key(
        PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
    if (!key)
        return field + " does not parse as a public key";
    const int bits = EVP_PKEY_get_bits(key.get());
    if (EVP_PKEY_is_a(key.get(), "RSA")) {
        if (bits < kMinIdentityRsaBits)
            return field + " is RSA of " + std::to_string(bits) + " bits; at least " +
                   std::to_string(kMinIdentityRsaBits) + " are needed";
        return std::nullopt;
    }
    if (EVP_PKEY_is_a(key.get(), "DSA")) {
        if (bits < kMinIdentityDsaBits)
            return field + " is DSA of " + std::to_string(bits) + " bits; at least " +
                   std::to_string(kMinIdentityDsaBits) + " are needed";
        return std::nullopt;
    }
    if (EVP_PKEY_is_a(key.get(), "SM2"))
        return std::nullopt;
    if (EVP_PKEY_is_a(key.get(), "EC")) {
        char group[64] = {};
        std::size_t length = 0;
        if (EVP_PKEY_get_group_name(key.get(), group, sizeof group, &length) == 1 &&
            std::string_view(group, length) == "SM2")
            return std::nullopt;
        return field + " is an EC key on curve " +
               (length > 0 ? std::string(group, length) : std::string("(unnamed)")) +
               "; only the SM2 curve is accepted";
    }
    const char* type = EVP_PKEY_get0_type_name(key.get());
    return field + " is a " + std::string(type ? type : "key of unknown type") +
           " key; RSA, DSA or SM2 are accepted";
}

} // namespace

std::optional<std::string> public_key_refusal(std::string_view pem) {
    return key_refusal(pem, "public_key");
}

std::optional<Refusal> identity_access_refusal(const Principal& who, std::string_view account) {
    if (who.anonymous())
        return Refusal{Outcome::unauthorized, {}, "authentication is needed", {}};
    if (!who.is_admin() && who.username != account)
        return Refusal{Outcome::forbidden, {}, "only an admin or the account itself", {}};
    return std::nullopt;
}

registry::PutEntry PreparedIdentity::entry() const {
    return registry::PutEntry{
        registry::Table::identities,
        registry::identity_key(registry::fold_case(identity.handle), identity.index),
        registry::encode_identity(identity), registry::PutMode::create};
}

PreparedIdentity prepare_identity(const registry::ReadSnapshot& snapshot, const Principal& who,
                                  const registry::Account& owner, IdentityRequest request,
                                  std::int64_t now) {
    PreparedIdentity out;
    if ((out.refusal = identity_access_refusal(who, owner.username)))
        return out;
    auto handle = registry::parse_handle(request.handle);
    if (!handle) {
        out.refusal = invalid("handle: " + handle.error().message);
        return out;
    }
    if ((out.refusal = index_refusal(request.index)))
        return out;
    if (request.secret_key.has_value() + request.public_key_pem.has_value() +
            request.public_key_hs.has_value() !=
        1) {
        out.refusal = invalid("give exactly one of secret_key, public_key and public_key_hs");
        return out;
    }
    Identity& identity = out.identity;
    if (request.secret_key) {
        if (request.secret_key->empty() || request.secret_key->size() > kMaxIdentitySecretBytes) {
            out.refusal = invalid("secret_key must be 1 to " +
                                  std::to_string(kMaxIdentitySecretBytes) + " bytes");
            return out;
        }
        identity.kind = IdentityKeyKind::secret;
        identity.secret = std::move(*request.secret_key);
    } else {
        std::string field = "public_key";
        if (request.public_key_hs) {
            // The binary form is only a way in: stored, listed and used as PEM like any other.
            auto pem = pem_from_hs_public_key(*request.public_key_hs);
            if (!pem) {
                out.refusal = invalid("public_key_hs: " + pem.error().message);
                return out;
            }
            request.public_key_pem = std::move(*pem);
            field = "public_key_hs";
        }
        if (auto why = key_refusal(*request.public_key_pem, field)) {
            out.refusal = invalid(std::move(*why));
            return out;
        }
        identity.kind = IdentityKeyKind::public_key;
        identity.public_key_pem = std::move(*request.public_key_pem);
    }
    const std::string standing = standing_prefix(*handle);
    if (owner.role != registry::Role::admin &&
        !may_read_private(snapshot, principal_of(owner), standing)) {
        out.refusal = Refusal{Outcome::forbidden,
                              "identity_outside_prefixes",
                              "account " + owner.username + " may hold identities only under " +
                                  "prefixes it owns or was granted (or 0.NA/<such a prefix>); " +
                                  handle->spelling() + " is not",
                              {}};
        return out;
    }
    identity.handle = handle->spelling();
    identity.index = static_cast<std::int32_t>(request.index);
    identity.account = owner.username;
    identity.created = now;
    const std::string key = registry::identity_key(handle->key(), identity.index);
    if (snapshot.get_entry(registry::Table::identities, key)) {
        out.refusal = Refusal{Outcome::conflict,
                              "already_exists",
                              "identity " + std::to_string(identity.index) + ":" + handle->key() +
                                  " already exists",
                              {}};
        return out;
    }
    return out;
}

IdentityList list_identities(const registry::ReadSnapshot& snapshot, const Principal& who,
                             std::string_view account) {
    IdentityList out;
    if ((out.refusal = identity_access_refusal(who, account)))
        return out;
    snapshot.for_each_identity(
        [&](const std::string&, const Identity& identity) { out.identities.push_back(identity); },
        account);
    return out;
}

IdentityRemoval prepare_identity_removal(const registry::ReadSnapshot& snapshot,
                                         const Principal& who, std::string_view account,
                                         std::string_view handle, std::int64_t index) {
    IdentityRemoval out;
    if ((out.refusal = identity_access_refusal(who, account)))
        return out;
    if ((out.refusal = index_refusal(index)))
        return out;
    auto identity = snapshot.identity(handle, static_cast<std::int32_t>(index));
    if (identity.code() == Errc::corrupt) {
        out.refusal = Refusal{Outcome::internal, "corrupt", identity.error().message, {}};
        return out;
    }
    if (!identity || identity->account != account) {
        out.refusal = Refusal{Outcome::not_found,
                              {},
                              "account " + std::string(account) + " has no identity " +
                                  std::to_string(index) + ":" + std::string(handle),
                              {}};
        return out;
    }
    out.entry = registry::DeleteEntry{
        registry::Table::identities,
        registry::identity_key(registry::fold_case(identity->handle), identity->index)};
    return out;
}

std::vector<std::string> identity_keys_of(const registry::ReadSnapshot& snapshot,
                                          std::string_view username) {
    std::vector<std::string> keys;
    snapshot.for_each_identity(
        [&](const std::string& key, const Identity&) { keys.push_back(key); }, username);
    return keys;
}

FoundIdentity find_identity(const registry::ReadSnapshot& snapshot, std::string_view handle,
                            std::int64_t index) {
    FoundIdentity out;
    const std::string name = std::to_string(index) + ":" + std::string(handle);
    if (index < 1 || index > kMaxIndex) {
        out.outcome = Outcome::not_found;
        out.message = "identity " + name + " does not exist";
        return out;
    }
    auto identity = snapshot.identity(handle, static_cast<std::int32_t>(index));
    if (!identity) {
        out.outcome = outcome_of(identity.code());
        out.message = identity.error().message;
        return out;
    }
    auto account = snapshot.account(identity->account);
    if (!account) {
        out.outcome = account.code() == Errc::not_found ? Outcome::not_found : Outcome::internal;
        out.message = account.code() == Errc::not_found
                          ? "identity " + name + " belongs to no account"
                          : account.error().message;
        return out;
    }
    if (account->disabled) {
        out.outcome = Outcome::unauthorized;
        out.message = "account " + account->username + " of identity " + name + " is disabled";
        return out;
    }
    out.outcome = Outcome::ok;
    out.identity = std::move(identity).value();
    out.principal = principal_of(*account);
    return out;
}

} // namespace idnode::node
