// The direct serializer of the Handle REST GET body (append_value_json, append_json_string,
// append_iso8601) must produce byte for byte what the boost::json path produced before it.
#include "idnode/codec/values_json.hpp"

#include "idnode/registry/value.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <climits>
#include <cstdint>
#include <ctime>
#include <random>
#include <string>
#include <vector>

using namespace idnode;

namespace {

registry::HandleValue value(std::int32_t index, std::string type, std::string data) {
    registry::HandleValue v;
    v.index = index;
    v.type = std::move(type);
    v.data = std::move(data);
    v.timestamp = 1732269600;
    return v;
}

/// Every value of `values`, encoded and read back as the zero-copy views get_handle sees, must
/// serialize identically on both paths.
void check_same(const std::vector<registry::HandleValue>& values) {
    const std::string bytes = registry::encode_record("88.118.8/X", values);
    auto view = registry::RecordView::parse(bytes);
    REQUIRE(view);
    for (const registry::ValueView& v : *view) {
        boost::json::object o;
        codec::value_to_json(o, v);
        std::string direct;
        codec::append_value_json(direct, v);
        CHECK(direct == boost::json::serialize(o));
    }
}

std::string reference_iso8601(std::uint32_t t) {
    const std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

} // namespace

TEST_CASE("append_json_string escapes exactly like boost::json") {
    std::string all; // every byte value once (not valid UTF-8 as a whole: the escaper is byte-wise)
    for (int c = 1; c < 0x80; ++c)
        all.push_back(static_cast<char>(c));
    for (const std::string& s :
         {std::string(), std::string("plain"), std::string("quote \" backslash \\ slash /"),
          std::string("\b\f\n\r\t\x01\x1f\x7f"), std::string("钢卷 炉号 H2024"),
          std::string("a\0b", 3), all}) {
        std::string direct;
        codec::append_json_string(direct, s);
        CHECK(direct == boost::json::serialize(boost::json::string(s)));
    }
}

TEST_CASE("append_value_json matches json::serialize(value_to_json) for every data format") {
    auto private_value = value(2010, "price", "4120.50");
    private_value.permissions = *registry::Permissions::parse("1100");
    auto ttl_zero = value(3, "EMAIL", "ops@example.cn");
    ttl_zero.ttl = 0;
    auto big = value(INT32_MAX, "x", std::string(3000, 'y'));
    big.ttl = INT32_MAX;
    big.timestamp = UINT32_MAX;
    auto epoch = value(4, "t", "epoch");
    epoch.timestamp = 0;
    check_same({value(1, "URL", "https://steel.example.cn/coil/1?a=b&c=\"d\""),
                value(2, "DESC", "line\nbreak\ttab \\ 炉号"), value(5, "EMPTY", ""), ttl_zero,
                epoch, value(6, "BIN", std::string("\x00\x01\xff\xfe", 4)),
                value(7, "BADUTF8", "ok \xc3\x28 not"), value(8, "NUL", std::string("a\0b", 3)),
                value(100, "HS_ADMIN", codec::encode_admin("0.NA/88.118.8", 200, 0x0FF2)),
                value(101, "hs_admin", "not an admin record"), private_value, big});
}

TEST_CASE("HS_ADMIN bytes the admin format cannot carry exactly are shown as base64") {
    // Found by the handle_rest fuzz target: GET showed them as "admin" with the high permission
    // bits dropped or a negative index, so writing back what was read changed the value (or was
    // refused: index must be >= 0).
    auto admin = [](std::uint16_t perms, std::uint32_t index) {
        std::string bytes = codec::encode_admin("ABCD", 0, perms);
        bytes.resize(bytes.size() - 4);
        for (int s = 24; s >= 0; s -= 8)
            bytes.push_back(static_cast<char>(index >> s));
        return bytes;
    };
    struct Case {
        std::string bytes;
        const char* format;
    };
    const Case cases[] = {
        {admin(0x0FF2, 200), "admin"},          {admin(0x0FFF, INT32_MAX), "admin"},
        {admin(0xF002, 200), "base64"},         {admin(0x1000, 0), "base64"},
        {admin(0x0FF2, 0x80000000u), "base64"}, {admin(0x0FF2, UINT32_MAX), "base64"}};
    for (const auto& c : cases) {
        CAPTURE(c.format);
        const auto sent = value(100, "HS_ADMIN", c.bytes);
        const auto out = codec::value_to_json(sent);
        CHECK(out.at("data").at("format").as_string() == c.format);
        // Written back as read, the value is the same.
        auto back = codec::value_from_json(boost::json::parse(boost::json::serialize(out)), "v");
        REQUIRE(back.ok());
        CHECK(back->data == c.bytes);
        check_same({sent});
    }
}

TEST_CASE("an unknown data format is quoted without cutting a character") {
    // Found by the handle_rest fuzz target: the quote was cut at byte 32, inside 炉.
    const std::string format = std::string(31, 'a') + "炉号";
    auto v = codec::value_from_json(
        boost::json::object{{"index", 1},
                            {"type", "URL"},
                            {"data", boost::json::object{{"format", format}, {"value", "x"}}}},
        "values[0]");
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().message == "values[0].data.format \"" + std::string(31, 'a') +
                                   "\" is not one of string, base64, hex, admin");
}

TEST_CASE("append_iso8601 agrees with gmtime/strftime") {
    std::mt19937_64 rng(7);
    std::vector<std::uint32_t> times = {0,           59,        86399,      86400,
                                        951782400,   951868799, 1709164800, 4107542399u,
                                        4107628800u, UINT32_MAX};
    for (int i = 0; i < 20000; ++i)
        times.push_back(static_cast<std::uint32_t>(rng()));
    for (const auto t : times) {
        std::string direct;
        codec::append_iso8601(direct, t);
        CHECK(direct == reference_iso8601(t));
        CHECK(codec::iso8601(t) == direct);
    }
}
