// libFuzzer entry point for the bulk upload body (POST /api/v1/bulk, docs/api.md#bulk,
// resolver/src/api/native/bulk.hpp): the input is an NDJSON body.
//
// The splitter: the server receives the body in pieces of any size, so the body is fed to
// NdjsonSplitter in one piece, one byte at a time, and in pieces whose sizes come from a
// generator seeded by the input; each feeding must give the same lines and over-long lines,
// and these must be the body split at every '\n' (the last line without one too), a line being
// over-long exactly when it has more than max_line_bytes bytes. Two limits are tried: the default
// one and a small one (from the input's hash), so that over-long lines spanning pieces occur.
//
// The lines: each goes through parse_bulk_line (the general path). A blank line is only spaces
// and tabs; an error has a known code and a UTF-8 message, and names the handle only if the line
// parsed; a record's values pass check_stored_values (fuzz_support.hpp). The upload's own
// BulkLineParser (one per input, reused across its lines like an upload's; the fast scanner for
// the common record shape) must give exactly the same result: the same record (handle, values)
// or the same error (handle, code, message).
#include "api/native/bulk.hpp"
#include "fuzz_support.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace {

namespace api = idnode::resolver::api;
using idnode::fuzz::require;

struct Line {
    bool too_long = false;
    std::string text; // empty when too_long
    friend bool operator==(const Line&, const Line&) = default;
};

/// What the splitter must produce: the body split at every '\n' at once.
std::vector<Line> reference_split(std::string_view body, std::size_t max_line_bytes) {
    std::vector<Line> lines;
    while (!body.empty()) {
        const auto newline = body.find('\n');
        const std::string_view line = body.substr(0, newline);
        body = newline == std::string_view::npos ? std::string_view{} : body.substr(newline + 1);
        if (line.size() > max_line_bytes)
            lines.push_back(Line{true, {}});
        else
            lines.push_back(Line{false, std::string(line)});
    }
    return lines;
}

/// Feeds `body` in pieces whose sizes `next_size` chooses.
template <class NextSize>
std::vector<Line> split(std::string_view body, std::size_t max_line_bytes, NextSize next_size) {
    std::vector<Line> lines;
    api::NdjsonSplitter splitter(max_line_bytes);
    auto on_line = [&](std::string_view line) {
        require(line.size() <= max_line_bytes);
        lines.push_back(Line{false, std::string(line)});
    };
    auto on_too_long = [&] { lines.push_back(Line{true, {}}); };
    while (!body.empty()) {
        const std::size_t n = std::min(body.size(), next_size());
        splitter.feed(body.substr(0, n), on_line, on_too_long);
        body.remove_prefix(n);
    }
    splitter.finish(on_line);
    return lines;
}

std::uint64_t fnv1a(std::string_view bytes) {
    std::uint64_t h = 14695981039346656037ull;
    for (unsigned char c : bytes)
        h = (h ^ c) * 1099511628211ull;
    return h;
}

void check_splits(std::string_view body, std::size_t max_line_bytes, std::uint64_t seed) {
    const auto expected = reference_split(body, max_line_bytes);
    require(split(body, max_line_bytes, [&] { return body.size(); }) == expected);
    require(split(body, max_line_bytes, [] { return std::size_t{1}; }) == expected);
    std::uint64_t state = seed | 1;
    auto random_size = [&] { // xorshift64: pieces of 1..64 bytes, now and then up to 4 KiB
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return static_cast<std::size_t>(state % 8 == 0 ? 1 + (state >> 8) % 4096
                                                       : 1 + (state >> 8) % 64);
    };
    require(split(body, max_line_bytes, random_size) == expected);
}

bool same(const api::ParsedBulkLine& a, const api::ParsedBulkLine& b) {
    if (a.index() != b.index())
        return false;
    if (const auto* ra = std::get_if<api::BulkRecord>(&a)) {
        const auto& rb = std::get<api::BulkRecord>(b);
        return ra->handle.spelling() == rb.handle.spelling() &&
               ra->handle.key() == rb.handle.key() && ra->values == rb.values;
    }
    if (const auto* ea = std::get_if<api::BulkLineError>(&a)) {
        const auto& eb = std::get<api::BulkLineError>(b);
        return ea->handle == eb.handle && ea->error.code == eb.error.code &&
               ea->error.message == eb.error.message;
    }
    return true; // both blank
}

void check_line(std::string_view line, api::BulkLineParser& parser) {
    const auto parsed = api::parse_bulk_line(line, {});
    require(same(parser.parse(line), parsed));
    std::string_view trimmed = line;
    if (!trimmed.empty() && trimmed.back() == '\r')
        trimmed.remove_suffix(1);
    const bool blank = trimmed.find_first_not_of(" \t") == std::string_view::npos;
    require(std::holds_alternative<api::BlankLine>(parsed) == blank);
    if (const auto* bad = std::get_if<api::BulkLineError>(&parsed)) {
        const std::string& code = bad->error.code;
        require(code == "invalid_json" || code == "invalid_record" || code == "invalid_handle" ||
                code == "invalid_value");
        idnode::fuzz::require_message(bad->error.message);
        require(bad->handle.empty() || code != "invalid_json"); // a handle needs a parsed line
    } else if (const auto* record = std::get_if<api::BulkRecord>(&parsed)) {
        require(!record->handle.spelling().empty());
        idnode::fuzz::check_stored_values(record->values);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    const std::uint64_t hash = fnv1a(body);
    const std::size_t default_max = api::BulkOptions{}.max_line_bytes;
    check_splits(body, default_max, hash);
    check_splits(body, 1 + hash % 128, hash >> 7);
    api::BulkLineParser parser({});
    for (const Line& line : reference_split(body, default_max)) {
        if (!line.too_long)
            check_line(line.text, parser);
    }
    return 0;
}
