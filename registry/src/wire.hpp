// Big-endian primitives shared by the record codec and the store's key/entry encodings.
// Internal to the registry.
#pragma once

#include "idnode/codec/hex.hpp"

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace idnode::registry::wire {

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
inline void put_u64(std::string& out, std::uint64_t v) {
    put_u32(out, static_cast<std::uint32_t>(v >> 32));
    put_u32(out, static_cast<std::uint32_t>(v));
}
inline void put_bytes(std::string& out, std::string_view bytes) {
    put_u32(out, static_cast<std::uint32_t>(bytes.size()));
    out.append(bytes);
}

/// put_u32 into 4 bytes already in place.
inline void store_u32(char* p, std::uint32_t v) noexcept {
    p[0] = static_cast<char>(v >> 24);
    p[1] = static_cast<char>(v >> 16);
    p[2] = static_cast<char>(v >> 8);
    p[3] = static_cast<char>(v);
}

/// put_u64 into 8 bytes already in place.
inline void store_u64(char* p, std::uint64_t v) noexcept {
    store_u32(p, static_cast<std::uint32_t>(v >> 32));
    store_u32(p + 4, static_cast<std::uint32_t>(v));
}

inline std::uint32_t load_u32(const char* p) noexcept {
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    return (std::uint32_t{u[0]} << 24) | (std::uint32_t{u[1]} << 16) | (std::uint32_t{u[2]} << 8) |
           u[3];
}
inline std::uint64_t load_u64(const char* p) noexcept {
    return (std::uint64_t{load_u32(p)} << 32) | load_u32(p + 4);
}

/// Lower-case hex of `bytes`.
inline std::string to_hex(std::string_view bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) {
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 15]);
    }
    return out;
}

/// Decodes hex (either case); false on odd length or a non-hex character.
inline bool from_hex(std::string_view hex, std::string& out) {
    if (hex.size() % 2 != 0) {
        return false;
    }
    constexpr auto nibble = codec::hex_digit;
    out.clear();
    out.reserve(hex.size() / 2);
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        out.push_back(static_cast<char>(hi * 16 + lo));
    }
    return true;
}

/// A bounds-checked reader: every take_* fails (returns false) instead of reading past the end.
class Reader {
public:
    explicit Reader(std::string_view bytes) noexcept : data_(bytes) {}
    std::size_t remaining() const noexcept { return data_.size() - pos_; }
    std::size_t position() const noexcept { return pos_; }
    std::string_view rest() const noexcept { return data_.substr(pos_); }

    bool u8(std::uint8_t& v) noexcept {
        if (remaining() < 1)
            return false;
        v = static_cast<std::uint8_t>(data_[pos_++]);
        return true;
    }
    bool u16(std::uint16_t& v) noexcept {
        if (remaining() < 2)
            return false;
        const auto* u = reinterpret_cast<const unsigned char*>(data_.data() + pos_);
        v = static_cast<std::uint16_t>((u[0] << 8) | u[1]);
        pos_ += 2;
        return true;
    }
    bool u32(std::uint32_t& v) noexcept { return fixed(v, load_u32); }
    bool u64(std::uint64_t& v) noexcept { return fixed(v, load_u64); }
    bool i32(std::int32_t& v) noexcept {
        std::uint32_t u;
        if (!u32(u))
            return false;
        v = static_cast<std::int32_t>(u);
        return true;
    }
    bool bytes(std::string_view& v) noexcept {
        std::uint32_t len;
        const std::size_t start = pos_;
        if (!u32(len))
            return false;
        if (remaining() < len) {
            pos_ = start;
            return false;
        }
        v = data_.substr(pos_, len);
        pos_ += len;
        return true;
    }
    bool skip(std::size_t n) noexcept {
        if (remaining() < n)
            return false;
        pos_ += n;
        return true;
    }

private:
    /// Reads a big-endian integer of sizeof(T) bytes with `load`.
    template <class T> bool fixed(T& v, T (*load)(const char*) noexcept) noexcept {
        if (remaining() < sizeof(T))
            return false;
        v = load(data_.data() + pos_);
        pos_ += sizeof(T);
        return true;
    }

    std::string_view data_;
    std::size_t pos_ = 0;
};

} // namespace idnode::registry::wire
