// Checks shared by the fuzz targets of request bodies (handle_rest, snms, bulk_ndjson): what
// every accepted value list must satisfy on its way to the store and back out as JSON.
#pragma once

#include "idnode/codec/values_json.hpp"
#include "idnode/registry/identifier.hpp"
#include "idnode/registry/value.hpp"

#include <boost/json.hpp>

#include <cstdlib>
#include <span>
#include <string>

namespace idnode::fuzz {

/// abort() makes libFuzzer (and the replay under ctest) report the input.
inline void require(bool condition) {
    if (!condition)
        std::abort();
}

/// A message for the client: it goes into a JSON answer, so it must say something and be UTF-8
/// (a message cutting a client's text in the middle of a character would make the answer
/// invalid JSON).
inline void require_message(const std::string& message) {
    require(!message.empty());
    require(registry::find_invalid_utf8(message) == std::string::npos);
}

/// Values a client sent and the server accepted. When they also pass validate_values (what the
/// registry checks before a write):
/// - they encode into a record that parses back to the same values, in order;
/// - GET's fast serializer (append_value_json) writes byte for byte what the general one
///   (value_to_json) writes;
/// - a client that PUTs back what it got stores the same value, whatever the data format
///   (string, base64, admin) the server chose.
inline void check_stored_values(std::span<const registry::HandleValue> values) {
    namespace json = boost::json;
    if (!registry::validate_values(values))
        return;
    const std::string record = registry::encode_record("88.999/FUZZ", values);
    auto view = registry::RecordView::parse(record);
    require(view.ok());
    require(view->size() == values.size());
    std::size_t i = 0;
    for (const registry::ValueView& stored : *view) {
        const registry::HandleValue& sent = values[i++];
        require(stored.to_value().same_content(sent));
        json::object general;
        codec::value_to_json(general, stored);
        std::string fast;
        codec::append_value_json(fast, stored);
        require(fast == json::serialize(general));
        boost::system::error_code ec;
        const json::value reparsed = json::parse(fast, ec);
        require(!ec);
        auto back = codec::value_from_json(reparsed, "value");
        require(back.ok());
        require(back->same_content(sent));
    }
}

} // namespace idnode::fuzz
