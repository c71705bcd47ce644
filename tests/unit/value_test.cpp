// The value model, its validation and the binary record encoding
// (registry/include/idnode/registry/value.hpp, docs/data-model.md#values).
#include "idnode/registry/identifier.hpp"
#include "idnode/registry/value.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

using namespace idnode::registry;
using namespace std::string_literals;

namespace {

bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

HandleValue make_value(std::int32_t index, std::string type, std::string data) {
    HandleValue v;
    v.index = index;
    v.type = std::move(type);
    v.data = std::move(data);
    return v;
}

std::string all_bytes() {
    std::string s;
    for (int i = 0; i < 256; ++i) {
        s.push_back(static_cast<char>(i));
    }
    return s;
}

// Big-endian u32 at `at`.
std::uint32_t load_u32(const std::string& s, std::size_t at) {
    return (std::uint32_t(static_cast<unsigned char>(s[at])) << 24) |
           (std::uint32_t(static_cast<unsigned char>(s[at + 1])) << 16) |
           (std::uint32_t(static_cast<unsigned char>(s[at + 2])) << 8) |
           std::uint32_t(static_cast<unsigned char>(s[at + 3]));
}

// A set of records of many shapes used by the codec tests.
struct Shape {
    std::string name;
    std::string spelling;
    std::vector<HandleValue> values;
};

std::vector<Shape> shapes() {
    std::vector<Shape> out;
    {
        Shape s{"one URL value", "88.118.8/SN-2024-000123", {}};
        s.values.push_back(make_value(1, "URL", "https://example.com/sn/000123"));
        out.push_back(std::move(s));
    }
    {
        Shape s{"typical product record", "88.118.8/SN-2024-000124", {}};
        auto admin = make_value(kIndexHsAdmin, "HS_ADMIN", "\x0F\xF2\x00\x00\x00\x0A"s);
        admin.permissions.bits = Permissions::kAdminRead | Permissions::kAdminWrite;
        s.values.push_back(admin);
        s.values.push_back(make_value(kIndexTemplate, "TEMPLATE", "1.0"));
        s.values.push_back(make_value(2000, "heatNumber", "H2024-0815"));
        s.values.push_back(make_value(2001, "grade", "Q235B"));
        auto priv = make_value(2002, "millCertificateNo", "MC-99");
        priv.permissions.bits = Permissions::kAdminRead | Permissions::kAdminWrite;
        s.values.push_back(priv);
        out.push_back(std::move(s));
    }
    {
        Shape s{"binary data with every byte value", "20.500.123/bin", {}};
        s.values.push_back(make_value(7, "BIN", all_bytes()));
        out.push_back(std::move(s));
    }
    {
        Shape s{"empty data", "88.1/empty", {}};
        s.values.push_back(make_value(1, "EMPTY", ""));
        out.push_back(std::move(s));
    }
    {
        Shape s{"unicode spelling, type and data", "88.1/炉号 H2024 😀", {}};
        s.values.push_back(make_value(3, "描述", "钢卷 — Q235B 😀"));
        out.push_back(std::move(s));
    }
    {
        Shape s{"references, ttl and permissions", "0.NA/88.118", {}};
        auto v = make_value(300, "HS_VLIST", "");
        v.references.push_back({"88.118.8/a", 1});
        v.references.push_back({"88.118.8/炉", 2000});
        v.references.push_back({"0.NA/88", 2147483647});
        v.ttl = -1;
        v.ttl_type = TtlType::absolute;
        v.timestamp = 4000000000u;
        v.permissions.bits = Permissions::kAdminRead | Permissions::kAdminWrite |
                             Permissions::kPublicRead | Permissions::kPublicWrite;
        s.values.push_back(v);
        auto w = make_value(2147483647, "MAXINDEX", "x");
        w.ttl = 0;
        w.permissions.bits = 0;
        s.values.push_back(w);
        out.push_back(std::move(s));
    }
    {
        // Many small values: each is as small as a valid value gets (1-byte type, no data).
        Shape s{"many tiny values", "88.1/tiny", {}};
        for (int i = 1; i <= 40; ++i) {
            s.values.push_back(make_value(i, "T", ""));
        }
        out.push_back(std::move(s));
    }
    {
        Shape s{"many values, sizes vary", "88.1/many", {}};
        for (int i = 1; i <= 300; ++i) {
            s.values.push_back(
                make_value(i * 3, "TYPE" + std::to_string(i % 7),
                           std::string(static_cast<std::size_t>(i % 37), 'a' + i % 26)));
        }
        out.push_back(std::move(s));
    }
    {
        Shape s{"zero values", "88.1/none", {}};
        out.push_back(std::move(s));
    }
    {
        Shape s{"large data", "88.1/large", {}};
        std::string big(100000, '\0');
        for (std::size_t i = 0; i < big.size(); ++i) {
            big[i] = static_cast<char>(i * 131 + 7);
        }
        s.values.push_back(make_value(1, "BLOB", big));
        s.values.push_back(make_value(2, "URL", "https://example.com/"));
        out.push_back(std::move(s));
    }
    return out;
}

// Checks that a decoded value equals the original in every field, timestamp included.
void check_same(const HandleValue& got, const HandleValue& want) {
    CHECK(got.index == want.index);
    CHECK(got.type == want.type);
    CHECK(got.data == want.data);
    CHECK(got.ttl == want.ttl);
    CHECK(got.ttl_type == want.ttl_type);
    CHECK(got.timestamp == want.timestamp);
    CHECK(got.permissions == want.permissions);
    CHECK(got.references == want.references);
    CHECK(got == want);
}

} // namespace

