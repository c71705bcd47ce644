// RegistryImpl::GroupContext: the state of one group commit, shared by the apply paths.
//
// One write transaction, the next change-log sequence, the counter deltas folded into the
// counters at commit, and the cursors and buffers the append fast paths reuse so that a bulk
// load allocates nothing per record (docs/storage.md, "group commit").
//
// Thread-safety: none needed; a GroupContext lives on the writer thread's stack for one
// commit_group attempt. Lifetime: the cursors must be closed (close_cursors) before the
// transaction commits; buffers die with the attempt.
#pragma once

#include "change_log.hpp"
#include "registry_impl.hpp"
#include "schema.hpp"

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace idnode::registry {

using store::counter_key;
using store::template_usage_key;

struct RegistryImpl::GroupContext {
    GroupContext(lmdb::Txn& t, std::uint32_t now_seconds, std::uint64_t first_sequence,
                 bool log_record_copies)
        : txn(t), now(now_seconds), next_sequence(first_sequence),
          log_record_copies(log_record_copies) {}

    lmdb::Txn& txn;
    std::uint32_t now;
    std::uint64_t next_sequence;
    // RegistryOptions::log_record_copies: false = identifier creations and replacements are
    // logged without their record (ChangeEntry::loaded).
    bool log_record_copies;
    std::map<std::string, std::int64_t> count_deltas; // counter key -> delta
    std::int64_t total_delta = 0;
    std::string day_key; // "d/YYYY-MM-DD" of `now`, computed on the first creation
    // Largest identifier key when the group began (or one appended since; may be stale after a
    // delete, which only makes it larger than the real last key, so appending stays correct).
    std::string ids_last_key;

    /// Inserts a new identifier. Keys beyond the current last key use MDB_APPEND: ascending
    /// loads (production runs) then fill pages completely instead of splitting them in half.
    void insert_identifier(MDB_dbi ids, std::string_view key, std::string_view bytes) {
        if (key > std::string_view(ids_last_key)) {
            txn.put(ids, key, bytes, MDB_APPEND);
            ids_last_key.assign(key);
        } else {
            txn.put(ids, key, bytes);
        }
    }

    /// Moves the record from the usage count of its old template to its new one.
    void track_template(std::string_view prefix_key, const std::vector<HandleValue>* before,
                        const std::vector<HandleValue>* after) {
        const std::string b = before ? template_usage_key(prefix_key, *before) : std::string();
        const std::string a = after ? template_usage_key(prefix_key, *after) : std::string();
        if (a == b) {
            return;
        }
        if (!b.empty()) {
            count_deltas[b] -= 1;
        }
        if (!a.empty()) {
            count_deltas[a] += 1;
        }
    }

    /// Counts a new identifier: under its prefix, in total, and in today's registrations.
    void count_created(std::string_view prefix_key) {
        count_deltas[counter_key(prefix_key)] += 1;
        total_delta += 1;
        count_deltas[today()] += 1;
        count_deltas[store::day_prefix_counter_key(today(), prefix_key)] += 1;
    }

    /// "d/YYYY-MM-DD" of `now`, computed once per group.
    const std::string& today() {
        if (day_key.empty())
            day_key = store::day_counter_key(now);
        return day_key;
    }

    /// Appends the change-log entry (kind, op, time, account, key, value; decode_change reads
    /// it), written straight into its place in the page: a bulk load logs one entry per record.
    void log(ChangeKind kind, Outcome outcome, const std::string& account, std::string_view key,
             std::string_view value, OpResult& result, MDB_dbi changes) {
        if (logs_without_record(kind, outcome)) {
            log_loaded(outcome, account, key, result, changes);
            return;
        }
        char* out = log_reserve(kind, outcome, account, key, value.size(), result, changes);
        if (!value.empty()) {
            std::memcpy(out, value.data(), value.size());
        }
    }

    /// True when this entry is written by log_loaded (no record copy).
    bool logs_without_record(ChangeKind kind, Outcome outcome) const noexcept {
        return !log_record_copies && kind == ChangeKind::identifier &&
               (outcome == Outcome::created || outcome == Outcome::replaced);
    }

    /// The compact entry of an offline load: op flagged loaded, no value (ChangeEntry::loaded).
    void log_loaded(Outcome outcome, const std::string& account, std::string_view key,
                    OpResult& result, MDB_dbi changes) {
        log_reserve(ChangeKind::identifier, outcome, account, key, 0, result, changes,
                    store::kLoadedOpFlag);
    }

    /// log() without the value: returns where its `value_size` bytes go, to be filled before the
    /// next write of the transaction. The entry's key is the next sequence number, so every entry
    /// is appended (MDB_APPEND through one cursor kept for the group: no descent per entry).
    char* log_reserve(ChangeKind kind, Outcome outcome, const std::string& account,
                      std::string_view key, std::size_t value_size, OpResult& result,
                      MDB_dbi changes, std::uint8_t op_flags = 0) {
        result.sequence = next_sequence++;
        char seq[8];
        wire::store_u64(seq, result.sequence);
        const std::size_t size = store::change_entry_bytes(account.size(), key.size(), value_size);
        if (!changes_appender) {
            changes_appender = std::make_unique<lmdb::Cursor>(txn, changes);
        }
        char* p = changes_appender->reserve(std::string_view(seq, 8), size, MDB_APPEND);
        const auto op = static_cast<std::uint8_t>(store::change_op(outcome)) | op_flags;
        return store::write_change_entry(p, kind, static_cast<std::uint8_t>(op), now, account, key,
                                         value_size);
    }

    /// Appends a new identifier whose key is beyond every stored one (the caller checked it
    /// against ids_last_key) through the group's identifier cursor, MDB_APPEND | MDB_RESERVE:
    /// returns where its `size` bytes go, to be filled before the next write.
    char* append_identifier(MDB_dbi ids, std::string_view key, std::size_t size) {
        if (!ids_appender) {
            ids_appender = std::make_unique<lmdb::Cursor>(txn, ids);
        }
        char* out = ids_appender->reserve(key, size, MDB_APPEND);
        ids_last_key.assign(key);
        return out;
    }

    /// Write cursors must be closed before their transaction commits.
    void close_cursors() noexcept {
        ids_appender.reset();
        changes_appender.reset();
    }

    /// count_created plus the template usage count, remembering the last keys: a sorted load
    /// hits the same prefix (and template) counters for long stretches.
    void count_one(std::string_view prefix_key, std::string_view template_version) {
        if (prefix_key != last_prefix_key || last_prefix_delta == nullptr) {
            last_prefix_key.assign(prefix_key);
            last_prefix_delta = &count_deltas[counter_key(prefix_key)];
            last_day_delta = &count_deltas[today()];
            last_day_prefix_delta =
                &count_deltas[store::day_prefix_counter_key(today(), prefix_key)];
        }
        *last_prefix_delta += 1;
        *last_day_delta += 1;
        *last_day_prefix_delta += 1;
        total_delta += 1;
        if (template_version.empty()) {
            return;
        }
        const std::string tkey = template_usage_key(prefix_key, template_version);
        if (tkey.empty()) {
            return;
        }
        if (tkey != last_template_key || last_template_delta == nullptr) {
            last_template_key = tkey;
            last_template_delta = &count_deltas[tkey];
        }
        *last_template_delta += 1;
    }

    // The identifier cursor serves only runs of consecutive appends (apply_put_encoded and
    // append_new_put): apply() and apply_put drop it before any other operation, so that every
    // other write to ids_ sees exactly what it saw before this cursor existed (a plain mdb_put).
    // Nothing but log() writes changes_.
    std::unique_ptr<lmdb::Cursor> ids_appender, changes_appender;
    std::vector<std::size_t> stamp_offsets; // of the values in a record (apply_put_encoded)
    std::string key_buffer;
    std::string record_buffer;                      // append_new_put's encoding, reused
    std::vector<const HandleValue*> ordered_values; // append_new_put's values in index order
    std::string last_prefix_key, last_template_key;
    // Into count_deltas (a std::map: element addresses stay valid).
    std::int64_t* last_prefix_delta = nullptr;
    std::int64_t* last_day_delta = nullptr;
    std::int64_t* last_day_prefix_delta = nullptr;
    std::int64_t* last_template_delta = nullptr;
};

} // namespace idnode::registry
