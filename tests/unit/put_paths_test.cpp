// One put path: a new record stored through each way the writer can take (the general PutRecord
// path, the append fast path, an offline load's pre-encoded records) must store the same bytes.
// The record encoding is shared (registry/src/record_encoding.hpp); this test fails if any path
// lays out, orders or stamps a value differently, or counts or logs the record differently.
#include "store_helpers.hpp"

#include "idnode/registry/admin.hpp"
#include "idnode/registry/offline_load.hpp"

#include <map>

using namespace idnode::test;

namespace {

struct Input {
    std::string handle;
    std::vector<HandleValue> values;
};

/// Records that cover what a value can carry: several values (also given out of index order),
/// a template binding, private and write permissions, absolute TTLs, empty data, non-ASCII
/// types and data, and references (which the encoded fast path leaves to the general path).
std::vector<Input> inputs() {
    std::vector<Input> in;
    in.push_back({"88.118.8/A-1", {val(1, "URL", "https://example.cn/a1")}});
    {
        HandleValue ttl = val(3, "EMAIL", "ops@example.cn", "1100");
        ttl.ttl_type = TtlType::absolute;
        ttl.ttl = 1800000000;
        in.push_back({"88.118.8/A-2",
                      {val(2000, "heat_no", "H-77"), val(1, "URL", "https://example.cn/a2"), ttl,
                       val(1001, "TEMPLATE", "steel-1.0")}});
    }
    in.push_back({"88.118.8/a-3", // stored spelling keeps the case; the key is folded
                  {val(1, "URL", ""), val(2001, "炉号", "熔炼-三号", "1111")}});
    {
        HandleValue ref = val(4, "HS_ALIAS", "alias");
        ref.references = {ValueReference{"88.118.8/A-1", 1}, ValueReference{"0.NA/88.118", 300}};
        in.push_back({"88.118.8/A-4", {val(1, "URL", "https://example.cn/a4"), ref}});
    }
    in.push_back({"88.118.8/B-1",
                  {val(7, "DESC", std::string(300, 'x')), val(1001, "TEMPLATE", "steel-1.0")}});
    return in;
}

void add_node_prefix(Registry& reg) {
    PrefixRecord p;
    p.prefix = "88.118";
    p.kind = PrefixKind::node;
    p.created = kT0;
    REQUIRE(reg.write(PutEntry{Table::prefixes, "88.118", encode_prefix(p), PutMode::create}).ok());
}

/// What one path stored: per handle the record bytes and the change-log value, plus counters.
struct Stored {
    std::map<std::string, std::string> records;
    std::map<std::string, std::string> logged;
    std::uint64_t under_prefix = 0;
    std::uint64_t template_uses = 0;
    std::uint64_t registered_today = 0;
};

Stored read_back(const Registry& reg) {
    Stored out;
    auto snap = reg.snapshot();
    for (const auto& in : inputs()) {
        REQUIRE(snap.visit(handle(in.handle),
                           [&](const RecordView& v) {
                               out.records[in.handle] = std::string(v.bytes());
                           })
                    .ok());
        // Each get returns the values as given, in index order, stamped by the clock.
        auto got = snap.get(handle(in.handle), GetOptions{{}, true});
        REQUIRE(got.ok());
        CHECK(got->record.spelling == in.handle);
        CHECK(same_values(got->record.values, in.values));
        for (std::size_t i = 0; i < got->record.values.size(); ++i) {
            CHECK(got->record.values[i].timestamp == kT0);
            if (i > 0) {
                CHECK(got->record.values[i - 1].index < got->record.values[i].index);
            }
        }
    }
    for (const auto& e : snap.changes(1, 1000)) {
        if (e.kind == ChangeKind::identifier) {
            CHECK(e.op == ChangeOp::create);
            out.logged[e.key] = e.value;
        }
    }
    out.under_prefix = snap.count("88.118.8");
    out.template_uses = snap.template_usage("88.118.8/steel-1.0");
    out.registered_today = snap.registrations(kT0, "88.118.8");
    auto report = reg.verify();
    CHECK_MESSAGE(report.ok(), (report.problems.empty() ? "" : report.problems.front()));
    return out;
}

/// The general path: every key sorts below one already stored, so no record is appended.
Stored through_general_path(const TempDir& dir) {
    auto reg = Registry::open(options_in(dir));
    add_node_prefix(*reg);
    REQUIRE(reg->write(put("88.118.9/ZZZ", {val(1, "URL", "u")}, PutMode::create)).ok());
    for (const auto& in : inputs()) {
        auto r = reg->write(put(in.handle, in.values, PutMode::create));
        REQUIRE_MESSAGE(r.outcome == Outcome::created, describe(r));
    }
    return read_back(*reg);
}

/// The append fast path: ascending new keys in one batch, each beyond the last stored one.
Stored through_append_path(const TempDir& dir) {
    auto reg = Registry::open(options_in(dir));
    add_node_prefix(*reg);
    WriteBatch batch;
    for (const auto& in : inputs()) {
        batch.ops.push_back(put(in.handle, in.values, PutMode::create));
    }
    for (const auto& r : reg->write(std::move(batch))) {
        REQUIRE_MESSAGE(r.outcome == Outcome::created, describe(r));
    }
    return read_back(*reg);
}

/// An offline load: records pre-encoded (RecordEncoder's field form where the values allow it,
/// as `idctl load --offline` does), stamped and appended by the writer's encoded path.
Stored through_offline_load(const TempDir& dir, bool field_form) {
    {
        auto reg = Registry::open(options_in(dir));
        add_node_prefix(*reg);
    }
    OfflineLoadOptions o;
    o.data_dir = dir.path() / "db";
    o.max_db_size = 1ull << 30;
    o.clock = [] { return kT0; };
    {
        auto loader = OfflineLoader::open(o, [](const LoadRejection& r) {
            FAIL("rejected " << r.handle << ": " << r.error.message);
        });
        std::uint64_t line = 0;
        std::string record;
        for (const auto& in : inputs()) {
            if (!field_form) {
                loader->add(++line, in.handle, in.values);
                continue;
            }
            RecordEncoder encoder(record, in.handle);
            for (const auto& v : in.values) {
                if (v.references.empty()) {
                    encoder.add(v.index, v.type, v.data, v.ttl, v.permissions, v.ttl_type);
                } else {
                    encoder.add(v);
                }
            }
            loader->add_encoded(++line, in.handle, record);
        }
        auto summary = loader->finish();
        REQUIRE(summary.ok());
        CHECK(summary->created == inputs().size());
    }
    auto reg = Registry::open(options_in(dir));
    return read_back(*reg);
}

} // namespace