// ---- Permissions --------------------------------------------------------------------------------

TEST_CASE("Permissions: default is 1110 and the textual form round-trips") {
    Permissions def;
    CHECK(def.to_string() == "1110");
    CHECK(def.public_read());
    CHECK(def.bits ==
          (Permissions::kAdminRead | Permissions::kAdminWrite | Permissions::kPublicRead));

    for (unsigned bits = 0; bits < 16; ++bits) {
        Permissions p;
        p.bits = static_cast<std::uint8_t>(bits);
        const std::string text = p.to_string();
        INFO("bits " << bits << " text " << text);
        REQUIRE(text.size() == 4);
        auto back = Permissions::parse(text);
        REQUIRE(back.ok());
        CHECK(back->bits == bits);
        CHECK(back->public_read() == ((bits & Permissions::kPublicRead) != 0));
    }
    // Position meaning: adminRead adminWrite publicRead publicWrite.
    CHECK(Permissions::parse("1000")->bits == Permissions::kAdminRead);
    CHECK(Permissions::parse("0100")->bits == Permissions::kAdminWrite);
    CHECK(Permissions::parse("0010")->bits == Permissions::kPublicRead);
    CHECK(Permissions::parse("0001")->bits == Permissions::kPublicWrite);
    CHECK_FALSE(Permissions::parse("1100")->public_read());
}

TEST_CASE("Permissions: malformed strings are invalid_value") {
    for (const std::string& text : {""s, "1"s, "111"s, "11100"s, "1112"s, "abcd"s, " 111"s, "111 "s,
                                    "11 0"s, "1,1,1,0"s, "\0\0\0\0"s, "-110"s, "１１１０"s}) {
        INFO("text: " << text);
        auto p = Permissions::parse(text);
        REQUIRE_FALSE(p.ok());
        CHECK(p.code() == Errc::invalid_value);
        CHECK_FALSE(p.error().message.empty());
    }
}

TEST_CASE("Permissions: the message quotes the text without cutting a character") {
    // Found by the handle_rest fuzz target: the quote was cut at byte 16, inside 炉.
    auto p = Permissions::parse("111111111111111炉");
    REQUIRE_FALSE(p.ok());
    CHECK(p.error().message.ends_with("got \"111111111111111\""));
    CHECK(find_invalid_utf8(p.error().message) == std::string::npos);
}

// ---- validate_values ----------------------------------------------------------------------------

TEST_CASE("validate_values accepts well-formed lists") {
    for (const auto& shape : shapes()) {
        if (shape.values.empty()) {
            continue;
        }
        INFO(shape.name);
        auto st = validate_values(shape.values);
        CHECK_MESSAGE(st.ok(), st.error().message);
    }
    // Exactly at the limits.
    std::vector<HandleValue> limit;
    for (int i = 1; i <= 5; ++i) {
        limit.push_back(make_value(i, std::string(kMaxTypeBytes, 'T'), "d"));
    }
    CHECK(validate_values(limit, ValueLimits{5, 1 << 20}).ok());
    std::vector<HandleValue> max_values;
    for (int i = 1; i <= static_cast<int>(kDefaultMaxValues); ++i) {
        max_values.push_back(make_value(i, "T", ""));
    }
    CHECK(validate_values(max_values).ok());
}

