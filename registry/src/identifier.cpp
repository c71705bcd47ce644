#include "idnode/registry/identifier.hpp"

#include "idnode/codec/utf8.hpp"

#include <algorithm>
#include <cstdio>
#include <optional>

namespace idnode::registry {
namespace {

Error invalid(std::string message) {
    return Error{Errc::invalid_handle, std::move(message)};
}

std::string hex_byte(unsigned char c) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02X", c);
    return buf;
}

bool is_prefix_char(unsigned char c) noexcept {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-' ||
           c == '_';
}

// Checks prefix grammar; `offset` is only used to report positions within the whole handle.
std::optional<Error> check_prefix(std::string_view prefix) {
    if (prefix.empty()) {
        return invalid("prefix is empty");
    }
    std::size_t segment_start = 0;
    for (std::size_t i = 0; i <= prefix.size(); ++i) {
        if (i == prefix.size() || prefix[i] == '.') {
            if (i == segment_start) {
                return invalid("prefix has an empty segment at byte " + std::to_string(i));
            }
            segment_start = i + 1;
            continue;
        }
        const auto c = static_cast<unsigned char>(prefix[i]);
        if (!is_prefix_char(c)) {
            return invalid(
                "prefix contains " +
                (c < 0x20 || c >= 0x7F ? hex_byte(c) : "'" + std::string(1, char(c)) + "'") +
                " at byte " + std::to_string(i) + " (allowed: letters, digits, '-', '_', '.')");
        }
    }
    return std::nullopt;
}

} // namespace

std::string_view utf8_prefix(std::string_view text, std::size_t max_bytes) noexcept {
    if (text.size() <= max_bytes)
        return text;
    std::size_t cut = max_bytes;
    // text[cut] is the first byte left out; while it continues a sequence, leave out its start.
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80)
        --cut;
    return text.substr(0, cut);
}

std::size_t find_invalid_utf8(std::string_view text) noexcept {
    return codec::find_invalid_utf8(text); // the project's one validator (header-only)
}

std::string fold_case(std::string_view text) {
    std::string out(text);
    for (auto& ch : out) {
        if (ch >= 'a' && ch <= 'z') {
            ch = static_cast<char>(ch - 'a' + 'A');
        }
    }
    return out;
}

bool equals_folded(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'a' && x <= 'z')
            x = static_cast<char>(x - 32);
        if (y >= 'a' && y <= 'z')
            y = static_cast<char>(y - 32);
        if (x != y) {
            return false;
        }
    }
    return true;
}

bool prefix_is_under(std::string_view prefix_key, std::string_view parent_key) noexcept {
    if (prefix_key.size() < parent_key.size() ||
        prefix_key.substr(0, parent_key.size()) != parent_key) {
        return false;
    }
    return prefix_key.size() == parent_key.size() || prefix_key[parent_key.size()] == '.';
}

Result<std::string> parse_prefix(std::string_view text) {
    if (auto error = check_prefix(text)) {
        return std::move(*error);
    }
    return fold_case(text);
}

namespace {

/// The checks of parse_handle; returns the position of the first '/' (or the error).
Result<std::size_t> check_handle(std::string_view text, const HandleLimits& limits) {
    const std::size_t max_length = std::min(limits.max_length, kHandleProtocolMaxLength);
    if (text.empty()) {
        return invalid("identifier is empty");
    }
    if (text.size() > max_length) {
        return invalid("identifier is " + std::to_string(text.size()) + " bytes; the limit is " +
                       std::to_string(max_length));
    }
    const std::size_t slash = text.find('/');
    if (slash == std::string_view::npos) {
        return invalid("identifier has no '/' between prefix and suffix");
    }
    if (auto error = check_prefix(text.substr(0, slash))) {
        return std::move(*error);
    }
    const std::string_view suffix = text.substr(slash + 1);
    if (suffix.empty()) {
        return invalid("suffix is empty");
    }
    for (std::size_t i = 0; i < suffix.size(); ++i) {
        const auto c = static_cast<unsigned char>(suffix[i]);
        if (c < 0x20 || c == 0x7F) {
            return invalid("suffix contains control character " + hex_byte(c) + " at byte " +
                           std::to_string(slash + 1 + i));
        }
    }
    if (const auto bad = find_invalid_utf8(suffix); bad != std::string_view::npos) {
        return invalid("suffix is not valid UTF-8 at byte " + std::to_string(slash + 1 + bad));
    }
    return slash;
}

} // namespace

Result<Handle> parse_handle(std::string_view text, const HandleLimits& limits) {
    Handle handle;
    if (Status st = parse_handle(text, limits, handle); !st) {
        return st.error();
    }
    return handle;
}

Status parse_handle(std::string_view text, const HandleLimits& limits, Handle& out) {
    auto slash = check_handle(text, limits);
    if (!slash) {
        return slash.error();
    }
    out.spelling_.assign(text);
    out.key_.assign(text);
    for (char& ch : out.key_) {
        if (ch >= 'a' && ch <= 'z') {
            ch = static_cast<char>(ch - 'a' + 'A');
        }
    }
    out.split_ = *slash;
    return {};
}

} // namespace idnode::registry
