// The one encoder of stored record bytes (layout: record_layout.hpp, value.hpp).
//
// Every put path of the writer stores bytes built here: PutRecord (apply.cpp) through
// encode_record, the append fast path (append.cpp) through encode_record_stamped, and
// pre-encoded bulk records (offline_load.cpp builds them with RecordEncoder, append.cpp stamps
// them with stamp_value). All of them lay a value out with write_value and set its timestamp at
// layout::kValueTimestampAt, so they cannot disagree on a byte; put_paths_test compares what the
// three paths store.
//
// Internal to the registry. Pure functions over caller-owned buffers; no state.
#pragma once

#include "idnode/registry/value.hpp"
#include "record_layout.hpp"
#include "wire.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace idnode::registry {

/// Bytes write_value writes for these fields.
inline std::size_t value_bytes(std::string_view type, std::string_view data,
                               std::span<const ValueReference> references) noexcept {
    std::size_t n = layout::kValueMinBytes + type.size() + data.size();
    for (const auto& ref : references) {
        n += layout::kReferenceMinBytes + ref.handle.size();
    }
    return n;
}

/// Writes one value at `p` (value_bytes(...) bytes of room) and returns the end. The only code
/// that lays out a value's fields.
char* write_value(char* p, std::int32_t index, std::uint32_t timestamp, TtlType ttl_type,
                  std::int32_t ttl, Permissions permissions, std::string_view type,
                  std::string_view data, std::span<const ValueReference> references) noexcept;

/// Sets the timestamp of the encoded value starting at `value`.
inline void stamp_value(char* value, std::uint32_t timestamp) noexcept {
    wire::store_u32(value + layout::kValueTimestampAt, timestamp);
}

/// encode_record into `out` (replacing its contents, keeping its capacity) of the values pointed
/// to, in the order given, every value's timestamp written as `timestamp`: the registry writer's
/// encoding of a new record without copying its values. Same bytes as encode_record of copies of
/// those values stamped `timestamp`.
void encode_record_stamped(std::string& out, std::string_view spelling,
                           std::span<const HandleValue* const> values, std::uint32_t timestamp);

} // namespace idnode::registry