TEST_CASE("validate_values rejects every violation and names the offending value") {
    auto base = [] {
        std::vector<HandleValue> v;
        v.push_back(make_value(1, "URL", "https://example.com"));
        v.push_back(make_value(2, "EMAIL", "a@example.com"));
        v.push_back(make_value(37, "DESC", "ok"));
        return v;
    };
    const auto value_error = [](const Status& st) { return st.code() == Errc::invalid_value; };

    SUBCASE("empty list") {
        auto st = validate_values({});
        REQUIRE_FALSE(st.ok());
        CHECK(st.code() == Errc::invalid_value);
        CHECK_FALSE(st.error().message.empty());
    }
    SUBCASE("too many values") {
        std::vector<HandleValue> v;
        for (int i = 1; i <= 6; ++i) {
            v.push_back(make_value(i, "T", ""));
        }
        CHECK(validate_values(v, ValueLimits{6, 1 << 20}).ok());
        v.push_back(make_value(7, "T", ""));
        auto st = validate_values(v, ValueLimits{6, 1 << 20});
        REQUIRE_FALSE(st.ok());
        // The header allows either reading: a value-model violation or a configured limit.
        CHECK((st.code() == Errc::too_large || st.code() == Errc::invalid_value));
        CHECK(contains(st.error().message, "6"));

        std::vector<HandleValue> many;
        for (int i = 1; i <= static_cast<int>(kDefaultMaxValues) + 1; ++i) {
            many.push_back(make_value(i, "T", ""));
        }
        CHECK_FALSE(validate_values(many).ok());
    }
    SUBCASE("index zero or negative") {
        for (std::int32_t bad : {0, -1, -2147483647 - 1}) {
            auto v = base();
            v[2].index = bad;
            auto st = validate_values(v);
            REQUIRE_FALSE(st.ok());
            CHECK(value_error(st));
            INFO(st.error().message);
            CHECK(contains(st.error().message, "index " + std::to_string(bad)));
        }
    }
    SUBCASE("duplicate index") {
        auto v = base();
        v[2].index = 2;
        auto st = validate_values(v);
        REQUIRE_FALSE(st.ok());
        CHECK(value_error(st));
        INFO(st.error().message);
        CHECK(contains(st.error().message, "index 2"));
    }
    SUBCASE("empty type") {
        auto v = base();
        v[2].type.clear();
        auto st = validate_values(v);
        REQUIRE_FALSE(st.ok());
        CHECK(value_error(st));
        INFO(st.error().message);
        CHECK(contains(st.error().message, "index 37"));
        CHECK(contains(st.error().message, "type"));
    }
    SUBCASE("type longer than 128 bytes") {
        auto v = base();
        v[2].type = std::string(kMaxTypeBytes, 'X');
        CHECK(validate_values(v).ok());
        v[2].type.push_back('X');
        auto st = validate_values(v);
        REQUIRE_FALSE(st.ok());
        CHECK(value_error(st));
        INFO(st.error().message);
        CHECK(contains(st.error().message, "index 37"));
        // 128 bytes counted in bytes: 43 three-byte characters = 129 bytes.
        std::string wide;
        for (int i = 0; i < 43; ++i) {
            wide += "炉";
        }
        v[2].type = wide;
        CHECK_FALSE(validate_values(v).ok());
    }
    SUBCASE("control characters in the type") {
        for (const std::string& bad : {"UR\tL"s, "URL\n"s, "\0URL"s, "URL\x7F"s, "U\x1FRL"s}) {
            auto v = base();
            v[2].type = bad;
            auto st = validate_values(v);
            REQUIRE_FALSE(st.ok());
            CHECK(value_error(st));
            INFO(st.error().message);
            CHECK(contains(st.error().message, "index 37"));
        }
    }
    SUBCASE("invalid UTF-8 in the type") {
        for (const std::string& bad :
             {"URL\xC3"s, "\xC0\xAF"s, "\xED\xA0\x80"s, "\xF4\x90\x80\x80"s, "\x80"s}) {
            auto v = base();
            v[2].type = bad;
            auto st = validate_values(v);
            REQUIRE_FALSE(st.ok());
            CHECK(value_error(st));
            INFO(st.error().message);
            CHECK(contains(st.error().message, "index 37"));
        }
    }
    SUBCASE("bad reference handle") {
        auto v = base();
        v[2].references.push_back({"88.1/\xC3", 1});
        auto st = validate_values(v);
        REQUIRE_FALSE(st.ok());
        CHECK(value_error(st));
        CHECK(contains(st.error().message, "index 37"));
    }
    SUBCASE("unknown ttl type") {
        auto v = base();
        v[2].ttl_type = static_cast<TtlType>(2);
        auto st = validate_values(v);
        REQUIRE_FALSE(st.ok());
        CHECK(value_error(st));
        CHECK(contains(st.error().message, "index 37"));
    }
    SUBCASE("record too large") {
        auto v = base();
        v[1].data = std::string(2000, 'x');
        CHECK(validate_values(v, ValueLimits{kDefaultMaxValues, 4096}).ok());
        v[1].data = std::string(5000, 'x');
        auto st = validate_values(v, ValueLimits{kDefaultMaxValues, 4096});
        REQUIRE_FALSE(st.ok());
        CHECK((st.code() == Errc::too_large || st.code() == Errc::invalid_value));
        CHECK_FALSE(st.error().message.empty());
        // The default limit (1 MiB) applies too.
        v[1].data = std::string((1 << 20) + 1, 'x');
        CHECK_FALSE(validate_values(v).ok());
    }
    SUBCASE("the first offending value is named") {
        auto v = base();
        v[1].type.clear(); // index 2
        v[2].index = -5;   // index -5
        auto st = validate_values(v);
        REQUIRE_FALSE(st.ok());
        INFO(st.error().message);
        CHECK(contains(st.error().message, "index 2"));
        CHECK_FALSE(contains(st.error().message, "-5"));
    }
}

