// The store's schema: the LMDB databases the environment holds and how their keys are built
// (docs/storage.md describes the layout for operators).
//
// Layout of the environment (named databases; versioned names so that a future incompatible
// layout can live beside the old one during an upgrade):
//   meta          "schema_version" -> u32 BE
//   ids_v1        identifier key -> encoded record (value.hpp, record_layout.hpp)
//   counters_v1   "n/" + folded prefix -> u64 BE identifiers under it; "total" -> u64 BE;
//                 "d/" + YYYY-MM-DD (UTC) [+ "/" + folded prefix] -> u64 BE identifiers created
//                 that day (all prefixes / under that prefix); deletions do not lower them;
//                 "t/" + template entry key -> u64 BE identifiers naming that template
//   changes_v1    u64 BE sequence -> change entry (change_log.hpp)
//   prefixes_v1, templates_v1, accounts_v1, apikeys_v1   opaque key -> opaque bytes
//   idempotency_v1  account + 0x00 + Idempotency-Key -> BulkOutcome (admin.hpp); not change-logged
//   identities_v1   "<index>:<folded handle>" -> Identity (admin.hpp); change-logged
//
// Identifier keys are the case-folded handle. LMDB keys are limited (511 bytes by default) while
// handles may be configured up to 2048 bytes, so a longer key keeps its first bytes (the prefix
// stays in order for listings) followed by 0x00 and the SHA-256 of the whole folded handle; 0x00
// cannot occur in a handle, so the two forms never collide.
//
// Internal to the registry. Pure functions and constants; IdentifierKey views its argument (or
// owns the long form), so it must not outlive the folded handle it was built from.
#pragma once

#include "idnode/registry/registry.hpp"

#include "wire.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace idnode::registry::store {

inline constexpr std::string_view kSchemaKey = "schema_version";
inline constexpr std::string_view kTotalKey = "total";
inline constexpr std::size_t kShortKeyLimit = 480; // below LMDB's default 511-byte key limit

inline constexpr const char* kMetaDb = "meta";
inline constexpr const char* kIdsDb = "ids_v1";
inline constexpr const char* kCountersDb = "counters_v1";
inline constexpr const char* kChangesDb = "changes_v1";

/// The named databases of the administrative tables, by Table value (0 unused). idempotency_v1
/// and identities_v1 were added after schema 1 shipped: a writable open creates them, a
/// read-only open tolerates their absence (registry.hpp Table).
inline constexpr const char* kTableNames[] = {nullptr,        "prefixes_v1", "templates_v1",
                                              "accounts_v1",  "apikeys_v1",  "idempotency_v1",
                                              "identities_v1"};
inline constexpr int kTableSlots = 7;

/// The LMDB key of an identifier: the folded handle itself when short (no copy), otherwise the
/// truncated form with its SHA-256 (see the file comment).
class IdentifierKey {
public:
    explicit IdentifierKey(std::string_view folded) {
        if (folded.size() <= kShortKeyLimit) {
            view_ = folded; // the common case: no copy, no call
            return;
        }
        make_long(folded);
    }
    IdentifierKey(const IdentifierKey&) = delete;
    IdentifierKey& operator=(const IdentifierKey&) = delete;
    operator std::string_view() const noexcept { return view_; }

private:
    void make_long(std::string_view folded);
    std::string long_;
    std::string_view view_;
};

/// "n/" + folded prefix: identifiers under that prefix.
std::string counter_key(std::string_view prefix_key);

/// Counter of the identifiers registered against a template: "t/" + template entry key (folded
/// prefix + "/" + version, template.hpp). Empty when the record names no template (or a version
/// too long to be a template's, which therefore cannot exist).
std::string template_usage_key(std::string_view prefix_key, std::string_view version);
std::string template_usage_key(std::string_view prefix_key, const std::vector<HandleValue>& values);
/// "t/" + a template entry key as given (the reader's and the delete check's form).
std::string template_usage_key(std::string_view template_key);

/// "d/YYYY-MM-DD" of a unix time (UTC): the key of that day's registrations counter.
std::string day_counter_key(std::int64_t unix_seconds);
/// day_counter_key + "/" + folded prefix.
std::string day_prefix_counter_key(std::string_view day_key, std::string_view prefix_key);

inline std::string be64(std::uint64_t v) {
    std::string s;
    wire::put_u64(s, v);
    return s;
}

inline std::uint64_t read_be64(std::string_view v) {
    return v.size() == 8 ? wire::load_u64(v.data()) : 0;
}

} // namespace idnode::registry::store
