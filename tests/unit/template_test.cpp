// Metadata templates: structural validation, update rules, encoding, and the table of record
// violations with their messages (docs/data-model.md#templates).
#include "idnode/registry/registry.hpp"
#include "idnode/registry/template.hpp"
#include "temp_dir.hpp"

#include <doctest/doctest.h>

using namespace idnode::registry;

namespace {

Template steel() {
    Template t;
    t.prefix = "88.118.8";
    t.version = "1.0";
    t.industry_category = "C";
    t.industry_specific = "31";
    t.industry_trade = "312";
    t.industry_subclass = "3120";
    t.items = {
        {"炉号", "heat_no", 2000, true, true, FieldType::string, 4, 16, {}, true},
        {"牌号",
         "grade",
         2001,
         true,
         true,
         FieldType::enumeration,
         0,
         65536,
         {"Q235B", "Q345B"},
         true},
        {"生产日期", "production_date", 2002, false, true, FieldType::date, 0, 65536, {}, true},
        {"重量", "weight_kg", 2003, false, true, FieldType::number, 0, 65536, {}, true},
        {"件数", "pieces", 2004, false, true, FieldType::integer, 0, 65536, {}, true},
        {"质保书", "mill_cert_url", 2005, false, true, FieldType::url, 0, 65536, {}, true},
        {"检验时间", "inspected_at", 2006, false, true, FieldType::datetime, 0, 65536, {}, true},
        {"上游标识", "parent", 2007, false, true, FieldType::handle, 0, 65536, {}, true},
        {"旧字段", "legacy", 2008, false, false, FieldType::string, 0, 65536, {}, true},
        {"单价", "price", 2009, false, true, FieldType::number, 0, 65536, {}, false},
    };
    return t;
}

HandleValue val(std::int32_t index, std::string type, std::string data) {
    HandleValue v;
    v.index = index;
    v.type = std::move(type);
    v.data = std::move(data);
    return v;
}

std::vector<HandleValue> valid_values() {
    return {val(1, "URL", "https://steel.example.cn/c/1"), val(2000, "heat_no", "H2024001"),
            val(2001, "grade", "Q235B")};
}

} // namespace

TEST_CASE("a valid record has no violations; values below 2000 are free-form") {
    auto values = valid_values();
    values.push_back(val(2002, "production_date", "2024-02-29"));
    values.push_back(val(2003, "weight_kg", "-1.5e3"));
    values.push_back(val(2004, "pieces", "12"));
    values.push_back(val(2005, "mill_cert_url", "https://mill.example.cn/cert/1"));
    values.push_back(val(2006, "inspected_at", "2024-11-22T10:00:00.5+08:00"));
    values.push_back(val(2007, "parent", "88.118.8/COIL-1"));
    values.push_back(val(2009, "price", "4120.50"));
    values.push_back(val(1001, "TEMPLATE", "1.0"));
    CHECK(validate_record(steel(), values).empty());
}

