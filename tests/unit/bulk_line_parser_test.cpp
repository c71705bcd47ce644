// BulkLineParser (resolver/src/api/native/bulk.hpp) against the general path parse_bulk_line: for
// every line, the same result (record: handle and values; error: handle, code, message; blank), and
// the line takes the path the table says (so that the scanner really is exercised and really steps
// aside). The bulk_ndjson fuzz target checks the same equality on arbitrary lines.
#include "api/native/bulk.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <variant>
#include <vector>

using namespace idnode;
namespace api = idnode::resolver::api;

namespace {

enum class Path { fast, general, blank };

struct Case {
    std::string line;
    Path path;
};

/// Both results in words, for CHECK messages and for the comparison.
std::string describe(const api::ParsedBulkLine& parsed) {
    if (std::holds_alternative<api::BlankLine>(parsed))
        return "blank";
    if (const auto* bad = std::get_if<api::BulkLineError>(&parsed))
        return "error handle=[" + bad->handle + "] " + bad->error.code + ": " + bad->error.message;
    const auto& record = std::get<api::BulkRecord>(parsed);
    std::string out = "record " + record.handle.spelling() + " key " + record.handle.key();
    for (const auto& v : record.values) {
        out += " | " + std::to_string(v.index) + " [" + v.type + "] [" + v.data + "] ttl " +
               std::to_string(v.ttl) + " perms " + v.permissions.to_string() + " ttl_type " +
               std::to_string(static_cast<int>(v.ttl_type)) + " ts " + std::to_string(v.timestamp) +
               " refs " + std::to_string(v.references.size());
    }
    return out;
}

bool same(const api::ParsedBulkLine& a, const api::ParsedBulkLine& b) {
    if (a.index() != b.index())
        return false;
    if (const auto* ra = std::get_if<api::BulkRecord>(&a)) {
        const auto& rb = std::get<api::BulkRecord>(b);
        return ra->handle.spelling() == rb.handle.spelling() &&
               ra->handle.key() == rb.handle.key() && ra->handle.prefix() == rb.handle.prefix() &&
               ra->values == rb.values;
    }
    if (const auto* ea = std::get_if<api::BulkLineError>(&a)) {
        const auto& eb = std::get<api::BulkLineError>(b);
        return ea->handle == eb.handle && ea->error.code == eb.error.code &&
               ea->error.message == eb.error.message;
    }
    return true; // both blank
}

const std::string kUrl = R"({"index":1,"type":"URL","data":"https://x.example/p"})";

std::string line_of(std::string_view values, std::string_view extra = {}) {
    return std::string(R"({"handle":"88.118.8/A-1")") + std::string(extra) + R"(,"values":[)" +
           std::string(values) + "]}";
}

std::vector<Case> cases() {
    using enum Path;
    std::vector<Case> c = {
        // ---- the common shape: scanned ----
        {line_of(kUrl), fast},
        {line_of(kUrl) + "\r", fast},
        {" \t{ \"handle\" : \"88.118.8/A\" ,\r\"values\" :\t[ " + kUrl + " ] }\t ", fast},
        {line_of(kUrl, R"(,"templateVersion":"steel-1.0")"), fast},
        {R"({"templateVersion":"v2","values":[{"index":1001,"type":"TEMPLATE","data":"old"},)" +
             kUrl + R"(,{"index":1001,"type":"TEMPLATE","data":"older"}],"handle":"88.1/x"})",
         fast},
        // A client-sent TEMPLATE value without templateVersion stays where it is.
        {line_of(R"({"index":1001,"type":"TEMPLATE","data":"v1"},)" + kUrl), fast},
        {line_of(R"({"type":"T","index":7,"data":"d","ttl":0,"permissions":"1100"})"), fast},
        {line_of(R"({"index":2147483647,"type":"T","data":"","ttl":2147483647})"), fast},
        {line_of(R"({"index":1,"type":"URL","data":{"format":"string","value":"https://x"}})"),
         fast},
        {line_of(R"({"index":1,"type":"URL","data":{ "format" : "string" , "value" : "v" }})"),
         fast},
        {line_of(R"({"index":2,"type":"名","data":"值 ü 😀","timestamp":"2024-01-01T00:00:00Z"})"),
         fast},
        {R"({"handle":"88.118.8/ü-é","values":[)" + kUrl + "]}", fast},
        {line_of("{\"index\":1,\"type\":\"T\",\"data\":\"del\x7f\"}"), fast},
        // ---- the scanner's only refusal: the handle (same messages as the general path) ----
        {R"({"handle":"nope","values":[)" + kUrl + "]}", fast},
        {R"({"handle":"","values":[)" + kUrl + "]}", fast},
        {R"({"handle":"88.1/","values":[)" + kUrl + "]}", fast},
        {R"({"handle":"/x","values":[)" + kUrl + "]}", fast},
        {R"({"handle":"88.1/)" + std::string(300, 'x') + R"(","values":[)" + kUrl + "]}", fast},
        // ---- valid, but not the common shape: the general path ----
        {line_of(R"({"index":1,"type":"URL","data":"a\"b\u00e9\/\n"})"), general},
        {R"({"handle":"88.1/\u0041","values":[)" + kUrl + "]}", general},
        {R"({"hand\u006ce":"88.1/x","values":[)" + kUrl + "]}", general},
        {line_of(R"({"index":1,"type":"B","data":{"format":"base64","value":"AAE="}})"), general},
        {line_of(R"({"index":1,"type":"B","data":{"format":"hex","value":"00ff"}})"), general},
        {line_of(R"({"index":100,"type":"HS_ADMIN","data":{"format":"admin","value":)"
                 R"({"handle":"88.1/admin","index":300,"permissions":"111111111111"}}})"),
         general},
        {line_of(R"({"index":1,"type":"URL","data":{"value":"v","format":"string"}})"), general},
        {line_of(R"({"index":1,"type":"URL","data":{"value":"v"}})"), general},
        {line_of(R"({"index":1,"type":"URL","data":{"format":"string","value":"v","x":1}})"),
         general},
        {line_of(kUrl, R"(,"extra":1)"), general},
        {line_of(R"({"index":1,"type":"URL","data":"x","note":"n"})"), general},
        {line_of(R"({"index":"7","type":"URL","data":"x"})"), general},
        {line_of(R"({"index":1,"type":"URL","data":"x","ttl":"60"})"), general},
        {line_of(R"({"index":1,"type":"URL","data":"x","timestamp":5})"), general},
        {line_of(R"({"index":1,"type":"URL","data":"x","timestamp":null})"), general},
        {line_of(R"({"index":1.0,"type":"URL","data":"x"})"), general},
        {line_of(R"({"index":1e0,"type":"URL","data":"x"})"), general},
        {line_of(R"({"index":1,"type":"URL","data":"x","ttl":-0})"), general},
        {line_of(""), general}, // an empty values array
        {R"({"handle":"88.1/x","values":[)" + kUrl + R"(],"templateVersion":null})", general},
        // ---- not JSON: the general path (invalid_json) ----
        // A value member name without its colon, followed by another known name (the scanner
        // used to consume "ttl" while trying it and then read "timestamp" as the member).
        {line_of(
             R"({"index":2,"type":"名","data":"值 ü 😀","ttl""timestamp":"2024-01-01T00:00:00Z"})"),
         general},
        {line_of(R"({"index":1,"type""ttl":5,"data":"x"})"), general},
        {line_of(R"({"index":1,"type":"T","data":"x","ttl""timestamp":"t","ttl":5})"), general},
        // Duplicate members: the general parser decides which one counts.
        {R"({"handle":"88.1/x","handle":"88.1/y","values":[)" + kUrl + "]}", general},
        {R"({"handle":"88.1/x","values":[],"values":[)" + kUrl + "]}", general},
        {line_of(kUrl, R"(,"templateVersion":"a","templateVersion":"b")"), general},
        {line_of(R"({"index":1,"index":2,"type":"URL","data":"x"})"), general},
        {line_of(R"({"index":1,"type":"URL","data":"x","data":"y"})"), general},
        {line_of(R"({"index":1,"type":"URL","data":"x","ttl":1,"ttl":2})"), general},
        // ---- invalid: every kind of refusal, all from the general path ----
        {"{bad", general},
        {std::string("{\"handle\":\"88.1/x\0\"}", 20), general},
        {"[1]", general},
        {"\"text\"", general},
        {"17", general},
        {"null", general},
        {"{}", general},
        {R"({"values":[]})", general},
        {R"({"handle":7,"values":[]})", general},
        {R"({"handle":null,"values":[]})", general},
        {R"({"handle":"88.1/B"})", general},
        {R"({"handle":"88.1/B","values":{}})", general},
        {R"({"handle":"88.1/B","values":"x"})", general},
        {R"({"handle":"nope","values":7})", general},
        {R"({"handle":"88.1/B","values":[7]})", general},
        {line_of(R"({"index":0,"type":"URL","data":"x"})"), general},
        {line_of(R"({"index":-1,"type":"URL","data":"x"})"), general},
        {line_of(R"({"index":2147483648,"type":"URL","data":"x"})"), general},
        {line_of(R"({"index":99999999999,"type":"URL","data":"x"})"), general},
        {line_of(R"({"index":01,"type":"URL","data":"x"})"), general},
        {line_of(R"({"type":"URL","data":"x"})"), general},
        {line_of(R"({"index":1,"data":"x"})"), general},
        {line_of(R"({"index":1,"type":5,"data":"x"})"), general},
        {line_of(R"({"index":1,"type":"URL"})"), general},
        {line_of(R"({"index":1,"type":"URL","data":5})"), general},
        {line_of(R"({"index":1,"type":"URL","data":{"format":"string"}})"), general},
        {line_of(R"({"index":1,"type":"URL","data":{"format":"string","value":5}})"), general},
        {line_of(R"({"index":1,"type":"URL","data":{"format":"nope","value":"x"}})"), general},
        {line_of(R"({"index":1,"type":"URL","data":{"format":"base64","value":"@"}})"), general},
        {line_of(R"({"index":1,"type":"URL","data":"x","ttl":-5})"), general},
        {line_of(R"({"index":1,"type":"URL","data":"x","permissions":"12"})"), general},
        {line_of(R"({"index":1,"type":"URL","data":"x","permissions":1110})"), general},
        {line_of(kUrl, R"(,"templateVersion":"")"), general},
        {line_of(kUrl, R"(,"templateVersion":7)"), general},
        {line_of(kUrl) + " trailing", general},
        {line_of(kUrl) + "}", general},
        {line_of(kUrl) + ",", general},
        {line_of(kUrl + ","), general},
        {line_of(kUrl).substr(0, 40), general},
        {"{\"handle\":\"88.1/\xff\",\"values\":[" + kUrl + "]}", general},
        {"{\"handle\":\"88.1/\xed\xa0\x80\",\"values\":[" + kUrl + "]}", general}, // surrogate
        {"{\"handle\":\"88.1/\xc0\xaf\",\"values\":[" + kUrl + "]}", general},     // overlong
        {"{\"handle\":\"88.1/x\",\"values\":[{\"index\":1,\"type\":\"U\",\"data\":\"\xf4\x90\x80"
         "\x80\"}]}",
         general},                                                        // beyond U+10FFFF
        {"{\"handle\":\"88.1/\tx\",\"values\":[" + kUrl + "]}", general}, // raw control character
        {R"({"handle":"88.1/\u0009x","values":[)" + kUrl + "]}", general},
        {line_of(kUrl) + "\r\r", fast},  // one is the line ending, the other JSON whitespace
        {"\r" + line_of(kUrl), fast},    // a leading one is JSON whitespace
        {line_of(kUrl) + "\n", fast},    // so is a '\n' (a caller splitting elsewhere)
        {line_of(kUrl) + "\f", general}, // form feed is not JSON whitespace
        // ---- blank ----
        {"", blank},
        {"\r", blank},
        {" \t ", blank},
        {" \r", blank},
    };
    return c;
}

} // namespace

TEST_CASE("BulkLineParser: same result as parse_bulk_line for every line, on the path expected") {
    for (const registry::HandleLimits limits :
         {registry::HandleLimits{}, registry::HandleLimits{12}}) {
        api::BulkLineParser parser(limits); // one parser for all lines: reuse must not leak state
        std::uint64_t fast = 0, general = 0;
        for (const Case& c : cases()) {
            CAPTURE(c.line);
            CAPTURE(limits.max_length);
            const auto expected = api::parse_bulk_line(c.line, limits);
            const auto got = parser.parse(c.line);
            const std::string both = describe(got) + "\n   vs general: " + describe(expected);
            CHECK_MESSAGE(same(got, expected), both);
            fast += c.path == Path::fast;
            general += c.path == Path::general;
            CHECK(parser.fast_lines() == fast);
            CHECK(parser.general_lines() == general);
        }
    }
}

TEST_CASE("BulkLineParser: a scanned record's values and handle") {
    api::BulkLineParser parser({});
    const auto parsed = parser.parse(
        R"({"handle":"88.118.8/ab","templateVersion":"v2","values":[{"index":1001,"type":"TEMPLATE","data":"old"},)"
        R"({"index":2000,"type":"heat_no","data":{"format":"string","value":"H1"},"ttl":60,"permissions":"1100"},)"
        R"({"index":1,"type":"URL","data":"u"}]})");
    REQUIRE(parser.fast_lines() == 1);
    const auto* record = std::get_if<api::BulkRecord>(&parsed);
    REQUIRE(record != nullptr);
    CHECK(record->handle.spelling() == "88.118.8/ab");
    CHECK(record->handle.key() == "88.118.8/AB");
    REQUIRE(record->values.size() == 3); // the old TEMPLATE value replaced, the new one last
    CHECK(record->values[0].index == 2000);
    CHECK(record->values[0].type == "heat_no");
    CHECK(record->values[0].data == "H1");
    CHECK(record->values[0].ttl == 60);
    CHECK(record->values[0].permissions.to_string() == "1100");
    CHECK(record->values[1].index == 1);
    CHECK(record->values[1].ttl == registry::kDefaultTtl);
    CHECK(record->values[1].permissions == registry::Permissions{});
    CHECK(record->values[2].index == registry::kIndexTemplate);
    CHECK(record->values[2].type == "TEMPLATE");
    CHECK(record->values[2].data == "v2");

    const auto bad =
        parser.parse(R"({"handle":"88.118.8","values":[{"index":1,"type":"U","data":"u"}]})");
    REQUIRE(parser.fast_lines() == 2);
    const auto* error = std::get_if<api::BulkLineError>(&bad);
    REQUIRE(error != nullptr);
    CHECK(error->handle == "88.118.8");
    CHECK(error->error.code == "invalid_handle");
    CHECK_FALSE(error->error.message.empty());
}

namespace {

/// Runs `line` through a reused BulkLineParser and the general path: same result, and the path
/// taken is the scanner exactly when `fast` says so.
void check_line(api::BulkLineParser& parser, const std::string& line, bool fast) {
    CAPTURE(line);
    const auto fast_before = parser.fast_lines();
    const auto expected = api::parse_bulk_line(line, {});
    const auto got = parser.parse(line);
    const std::string both = describe(got) + "\n   vs general: " + describe(expected);
    CHECK_MESSAGE(same(got, expected), both);
    CHECK(parser.fast_lines() == fast_before + (fast ? 1 : 0));
}

} // namespace

TEST_CASE("BulkLineParser: a special byte at every place of a string, across 8-byte words") {
    // The scanner reads strings 8 bytes at a time; the byte that ends or spoils a string can sit
    // at any place in a word, in the handle, a type or the data, and the string can end anywhere
    // relative to the line's end.
    struct Special {
        std::string text;
        bool fast; // the scanner takes a string with it
    };
    const std::vector<Special> specials = {
        {"\\\"", false}, // an escaped quote
        {"\\n", false},  // an escape
        {"\x01", false}, // raw control characters
        {"\x1f", false},
        {"\t", false},
        {" ", true}, // 0x20: the first byte that is not a control character
        {"!", true}, // 0x21, 0x23: either side of the quote
        {"#", true},
        {"[", true}, // 0x5b, 0x5d: either side of the backslash
        {"]", true},
        {"\x7f", true},             // DEL is allowed in JSON strings
        {"\xc3\xa9", true},         // é: two bytes that may straddle a word
        {"\xe5\x90\x8d", true},     // 名
        {"\xf0\x9f\x98\x80", true}, // 😀
        {"\xff", false},            // invalid UTF-8
        {"\xc3", false},            // a truncated sequence
        {"\xed\xa0\x80", false},    // a surrogate
    };
    api::BulkLineParser parser({});
    for (const Special& sp : specials) {
        for (std::size_t before = 0; before <= 17; ++before) {
            for (std::size_t after :
                 {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{9}}) {
                const std::string text =
                    std::string(before, 'a') + sp.text + std::string(after, 'b');
                check_line(parser, line_of(R"({"index":1,"type":"T","data":")" + text + R"("})"),
                           sp.fast);
                check_line(parser, line_of(R"({"index":1,"type":")" + text + R"(","data":"d"})"),
                           sp.fast);
                check_line(parser,
                           line_of(R"({"index":1,"type":"T","data":{"format":"string","value":")" +
                                   text + R"("}})"),
                           sp.fast);
                // The handle last, so that the string ends a few bytes before the line does.
                const std::string handle_last =
                    R"({"values":[)" + kUrl + R"(],"handle":"88.118.8/)" + text + "\"}";
                check_line(parser, handle_last, sp.fast);
                // A line cut inside the string: never scanned.
                check_line(parser, handle_last.substr(0, handle_last.size() - 2), false);
            }
        }
    }
}

