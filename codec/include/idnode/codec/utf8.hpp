// UTF-8 checks, the one validator of the project (identifiers, value types, templates, and the
// choice between the "string" and "base64" data formats of a value). Header-only and free of
// registry types so that the registry below and the SDK (which links no registry) use the same
// code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace idnode::codec {

/// Offset of the first byte that does not start a valid UTF-8 sequence (RFC 3629: no overlong
/// forms, no surrogates, nothing above U+10FFFF), or npos when `text` is valid UTF-8.
inline std::size_t find_invalid_utf8(std::string_view text) noexcept {
    const auto* s = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t n = text.size();
    std::size_t i = 0;
    while (i < n) {
        const unsigned char c = s[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t len;
        std::uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return i; // continuation byte, overlong lead (C0/C1) or > F4
        }
        if (n - i < len) {
            return i;
        }
        for (std::size_t k = 1; k < len; ++k) {
            if ((s[i + k] & 0xC0) != 0x80) {
                return i;
            }
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF)) {
            return i; // overlong, out of range or surrogate
        }
        i += len;
    }
    return std::string_view::npos;
}

/// Text as the JSON forms show it: valid UTF-8 without NUL. Anything else is shown as base64.
inline bool is_text(std::string_view bytes) noexcept {
    return find_invalid_utf8(bytes) == std::string_view::npos &&
           bytes.find('\0') == std::string_view::npos;
}

} // namespace idnode::codec
