// Golden databases: every schema version this project has released is kept as a small database
// under tests/data/golden/v<N>/ (written once by tests/data/golden/make_golden_db.cpp). Today's
// code must open a copy of each (upgrading it if it is older), read every table back with the
// values it was written with, find it consistent (verify) and write to it. A schema change that
// cannot open and upgrade what an earlier release wrote fails here.
#include "store_helpers.hpp"

#include "idnode/registry/admin.hpp"
#include "idnode/registry/template.hpp"

#include <filesystem>

using namespace idnode::test;

namespace {

constexpr std::int64_t kGoldenT0 = 1700000000;

/// A copy of golden version `v` in dir/db (the committed file is never opened for writing).
std::filesystem::path copy_golden(const TempDir& dir, int v) {
    const std::filesystem::path from =
        std::filesystem::path(IDNODE_GOLDEN_DIR) / ("v" + std::to_string(v)) / "data.mdb";
    REQUIRE_MESSAGE(std::filesystem::exists(from), from.string());
    const auto db = dir.path() / "db";
    std::filesystem::create_directories(db);
    std::filesystem::copy_file(from, db / "data.mdb");
    return db;
}

RegistryOptions golden_options(const std::filesystem::path& db) {
    RegistryOptions o;
    o.data_dir = db;
    o.initial_map_size = 8ull << 20;
    o.max_db_size = 256ull << 20;
    o.clock = [] { return kGoldenT0 + 3600; };
    return o;
}

std::string values_of(const Record& r) {
    std::string s;
    for (const auto& v : r.values) {
        s += std::to_string(v.index) + ":" + v.type + "=" + v.data + "@" +
             std::to_string(v.timestamp) + "/" + v.permissions.to_string() + ";";
    }
    return s;
}

Record get_all(const ReadSnapshot& snap, std::string_view h) {
    GetOptions all;
    all.include_private = true;
    auto r = snap.get(handle(h), all);
    REQUIRE_MESSAGE(r.ok(), std::string(h) << ": " << r.error().message);
    return r->record;
}

/// Everything the generator wrote, read back through today's API.
void check_content(const Registry& reg) {
    auto snap = reg.snapshot();
    const std::string t0 = std::to_string(kGoldenT0);
    const std::string t1 = std::to_string(kGoldenT0 + 60);
    const std::string t2 = std::to_string(kGoldenT0 + 120);

    // Identifiers.
    CHECK(values_of(get_all(snap, "88.118.8/sn-1")) ==
          "1:URL=https://example.cn/sn-1@" + t0 + "/1110;2:EMAIL=qa@example.cn@" + t1 + "/1110;");
    CHECK(get_all(snap, "88.118.8/sn-1").spelling == "88.118.8/SN-1");
    CHECK(values_of(get_all(snap, "88.118.8/Coil-2")) ==
          "1:URL=https://example.cn/coil-2@" + t0 + "/1110;1001:TEMPLATE=steel-1.0@" + t0 +
              "/1110;2000:heat_no=H-77@" + t0 + "/1110;2001:grade=Q235@" + t0 + "/1100;");
    CHECK(values_of(get_all(snap, "88.118.8.5/N-1")) ==
          "1:URL=https://n.example/1@" + t0 + "/1110;");
    CHECK(values_of(get_all(snap, "88.118.8/" + std::string(600, 'L'))) ==
          "1:URL=https://example.cn/long@" + t0 + "/1110;");
    CHECK(values_of(get_all(snap, "88.118.8/LOAD-2")) ==
          "1:URL=https://example.cn/load-2@" + t2 + "/1110;");
    CHECK_FALSE(snap.contains(handle("88.118.8/DEL-1")));
    auto listed = snap.list("88.118.8", {}, 100);
    REQUIRE(listed.ok());
    // In key order (folded): COIL-2 < LLL... < LOAD-1 < LOAD-2 < SN-1.
    CHECK(listed->handles ==
          std::vector<std::string>{"88.118.8/Coil-2", "88.118.8/" + std::string(600, 'L'),
                                   "88.118.8/LOAD-1", "88.118.8/LOAD-2", "88.118.8/SN-1"});

    // Counters.
    CHECK(snap.count("88.118.8") == 5);
    CHECK(snap.count("88.118.8.5") == 1);
    CHECK(snap.count_all() == 6);
    CHECK(snap.template_usage("88.118.8/steel-1.0") == 1);
    CHECK(snap.registrations(kGoldenT0) == 7); // DEL-1 was created that day too
    CHECK(snap.registrations(kGoldenT0, "88.118.8") == 6);
    CHECK(snap.prefix_counts() ==
          std::vector<std::pair<std::string, std::uint64_t>>{{"88.118.8", 5}, {"88.118.8.5", 1}});

    // Prefixes.
    auto node = snap.prefix_record("88.118");
    REQUIRE(node.ok());
    CHECK(node->kind == PrefixKind::node);
    auto ent = snap.prefix_record("88.118.8");
    REQUIRE(ent.ok());
    CHECK(ent->kind == PrefixKind::enterprise);
    CHECK(ent->status == PrefixStatus::active);
    CHECK(ent->enterprise.name == "鞍钢股份");
    CHECK(ent->enterprise.credit_code == "91210300242669106E");
    CHECK(ent->enterprise.contact == "ops@ansteel.cn");
    CHECK(ent->created == kGoldenT0);
    auto nested = snap.prefix_record("88.118.8.5");
    REQUIRE(nested.ok());
    CHECK(nested->enterprise.name == "Nested Works");
    auto suspended = snap.prefix_record("88.118.9");
    REQUIRE(suspended.ok());
    CHECK(suspended->status == PrefixStatus::suspended);
    std::vector<std::string> prefixes;
    snap.for_each_prefix([&](const std::string& key, const PrefixRecord& p) {
        CHECK(key == fold_case(p.prefix));
        prefixes.push_back(p.prefix);
    });
    CHECK(prefixes == std::vector<std::string>{"88.118", "88.118.8", "88.118.8.5", "88.118.9"});

    // Accounts and the API key.
    auto admin = snap.account("admin");
    REQUIRE(admin.ok());
    CHECK(admin->role == Role::admin);
    CHECK(verify_password("golden-admin", admin->password_hash));
    CHECK(admin->v1_secret == sha256_hex("golden-admin"));
    auto ent1 = snap.account("ent1");
    REQUIRE(ent1.ok());
    CHECK(ent1->role == Role::enterprise);
    CHECK(ent1->prefixes == std::vector<std::string>{"88.118.8"});
    CHECK(ent1->token_generation == 2);
    CHECK(verify_password("golden-ent1", ent1->password_hash));
    auto reader = snap.account("reader1");
    REQUIRE(reader.ok());
    CHECK(reader->role == Role::reader);
    CHECK(reader->password_hash.empty());
    auto gone = snap.account("gone");
    REQUIRE(gone.ok());
    CHECK(gone->disabled);
    CHECK(snap.account("nobody").code() == Errc::not_found);
    auto key = snap.api_key("0123456789abcdef");
    REQUIRE(key.ok());
    CHECK(key->username == "ent1");
    std::string secret;
    for (int i = 0; i < 32; ++i) {
        secret += "5a";
    }
    CHECK(api_key_matches(*key, secret));
    CHECK_FALSE(api_key_matches(*key, std::string(64, '0')));

    // The template.
    auto tpl = snap.template_entry("88.118.8/steel-1.0");
    REQUIRE(tpl.ok());
    CHECK(tpl->description == "热轧钢卷");
    REQUIRE(tpl->items.size() == 2);
    CHECK(tpl->items[0].name == "炉号");
    CHECK(tpl->items[0].required);
    CHECK(tpl->items[0].max_length == 32);
    CHECK(tpl->items[1].type == FieldType::enumeration);
    CHECK(tpl->items[1].values == std::vector<std::string>{"Q235", "Q345"});

    // The bulk outcome.
    auto outcome = snap.bulk_outcome(std::string("ent1") + '\0' + "run-1");
    REQUIRE(outcome.ok());
    CHECK(outcome->lines == 3);
    CHECK(outcome->created == 2);
    CHECK(outcome->errors == 1);
    CHECK(outcome->error_lines == "{\"line\":3,\"error\":\"invalid handle\"}\n");

    // The change log: 4 prefixes, 4 accounts, 1 key, 1 template, 5 creations, an update, a
    // deletion and 2 loaded creations (no copy: filled from the stored record).
    const auto changes = snap.changes(1, 100);
    REQUIRE(changes.size() == 19);
    CHECK(snap.last_sequence() == 19);
    CHECK(changes[0].kind == ChangeKind::prefix);
    CHECK(changes[0].key == "88.118");
    CHECK(changes[4].kind == ChangeKind::account);
    CHECK(changes[8].kind == ChangeKind::api_key);
    CHECK(changes[9].kind == ChangeKind::template_);
    CHECK(changes[9].account == "ent1");
    CHECK(changes[10].kind == ChangeKind::identifier);
    CHECK(changes[10].key == "88.118.8/SN-1");
    CHECK(changes[15].op == ChangeOp::update);
    CHECK(changes[15].time == kGoldenT0 + 60);
    CHECK(changes[16].op == ChangeOp::remove);
    CHECK(changes[16].key == "88.118.8/DEL-1");
    CHECK(changes[16].value.empty());
    CHECK(changes[17].loaded);
    CHECK(changes[17].key == "88.118.8/LOAD-1");
    CHECK(changes[17].account == "idctl-load");
    CHECK_FALSE(changes[17].value.empty());
    CHECK(changes[18].loaded);
}

void check_opens_and_upgrades(int version) {
    TempDir dir;
    const auto db = copy_golden(dir, version);
    {
        auto reg = Registry::open(golden_options(db));
        check_content(*reg);
        auto report = reg->verify();
        CHECK_MESSAGE(report.ok(), (report.problems.empty() ? "" : report.problems.front()));
        CHECK(report.identifiers == 6);

        // It takes writes of every kind.
        CHECK(reg->write(put("88.118.8/NEW-1", {val(1, "URL", "https://example.cn/new")},
                             PutMode::create))
                  .outcome == Outcome::created);
        CHECK(reg->write(SetValues{handle("88.118.8/Coil-2"), {val(2000, "heat_no", "H-78")}})
                  .outcome == Outcome::updated);
        CHECK(reg->write(DeleteRecord{handle("88.118.8.5/N-1")}).outcome == Outcome::deleted);
        PrefixRecord p{"88.118.7", PrefixKind::enterprise, PrefixStatus::active, {}, 0};
        CHECK(reg->write(PutEntry{Table::prefixes, "88.118.7", encode_prefix(p), PutMode::create})
                  .outcome == Outcome::created);
        CHECK(reg->write(DeleteEntry{Table::templates, "88.118.8/steel-1.0"}).error.code ==
              Errc::in_use);
        // The identities table, which the golden database predates, is created by the open.
        CHECK(reg->snapshot().identity("88.118.8/ADMIN", 300).code() == Errc::not_found);
        Identity id{"88.118.8/Admin", 300, "ent1", IdentityKeyKind::secret, "s", "", kGoldenT0};
        CHECK(reg->write(PutEntry{Table::identities, identity_key("88.118.8/ADMIN", 300),
                                  encode_identity(id), PutMode::create})
                  .outcome == Outcome::created);
        report = reg->verify();
        CHECK_MESSAGE(report.ok(), (report.problems.empty() ? "" : report.problems.front()));
    }
    // What it wrote survives a reopen, read-only too (the schema is now this build's).
    auto o = golden_options(db);
    o.mode = OpenMode::read_only;
    auto reg = Registry::open(o);
    auto snap = reg->snapshot();
    CHECK(snap.contains(handle("88.118.8/NEW-1")));
    CHECK_FALSE(snap.contains(handle("88.118.8.5/N-1")));
    CHECK(snap.count("88.118.8") == 6);
    CHECK(snap.count_all() == 6);
    CHECK(snap.prefix_record("88.118.7").ok());
    CHECK(snap.last_sequence() == 24);
    auto id = snap.identity("88.118.8/admin", 300);
    REQUIRE(id.ok());
    CHECK(id->account == "ent1");
    CHECK(snap.changes(24, 1).at(0).kind == ChangeKind::identity);
    CHECK(reg->verify().ok());
}

} // namespace