// ---- encoding -----------------------------------------------------------------------------------

TEST_CASE("encode_value uses the Handle protocol layout (RFC 3651 §3.1)") {
    HandleValue v = make_value(0x01020304, "URL", "ab");
    v.timestamp = 0x0A0B0C0D;
    v.ttl_type = TtlType::absolute;
    v.ttl = 0x11223344;
    v.permissions.bits = Permissions::kAdminRead | Permissions::kPublicRead;
    v.references.push_back({"0.NA/1", 0x55667788});
    std::string out = "prefix-bytes";
    encode_value(out, v);
    const std::string expected = "prefix-bytes"
                                 "\x01\x02\x03\x04"    // index
                                 "\x0A\x0B\x0C\x0D"    // timestamp
                                 "\x01"                // ttl type
                                 "\x11\x22\x33\x44"    // ttl
                                 "\x0A"                // permissions
                                 "\x00\x00\x00\x03URL" // type
                                 "\x00\x00\x00\x02"
                                 "ab"               // data
                                 "\x00\x00\x00\x01" // reference count
                                 "\x00\x00\x00\x06"
                                 "0.NA/1"             // reference handle
                                 "\x55\x66\x77\x88"s; // reference index
    CHECK(out == expected);
}

TEST_CASE("encode_record / decode_record round trip of many shapes") {
    for (const auto& shape : shapes()) {
        INFO(shape.name);
        const std::string bytes = encode_record(shape.spelling, shape.values);
        CHECK(static_cast<unsigned char>(bytes[0]) == 1); // format
        CHECK(static_cast<unsigned char>(bytes[1]) == 0); // flags
        auto rec = decode_record(bytes);
        if (!rec.ok()) {
            FAIL_CHECK("decode failed: " << rec.error().message);
            continue;
        }
        CHECK(rec->spelling == shape.spelling);
        REQUIRE(rec->values.size() == shape.values.size());
        for (std::size_t i = 0; i < shape.values.size(); ++i) {
            check_same(rec->values[i], shape.values[i]);
        }
        // Re-encoding the decoded record gives identical bytes.
        CHECK(encode_record(rec->spelling, rec->values) == bytes);
    }
}

