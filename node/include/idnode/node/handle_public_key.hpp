// HS_PUBKEY values: public keys in the binary encodings the Handle-protocol clients store in
// handles and key files, converted to and from PEM "BEGIN PUBLIC KEY" (SubjectPublicKeyInfo), the
// form identities keep (docs/handle-protocol.md#public-key-encodings).
//
// Encodings (int4: big-endian 32-bit length, then that many bytes; int2: big-endian 16 bits):
//   RSA  int4 "RSA_PUB_KEY", int2 flags, int4 exponent, int4 modulus, int4 0
//   DSA  int4 "DSA_PUB_KEY", int2 flags, int4 q, int4 p, int4 g, int4 y
//   SM2  int4 "SM2_PUB_KEY", int2 flags, int4 SubjectPublicKeyInfo DER
// - RSA and DSA are HANDLE.NET's (hdllib Util.getBytesFromPublicKey / getPublicKeyFromBytes).
//   Numbers are written as Java's BigInteger.toByteArray() writes them (big-endian two's
//   complement: a 0x00 leads when the top bit is set) and read back as unsigned magnitudes.
//   Flags are reserved: written 0, never read by HANDLE.NET. Its RSA writer sizes the buffer for
//   four length fields and fills three, so an RSA value ends in int4 0 that its reader ignores.
// - SM2 is id-pointer-sdk's (Common.KEY_ENCODING_SM2_PUB_KEY; its UtilTest builds the value):
//   the type, flags 0 and the key's X.509 encoding (Java's PublicKey.getEncoded(), i.e. the DER
//   SubjectPublicKeyInfo: id-ecPublicKey on the SM2 curve). HANDLE.NET knows no SM2 key.
// - A HANDLE.NET public key file (hdl-keygen's admpub.bin) holds exactly these bytes, with no
//   header. Only private key files (admpriv.bin) start with an int4 encryption flag (0 to 8);
//   no type length is that small, which is how HANDLE.NET's KeyConverter tells the two apart.
//
// Thread safety: pure functions. Errors are values.
#pragma once

#include "idnode/registry/error.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace idnode::node {

/// The largest HS_PUBKEY value read: as much as a PEM identity key may be (identities.hpp).
inline constexpr std::size_t kMaxHsPublicKeyBytes = 16 * 1024;

/// HANDLE.NET's HS_PUBKEY value bytes for a PEM public key: RSA and DSA in HANDLE.NET's binary
/// encoding (byte for byte what hdl-keygen writes, the RSA value's trailing int4 0 included), SM2
/// as id-pointer-sdk stores it ("SM2_PUB_KEY", flags, DER). nullopt when the PEM holds no
/// "BEGIN PUBLIC KEY" block of such a key. No size minimum here: public_key_refusal has those.
std::optional<std::string> hs_public_key_from_pem(std::string_view pem);

/// The inverse: a "BEGIN PUBLIC KEY" PEM for HS_PUBKEY bytes (RSA, DSA, SM2 as above).
/// Errc::invalid_value with a message naming the problem for bytes that are not such a key:
/// empty or over kMaxHsPublicKeyBytes; a field cut short or a length with the sign bit set; a type
/// other than the three; flags other than 0; a number that is empty, zero or out of the range
/// OpenSSL verifies with (RSA modulus up to 16384 bits, odd, exponent odd, 3 to modulus - 1;
/// DSA p up to 10000 bits, q of 160, 224 or 256 bits, g and y in 2..p-1 with y of order q); an SM2
/// field that is not one DER SubjectPublicKeyInfo of a key on the SM2 curve; anything after the
/// last field (an RSA value may end in int4 0, as HANDLE.NET writes it). The bytes are untrusted:
/// every length is checked before it is used.
registry::Result<std::string> pem_from_hs_public_key(std::string_view bytes);

} // namespace idnode::node