TEST_CASE("BulkLineParser: member names that only look like the known ones") {
    api::BulkLineParser parser({});
    const std::vector<std::string> general_values = {
        R"({"indexx":1,"type":"T","data":"d"})",
        R"({"inde":1,"type":"T","data":"d"})",
        R"({"Index":1,"type":"T","data":"d"})",
        R"({"index":1,"typ":"T","data":"d"})",
        R"({"index":1,"types":"T","data":"d"})",
        R"({"index":1,"type":"T","dat":"d"})",
        R"({"index":1,"type":"T","data":"d","t":1})",
        R"({"index":1,"type":"T","data":"d","ttl2":1})",
        R"({"index":1,"type":"T","data":"d","timestam":"x"})",
        R"({"index":1,"type":"T","data":"d","permission":"1110"})",
        R"({"index":1,"type":"T","data":"d","":1})",
        R"({"inde\u0078":1,"type":"T","data":"d"})",
        R"({"index":1,"type":"T","data":{"formats":"string","value":"v"}})",
        R"({"index":1,"type":"T","data":{"format":"strings","value":"v"}})",
        R"({"index":1,"type":"T","data":{"format":"strin","value":"v"}})",
        R"({"index":1,"type":"T","data":{"format":"string","values":"v"}})",
        R"({"index":1,"type":"T","data":{"format":"string","valu":"v"}})",
        R"({"index":1,"type":"T","data":{"format" "string","value":"v"}})",
    };
    for (const auto& v : general_values) {
        check_line(parser, line_of(v), false);
    }
    check_line(parser, R"({"handles":"88.1/x","values":[)" + kUrl + "]}", false);
    check_line(parser, R"({"handle":"88.1/x","value":[)" + kUrl + "]}", false);
    check_line(parser, R"({"handle":"88.1/x","templateVersio":"v","values":[)" + kUrl + "]}",
               false);
    check_line(parser, R"({"handle":"88.1/x","type":"v","values":[)" + kUrl + "]}", false);
    // Whitespace around every token is still the common shape.
    check_line(parser,
               " {\t\"handle\"\t:\r\"88.1/x\" , \"values\" : [ { \"index\" : 1 , \"type\" : "
               "\"T\" , \"data\" : { \"format\" : \"string\" , \"value\" : \"v\" } , \"ttl\" : 5 "
               ", \"permissions\" : \"1100\" , \"timestamp\" : \"t\" } ] } ",
               true);
}

TEST_CASE("BulkLineParser: every prefix of a record line") {
    // Cut anywhere (a token, a member name, a number, between tokens), a line is not the common
    // shape; the general path decides, and the scanner never reads past the end.
    const std::string full =
        R"({"handle":"88.118.8/SN-1","templateVersion":"steel-1.0","values":[{"index":1,"type":"URL",)"
        R"("data":{"format":"string","value":"https://steel.example/c/1"},"ttl":86400,)"
        R"("permissions":"1110","timestamp":"2024-01-01T00:00:00Z"},{"index":2000,"type":"heat_no",)"
        R"("data":"H2024-0"}]})";
    api::BulkLineParser parser({});
    check_line(parser, full, true);
    for (std::size_t n = 1; n < full.size(); ++n) {
        check_line(parser, full.substr(0, n), false);
    }
}
