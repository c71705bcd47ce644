// idctl's record formats: NDJSON lines (bulk shape), CSV rows, and the export line that load
// reads back.
#include "record_io.hpp"

#include "idnode/registry/value.hpp"

#include <doctest/doctest.h>

using namespace idnode::idctl;
using idnode::registry::Errc;

TEST_CASE("an NDJSON line in the bulk shape, with templateVersion as value 1001") {
    NdjsonReader r;
    InputRecord rec;
    LineError err;
    REQUIRE(r.parse(R"({"handle":"88.118.8/A","templateVersion":"v2","values":[
        {"index":1,"type":"URL","data":{"format":"string","value":"https://x"}},
        {"index":1001,"type":"TEMPLATE","data":"old"},
        {"index":2000,"type":"blob","data":{"format":"base64","value":"AAE="},"ttl":60,
         "permissions":"1100"}]})",
                    rec, err));
    CHECK(rec.handle == "88.118.8/A");
    REQUIRE(rec.values.size() == 3);
    CHECK(rec.values[0].data == "https://x");
    CHECK(rec.values[1].index == 2000);
    CHECK(rec.values[1].data == std::string("\0\1", 2));
    CHECK(rec.values[1].ttl == 60);
    CHECK_FALSE(rec.values[1].permissions.public_read());
    CHECK(rec.values[2].index == 1001);
    CHECK(rec.values[2].data == "v2");
}

TEST_CASE("bad NDJSON lines say why and keep the handle when there is one") {
    NdjsonReader r;
    InputRecord rec;
    LineError err;
    CHECK_FALSE(r.parse("{not json", rec, err));
    CHECK(err.error.message.find("not JSON") == 0);
    CHECK_FALSE(r.parse("[1]", rec, err));
    CHECK(err.error.message == "a line must be a JSON object");
    CHECK_FALSE(r.parse(R"({"values":[]})", rec, err));
    CHECK(err.error.message == "\"handle\" must be a string");
    CHECK_FALSE(r.parse(R"({"handle":"88.1/x"})", rec, err));
    CHECK(err.handle == "88.1/x");
    CHECK_FALSE(r.parse(R"({"handle":"88.1/x","values":[{"index":-1,"type":"URL","data":"u"}]})",
                        rec, err));
    CHECK(err.error.message.find("values[0]") != std::string::npos);
    CHECK_FALSE(r.parse(R"({"handle":"88.1/x","templateVersion":7,"values":[]})", rec, err));
    CHECK(err.error.message.find("templateVersion") != std::string::npos);
    // The reader recovers after errors.
    CHECK(
        r.parse(R"({"handle":"88.1/y","values":[{"index":1,"type":"URL","data":"u"}]})", rec, err));
}