TEST_CASE("table of template violations, each with its message") {
    struct Case {
        const char* what;
        HandleValue value; // added to (or replacing the same index of) a valid record
        ViolationKind kind;
        const char* english;
        const char* chinese;
    };
    const Case cases[] = {
        {"unknown index", val(2050, "color", "red"), ViolationKind::unknown_index,
         "index 2050 (type color) is not defined in the template", "索引2050在模板中不存在"},
        {"index/type mismatch", val(2000, "grade", "H2024001"), ViolationKind::type_mismatch,
         "index 2000 has type grade but the template defines heat_no",
         "索引2000的类型grade与模板定义的heat_no不一致"},
        {"disabled item", val(2008, "legacy", "x"), ViolationKind::disabled_item,
         "index 2008 (legacy 旧字段) is disabled in the template",
         "索引2008(旧字段/legacy)在模板中已停用"},
        {"too short", val(2000, "heat_no", "H1"), ViolationKind::length,
         "index 2000 (heat_no 炉号) must be 4 to 16 characters long, got 2",
         "索引2000(炉号/heat_no)的长度必须在4到16之间，实际为2"},
        {"too long (characters, not bytes)",
         val(2000, "heat_no", "炉号炉号炉号炉号炉号炉号炉号炉号X"), ViolationKind::length,
         "index 2000 (heat_no 炉号) must be 4 to 16 characters long, got 17",
         "索引2000(炉号/heat_no)的长度必须在4到16之间，实际为17"},
        {"enum miss", val(2001, "grade", "S355"), ViolationKind::enum_miss,
         "index 2001 (grade 牌号) must be one of: Q235B, Q345B",
         "索引2001(牌号/grade)的值必须是以下之一：Q235B, Q345B"},
        {"bad date", val(2002, "production_date", "2023-02-29"), ViolationKind::wrong_type,
         "index 2002 (production_date 生产日期) must be a date YYYY-MM-DD",
         "索引2002(生产日期/production_date)的值必须是日期(YYYY-MM-DD)"},
        {"bad number", val(2003, "weight_kg", "12,5"), ViolationKind::wrong_type,
         "index 2003 (weight_kg 重量) must be a number", "索引2003(重量/weight_kg)的值必须是数字"},
        {"bad integer", val(2004, "pieces", "3.0"), ViolationKind::wrong_type,
         "index 2004 (pieces 件数) must be an integer", "索引2004(件数/pieces)的值必须是整数"},
        {"bad url", val(2005, "mill_cert_url", "mill.example.cn/cert"), ViolationKind::wrong_type,
         "index 2005 (mill_cert_url 质保书) must be a URL (scheme://...)",
         "索引2005(质保书/mill_cert_url)的值必须是URL"},
        {"bad datetime", val(2006, "inspected_at", "2024-11-22 10:00"), ViolationKind::wrong_type,
         "index 2006 (inspected_at 检验时间) must be an RFC 3339 date-time",
         "索引2006(检验时间/inspected_at)的值必须是日期时间(RFC 3339)"},
        {"bad handle", val(2007, "parent", "no-slash"), ViolationKind::wrong_type,
         "index 2007 (parent 上游标识) must be an identifier prefix/suffix",
         "索引2007(上游标识/parent)的值必须是标识(前缀/后缀)"},
        {"not UTF-8", val(2000, "heat_no", "H20\xff\xfe"), ViolationKind::not_utf8,
         "index 2000 (heat_no 炉号) must be UTF-8 text",
         "索引2000(炉号/heat_no)的值必须是UTF-8文本"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.what);
        auto values = valid_values();
        std::erase_if(values, [&](const HandleValue& v) { return v.index == c.value.index; });
        values.push_back(c.value);
        auto violations = validate_record(steel(), values);
        REQUIRE(violations.size() == 1);
        CHECK(violations[0].kind == c.kind);
        CHECK(violations[0].index == c.value.index);
        CHECK(violations[0].english() == c.english);
        CHECK(violations[0].chinese() == c.chinese);
    }
}

TEST_CASE("missing required items are each reported, a disabled required item is not") {
    auto t = steel();
    t.items[0].enabled = true;
    const std::vector<HandleValue> only_url{val(1, "URL", "https://x.example/1")};
    auto violations = validate_record(t, only_url);
    REQUIRE(violations.size() == 2);
    CHECK(violations[0].english() == "required index 2000 (heat_no 炉号) is missing");
    CHECK(violations[0].chinese() == "必填项索引2000(炉号/heat_no)缺失");
    CHECK(violations[1].index == 2001);
    t.items[0].enabled = false;
    t.items[1].enabled = false;
    CHECK(validate_record(t, only_url).empty());
}

