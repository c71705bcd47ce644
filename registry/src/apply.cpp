// The apply paths: one write operation inside a group commit, on the writer thread. Each decides
// the operation's outcome, writes the record or entry, adjusts the counters and appends the
// change-log entry. New records beyond the last key leave for the append fast path (append.cpp).
#include "registry_impl.hpp"

#include "group_context.hpp"
#include "record_encoding.hpp"

#include <algorithm>

namespace idnode::registry {

using namespace store;

namespace {

bool same_values(const std::vector<HandleValue>& a, const std::vector<HandleValue>& b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (!a[i].same_content(b[i])) {
            return false;
        }
    }
    return true;
}

void sort_by_index(std::vector<HandleValue>& values) {
    std::sort(values.begin(), values.end(),
              [](const HandleValue& x, const HandleValue& y) { return x.index < y.index; });
}

/// Timestamps: a value whose content is unchanged keeps the timestamp it was stored with; every
/// new or changed value is stamped `now`.
void stamp(std::vector<HandleValue>& values, const std::vector<HandleValue>* previous,
           std::uint32_t now) {
    for (auto& v : values) {
        v.timestamp = now;
        if (previous == nullptr) {
            continue;
        }
        for (const auto& old : *previous) {
            if (old.index == v.index && old.same_content(v)) {
                v.timestamp = old.timestamp;
                break;
            }
        }
    }
}

} // namespace

OpResult RegistryImpl::apply(GroupContext& ctx, const WriteOp& op, const std::string& account) {
    if (!std::holds_alternative<PutEncodedRecord>(op) && !std::holds_alternative<PutRecord>(op)) {
        ctx.ids_appender.reset(); // see GroupContext::ids_appender (apply_put drops it itself)
    }
    return std::visit(
        [&](const auto& o) -> OpResult {
            using T = std::decay_t<decltype(o)>;
            if constexpr (std::is_same_v<T, PutRecord>) {
                return apply_put(ctx, o, account);
            } else if constexpr (std::is_same_v<T, SetValues>) {
                return apply_set(ctx, o, account);
            } else if constexpr (std::is_same_v<T, RemoveValues>) {
                return apply_remove(ctx, o, account);
            } else if constexpr (std::is_same_v<T, DeleteRecord>) {
                return apply_delete(ctx, o, account);
            } else if constexpr (std::is_same_v<T, PutEntry>) {
                return apply_put_entry(ctx, o, account);
            } else if constexpr (std::is_same_v<T, PutEncodedRecord>) {
                return apply_put_encoded(ctx, o, account);
            } else {
                return apply_delete_entry(ctx, o, account);
            }
        },
        op);
}

namespace {

/// The stored record under `key`, decoded; nullopt when absent. A corrupt stored record becomes
/// an Error for this operation only.
struct Existing {
    bool found = false;
    Record record;
    std::optional<Error> error;
};

Existing load_existing(lmdb::Txn& txn, MDB_dbi ids, std::string_view key) {
    Existing e;
    std::string_view bytes;
    if (!txn.get(ids, key, bytes)) {
        return e;
    }
    auto rec = decode_record(bytes);
    if (!rec) {
        e.error = rec.error();
        return e;
    }
    e.found = true;
    e.record = std::move(rec).value();
    return e;
}

} // namespace

OpResult RegistryImpl::apply_put(GroupContext& ctx, const PutRecord& op,
                                 const std::string& account) {
    if (Status st = validate_values(op.values, options_.value_limits); !st) {
        return failed(st.code(), op.handle.spelling() + ": " + st.error().message);
    }
    const IdentifierKey key(op.handle.key());
    if (op.mode != PutMode::replace && std::string_view(key) > std::string_view(ctx.ids_last_key)) {
        // Beyond every stored key (ids_last_key is never below the real last key): the record
        // is new, no lookup needed.
        return append_new_put(ctx, op, key, account);
    }
    ctx.ids_appender.reset(); // the writes below are plain puts
    Existing existing = load_existing(ctx.txn, ids_, key);
    if (existing.error) {
        return failed(existing.error->code, existing.error->message);
    }
    std::vector<HandleValue> values = op.values;
    sort_by_index(values);
    Outcome outcome;
    std::string spelling = op.handle.spelling();
    if (existing.found) {
        if (same_values(existing.record.values, values)) {
            return OpResult{Outcome::unchanged, {}, 0};
        }
        if (op.mode == PutMode::create) {
            return failed(Errc::already_exists,
                          "identifier " + op.handle.spelling() + " already exists");
        }
        spelling = existing.record.spelling; // the registered spelling is kept
        outcome = Outcome::replaced;
    } else {
        if (op.mode == PutMode::replace) {
            return failed(Errc::not_found,
                          "identifier " + op.handle.spelling() + " is not registered");
        }
        outcome = Outcome::created;
    }
    return store_record(ctx, key, op.handle, spelling, values,
                        existing.found ? &existing.record.values : nullptr, outcome, account);
}

