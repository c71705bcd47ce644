// The registry's offline path: OfflineLoader (sorted and externally sorted input, rejections,
// what it maintains), the read_only and exclusive open modes, backup, and verify (which must
// catch corruption written behind the registry's back with raw LMDB).
#include "page_cache.hpp"
#include "store_helpers.hpp"

#include "idnode/registry/admin.hpp"
#include "idnode/registry/offline_load.hpp"

#include <lmdb.h>

#include <numeric>
#include <optional>
#include <random>

using namespace idnode::test;

namespace {

/// An initialised node (node prefix 88.118, as `idctl init` leaves it) in dir/db.
void init_node(const TempDir& dir) {
    auto reg = Registry::open(options_in(dir));
    PrefixRecord p;
    p.prefix = "88.118";
    p.kind = PrefixKind::node;
    p.created = kT0;
    REQUIRE(
        reg->write(PutEntry{Table::prefixes, "88.118", encode_prefix(p), PutMode::create}).ok());
}

OfflineLoadOptions load_options(const TempDir& dir) {
    OfflineLoadOptions o;
    o.data_dir = dir.path() / "db";
    o.max_db_size = 1ull << 30;
    o.clock = [] { return kT0; };
    o.batch_records = 64;
    return o;
}

std::string suffix(int i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "SN-%08d", i);
    return buf;
}

std::vector<HandleValue> values_for(int i) {
    return {val(1, "URL", "https://example.cn/" + std::to_string(i)),
            val(2000, "batch", "B" + std::to_string(i % 97))};
}

/// Every identifier under 88.118.8 with its record bytes (spelling + values incl. timestamps).
std::vector<std::string> dump(const Registry& reg) {
    std::vector<std::string> out;
    std::string cursor;
    do {
        auto snap = reg.snapshot();
        auto page = snap.list("88.118.8", cursor, 500);
        REQUIRE(page.ok());
        for (const auto& h : page->handles) {
            REQUIRE(snap.visit(handle(h), [&](const RecordView& v) { out.emplace_back(v.bytes()); })
                        .ok());
        }
        cursor = page->next_cursor;
    } while (!cursor.empty());
    return out;
}

RegistryOptions read_only_in(const TempDir& dir) {
    auto o = options_in(dir);
    o.mode = OpenMode::read_only;
    return o;
}

/// Loads 88.118.8/<suffix(i)> for i in `order` (in that order) with a small sort memory, so that
/// out-of-order input spills runs; REQUIREs success and returns the summary.
LoadSummary load_unsorted(const TempDir& dir, const std::vector<int>& order) {
    auto options = load_options(dir);
    options.sort_memory_bytes = 64 << 10; // forces many runs
    auto loader = OfflineLoader::open(options, {});
    std::uint64_t line = 0;
    for (int i : order) {
        loader->add(++line, "88.118.8/" + suffix(i), values_for(i));
    }
    auto s = loader->finish();
    REQUIRE_MESSAGE(s.ok(), s.error().message);
    return *s;
}

} // namespace

TEST_CASE("offline load: sorted input is written in order and maintained like online writes") {
    TempDir dir;
    init_node(dir);
    std::vector<LoadRejection> rejections;
    LoadSummary summary;
    {
        auto loader = OfflineLoader::open(load_options(dir),
                                          [&](const LoadRejection& r) { rejections.push_back(r); });
        CHECK(loader->homed_prefixes() == std::vector<std::string>{"88.118"});
        for (int i = 0; i < 1000; ++i) {
            loader->add(static_cast<std::uint64_t>(i + 1), "88.118.8/" + suffix(i), values_for(i));
        }
        auto s = loader->finish();
        REQUIRE_MESSAGE(s.ok(), s.error().message);
        summary = *s;
    }
    CHECK(rejections.empty());
    CHECK(summary.records == 1000);
    CHECK(summary.created == 1000);
    CHECK(summary.sorted);
    CHECK(summary.runs == 0);

    auto reg = Registry::open(options_in(dir));
    auto snap = reg->snapshot();
    CHECK(snap.count("88.118.8") == 1000);
    CHECK(snap.count_all() == 1000);
    // Case-insensitive lookup works, the spelling and values are as loaded, stamped by the clock.
    auto r = snap.get(handle("88.118.8/sn-00000042"));
    REQUIRE(r.ok());
    CHECK(r->record.spelling == "88.118.8/SN-00000042");
    CHECK(same_values(r->record.values, values_for(42)));
    CHECK(r->record.values[0].timestamp == kT0);
    // One change-log entry per record after the prefix entry, by the loader's account.
    CHECK(snap.last_sequence() == 1001);
    auto changes = snap.changes(2, 1);
    REQUIRE(changes.size() == 1);
    CHECK(changes[0].account == "idctl-load");
    CHECK(changes[0].key == "88.118.8/SN-00000000");
    CHECK(reg->verify().ok());
}