TEST_CASE("records of small values decode: a valid value can be as small as 27 bytes") {
    // index 4 + timestamp 4 + ttl type 1 + ttl 4 + permissions 1 + type (4 + 1) + data (4 + 0) +
    // reference count 4 = 27 bytes for a one-byte type and no data.
    for (const std::string& type : {"T"s, "URL"s, "EMAIL"s}) {
        for (int n : {1, 2, 3, 10, 64}) {
            std::vector<HandleValue> values;
            for (int i = 1; i <= n; ++i) {
                values.push_back(make_value(i, type, ""));
            }
            REQUIRE(validate_values(values).ok());
            const std::string bytes = encode_record("88.1/small", values);
            INFO("type " << type << ", " << n << " values, " << bytes.size() << " bytes");
            auto rec = decode_record(bytes);
            if (!rec.ok()) {
                FAIL_CHECK("decode failed: " << rec.error().message);
                continue;
            }
            CHECK(rec->values == values);
        }
    }
}

TEST_CASE("RecordView iterates values zero-copy and ValueView::wire is the value's encoding") {
    for (const auto& shape : shapes()) {
        INFO(shape.name);
        const std::string bytes = encode_record(shape.spelling, shape.values);
        auto view = RecordView::parse(bytes);
        if (!view.ok()) {
            FAIL_CHECK("parse failed: " << view.error().message);
            continue;
        }
        CHECK(view->spelling() == shape.spelling);
        CHECK(view->size() == shape.values.size());
        CHECK(view->bytes() == bytes);
        const char* lo = bytes.data();
        const char* hi = bytes.data() + bytes.size();
        std::size_t i = 0;
        for (const ValueView& vv : *view) {
            REQUIRE(i < shape.values.size());
            const HandleValue& want = shape.values[i];
            CHECK(vv.index == want.index);
            CHECK(vv.timestamp == want.timestamp);
            CHECK(vv.ttl == want.ttl);
            CHECK(vv.ttl_type == want.ttl_type);
            CHECK(vv.permissions == want.permissions);
            CHECK(vv.type == want.type);
            CHECK(vv.data == want.data);
            CHECK(vv.reference_count == want.references.size());
            std::string encoded;
            encode_value(encoded, want);
            CHECK(vv.wire == encoded);
            // Zero-copy: the views point into the record bytes.
            CHECK(vv.wire.data() >= lo);
            CHECK(vv.wire.data() + vv.wire.size() <= hi);
            if (!vv.data.empty()) {
                CHECK(vv.data.data() >= lo);
                CHECK(vv.data.data() + vv.data.size() <= hi);
            }
            check_same(vv.to_value(), want);
            ++i;
        }
        CHECK(i == shape.values.size());
        CHECK(static_cast<std::size_t>(std::distance(view->begin(), view->end())) ==
              shape.values.size());
        const Record rec = view->to_record();
        CHECK(rec.spelling == shape.spelling);
        CHECK(rec.values == shape.values);
    }
}

TEST_CASE("every truncation of a valid record is rejected as corrupt") {
    for (const auto& shape : shapes()) {
        INFO(shape.name);
        const std::string bytes = encode_record(shape.spelling, shape.values);
        // The big record would make this quadratic: cap the prefixes checked for it.
        const std::size_t step = bytes.size() > 20000 ? 97 : 1;
        for (std::size_t len = 0; len < bytes.size(); len += step) {
            // A fresh buffer of exactly `len` bytes so that ASan catches reads past the end.
            const std::string cut = bytes.substr(0, len);
            auto view = RecordView::parse(cut);
            if (view.ok()) {
                FAIL("a truncated record parsed: length " << len << " of " << bytes.size());
            }
            CHECK(view.code() == Errc::corrupt);
            auto rec = decode_record(cut);
            CHECK(rec.code() == Errc::corrupt);
        }
        CHECK(RecordView::parse(bytes).ok());
    }
}

