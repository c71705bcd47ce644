// Identifier grammar (docs/identifiers.md#grammar): `handle = prefix "/" suffix`, split at the
// first '/'.
//
// - Prefix: one or more non-empty segments joined by '.'; a segment is ASCII letters, digits,
//   '-' or '_' (IDIS prefixes are digits: `88.118.8`; Handle's own `0.NA` uses letters).
// - Suffix: any UTF-8 except control characters (< 0x20 and 0x7F); non-empty; may contain '/'.
// - The whole handle is at most `max_length` bytes (default 255, at most 2048, the Handle limit).
// - Invalid UTF-8 (overlong forms, surrogates, > U+10FFFF, truncated sequences) is rejected,
//   never repaired.
// - Matching is ASCII case-insensitive: the lookup key is the handle with a-z upper-cased; the
//   caller's spelling is kept alongside.
//
// Thread safety: everything here is pure and re-entrant.
#pragma once

#include "idnode/registry/error.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace idnode::registry {

inline constexpr std::size_t kDefaultMaxHandleLength = 255;
inline constexpr std::size_t kHandleProtocolMaxLength = 2048;

struct HandleLimits {
    std::size_t max_length = kDefaultMaxHandleLength; // clamped to kHandleProtocolMaxLength
};

/// A validated identifier. Cheap to move; owns its strings.
class Handle {
public:
    /// The identifier as the caller spelled it.
    const std::string& spelling() const noexcept { return spelling_; }
    /// The lookup key: spelling with ASCII a-z upper-cased.
    const std::string& key() const noexcept { return key_; }
    std::string_view prefix() const noexcept {
        return std::string_view(spelling_).substr(0, split_);
    }
    std::string_view suffix() const noexcept {
        return std::string_view(spelling_).substr(split_ + 1);
    }
    /// Case-folded prefix (the key's part before '/').
    std::string_view prefix_key() const noexcept {
        return std::string_view(key_).substr(0, split_);
    }

private:
    friend Status parse_handle(std::string_view, const HandleLimits&, Handle&);
    std::string spelling_;
    std::string key_;
    std::size_t split_ = 0; // position of the first '/'
};

/// Validates `text` as a handle. The error message names the problem precisely, e.g.
/// "suffix contains control character 0x09 at byte 14" or "invalid UTF-8 at byte 7".
Result<Handle> parse_handle(std::string_view text, const HandleLimits& limits = {});

/// The same, into `out` (reusing its buffers: no allocation once they are large enough, for
/// loops over millions of handles). On failure `out` is left unchanged.
Status parse_handle(std::string_view text, const HandleLimits& limits, Handle& out);

/// Validates a prefix on its own (`88.118.8`) and returns its case-folded form.
Result<std::string> parse_prefix(std::string_view text);

/// ASCII a-z -> A-Z; every other byte unchanged (so UTF-8 stays valid).
std::string fold_case(std::string_view text);

/// True if `a` and `b` are equal under ASCII case folding.
bool equals_folded(std::string_view a, std::string_view b) noexcept;

/// Returns the byte offset of the first invalid UTF-8 sequence, or npos if `text` is valid.
std::size_t find_invalid_utf8(std::string_view text) noexcept;

/// The longest prefix of `text` of at most `max_bytes` bytes that does not end inside a UTF-8
/// sequence: for quoting the start of a client's text in a message (a message cut in the middle
/// of a character is not UTF-8, and the JSON answer carrying it would not be valid).
std::string_view utf8_prefix(std::string_view text, std::size_t max_bytes) noexcept;

/// True if `prefix_key` (folded) equals `prefix` or lies below it (`88.118.8` is under `88.118`).
bool prefix_is_under(std::string_view prefix_key, std::string_view parent_key) noexcept;

} // namespace idnode::registry