TEST_CASE("offline load: the writeback window drops written pages and changes no byte stored") {
    // The same 20,000 records loaded with the window off and with a small one (many
    // checkpoints): identical content, verify passes, and only the windowed load's database is
    // mostly gone from the page cache afterwards.
    struct Loaded {
        std::vector<std::string> records;
        std::optional<double> resident;
    };
    auto load_with = [](std::uint64_t window) {
        TempDir dir;
        init_node(dir);
        auto options = load_options(dir);
        options.max_group_ops = 500; // many commits, so many checkpoints
        options.writeback_window_bytes = window;
        {
            auto loader = OfflineLoader::open(options, {});
            for (int i = 0; i < 20000; ++i) {
                loader->add(static_cast<std::uint64_t>(i + 1), "88.118.8/" + suffix(i),
                            values_for(i));
            }
            auto s = loader->finish();
            REQUIRE_MESSAGE(s.ok(), s.error().message);
            CHECK(s->created == 20000);
        }
        Loaded out;
        out.resident = resident_fraction(dir.path() / "db" / "data.mdb");
        auto reg = Registry::open(read_only_in(dir));
        CHECK(reg->verify().ok());
        CHECK(reg->snapshot().count_all() == 20000);
        out.records = dump(*reg);
        return out;
    };
    const Loaded plain = load_with(0);
    const Loaded windowed = load_with(256 << 10);
    CHECK(windowed.records == plain.records);
    REQUIRE(plain.resident.has_value());
    REQUIRE(windowed.resident.has_value());
    TempDir probe;
    if (!page_cache_drops_clean_pages(probe.path()) || *plain.resident < 0.9) {
        MESSAGE("page cache does not keep or drop pages here (tmpfs or memory pressure): "
                "residency not compared");
        return;
    }
    // Not all of it: the pages LMDB read through its map (each tree's right edge, every commit)
    // stay while mapped, and the last window is still cached. Without the window: all of it.
    CHECK(*windowed.resident < 0.8);
}

TEST_CASE("offline load: unsorted input is sorted through spilled runs to the same result") {
    const bool reduced = std::getenv("IDNODE_TEST_REDUCED") != nullptr;
    const int n = reduced ? 3000 : 20000;
    std::vector<int> order(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        order[static_cast<std::size_t>(i)] = i;
    }
    std::shuffle(order.begin(), order.end(), std::mt19937(7));

    TempDir sorted_dir, shuffled_dir;
    init_node(sorted_dir);
    init_node(shuffled_dir);
    {
        auto loader = OfflineLoader::open(load_options(sorted_dir), {});
        for (int i = 0; i < n; ++i) {
            loader->add(1, "88.118.8/" + suffix(i), values_for(i));
        }
        REQUIRE(loader->finish().ok());
    }
    const LoadSummary summary = load_unsorted(shuffled_dir, order);
    CHECK_FALSE(summary.sorted);
    CHECK(summary.runs > 3);
    CHECK(summary.created == static_cast<std::uint64_t>(n));

    auto a = Registry::open(options_in(sorted_dir));
    auto b = Registry::open(options_in(shuffled_dir));
    CHECK(dump(*a) == dump(*b));
    CHECK(b->snapshot().count("88.118.8") == static_cast<std::uint64_t>(n));
    CHECK(b->verify().ok());
}

