// Registry::verify: one read snapshot walked end to end, problems collected, nothing fixed
// (registry.hpp; docs/storage.md, "verify").
#include "registry_impl.hpp"

#include "idnode/registry/admin.hpp"

#include "change_log.hpp"
#include "wire.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <tuple>

namespace idnode::registry {

using namespace store;
using wire::from_hex;
using wire::to_hex;

namespace {

/// 64-bit FNV-1a; `basis` selects one of two independent-enough hashes of the same bytes.
std::uint64_t fnv1a(std::string_view bytes, std::uint64_t basis = 14695981039346656037ull) {
    std::uint64_t h = basis;
    for (const char c : bytes) {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ull;
    }
    return h;
}

/// What the change log says about one key: its last entry, reduced to hashes so that the check
/// runs in bounded memory (see check_change_log_matches_data).
struct LastChange {
    std::uint64_t key_a = 0, key_b = 0;
    std::uint64_t sequence = 0;
    std::uint64_t value_hash = 0; // of the value bytes and their size
    std::uint8_t table = 0;       // 0 = identifiers, else Table
    bool removed = false;
    bool loaded = false; // no record copy to compare (ChangeEntry::loaded): presence only

    auto key() const { return std::tie(table, key_a, key_b); }
};

std::uint64_t value_hash(std::string_view bytes) {
    return fnv1a(bytes) ^ (bytes.size() * 0x9E3779B97F4A7C15ull);
}

/// The kinds this build logs (registry.hpp ChangeKind; 6 would be the unlogged idempotency table).
bool known_kind(ChangeKind kind) noexcept {
    const int k = static_cast<int>(kind);
    return (k >= 1 && k <= 5) || kind == ChangeKind::identity;
}

/// Memory the change-log check may use per pass (40 bytes per entry: ~27 million entries); larger
/// logs are checked in several passes, each over a slice of the key space.
constexpr std::uint64_t kVerifyPassBytes = 1ull << 30;

} // namespace

// The change log must replay to the data: for every key, the last entry carries exactly the bytes
// stored now (a record or an administrative entry), or is a removal and nothing is stored; every
// stored key has an entry. Keys are compared as two 64-bit hashes and values as a hash of bytes
// and size, so a pass needs 40 bytes per change-log entry; beyond kVerifyPassBytes the key space is
// split into slices walked one after another (more passes over the log, same memory).
void RegistryImpl::check_change_log_matches_data(lmdb::Txn& txn, std::uint64_t changes,
                                                 const std::function<void(std::string)>& problem) {
    const std::uint64_t passes = changes * sizeof(LastChange) / kVerifyPassBytes + 1;
    const HandleLimits limits{kHandleProtocolMaxLength};
    for (std::uint64_t pass = 0; pass < passes; ++pass) {
        auto in_slice = [&](std::string_view key) { return fnv1a(key) % passes == pass; };
        std::vector<LastChange> last;
        {
            lmdb::Cursor c(txn, changes_);
            std::string_view key, value;
            for (bool more = c.move(MDB_FIRST, key, value); more;
                 more = c.move(MDB_NEXT, key, value)) {
                ChangeEntry e;
                if (key.size() != 8 || !decode_change(read_be64(key), value, e)) {
                    continue; // reported by the contiguity walk
                }
                if (!known_kind(e.kind)) {
                    continue; // reported by the contiguity walk
                }
                const int kind = static_cast<int>(e.kind);
                const auto t = static_cast<std::uint8_t>(kind - 1);
                std::string stored_key;
                if (e.kind == ChangeKind::identifier) {
                    auto handle = parse_handle(e.key, limits);
                    if (!handle) {
                        if (pass == 0) {
                            problem("changes: entry " + std::to_string(e.sequence) +
                                    " names an invalid handle: " + handle.error().message);
                        }
                        continue;
                    }
                    stored_key.assign(std::string_view(IdentifierKey(handle->key())));
                } else {
                    stored_key = std::move(e.key);
                }
                if (!in_slice(stored_key)) {
                    continue;
                }
                last.push_back(LastChange{
                    fnv1a(stored_key), std::hash<std::string_view>{}(stored_key), e.sequence,
                    value_hash(e.value), t, e.op == ChangeOp::remove, e.loaded});
            }
        }
        // Entries arrive in sequence order; a stable sort by key keeps that order within a key, so
        // the last entry of each run is the key's last change. Compact in place to those.
        std::stable_sort(last.begin(), last.end(), [](const LastChange& a, const LastChange& b) {
            return a.key() < b.key();
        });
        std::size_t kept = 0;
        for (std::size_t i = 0; i < last.size(); ++i) {
            if (i + 1 < last.size() && last[i + 1].key() == last[i].key()) {
                continue;
            }
            last[kept++] = last[i];
        }
        last.resize(kept);
        std::vector<bool> matched(last.size(), false);

        auto walk = [&](std::uint8_t t, MDB_dbi dbi, const char* name) {
            lmdb::Cursor c(txn, dbi);
            std::string_view key, value;
            for (bool more = c.move(MDB_FIRST, key, value); more;
                 more = c.move(MDB_NEXT, key, value)) {
                if (!in_slice(key)) {
                    continue;
                }
                const LastChange probe{
                    fnv1a(key), std::hash<std::string_view>{}(key), 0, 0, t, false, false};
                auto it = std::lower_bound(
                    last.begin(), last.end(), probe,
                    [](const LastChange& a, const LastChange& b) { return a.key() < b.key(); });
                auto where = [&] {
                    return std::string("changes: ") + name + " key " +
                           (t == 0 ? to_hex(key.substr(0, 64)) : std::string(key));
                };
                if (it == last.end() || it->key() != probe.key()) {
                    problem(where() + " is stored but has no change-log entry");
                    continue;
                }
                matched[static_cast<std::size_t>(it - last.begin())] = true;
                if (it->removed) {
                    problem(where() + " is stored but its last change (" +
                            std::to_string(it->sequence) + ") removed it");
                } else if (!it->loaded && it->value_hash != value_hash(value)) {
                    problem(where() + " differs from its last change (" +
                            std::to_string(it->sequence) + ")");
                }
            }
        };
        walk(0, ids_, "ids");
        walk(static_cast<std::uint8_t>(Table::prefixes), table(Table::prefixes), "prefixes");
        walk(static_cast<std::uint8_t>(Table::templates), table(Table::templates), "templates");
        walk(static_cast<std::uint8_t>(Table::accounts), table(Table::accounts), "accounts");
        walk(static_cast<std::uint8_t>(Table::api_keys), table(Table::api_keys), "apikeys");
        if (table(Table::identities) != 0) {
            walk(static_cast<std::uint8_t>(Table::identities), table(Table::identities),
                 "identities");
        }
        for (std::size_t i = 0; i < last.size(); ++i) {
            if (!matched[i] && !last[i].removed) {
                problem("changes: entry " + std::to_string(last[i].sequence) +
                        " is the last change of a key that is not stored");
            }
        }
    }
}

VerifyReport RegistryImpl::verify(std::size_t max_problems) {
    VerifyReport report;
    auto problem = [&](std::string text) {
        if (report.problems.size() < max_problems) {
            report.problems.push_back(std::move(text));
        }
    };
    ReadSnapshot snap = snapshot();
    lmdb::Txn& txn = snap.state_->txn;

    std::string_view stored;
    if (!txn.get(meta_, kSchemaKey, stored) || stored.size() != 4) {
        problem("meta: schema_version is missing or malformed");
    } else if (wire::load_u32(stored.data()) != kSchemaVersion) {
        problem("meta: schema_version is " + std::to_string(wire::load_u32(stored.data())) +
                ", expected " + std::to_string(kSchemaVersion));
    }

    // Identifiers: every record decodes, its key is the folded spelling (or the long-key form),
    // values are in ascending unique index order; recount per prefix.
    std::map<std::string, std::uint64_t> counted; // counter key -> identifiers
    {
        const HandleLimits limits{kHandleProtocolMaxLength};
        lmdb::Cursor c(txn, ids_);
        std::string_view key, value;
        for (bool more = c.move(MDB_FIRST, key, value); more; more = c.move(MDB_NEXT, key, value)) {
            ++report.identifiers;
            const std::string where = "ids: key " + to_hex(key.substr(0, 64)) + ": ";
            auto view = RecordView::parse(value);
            if (!view) {
                problem(where + "record does not decode: " + view.error().message);
                continue;
            }
            auto handle = parse_handle(view->spelling(), limits);
            if (!handle) {
                problem(where + "stored spelling is not a valid handle: " + handle.error().message);
                continue;
            }
            if (std::string_view(IdentifierKey(handle->key())) != key) {
                problem(where + "key does not match the folded spelling " + handle->spelling());
            }
            std::int64_t previous = 0;
            for (const ValueView& v : *view) {
                if (v.index <= previous) {
                    problem(where + handle->spelling() +
                            ": value indices not ascending/unique at " + std::to_string(v.index));
                    break;
                }
                previous = v.index;
            }
            if (view->size() == 0) {
                problem(where + handle->spelling() + ": record has no values");
            }
            counted[counter_key(handle->prefix_key())] += 1;
        }
    }

    // Counters equal the recount.
    {
        lmdb::Cursor c(txn, counters_);
        std::string_view key, value;
        std::map<std::string, std::uint64_t> stored_counts;
        bool have_total = false;
        std::uint64_t total = 0;
        for (bool more = c.move(MDB_FIRST, key, value); more; more = c.move(MDB_NEXT, key, value)) {
            if (key == kTotalKey) {
                have_total = value.size() == 8;
                total = read_be64(value);
                continue;
            }
            if (key.substr(0, 2) != "n/") {
                continue; // counters of other kinds are not identifier counts
            }
            if (value.size() != 8) {
                problem("counters: " + std::string(key) + " is not 8 bytes");
                continue;
            }
            stored_counts.emplace(std::string(key), read_be64(value));
        }
        for (const auto& [k, n] : counted) {
            auto it = stored_counts.find(k);
            const std::uint64_t s = it == stored_counts.end() ? 0 : it->second;
            if (s != n) {
                problem("counters: " + k.substr(2) + " says " + std::to_string(s) + ", found " +
                        std::to_string(n) + " identifiers");
            }
        }
        for (const auto& [k, s] : stored_counts) {
            if (!counted.contains(k)) {
                problem("counters: " + k.substr(2) + " says " + std::to_string(s) +
                        ", found 0 identifiers");
            }
        }
        if (report.identifiers != 0 || have_total) {
            if (!have_total || total != report.identifiers) {
                problem("counters: total says " + std::to_string(have_total ? total : 0) +
                        ", found " + std::to_string(report.identifiers) + " identifiers");
            }
        }
    }

    // Change log: decodable, sequences contiguous (no gap, no reordering).
    {
        lmdb::Cursor c(txn, changes_);
        std::string_view key, value;
        std::uint64_t expected = 0;
        for (bool more = c.move(MDB_FIRST, key, value); more; more = c.move(MDB_NEXT, key, value)) {
            ++report.changes;
            if (key.size() != 8) {
                problem("changes: key " + to_hex(key) + " is not a 64-bit sequence");
                continue;
            }
            const std::uint64_t seq = read_be64(key);
            if (expected != 0 && seq != expected) {
                problem("changes: gap before sequence " + std::to_string(seq) + " (expected " +
                        std::to_string(expected) + ")");
            }
            expected = seq + 1;
            ChangeEntry e;
            if (!decode_change(seq, value, e)) {
                problem("changes: entry " + std::to_string(seq) + " does not decode");
                continue;
            }
            const auto kind = static_cast<int>(e.kind);
            const auto op = static_cast<int>(e.op);
            if (!known_kind(e.kind) || op < 1 || op > 4) {
                problem("changes: entry " + std::to_string(seq) + " has kind " +
                        std::to_string(kind) + " op " + std::to_string(op));
            } else if (e.kind == ChangeKind::identifier && e.op != ChangeOp::remove && !e.loaded) {
                if (auto view = RecordView::parse(e.value); !view) {
                    problem("changes: entry " + std::to_string(seq) +
                            " carries a record that does not decode: " + view.error().message);
                }
            }
        }
    }

    check_change_log_matches_data(txn, report.changes, problem);

    // Administrative tables decode with their own codecs (templates are opaque documents owned by
    // the layer above; only their presence is counted).
    auto walk = [&](Table t, const char* name, auto&& check) {
        lmdb::Cursor c(txn, table(t));
        std::string_view key, value;
        for (bool more = c.move(MDB_FIRST, key, value); more; more = c.move(MDB_NEXT, key, value)) {
            ++report.admin_entries;
            if (auto err = check(value)) {
                problem(std::string(name) + ": " + std::string(key) + ": " + *err);
            }
        }
    };
    auto message_of = [](const auto& r) -> std::optional<std::string> {
        if (r) {
            return std::nullopt;
        }
        return r.error().message;
    };
    walk(Table::prefixes, "prefixes",
         [&](std::string_view v) { return message_of(decode_prefix(v)); });
    walk(Table::accounts, "accounts",
         [&](std::string_view v) { return message_of(decode_account(v)); });
    walk(Table::api_keys, "apikeys",
         [&](std::string_view v) { return message_of(decode_api_key(v)); });
    if (table(Table::identities) != 0) {
        walk(Table::identities, "identities",
             [&](std::string_view v) { return message_of(decode_identity(v)); });
    }
    walk(Table::templates, "templates", [](std::string_view v) -> std::optional<std::string> {
        if (v.empty()) {
            return std::string("empty template document");
        }
        return std::nullopt;
    });
    // Bulk outcomes are bookkeeping, not administrative entries: checked, not counted.
    if (table(Table::idempotency) != 0) {
        lmdb::Cursor c(txn, table(Table::idempotency));
        std::string_view key, value;
        for (bool more = c.move(MDB_FIRST, key, value); more; more = c.move(MDB_NEXT, key, value)) {
            if (auto outcome = decode_bulk_outcome(value); !outcome) {
                std::string name(key); // "<account>\0<Idempotency-Key>"
                std::replace(name.begin(), name.end(), '\0', '/');
                problem("idempotency: " + name + ": " + outcome.error().message);
            }
        }
    }
    return report;
}

} // namespace idnode::registry