TEST_CASE("CSV: header types and INDEX:TYPE columns, quoting, empty cells") {
    auto csv = CsvReader::from_header("handle,1:URL,2000:heat_no,grade", std::string("v1"));
    REQUIRE(csv.ok());
    InputRecord rec;
    LineError err;
    REQUIRE(csv->parse(R"(88.118.8/H1,https://x,"H,1 ""a""",)", rec, err));
    CHECK(rec.handle == "88.118.8/H1");
    REQUIRE(rec.values.size() == 3); // grade empty -> absent; TEMPLATE added
    CHECK(rec.values[0].index == 1);
    CHECK(rec.values[1].index == 2000);
    CHECK(rec.values[1].type == "heat_no");
    CHECK(rec.values[1].data == "H,1 \"a\"");
    CHECK(rec.values[2].index == 1001);
    REQUIRE(csv->parse("88.118.8/H2,,,Q235\r", rec, err));
    REQUIRE(rec.values.size() == 2);
    CHECK(rec.values[0].index == 2001); // plain column: the index after the previous column's
    CHECK(rec.values[0].data == "Q235");

    CHECK_FALSE(csv->parse("88.118.8/H3,x", rec, err));
    CHECK(err.error.message == "expected 4 cells, found 2");
    CHECK(err.handle == "88.118.8/H3");
    CHECK_FALSE(csv->parse(R"(88.118.8/H4,"open,,)", rec, err));
    auto no_template = CsvReader::from_header("handle,URL", std::nullopt);
    REQUIRE(no_template.ok());
    CHECK_FALSE(no_template->parse("88.118.8/H5,", rec, err));
    CHECK(err.error.message == "the row has no values");
}

TEST_CASE("CSV headers that cannot work are refused") {
    CHECK_FALSE(CsvReader::from_header("id,URL", std::nullopt).ok());
    CHECK_FALSE(CsvReader::from_header("handle", std::nullopt).ok());
    CHECK_FALSE(CsvReader::from_header("handle,0:URL", std::nullopt).ok());
    CHECK_FALSE(CsvReader::from_header("handle,x:URL", std::nullopt).ok());
    CHECK_FALSE(CsvReader::from_header("handle,1:URL,1:EMAIL", std::nullopt).ok());
    CHECK_FALSE(CsvReader::from_header("handle,2:", std::nullopt).ok());
}

TEST_CASE("an exported line reads back to the same values") {
    using idnode::registry::HandleValue;
    std::vector<HandleValue> values(3);
    values[0].index = 1;
    values[0].type = "URL";
    values[0].data = "https://x/é";
    values[1].index = 1001;
    values[1].type = "TEMPLATE";
    values[1].data = "v3";
    values[2].index = 2000;
    values[2].type = "bin";
    values[2].data = std::string("\xff\0\x01", 3);
    values[2].ttl = 5;
    values[2].timestamp = 1700000000;
    const std::string bytes = idnode::registry::encode_record("88.118.8/Exp", values);
    auto view = idnode::registry::RecordView::parse(bytes);
    REQUIRE(view.ok());
    const std::string line = record_to_ndjson(*view);
    CHECK(line.find('\n') == std::string::npos);
    NdjsonReader r;
    InputRecord rec;
    LineError err;
    REQUIRE_MESSAGE(r.parse(line, rec, err), err.error.message);
    CHECK(rec.handle == "88.118.8/Exp");
    REQUIRE(rec.values.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(rec.values[i].same_content(values[i]));
    }
}

namespace {

/// What the general parser + encoding produce for a line (the reference parse_encoded must meet).
std::string encoded_by_general_path(std::string_view line) {
    NdjsonReader r;
    InputRecord rec;
    LineError err;
    REQUIRE(r.parse(line, rec, err));
    std::string out;
    idnode::registry::RecordEncoder enc(out, rec.handle);
    for (const auto& v : rec.values) {
        enc.add(v);
    }
    return out;
}

} // namespace

TEST_CASE("parse_encoded: common lines take the scanner and encode exactly like the parser") {
    const std::vector<std::string> fast_lines = {
        R"({"handle":"88.118.8/A","values":[{"index":1,"type":"URL","data":{"format":"string","value":"https://x"}}]})",
        R"( { "values" : [ {"type":"T","index":7,"data":"d","ttl":0,"permissions":"1100"} ], "handle":"88.118.8/b" } )",
        R"({"handle":"88.118.8/A","templateVersion":"v2","values":[{"index":1001,"type":"TEMPLATE","data":"old"},{"index":1,"type":"URL","data":"u"}]})",
        R"({"handle":"88.118.8/ü","values":[{"index":2,"type":"名","data":"值","timestamp":"2024-01-01T00:00:00Z"}]})",
        // Strings longer than the scanner's 8-byte steps, non-ASCII across a step's end.
        R"({"handle":"88.118.8/SN-2024-0000000001","templateVersion":"steel-1.0","values":[{"index":1,"type":"URL","data":{"format":"string","value":"https://steel.example.cn/coil/1"}},{"index":2000,"type":"heat_no","data":"H2024-1"},{"index":2003,"type":"dimensions","data":"2.75x1250 mm, 钢卷 Q235B ü"}]})",
    };
    for (const auto& line : fast_lines) {
        NdjsonReader r;
        std::string handle, record;
        LineError err;
        REQUIRE(r.parse_encoded(line, handle, record, err));
        CHECK(r.fast_lines() == 1);
        CHECK(record == encoded_by_general_path(line));
    }
    // Escapes, other data formats, unknown keys: the general parser, same encoding.
    const std::vector<std::string> general_lines = {
        R"({"handle":"88.118.8/A","values":[{"index":1,"type":"URL","data":"a\"b\u00e9"}]})",
        R"({"handle":"88.118.8/A","values":[{"index":1,"type":"B","data":{"format":"base64","value":"AAE="}}]})",
        R"({"handle":"88.118.8/A","extra":1,"values":[{"index":1,"type":"U","data":"x"}]})",
    };
    for (const auto& line : general_lines) {
        NdjsonReader r;
        std::string handle, record;
        LineError err;
        REQUIRE(r.parse_encoded(line, handle, record, err));
        CHECK(r.general_lines() == 1);
        CHECK(record == encoded_by_general_path(line));
    }
}

TEST_CASE("parse_encoded: bad lines get the general parser's errors") {
    const std::vector<std::string> bad = {
        "{not json",
        R"({"handle":"88.1/x"})",
        R"({"handle":"88.1/x","values":[{"index":-1,"type":"URL","data":"u"}]})",
        R"({"handle":"88.1/x","values":[{"index":0,"type":"URL","data":"u"}]})",
        R"({"handle":"88.1/x","values":[{"index":1,"type":"URL"}]})",
        R"({"handle":"88.1/x","values":[{"index":1,"type":"URL","data":"u","permissions":"12"}]})",
        R"({"handle":"88.1/x","templateVersion":"","values":[{"index":1,"type":"U","data":"u"}]})",
        "{\"handle\":\"88.1/\xff\",\"values\":[{\"index\":1,\"type\":\"U\",\"data\":\"u\"}]}",
        R"({"handle":"88.1/x","values":[{"index":1,"type":"U","data":"u"}]} trailing)",
    };
    for (const auto& line : bad) {
        NdjsonReader fast, general;
        std::string handle, record;
        InputRecord rec;
        LineError fast_err, general_err;
        CHECK_FALSE(fast.parse_encoded(line, handle, record, fast_err));
        CHECK_FALSE(general.parse(line, rec, general_err));
        CHECK(fast_err.error.code == general_err.error.code);
        CHECK(fast_err.error.message == general_err.error.message);
        CHECK(fast_err.handle == general_err.handle);
    }
}