TEST_CASE("offline load: input out of order from its start is written in key order as a whole") {
    // The loader holds the first records back until it knows the input is in order, so that the
    // first (random) keys of an unsorted file are not written ahead of everything sorting below
    // them: the change log, written in the order records reach the store, is then in key order.
    std::vector<int> order(500);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937(11));
    TempDir dir;
    init_node(dir);
    {
        auto loader = OfflineLoader::open(load_options(dir), {});
        std::uint64_t line = 0;
        for (int i : order) {
            loader->add(++line, "88.118.8/" + suffix(i), values_for(i));
        }
        auto s = loader->finish();
        REQUIRE_MESSAGE(s.ok(), s.error().message);
        CHECK_FALSE(s->sorted);
        CHECK(s->runs == 0);
        CHECK(s->created == 500);
    }
    auto reg = Registry::open(options_in(dir));
    auto snap = reg->snapshot();
    const auto changes = snap.changes(2, 500);
    REQUIRE(changes.size() == 500);
    for (int i = 0; i < 500; ++i) {
        CHECK(changes[static_cast<std::size_t>(i)].key == "88.118.8/" + suffix(i));
    }
    CHECK(reg->verify().ok());
}

TEST_CASE("offline load: a sorted start longer than the probe, then disorder, loads the same") {
    // A tiny sort memory ends the probe after a few hundred records: those are fed in order, the
    // next in-order ones go straight to the writer, and the records after the first one out of
    // order are sorted through runs (most of them below what is already written).
    std::vector<int> order;
    for (int i = 1000; i < 2500; ++i) {
        order.push_back(i);
    }
    std::vector<int> rest;
    for (int i = 0; i < 1000; ++i) {
        rest.push_back(i);
    }
    for (int i = 2500; i < 3000; ++i) {
        rest.push_back(i);
    }
    std::shuffle(rest.begin(), rest.end(), std::mt19937(5));
    order.insert(order.end(), rest.begin(), rest.end());

    TempDir sorted_dir, mixed_dir;
    init_node(sorted_dir);
    init_node(mixed_dir);
    {
        auto loader = OfflineLoader::open(load_options(sorted_dir), {});
        for (int i = 0; i < 3000; ++i) {
            loader->add(1, "88.118.8/" + suffix(i), values_for(i));
        }
        REQUIRE(loader->finish().ok());
    }
    const LoadSummary summary = load_unsorted(mixed_dir, order);
    CHECK_FALSE(summary.sorted);
    CHECK(summary.runs > 0);
    CHECK(summary.created == 3000);
    auto a = Registry::open(options_in(sorted_dir));
    auto b = Registry::open(options_in(mixed_dir));
    CHECK(dump(*a) == dump(*b));
    CHECK(b->snapshot().count_all() == 3000);
    CHECK(b->verify().ok());
}

TEST_CASE("offline load: rejections name the line and the reason; the rest is loaded") {
    TempDir dir;
    init_node(dir);
    std::vector<LoadRejection> rejections;
    auto loader = OfflineLoader::open(load_options(dir),
                                      [&](const LoadRejection& r) { rejections.push_back(r); });
    loader->add(1, "88.118.8/A", values_for(1));
    loader->add(2, "99.1/B", values_for(2));            // not homed
    loader->add(3, "88.118.8", values_for(3));          // no suffix
    loader->add(4, "88.118.8/C", {val(0, "URL", "x")}); // index 0
    loader->add(5, "88.118.8/a", values_for(5));        // same key, other content
    loader->add(6, "88.118.8/A", values_for(1));        // identical: unchanged
    loader->reject(7, "88.118.8/D", Error{Errc::invalid_value, "not JSON"});
    auto s = loader->finish();
    REQUIRE(s.ok());
    CHECK(s->records == 7);
    CHECK(s->created == 1);
    CHECK(s->unchanged == 1);
    CHECK(s->rejected == 5);
    std::map<std::uint64_t, Errc> by_line;
    for (const auto& r : rejections) {
        by_line[r.line] = r.error.code;
    }
    CHECK(by_line == std::map<std::uint64_t, Errc>{{2, Errc::not_homed},
                                                   {3, Errc::invalid_handle},
                                                   {4, Errc::invalid_value},
                                                   {5, Errc::already_exists},
                                                   {7, Errc::invalid_value}});
    for (const auto& r : rejections) {
        if (r.line == 5) {
            CHECK(r.handle == "88.118.8/a");
        }
    }
}

TEST_CASE("offline load refuses a directory that is not an initialised node") {
    TempDir dir;
    try {
        OfflineLoader::open(load_options(dir), {});
        FAIL("opened an empty directory");
    } catch (const StartupError& e) {
        CHECK(e.code() == Errc::not_found);
    }
    Registry::open(options_in(dir)).reset(); // a database, but no node prefix
    try {
        OfflineLoader::open(load_options(dir), {});
        FAIL("opened a database without a node prefix");
    } catch (const StartupError& e) {
        CHECK(e.code() == Errc::not_found);
        CHECK(std::string(e.what()).find("idctl init") != std::string::npos);
    }
}