TEST_CASE("trailing bytes, unknown format or flags, absurd counts: corrupt") {
    std::vector<HandleValue> values = {make_value(1, "URL", "https://a"),
                                       make_value(2, "EMAIL", "x@y")};
    const std::string good = encode_record("88.1/x", values);
    REQUIRE(RecordView::parse(good).ok());

    auto expect_corrupt = [](const std::string& bytes) {
        auto view = RecordView::parse(bytes);
        REQUIRE_FALSE(view.ok());
        CHECK(view.code() == Errc::corrupt);
        CHECK_FALSE(view.error().message.empty());
        CHECK(decode_record(bytes).code() == Errc::corrupt);
    };

    SUBCASE("trailing bytes") {
        expect_corrupt(good + "\0"s);
        expect_corrupt(good + "garbage");
        // A whole extra value not announced by the count.
        std::string extra = good;
        encode_value(extra, make_value(3, "X", "y"));
        expect_corrupt(extra);
    }
    SUBCASE("unknown format byte") {
        for (int f : {0, 2, 0x7F, 0xFF}) {
            std::string bad = good;
            bad[0] = static_cast<char>(f);
            expect_corrupt(bad);
        }
    }
    SUBCASE("unknown flags") {
        std::string bad = good;
        bad[1] = 1;
        expect_corrupt(bad);
    }
    SUBCASE("empty input") {
        expect_corrupt("");
    }
    SUBCASE("value count larger or smaller than the values present") {
        const std::size_t count_at = 2 + 4 + 6;
        REQUIRE(load_u32(good, count_at) == 2);
        for (std::uint32_t count : {0u, 1u, 3u, 4u, 1000u, 0x7FFFFFFFu, 0xFFFFFFFFu}) {
            std::string bad = good;
            bad[count_at] = static_cast<char>(count >> 24);
            bad[count_at + 1] = static_cast<char>(count >> 16);
            bad[count_at + 2] = static_cast<char>(count >> 8);
            bad[count_at + 3] = static_cast<char>(count);
            INFO("count " << count);
            expect_corrupt(bad);
        }
    }
    SUBCASE("absurd reference count") {
        // Locate the first value's reference count: header(2) + spelling(4+6) + count(4) + fixed
        // part (14) + type(4+3) + data(4+9).
        const std::size_t refcount_at = 2 + 10 + 4 + 14 + 7 + 13;
        REQUIRE(load_u32(good, refcount_at) == 0);
        for (std::uint32_t count : {1u, 2u, 1000000u, 0xFFFFFFFFu}) {
            std::string bad = good;
            bad[refcount_at] = static_cast<char>(count >> 24);
            bad[refcount_at + 1] = static_cast<char>(count >> 16);
            bad[refcount_at + 2] = static_cast<char>(count >> 8);
            bad[refcount_at + 3] = static_cast<char>(count);
            INFO("reference count " << count);
            expect_corrupt(bad);
        }
    }
    SUBCASE("unknown ttl type or permission bits in a stored value") {
        const std::size_t ttl_type_at = 2 + 10 + 4 + 8;
        const std::size_t perms_at = ttl_type_at + 5;
        std::string bad = good;
        bad[ttl_type_at] = 2;
        expect_corrupt(bad);
        bad = good;
        bad[perms_at] = static_cast<char>(0x10);
        expect_corrupt(bad);
    }
}

TEST_CASE("a flipped high bit in any length field is corrupt") {
    // Every u32 length field (spelling, value count, type, data, reference count, reference
    // handle) with its top bit set claims more bytes than any record holds.
    std::vector<HandleValue> values = {make_value(1, "URL", "https://a"),
                                       make_value(2, "EMAIL", "x@y")};
    values[1].references.push_back({"88.1/r", 9});
    const std::string good = encode_record("88.1/x", values);

    std::vector<std::size_t> length_fields;
    std::size_t at = 2;
    length_fields.push_back(at); // spelling
    at += 4 + load_u32(good, at);
    length_fields.push_back(at); // value count
    at += 4;
    for (const auto& v : values) {
        at += 14;
        length_fields.push_back(at); // type
        at += 4 + load_u32(good, at);
        REQUIRE(load_u32(good, at) == v.data.size());
        length_fields.push_back(at); // data
        at += 4 + load_u32(good, at);
        length_fields.push_back(at); // reference count
        at += 4;
        for (std::size_t r = 0; r < v.references.size(); ++r) {
            length_fields.push_back(at); // reference handle
            at += 4 + load_u32(good, at) + 4;
        }
    }
    REQUIRE(at == good.size());
    for (std::size_t field : length_fields) {
        for (int bit : {7, 6, 0}) {
            std::string bad = good;
            bad[field] = static_cast<char>(bad[field] ^ (1 << bit));
            INFO("field at " << field << " bit " << bit);
            auto view = RecordView::parse(bad);
            CHECK_FALSE(view.ok());
            CHECK(view.code() == Errc::corrupt);
        }
        // Off by one in the low byte: the record no longer lines up.
        for (int delta : {1, -1}) {
            std::string bad = good;
            bad[field + 3] = static_cast<char>(bad[field + 3] + delta);
            INFO("field at " << field << " delta " << delta);
            CHECK(RecordView::parse(bad).code() == Errc::corrupt);
        }
    }
}