TEST_CASE("every put path stores, counts and logs a new record with the same bytes") {
    TempDir a, b, c, d;
    const Stored general = through_general_path(a);
    const Stored append = through_append_path(b);
    const Stored offline = through_offline_load(c, false);
    const Stored offline_fields = through_offline_load(d, true);

    REQUIRE(general.records.size() == inputs().size());
    for (const auto& [h, bytes] : general.records) {
        INFO(h);
        CHECK(append.records.at(h) == bytes);
        CHECK(offline.records.at(h) == bytes);
        CHECK(offline_fields.records.at(h) == bytes);
        // The change log carries the same bytes (an offline load's loaded entries are filled
        // from the stored record by changes()).
        CHECK(general.logged.at(h) == bytes);
        CHECK(append.logged.at(h) == bytes);
        CHECK(offline.logged.at(h) == bytes);
        CHECK(offline_fields.logged.at(h) == bytes);
    }
    for (const Stored* s : {&general, &append, &offline, &offline_fields}) {
        CHECK(s->under_prefix == inputs().size());
        CHECK(s->template_uses == 2);
        CHECK(s->registered_today == inputs().size());
    }
}

TEST_CASE("the shared encoding is the Handle protocol layout, stamped by the writer") {
    // The stored bytes of one record, spelled out field by field (value.hpp): a change of the
    // encoder that all paths share still fails here.
    TempDir dir;
    auto reg = Registry::open(options_in(dir));
    REQUIRE(reg->write(put("88.118.8/X", {val(2, "T", "d", "1010"), val(1, "U", "")})).ok());
    std::string bytes;
    REQUIRE(reg->snapshot()
                .visit(handle("88.118.8/X"),
                       [&](const RecordView& v) { bytes = std::string(v.bytes()); })
                .ok());
    const std::string ts = {char(kT0 >> 24), char((kT0 >> 16) & 0xFF), char((kT0 >> 8) & 0xFF),
                            char(kT0 & 0xFF)};
    using namespace std::string_literals;
    const std::string want =
        "\x01\x00"s + "\x00\x00\x00\x0a"s + "88.118.8/X" + "\x00\x00\x00\x02"s +
        // index 1, timestamp, ttl type, ttl 86400, perms 1110
        "\x00\x00\x00\x01"s + ts + "\x00"s + "\x00\x01\x51\x80"s + "\x0e"s + "\x00\x00\x00\x01"s +
        "U" + "\x00\x00\x00\x00"s + "\x00\x00\x00\x00"s +
        // index 2, perms 1010
        "\x00\x00\x00\x02"s + ts + "\x00"s + "\x00\x01\x51\x80"s + "\x0a"s + "\x00\x00\x00\x01"s +
        "T" + "\x00\x00\x00\x01"s + "d" + "\x00\x00\x00\x00"s;
    CHECK(bytes == want);
}
