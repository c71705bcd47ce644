// ReadSnapshot: the registry's read API over one pooled read transaction (registry.hpp).
// Reads never wait for the writer; every view they hand out lives in the snapshot's pages.
#include "registry_impl.hpp"

#include "change_log.hpp"
#include "schema.hpp"
#include "wire.hpp"

namespace idnode::registry {

using namespace store;
using wire::from_hex;
using wire::to_hex;

ReadSnapshot::ReadSnapshot(std::unique_ptr<State> state) noexcept : state_(std::move(state)) {}
ReadSnapshot::ReadSnapshot(ReadSnapshot&&) noexcept = default;
ReadSnapshot& ReadSnapshot::operator=(ReadSnapshot&& other) noexcept {
    if (this != &other) {
        if (state_) {
            state_->impl->release(std::move(state_));
        }
        state_ = std::move(other.state_);
    }
    return *this;
}
ReadSnapshot::~ReadSnapshot() {
    if (state_) {
        state_->impl->release(std::move(state_));
    }
}

Status ReadSnapshot::visit(const Handle& handle,
                           const std::function<void(const RecordView&)>& visitor) const {
    std::string_view bytes;
    if (!state_->txn.get(state_->impl->ids_, IdentifierKey(handle.key()), bytes)) {
        return Error{Errc::not_found, "identifier " + handle.spelling() + " is not registered"};
    }
    auto view = RecordView::parse(bytes);
    if (!view) {
        return view.error();
    }
    if (!equals_folded(view->spelling(), handle.spelling())) {
        // Only reachable for keys longer than kShortKeyLimit whose SHA-256 collided: treat as
        // absent.
        return Error{Errc::not_found, "identifier " + handle.spelling() + " is not registered"};
    }
    visitor(*view);
    return {};
}

Result<Resolution> ReadSnapshot::get(const Handle& handle, const GetOptions& options) const {
    Resolution out;
    Status st = visit(handle, [&](const RecordView& view) {
        out.record.spelling.assign(view.spelling());
        out.record.values.reserve(view.size());
        for (const ValueView& v : view) {
            if (!options.filter.selects(v.index, v.type)) {
                continue;
            }
            if (!options.include_private && !v.permissions.public_read()) {
                out.omitted_private = true;
                continue;
            }
            out.record.values.push_back(v.to_value());
        }
    });
    if (!st) {
        return st.error();
    }
    return out;
}

bool ReadSnapshot::contains(const Handle& handle) const {
    std::string_view bytes;
    return state_->txn.get(state_->impl->ids_, IdentifierKey(handle.key()), bytes);
}

Result<ListPage> ReadSnapshot::list(std::string_view prefix, std::string_view cursor,
                                    std::size_t limit) const {
    auto folded = parse_prefix(prefix);
    if (!folded) {
        return folded.error();
    }
    const std::string start = *folded + "/";
    std::string position = start;
    if (!cursor.empty()) {
        if (!from_hex(cursor, position) || position.compare(0, start.size(), start) != 0) {
            return Error{Errc::invalid_value,
                         "cursor does not belong to prefix " + std::string(prefix)};
        }
    }
    ListPage page;
    lmdb::Cursor c(state_->txn, state_->impl->ids_);
    std::string_view key = position, value;
    bool more = c.move(MDB_SET_RANGE, key, value);
    if (more && !cursor.empty() && key == position) {
        more = c.move(MDB_NEXT, key, value); // the cursor names the last key already returned
    }
    while (more && key.substr(0, start.size()) == start) {
        if (page.handles.size() == limit) {
            page.next_cursor = to_hex(position);
            break;
        }
        auto view = RecordView::parse(value);
        if (!view) {
            return view.error();
        }
        page.handles.emplace_back(view->spelling());
        position.assign(key);
        more = c.move(MDB_NEXT, key, value);
    }
    return page;
}

std::uint64_t ReadSnapshot::count(std::string_view prefix) const {
    std::string_view v;
    if (!state_->txn.get(state_->impl->counters_, counter_key(fold_case(prefix)), v)) {
        return 0;
    }
    return read_be64(v);
}

std::uint64_t ReadSnapshot::template_usage(std::string_view template_key) const {
    std::string_view v;
    const std::string key = "t/" + std::string(template_key);
    return state_->txn.get(state_->impl->counters_, key, v) ? read_be64(v) : 0;
}

std::uint64_t ReadSnapshot::count_all() const {
    std::string_view v;
    return state_->txn.get(state_->impl->counters_, kTotalKey, v) ? read_be64(v) : 0;
}

std::uint64_t ReadSnapshot::registrations(std::int64_t unix_seconds,
                                          std::string_view prefix) const {
    std::string key = day_counter_key(unix_seconds);
    if (!prefix.empty()) {
        key += '/';
        key += fold_case(prefix);
    }
    std::string_view v;
    return state_->txn.get(state_->impl->counters_, key, v) ? read_be64(v) : 0;
}

std::vector<std::pair<std::string, std::uint64_t>> ReadSnapshot::prefix_counts() const {
    std::vector<std::pair<std::string, std::uint64_t>> out;
    lmdb::Cursor c(state_->txn, state_->impl->counters_);
    std::string_view key = "n/", value;
    bool more = c.move(MDB_SET_RANGE, key, value);
    while (more && key.substr(0, 2) == "n/") {
        out.emplace_back(std::string(key.substr(2)), read_be64(value));
        more = c.move(MDB_NEXT, key, value);
    }
    return out;
}

std::optional<std::string> ReadSnapshot::get_entry(Table table, std::string_view key) const {
    std::string_view v;
    const MDB_dbi dbi = state_->impl->table(table);
    if (key.empty() || dbi == 0 || !state_->txn.get(dbi, key, v)) {
        return std::nullopt;
    }
    return std::string(v);
}

void ReadSnapshot::for_each_entry(
    Table table, const std::function<void(const std::string&, const std::string&)>& fn) const {
    std::string cursor;
    do {
        auto page = list_entries(table, cursor, 1000);
        for (const auto& [key, value] : page.entries)
            fn(key, value);
        cursor = std::move(page.next_cursor);
    } while (!cursor.empty());
}

std::vector<Identity> ReadSnapshot::identities_of(std::string_view handle_folded) const {
    std::vector<Identity> out;
    const MDB_dbi dbi = state_->impl->table(Table::identities);
    if (dbi == 0) {
        return out; // a read-only open of a database older than the table
    }
    // Every resolution asks; most nodes hold few identities or none. An empty table costs a
    // look at the transaction's table record instead of a cursor and a seek.
    MDB_stat stat;
    if (mdb_stat(state_->txn.get(), dbi, &stat) == MDB_SUCCESS && stat.ms_entries == 0) {
        return out;
    }
    const std::string prefix = identity_key_prefix(handle_folded);
    lmdb::Cursor c(state_->txn, dbi);
    std::string_view key = prefix, value;
    for (bool more = c.move(MDB_SET_RANGE, key, value); more && key.starts_with(prefix);
         more = c.move(MDB_NEXT, key, value)) {
        if (auto identity = decode_identity(value)) {
            out.push_back(std::move(*identity));
        }
    }
    return out;
}

EntryPage ReadSnapshot::list_entries(Table table, std::string_view cursor,
                                     std::size_t limit) const {
    EntryPage page;
    if (state_->impl->table(table) == 0) {
        return page; // a table this database does not have yet (read-only open)
    }
    lmdb::Cursor c(state_->txn, state_->impl->table(table));
    std::string position;
    std::string_view key, value;
    bool more;
    if (cursor.empty() || !from_hex(cursor, position)) {
        more = c.move(MDB_FIRST, key, value);
    } else {
        key = position;
        more = c.move(MDB_SET_RANGE, key, value);
        if (more && key == position) {
            more = c.move(MDB_NEXT, key, value);
        }
    }
    while (more) {
        if (page.entries.size() == limit) {
            page.next_cursor = to_hex(page.entries.back().first);
            break;
        }
        page.entries.emplace_back(std::string(key), std::string(value));
        more = c.move(MDB_NEXT, key, value);
    }
    return page;
}

std::vector<ChangeEntry> ReadSnapshot::changes(std::uint64_t from, std::size_t limit) const {
    std::vector<ChangeEntry> out;
    lmdb::Cursor c(state_->txn, state_->impl->changes_);
    const std::string start = be64(from);
    std::string_view key = start, value;
    bool more = c.move(MDB_SET_RANGE, key, value);
    while (more && out.size() < limit) {
        ChangeEntry e;
        if (key.size() != 8 || !decode_change(read_be64(key), value, e)) {
            throw std::runtime_error("change log entry " + to_hex(key) + " is corrupt");
        }
        if (e.loaded) {
            // No copy in the log: the record as stored in this snapshot (ChangeEntry::loaded).
            auto handle = parse_handle(e.key, HandleLimits{kHandleProtocolMaxLength});
            std::string_view record;
            if (handle &&
                state_->txn.get(state_->impl->ids_, IdentifierKey(handle->key()), record)) {
                e.value.assign(record);
            }
        }
        out.push_back(std::move(e));
        more = c.move(MDB_NEXT, key, value);
    }
    return out;
}

std::uint64_t ReadSnapshot::last_sequence() const {
    lmdb::Cursor c(state_->txn, state_->impl->changes_);
    std::string_view key, value;
    return c.move(MDB_LAST, key, value) ? read_be64(key) : 0;
}

} // namespace idnode::registry