TEST_CASE("random corruption never crashes; whatever parses is safe to walk") {
    std::mt19937 rng(20241122);
    const auto all = shapes();
    const int rounds = 4000;
    int rejected = 0;
    for (int round = 0; round < rounds; ++round) {
        const auto& shape = all[static_cast<std::size_t>(round) % all.size()];
        if (shape.values.size() > 50 || shape.name == "large data") {
            continue;
        }
        std::string bytes = encode_record(shape.spelling, shape.values);
        const int flips = 1 + static_cast<int>(rng() % 4);
        for (int f = 0; f < flips; ++f) {
            bytes[rng() % bytes.size()] ^= static_cast<char>(1 + rng() % 255);
        }
        auto view = RecordView::parse(bytes);
        if (!view.ok()) {
            CHECK(view.code() == Errc::corrupt);
            ++rejected;
            continue;
        }
        std::size_t n = 0;
        for (const auto& vv : *view) {
            CHECK(vv.wire.data() >= bytes.data());
            CHECK(vv.wire.data() + vv.wire.size() <= bytes.data() + bytes.size());
            (void)vv.to_value();
            ++n;
        }
        CHECK(n == view->size());
    }
    CHECK(rejected > 0);
}

// ---- ValueFilter --------------------------------------------------------------------------------

TEST_CASE("ValueFilter::selects") {
    SUBCASE("no filter selects everything") {
        ValueFilter f;
        CHECK(f.empty());
        CHECK(f.selects(1, "URL"));
        CHECK(f.selects(100, "HS_ADMIN"));
        CHECK(f.selects(2000, ""));
    }
    SUBCASE("index match") {
        ValueFilter f;
        f.indices = {1, 2000};
        CHECK_FALSE(f.empty());
        CHECK(f.selects(1, "URL"));
        CHECK(f.selects(2000, "heatNumber"));
        CHECK_FALSE(f.selects(2, "URL"));
        CHECK_FALSE(f.selects(100, "HS_ADMIN"));
    }
    SUBCASE("type match is ASCII case-insensitive and exact otherwise") {
        ValueFilter f;
        f.types = {"url"};
        CHECK(f.selects(1, "URL"));
        CHECK(f.selects(7, "Url"));
        CHECK(f.selects(7, "url"));
        CHECK_FALSE(f.selects(1, "URLX"));
        CHECK_FALSE(f.selects(1, "UR"));
        CHECK_FALSE(f.selects(1, "URL.mobile")); // no trailing dot: no subtypes
        CHECK_FALSE(f.selects(1, "EMAIL"));
        ValueFilter g;
        g.types = {"描述"};
        CHECK(g.selects(3, "描述"));
        CHECK_FALSE(g.selects(3, "描"));
    }
    SUBCASE("ANY index or ANY type") {
        ValueFilter f;
        f.types = {"EMAIL", "desc"};
        f.indices = {1, 5};
        CHECK(f.selects(1, "URL"));   // index matches, type does not
        CHECK(f.selects(9, "EMAIL")); // type matches, index does not
        CHECK(f.selects(9, "DESC"));  // second type
        CHECK(f.selects(5, "OTHER")); // second index
        CHECK_FALSE(f.selects(9, "URL"));
        CHECK_FALSE(f.selects(2, "HS_ADMIN"));
    }
    SUBCASE("a trailing dot selects the type's subtypes") {
        ValueFilter f;
        f.types = {"URL."};
        CHECK(f.selects(1, "URL.mobile"));
        CHECK(f.selects(1, "url.Mobile"));
        CHECK(f.selects(1, "URL.a.b"));
        CHECK_FALSE(f.selects(1, "URLmobile"));
        CHECK_FALSE(f.selects(1, "URL")); // "starts with URL.", so not URL itself
        CHECK_FALSE(f.selects(1, "XURL.mobile"));
        CHECK_FALSE(f.selects(1, "EMAIL"));
        ValueFilter plain;
        plain.types = {"URL"};
        CHECK_FALSE(plain.selects(1, "URL.mobile"));
    }
}
