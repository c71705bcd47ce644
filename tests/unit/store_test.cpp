// The registry store (registry/include/idnode/registry/registry.hpp, docs/data-model.md,
// docs/storage.md): every operation and its error paths, batches, counters, listings, admin tables
// and the change log. Each test case opens a real LMDB environment in a fresh temporary directory.
#include "idnode/registry/admin.hpp"
#include "store_helpers.hpp"

#include <doctest/doctest.h>
#include <lmdb.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

using namespace idnode::registry;
using namespace idnode::test;
using namespace std::string_literals;

namespace {

bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

std::vector<HandleValue> url_record(std::string url) {
    return {val(1, "URL", std::move(url)), val(2, "EMAIL", "ops@example.com")};
}

// Writes `schema` as the stored schema version through raw LMDB, using the layout documented at
// the top of registry.cpp (meta database, key "schema_version", u32 big-endian).
void poke_schema_version(const std::filesystem::path& dir, std::uint32_t schema) {
    MDB_env* env = nullptr;
    REQUIRE(mdb_env_create(&env) == 0);
    REQUIRE(mdb_env_set_maxdbs(env, 16) == 0);
    REQUIRE(mdb_env_set_mapsize(env, 64ull << 20) == 0);
    REQUIRE(mdb_env_open(env, dir.c_str(), 0, 0644) == 0);
    MDB_txn* txn = nullptr;
    REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
    MDB_dbi dbi;
    REQUIRE(mdb_dbi_open(txn, "meta", 0, &dbi) == 0);
    std::string key = "schema_version";
    MDB_val k{key.size(), key.data()};
    MDB_val old{};
    REQUIRE(mdb_get(txn, dbi, &k, &old) == 0);
    REQUIRE(old.mv_size == 4);
    const auto* p = static_cast<const unsigned char*>(old.mv_data);
    CHECK(((std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
           p[3]) == kSchemaVersion);
    char bytes[4] = {static_cast<char>(schema >> 24), static_cast<char>(schema >> 16),
                     static_cast<char>(schema >> 8), static_cast<char>(schema)};
    MDB_val v{4, bytes};
    REQUIRE(mdb_put(txn, dbi, &k, &v, 0) == 0);
    REQUIRE(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
}

} // namespace

// ---- open / close -------------------------------------------------------------------------------

TEST_CASE("open creates the data directory; close and reopen keeps the data") {
    TempDir dir;
    ManualClock clock;
    auto options = options_in(dir, clock);
    options.data_dir = dir.path() / "nested" / "db";
    {
        auto reg = Registry::open(options);
        REQUIRE(reg != nullptr);
        CHECK(std::filesystem::is_directory(options.data_dir));
        CHECK(reg->options().data_dir == options.data_dir);
        for (int i = 0; i < 20; ++i) {
            auto r = reg->write(put("88.118.8/SN-" + std::to_string(i),
                                    url_record("https://e/" + std::to_string(i))));
            REQUIRE_MESSAGE(r.ok(), describe(r));
            CHECK(r.outcome == Outcome::created);
        }
        CHECK(reg->snapshot().count_all() == 20);
    }
    {
        auto reg = Registry::open(options);
        auto snap = reg->snapshot();
        CHECK(snap.count_all() == 20);
        CHECK(snap.count("88.118.8") == 20);
        for (int i = 0; i < 20; ++i) {
            auto r = snap.get(handle("88.118.8/SN-" + std::to_string(i)));
            REQUIRE(r.ok());
            CHECK(r->record.spelling == "88.118.8/SN-" + std::to_string(i));
            CHECK(same_values(r->record.values, url_record("https://e/" + std::to_string(i))));
            for (const auto& v : r->record.values) {
                CHECK(v.timestamp == kT0);
            }
        }
        const auto log = snap.changes(0, 100);
        CHECK(log.size() == 20);
        REQUIRE_FALSE(log.empty());
        CHECK(snap.last_sequence() == log.back().sequence);
    }
}

TEST_CASE("schema version: a fresh database records it; a newer one refuses to start") {
    TempDir dir;
    auto options = options_in(dir);
    {
        auto reg = Registry::open(options);
        REQUIRE(reg->write(put("88.1/a", url_record("u"))).ok());
    }
    // Reopening the current version works.
    { CHECK(Registry::open(options)->snapshot().count_all() == 1); }

    poke_schema_version(options.data_dir, kSchemaVersion + 1);
    try {
        auto reg = Registry::open(options);
        FAIL("a database with a newer schema opened");
    } catch (const StartupError& e) {
        INFO(e.what());
        CHECK(std::string(e.what()).find(std::to_string(kSchemaVersion + 1)) != std::string::npos);
    }
}

TEST_CASE("a database made before the idempotency table opens read-only and writable") {
    TempDir dir;
    auto options = options_in(dir);
    {
        auto reg = Registry::open(options);
        REQUIRE(reg->write(put("88.1/a", url_record("u"))).ok());
    }
    // What an older build left: every table but idempotency_v1.
    {
        MDB_env* env = nullptr;
        REQUIRE(mdb_env_create(&env) == 0);
        REQUIRE(mdb_env_set_maxdbs(env, 16) == 0);
        REQUIRE(mdb_env_set_mapsize(env, 64ull << 20) == 0);
        REQUIRE(mdb_env_open(env, options.data_dir.c_str(), 0, 0644) == 0);
        MDB_txn* txn = nullptr;
        REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
        MDB_dbi dbi;
        REQUIRE(mdb_dbi_open(txn, "idempotency_v1", 0, &dbi) == 0);
        REQUIRE(mdb_drop(txn, dbi, 1) == 0);
        REQUIRE(mdb_txn_commit(txn) == 0);
        mdb_env_close(env);
    }
    const std::string key = "tester"s + '\0' + "k";
    {
        auto ro = options;
        ro.mode = OpenMode::read_only;
        auto reg = Registry::open(ro);
        auto snap = reg->snapshot();
        CHECK(snap.count_all() == 1);
        CHECK_FALSE(snap.get_entry(Table::idempotency, key).has_value());
        CHECK(snap.list_entries(Table::idempotency, {}, 10).entries.empty());
        const auto report = reg->verify();
        CHECK_MESSAGE(report.ok(), report.problems.front());
        CHECK(reg->backup(dir.path() / "backup").ok());
    }
    {
        auto reg = Registry::open(options); // a writable open adds the table
        const auto result = reg->write(
            PutEntry{Table::idempotency, key, encode_bulk_outcome(BulkOutcome{})}, "tester");
        CHECK(result.outcome == Outcome::created);
        CHECK(result.sequence == 0); // not change-logged
        CHECK(reg->verify().ok());
        // Damaged outcomes are reported by verify, with the key spelled readably.
        REQUIRE(reg->write(PutEntry{Table::idempotency, "tester"s + '\0' + "bad", "\x01x"}).ok());
        const auto report = reg->verify();
        REQUIRE(report.problems.size() == 1);
        CHECK(report.problems[0] ==
              "idempotency: tester/bad: stored bulk outcome is corrupt: truncated or trailing "
              "bytes");
        CHECK(report.admin_entries == 0);
        REQUIRE(reg->write(DeleteEntry{Table::idempotency, "tester"s + '\0' + "bad"}).ok());
    }
    {
        auto ro = options;
        ro.mode = OpenMode::read_only;
        auto reg = Registry::open(ro);
        CHECK(reg->snapshot().get_entry(Table::idempotency, key).has_value());
    }
}

TEST_CASE("open fails with StartupError when the data directory is unusable") {
    TempDir dir;
    SUBCASE("data_dir is a regular file") {
        auto options = options_in(dir);
        options.data_dir = dir.path() / "file";
        std::ofstream(options.data_dir) << "not a directory";
        CHECK_THROWS_AS(Registry::open(options), StartupError);
    }
    SUBCASE("data.mdb holds garbage") {
        auto options = options_in(dir);
        std::filesystem::create_directories(options.data_dir);
        std::ofstream out(options.data_dir / "data.mdb", std::ios::binary);
        out << std::string(64 * 1024, 'x');
        out.close();
        CHECK_THROWS_AS(Registry::open(options), StartupError);
    }
}

TEST_CASE("stats report the configuration and the commits") {
    TempDir dir;
    auto options = options_in(dir);
    options.max_db_size = 256ull << 20;
    auto reg = Registry::open(options);
    auto s0 = reg->stats();
    CHECK(s0.max_db_size == 256ull << 20);
    CHECK(s0.map_size >= (1ull << 20));
    CHECK(s0.map_size <= s0.max_db_size);
    CHECK(s0.identifiers == 0);
    REQUIRE(reg->write(put("88.1/a", url_record("u"))).ok());
    REQUIRE(reg->write(put("88.1/b", url_record("u"))).ok());
    auto s1 = reg->stats();
    CHECK(s1.identifiers == 2);
    CHECK(s1.commits >= 1);
    CHECK(s1.commits > s0.commits);
    CHECK(s1.committed_ops >= s0.committed_ops + 2);
    CHECK(s1.used_bytes > 0);
    CHECK(s1.queued_ops == 0);
}

// ---- put modes ----------------------------------------------------------------------------------

TEST_CASE("create: created, identical again -> unchanged, different -> already_exists") {
    TempDir dir;
    ManualClock clock;
    auto reg = Registry::open(options_in(dir, clock));

    auto first =
        reg->write(put("88.118.8/SN-1", url_record("https://a"), PutMode::create), "alice");
    REQUIRE_MESSAGE(first.ok(), describe(first));
    CHECK(first.outcome == Outcome::created);
    CHECK(first.sequence > 0);
    const auto seq_after_create = reg->snapshot().last_sequence();
    CHECK(seq_after_create == first.sequence);

    clock.advance(100);
    // An idempotent retry (e.g. after a client timeout).
    auto again = reg->write(put("88.118.8/SN-1", url_record("https://a"), PutMode::create));
    CHECK_MESSAGE(again.outcome == Outcome::unchanged, describe(again));
    CHECK(again.sequence == 0);
    CHECK(reg->snapshot().last_sequence() == seq_after_create);
    // Nothing was rewritten: timestamps are those of the first write.
    for (const auto& v : stored(*reg, "88.118.8/SN-1").values) {
        CHECK(v.timestamp == kT0);
    }

    auto different = reg->write(put("88.118.8/SN-1", url_record("https://b"), PutMode::create));
    CHECK(different.outcome == Outcome::failed);
    CHECK(different.error.code == Errc::already_exists);
    CHECK_FALSE(different.error.message.empty());
    CHECK(different.sequence == 0);
    CHECK(same_values(stored(*reg, "88.118.8/SN-1").values, url_record("https://a")));

    // Different in a field other than data: permissions, ttl, type, one value more.
    auto perms = url_record("https://a");
    perms[1].permissions = *Permissions::parse("1100");
    CHECK(reg->write(put("88.118.8/SN-1", perms, PutMode::create)).error.code ==
          Errc::already_exists);
    auto ttl = url_record("https://a");
    ttl[0].ttl = 60;
    CHECK(reg->write(put("88.118.8/SN-1", ttl, PutMode::create)).error.code ==
          Errc::already_exists);
    auto more = url_record("https://a");
    more.push_back(val(3, "DESC", "x"));
    CHECK(reg->write(put("88.118.8/SN-1", more, PutMode::create)).error.code ==
          Errc::already_exists);
    CHECK(reg->snapshot().last_sequence() == seq_after_create);
    CHECK(reg->snapshot().count_all() == 1);
}

TEST_CASE("replace: not_found when absent; replaced when different; unchanged when identical") {
    TempDir dir;
    ManualClock clock;
    auto reg = Registry::open(options_in(dir, clock));

    auto missing = reg->write(put("88.1/x", url_record("https://a"), PutMode::replace));
    CHECK(missing.outcome == Outcome::failed);
    CHECK(missing.error.code == Errc::not_found);
    CHECK_FALSE(exists(*reg, "88.1/x"));
    CHECK(reg->snapshot().count_all() == 0);
    CHECK(reg->snapshot().last_sequence() == 0);

    REQUIRE(reg->write(put("88.1/x", url_record("https://a"), PutMode::create)).ok());
    const auto seq = reg->snapshot().last_sequence();

    clock.advance(10);
    auto same = reg->write(put("88.1/x", url_record("https://a"), PutMode::replace));
    CHECK_MESSAGE(same.outcome == Outcome::unchanged, describe(same));
    CHECK(same.sequence == 0);
    CHECK(reg->snapshot().last_sequence() == seq);

    clock.advance(10);
    std::vector<HandleValue> next = {val(5, "URL", "https://new")};
    auto replaced = reg->write(put("88.1/x", next, PutMode::replace));
    CHECK_MESSAGE(replaced.outcome == Outcome::replaced, describe(replaced));
    CHECK(replaced.sequence == seq + 1);
    const Record rec = stored(*reg, "88.1/x");
    CHECK(same_values(rec.values, next)); // the whole record was replaced: 1 and 2 are gone
    REQUIRE(rec.values.size() == 1);
    CHECK(rec.values[0].timestamp == kT0 + 20);
    CHECK(reg->snapshot().count_all() == 1);
}

TEST_CASE("upsert creates or replaces") {
    TempDir dir;
    auto reg = Registry::open(options_in(dir));
    auto a = reg->write(put("88.1/u", url_record("https://a"), PutMode::upsert));
    CHECK(a.outcome == Outcome::created);
    auto b = reg->write(put("88.1/u", url_record("https://b"), PutMode::upsert));
    CHECK(b.outcome == Outcome::replaced);
    CHECK(b.sequence == a.sequence + 1);
    auto c = reg->write(put("88.1/u", url_record("https://b"), PutMode::upsert));
    CHECK(c.outcome == Outcome::unchanged);
    CHECK(c.sequence == 0);
    CHECK(same_values(stored(*reg, "88.1/u").values, url_record("https://b")));
    CHECK(reg->snapshot().count_all() == 1);
    CHECK(reg->snapshot().count("88.1") == 1);
}

TEST_CASE("a stored record keeps every field of its values") {
    TempDir dir;
    ManualClock clock;
    clock.set(1234567890);
    auto reg = Registry::open(options_in(dir, clock));
    std::string binary;
    for (int i = 0; i < 256; ++i) {
        binary.push_back(static_cast<char>(i));
    }
    std::vector<HandleValue> values = {val(1, "URL", "https://example.com/炉号"),
                                       val(2, "BIN", binary, "1100"), val(3, "EMPTY", ""),
                                       val(2147483647, "描述", "钢卷 😀", "1111")};
    values[0].ttl = 3600;
    values[1].ttl_type = TtlType::absolute;
    values[1].ttl = 1900000000;
    values[2].references = {{"88.1/other", 1}, {"0.NA/88.1", 200}};
    values[0].timestamp = 42; // server-managed: overwritten by the clock
    REQUIRE(reg->write(put("88.1/炉号 H2024", values, PutMode::create)).ok());
    const Record rec = stored(*reg, "88.1/炉号 H2024");
    CHECK(rec.spelling == "88.1/炉号 H2024");
    REQUIRE(rec.values.size() == values.size());
    CHECK(same_values(rec.values, values));
    for (const auto& v : rec.values) {
        CHECK(v.timestamp == 1234567890u);
    }
}

TEST_CASE("records of small values are stored and read back") {
    // One-byte types and empty data give 27-byte values; the record must still decode.
    TempDir dir;
    auto reg = Registry::open(options_in(dir));
    std::vector<HandleValue> values;
    for (int i = 1; i <= 10; ++i) {
        values.push_back(val(i, "T", ""));
    }
    auto r = reg->write(put("88.1/small", values, PutMode::create));
    REQUIRE_MESSAGE(r.ok(), describe(r));
    auto got = reg->snapshot().get(handle("88.1/small"));
    REQUIRE_MESSAGE(got.ok(), got.error().message);
    CHECK(same_values(got->record.values, values));
    auto one = reg->write(put("88.1/one", {val(1, "URL", "")}, PutMode::create));
    REQUIRE(one.ok());
    auto got1 = reg->snapshot().get(handle("88.1/one"));
    REQUIRE_MESSAGE(got1.ok(), got1.error().message);
    CHECK(got1->record.values.size() == 1);
}

// ---- partial updates ----------------------------------------------------------------------------

TEST_CASE("SetValues adds and replaces by index, keeping the others") {
    TempDir dir;
    ManualClock clock;
    auto reg = Registry::open(options_in(dir, clock));

    auto missing = reg->write(SetValues{handle("88.1/s"), {val(1, "URL", "x")}, false});
    CHECK(missing.outcome == Outcome::failed);
    CHECK(missing.error.code == Errc::not_found);
    CHECK_FALSE(exists(*reg, "88.1/s"));

    auto created =
        reg->write(SetValues{handle("88.1/s"), {val(1, "URL", "x"), val(2, "EMAIL", "e")}, true});
    CHECK_MESSAGE(created.outcome == Outcome::created, describe(created));
    CHECK(reg->snapshot().count("88.1") == 1);

    clock.advance(50);
    auto updated =
        reg->write(SetValues{handle("88.1/s"), {val(1, "URL", "y"), val(7, "DESC", "d")}, false});
    CHECK_MESSAGE(updated.outcome == Outcome::updated, describe(updated));
    CHECK(updated.sequence == created.sequence + 1);
    const auto values = by_index(stored(*reg, "88.1/s").values);
    REQUIRE(values.size() == 3);
    REQUIRE(values.count(1) == 1);
    REQUIRE(values.count(2) == 1);
    REQUIRE(values.count(7) == 1);
    CHECK(values.at(1).data == "y");
    CHECK(values.at(1).timestamp == kT0 + 50);
    CHECK(values.at(2).data == "e");
    CHECK(values.at(2).timestamp == kT0); // kept as it was
    CHECK(values.at(7).data == "d");
    CHECK(values.at(7).timestamp == kT0 + 50);

    // Setting values to what they already are changes nothing.
    auto same = reg->write(SetValues{handle("88.1/s"), {val(2, "EMAIL", "e")}, false});
    CHECK_MESSAGE(same.outcome == Outcome::unchanged, describe(same));
    CHECK(same.sequence == 0);
    CHECK(reg->snapshot().last_sequence() == updated.sequence);

    // Invalid values are rejected and change nothing.
    auto bad = reg->write(SetValues{handle("88.1/s"), {val(0, "URL", "z")}, false});
    CHECK(bad.outcome == Outcome::failed);
    CHECK(bad.error.code == Errc::invalid_value);
    auto dup = reg->write(SetValues{handle("88.1/s"), {val(9, "A", "1"), val(9, "B", "2")}, false});
    CHECK(dup.error.code == Errc::invalid_value);
    CHECK(by_index(stored(*reg, "88.1/s").values).at(1).data == "y");
    CHECK(stored(*reg, "88.1/s").values.size() == 3);
    CHECK(reg->snapshot().count("88.1") == 1);
}

TEST_CASE("SetValues cannot push a record past the value limit") {
    TempDir dir;
    auto options = options_in(dir);
    options.value_limits.max_values = 3;
    auto reg = Registry::open(options);
    // (Types and data long enough that each value takes more than 30 encoded bytes.)
    REQUIRE(reg->write(put("88.1/l",
                           {val(1, "TYPE", "one"), val(2, "TYPE", "two"), val(3, "TYPE", "three")}))
                .ok());
    auto r = reg->write(SetValues{handle("88.1/l"), {val(4, "TYPE", "four")}, false});
    INFO(describe(r));
    CHECK(r.outcome == Outcome::failed);
    CHECK((r.error.code == Errc::too_large || r.error.code == Errc::invalid_value));
    CHECK(stored(*reg, "88.1/l").values.size() == 3);
    // Replacing within the limit is fine.
    CHECK(reg->write(SetValues{handle("88.1/l"), {val(3, "TYPE", "3")}, false}).outcome ==
          Outcome::updated);
    // A whole record over the limit is rejected too.
    auto big = reg->write(put("88.1/m", {val(1, "TYPE", "1"), val(2, "TYPE", "2"),
                                         val(3, "TYPE", "3"), val(4, "TYPE", "4")}));
    CHECK(big.outcome == Outcome::failed);
    CHECK_FALSE(exists(*reg, "88.1/m"));
}

TEST_CASE("the configured record size limit applies to puts and to partial updates") {
    TempDir dir;
    auto options = options_in(dir);
    options.value_limits.max_record_bytes = 4096;
    auto reg = Registry::open(options);
    auto too_big = reg->write(put("88.1/big", {val(1, "BLOB", std::string(5000, 'x'))}));
    INFO(describe(too_big));
    CHECK(too_big.outcome == Outcome::failed);
    CHECK((too_big.error.code == Errc::too_large || too_big.error.code == Errc::invalid_value));
    CHECK_FALSE(exists(*reg, "88.1/big"));

    REQUIRE(reg->write(put("88.1/grow", {val(1, "BLOB", std::string(2500, 'x'))})).ok());
    // Each value alone is fine; together they exceed the limit.
    auto grown =
        reg->write(SetValues{handle("88.1/grow"), {val(2, "BLOB", std::string(2500, 'y'))}, false});
    INFO(describe(grown));
    CHECK(grown.outcome == Outcome::failed);
    CHECK((grown.error.code == Errc::too_large || grown.error.code == Errc::invalid_value));
    CHECK(stored(*reg, "88.1/grow").values.size() == 1);
}

TEST_CASE("RemoveValues: partial, absent indices, everything, missing record") {
    TempDir dir;
    auto reg = Registry::open(options_in(dir));
    REQUIRE(
        reg->write(put("88.1/r", {val(1, "URL", "u"), val(2, "EMAIL", "e"), val(3, "DESC", "d")}))
            .ok());
    REQUIRE(reg->write(put("88.1/other", url_record("o"))).ok());
    CHECK(reg->snapshot().count("88.1") == 2);

    auto partial = reg->write(RemoveValues{handle("88.1/r"), {2}});
    CHECK_MESSAGE(partial.outcome == Outcome::updated, describe(partial));
    auto values = by_index(stored(*reg, "88.1/r").values);
    CHECK(values.size() == 2);
    CHECK(values.count(1) == 1);
    CHECK(values.count(3) == 1);

    const auto seq = reg->snapshot().last_sequence();
    auto absent = reg->write(RemoveValues{handle("88.1/r"), {2, 99}});
    CHECK_MESSAGE(absent.ok(), describe(absent));
    CHECK(absent.outcome == Outcome::unchanged);
    CHECK(reg->snapshot().last_sequence() == seq);
    CHECK(stored(*reg, "88.1/r").values.size() == 2);

    // Removing the last values (with an absent one among them) deletes the record.
    auto all = reg->write(RemoveValues{handle("88.1/r"), {1, 3, 42}});
    CHECK_MESSAGE(all.outcome == Outcome::deleted, describe(all));
    CHECK_FALSE(exists(*reg, "88.1/r"));
    CHECK(reg->snapshot().get(handle("88.1/r")).code() == Errc::not_found);
    CHECK(reg->snapshot().count("88.1") == 1);
    CHECK(reg->snapshot().count_all() == 1);

    auto missing = reg->write(RemoveValues{handle("88.1/r"), {1}});
    CHECK(missing.outcome == Outcome::failed);
    CHECK(missing.error.code == Errc::not_found);
    CHECK(reg->snapshot().count("88.1") == 1);
}

TEST_CASE("DeleteRecord") {
    TempDir dir;
    auto reg = Registry::open(options_in(dir));
    REQUIRE(reg->write(put("88.1/d", url_record("u"))).ok());
    REQUIRE(reg->write(put("88.1/keep", url_record("u"))).ok());
    auto del = reg->write(DeleteRecord{handle("88.1/D")}); // any spelling
    CHECK_MESSAGE(del.outcome == Outcome::deleted, describe(del));
    CHECK(del.sequence > 0);
    CHECK_FALSE(exists(*reg, "88.1/d"));
    CHECK(exists(*reg, "88.1/keep"));
    CHECK(reg->snapshot().count("88.1") == 1);
    auto again = reg->write(DeleteRecord{handle("88.1/d")});
    CHECK(again.outcome == Outcome::failed);
    CHECK(again.error.code == Errc::not_found);
    CHECK(again.sequence == 0);
    CHECK(reg->snapshot().count("88.1") == 1);
    // A deleted handle can be created again.
    CHECK(reg->write(put("88.1/d", url_record("v"), PutMode::create)).outcome == Outcome::created);
    CHECK(reg->snapshot().count("88.1") == 2);
}

// ---- reads --------------------------------------------------------------------------------------

TEST_CASE("get is case-insensitive and returns the registered spelling") {
    TempDir dir;
    auto reg = Registry::open(options_in(dir));
    REQUIRE(reg->write(put("88.118.8/Sn-AbC", url_record("u"), PutMode::create)).ok());
    auto snap = reg->snapshot();
    for (const char* spelling : {"88.118.8/Sn-AbC", "88.118.8/sn-abc", "88.118.8/SN-ABC"}) {
        INFO(spelling);
        CHECK(snap.contains(handle(spelling)));
        auto r = snap.get(handle(spelling));
        REQUIRE(r.ok());
        CHECK(r->record.spelling == "88.118.8/Sn-AbC");
    }
    // Only ASCII folds.
    REQUIRE(reg->write(put("88.1/é", url_record("u"), PutMode::create)).ok());
    auto snap2 = reg->snapshot();
    CHECK(snap2.contains(handle("88.1/é")));
    CHECK_FALSE(snap2.contains(handle("88.1/É")));
    CHECK(snap2.get(handle("88.1/É")).code() == Errc::not_found);
    // Creating another spelling of the same handle with different content is already_exists.
    auto clash = reg->write(put("88.118.8/SN-abc", url_record("other"), PutMode::create));
    CHECK(clash.error.code == Errc::already_exists);
}

TEST_CASE("get: not_found for an absent handle") {
    TempDir dir;
    auto reg = Registry::open(options_in(dir));
    auto snap = reg->snapshot();
    auto r = snap.get(handle("88.1/nothing"));
    CHECK(r.code() == Errc::not_found);
    CHECK_FALSE(snap.contains(handle("88.1/nothing")));
    bool called = false;
    auto st = snap.visit(handle("88.1/nothing"), [&](const RecordView&) { called = true; });
    CHECK(st.code() == Errc::not_found);
    CHECK_FALSE(called);
}

TEST_CASE("get with filters and private values") {
    TempDir dir;
    auto reg = Registry::open(options_in(dir));
    std::vector<HandleValue> values = {
        val(1, "URL", "https://a"),
        val(2, "EMAIL", "a@b"),
        val(3, "URL.mobile", "https://m"),
        val(100, "HS_ADMIN", "admin", "1100"),
        val(2000, "heatNumber", "H1", "1100"),
        val(2001, "grade", "Q235B"),
    };
    REQUIRE(reg->write(put("88.1/f", values, PutMode::create)).ok());
    auto snap = reg->snapshot();
    auto indices = [](const Resolution& r) {
        std::set<std::int32_t> out;
        for (const auto& v : r.record.values) {
            out.insert(v.index);
        }
        return out;
    };

    SUBCASE("default: public values only, flagged") {
        auto r = snap.get(handle("88.1/f"));
        REQUIRE(r.ok());
        CHECK(indices(*r) == std::set<std::int32_t>{1, 2, 3, 2001});
        CHECK(r->omitted_private);
        CHECK(r->record.spelling == "88.1/f");
    }
    SUBCASE("include_private: everything") {
        GetOptions o;
        o.include_private = true;
        auto r = snap.get(handle("88.1/f"), o);
        REQUIRE(r.ok());
        CHECK(indices(*r) == std::set<std::int32_t>{1, 2, 3, 100, 2000, 2001});
        CHECK_FALSE(r->omitted_private);
        CHECK(same_values(r->record.values, values));
    }
    SUBCASE("type filter, case-insensitive; private values not selected are not flagged") {
        GetOptions o;
        o.filter.types = {"url"};
        auto r = snap.get(handle("88.1/f"), o);
        REQUIRE(r.ok());
        CHECK(indices(*r) == std::set<std::int32_t>{1});
        CHECK_FALSE(r->omitted_private);
    }
    SUBCASE("subtype filter") {
        GetOptions o;
        o.filter.types = {"URL."};
        auto r = snap.get(handle("88.1/f"), o);
        REQUIRE(r.ok());
        CHECK(indices(*r).count(3) == 1);
        CHECK(indices(*r).count(2) == 0);
    }
    SUBCASE("index filter selecting a private value") {
        GetOptions o;
        o.filter.indices = {2000, 2};
        auto r = snap.get(handle("88.1/f"), o);
        REQUIRE(r.ok());
        CHECK(indices(*r) == std::set<std::int32_t>{2});
        CHECK(r->omitted_private);
        o.include_private = true;
        auto p = snap.get(handle("88.1/f"), o);
        REQUIRE(p.ok());
        CHECK(indices(*p) == std::set<std::int32_t>{2, 2000});
        CHECK_FALSE(p->omitted_private);
    }
    SUBCASE("ANY type or ANY index") {
        GetOptions o;
        o.filter.types = {"EMAIL"};
        o.filter.indices = {2001};
        auto r = snap.get(handle("88.1/f"), o);
        REQUIRE(r.ok());
        CHECK(indices(*r) == std::set<std::int32_t>{2, 2001});
    }
    SUBCASE("a filter that selects nothing") {
        GetOptions o;
        o.filter.types = {"NOPE"};
        auto r = snap.get(handle("88.1/f"), o);
        REQUIRE(r.ok());
        CHECK(r->record.values.empty());
        CHECK_FALSE(r->omitted_private);
    }
}

TEST_CASE("visit sees the stored record zero-copy") {
    TempDir dir;
    auto reg = Registry::open(options_in(dir));
    std::vector<HandleValue> values = {val(1, "URL", "https://a"), val(2, "EMAIL", "x", "1100")};
    REQUIRE(reg->write(put("88.1/Visit", values)).ok());
    auto snap = reg->snapshot();
    int calls = 0;
    auto st = snap.visit(handle("88.1/VISIT"), [&](const RecordView& view) {
        ++calls;
        CHECK(view.spelling() == "88.1/Visit");
        CHECK(view.size() == 2);
        auto rec = view.to_record();
        CHECK(same_values(rec.values, values)); // visit sees every value, private ones too
        for (const auto& v : view) {
            std::string encoded;
            encode_value(encoded, v.to_value());
            CHECK(v.wire == encoded);
        }
    });
    CHECK(st.ok());
    CHECK(calls == 1);
}

TEST_CASE("ReadSnapshot is movable") {
    TempDir dir;
    auto reg = Registry::open(options_in(dir));
    REQUIRE(reg->write(put("88.1/m", url_record("u"))).ok());
    auto a = reg->snapshot();
    ReadSnapshot b(std::move(a));
    CHECK(b.contains(handle("88.1/m")));
    auto c = reg->snapshot();
    c = std::move(b);
    CHECK(c.count_all() == 1);
    std::vector<ReadSnapshot> many;
    for (int i = 0; i < 10; ++i) {
        many.push_back(reg->snapshot());
    }
    for (auto& s : many) {
        CHECK(s.count_all() == 1);
    }
}

// ---- batches ------------------------------------------------------------------------------------

TEST_CASE("a mixed batch: bad operations fail alone, results in order, the rest commit") {
    TempDir dir;
    ManualClock clock;
    auto reg = Registry::open(options_in(dir, clock));
    REQUIRE(reg->write(put("88.1/existing", url_record("old"))).ok());
    const auto seq0 = reg->snapshot().last_sequence();

    WriteBatch batch;
    batch.account = "mes-line-7";
    batch.ops.push_back(put("88.1/a", url_record("a"), PutMode::create));               // 0 ok
    batch.ops.push_back(put("88.1/bad-index", {val(0, "URL", "x")}, PutMode::create));  // 1 invalid
    batch.ops.push_back(put("88.1/b", url_record("b"), PutMode::create));               // 2 ok
    batch.ops.push_back(put("88.1/bad-type", {val(1, "UR\tL", "x")}, PutMode::create)); // 3 invalid
    batch.ops.push_back(put("88.1/existing", url_record("new"), PutMode::create));      // 4 exists
    batch.ops.push_back(put("88.1/no-values", {}, PutMode::upsert));                    // 5 invalid
    batch.ops.push_back(
        SetValues{handle("88.1/missing"), {val(1, "URL", "x")}, false}); // 6 not found
    batch.ops.push_back(
        SetValues{handle("88.1/a"), {val(9, "DESC", "added")}, false});       // 7 ok (sees 0)
    batch.ops.push_back(DeleteRecord{handle("88.1/missing")});                // 8 not found
    batch.ops.push_back(put("88.1/dup", {val(1, "A", ""), val(1, "B", "")})); // 9 invalid
    batch.ops.push_back(put("88.1/existing", url_record("replaced"), PutMode::replace)); // 10 ok
    batch.ops.push_back(RemoveValues{handle("88.1/b"), {2}}); // 11 ok (sees 2)

    const BatchResult results = reg->write(std::move(batch));
    REQUIRE(results.size() == 12);
    for (std::size_t i = 0; i < results.size(); ++i) {
        INFO("op " << i << ": " << describe(results[i]));
        const bool should_fail = i == 1 || i == 3 || i == 4 || i == 5 || i == 6 || i == 8 || i == 9;
        CHECK(results[i].ok() == !should_fail);
        if (should_fail) {
            CHECK(results[i].sequence == 0);
            CHECK_FALSE(results[i].error.message.empty());
        }
    }
    CHECK(results[0].outcome == Outcome::created);
    CHECK(results[1].error.code == Errc::invalid_value);
    CHECK(contains(results[1].error.message, "index 0"));
    CHECK(results[2].outcome == Outcome::created);
    CHECK(results[3].error.code == Errc::invalid_value);
    CHECK(contains(results[3].error.message, "index 1"));
    CHECK(results[4].error.code == Errc::already_exists);
    CHECK(results[5].error.code == Errc::invalid_value);
    CHECK(results[6].error.code == Errc::not_found);
    CHECK(results[7].outcome == Outcome::updated);
    CHECK(results[8].error.code == Errc::not_found);
    CHECK(results[9].error.code == Errc::invalid_value);
    CHECK(results[10].outcome == Outcome::replaced);
    CHECK(results[11].outcome == Outcome::updated);

    // The successful mutations got consecutive sequences in batch order.
    CHECK(results[0].sequence == seq0 + 1);
    CHECK(results[2].sequence == seq0 + 2);
    CHECK(results[7].sequence == seq0 + 3);
    CHECK(results[10].sequence == seq0 + 4);
    CHECK(results[11].sequence == seq0 + 5);

    auto snap = reg->snapshot();
    CHECK(snap.last_sequence() == seq0 + 5);
    CHECK(snap.count_all() == 3);
    CHECK(snap.count("88.1") == 3);
    CHECK(by_index(stored(*reg, "88.1/a").values).count(9) == 1);
    CHECK(by_index(stored(*reg, "88.1/b").values).count(2) == 0);
    CHECK(by_index(stored(*reg, "88.1/existing").values).at(1).data == "replaced");
    for (const char* absent :
         {"88.1/bad-index", "88.1/bad-type", "88.1/no-values", "88.1/missing", "88.1/dup"}) {
        CHECK_FALSE(snap.contains(handle(absent)));
    }
    for (const auto& e : snap.changes(seq0 + 1, 100)) {
        CHECK(e.account == "mes-line-7");
    }
}

TEST_CASE("an empty batch completes with no results") {
    TempDir dir;
    auto reg = Registry::open(options_in(dir));
    CHECK(reg->write(WriteBatch{}).empty());
    CHECK(reg->snapshot().last_sequence() == 0);
}

TEST_CASE("unsynced mode: sync() makes writes durable") {
    TempDir dir;
    auto options = options_in(dir);
    options.durable = false;
    {
        auto reg = Registry::open(options);
        for (int i = 0; i < 10; ++i) {
            REQUIRE(reg->write(put("88.1/n" + std::to_string(i), url_record("u"))).ok());
        }
        CHECK(reg->sync().ok());
    }
    options.durable = true;
    auto reg = Registry::open(options);
    CHECK(reg->snapshot().count_all() == 10);
}

// ---- counters and listings ----------------------------------------------------------------------

TEST_CASE("count(prefix) and count_all follow creates and deletes") {
    TempDir dir;
    auto reg = Registry::open(options_in(dir));
    auto snapshot_counts = [&] {
        auto s = reg->snapshot();
        return std::vector<std::uint64_t>{s.count("88.1"), s.count("88.10"), s.count("88.1.5"),
                                          s.count("0.NA"), s.count_all()};
    };
    for (int i = 0; i < 5; ++i) {
        REQUIRE(reg->write(put("88.1/a" + std::to_string(i), url_record("u"))).ok());
    }
    for (int i = 0; i < 3; ++i) {
        REQUIRE(reg->write(put("88.10/b" + std::to_string(i), url_record("u"))).ok());
    }
    for (int i = 0; i < 2; ++i) {
        REQUIRE(reg->write(put("88.1.5/c" + std::to_string(i), url_record("u"))).ok());
    }
    REQUIRE(reg->write(put("0.na/88.1", url_record("u"))).ok());
    CHECK(snapshot_counts() == std::vector<std::uint64_t>{5, 3, 2, 1, 11});
    auto s = reg->snapshot();
    CHECK(s.count("0.na") == 1); // prefixes match case-insensitively
    CHECK(s.count("88") == 0);   // exactly that prefix, not below it
    CHECK(s.count("99.9") == 0);
    CHECK(reg->stats().identifiers == 11);

    // Updates, unchanged writes and failures leave the counters alone.
    REQUIRE(reg->write(put("88.1/a0", url_record("changed"))).ok());
    REQUIRE(reg->write(put("88.1/a1", url_record("u"), PutMode::create)).ok());
    CHECK_FALSE(reg->write(put("88.1/a2", url_record("x"), PutMode::create)).ok());
    CHECK_FALSE(reg->write(put("88.1/zz", url_record("x"), PutMode::replace)).ok());
    REQUIRE(reg->write(SetValues{handle("88.1/a3"), {val(5, "X", "y")}, false}).ok());
    CHECK(snapshot_counts() == std::vector<std::uint64_t>{5, 3, 2, 1, 11});

    REQUIRE(reg->write(DeleteRecord{handle("88.1/a0")}).ok());
    REQUIRE(reg->write(RemoveValues{handle("88.10/b0"), {1, 2}}).ok());
    REQUIRE(reg->write(DeleteRecord{handle("0.NA/88.1")}).ok());
    CHECK(snapshot_counts() == std::vector<std::uint64_t>{4, 2, 2, 0, 8});
    REQUIRE(reg->write(SetValues{handle("88.10/new"), {val(1, "URL", "x")}, true}).ok());
    CHECK(snapshot_counts() == std::vector<std::uint64_t>{4, 3, 2, 0, 9});
    CHECK(reg->stats().identifiers == 9);
}

TEST_CASE("list pages through a prefix exactly once, in key order, without siblings") {
    TempDir dir;
    auto reg = Registry::open(options_in(dir));
    const int n = 300;
    std::vector<std::string> expected; // spellings under 88.1
    {
        WriteBatch batch;
        for (int i = 0; i < n; ++i) {
            // Unpadded numbers and mixed case make key order differ from insertion order.
            std::string spelling =
                "88.1/" + std::string(i % 2 ? "sn-" : "SN-") + std::to_string((i * 7919) % 1000);
            if (i % 50 == 0) {
                spelling += "/炉号 " + std::to_string(i);
            }
            expected.push_back(spelling);
            batch.ops.push_back(put(spelling, url_record("u"), PutMode::create));
        }
        // Siblings whose keys sort right around "88.1/": "88.1.5/" < "88.1/" < "88.10/" < "88.1~".
        for (int i = 0; i < 40; ++i) {
            batch.ops.push_back(put("88.10/SN-" + std::to_string(i), url_record("u")));
            batch.ops.push_back(put("88.1.5/SN-" + std::to_string(i), url_record("u")));
            batch.ops.push_back(put("88/SN-" + std::to_string(i), url_record("u")));
            batch.ops.push_back(put("88.11/SN-" + std::to_string(i), url_record("u")));
        }
        for (const auto& r : reg->write(std::move(batch))) {
            REQUIRE_MESSAGE(r.ok(), describe(r));
        }
    }
    std::sort(expected.begin(), expected.end(), [](const std::string& a, const std::string& b) {
        return fold_case(a) < fold_case(b);
    });
    REQUIRE(std::adjacent_find(expected.begin(), expected.end(), [](const auto& a, const auto& b) {
                return fold_case(a) == fold_case(b);
            }) == expected.end());

    for (std::size_t limit :
         {std::size_t{1}, std::size_t{7}, std::size_t{100}, std::size_t{300}, std::size_t{1000}}) {
        INFO("limit " << limit);
        auto snap = reg->snapshot();
        std::vector<std::string> got;
        std::string cursor;
        std::size_t pages = 0;
        while (true) {
            auto page = snap.list("88.1", cursor, limit);
            REQUIRE_MESSAGE(page.ok(), page.error().message);
            CHECK(page->handles.size() <= limit);
            got.insert(got.end(), page->handles.begin(), page->handles.end());
            ++pages;
            REQUIRE(pages <= n + 2);
            if (page->next_cursor.empty()) {
                break;
            }
            CHECK(page->handles.size() == limit);
            cursor = page->next_cursor;
        }
        CHECK(got == expected);
        // "empty when there is nothing after this page": no trailing empty page.
        CHECK(pages == (n + limit - 1) / limit);
    }
    // Other prefixes list only their own handles; the prefix is case-insensitive.
    auto snap = reg->snapshot();
    auto tens = snap.list("88.10", "", 1000);
    REQUIRE(tens.ok());
    CHECK(tens->handles.size() == 40);
    for (const auto& h : tens->handles) {
        CHECK(h.rfind("88.10/", 0) == 0);
    }
    auto top = snap.list("88", "", 1000);
    REQUIRE(top.ok());
    CHECK(top->handles.size() == 40);
    auto none = snap.list("88.2", "", 10);
    REQUIRE(none.ok());
    CHECK(none->handles.empty());
    CHECK(none->next_cursor.empty());
    CHECK_FALSE(snap.list("88..1", "", 10).ok());
    // A cursor from a sibling prefix never makes 88.1 list 88.10's handles.
    auto sibling_page = snap.list("88.10", "", 5);
    REQUIRE(sibling_page.ok());
    REQUIRE_FALSE(sibling_page->next_cursor.empty());
    auto crossed = snap.list("88.1", sibling_page->next_cursor, 1000);
    if (crossed.ok()) {
        for (const auto& h : crossed->handles) {
            CHECK(h.rfind("88.1/", 0) == 0);
        }
    }
}

TEST_CASE("list prefixes are case-insensitive and spellings are the registered ones") {
    TempDir dir;
    auto reg = Registry::open(options_in(dir));
    REQUIRE(reg->write(put("0.na/Alpha", url_record("u"))).ok());
    REQUIRE(reg->write(put("0.NA/beta", url_record("u"))).ok());
    auto page = reg->snapshot().list("0.Na", "", 10);
    REQUIRE(page.ok());
    CHECK(page->handles == std::vector<std::string>{"0.na/Alpha", "0.NA/beta"});
}

TEST_CASE("a list cursor stays valid across writes") {
    TempDir dir;
    auto reg = Registry::open(options_in(dir));
    for (int i = 10; i < 30; ++i) {
        REQUIRE(reg->write(put("88.1/k" + std::to_string(i), url_record("u"))).ok());
    }
    auto first = reg->snapshot().list("88.1", "", 5);
    REQUIRE(first.ok());
    REQUIRE(first->handles ==
            std::vector<std::string>{"88.1/k10", "88.1/k11", "88.1/k12", "88.1/k13", "88.1/k14"});
    REQUIRE_FALSE(first->next_cursor.empty());
    // Between pages: one handle before the cursor, the handle at the cursor deleted, one after.
    REQUIRE(reg->write(put("88.1/k0", url_record("u"))).ok());
    REQUIRE(reg->write(DeleteRecord{handle("88.1/k14")}).ok());
    REQUIRE(reg->write(DeleteRecord{handle("88.1/k15")}).ok());
    REQUIRE(reg->write(put("88.1/k145", url_record("u"))).ok());
    auto second = reg->snapshot().list("88.1", first->next_cursor, 3);
    REQUIRE(second.ok());
    CHECK(second->handles == std::vector<std::string>{"88.1/k145", "88.1/k16", "88.1/k17"});
}

TEST_CASE("long handles (beyond LMDB's key size) are stored, found and listed distinctly") {
    TempDir dir;
    auto options = options_in(dir);
    auto reg = Registry::open(options);
    const std::string common = "88.1/" + std::string(1200, 'x');
    std::vector<std::string> names = {common + "A", common + "B", common + std::string(800, 'y'),
                                      "88.1/" + std::string(2043, 'z')};
    for (const auto& n : names) {
        REQUIRE(n.size() <= 2048);
        auto r = reg->write(put(n, {val(1, "NAME", n.substr(n.size() - 3))}, PutMode::create));
        REQUIRE_MESSAGE(r.ok(), describe(r));
    }
    auto snap = reg->snapshot();
    CHECK(snap.count("88.1") == names.size());
    for (const auto& n : names) {
        auto r = snap.get(handle(n));
        REQUIRE(r.ok());
        CHECK(r->record.spelling == n);
        REQUIRE(r->record.values.size() == 1);
        CHECK(r->record.values[0].data == n.substr(n.size() - 3));
        // Case-insensitive lookup works for long handles too.
        CHECK(snap.contains(handle(fold_case(n))));
    }
    CHECK_FALSE(snap.contains(handle(common + "C")));
    auto page = snap.list("88.1", "", 100);
    REQUIRE(page.ok());
    CHECK(std::set<std::string>(page->handles.begin(), page->handles.end()) ==
          std::set<std::string>(names.begin(), names.end()));
    CHECK(page->handles.size() == names.size());
    REQUIRE(reg->write(DeleteRecord{handle(common + "A")}).ok());
    auto after = reg->snapshot();
    CHECK_FALSE(after.contains(handle(common + "A")));
    CHECK(after.contains(handle(common + "B")));
}

// ---- admin tables -------------------------------------------------------------------------------

TEST_CASE("admin tables: put modes, get, list, delete, isolation between tables") {
    TempDir dir;
    auto reg = Registry::open(options_in(dir));
    const std::string binary = "\x00\x01\xFF value"s;

    auto created = reg->write(PutEntry{Table::prefixes, "88.118.8", binary, PutMode::create});
    CHECK_MESSAGE(created.outcome == Outcome::created, describe(created));
    CHECK(created.sequence > 0);
    CHECK(reg->write(PutEntry{Table::prefixes, "88.118.8", binary, PutMode::create}).outcome ==
          Outcome::unchanged);
    auto clash = reg->write(PutEntry{Table::prefixes, "88.118.8", "other", PutMode::create});
    CHECK(clash.error.code == Errc::already_exists);
    auto missing = reg->write(PutEntry{Table::prefixes, "88.118.9", "x", PutMode::replace});
    CHECK(missing.error.code == Errc::not_found);
    CHECK(reg->write(PutEntry{Table::prefixes, "88.118.8", "v2", PutMode::replace}).outcome ==
          Outcome::replaced);
    CHECK(reg->write(PutEntry{Table::prefixes, "88.118.8", "v3", PutMode::upsert}).outcome ==
          Outcome::replaced);
    CHECK(reg->write(PutEntry{Table::prefixes, "88.118.7", "p7", PutMode::upsert}).outcome ==
          Outcome::created);
    CHECK(reg->write(PutEntry{Table::templates, "88.118.8", "tpl", PutMode::create}).outcome ==
          Outcome::created);
    CHECK(reg->write(PutEntry{Table::accounts, "alice", "acct", PutMode::create}).outcome ==
          Outcome::created);
    CHECK(reg->write(PutEntry{Table::api_keys, "k1", binary, PutMode::create}).outcome ==
          Outcome::created);

    {
        auto snap = reg->snapshot();
        CHECK(snap.get_entry(Table::prefixes, "88.118.8") == std::optional<std::string>("v3"));
        CHECK(snap.get_entry(Table::templates, "88.118.8") == std::optional<std::string>("tpl"));
        CHECK(snap.get_entry(Table::accounts, "alice") == std::optional<std::string>("acct"));
        CHECK(snap.get_entry(Table::api_keys, "k1") == std::optional<std::string>(binary));
        CHECK_FALSE(snap.get_entry(Table::accounts, "88.118.8").has_value());
        CHECK_FALSE(snap.get_entry(Table::prefixes, "nope").has_value());
        CHECK_FALSE(snap.get_entry(Table::api_keys, "alice").has_value());
        // Entries are not identifiers.
        CHECK(snap.count_all() == 0);
        auto all = snap.list_entries(Table::prefixes, "", 100);
        REQUIRE(all.entries.size() == 2);
        CHECK(all.entries[0] == std::pair<std::string, std::string>{"88.118.7", "p7"});
        CHECK(all.entries[1] == std::pair<std::string, std::string>{"88.118.8", "v3"});
        CHECK(all.next_cursor.empty());
    }

    auto del = reg->write(DeleteEntry{Table::prefixes, "88.118.8"});
    CHECK(del.outcome == Outcome::deleted);
    CHECK(reg->write(DeleteEntry{Table::prefixes, "88.118.8"}).error.code == Errc::not_found);
    auto snap = reg->snapshot();
    CHECK_FALSE(snap.get_entry(Table::prefixes, "88.118.8").has_value());
    CHECK(snap.get_entry(Table::templates, "88.118.8").has_value()); // other table untouched
}

TEST_CASE("list_entries pages through a table exactly once in key order") {
    TempDir dir;
    auto reg = Registry::open(options_in(dir));
    std::vector<std::string> keys;
    WriteBatch batch;
    for (int i = 0; i < 57; ++i) {
        keys.push_back("acct-" + std::to_string(i));
        batch.ops.push_back(
            PutEntry{Table::accounts, keys.back(), "v" + std::to_string(i), PutMode::create});
    }
    batch.ops.push_back(PutEntry{Table::api_keys, "acct-x", "elsewhere", PutMode::create});
    for (const auto& r : reg->write(std::move(batch))) {
        REQUIRE(r.ok());
    }
    std::sort(keys.begin(), keys.end());
    auto snap = reg->snapshot();
    std::vector<std::string> got;
    std::string cursor;
    for (int pages = 0; pages < 100; ++pages) {
        auto page = snap.list_entries(Table::accounts, cursor, 10);
        CHECK(page.entries.size() <= 10);
        for (const auto& [k, v] : page.entries) {
            got.push_back(k);
            CHECK(v == "v" + k.substr(5));
        }
        if (page.next_cursor.empty()) {
            break;
        }
        cursor = page.next_cursor;
    }
    CHECK(got == keys);
}

// ---- change log ---------------------------------------------------------------------------------

TEST_CASE("change log: contiguous sequences, kinds, ops, keys, accounts, times, tombstones") {
    TempDir dir;
    ManualClock clock;
    auto reg = Registry::open(options_in(dir, clock));
    struct Expect {
        ChangeKind kind;
        ChangeOp op;
        std::string key;
        std::string account;
        std::int64_t time;
        bool tombstone;
    };
    std::vector<Expect> expect;
    std::vector<std::uint64_t> seqs;
    auto step = [&](WriteOp op, std::string account, Expect e) {
        clock.advance(7);
        e.time = clock.now();
        e.account = account;
        auto r = reg->write(std::move(op), account);
        REQUIRE_MESSAGE(r.ok(), describe(r));
        REQUIRE(r.sequence != 0);
        seqs.push_back(r.sequence);
        expect.push_back(std::move(e));
    };
    using K = ChangeKind;
    using O = ChangeOp;
    step(put("88.1/Log", url_record("a"), PutMode::create), "alice",
         {K::identifier, O::create, "88.1/Log", "", 0, false});
    step(put("88.1/Log", url_record("b"), PutMode::upsert), "bob",
         {K::identifier, O::replace, "88.1/Log", "", 0, false});
    step(SetValues{handle("88.1/Log"), {val(3, "X", "y")}, false}, "carol",
         {K::identifier, O::update, "88.1/Log", "", 0, false});
    step(RemoveValues{handle("88.1/Log"), {3}}, "dave",
         {K::identifier, O::update, "88.1/Log", "", 0, false});
    step(SetValues{handle("88.1/new"), {val(1, "URL", "n")}, true}, "erin",
         {K::identifier, O::create, "88.1/new", "", 0, false});
    step(DeleteRecord{handle("88.1/Log")}, "frank",
         {K::identifier, O::remove, "88.1/Log", "", 0, true});
    step(RemoveValues{handle("88.1/new"), {1}}, "gina",
         {K::identifier, O::remove, "88.1/new", "", 0, true});
    step(PutEntry{Table::prefixes, "88.1", "p", PutMode::create}, "admin",
         {K::prefix, O::create, "88.1", "", 0, false});
    step(PutEntry{Table::prefixes, "88.1", "q", PutMode::upsert}, "admin",
         {K::prefix, O::replace, "88.1", "", 0, false});
    step(PutEntry{Table::templates, "88.1/1.0", "t", PutMode::create}, "admin",
         {K::template_, O::create, "88.1/1.0", "", 0, false});
    step(PutEntry{Table::accounts, "alice", "a", PutMode::create}, "admin",
         {K::account, O::create, "alice", "", 0, false});
    step(PutEntry{Table::api_keys, "key1", "k", PutMode::create}, "admin",
         {K::api_key, O::create, "key1", "", 0, false});
    step(DeleteEntry{Table::api_keys, "key1"}, "admin",
         {K::api_key, O::remove, "key1", "", 0, true});

    auto snap = reg->snapshot();
    const auto entries = snap.changes(0, 1000);
    REQUIRE(entries.size() == expect.size());
    CHECK(snap.last_sequence() == seqs.back());
    CHECK(seqs.front() >= 1);
    for (std::size_t i = 0; i < entries.size(); ++i) {
        INFO("entry " << i);
        const auto& e = entries[i];
        const auto& x = expect[i];
        CHECK(e.sequence == seqs[i]);
        if (i > 0) {
            CHECK(e.sequence == entries[i - 1].sequence + 1);
        }
        CHECK(e.kind == x.kind);
        CHECK(e.op == x.op);
        CHECK(e.key == x.key);
        CHECK(e.account == x.account);
        CHECK(e.time == x.time);
        CHECK(e.value.empty() == x.tombstone);
    }
    // Identifier entries carry the resulting record.
    auto rec = decode_record(entries[2].value);
    REQUIRE_MESSAGE(rec.ok(), rec.error().message);
    CHECK(rec->spelling == "88.1/Log");
    CHECK(same_values(rec->values,
                      {val(1, "URL", "b"), val(2, "EMAIL", "ops@example.com"), val(3, "X", "y")}));
    for (const auto& v : rec->values) {
        CHECK(v.timestamp >= kT0);
    }
    // Admin entries carry the resulting bytes.
    CHECK(entries[8].value == "q");
    CHECK(entries[10].value == "a");

    // Reading from the middle, with a limit, and past the end.
    const auto mid = snap.changes(seqs[4], 3);
    REQUIRE(mid.size() == 3);
    CHECK(mid[0].sequence == seqs[4]);
    CHECK(mid[2].sequence == seqs[6]);
    CHECK(snap.changes(seqs.back() + 1, 10).empty());
    CHECK(snap.changes(seqs.back(), 10).size() == 1);
    CHECK(snap.changes(0, 0).empty());
}

TEST_CASE("change log sequences continue after reopen") {
    TempDir dir;
    auto options = options_in(dir);
    std::uint64_t last = 0;
    {
        auto reg = Registry::open(options);
        for (int i = 0; i < 5; ++i) {
            last = reg->write(put("88.1/s" + std::to_string(i), url_record("u"))).sequence;
        }
        CHECK(reg->snapshot().last_sequence() == last);
    }
    auto reg = Registry::open(options);
    CHECK(reg->snapshot().last_sequence() == last);
    auto r = reg->write(put("88.1/after", url_record("u")));
    CHECK(r.sequence == last + 1);
    auto all = reg->snapshot().changes(0, 100);
    REQUIRE(all.size() == 6);
    CHECK(all.back().key == "88.1/after");
}

TEST_CASE("change log order matches the order of submission") {
    TempDir dir;
    auto reg = Registry::open(options_in(dir));
    const int n = 60;
    std::mutex m;
    std::condition_variable cv;
    int done = 0;
    std::vector<std::uint64_t> seq(n, 0);
    for (int i = 0; i < n; ++i) {
        WriteBatch b;
        b.account = "acct" + std::to_string(i);
        b.ops.push_back(put("88.1/o" + std::to_string(i), url_record("u")));
        reg->submit(std::move(b), [&, i](BatchResult r) {
            // No doctest assertions here: this runs on the writer thread.
            std::lock_guard lock(m);
            seq[static_cast<std::size_t>(i)] = r.size() == 1 ? r[0].sequence : 0;
            ++done;
            cv.notify_all();
        });
    }
    {
        std::unique_lock lock(m);
        REQUIRE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return done == n; }));
    }
    for (int i = 1; i < n; ++i) {
        CHECK(seq[static_cast<std::size_t>(i)] == seq[static_cast<std::size_t>(i - 1)] + 1);
    }
    auto entries = reg->snapshot().changes(seq[0], n);
    REQUIRE(entries.size() == static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        CHECK(entries[static_cast<std::size_t>(i)].key == "88.1/o" + std::to_string(i));
        CHECK(entries[static_cast<std::size_t>(i)].account == "acct" + std::to_string(i));
    }
}

