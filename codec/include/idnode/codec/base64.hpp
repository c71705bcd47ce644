// Base64 (RFC 4648), the one encoder and decoder of the project: value data in the JSON forms
// (docs/data-model.md#values), HTTP Basic credentials (resolver and SDK).
// No registry types: the SDK links this without the registry.
#pragma once

#include <string>
#include <string_view>

namespace idnode::codec {

/// Standard alphabet, padded.
std::string base64_encode(std::string_view bytes);

/// Accepts the standard and the URL-safe alphabet, with or without padding; false (and `out`
/// unspecified) on any other character or an impossible length.
bool base64_decode(std::string_view text, std::string& out);

} // namespace idnode::codec