TEST_CASE("read_only open: never creates, refuses writes, sees the data") {
    TempDir dir;
    try {
        Registry::open(read_only_in(dir));
        FAIL("read-only open created a database");
    } catch (const StartupError& e) {
        CHECK(e.code() == Errc::not_found);
    }
    CHECK_FALSE(std::filesystem::exists(dir.path() / "db" / "data.mdb"));
    {
        auto reg = Registry::open(options_in(dir));
        REQUIRE(reg->write(put("88.1/x", {val(1, "URL", "u")})).ok());
    }
    auto ro = Registry::open(read_only_in(dir));
    CHECK(ro->snapshot().count_all() == 1);
    const auto r = ro->write(put("88.1/y", {val(1, "URL", "u")}));
    CHECK(r.error.code == Errc::unavailable);
    CHECK(ro->snapshot().count_all() == 1);
}

TEST_CASE("backup: a compacted copy that opens as a registry with the same content") {
    TempDir dir, out;
    init_node(dir);
    {
        auto loader = OfflineLoader::open(load_options(dir), {});
        for (int i = 0; i < 500; ++i) {
            loader->add(1, "88.118.8/" + suffix(i), values_for(i));
        }
        REQUIRE(loader->finish().ok());
    }
    auto reg = Registry::open(options_in(dir));
    for (int i = 0; i < 250; ++i) { // leaves free pages behind
        REQUIRE(reg->write(DeleteRecord{handle("88.118.8/" + suffix(i))}).ok());
    }
    REQUIRE(reg->backup(out.path() / "copy").ok());
    // A second backup into the same place is refused and leaves the first intact.
    CHECK(reg->backup(out.path() / "copy").code() == Errc::already_exists);
    auto copy_options = options_in(out);
    copy_options.data_dir = out.path() / "copy";
    auto copy = Registry::open(copy_options);
    CHECK(dump(*copy) == dump(*reg));
    CHECK(copy->snapshot().last_sequence() == reg->snapshot().last_sequence());
    CHECK(copy->verify().ok());
    CHECK(std::filesystem::file_size(copy_options.data_dir / "data.mdb") <=
          std::filesystem::file_size(dir.path() / "db" / "data.mdb"));
}

