// Key pairs for Handle-protocol identities (`idctl account identity add --generate-key-pair`):
// a fresh RSA-2048 key whose private half goes to a file only its owner can read and whose public
// half is registered on the node. OpenSSL does the work; nothing here talks to the node.
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>

namespace idnode::idctl {

struct KeyPair {
    std::string private_key_pem; // PKCS#8 "BEGIN PRIVATE KEY", unencrypted
    std::string public_key_pem;  // SubjectPublicKeyInfo "BEGIN PUBLIC KEY"
};

/// A new RSA key pair of `bits` bits; nullopt (with `error` set) when OpenSSL fails.
std::optional<KeyPair> generate_rsa_key_pair(int bits, std::string& error);

/// Creates `path` with mode 0600 and writes `text`; refuses an existing file (a key must never
/// be overwritten by accident). False with `error` set on failure (nothing is left behind).
bool write_private_file(const std::string& path, const std::string& text, std::string& error);

} // namespace idnode::idctl
