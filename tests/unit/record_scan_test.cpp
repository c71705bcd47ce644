// The codec's record-line scanner (idnode/codec/record_scan.hpp) on its own: lines it must leave
// to the general JSON path. The equivalence with that path is checked through the bulk parser
// (bulk_line_parser_test.cpp) and the bulk_ndjson fuzz target.
#include "idnode/codec/record_scan.hpp"

#include <doctest/doctest.h>

#include <string>

using idnode::codec::RecordLineScanner;

namespace {

std::string line_of(const std::string& value) {
    return R"({"handle":"88.118.8/A-1","values":[)" + value + "]}";
}

} // namespace

TEST_CASE("RecordLineScanner: a member name without its colon is not the common shape") {
    RecordLineScanner scanner;
    // The fuzz finding tests/fuzz/corpus/bulk_ndjson/crash-559bcd51…: "ttl" with no colon,
    // then "timestamp":… — not JSON, so never scanned.
    CHECK_FALSE(scanner.scan(line_of(
        R"({"index":2,"type":"名","data":"值 ü 😀","ttl""timestamp":"2024-01-01T00:00:00Z"})")));
    CHECK_FALSE(scanner.scan(line_of(R"({"index":1,"type""ttl":5,"data":"x"})")));
    CHECK_FALSE(scanner.scan(line_of(R"({"index":1,"type":"T","data":"x","ttl""ttl":5})")));
    CHECK_FALSE(scanner.scan(R"({"handle""values":[{"index":1,"type":"T","data":"x"}]})"));

    // The same members with their colons are scanned, and the failed attempts left no state
    // (the views point into the line, which must outlive them).
    const std::string good = line_of(
        R"({"index":2,"type":"名","data":"值 ü 😀","ttl":7,"timestamp":"2024-01-01T00:00:00Z"})");
    REQUIRE(scanner.scan(good));
    REQUIRE(scanner.values().size() == 1);
    CHECK(scanner.handle() == "88.118.8/A-1");
    CHECK(scanner.values()[0].index == 2);
    CHECK(scanner.values()[0].type == "名");
    CHECK(scanner.values()[0].data == "值 ü 😀");
    CHECK(scanner.values()[0].ttl == 7);
    // A name tried and refused ("type" for "ttl") does not eat the text of the next try.
    const std::string reordered =
        line_of(R"({"ttl":5,"timestamp":"t","index":1,"type":"T","data":"x"})");
    REQUIRE(scanner.scan(reordered));
    CHECK(scanner.values()[0].ttl == 5);
}
