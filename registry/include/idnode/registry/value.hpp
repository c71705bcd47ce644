// The identifier record: a handle and its typed values (docs/data-model.md#values), and their
// binary encoding.
//
// Stored records use the Handle protocol's value encoding (RFC 3651 §3.1, big-endian) so that
// the protocol server can copy stored value bytes straight into a response:
//
//   value  := index:i32 timestamp:u32 ttl_type:u8 ttl:i32 permissions:u8
//             type:utf8 data:bytes reference_count:i32 { handle:utf8 index:i32 }*
//   utf8/bytes := length:u32 followed by that many bytes
//
//   record := format:u8(=1) flags:u8(=0) spelling:utf8 value_count:u32 value*
//
// Decoding is defensive: every length is checked against what is left, and a record that fails
// any check is reported as Errc::corrupt, never partially used.
#pragma once

#include "idnode/registry/error.hpp"

#include <cstdint>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace idnode::registry {

inline constexpr std::int32_t kIndexHsAdmin = 100;
inline constexpr std::int32_t kIndexTemplate = 1001;
inline constexpr std::int32_t kFirstTemplateIndex = 2000;
inline constexpr std::int32_t kDefaultTtl = 86400;
inline constexpr std::size_t kMaxTypeBytes = 128;
inline constexpr std::size_t kDefaultMaxValues = 2048;

/// Handle permission bits; the textual form is "adminRead adminWrite publicRead publicWrite",
/// e.g. "1110" (the default: everyone reads, only admins write).
struct Permissions {
    static constexpr std::uint8_t kPublicWrite = 0x01;
    static constexpr std::uint8_t kPublicRead = 0x02;
    static constexpr std::uint8_t kAdminWrite = 0x04;
    static constexpr std::uint8_t kAdminRead = 0x08;

    std::uint8_t bits = kAdminRead | kAdminWrite | kPublicRead;

    bool public_read() const noexcept { return (bits & kPublicRead) != 0; }
    /// "1110" form.
    std::string to_string() const;
    /// Parses the 4-character form; anything else is invalid_value.
    static Result<Permissions> parse(std::string_view text);
    friend bool operator==(const Permissions&, const Permissions&) = default;
};

enum class TtlType : std::uint8_t { relative = 0, absolute = 1 };

struct ValueReference {
    std::string handle;
    std::int32_t index = 0;
    friend bool operator==(const ValueReference&, const ValueReference&) = default;
};

struct HandleValue {
    std::int32_t index = 0;
    std::string type;
    std::string data; // arbitrary bytes
    std::int32_t ttl = kDefaultTtl;
    TtlType ttl_type = TtlType::relative;
    std::uint32_t timestamp = 0; // unix seconds, set by the server on write
    Permissions permissions{};
    std::vector<ValueReference> references;

    /// Equal in everything a client controls (timestamp excluded).
    bool same_content(const HandleValue& other) const noexcept;
    friend bool operator==(const HandleValue&, const HandleValue&) = default;
};

struct Record {
    std::string spelling; // the handle as registered
    std::vector<HandleValue> values;
};

struct ValueLimits {
    std::size_t max_values = kDefaultMaxValues;
    std::size_t max_record_bytes = 1 << 20;
};

/// Checks a value list a client wants to store: at least one value, at most max_values; index
/// > 0 and unique; type non-empty UTF-8 without control characters, at most 128 bytes; ttl type
/// 0 or 1; references are valid UTF-8. The message names the first offending value.
Status validate_values(std::span<const HandleValue> values, const ValueLimits& limits = {});

/// Appends the wire encoding of one value.
void encode_value(std::string& out, const HandleValue& value);
/// Encodes a whole record (format described above).
std::string encode_record(std::string_view spelling, std::span<const HandleValue> values);

/// Builds an encoded record (the format above) straight from field views, without HandleValue
/// objects: the bulk loader's per-record path. Values are appended in the order given (the writer
/// expects ascending indices; a record out of index order is still accepted and sorted by the
/// slow path). Timestamps are written as 0; the registry's writer stamps them. No validation
/// here: the writer validates the bytes it is given exactly as it validates HandleValues.
class RecordEncoder {
public:
    /// Clears `out` and writes the header; `out` must outlive the encoder's use.
    RecordEncoder(std::string& out, std::string_view spelling);
    void add(std::int32_t index, std::string_view type, std::string_view data,
             std::int32_t ttl = kDefaultTtl, Permissions permissions = {},
             TtlType ttl_type = TtlType::relative);
    void add(const HandleValue& value);
    std::uint32_t count() const noexcept { return count_; }

private:
    void bump_count() noexcept;
    std::string& out_;
    std::size_t count_at_;
    std::uint32_t count_ = 0;
};

/// A zero-copy view of one encoded value. Its string_views point into the record bytes.
struct ValueView {
    std::int32_t index = 0;
    std::uint32_t timestamp = 0;
    TtlType ttl_type = TtlType::relative;
    std::int32_t ttl = 0;
    Permissions permissions{};
    std::string_view type;
    std::string_view data;
    std::uint32_t reference_count = 0;
    std::string_view references; // encoded references (count excluded)
    std::string_view wire;       // the whole encoded value, ready to copy into a Handle message

    HandleValue to_value() const; // decodes references too
};

/// A validated, zero-copy view over encoded record bytes. The bytes must outlive the view (for
/// bytes read from the store: only as long as the snapshot that produced them).
class RecordView {
public:
    /// Validates every length and field; Errc::corrupt with the offset on failure.
    static Result<RecordView> parse(std::string_view bytes);

    std::string_view spelling() const noexcept { return spelling_; }
    std::size_t size() const noexcept { return count_; }
    std::string_view bytes() const noexcept { return bytes_; }

    class iterator {
    public:
        using iterator_category = std::forward_iterator_tag;
        using value_type = ValueView;
        using difference_type = std::ptrdiff_t;
        using pointer = const ValueView*;
        using reference = const ValueView&;
        iterator() = default;
        const ValueView& operator*() const noexcept { return current_; }
        const ValueView* operator->() const noexcept { return &current_; }
        iterator& operator++() noexcept;
        iterator operator++(int) noexcept {
            auto copy = *this;
            ++*this;
            return copy;
        }
        friend bool operator==(const iterator& a, const iterator& b) noexcept {
            return a.remaining_ == b.remaining_;
        }

    private:
        friend class RecordView;
        iterator(std::string_view rest, std::size_t remaining) noexcept;
        void load() noexcept;
        std::string_view rest_;
        std::size_t remaining_ = 0;
        ValueView current_{};
    };
    iterator begin() const noexcept;
    iterator end() const noexcept;

    Record to_record() const;

private:
    std::string_view bytes_;
    std::string_view spelling_;
    std::string_view values_; // encoded values
    std::size_t count_ = 0;
};

/// Decodes owned data from record bytes (RecordView::parse + to_record).
Result<Record> decode_record(std::string_view bytes);

/// Value selection of a resolution (docs/api.md#handle-rest, docs/handle-protocol.md#resolution):
/// with no filters every value is selected; otherwise a value is selected if ANY index matches or
/// ANY type matches. Types compare ASCII case-insensitively; a filter type ending in '.' matches
/// every type that starts with it
/// ("URL." matches "URL.mobile", not "URL"). Permissions are applied separately (see GetOptions in
/// registry.hpp).
struct ValueFilter {
    std::vector<std::string> types;
    std::vector<std::int32_t> indices;

    bool empty() const noexcept { return types.empty() && indices.empty(); }
    bool selects(std::int32_t index, std::string_view type) const noexcept;
};

} // namespace idnode::registry
