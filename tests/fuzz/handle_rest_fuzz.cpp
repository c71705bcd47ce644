// libFuzzer entry point for the body of PUT /api/handles/{handle} (docs/api.md#write), fed the way
// handle_rest/routes.cpp's put_handle feeds it: boost::json::parse of the raw body, then
// record_values_from_json ({"values":[…], "templateVersion"?} or a bare values array; values with
// data formats string, base64, hex and admin).
//
// Beyond "no crash": a refusal has a UTF-8 message; an accepted templateVersion is exactly one
// index 1001 TEMPLATE value holding it; accepted values pass check_stored_values (fuzz_support.hpp:
// encode/parse round trip, GET's two serializers agree, GET -> PUT gives the same value).
#include "fuzz_support.hpp"
#include "idnode/codec/values_json.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace {

namespace reg = idnode::registry;
namespace codec = idnode::codec;
namespace json = boost::json;
using idnode::fuzz::require;

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    boost::system::error_code ec;
    const json::value parsed = json::parse(body, ec);
    if (ec)
        return 0;
    auto values = codec::record_values_from_json(parsed);
    if (!values) {
        idnode::fuzz::require_message(values.error().message);
        return 0;
    }
    const json::string* version = nullptr;
    if (const auto* object = parsed.if_object()) {
        if (const auto* t = object->if_contains("templateVersion"))
            version = t->if_string();
    }
    if (version != nullptr) {
        const auto templates = std::count_if(values->begin(), values->end(), [](const auto& v) {
            return v.index == reg::kIndexTemplate;
        });
        require(templates == 1);
        const auto& t = values->back();
        require(t.index == reg::kIndexTemplate && t.type == "TEMPLATE" && t.data == *version);
    }
    idnode::fuzz::check_stored_values(*values);
    return 0;
}