TEST_CASE("identities stored under the first key layout are rekeyed by a writable open") {
    TempDir dir;
    const auto db = copy_golden(dir, 1);
    Identity a{"88.118.8/Admin", 300, "ent1", IdentityKeyKind::secret, "s", "", kGoldenT0};
    Identity b{"88.118.8/ADMIN", 301, "ent1", IdentityKeyKind::secret, "t", "", kGoldenT0};
    Identity c{"0.NA/88.118.8", 300, "ent1", IdentityKeyKind::secret, "u", "", kGoldenT0};
    {
        auto reg = Registry::open(golden_options(db));
        // As the build before the handle-first layout wrote them.
        for (const auto& [key, id] : {std::pair{std::string("300:88.118.8/ADMIN"), a},
                                      std::pair{std::string("301:88.118.8/ADMIN"), b},
                                      std::pair{std::string("300:0.NA/88.118.8"), c}}) {
            REQUIRE(
                reg->write(PutEntry{Table::identities, key, encode_identity(id), PutMode::create})
                    .outcome == Outcome::created);
        }
    }
    auto reg = Registry::open(golden_options(db));
    auto snap = reg->snapshot();
    CHECK(snap.identity("88.118.8/ADMIN", 300)->secret == "s");
    CHECK(snap.identity("88.118.8/admin", 301)->secret == "t");
    CHECK(snap.identity("0.NA/88.118.8", 300)->secret == "u");
    const auto of_admin = snap.identities_of("88.118.8/ADMIN");
    REQUIRE(of_admin.size() == 2);
    CHECK(of_admin[0].index == 300);
    CHECK(of_admin[1].index == 301);
    CHECK(snap.identities_of("88.118.8/ADMI").empty());
    CHECK(snap.identities_of("0.NA/88.118.8").size() == 1);
    std::size_t entries = 0;
    snap.for_each_entry(Table::identities, [&](const std::string& key, const std::string&) {
        CHECK(key.find('\0') != std::string::npos);
        ++entries;
    });
    CHECK(entries == 3);
    CHECK(reg->verify().ok());
}

TEST_CASE("golden database v1 opens, reads back, verifies and takes writes") {
    check_opens_and_upgrades(1);
}

TEST_CASE("every schema version up to this build's has a golden database") {
    for (int v = 1; v <= static_cast<int>(kSchemaVersion); ++v) {
        INFO("v" << v);
        CHECK(std::filesystem::exists(std::filesystem::path(IDNODE_GOLDEN_DIR) /
                                      ("v" + std::to_string(v)) / "data.mdb"));
    }
}