namespace {

/// Runs `fn(txn, dbi)` in a write transaction on the named database, behind the registry's back,
/// and commits it.
template <typename Fn> void raw_txn(const std::filesystem::path& db, const char* name, Fn&& fn) {
    MDB_env* env = nullptr;
    REQUIRE(mdb_env_create(&env) == 0);
    REQUIRE(mdb_env_set_maxdbs(env, 16) == 0);
    REQUIRE(mdb_env_set_mapsize(env, 1ull << 30) == 0);
    REQUIRE(mdb_env_open(env, db.c_str(), 0, 0644) == 0);
    MDB_txn* txn = nullptr;
    REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
    MDB_dbi dbi;
    REQUIRE(mdb_dbi_open(txn, name, 0, &dbi) == 0);
    fn(txn, dbi);
    REQUIRE(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
}

void raw_put(const std::filesystem::path& db, const char* name, std::string_view key,
             std::string_view value) {
    raw_txn(db, name, [&](MDB_txn* txn, MDB_dbi dbi) {
        MDB_val k{key.size(), const_cast<char*>(key.data())};
        MDB_val v{value.size(), const_cast<char*>(value.data())};
        REQUIRE(mdb_put(txn, dbi, &k, &v, 0) == 0);
    });
}

void raw_del(const std::filesystem::path& db, const char* name, std::string_view key) {
    raw_txn(db, name, [&](MDB_txn* txn, MDB_dbi dbi) {
        MDB_val k{key.size(), const_cast<char*>(key.data())};
        REQUIRE(mdb_del(txn, dbi, &k, nullptr) == 0);
    });
}

/// The stored bytes under `key` (REQUIREs presence).
std::string raw_get(const std::filesystem::path& db, const char* name, std::string_view key) {
    std::string out;
    raw_txn(db, name, [&](MDB_txn* txn, MDB_dbi dbi) {
        MDB_val k{key.size(), const_cast<char*>(key.data())};
        MDB_val v{};
        REQUIRE(mdb_get(txn, dbi, &k, &v) == 0);
        out.assign(static_cast<const char*>(v.mv_data), v.mv_size);
    });
    return out;
}

/// The change-log key of `sequence` (u64 big-endian).
std::string sequence_key(std::uint64_t sequence) {
    std::string key(8, '\0');
    for (int i = 7; i >= 0; --i, sequence >>= 8) {
        key[static_cast<std::size_t>(i)] = static_cast<char>(sequence & 0xFF);
    }
    return key;
}

bool mentions(const VerifyReport& r, std::string_view text) {
    return std::any_of(r.problems.begin(), r.problems.end(),
                       [&](const std::string& p) { return p.find(text) != std::string::npos; });
}

} // namespace

TEST_CASE("verify catches corrupt records, wrong counters, change-log gaps and bad admin rows") {
    TempDir dir;
    init_node(dir);
    {
        auto reg = Registry::open(options_in(dir));
        for (int i = 0; i < 10; ++i) {
            REQUIRE(reg->write(put("88.118.8/" + suffix(i), values_for(i))).ok());
        }
        CHECK(reg->verify().ok());
    }
    const auto db = dir.path() / "db";
    SUBCASE("a garbage record") {
        raw_put(db, "ids_v1", "88.118.8/SN-00000003", "\x01garbage");
        auto r = Registry::open(read_only_in(dir))->verify();
        CHECK_FALSE(r.ok());
        CHECK(mentions(r, "does not decode"));
    }
    SUBCASE("a record under a key that is not its folded spelling") {
        raw_put(db, "ids_v1", "88.118.8/sn-lower",
                encode_record("88.118.8/sn-lower", values_for(1)));
        auto r = Registry::open(read_only_in(dir))->verify();
        CHECK(mentions(r, "key does not match"));
        CHECK(mentions(r, "counters: 88.118.8 says 10, found 11"));
    }
    SUBCASE("a counter that disagrees") {
        std::string eight(8, '\0');
        eight[7] = 3;
        raw_put(db, "counters_v1", "n/88.118.8", eight);
        auto r = Registry::open(read_only_in(dir))->verify();
        CHECK(mentions(r, "counters: 88.118.8 says 3, found 10"));
    }
    SUBCASE("a gap in the change log") {
        const std::string key = sequence_key(100);
        std::string entry;
        entry += '\x01';
        entry += '\x01';
        entry.append(8, '\0');
        entry.append(12, '\0'); // three empty byte strings
        raw_put(db, "changes_v1", key, entry);
        auto r = Registry::open(read_only_in(dir))->verify();
        CHECK(mentions(r, "gap before sequence 100"));
    }
    SUBCASE("a record changed behind the change log's back") {
        const std::string spelling = "88.118.8/" + suffix(3);
        raw_put(db, "ids_v1", spelling, encode_record(spelling, values_for(4)));
        auto r = Registry::open(read_only_in(dir))->verify();
        CHECK(r.problems.size() == 1);
        CHECK(mentions(r, "differs from its last change"));
    }
    SUBCASE("a record the change log never saw") {
        const std::string spelling = "88.118.8/ZZ-UNLOGGED";
        raw_put(db, "ids_v1", spelling, encode_record(spelling, values_for(1)));
        auto r = Registry::open(read_only_in(dir))->verify();
        CHECK(mentions(r, "is stored but has no change-log entry"));
    }
    SUBCASE("a record the change log says exists is gone") {
        raw_del(db, "ids_v1", "88.118.8/" + suffix(5));
        auto r = Registry::open(read_only_in(dir))->verify();
        CHECK(mentions(r, "is the last change of a key that is not stored"));
    }
    SUBCASE("an admin row changed behind the change log's back") {
        raw_del(db, "prefixes_v1", "88.118");
        auto r = Registry::open(read_only_in(dir))->verify();
        CHECK(r.problems.size() == 1);
        CHECK(mentions(r, "is the last change of a key that is not stored"));
    }
    SUBCASE("an admin row that does not decode") {
        raw_put(db, "accounts_v1", "mallory", "xx");
        auto r = Registry::open(read_only_in(dir))->verify();
        CHECK(mentions(r, "accounts: mallory"));
    }
}

TEST_CASE("offline load: change-log entries name each record without a copy of it") {
    TempDir dir;
    init_node(dir);
    const auto db = dir.path() / "db";
    {
        auto loader = OfflineLoader::open(load_options(dir), {});
        for (int i = 0; i < 200; ++i) {
            loader->add(static_cast<std::uint64_t>(i + 1), "88.118.8/" + suffix(i), values_for(i));
        }
        // Values out of index order: the general put path, which must log the same compact way.
        loader->add(201, "88.118.8/ZZ-general", {val(2000, "batch", "B"), val(1, "URL", "u")});
        REQUIRE(loader->finish().ok());
    }
    const std::string account = "idctl-load";
    for (const auto& [sequence, spelling] :
         {std::pair<std::uint64_t, std::string>{2, "88.118.8/" + suffix(0)},
          std::pair<std::uint64_t, std::string>{202, "88.118.8/ZZ-general"}}) {
        // kind, op | 0x80, time, account, key, empty value: no copy of the record.
        const std::string stored = raw_get(db, "changes_v1", sequence_key(sequence));
        CHECK(stored.size() == 1 + 1 + 8 + 4 + account.size() + 4 + spelling.size() + 4);
        CHECK(static_cast<unsigned char>(stored[1]) == 0x81);
        CHECK(stored.find(spelling) != std::string::npos);
    }
    auto records_now = [&](const Registry& reg) {
        std::map<std::string, std::string> out;
        auto snap = reg.snapshot();
        for (const auto& e : snap.changes(2, 1000)) {
            out[e.key] = e.value;
        }
        return out;
    };
    {
        auto reg = Registry::open(options_in(dir));
        auto snap = reg->snapshot();
        const auto entries = snap.changes(2, 1000);
        REQUIRE(entries.size() == 201);
        for (const auto& e : entries) {
            CHECK(e.loaded);
            CHECK(e.op == ChangeOp::create);
            CHECK(e.account == account);
            CHECK(e.time == kT0);
            // changes() fills in the record as stored.
            std::string stored;
            REQUIRE(
                snap.visit(handle(e.key), [&](const RecordView& v) { stored = v.bytes(); }).ok());
            CHECK(e.value == stored);
        }
        CHECK(reg->verify().ok());

        // Online writes afterwards log full entries; the loaded entry then shows the record as it
        // is now (documented: the loaded state is the input file's), and a deleted one nothing.
        REQUIRE(reg->write(put("88.118.8/" + suffix(5), values_for(500))).ok());
        REQUIRE(reg->write(DeleteRecord{handle("88.118.8/" + suffix(6))}).ok());
        const auto after = reg->snapshot().changes(202, 10);
        REQUIRE(after.size() == 3);
        CHECK(after[0].loaded); // 88.118.8/ZZ-general, unchanged
        CHECK_FALSE(after[1].loaded);
        CHECK(after[1].op == ChangeOp::replace);
        CHECK_FALSE(after[2].loaded);
        CHECK(after[2].op == ChangeOp::remove);
        const auto now = records_now(*reg);
        CHECK(now.at("88.118.8/" + suffix(5)) == after[1].value);
        // 88.118.8/SN-…05 was loaded as sequence 7, 88.118.8/SN-…06 as 8.
        CHECK(reg->snapshot().changes(7, 1).front().value == after[1].value);
        CHECK(reg->snapshot().changes(7, 1).front().loaded);
        CHECK(reg->snapshot().changes(8, 1).front().value.empty()); // deleted since
        CHECK(reg->verify().ok());
    }
    {
        // An upsert load replacing a record logs a compact `replace`.
        auto options = load_options(dir);
        options.mode = PutMode::upsert;
        auto loader = OfflineLoader::open(options, {});
        loader->add(1, "88.118.8/" + suffix(7), values_for(700));
        auto s = loader->finish();
        REQUIRE(s.ok());
        CHECK(s->replaced == 1);
    }
    auto reg = Registry::open(read_only_in(dir));
    const auto last = reg->snapshot().changes(205, 10);
    REQUIRE(last.size() == 1);
    CHECK(last[0].loaded);
    CHECK(last[0].op == ChangeOp::replace);
    CHECK(last[0].value == records_now(*reg).at("88.118.8/" + suffix(7)));
    CHECK(reg->verify().ok());

    SUBCASE("verify: a loaded entry whose record is gone") {
        reg.reset();
        raw_del(db, "ids_v1", "88.118.8/" + suffix(3));
        auto r = Registry::open(read_only_in(dir))->verify();
        CHECK(mentions(r, "is the last change of a key that is not stored"));
    }
    SUBCASE("verify: a loaded entry that carries a value does not decode") {
        reg.reset();
        std::string entry = raw_get(db, "changes_v1", sequence_key(2));
        entry.back() = 1; // value size 1 ...
        entry += 'x';     // ... and its byte
        raw_put(db, "changes_v1", sequence_key(2), entry);
        auto r = Registry::open(read_only_in(dir))->verify();
        CHECK(mentions(r, "changes: entry 2 does not decode"));
    }
}

TEST_CASE("an abandoned load (no finish) leaves what it wrote; running it again completes it") {
    TempDir dir;
    init_node(dir);
    {
        auto loader = OfflineLoader::open(load_options(dir), {});
        for (int i = 0; i < 1000; ++i) {
            loader->add(1, "88.118.8/" + suffix(i), values_for(i));
        }
        // destroyed here with batches in flight and one not yet submitted
    }
    std::uint64_t after_abandon = 0;
    {
        auto reg = Registry::open(options_in(dir));
        after_abandon = reg->snapshot().count("88.118.8");
        CHECK(reg->verify().ok());
    }
    CHECK(after_abandon < 1000);
    auto loader = OfflineLoader::open(load_options(dir), {});
    for (int i = 0; i < 1000; ++i) {
        loader->add(1, "88.118.8/" + suffix(i), values_for(i));
    }
    auto s = loader->finish();
    REQUIRE(s.ok());
    CHECK(s->unchanged == after_abandon);
    CHECK(s->created == 1000 - after_abandon);
    CHECK(s->rejected == 0);
}

namespace {

struct Input {
    std::string handle;
    std::vector<HandleValue> values;
};

/// Every change-log entry as (key, kind, op, time, account, value), sorted: the two paths apply
/// records in different orders (the loader in key order), so sequences differ, content must not.
std::vector<std::string> change_contents(const Registry& reg) {
    std::vector<std::string> out;
    for (const auto& c : reg.snapshot().changes(1, 100000)) {
        out.push_back(c.key + '|' + std::to_string(static_cast<int>(c.kind)) + '|' +
                      std::to_string(static_cast<int>(c.op)) + '|' + std::to_string(c.time) + '|' +
                      c.account + '|' + c.value);
    }
    std::sort(out.begin(), out.end());
    return out;
}

} // namespace

TEST_CASE("offline load: pre-encoded records are stored byte for byte as online puts store them") {
    // A mix: plain and templated records in order (the append fast path), a long handle (hashed
    // key), values out of index order, a duplicate (identical and different), invalid values,
    // then records out of order (the sort path).
    std::vector<Input> inputs;
    for (int i = 0; i < 300; ++i) {
        auto values = values_for(i);
        if (i % 3 == 0) {
            values.push_back(val(kIndexTemplate, "TEMPLATE", i % 2 ? "v1" : "v2"));
        }
        inputs.push_back({"88.118.8/" + suffix(i), values});
    }
    inputs.push_back({"88.118.8/" + std::string(600, 'L'), values_for(1)});
    inputs.push_back({"88.118.8/ZZ-unordered",
                      {val(2000, "b", "x"), val(1, "URL", "u"), val(kIndexTemplate, "T", "v1")}});
    inputs.push_back({"88.118.8/" + suffix(5), values_for(5)}); // identical: unchanged
    inputs.push_back({"88.118.8/" + suffix(6), values_for(7)}); // different: already_exists
    inputs.push_back({"88.118.8/ZZ-bad", {val(1, "URL", "a"), val(1, "URL", "b")}});
    inputs.push_back({"88.118.8/ZZ-empty-type", {val(3, "", "a")}});
    inputs.push_back({"88.118.8/A-late", values_for(9)});
    inputs.push_back({"88.118.8/ZZ-private", {val(1, "URL", "p", "1100")}});
    for (int i = 300; i < 400; ++i) {
        inputs.push_back({"88.118.8/" + suffix(1000 - i), values_for(i)});
    }

    TempDir online_dir, offline_dir;
    init_node(online_dir);
    init_node(offline_dir);

    // The normal path, in the order the loader applies (key order, input order among equals).
    std::vector<std::size_t> order(inputs.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return handle(inputs[a].handle).key() < handle(inputs[b].handle).key();
    });
    std::map<Outcome, int> online_outcomes;
    std::map<std::string, Errc> online_errors;
    {
        auto reg = Registry::open(options_in(online_dir));
        for (std::size_t i : order) {
            auto r =
                reg->write(put(inputs[i].handle, inputs[i].values, PutMode::create), "idctl-load");
            ++online_outcomes[r.outcome];
            if (!r.ok()) {
                online_errors[inputs[i].handle] = r.error.code;
            }
        }
    }

