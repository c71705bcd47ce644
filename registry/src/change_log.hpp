// The change log's entry codec (docs/storage.md, "change log"): every mutation of registry
// content appends one entry under the next u64 BE sequence in changes_v1.
//
//   entry := kind:u8 op:u8 time:u64 account:bytes key:bytes value:bytes   (bytes := u32 + bytes)
//
// `op` carries kLoadedOpFlag when the entry holds no copy of the record (an offline load with
// RegistryOptions::log_record_copies = false; ChangeEntry::loaded), its value then empty.
// Identifier entries are keyed by the handle spelling, administrative ones by their entry key.
//
// The writer builds entries in place (write_change_entry into an MDB_RESERVE'd slot, one per
// record of a bulk load, no intermediate buffer); readers and verify decode them with
// decode_change. Internal to the registry; pure functions.
#pragma once

#include "idnode/registry/registry.hpp"

#include "wire.hpp"

#include <cstdint>
#include <cstring>
#include <string_view>

namespace idnode::registry::store {

/// Set in a change entry's op byte when the entry stores no copy of the record.
inline constexpr std::uint8_t kLoadedOpFlag = 0x80;

/// Size of an entry with these parts.
inline constexpr std::size_t change_entry_bytes(std::size_t account, std::size_t key,
                                                std::size_t value) noexcept {
    return 1 + 1 + 8 + 4 + account + 4 + key + 4 + value;
}

/// Writes an entry at `p` (change_entry_bytes of room) up to the value's length and returns where
/// the `value_size` value bytes go.
inline char* write_change_entry(char* p, ChangeKind kind, std::uint8_t op_byte, std::int64_t time,
                                std::string_view account, std::string_view key,
                                std::size_t value_size) noexcept {
    *p++ = static_cast<char>(kind);
    *p++ = static_cast<char>(op_byte);
    wire::store_u64(p, static_cast<std::uint64_t>(time));
    p += 8;
    for (std::string_view part : {account, key}) {
        wire::store_u32(p, static_cast<std::uint32_t>(part.size()));
        if (!part.empty()) {
            std::memcpy(p + 4, part.data(), part.size());
        }
        p += 4 + part.size();
    }
    wire::store_u32(p, static_cast<std::uint32_t>(value_size));
    return p + 4;
}

/// Decodes the entry stored under `seq`; false when the bytes are not an entry this build wrote.
bool decode_change(std::uint64_t seq, std::string_view bytes, ChangeEntry& e);

/// Tables whose writes are registry content and get change-log entries (registry.hpp Table).
inline bool logged_table(Table t) noexcept {
    return t != Table::idempotency;
}

/// The change kind of a logged table: ChangeKind numbers the tables one above Table does
/// (identifiers come first).
inline ChangeKind change_kind(Table t) noexcept {
    static_assert(
        static_cast<int>(ChangeKind::prefix) == static_cast<int>(Table::prefixes) + 1 &&
        static_cast<int>(ChangeKind::template_) == static_cast<int>(Table::templates) + 1 &&
        static_cast<int>(ChangeKind::account) == static_cast<int>(Table::accounts) + 1 &&
        static_cast<int>(ChangeKind::api_key) == static_cast<int>(Table::api_keys) + 1 &&
        static_cast<int>(ChangeKind::identity) == static_cast<int>(Table::identities) + 1);
    return static_cast<ChangeKind>(static_cast<std::uint8_t>(t) + 1);
}

/// The logged operation of a write's outcome.
inline ChangeOp change_op(Outcome o) noexcept {
    switch (o) {
    case Outcome::created:
        return ChangeOp::create;
    case Outcome::replaced:
        return ChangeOp::replace;
    case Outcome::deleted:
        return ChangeOp::remove;
    default:
        return ChangeOp::update;
    }
}

} // namespace idnode::registry::store
