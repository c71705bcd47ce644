// The stored record layout as named numbers: the one place that says where each field of an
// encoded record and value lives (the layout itself is described in value.hpp and
// docs/storage.md). The codec (value.cpp), the writer's fast paths (append.cpp) and the offline
// loader all address fields through these names, so a layout change is one edit here.
//
// Internal to the registry; constants only, no state.
#pragma once

#include <cstddef>
#include <cstdint>

namespace idnode::registry::layout {

/// record := format:u8 flags:u8 spelling:utf8 value_count:u32 value*
inline constexpr std::uint8_t kRecordFormat = 1;
/// format, flags, spelling length and value count: a record without spelling bytes or values.
inline constexpr std::size_t kRecordHeaderBytes = 1 + 1 + 4 + 4;

/// value := index:i32 timestamp:u32 ttl_type:u8 ttl:i32 permissions:u8 type:utf8 data:bytes
///          reference_count:u32 { handle:utf8 index:i32 }*
inline constexpr std::size_t kValueIndexAt = 0;
inline constexpr std::size_t kValueTimestampAt = 4; // "4 bytes after its index"
inline constexpr std::size_t kValueTtlTypeAt = 8;
inline constexpr std::size_t kValueTtlAt = 9;
inline constexpr std::size_t kValuePermissionsAt = 13;
inline constexpr std::size_t kValueTypeLengthAt = 14;
/// The fixed fields before the type bytes (index .. type length).
inline constexpr std::size_t kValueFixedBytes = 18;
/// The smallest value: fixed fields, data length and reference count (empty type, data and no
/// references). Decoders reject value counts a record cannot hold at this size.
inline constexpr std::size_t kValueMinBytes = kValueFixedBytes + 4 + 4;
/// The smallest reference: handle length and index.
inline constexpr std::size_t kReferenceMinBytes = 4 + 4;

/// What validate_values charges a record before its values when it checks max_record_bytes (an
/// estimate that leaves the spelling out). The writer's encoded fast path charges exactly the
/// same, so that both accept and refuse the same records.
inline constexpr std::size_t kRecordEstimateBase = 16;

} // namespace idnode::registry::layout