// The one tail of every write that stores a whole record through a plain put (put, set,
// remove): timestamps kept for unchanged values (stamp), the template usage moved, the bytes
// built by the shared encoder (record_encoding.hpp), a creation counted, the change logged.
OpResult RegistryImpl::store_record(GroupContext& ctx, std::string_view key, const Handle& handle,
                                    const std::string& spelling, std::vector<HandleValue>& values,
                                    const std::vector<HandleValue>* previous, Outcome outcome,
                                    const std::string& account) {
    stamp(values, previous, ctx.now);
    ctx.track_template(handle.prefix_key(), previous, &values);
    const std::string bytes = encode_record(spelling, values);
    if (outcome == Outcome::created) {
        ctx.insert_identifier(ids_, key, bytes);
        ctx.count_created(handle.prefix_key());
    } else {
        ctx.txn.put(ids_, key, bytes);
    }
    OpResult result{outcome, {}, 0};
    ctx.log(ChangeKind::identifier, outcome, account, spelling, bytes, result, changes_);
    return result;
}

OpResult RegistryImpl::apply_set(GroupContext& ctx, const SetValues& op,
                                 const std::string& account) {
    if (Status st = validate_values(op.values, options_.value_limits); !st) {
        return failed(st.code(), op.handle.spelling() + ": " + st.error().message);
    }
    const IdentifierKey key(op.handle.key());
    Existing existing = load_existing(ctx.txn, ids_, key);
    if (existing.error) {
        return failed(existing.error->code, existing.error->message);
    }
    if (!existing.found && !op.create_if_missing) {
        return failed(Errc::not_found, "identifier " + op.handle.spelling() + " is not registered");
    }
    std::vector<HandleValue> merged = existing.record.values;
    for (const auto& v : op.values) {
        auto it = std::find_if(merged.begin(), merged.end(),
                               [&](const HandleValue& m) { return m.index == v.index; });
        if (it == merged.end()) {
            merged.push_back(v);
        } else {
            *it = v;
        }
    }
    sort_by_index(merged);
    if (existing.found && same_values(existing.record.values, merged)) {
        return OpResult{Outcome::unchanged, {}, 0};
    }
    if (Status st = validate_values(merged, options_.value_limits); !st) {
        return failed(st.code(), op.handle.spelling() + ": " + st.error().message);
    }
    const std::string spelling = existing.found ? existing.record.spelling : op.handle.spelling();
    return store_record(ctx, key, op.handle, spelling, merged,
                        existing.found ? &existing.record.values : nullptr,
                        existing.found ? Outcome::updated : Outcome::created, account);
}

OpResult RegistryImpl::apply_remove(GroupContext& ctx, const RemoveValues& op,
                                    const std::string& account) {
    const IdentifierKey key(op.handle.key());
    Existing existing = load_existing(ctx.txn, ids_, key);
    if (existing.error) {
        return failed(existing.error->code, existing.error->message);
    }
    if (!existing.found) {
        return failed(Errc::not_found, "identifier " + op.handle.spelling() + " is not registered");
    }
    std::vector<HandleValue> kept;
    for (const auto& v : existing.record.values) {
        if (std::find(op.indices.begin(), op.indices.end(), v.index) == op.indices.end()) {
            kept.push_back(v);
        }
    }
    if (kept.size() == existing.record.values.size()) {
        return OpResult{Outcome::unchanged, {}, 0};
    }
    if (kept.empty()) {
        return apply_delete(ctx, DeleteRecord{op.handle}, account);
    }
    // Every kept value is unchanged, so store_record's stamp keeps its timestamp.
    return store_record(ctx, key, op.handle, existing.record.spelling, kept,
                        &existing.record.values, Outcome::updated, account);
}

