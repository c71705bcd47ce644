// The parse step of SNMS identifier writes (snms_record_from_json, resolver/src/api/
// snms_api.hpp): what POST|PUT /identityv2/data and each batch element go through before the
// store is consulted. Also fuzzed: tests/fuzz/snms_fuzz.cpp.
#include "api/snms/snms_api.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <string>
#include <string_view>

using namespace idnode;
using resolver::api::snms_record_from_json;

TEST_CASE("an SNMS record: handle, template version and values") {
    std::string spelling;
    auto r = snms_record_from_json(boost::json::parse(R"({"handle":"88.118.8/C1",
        "templateVersion":"1.0","value":[{"index":1,"type":"URL","data":"https://e.cn/c1"},
        {"index":2000,"type":"heat_no","data":{"format":"string","value":"H2024001"}}]})"),
                                   {}, spelling);
    REQUIRE(r.ok());
    CHECK(spelling == "88.118.8/C1");
    CHECK(r->handle.spelling() == "88.118.8/C1");
    CHECK(r->template_version == "1.0");
    REQUIRE(r->values.size() == 2);
    CHECK(r->values[1].data == "H2024001");

    auto free_form = snms_record_from_json(
        boost::json::parse(
            R"({"handle":"88.118.8/F","value":[{"index":1,"type":"URL","data":"x"}]})"),
        {}, spelling);
    REQUIRE(free_form.ok());
    CHECK_FALSE(free_form->template_version.has_value());
}

TEST_CASE("an SNMS record: each refusal has its code and Chinese message") {
    struct Case {
        std::string_view body, spelling;
        registry::Errc code;
        std::string_view message; // a prefix of the message
    };
    const Case cases[] = {
        {R"([1])", "", registry::Errc::invalid_value, "参数错误：a record must be a JSON object"},
        {R"({"handle":"88.118.8/C1"})", "88.118.8/C1", registry::Errc::invalid_value,
         "参数错误：body needs \"value\""},
        {R"({"handle":"88.118.8/C1","values":[]})", "88.118.8/C1", registry::Errc::invalid_value,
         "参数错误：body needs \"value\""},
        {R"({"handle":5,"value":[]})", "", registry::Errc::invalid_handle,
         "参数错误：handle must be a string"},
        {R"({"handle":"88.1/T","templateVersion":"","value":[]})", "88.1/T",
         registry::Errc::invalid_value, "参数错误：templateVersion must be a non-empty string"},
        {R"({"handle":"88.1/V","value":[{"index":1,"type":"URL"}]})", "88.1/V",
         registry::Errc::invalid_value, "参数错误：values[0].data is missing"},
        {R"({"value":[]})", "", registry::Errc::invalid_value, "参数错误：缺少handle"},
        {R"({"handle":"","value":[]})", "", registry::Errc::invalid_value, "参数错误：缺少handle"},
        {R"({"handle":"no-slash","value":[]})", "no-slash", registry::Errc::invalid_handle,
         "标识格式错误："},
    };
    for (const auto& c : cases) {
        CAPTURE(c.body);
        std::string spelling;
        auto r = snms_record_from_json(boost::json::parse(c.body), {}, spelling);
        REQUIRE_FALSE(r.ok());
        CHECK(spelling == c.spelling);
        CHECK(r.code() == c.code);
        CHECK(r.error().message.starts_with(c.message));
        if (c.message.ends_with("："))
            CHECK(r.error().message.size() > c.message.size()); // the reason follows
    }
}

TEST_CASE("an SNMS record: the handle length limit applies") {
    std::string spelling;
    const std::string handle = "88.1/" + std::string(300, 'x');
    auto r = snms_record_from_json(
        boost::json::parse(R"({"handle":")" + handle + R"(","value":[]})"), {}, spelling);
    REQUIRE_FALSE(r.ok());
    CHECK(r.code() == registry::Errc::invalid_handle);
    CHECK(spelling == handle);
}
