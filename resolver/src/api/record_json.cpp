#include "record_json.hpp"

#include "codec.hpp"

#include <boost/json.hpp>

#include <algorithm>

namespace idnode::resolver::api {
namespace json = boost::json;
using namespace registry;

std::vector<std::size_t> record_json_sizes(std::string_view text) {
    std::vector<std::size_t> sizes;
    const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    std::size_t i = text.find('[');
    if (i == std::string_view::npos)
        return sizes;
    ++i;
    int depth = 0;                              // nesting inside the current element
    std::size_t start = std::string_view::npos; // first byte of the current element
    std::size_t last = 0;                       // last non-blank byte of the current element
    for (; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '"') { // skip the string, escapes included
            if (start == std::string_view::npos)
                start = i;
            for (++i; i < text.size() && text[i] != '"'; ++i)
                if (text[i] == '\\')
                    ++i;
            last = i;
            continue;
        }
        if (blank(c))
            continue;
        if (depth == 0 && (c == ',' || c == ']')) {
            if (start != std::string_view::npos)
                sizes.push_back(last - start + 1);
            start = std::string_view::npos;
            if (c == ']')
                break;
            continue;
        }
        if (start == std::string_view::npos)
            start = i;
        last = i;
        if (c == '{' || c == '[')
            ++depth;
        else if (c == '}' || c == ']')
            --depth;
    }
    return sizes;
}

Result<RecordInput> record_from_json(const json::value& value, std::string_view values_key) {
    RecordInput in;
    const json::value* values = &value;
    if (const auto* o = value.if_object()) {
        if (const auto* h = o->if_contains("handle"); h && !h->is_null()) {
            if (!h->is_string())
                return Error{Errc::invalid_handle, "handle must be a string"};
            in.handle = h->get_string();
        }
        if (const auto* t = o->if_contains("templateVersion"); t && !t->is_null()) {
            if (!t->is_string() || t->get_string().empty())
                return Error{Errc::invalid_value, "templateVersion must be a non-empty string"};
            in.template_version = std::string(t->get_string());
        }
        values = o->if_contains(values_key);
        if (values == nullptr)
            return Error{Errc::invalid_value, "body needs \"" + std::string(values_key) + "\""};
    } else if (values_key != "values" || !value.is_array()) {
        return Error{Errc::invalid_value, "a record must be a JSON object"};
    }
    auto parsed = values_from_json(*values);
    if (!parsed)
        return parsed.error();
    in.values = std::move(parsed).value();
    return in;
}

} // namespace idnode::resolver::api
