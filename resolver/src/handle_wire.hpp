// Big-endian primitives for the Handle protocol codec. Internal to resolver/ (the registry keeps
// its own; the two layers share the value encoding, not code).
#pragma once

#include "idnode/resolver/handle_protocol.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace idnode::resolver::handle::wire {

inline void put_u8(std::string& out, std::uint8_t v) {
    out.push_back(static_cast<char>(v));
}

inline void put_u16(std::string& out, std::uint16_t v) {
    const char b[2] = {static_cast<char>(v >> 8), static_cast<char>(v)};
    out.append(b, 2);
}

inline void put_u32(std::string& out, std::uint32_t v) {
    const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                       static_cast<char>(v >> 8), static_cast<char>(v)};
    out.append(b, 4);
}

/// Overwrites 4 bytes at `at` (used to patch lengths once a message is complete).
inline void patch_u32(std::string& out, std::size_t at, std::uint32_t v) {
    out[at] = static_cast<char>(v >> 24);
    out[at + 1] = static_cast<char>(v >> 16);
    out[at + 2] = static_cast<char>(v >> 8);
    out[at + 3] = static_cast<char>(v);
}

inline void put_bytes(std::string& out, std::string_view bytes) {
    put_u32(out, static_cast<std::uint32_t>(bytes.size()));
    out.append(bytes);
}

/// BigInteger.toByteArray() of a non-negative big-endian magnitude: minimal two's complement
/// (leading zeros dropped, one 0x00 added when the top bit is set), as HANDLE.NET writes key
/// parts.
inline std::string twos_complement_magnitude(std::string_view magnitude) {
    const std::size_t first = magnitude.find_first_not_of('\0');
    std::string out;
    if (first == std::string_view::npos) {
        out.push_back('\0');
        return out;
    }
    magnitude.remove_prefix(first);
    if ((static_cast<unsigned char>(magnitude.front()) & 0x80) != 0) {
        out.push_back('\0');
    }
    out.append(magnitude);
    return out;
}

inline std::uint32_t load_u32(const char* p) noexcept {
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    return (std::uint32_t{u[0]} << 24) | (std::uint32_t{u[1]} << 16) | (std::uint32_t{u[2]} << 8) |
           std::uint32_t{u[3]};
}

inline std::uint16_t load_u16(const char* p) noexcept {
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    return static_cast<std::uint16_t>((u[0] << 8) | u[1]);
}

/// A bounds-checked reader. Each read either succeeds completely or fails, leaving the position
/// unchanged and recording why (the first failure sticks, so a chain of reads can be checked
/// once at the end). Lengths and counts are Java ints on the wire: the sign bit is an error.
class Reader {
public:
    explicit Reader(std::string_view bytes, std::size_t base_offset = 0) noexcept
        : data_(bytes), base_(base_offset) {}

    std::size_t remaining() const noexcept { return data_.size() - pos_; }
    std::size_t position() const noexcept { return pos_; }
    std::string_view rest() const noexcept { return data_.substr(pos_); }
    bool failed() const noexcept { return failed_; }
    const WireError& error() const noexcept { return error_; }

    bool fail(WireErrc code, const char* detail) noexcept { return fail_at(code, pos_, detail); }

    bool u8(std::uint8_t& v, const char* what) noexcept {
        if (!need(1, what)) {
            return false;
        }
        v = static_cast<std::uint8_t>(data_[pos_++]);
        return true;
    }
    bool u16(std::uint16_t& v, const char* what) noexcept { return fixed<load_u16>(v, what); }
    bool u32(std::uint32_t& v, const char* what) noexcept { return fixed<load_u32>(v, what); }
    bool i32(std::int32_t& v, const char* what) noexcept {
        std::uint32_t u = 0;
        if (!u32(u, what)) {
            return false;
        }
        v = static_cast<std::int32_t>(u);
        return true;
    }
    /// A count of items each at least `min_item_bytes` long: non-negative and not more than the
    /// remaining bytes could hold, so callers may reserve() for it safely.
    bool count(std::uint32_t& n, std::size_t min_item_bytes, const char* what) noexcept {
        const std::size_t start = pos_;
        if (!u32(n, what)) {
            return false;
        }
        if (n > 0x7FFF'FFFFu) {
            pos_ = start;
            return fail_at(WireErrc::negative_length, start, what);
        }
        if (min_item_bytes > 0 && n > remaining() / min_item_bytes) {
            pos_ = start;
            return fail_at(WireErrc::length_overrun, start, what);
        }
        return true;
    }
    /// A length-prefixed byte string.
    bool bytes(std::string_view& v, const char* what) noexcept {
        std::uint32_t n = 0;
        if (!count(n, 1, what)) {
            return false;
        }
        v = data_.substr(pos_, n);
        pos_ += n;
        return true;
    }
    /// Exactly `n` raw bytes.
    bool raw(std::string_view& v, std::size_t n, const char* what) noexcept {
        if (!need(n, what)) {
            return false;
        }
        v = data_.substr(pos_, n);
        pos_ += n;
        return true;
    }
    /// Succeeds only if everything was consumed.
    bool at_end(const char* what) noexcept {
        if (remaining() != 0) {
            return fail(WireErrc::trailing_bytes, what);
        }
        return true;
    }

private:
    bool need(std::size_t n, const char* what) noexcept {
        if (failed_) {
            return false;
        }
        if (remaining() < n) {
            return fail_at(WireErrc::truncated, pos_, what);
        }
        return true;
    }
    /// A big-endian integer of the width `load` reads.
    template <auto load, class T> bool fixed(T& v, const char* what) noexcept {
        if (!need(sizeof(T), what)) {
            return false;
        }
        v = load(data_.data() + pos_);
        pos_ += sizeof(T);
        return true;
    }
    bool fail_at(WireErrc code, std::size_t at, const char* detail) noexcept {
        if (!failed_) {
            failed_ = true;
            error_ = WireError{code, base_ + at, detail};
        }
        return false;
    }

    std::string_view data_;
    std::size_t base_ = 0;
    std::size_t pos_ = 0;
    bool failed_ = false;
    WireError error_{};
};

} // namespace idnode::resolver::handle::wire