TEST_CASE("field type checks at their edges") {
    const std::vector<std::string> none;
    CHECK(check_field_type(FieldType::date, "2000-02-29", none).empty());
    CHECK(!check_field_type(FieldType::date, "1900-02-29", none).empty());
    CHECK(!check_field_type(FieldType::date, "2024-04-31", none).empty());
    CHECK(!check_field_type(FieldType::date, "2024-4-01", none).empty());
    CHECK(check_field_type(FieldType::datetime, "2024-11-22T10:00:00Z", none).empty());
    CHECK(check_field_type(FieldType::datetime, "2024-11-22t10:00:00.123z", none).empty());
    CHECK(!check_field_type(FieldType::datetime, "2024-11-22T24:00:00Z", none).empty());
    CHECK(!check_field_type(FieldType::datetime, "2024-11-22T10:00:00", none).empty());
    CHECK(!check_field_type(FieldType::datetime, "2024-11-22T10:00:00+0800", none).empty());
    CHECK(check_field_type(FieldType::integer, "-9223372036854775808", none).empty());
    CHECK(!check_field_type(FieldType::integer, "9223372036854775808", none).empty());
    CHECK(!check_field_type(FieldType::integer, "", none).empty());
    CHECK(check_field_type(FieldType::number, "0.5", none).empty());
    CHECK(!check_field_type(FieldType::number, "01", none).empty());
    CHECK(!check_field_type(FieldType::number, ".5", none).empty());
    CHECK(!check_field_type(FieldType::number, "1e", none).empty());
    CHECK(check_field_type(FieldType::url, "urn+x://a", none).empty());
    CHECK(!check_field_type(FieldType::url, "https://a b", none).empty());
    CHECK(!check_field_type(FieldType::url, "1http://a", none).empty());
    CHECK(check_field_type(FieldType::string, "", none).empty());
}

TEST_CASE("structural validation of templates names the problem") {
    CHECK(validate_template(steel()).ok());
    struct Case {
        const char* what;
        void (*mutate)(Template&);
        const char* message;
    };
    const Case cases[] = {
        {"bad version", [](Template& t) { t.version = "1 0"; },
         "version must be 1 to 64 characters of letters, digits, '.', '-', '_'"},
        {"bad type", [](Template& t) { t.type = 3; },
         "type must be 1 (active identifier carrier) or 2 (other)"},
        {"bad category", [](Template& t) { t.industry_category = "Z"; },
         "industryCategory must be a GB/T 4754 section letter A to T"},
        {"inconsistent trade", [](Template& t) { t.industry_trade = "331"; },
         "industryTrade must be three digits starting with industrySpecific"},
        {"no items", [](Template& t) { t.items.clear(); }, "a template needs 1 to 2000 items"},
        {"low index", [](Template& t) { t.items[0].id_index = 1999; },
         "item 1999: idIndex must be >= 2000"},
        {"duplicate index", [](Template& t) { t.items[1].id_index = 2000; },
         "item 2000: idIndex is used twice"},
        {"duplicate idType", [](Template& t) { t.items[1].id_type = "HEAT_NO"; },
         "item 2001: idType HEAT_NO is used twice"},
        {"empty name", [](Template& t) { t.items[0].name.clear(); },
         "item 2000: name must be 1 to 256 bytes of UTF-8 text"},
        {"min > max", [](Template& t) { t.items[0].min_length = 20; },
         "item 2000: metadata needs minLength <= maxLength <= 65536"},
        {"empty enum", [](Template& t) { t.items[1].values.clear(); },
         "item 2001: an enum needs 1 to 256 values"},
        {"values on a string", [](Template& t) { t.items[0].values = {"a"}; },
         "item 2000: metadata.values is only for type enum"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.what);
        auto t = steel();
        c.mutate(t);
        Status st = validate_template(t);
        REQUIRE(!st.ok());
        CHECK(st.code() == Errc::invalid_value);
        CHECK(st.error().message == c.message);
    }
}

