// Identifier grammar (registry/include/idnode/registry/identifier.hpp, docs/identifiers.md).
#include "idnode/registry/identifier.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

using namespace idnode::registry;
using namespace std::string_literals;
using namespace std::string_view_literals;

namespace {

// Printable form of arbitrary bytes for failure messages.
std::string show(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        if (c >= 0x20 && c < 0x7F) {
            out.push_back(static_cast<char>(c));
        } else {
            static const char* hex = "0123456789ABCDEF";
            out += "\\x";
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

} // namespace

TEST_CASE("a plain IDIS handle parses and keeps its spelling") {
    auto h = parse_handle("88.118.8/sn-2024-000123");
    REQUIRE(h.ok());
    CHECK(h->spelling() == "88.118.8/sn-2024-000123");
    CHECK(h->key() == "88.118.8/SN-2024-000123");
    CHECK(h->prefix() == "88.118.8");
    CHECK(h->suffix() == "sn-2024-000123");
}

TEST_CASE("a handle without a slash is rejected with a reason") {
    auto h = parse_handle("88.118.8");
    REQUIRE_FALSE(h.ok());
    CHECK(h.code() == Errc::invalid_handle);
    CHECK(h.error().message.find("'/'") != std::string::npos);
}

TEST_CASE("valid handles: prefix and suffix split at the first slash") {
    struct Case {
        std::string text;
        std::string prefix;
        std::string suffix;
    };
    const std::string emoji = "\xF0\x9F\x98\x80"; // U+1F600, 4-byte UTF-8
    const std::vector<Case> cases = {
        {"88.118.8/SN-2024-000123", "88.118.8", "SN-2024-000123"},
        {"88.101.0042/x", "88.101.0042", "x"},
        {"20.500.123/abc", "20.500.123", "abc"},
        {"86.709.612/a", "86.709.612", "a"},
        {"0.NA/88.118", "0.NA", "88.118"},
        {"88/x", "88", "x"},
        {"a-b_c.D-9/x", "a-b_c.D-9", "x"},
        {"88.1/炉号 H2024", "88.1", "炉号 H2024"},
        {"88.1/a/b/c", "88.1", "a/b/c"},
        {"88.1//", "88.1", "/"},
        {"88.1/ leading and trailing spaces ", "88.1", " leading and trailing spaces "},
        {"88.1/" + emoji, "88.1", emoji},
        {"88.1/x" + emoji + "y", "88.1", "x" + emoji + "y"},
        {"88.1/\xC2\x80", "88.1", "\xC2\x80"},                 // U+0080: not a C0 control
        {"88.1/\xED\x9F\xBF", "88.1", "\xED\x9F\xBF"},         // U+D7FF, just below surrogates
        {"88.1/\xEE\x80\x80", "88.1", "\xEE\x80\x80"},         // U+E000, just above surrogates
        {"88.1/\xEF\xBF\xBF", "88.1", "\xEF\xBF\xBF"},         // U+FFFF
        {"88.1/\xF4\x8F\xBF\xBF", "88.1", "\xF4\x8F\xBF\xBF"}, // U+10FFFF, the maximum
        {"88.1/~!@#$%^&*()[]{}<>?", "88.1", "~!@#$%^&*()[]{}<>?"},
    };
    for (const auto& c : cases) {
        INFO("handle: " << show(c.text));
        auto h = parse_handle(c.text);
        REQUIRE_MESSAGE(h.ok(), (h.ok() ? "" : h.error().message));
        CHECK(h->spelling() == c.text);
        CHECK(h->prefix() == c.prefix);
        CHECK(h->suffix() == c.suffix);
        CHECK(h->key() == fold_case(c.text));
        CHECK(h->prefix_key() == fold_case(c.prefix));
    }
}

TEST_CASE("invalid handles are rejected with a precise reason") {
    struct Case {
        std::string text;
        std::string reason; // substring the message must contain
    };
    const std::vector<Case> cases = {
        {"", "empty"},
        {"88.118.8", "'/'"},
        {"88.118.8-SN", "'/'"},
        {"/x", "prefix is empty"},
        {"/", "prefix is empty"},
        {"88..1/x", "empty segment"},
        {".88/x", "empty segment"},
        {"88./x", "empty segment"},
        {"./x", "empty segment"},
        {"88 1/x", "prefix contains"},
        {"88@1/x", "prefix contains"},
        {"88,1/x", "prefix contains"},
        {"8\xC3\xA9/x", "prefix contains"}, // non-ASCII in the prefix
        {"88\t1/x", "prefix contains"},
        {"88.1/", "suffix is empty"},
        {"88.118.8/", "suffix is empty"},
    };
    for (const auto& c : cases) {
        INFO("handle: " << show(c.text));
        auto h = parse_handle(c.text);
        REQUIRE_FALSE(h.ok());
        CHECK(h.code() == Errc::invalid_handle);
        INFO("message: " << h.error().message);
        CHECK(contains(h.error().message, c.reason));
    }
}

TEST_CASE("control characters in the suffix are rejected, naming the byte and its position") {
    struct Case {
        std::string text;
        std::string hex;
        std::size_t position;
    };
    const std::vector<Case> cases = {
        {"88.1/a\0b"s, "0x00", 6},
        {"88.1/\0"s, "0x00", 5},
        {"88.1/a\tb", "0x09", 6},
        {"88.1/abcdefgh\x1F", "0x1F", 13},
        {"88.1/abc\x7F", "0x7F", 8},
        {"88.1/\n", "0x0A", 5},
        {"88.1/\r", "0x0D", 5},
        {"88.1/x\x01", "0x01", 6},
        {"88.118.8/SN-2024\x1B[0m", "0x1B", 16},
    };
    for (const auto& c : cases) {
        INFO("handle: " << show(c.text));
        auto h = parse_handle(c.text);
        REQUIRE_FALSE(h.ok());
        CHECK(h.code() == Errc::invalid_handle);
        const std::string& m = h.error().message;
        INFO("message: " << m);
        CHECK(contains(m, "control character"));
        CHECK(contains(m, c.hex));
        CHECK(contains(m, "byte " + std::to_string(c.position)));
    }
}

TEST_CASE("invalid UTF-8 in the suffix is rejected, never repaired") {
    struct Case {
        const char* what;
        std::string suffix;
        std::size_t bad_offset; // within the suffix
    };
    const std::vector<Case> cases = {
        {"overlong '/' (C0 AF)", "\xC0\xAF", 0},
        {"overlong C1 lead", "a\xC1\xBF", 1},
        {"overlong 3-byte (E0 80 AF)", "\xE0\x80\xAF", 0},
        {"overlong 3-byte (E0 9F BF)", "ab\xE0\x9F\xBF", 2},
        {"overlong 4-byte (F0 8F BF BF)", "\xF0\x8F\xBF\xBF", 0},
        {"high surrogate (ED A0 80)", "\xED\xA0\x80", 0},
        {"low surrogate (ED BF BF)", "x\xED\xBF\xBF", 1},
        {"above U+10FFFF (F4 90 80 80)", "\xF4\x90\x80\x80", 0},
        {"F5 lead", "\xF5\x80\x80\x80", 0},
        {"FE byte", "a\xFE", 1},
        {"FF byte", "\xFF", 0},
        {"lone continuation 80", "\x80", 0},
        {"lone continuation BF after ASCII", "abc\xBF", 3},
        {"continuation after a complete sequence", "\xC3\xA9\xA9", 2},
        {"truncated 2-byte at the end", "abc\xC3", 3},
        {"truncated 3-byte at the end", "ab\xE4\xB8", 2},
        {"truncated 4-byte at the end", "\xF0\x9F\x98", 0},
        {"truncated 4-byte (1 byte) at the end", "xyz\xF0", 3},
        {"truncated sequence followed by ASCII",
         "\xE4\xB8"
         "A",
         0},
        {"bad continuation (C3 41)",
         "\xC3"
         "A",
         0},
        {"valid then invalid", "炉\xE7", 3},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        const std::string text = "88.118.8/" + c.suffix;
        const std::size_t expected = 9 + c.bad_offset;
        CHECK(find_invalid_utf8(c.suffix) == c.bad_offset);
        auto h = parse_handle(text);
        REQUIRE_FALSE(h.ok());
        CHECK(h.code() == Errc::invalid_handle);
        INFO("message: " << h.error().message);
        CHECK(contains(h.error().message, "UTF-8"));
        CHECK(contains(h.error().message, "byte " + std::to_string(expected)));
    }
}

TEST_CASE("find_invalid_utf8 accepts valid text of every sequence length") {
    CHECK(find_invalid_utf8("") == std::string_view::npos);
    CHECK(find_invalid_utf8("plain ascii") == std::string_view::npos);
    CHECK(find_invalid_utf8("\xC2\x80\xDF\xBF") == std::string_view::npos); // U+0080, U+07FF
    CHECK(find_invalid_utf8("\xE0\xA0\x80\xEF\xBF\xBF") ==
          std::string_view::npos); // U+0800, U+FFFF
    CHECK(find_invalid_utf8("\xF0\x90\x80\x80\xF4\x8F\xBF\xBF") == std::string_view::npos);
    CHECK(find_invalid_utf8("炉号 H2024 😀") == std::string_view::npos);
    CHECK(find_invalid_utf8("\0"sv) == std::string_view::npos); // NUL is valid UTF-8 (a control)
}

TEST_CASE("handle length limit: default 255 bytes, configurable, clamped at 2048") {
    const std::string head = "88.1/";
    auto of_length = [&](std::size_t n) { return head + std::string(n - head.size(), 'a'); };

    SUBCASE("default") {
        CHECK(parse_handle(of_length(255)).ok());
        auto h = parse_handle(of_length(256));
        REQUIRE_FALSE(h.ok());
        CHECK(h.code() == Errc::invalid_handle);
        INFO(h.error().message);
        CHECK(contains(h.error().message, "255"));
        CHECK(kDefaultMaxHandleLength == 255);
        CHECK(HandleLimits{}.max_length == 255);
    }
    SUBCASE("the length is counted in bytes, not characters") {
        // 5 + 62 * 4 + 2 = 255 bytes, 69 characters.
        std::string text = head;
        for (int i = 0; i < 62; ++i) {
            text += "\xF0\x9F\x98\x80";
        }
        text += "ab";
        REQUIRE(text.size() == 255);
        CHECK(parse_handle(text).ok());
        CHECK_FALSE(parse_handle(text + "c").ok());
    }
    SUBCASE("configured smaller") {
        HandleLimits limits{10};
        CHECK(parse_handle(of_length(10), limits).ok());
        CHECK(parse_handle("88.1/abcde", limits).ok());
        auto h = parse_handle(of_length(11), limits);
        REQUIRE_FALSE(h.ok());
        CHECK(h.code() == Errc::invalid_handle);
    }
    SUBCASE("configured larger, up to the Handle limit") {
        HandleLimits limits{kHandleProtocolMaxLength};
        CHECK(parse_handle(of_length(256), limits).ok());
        CHECK(parse_handle(of_length(2048), limits).ok());
        CHECK_FALSE(parse_handle(of_length(2049), limits).ok());
    }
    SUBCASE("a limit above 2048 is clamped to 2048") {
        HandleLimits limits{100000};
        CHECK(parse_handle(of_length(2048), limits).ok());
        auto h = parse_handle(of_length(2049), limits);
        REQUIRE_FALSE(h.ok());
        CHECK(h.code() == Errc::invalid_handle);
        CHECK_FALSE(parse_handle(of_length(5000), limits).ok());
    }
}

TEST_CASE("case folding: the key upper-cases ASCII a-z only") {
    auto h = parse_handle("0.na/Abc-xyz-ß-é-ｚ-炉");
    REQUIRE(h.ok());
    CHECK(h->spelling() == "0.na/Abc-xyz-ß-é-ｚ-炉");
    CHECK(h->key() == "0.NA/ABC-XYZ-ß-é-ｚ-炉");
    CHECK(h->prefix() == "0.na");
    CHECK(h->prefix_key() == "0.NA");
    CHECK(h->suffix() == "Abc-xyz-ß-é-ｚ-炉");

    // Every byte value: only 'a'..'z' change.
    for (int b = 0; b < 256; ++b) {
        const std::string in(1, static_cast<char>(b));
        const std::string out = fold_case(in);
        REQUIRE(out.size() == 1);
        const auto got = static_cast<unsigned char>(out[0]);
        if (b >= 'a' && b <= 'z') {
            CHECK(got == b - 32);
        } else {
            CHECK(got == b);
        }
    }
    CHECK(fold_case("") == "");
    CHECK(fold_case("88.118.8/sn-2024-000123") == "88.118.8/SN-2024-000123");
}

TEST_CASE("two spellings of one handle share the key") {
    auto a = parse_handle("88.118.8/sn-abc");
    auto b = parse_handle("88.118.8/SN-ABC");
    auto c = parse_handle("88.118.8/Sn-AbC");
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    REQUIRE(c.ok());
    CHECK(a->key() == b->key());
    CHECK(a->key() == c->key());
    CHECK(a->spelling() != b->spelling());
    // Non-ASCII letters are not folded: these are different identifiers.
    auto d = parse_handle("88.118.8/é");
    auto e = parse_handle("88.118.8/É");
    REQUIRE(d.ok());
    REQUIRE(e.ok());
    CHECK(d->key() != e->key());
}

TEST_CASE("equals_folded") {
    CHECK(equals_folded("", ""));
    CHECK(equals_folded("abc", "ABC"));
    CHECK(equals_folded("88.118.8/sn-X", "88.118.8/SN-x"));
    CHECK(equals_folded("URL", "url"));
    CHECK_FALSE(equals_folded("abc", "abd"));
    CHECK_FALSE(equals_folded("abc", "abcd"));
    CHECK_FALSE(equals_folded("abcd", "abc"));
    CHECK_FALSE(equals_folded("é", "É")); // non-ASCII untouched
    // Bytes that differ only in bit 0x20 but are not letters must not compare equal.
    CHECK_FALSE(equals_folded("@", "`"));
    CHECK_FALSE(equals_folded("[", "{"));
    CHECK_FALSE(equals_folded("]", "}"));
    CHECK_FALSE(equals_folded("^", "~"));
    CHECK_FALSE(equals_folded("\x01", "!"));
    CHECK_FALSE(equals_folded("\xC3\xA9", "\xC3\x89"));
}

TEST_CASE("prefix_is_under") {
    CHECK(prefix_is_under("88.118.8", "88.118"));
    CHECK(prefix_is_under("88.118", "88.118"));
    CHECK(prefix_is_under("88.118.8.1", "88"));
    CHECK(prefix_is_under("88.118.8", "88"));
    CHECK_FALSE(prefix_is_under("88.1180", "88.118"));
    CHECK_FALSE(prefix_is_under("88.1180.1", "88.118"));
    CHECK_FALSE(prefix_is_under("88.11", "88.118"));
    CHECK_FALSE(prefix_is_under("88", "88.118"));
    CHECK_FALSE(prefix_is_under("880.118", "88"));
    CHECK_FALSE(prefix_is_under("86.118", "88"));
    CHECK_FALSE(prefix_is_under("88-1", "88"));
}

TEST_CASE("parse_prefix validates and folds") {
    auto p = parse_prefix("88.118.8");
    REQUIRE(p.ok());
    CHECK(*p == "88.118.8");
    auto q = parse_prefix("0.na");
    REQUIRE(q.ok());
    CHECK(*q == "0.NA");
    auto r = parse_prefix("88.101.0042");
    REQUIRE(r.ok());
    CHECK(*r == "88.101.0042");

    const std::vector<std::string> bad = {"",          "88..1",   ".88",   "88.",
                                          "88/1",      "88.1/x",  "88.1 ", " 88",
                                          "8\xC3\xA9", "88\x00"s, "88.*"};
    for (const auto& text : bad) {
        INFO("prefix: " << show(text));
        auto result = parse_prefix(text);
        REQUIRE_FALSE(result.ok());
        CHECK(result.code() == Errc::invalid_handle);
        CHECK_FALSE(result.error().message.empty());
    }
}

TEST_CASE("utf8_prefix never ends inside a character") {
    const std::string text = "ab炉号"; // 2 ASCII bytes, then two 3-byte characters
    CHECK(utf8_prefix(text, 100) == text);
    CHECK(utf8_prefix(text, text.size()) == text);
    CHECK(utf8_prefix(text, 2) == "ab");
    CHECK(utf8_prefix(text, 3) == "ab"); // 炉 would be cut
    CHECK(utf8_prefix(text, 4) == "ab");
    CHECK(utf8_prefix(text, 5) == "ab炉");
    CHECK(utf8_prefix(text, 7) == "ab炉");
    CHECK(utf8_prefix(text, 0).empty());
    CHECK(utf8_prefix("\xF0\x9F\x98\x80x", 3).empty()); // a 4-byte character
    for (std::size_t n = 0; n <= text.size(); ++n)
        CHECK(find_invalid_utf8(utf8_prefix(text, n)) == std::string_view::npos);
}
