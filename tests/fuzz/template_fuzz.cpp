// libFuzzer entry point for metadata templates (registry template.hpp, resolver/src/api/
// template_json.hpp): a document {"template": <template JSON as POSTed to /api/v1/templates>,
// "values": [<values as in PUT /api/handles>]} is parsed with template_from_json and
// validate_template, and the values are validated against the template with validate_record,
// which is what every templated write (Handle REST, SNMS, bulk) runs.
//
// Beyond "no crash": the violations come in index order, each with non-empty English and Chinese
// messages that are valid UTF-8 (they go into JSON answers); a record without violations has
// every required enabled item, and each of its template fields is an enabled item of its idType
// whose data is UTF-8 of an allowed length and passes check_field_type.
#include "fuzz_support.hpp"
#include "idnode/codec/template_json.hpp"
#include "idnode/codec/values_json.hpp"
#include "idnode/registry/identifier.hpp"
#include "idnode/registry/template.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

namespace reg = idnode::registry;
namespace codec = idnode::codec;
namespace json = boost::json;
using idnode::fuzz::require;

void check_record(const reg::Template& t, const std::vector<reg::HandleValue>& values) {
    const auto violations = reg::validate_record(t, values);
    for (std::size_t i = 0; i < violations.size(); ++i) {
        require(i == 0 || violations[i - 1].index <= violations[i].index);
        idnode::fuzz::require_message(violations[i].english());
        idnode::fuzz::require_message(violations[i].chinese());
    }
    if (!violations.empty())
        return;
    for (const auto& item : t.items) {
        if (item.required && item.enabled) {
            require(std::any_of(values.begin(), values.end(),
                                [&](const auto& v) { return v.index == item.id_index; }));
        }
    }
    for (const auto& v : values) {
        if (v.index < 2000)
            continue;
        const reg::TemplateItem* item = t.item(v.index);
        require(item != nullptr && item->enabled && reg::equals_folded(v.type, item->id_type));
        require(reg::find_invalid_utf8(v.data) == std::string::npos);
        const std::size_t length = reg::utf8_length(v.data);
        require(length >= item->min_length && length <= item->max_length);
        require(reg::check_field_type(item->type, v.data, item->values).empty());
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    boost::system::error_code ec;
    const json::value parsed = json::parse(body, ec);
    if (ec || !parsed.is_object())
        return 0;
    const json::object& doc = parsed.get_object();
    const json::value* template_json = doc.if_contains("template");
    if (template_json == nullptr)
        return 0;
    auto t = codec::template_from_json(*template_json);
    if (!t) {
        idnode::fuzz::require_message(t.error().message);
        return 0;
    }
    if (reg::Status st = reg::validate_template(*t); !st) {
        idnode::fuzz::require_message(st.error().message);
        return 0;
    }
    const json::value* values_json = doc.if_contains("values");
    if (values_json == nullptr)
        return 0;
    auto values = codec::values_from_json(*values_json);
    if (values)
        check_record(*t, *values);
    return 0;
}
