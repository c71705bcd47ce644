// Challenge-response as the Handle clients implement it (docs/handle-protocol.md#authentication):
// the server answers an administrative request with RC 402 carrying a 16-byte nonce and the
// SHA-256 digest of the request's header and body; the client proves its identity with
// RESPONSE_TO_CHALLENGE (opcode 200), whose body names the key type, the identity (handle, index)
// and a "signed response" over nonce || digest.
//
// Secret keys (HS_SECKEY), signed response = algorithm byte, then:
//   0x12  HMAC-SHA1(secret, nonce || digest), to the end of the signed response
//   0x13  HMAC-SHA256(secret, nonce || digest), likewise
//   0x22  int4 16 + salt, int4 iterations, int4 key bits, int4 20 + HMAC-SHA1(PBKDF2-HMAC-SHA1(
//         secret, salt, iterations, bits / 8), nonce || digest) - what HANDLE.NET's Java client
//         sends from protocol 2.7 on
// Public keys (HS_PUBKEY), signed response = int4-length digest name ("SHA-256", "SHA1"),
// int4-length signature: RSASSA-PKCS1-v1_5 or DSA over nonce || digest; or "SM3" and a DER SM2
// signature over SM3(nonce || digest) with the identity handle as the SM2 user id, as
// id-pointer-sdk signs (read from its source; no capture of it exists).
//
// Pure functions; thread-safe.
#pragma once

#include "idnode/resolver/handle_protocol.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace idnode::resolver::handle {

inline constexpr std::string_view kSecretKeyAuth = "HS_SECKEY";
inline constexpr std::string_view kPublicKeyAuth = "HS_PUBKEY";

/// RESPONSE_TO_CHALLENGE (opcode 200) body.
struct ChallengeAnswer {
    std::string_view auth_type; // kSecretKeyAuth or kPublicKeyAuth (anything else: unsupported)
    std::string_view identity_handle;
    std::int32_t identity_index = 0;
    std::string_view signed_response;
};
Decoded<ChallengeAnswer> decode_challenge_answer(std::string_view body);
void encode_challenge_answer(std::string& out, const ChallengeAnswer& answer);

enum class ProofCheck : std::uint8_t {
    valid,
    mismatch,    // well-formed, but not made with this key: RC 403
    unsupported, // an algorithm or key type this server does not verify: RC 404
    malformed,   // the signed response cannot be read: RC 404
};

/// Most PBKDF2 iterations accepted: the client picks the count, so an unbounded one would let it
/// make the server spin. HANDLE.NET's client uses 10,000.
inline constexpr std::uint32_t kMaxPbkdf2Iterations = 100'000;

/// Checks an HS_SECKEY signed response. `nonce` and `digest` are the raw bytes of the challenge.
ProofCheck verify_secret_key_proof(std::string_view secret, std::string_view nonce,
                                   std::string_view digest, std::string_view signed_response);

/// Checks an HS_PUBKEY signed response against a PEM public key (RSA or DSA; SM2 with the
/// identity handle as the signer's user id, `identity_handle`).
ProofCheck verify_public_key_proof(std::string_view public_key_pem, std::string_view nonce,
                                   std::string_view digest, std::string_view signed_response,
                                   std::string_view identity_handle = {});

/// The signed responses a client makes (tests, the C++ SDK).
std::string secret_key_proof_pbkdf2(std::string_view secret, std::string_view salt,
                                    std::uint32_t iterations, std::string_view nonce,
                                    std::string_view digest);
std::string secret_key_proof_hmac_sha256(std::string_view secret, std::string_view nonce,
                                         std::string_view digest);

} // namespace idnode::resolver::handle
