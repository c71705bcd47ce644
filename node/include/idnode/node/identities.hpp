// Handle-protocol identities (docs/api.md#identities): the (handle, index) pairs that
// Handle-protocol clients (HANDLE.NET, CAICT ID-SDK, id-pointer-sdk) authenticate as, each holding
// a secret key (HS_SECKEY) or a public key (HS_PUBKEY) and acting with its owning account's
// rights. This service validates and builds the writes (registry::Table::identities) for every
// front end, and finds an identity for the Handle protocol's authentication.
//
// Rules
// - The handle parses as a handle (registry::parse_handle, at most 255 bytes); the index is
//   1..2^31-1. The pair is unique on the node, whichever account holds it (HANDLE.NET names an
//   identity by it alone).
// - Exactly one key: a secret of 1..1024 bytes (kept as given: the challenge-response needs the
//   bytes), or a public key PEM ("BEGIN PUBLIC KEY") that is RSA of at least 2048 bits, DSA of at
//   least 1024 bits, or SM2 (an EC key on the SM2 curve), or the same given as HS_PUBKEY bytes
//   (handle_public_key.hpp: HANDLE.NET's binary encoding, e.g. an admpub.bin), which are turned
//   into PEM first: the stored identity always holds PEM.
// - Who: an admin for any account; an account for itself (the route also asks a token or API-key
//   caller for the current password, as for any lasting credential).
// - Where: the handle must lie where the owning account has standing, because the identity acts
//   with its rights: under a prefix the account owns (enterprise) or was granted (reader), or be
//   "0.NA/<such a prefix>"; an admin account's identities may be any handle. This keeps one
//   enterprise from taking another's 300:88.118.9/ADMIN.
// - An identity is usable (find_identity) only while its account exists and is not disabled;
//   deleting an account deletes its identities (identity_keys_of).
// Reads use the caller's snapshot; nothing here writes. Thread safety: pure functions.
#pragma once

#include "idnode/node/outcome.hpp"
#include "idnode/node/principal.hpp"
#include "idnode/registry/admin.hpp"
#include "idnode/registry/registry.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace idnode::node {

inline constexpr std::size_t kMaxIdentitySecretBytes = 1024;
inline constexpr std::size_t kMaxIdentityPublicKeyBytes = 16 * 1024;
inline constexpr int kMinIdentityRsaBits = 2048;
inline constexpr int kMinIdentityDsaBits = 1024;

/// What a client asks to register for an account.
struct IdentityRequest {
    std::string handle;
    std::int64_t index = 0; // wider than the stored int32 so that out-of-range input is refused
    std::optional<std::string> secret_key;
    std::optional<std::string> public_key_pem;
    std::optional<std::string> public_key_hs; // HS_PUBKEY bytes (raw, not base64)
};

/// Why `pem` is not an acceptable identity public key (not a SubjectPublicKeyInfo PEM, a private
/// key, RSA below 2048 bits, DSA below 1024 bits, EC on another curve than SM2, another
/// algorithm), or nullopt. The message names the problem.
std::optional<std::string> public_key_refusal(std::string_view pem);

/// Why `who` may not manage the identities of account `account` (unauthorized: anonymous;
/// forbidden: neither an admin nor that account), or nullopt.
std::optional<Refusal> identity_access_refusal(const Principal& who, std::string_view account);

/// A validated identity and the write that stores it.
struct PreparedIdentity {
    std::optional<Refusal> refusal; // set when refused (nothing to write)
    registry::Identity identity;    // when not refused
    /// The PutEntry (PutMode::create) that stores `identity`. The route answers `conflict` when
    /// it fails with already_exists or reports unchanged (a racing identical create).
    registry::PutEntry entry() const;
};

/// Validates `request` for `owner` (the account record, read by the caller under its lock) on
/// behalf of `who`. Refusals: unauthorized / forbidden (identity_access_refusal, or a handle where
/// the owner has no standing), invalid (handle, index, keys: not exactly one of secret_key,
/// public_key_pem and public_key_hs; HS_PUBKEY bytes that pem_from_hs_public_key refuses, or whose
/// key public_key_refusal refuses, with the message naming public_key_hs), conflict (the pair
/// exists).
PreparedIdentity prepare_identity(const registry::ReadSnapshot& snapshot, const Principal& who,
                                  const registry::Account& owner, IdentityRequest request,
                                  std::int64_t now);

/// The identities of `account` in key order; refused like identity_access_refusal.
struct IdentityList {
    std::optional<Refusal> refusal;
    std::vector<registry::Identity> identities;
};
IdentityList list_identities(const registry::ReadSnapshot& snapshot, const Principal& who,
                             std::string_view account);

/// The DeleteEntry of identity (handle, index) of `account`. Refusals: unauthorized /
/// forbidden, invalid (index out of range), not_found (no such identity of that account; an
/// identity of another account is not_found too, so that its existence is not disclosed).
struct IdentityRemoval {
    std::optional<Refusal> refusal;
    registry::DeleteEntry entry; // when not refused
};
IdentityRemoval prepare_identity_removal(const registry::ReadSnapshot& snapshot,
                                         const Principal& who, std::string_view account,
                                         std::string_view handle, std::int64_t index);

/// The entry keys of every identity of `username` (a scan: account deletion only).
std::vector<std::string> identity_keys_of(const registry::ReadSnapshot& snapshot,
                                          std::string_view username);

/// For the Handle protocol: the identity (handle as the client spelled it, any case) and the
/// principal it acts as (its account's role and prefixes; credential `none`: neither a password
/// nor a bearer credential).
struct FoundIdentity {
    /// ok; not_found (no such identity, an index out of range, or its account no longer
    /// exists); unauthorized (its account is disabled); internal (a stored entry is corrupt).
    Outcome outcome = Outcome::internal;
    std::string message;
    registry::Identity identity;
    Principal principal;

    bool ok() const noexcept { return outcome == Outcome::ok; }
};
FoundIdentity find_identity(const registry::ReadSnapshot& snapshot, std::string_view handle,
                            std::int64_t index);

} // namespace idnode::node
