// JSON helpers shared by the integration tests that read API answers (boost::json, header-only so
// that only the tests linking Boost::json include it).
#pragma once

#include "harness.hpp"

#include <boost/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace idnode::test {

/// Parses a whole JSON text; a malformed answer is a HarnessError naming (the start of) it.
inline boost::json::value parse_json(std::string_view text) {
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    if (ec)
        throw HarnessError("not JSON: " + std::string(text.substr(0, 500)));
    return v;
}

/// A response's body parsed as JSON (parse_json).
inline boost::json::value body_of(const Response& r) {
    return parse_json(r.body());
}

/// The native API's error code (`{"error":{"code":…}}`), or "" when the body has none.
inline std::string error_code(const Response& r) {
    const auto v = body_of(r);
    const auto* e = v.is_object() ? v.as_object().if_contains("error") : nullptr;
    return e ? std::string(e->at("code").as_string()) : std::string();
}

/// The JSON values of an NDJSON body, one per non-empty line.
inline std::vector<boost::json::value> ndjson_values(std::string_view body) {
    std::vector<boost::json::value> out;
    std::size_t start = 0;
    while (start < body.size()) {
        auto end = body.find('\n', start);
        if (end == std::string_view::npos)
            end = body.size();
        if (end > start)
            out.push_back(parse_json(body.substr(start, end - start)));
        start = end + 1;
    }
    return out;
}

/// One page of a cursor listing (`GET /api/handles?prefix=&cursor=`): appends its `handles` to
/// `out` and returns its `nextCursor`, "" on the last page.
inline std::string take_handles_page(std::string_view page_json, std::vector<std::string>& out) {
    const auto page = parse_json(page_json);
    for (const auto& h : page.at("handles").as_array())
        out.emplace_back(h.as_string());
    const auto* next = page.as_object().if_contains("nextCursor");
    return next != nullptr ? std::string(next->as_string()) : std::string();
}

} // namespace idnode::test
