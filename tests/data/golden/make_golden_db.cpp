// Writes the golden database of the current schema (registry.hpp kSchemaVersion) into
// <out_dir>/v<schema>/data.mdb: a few records of every table, written through the registry's
// own API with a fixed clock, then compacted (Registry::backup) so that the committed file stays
// small. golden_db_test.cpp opens a copy of every committed version and checks what is read back,
// so the values below and the test's expectations must agree; once a version is committed it is
// never regenerated (it stands for databases written by that release).
//
// Build: cmake --build build/dev --target golden_db_generator
// Run:   build/dev/bin/golden_db_generator tests/data/golden
#include "idnode/registry/admin.hpp"
#include "idnode/registry/offline_load.hpp"
#include "idnode/registry/registry.hpp"
#include "idnode/registry/template.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

using namespace idnode::registry;

namespace {

constexpr std::int64_t kT0 = 1700000000; // 2023-11-14T22:13:20Z

Handle handle(std::string_view text) {
    auto h = parse_handle(text, HandleLimits{kHandleProtocolMaxLength});
    if (!h) {
        throw std::runtime_error("bad handle " + std::string(text));
    }
    return std::move(*h);
}

HandleValue value(std::int32_t index, std::string type, std::string data,
                  std::string_view perms = "1110") {
    HandleValue v;
    v.index = index;
    v.type = std::move(type);
    v.data = std::move(data);
    v.permissions = *Permissions::parse(perms);
    return v;
}

void must(const OpResult& r, const char* what) {
    if (!r.ok()) {
        throw std::runtime_error(std::string(what) + ": " + r.error.message);
    }
}

Template steel() {
    Template t;
    t.prefix = "88.118.8";
    t.version = "steel-1.0";
    t.industry_category = "C";
    t.industry_specific = "31";
    t.description = "热轧钢卷";
    TemplateItem heat;
    heat.name = "炉号";
    heat.id_type = "heat_no";
    heat.id_index = 2000;
    heat.required = true;
    heat.max_length = 32;
    TemplateItem grade;
    grade.name = "牌号";
    grade.id_type = "grade";
    grade.id_index = 2001;
    grade.type = FieldType::enumeration;
    grade.values = {"Q235", "Q345"};
    t.items = {heat, grade};
    t.created = kT0;
    t.updated = kT0;
    return t;
}

void write_content(const std::filesystem::path& dir) {
    std::int64_t now = kT0;
    RegistryOptions o;
    o.data_dir = dir;
    o.initial_map_size = 1ull << 20;
    o.max_db_size = 64ull << 20;
    o.clock = [&now] { return now; };
    auto reg = Registry::open(o);

    // Prefixes: the node prefix, an active enterprise, one nested under it, one suspended.
    PrefixRecord node{"88.118", PrefixKind::node, PrefixStatus::active, {}, kT0};
    PrefixRecord ent{"88.118.8", PrefixKind::enterprise, PrefixStatus::active,
                     EnterpriseInfo{"鞍钢股份", "91210300242669106E", "3120", "ops@ansteel.cn"},
                     kT0};
    PrefixRecord nested{"88.118.8.5", PrefixKind::enterprise, PrefixStatus::active,
                        EnterpriseInfo{"Nested Works", "", "", ""}, kT0};
    PrefixRecord suspended{"88.118.9", PrefixKind::enterprise, PrefixStatus::suspended,
                           EnterpriseInfo{"Paused Ltd", "", "C", ""}, kT0};
    for (const auto* p : {&node, &ent, &nested, &suspended}) {
        must(reg->write(PutEntry{Table::prefixes, fold_case(p->prefix), encode_prefix(*p),
                                 PutMode::create},
                        "admin"),
             "prefix");
    }

    // Accounts: admin (password "golden-admin"), enterprise, reader, and a disabled one
    // (entry format 2).
    Account admin{
        "admin", Role::admin, {},   hash_password("golden-admin", 1000), sha256_hex("golden-admin"),
        0,       kT0,         false};
    Account ent1{"ent1",
                 Role::enterprise,
                 {"88.118.8"},
                 hash_password("golden-ent1", 1000),
                 sha256_hex("golden-ent1"),
                 2,
                 kT0,
                 false};
    Account reader{"reader1", Role::reader, {"88.118.8"}, "", "", 0, kT0, false};
    Account gone{"gone", Role::enterprise, {"88.118.9"}, "", "", 1, kT0, true};
    for (const auto* a : {&admin, &ent1, &reader, &gone}) {
        must(reg->write(PutEntry{Table::accounts, a->username, encode_account(*a), PutMode::create},
                        "admin"),
             "account");
    }

    // An API key of ent1 with a known secret (64 hex characters of "5a").
    std::string secret;
    for (int i = 0; i < 32; ++i) {
        secret += "5a";
    }
    ApiKeyRecord key{"0123456789abcdef", "ent1", sha256_raw(secret), kT0};
    must(reg->write(PutEntry{Table::api_keys, key.key_id, encode_api_key(key), PutMode::create},
                    "admin"),
         "api key");

    // A template.
    must(reg->write(PutEntry{Table::templates, "88.118.8/steel-1.0", encode_template(steel()),
                             PutMode::create},
                    "ent1"),
         "template");

    // Identifiers: plain, template-bound, under the nested prefix, one longer than the short-key
    // limit (stored under its hashed key), one updated later, one deleted.
    must(
        reg->write(PutRecord{handle("88.118.8/SN-1"), {value(1, "URL", "https://example.cn/sn-1")}},
                   "ent1"),
        "SN-1");
    must(reg->write(PutRecord{handle("88.118.8/Coil-2"),
                              {value(1, "URL", "https://example.cn/coil-2"),
                               value(1001, "TEMPLATE", "steel-1.0"), value(2000, "heat_no", "H-77"),
                               value(2001, "grade", "Q235", "1100")}},
                    "ent1"),
         "Coil-2");
    must(reg->write(PutRecord{handle("88.118.8.5/N-1"), {value(1, "URL", "https://n.example/1")}},
                    "admin"),
         "N-1");
    must(reg->write(PutRecord{handle("88.118.8/" + std::string(600, 'L')),
                              {value(1, "URL", "https://example.cn/long")}},
                    "ent1"),
         "long");
    must(reg->write(PutRecord{handle("88.118.8/DEL-1"), {value(1, "URL", "x")}}, "ent1"), "DEL-1");
    now = kT0 + 60;
    must(reg->write(SetValues{handle("88.118.8/SN-1"), {value(2, "EMAIL", "qa@example.cn")}},
                    "ent1"),
         "SN-1 update");
    must(reg->write(DeleteRecord{handle("88.118.8/DEL-1")}, "ent1"), "DEL-1 delete");

    // A bulk outcome kept under its Idempotency-Key (not change-logged).
    BulkOutcome outcome;
    outcome.expires_ms = (kT0 + 86400) * 1000;
    outcome.lines = 3;
    outcome.created = 2;
    outcome.errors = 1;
    outcome.error_lines = "{\"line\":3,\"error\":\"invalid handle\"}\n";
    must(reg->write(PutEntry{Table::idempotency, std::string("ent1") + '\0' + "run-1",
                             encode_bulk_outcome(outcome)}),
         "outcome");
    reg.reset();

    // Two records of an offline load: change-log entries without record copies.
    OfflineLoadOptions lo;
    lo.data_dir = dir;
    lo.max_db_size = 64ull << 20;
    lo.clock = [] { return kT0 + 120; };
    auto loader = OfflineLoader::open(lo, [](const LoadRejection& r) {
        throw std::runtime_error("load rejected " + r.handle + ": " + r.error.message);
    });
    loader->add(1, "88.118.8/LOAD-1", {value(1, "URL", "https://example.cn/load-1")});
    loader->add(2, "88.118.8/LOAD-2", {value(1, "URL", "https://example.cn/load-2")});
    if (auto summary = loader->finish(); !summary || summary->created != 2) {
        throw std::runtime_error("offline load failed");
    }
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <tests/data/golden>\n", argv[0]);
        return 2;
    }
    try {
        const std::filesystem::path root = argv[1];
        const auto work = root / ".work";
        const auto out = root / ("v" + std::to_string(kSchemaVersion));
        std::filesystem::remove_all(work);
        if (std::filesystem::exists(out / "data.mdb")) {
            std::fprintf(stderr, "%s exists: a committed golden database is never regenerated\n",
                         (out / "data.mdb").c_str());
            return 1;
        }
        write_content(work);
        {
            RegistryOptions ro;
            ro.data_dir = work;
            ro.mode = OpenMode::read_only;
            auto reg = Registry::open(ro);
            const auto report = reg->verify();
            if (!report.ok()) {
                throw std::runtime_error("verify: " + report.problems.front());
            }
            if (Status st = reg->backup(out); !st) {
                throw std::runtime_error("backup: " + st.error().message);
            }
        }
        std::filesystem::remove_all(work);
        std::printf("wrote %s (%ju bytes)\n", (out / "data.mdb").c_str(),
                    static_cast<std::uintmax_t>(std::filesystem::file_size(out / "data.mdb")));
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
