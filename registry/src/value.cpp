#include "idnode/registry/value.hpp"

#include "idnode/registry/identifier.hpp"
#include "record_encoding.hpp"
#include "wire.hpp"

#include <algorithm>
#include <cstring>
#include <unordered_set>

namespace idnode::registry {
namespace {

using layout::kRecordFormat;

Error corrupt(std::string what, std::size_t offset) {
    return Error{Errc::corrupt,
                 "stored record is corrupt: " + what + " at byte " + std::to_string(offset)};
}

std::string value_label(const HandleValue& v, std::size_t position) {
    return "value " + std::to_string(position) + " (index " + std::to_string(v.index) + ")";
}

/// Writes `bytes` with its u32 length at `p`; returns the end.
char* put_sized(char* p, std::string_view bytes) noexcept {
    wire::store_u32(p, static_cast<std::uint32_t>(bytes.size()));
    if (!bytes.empty()) { // memcpy from a default string_view's null pointer is undefined
        std::memcpy(p + 4, bytes.data(), bytes.size());
    }
    return p + 4 + bytes.size();
}

bool has_control(std::string_view s) noexcept {
    return std::any_of(s.begin(), s.end(), [](char ch) {
        const auto c = static_cast<unsigned char>(ch);
        return c < 0x20 || c == 0x7F;
    });
}

// Parses one value starting at the reader's position; fills `view` (wire excluded).
bool parse_value(wire::Reader& r, ValueView& view) noexcept {
    const std::size_t start = r.position();
    const std::string_view whole = r.rest();
    std::uint32_t ts;
    std::uint8_t ttl_type, perms;
    if (!r.i32(view.index) || !r.u32(ts) || !r.u8(ttl_type) || !r.i32(view.ttl) || !r.u8(perms) ||
        !r.bytes(view.type) || !r.bytes(view.data) || !r.u32(view.reference_count)) {
        return false;
    }
    if (ttl_type > 1 || (perms & 0xF0) != 0) {
        return false;
    }
    view.timestamp = ts;
    view.ttl_type = static_cast<TtlType>(ttl_type);
    view.permissions.bits = perms;
    const std::size_t refs_start = r.position();
    if (view.reference_count > r.remaining() / layout::kReferenceMinBytes) {
        return false; // cheap guard against huge counts
    }
    for (std::uint32_t i = 0; i < view.reference_count; ++i) {
        std::string_view handle;
        std::int32_t index;
        if (!r.bytes(handle) || !r.i32(index)) {
            return false;
        }
    }
    view.references = whole.substr(refs_start - start, r.position() - refs_start);
    view.wire = whole.substr(0, r.position() - start);
    return true;
}

// Validation walk of one value: the same checks as parse_value without filling a view (records
// are validated once in RecordView::parse and walked again when iterated).
bool check_value(wire::Reader& r) noexcept {
    std::uint8_t ttl_type, perms;
    std::uint32_t type_len, data_len, refs;
    if (!r.skip(8) || !r.u8(ttl_type) || !r.skip(4) || !r.u8(perms) || ttl_type > 1 ||
        (perms & 0xF0) != 0) {
        return false;
    }
    if (!r.u32(type_len) || !r.skip(type_len) || !r.u32(data_len) || !r.skip(data_len) ||
        !r.u32(refs)) {
        return false;
    }
    if (refs > r.remaining() / layout::kReferenceMinBytes) {
        return false;
    }
    for (std::uint32_t i = 0; i < refs; ++i) {
        std::uint32_t len;
        if (!r.u32(len) || !r.skip(len) || !r.skip(4)) {
            return false;
        }
    }
    return true;
}

/// The common case of the validation walk in one pass over raw bytes: true only if check_value
/// accepts each of `count` values of `values` (without references) and no byte follows them.
/// False says nothing (the walk with check_value then finds the error and its offset).
bool plain_values_well_formed(std::string_view values, std::uint32_t count) noexcept {
    const char* p = values.data();
    std::size_t left = values.size();
    for (std::uint32_t i = 0; i < count; ++i) {
        if (left < layout::kValueMinBytes) {
            return false;
        }
        const auto ttl_type = static_cast<unsigned char>(p[layout::kValueTtlTypeAt]);
        const auto perms = static_cast<unsigned char>(p[layout::kValuePermissionsAt]);
        if (ttl_type > 1 || (perms & 0xF0) != 0) {
            return false;
        }
        std::size_t at = layout::kValueFixedBytes;
        const std::size_t type_len = wire::load_u32(p + layout::kValueTypeLengthAt);
        if (left - at < type_len + 4) {
            return false;
        }
        at += type_len;
        const std::size_t data_len = wire::load_u32(p + at);
        at += 4;
        if (left - at < data_len + 4) {
            return false;
        }
        at += data_len;
        if (wire::load_u32(p + at) != 0) {
            return false; // references: the walk checks them
        }
        at += 4;
        p += at;
        left -= at;
    }
    return left == 0;
}

} // namespace

std::string Permissions::to_string() const {
    std::string s(4, '0');
    s[0] = (bits & kAdminRead) ? '1' : '0';
    s[1] = (bits & kAdminWrite) ? '1' : '0';
    s[2] = (bits & kPublicRead) ? '1' : '0';
    s[3] = (bits & kPublicWrite) ? '1' : '0';
    return s;
}

Result<Permissions> Permissions::parse(std::string_view text) {
    if (text.size() != 4 || text.find_first_not_of("01") != std::string_view::npos) {
        return Error{Errc::invalid_value,
                     "permissions must be 4 characters of 0/1 (adminRead adminWrite publicRead "
                     "publicWrite), got \"" +
                         std::string(utf8_prefix(text, 16)) + "\""};
    }
    Permissions p;
    p.bits = static_cast<std::uint8_t>(
        (text[0] == '1' ? kAdminRead : 0) | (text[1] == '1' ? kAdminWrite : 0) |
        (text[2] == '1' ? kPublicRead : 0) | (text[3] == '1' ? kPublicWrite : 0));
    return p;
}

bool HandleValue::same_content(const HandleValue& o) const noexcept {
    return index == o.index && ttl == o.ttl && ttl_type == o.ttl_type &&
           permissions == o.permissions && type == o.type && data == o.data &&
           references == o.references;
}

Status validate_values(std::span<const HandleValue> values, const ValueLimits& limits) {
    if (values.empty()) {
        return Error{Errc::invalid_value, "a record needs at least one value"};
    }
    if (values.size() > limits.max_values) {
        return Error{Errc::too_large, "a record holds at most " +
                                          std::to_string(limits.max_values) + " values, got " +
                                          std::to_string(values.size())};
    }
    // Indices in ascending order (the usual case) cannot repeat; the set of seen indices is
    // built only at the first index that is not above its predecessor.
    std::unordered_set<std::int32_t> seen;
    bool ascending = true;
    std::size_t bytes = layout::kRecordEstimateBase;
    for (std::size_t i = 0; i < values.size(); ++i) {
        const HandleValue& v = values[i];
        if (v.index <= 0) {
            return Error{Errc::invalid_value,
                         value_label(v, i) + ": index must be a positive integer"};
        }
        if (ascending && i > 0 && v.index <= values[i - 1].index) {
            ascending = false;
            seen.reserve(values.size() * 2);
            for (std::size_t j = 0; j < i; ++j) {
                seen.insert(values[j].index);
            }
        }
        if (!ascending && !seen.insert(v.index).second) {
            return Error{Errc::invalid_value, value_label(v, i) + ": index is used twice"};
        }
        if (v.type.empty()) {
            return Error{Errc::invalid_value, value_label(v, i) + ": type is empty"};
        }
        if (v.type.size() > kMaxTypeBytes) {
            return Error{Errc::invalid_value, value_label(v, i) + ": type is longer than " +
                                                  std::to_string(kMaxTypeBytes) + " bytes"};
        }
        if (has_control(v.type) || find_invalid_utf8(v.type) != std::string_view::npos) {
            return Error{Errc::invalid_value,
                         value_label(v, i) + ": type must be UTF-8 without control characters"};
        }
        if (v.ttl_type != TtlType::relative && v.ttl_type != TtlType::absolute) {
            return Error{Errc::invalid_value, value_label(v, i) + ": ttl type must be 0 or 1"};
        }
        if ((v.permissions.bits & 0xF0) != 0) {
            return Error{Errc::invalid_value, value_label(v, i) + ": unknown permission bits"};
        }
        for (const auto& ref : v.references) {
            if (ref.handle.empty() || find_invalid_utf8(ref.handle) != std::string_view::npos) {
                return Error{Errc::invalid_value,
                             value_label(v, i) + ": a reference's handle must be non-empty UTF-8"};
            }
            bytes += layout::kReferenceMinBytes + ref.handle.size();
        }
        bytes += layout::kValueMinBytes + v.type.size() + v.data.size();
    }
    if (bytes > limits.max_record_bytes) {
        return Error{Errc::too_large, "record is about " + std::to_string(bytes) +
                                          " bytes; the limit is " +
                                          std::to_string(limits.max_record_bytes)};
    }
    return {};
}

char* write_value(char* p, std::int32_t index, std::uint32_t timestamp, TtlType ttl_type,
                  std::int32_t ttl, Permissions permissions, std::string_view type,
                  std::string_view data, std::span<const ValueReference> references) noexcept {
    // Direct stores instead of one append per field (the bulk loaders' per-value cost).
    wire::store_u32(p + layout::kValueIndexAt, static_cast<std::uint32_t>(index));
    wire::store_u32(p + layout::kValueTimestampAt, timestamp);
    p[layout::kValueTtlTypeAt] = static_cast<char>(ttl_type);
    wire::store_u32(p + layout::kValueTtlAt, static_cast<std::uint32_t>(ttl));
    p[layout::kValuePermissionsAt] = static_cast<char>(permissions.bits);
    p = put_sized(p + layout::kValueTypeLengthAt, type);
    p = put_sized(p, data);
    wire::store_u32(p, static_cast<std::uint32_t>(references.size()));
    p += 4;
    for (const auto& ref : references) {
        p = put_sized(p, ref.handle);
        wire::store_u32(p, static_cast<std::uint32_t>(ref.index));
        p += 4;
    }
    return p;
}

void encode_value(std::string& out, const HandleValue& v) {
    const std::size_t at = out.size();
    out.resize(at + value_bytes(v.type, v.data, v.references));
    write_value(out.data() + at, v.index, v.timestamp, v.ttl_type, v.ttl, v.permissions, v.type,
                v.data, v.references);
}

namespace {

/// The record header with a value count of `count`.
void put_record_header(std::string& out, std::string_view spelling, std::uint32_t count) {
    wire::put_u8(out, kRecordFormat);
    wire::put_u8(out, 0);
    wire::put_bytes(out, spelling);
    wire::put_u32(out, count);
}

} // namespace

std::string encode_record(std::string_view spelling, std::span<const HandleValue> values) {
    std::size_t size = layout::kRecordHeaderBytes + spelling.size();
    for (const auto& v : values) {
        size += value_bytes(v.type, v.data, v.references);
    }
    std::string out;
    out.reserve(size);
    put_record_header(out, spelling, static_cast<std::uint32_t>(values.size()));
    for (const auto& v : values) {
        encode_value(out, v);
    }
    return out;
}

void encode_record_stamped(std::string& out, std::string_view spelling,
                           std::span<const HandleValue* const> values, std::uint32_t timestamp) {
    out.clear();
    put_record_header(out, spelling, static_cast<std::uint32_t>(values.size()));
    for (const HandleValue* v : values) {
        const std::size_t at = out.size();
        encode_value(out, *v);
        stamp_value(out.data() + at, timestamp);
    }
}

RecordEncoder::RecordEncoder(std::string& out, std::string_view spelling) : out_(out) {
    out_.clear();
    put_record_header(out_, spelling, 0);
    count_at_ = out_.size() - 4;
}

void RecordEncoder::add(std::int32_t index, std::string_view type, std::string_view data,
                        std::int32_t ttl, Permissions permissions, TtlType ttl_type) {
    // The same bytes as encode_value of the equivalent HandleValue; the writer stamps the
    // timestamp (0 here).
    const std::size_t at = out_.size();
    out_.resize(at + value_bytes(type, data, {}));
    write_value(out_.data() + at, index, 0, ttl_type, ttl, permissions, type, data, {});
    bump_count();
}

void RecordEncoder::add(const HandleValue& value) {
    encode_value(out_, value);
    bump_count();
}

void RecordEncoder::bump_count() noexcept {
    wire::store_u32(out_.data() + count_at_, ++count_);
}

HandleValue ValueView::to_value() const {
    HandleValue v;
    v.index = index;
    v.type.assign(type);
    v.data.assign(data);
    v.ttl = ttl;
    v.ttl_type = ttl_type;
    v.timestamp = timestamp;
    v.permissions = permissions;
    if (reference_count > 0) {
        v.references.reserve(reference_count);
        wire::Reader r(references);
        for (std::uint32_t i = 0; i < reference_count; ++i) {
            std::string_view handle;
            std::int32_t idx = 0;
            if (!r.bytes(handle) || !r.i32(idx)) {
                break; // validated by RecordView::parse; unreachable for parsed views
            }
            v.references.push_back(ValueReference{std::string(handle), idx});
        }
    }
    return v;
}

Result<RecordView> RecordView::parse(std::string_view bytes) {
    wire::Reader r(bytes);
    std::uint8_t format, flags;
    RecordView view;
    view.bytes_ = bytes;
    if (!r.u8(format) || !r.u8(flags)) {
        return corrupt("truncated header", r.position());
    }
    if (format != kRecordFormat) {
        return corrupt("unknown format " + std::to_string(format), 0);
    }
    if (flags != 0) {
        return corrupt("unknown flags", 1);
    }
    std::uint32_t count;
    if (!r.bytes(view.spelling_)) {
        return corrupt("truncated spelling", r.position());
    }
    if (!r.u32(count)) {
        return corrupt("truncated value count", r.position());
    }
    const std::size_t values_start = r.position();
    // Reject value counts the record cannot hold before walking.
    if (count > r.remaining() / layout::kValueMinBytes) {
        return corrupt("value count " + std::to_string(count) + " exceeds the record",
                       values_start - 4);
    }
    if (plain_values_well_formed(r.rest(), count)) {
        view.values_ = bytes.substr(values_start);
        view.count_ = count;
        return view;
    }
    for (std::uint32_t i = 0; i < count; ++i) {
        if (!check_value(r)) {
            return corrupt("value " + std::to_string(i) + " is malformed", r.position());
        }
    }
    if (r.remaining() != 0) {
        return corrupt(std::to_string(r.remaining()) + " trailing bytes", r.position());
    }
    view.values_ = bytes.substr(values_start);
    view.count_ = count;
    return view;
}

RecordView::iterator::iterator(std::string_view rest, std::size_t remaining) noexcept
    : rest_(rest), remaining_(remaining) {
    load();
}

void RecordView::iterator::load() noexcept {
    if (remaining_ == 0) {
        return;
    }
    wire::Reader r(rest_);
    // The record was validated by parse(); a failure here would be a broken invariant.
    if (!parse_value(r, current_)) {
        remaining_ = 0;
    }
}

RecordView::iterator& RecordView::iterator::operator++() noexcept {
    rest_.remove_prefix(current_.wire.size());
    --remaining_;
    load();
    return *this;
}

RecordView::iterator RecordView::begin() const noexcept {
    return iterator(values_, count_);
}
RecordView::iterator RecordView::end() const noexcept {
    return iterator({}, 0);
}

Record RecordView::to_record() const {
    Record rec;
    rec.spelling.assign(spelling_);
    rec.values.reserve(count_);
    for (const auto& v : *this) {
        rec.values.push_back(v.to_value());
    }
    return rec;
}

Result<Record> decode_record(std::string_view bytes) {
    auto view = RecordView::parse(bytes);
    if (!view) {
        return view.error();
    }
    return view->to_record();
}

bool ValueFilter::selects(std::int32_t index, std::string_view type) const noexcept {
    if (empty()) {
        return true;
    }
    if (std::find(indices.begin(), indices.end(), index) != indices.end()) {
        return true;
    }
    for (const auto& want : types) {
        if (equals_folded(want, type)) {
            return true;
        }
        // "URL." selects "URL.mobile": a trailing dot means "this type and its subtypes".
        if (!want.empty() && want.back() == '.' && type.size() > want.size() &&
            equals_folded(want, type.substr(0, want.size()))) {
            return true;
        }
    }
    return false;
}

} // namespace idnode::registry