TEST_CASE("new records, appended past the last key or inserted before it, store the same bytes") {
    // A put of a new key beyond every stored key takes the writer's append path (no lookup, one
    // encoding copied into the page and the log); a key before it takes the general path. Both
    // must store encode_record of the values sorted by index, stamped with the write time, and
    // count the same counters.
    TempDir dir;
    ManualClock clock;
    auto reg = Registry::open(options_in(dir, clock));
    clock.set(1700000000);
    const std::vector<HandleValue> values = {val(kIndexTemplate, "TEMPLATE", "v1"),
                                             val(3, "C", "c"), val(1, "URL", "u"),
                                             val(2, "EMAIL", "e", "1100")};
    REQUIRE(reg->write(put("88.1/m", values)).ok()); // the first key: appended
    REQUIRE(reg->write(put("88.1/z", values)).ok()); // beyond the last key
    REQUIRE(reg->write(put("88.1/b", values)).ok()); // before it: general path
    REQUIRE(reg->write(put("88.1/z", values)).ok()); // identical: unchanged
    CHECK(reg->write(put("88.1/zz", values, PutMode::replace)).error.code == Errc::not_found);

    auto expected = [&](std::string_view spelling) {
        std::vector<HandleValue> sorted = values;
        std::sort(sorted.begin(), sorted.end(),
                  [](const HandleValue& x, const HandleValue& y) { return x.index < y.index; });
        for (auto& v : sorted) {
            v.timestamp = 1700000000;
        }
        return encode_record(spelling, sorted);
    };
    auto log = reg->snapshot().changes(0, 10);
    REQUIRE(log.size() == 3);
    CHECK(log[0].key == "88.1/m");
    CHECK(log[1].key == "88.1/z");
    CHECK(log[2].key == "88.1/b");
    for (const auto& entry : log) {
        CHECK(entry.op == ChangeOp::create);
        CHECK(entry.value == expected(entry.key));
        auto snap = reg->snapshot();
        int calls = 0;
        CHECK(snap.visit(handle(entry.key),
                         [&](const RecordView& view) {
                             ++calls;
                             std::string bytes = expected(entry.key);
                             std::size_t at = 0;
                             for (const auto& v : view) {
                                 at = bytes.find(v.wire, at);
                                 CHECK(at != std::string::npos);
                             }
                             CHECK(view.size() == 4);
                         })
                  .ok());
        CHECK(calls == 1);
    }
    auto snap = reg->snapshot();
    CHECK(snap.count("88.1") == 3);
    CHECK(snap.count_all() == 3);
    CHECK(snap.registrations(1700000000, "88.1") == 3);
    CHECK(snap.template_usage("88.1/v1") == 3);
}

