// The Handle server's own key pair: published in its site info (HS_SITE) and used to sign the
// answers to requests that set CERT (docs/handle-protocol.md#signed-answers).
//
// Signed answers carry an HS_SIGNED credential laid out as HANDLE.NET 9 writes it (version 0,
// reserved 0, flags 0, signer "" index 0, type "HS_SIGNED", then a section holding the digest
// name "SHA-256" and the RSASSA-PKCS1-v1_5 SHA-256 signature) over the bytes signed_bytes()
// names - checked against the resolve-certified capture of HANDLE.NET 9.3.1.
//
// Thread safety: a ServerKey is immutable after load; sign() may be called from any number of
// threads at once.
#pragma once

#include "idnode/registry/error.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace idnode::resolver::handle {

class ServerKey {
public:
    /// Reads a PEM RSA private key ("BEGIN PRIVATE KEY" or "BEGIN RSA PRIVATE KEY", unencrypted)
    /// of at least 2048 bits. Errc::invalid_value naming the problem otherwise.
    static registry::Result<ServerKey> from_pem(std::string_view private_key_pem);

    /// The public half in HS_PUBKEY encoding (encode_rsa_public_key), for HS_SITE.
    const std::string& public_key() const noexcept { return public_key_; }
    /// The public half as PEM ("BEGIN PUBLIC KEY").
    std::string public_key_pem() const;

    /// RSASSA-PKCS1-v1_5 over SHA-256 of `data` (deterministic: the same bytes give the same
    /// signature). Empty if OpenSSL fails, which callers treat as "cannot sign".
    std::string sign(std::string_view data) const;

private:
    struct Pkey;
    std::shared_ptr<const Pkey> key_;
    std::string public_key_;
};

/// The HS_SIGNED credential (the credential section's content, without its length) for
/// `signature` made with SHA-256.
std::string signed_credential(std::string_view signature);

/// The bytes a response signature covers, as HANDLE.NET's AbstractMessage computes them for the
/// message's version: from 2.8 the envelope's major, minor, suggested major and minor, then the
/// session id, request id and a zero session counter; in 2.6 and 2.7 the same without the
/// suggested version (HANDLE.NET 2.6 clients had a bug here and verify other bytes); before 2.6
/// nothing; then always the header and body. `message` is a whole encoded message (envelope
/// included; a credential after the body is ignored). Empty when `message` is shorter than an
/// envelope and header or its body length overruns it.
std::string signed_bytes(std::string_view message);

/// Checks `signature` (RSASSA-PKCS1-v1_5 or DSA, SHA-256) over `data` with the public key in
/// HS_PUBKEY encoding (RSA or DSA, read by node::pem_from_hs_public_key; false for anything it
/// refuses). For tests and for verifying answers from other servers.
bool verify_signature(std::string_view public_key_hs, std::string_view data,
                      std::string_view signature);

} // namespace idnode::resolver::handle
