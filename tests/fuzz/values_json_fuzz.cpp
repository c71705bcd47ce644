// libFuzzer entry point for the JSON request bodies of the Handle REST API (resolver/src/api/
// values_json.hpp), fed the way node_api.cpp feeds them: boost::json::parse of the raw body, then
// values_from_json on its "values" member (and value_from_json on the body itself).
//
// Beyond "no crash": every value list accepted and validated can be encoded into a record that
// parses back, and whose JSON form (value_to_json) is produced without error.
#include "idnode/codec/values_json.hpp"
#include "idnode/registry/value.hpp"

#include <boost/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

namespace reg = idnode::registry;
namespace codec = idnode::codec;
namespace json = boost::json;

void require(bool condition) {
    if (!condition)
        std::abort();
}

void check_values(const json::value& input) {
    auto values = codec::values_from_json(input);
    if (!values) {
        require(!values.error().message.empty());
        return;
    }
    if (!reg::validate_values(*values))
        return;
    const std::string record = reg::encode_record("88.999/FUZZ", *values);
    auto view = reg::RecordView::parse(record);
    require(view.ok());
    require(view->size() == values->size());
    for (const auto& value : *view) {
        json::object out;
        codec::value_to_json(out, value);
        require(out.contains("index") && out.contains("data"));
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    boost::system::error_code ec;
    const json::value parsed = json::parse(body, ec);
    if (ec)
        return 0;
    if (const auto* object = parsed.if_object()) {
        if (const auto* values = object->if_contains("values"))
            check_values(*values);
        (void)codec::value_from_json(parsed, "value");
    }
    check_values(parsed);
    std::string decoded;
    if (const auto* text = parsed.if_string())
        (void)codec::base64_decode(*text, decoded);
    return 0;
}
