// libFuzzer entry point for the JSON request bodies of the SNMS API
// (docs/api.md#snms-compatible-api, resolver/src/api/snms/), fed the way its routes feed them after
// boost::json::parse:
// - an object: POST|PUT /identityv2/data -> snms_record_from_json; and POST /snms/api/v5/template
//   -> template_from_json, validate_template, template_key;
// - an array: batchCreate/batchUpdate -> record_json_sizes (the per-record limit) and
//   snms_record_from_json for each element.
//
// Beyond "no crash": a refusal has a UTF-8 message; the handle the answer names is the one sent; an
// accepted record's handle is the one sent and its values pass check_stored_values
// (fuzz_support.hpp); an accepted template has a key, survives its binary encoding and its JSON
// form unchanged, and is a valid update of itself.
#include "api/record_json.hpp"
#include "api/snms/snms_api.hpp"
#include "fuzz_support.hpp"
#include "idnode/codec/template_json.hpp"
#include "idnode/registry/template.hpp"

#include <boost/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

namespace reg = idnode::registry;
namespace api = idnode::resolver::api;
namespace codec = idnode::codec;
namespace json = boost::json;
using idnode::fuzz::require;

void check_record(const json::value& doc) {
    std::string spelling;
    auto record = api::snms_record_from_json(doc, reg::HandleLimits{}, spelling);
    const json::value* sent = nullptr;
    if (const auto* object = doc.if_object())
        sent = object->if_contains("handle");
    if (sent != nullptr && sent->is_string())
        require(spelling == sent->get_string());
    else
        require(spelling.empty());
    if (!record) {
        idnode::fuzz::require_message(record.error().message);
        return;
    }
    require(record->handle.spelling() == spelling);
    idnode::fuzz::check_stored_values(record->values);
}

void check_template(const json::value& doc) {
    auto parsed = codec::template_from_json(doc);
    if (!parsed) {
        idnode::fuzz::require_message(parsed.error().message);
        return;
    }
    const reg::Template& t = *parsed;
    if (reg::Status st = reg::validate_template(t); !st) {
        idnode::fuzz::require_message(st.error().message);
        return;
    }
    require(reg::template_key(t.prefix, t.version).ok());
    auto decoded = reg::decode_template(reg::encode_template(t));
    require(decoded.ok() && *decoded == t);
    // What GET returns, POSTed again, is the same template (created/updated are the server's).
    const std::string out = json::serialize(codec::template_to_json(t));
    auto again = codec::template_from_json(json::parse(out));
    require(again.ok() && *again == t);
    require(reg::check_template_update(t, t).ok());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    boost::system::error_code ec;
    const json::value parsed = json::parse(body, ec);
    if (ec)
        return 0;
    if (const auto* items = parsed.if_array()) {
        // The per-record limit measures each element as sent: one size per element, together
        // never more than the body.
        const auto sizes = api::record_json_sizes(body);
        require(sizes.size() == items->size());
        std::size_t total = 0;
        for (const std::size_t s : sizes)
            total += s;
        require(total <= body.size());
        for (const auto& item : *items)
            check_record(item);
    } else if (parsed.is_object()) {
        check_record(parsed);
        check_template(parsed);
    }
    return 0;
}