    std::map<std::string, Errc> offline_errors;
    LoadSummary summary;
    {
        auto options = load_options(offline_dir);
        options.handle_limits = HandleLimits{kHandleProtocolMaxLength};
        auto loader = OfflineLoader::open(
            options, [&](const LoadRejection& r) { offline_errors[r.handle] = r.error.code; });
        std::uint64_t line = 0;
        for (const auto& in : inputs) {
            std::string record;
            RecordEncoder enc(record, in.handle);
            for (const auto& v : in.values) {
                enc.add(v.index, v.type, v.data, v.ttl, v.permissions, v.ttl_type);
            }
            loader->add_encoded(++line, in.handle, std::move(record));
        }
        auto s = loader->finish();
        REQUIRE_MESSAGE(s.ok(), s.error().message);
        summary = *s;
    }
    CHECK_FALSE(summary.sorted);
    CHECK(summary.created == static_cast<std::uint64_t>(online_outcomes[Outcome::created]));
    CHECK(summary.unchanged == 1);
    CHECK(summary.rejected == static_cast<std::uint64_t>(online_outcomes[Outcome::failed]));
    CHECK(offline_errors == online_errors);
    CHECK(offline_errors.size() == 3);

    auto online = Registry::open(read_only_in(online_dir));
    auto offline = Registry::open(read_only_in(offline_dir));
    CHECK(dump(*offline) == dump(*online));
    CHECK(change_contents(*offline) == change_contents(*online));
    // ... though the offline log stores no record copies (ChangeEntry::loaded).
    for (const auto& e : offline->snapshot().changes(2, 100000)) {
        CHECK(e.loaded);
    }
    for (const auto& e : online->snapshot().changes(2, 100000)) {
        CHECK_FALSE(e.loaded);
    }
    auto a = online->snapshot();
    auto b = offline->snapshot();
    CHECK(b.count("88.118.8") == a.count("88.118.8"));
    CHECK(b.count_all() == a.count_all());
    CHECK(b.last_sequence() == a.last_sequence());
    for (const char* t : {"88.118.8/v1", "88.118.8/v2"}) {
        CHECK(b.template_usage(t) == a.template_usage(t));
        CHECK(b.template_usage(t) > 0);
    }
    CHECK(offline->verify().ok());
    CHECK(online->verify().ok());
    // The long handle resolves through its hashed key.
    CHECK(b.contains(handle("88.118.8/" + std::string(600, 'l'))));
}

TEST_CASE("pre-encoded records are refused outside an exclusive registry and when malformed") {
    TempDir dir;
    init_node(dir);
    std::string record;
    RecordEncoder enc(record, "88.118.8/X");
    enc.add(1, "URL", "u");
    {
        auto reg = Registry::open(options_in(dir));
        auto bytes = std::make_shared<const std::string>(record);
        auto r = reg->write(PutEncodedRecord{*bytes, bytes, PutMode::create});
        CHECK(r.outcome == Outcome::failed);
        CHECK(r.error.code == Errc::invalid_value);
        CHECK_FALSE(exists(*reg, "88.118.8/X"));
    }
    std::vector<LoadRejection> rejections;
    auto loader = OfflineLoader::open(load_options(dir),
                                      [&](const LoadRejection& r) { rejections.push_back(r); });
    loader->add_encoded(1, "88.118.8/Y", record.substr(0, record.size() - 3)); // truncated
    loader->add_encoded(2, "88.118.8/Z", record);
    auto s = loader->finish();
    REQUIRE(s.ok());
    CHECK(s->created == 1);
    REQUIRE(rejections.size() == 1);
    CHECK(rejections[0].line == 1);
    CHECK(rejections[0].error.code == Errc::invalid_value);
}