TEST_CASE("one batch appends a new key, then replaces and deletes it, then appends past it") {
    TempDir dir;
    auto reg = Registry::open(options_in(dir));
    REQUIRE(reg->write(put("88.1/a", url_record("a"))).ok());
    WriteBatch batch;
    batch.ops.push_back(put("88.1/k", url_record("first")));  // appended
    batch.ops.push_back(put("88.1/k", url_record("second"))); // found, replaced
    batch.ops.push_back(put("88.1/k", url_record("second"), PutMode::create));
    batch.ops.push_back(DeleteRecord{handle("88.1/k")});
    batch.ops.push_back(put("88.1/j", url_record("j"))); // before the stale last key
    batch.ops.push_back(put("88.1/l", url_record("l"))); // past it: appended again
    auto results = reg->write(std::move(batch));
    REQUIRE(results.size() == 6);
    CHECK(results[0].outcome == Outcome::created);
    CHECK(results[1].outcome == Outcome::replaced);
    CHECK(results[2].outcome == Outcome::unchanged);
    CHECK(results[3].ok());
    CHECK(results[4].outcome == Outcome::created);
    CHECK(results[5].outcome == Outcome::created);
    CHECK_FALSE(exists(*reg, "88.1/k"));
    CHECK(same_values(stored(*reg, "88.1/j").values, url_record("j")));
    CHECK(same_values(stored(*reg, "88.1/l").values, url_record("l")));
    CHECK(reg->snapshot().count("88.1") == 3);
}

TEST_CASE("timestamps and change times come from the injected clock") {
    TempDir dir;
    ManualClock clock;
    auto reg = Registry::open(options_in(dir, clock));
    clock.set(1500000000);
    REQUIRE(reg->write(put("88.1/t", url_record("u"))).ok());
    clock.set(1600000000);
    REQUIRE(reg->write(SetValues{handle("88.1/t"), {val(9, "X", "x")}, false}).ok());
    auto values = by_index(stored(*reg, "88.1/t").values);
    CHECK(values.at(1).timestamp == 1500000000u);
    CHECK(values.at(9).timestamp == 1600000000u);
    auto log = reg->snapshot().changes(0, 10);
    REQUIRE(log.size() == 2);
    CHECK(log[0].time == 1500000000);
    CHECK(log[1].time == 1600000000);
}
