// Hexadecimal digits, header-only: the one decoder of a hex digit, shared by the registry's wire
// helpers, percent-decoding in the resolver and the codec. Thread safety: pure functions.
#pragma once

namespace idnode::codec {

/// The value of the hex digit `c` ('0'-'9', 'a'-'f', 'A'-'F'), or -1 for anything else.
constexpr int hex_digit(char c) noexcept {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

} // namespace idnode::codec