TEST_CASE("updates may add and disable items, never delete, renumber or retype them") {
    const auto stored = steel();
    auto added = stored;
    added.items.push_back(
        {"备注", "remark", 2100, false, true, FieldType::string, 0, 200, {}, true});
    added.items[0].enabled = false;
    CHECK(check_template_update(stored, added).ok());

    auto deleted = stored;
    deleted.items.erase(deleted.items.begin() + 2);
    CHECK(check_template_update(stored, deleted).error().message ==
          "item 2002 (production_date) is missing: items are never deleted, disable them with "
          "state 0");
    auto renumbered = stored;
    renumbered.items[2].id_type = "made_on";
    CHECK(check_template_update(stored, renumbered).error().message ==
          "item 2002 (production_date): idType cannot change (items are never renumbered)");
    auto retyped = stored;
    retyped.items[2].type = FieldType::string;
    CHECK(check_template_update(stored, retyped).error().message ==
          "item 2002 (production_date): metadata.type cannot change");
    auto moved = stored;
    moved.version = "2.0";
    CHECK(!check_template_update(stored, moved).ok());
}

TEST_CASE("template encoding round-trips and rejects truncation") {
    auto t = steel();
    t.created = 1700000000;
    t.updated = 1700000100;
    t.description = "热轧钢卷";
    const std::string bytes = encode_template(t);
    auto back = decode_template(bytes);
    REQUIRE(back.ok());
    CHECK(*back == t);
    for (std::size_t cut = 0; cut < bytes.size(); cut += 7) {
        CHECK(decode_template(bytes.substr(0, cut)).code() == Errc::corrupt);
    }
    CHECK(decode_template(bytes + "x").code() == Errc::corrupt);
    CHECK(template_key("88.118.8", "1.0").value() == "88.118.8/1.0");
    CHECK(template_key("88.abc", "v1").value() == "88.ABC/v1");
    CHECK(template_key("88.118.8", "").code() == Errc::invalid_value);
}

TEST_CASE("the writer counts template usage and refuses to delete a template in use") {
    idnode::test::TempDir dir;
    RegistryOptions options;
    options.data_dir = dir.path();
    options.max_db_size = 64ull << 20;
    auto reg = Registry::open(options);
    const std::string key = template_key("88.118.8", "1.0").value();
    REQUIRE(reg->write(PutEntry{Table::templates, key, encode_template(steel()), PutMode::create})
                .ok());
    auto with_template = [](std::string version) {
        auto values = valid_values();
        values.push_back(val(kIndexTemplate, "TEMPLATE", std::move(version)));
        return values;
    };
    auto h1 = parse_handle("88.118.8/A1").value();
    auto h2 = parse_handle("88.118.8/A2").value();
    REQUIRE(reg->write(PutRecord{h1, with_template("1.0"), PutMode::create}).ok());
    REQUIRE(reg->write(PutRecord{h2, with_template("1.0"), PutMode::create}).ok());
    CHECK(reg->snapshot().template_usage(key) == 2);

    auto refused = reg->write(DeleteEntry{Table::templates, key});
    CHECK(refused.error.code == Errc::in_use);
    CHECK(refused.error.message == "template 88.118.8/1.0 is used by 2 identifiers");

    // Replacing a record without the TEMPLATE value, removing the value, deleting the record.
    REQUIRE(reg->write(PutRecord{h1, valid_values(), PutMode::replace}).ok());
    CHECK(reg->snapshot().template_usage(key) == 1);
    REQUIRE(reg->write(SetValues{h1, {val(kIndexTemplate, "TEMPLATE", "1.0")}, false}).ok());
    CHECK(reg->snapshot().template_usage(key) == 2);
    REQUIRE(reg->write(RemoveValues{h1, {kIndexTemplate}}).ok());
    REQUIRE(reg->write(DeleteRecord{h2}).ok());
    CHECK(reg->snapshot().template_usage(key) == 0);

    // Within one group: a record created in the same batch as the delete still blocks it.
    WriteBatch batch;
    batch.ops.push_back(PutRecord{h2, with_template("1.0"), PutMode::create});
    batch.ops.push_back(DeleteEntry{Table::templates, key});
    auto results = reg->write(std::move(batch));
    CHECK(results[0].ok());
    CHECK(results[1].error.code == Errc::in_use);
    REQUIRE(reg->write(DeleteRecord{h2}).ok());
    CHECK(reg->write(DeleteEntry{Table::templates, key}).outcome == Outcome::deleted);
}