OpResult RegistryImpl::apply_delete(GroupContext& ctx, const DeleteRecord& op,
                                    const std::string& account) {
    const IdentifierKey key(op.handle.key());
    std::string_view bytes;
    if (!ctx.txn.get(ids_, key, bytes)) {
        return failed(Errc::not_found, "identifier " + op.handle.spelling() + " is not registered");
    }
    std::string spelling = op.handle.spelling();
    if (auto view = RecordView::parse(bytes)) {
        spelling.assign(view->spelling());
        for (const ValueView& v : *view) {
            if (v.index == kIndexTemplate) {
                if (auto k = template_usage_key(op.handle.prefix_key(), v.data); !k.empty()) {
                    ctx.count_deltas[k] -= 1;
                }
            }
        }
    }
    ctx.txn.del(ids_, key);
    ctx.count_deltas[counter_key(op.handle.prefix_key())] -= 1;
    ctx.total_delta -= 1;
    OpResult result{Outcome::deleted, {}, 0};
    ctx.log(ChangeKind::identifier, Outcome::deleted, account, spelling, {}, result, changes_);
    return result;
}

OpResult RegistryImpl::apply_put_entry(GroupContext& ctx, const PutEntry& op,
                                       const std::string& account) {
    if (op.key.empty() || op.key.size() > kShortKeyLimit) {
        return failed(Errc::invalid_value,
                      "entry key must be 1 to " + std::to_string(kShortKeyLimit) + " bytes");
    }
    const MDB_dbi dbi = table(op.table);
    std::string_view old;
    const bool found = ctx.txn.get(dbi, op.key, old);
    Outcome outcome;
    if (found) {
        if (old == op.value) {
            return OpResult{Outcome::unchanged, {}, 0};
        }
        if (op.mode == PutMode::create) {
            return failed(Errc::already_exists, "entry " + op.key + " already exists");
        }
        if (op.expected && old != *op.expected) {
            return failed(Errc::already_exists,
                          "entry " + op.key + " changed concurrently; read it again and retry");
        }
        outcome = Outcome::replaced;
    } else {
        if (op.mode == PutMode::replace) {
            return failed(Errc::not_found, "entry " + op.key + " does not exist");
        }
        if (op.expected) {
            return failed(Errc::already_exists,
                          "entry " + op.key + " changed concurrently; read it again and retry");
        }
        outcome = Outcome::created;
    }
    ctx.txn.put(dbi, op.key, op.value);
    OpResult result{outcome, {}, 0};
    if (logged_table(op.table)) {
        ctx.log(change_kind(op.table), outcome, account, op.key, op.value, result, changes_);
    }
    return result;
}

OpResult RegistryImpl::apply_delete_entry(GroupContext& ctx, const DeleteEntry& op,
                                          const std::string& account) {
    if (op.table == Table::templates && !op.key.empty()) {
        // The template entry key is "<folded prefix>/<version>"; see template.hpp.
        const std::string usage = "t/" + op.key;
        std::string_view stored;
        const std::int64_t count =
            static_cast<std::int64_t>(ctx.txn.get(counters_, usage, stored) ? read_be64(stored)
                                                                            : 0) +
            (ctx.count_deltas.count(usage) ? ctx.count_deltas[usage] : 0);
        if (count > 0) {
            return failed(Errc::in_use, "template " + op.key + " is used by " +
                                            std::to_string(count) + " identifiers");
        }
    }
    if (op.key.empty() || !ctx.txn.del(table(op.table), op.key)) {
        return failed(Errc::not_found, "entry " + op.key + " does not exist");
    }
    OpResult result{Outcome::deleted, {}, 0};
    if (logged_table(op.table)) {
        ctx.log(change_kind(op.table), Outcome::deleted, account, op.key, {}, result, changes_);
    }
    return result;
}

} // namespace idnode::registry
