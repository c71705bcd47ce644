// JSON forms of identifier values, shared by the Handle REST API, the native API and (later) the
// SNMS and bulk endpoints, and by idctl (which reads and writes exactly what the server does).
//
// Value in (HANDLE.NET v9 REST shape, lenient where clients differ):
//   {"index":1,"type":"URL","data":{"format":"string","value":"https://..."},"ttl":86400,
//    "permissions":"1110"}
//   data formats: "string" (UTF-8 text), "base64", "hex", "admin" ({"handle","index",
//   "permissions"} -> HS_ADMIN bytes); a bare string `"data":"text"` means format "string".
//   ttl defaults to 86400, permissions to "1110"; "timestamp" is ignored (the server sets it).
// Value out: index, type, data {format, value}, ttl, timestamp (ISO-8601 UTC), and
//   "permissions" only when not "1110". data is "string" when the bytes are valid UTF-8, "admin"
//   for a decodable HS_ADMIN value, "base64" otherwise.
#pragma once

#include "idnode/codec/base64.hpp"
#include "idnode/registry/value.hpp"

#include <boost/json/storage_ptr.hpp>
#include <boost/json/value.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace idnode::codec {

/// A request body as JSON, the one parser of every JSON API body (Handle REST, native, SNMS).
/// Errors: invalid_value "request body is not valid JSON: <reason>". `storage` lets a caller
/// parsing a large body (a 2000-record batch) use an arena; the default is the heap.
registry::Result<boost::json::value> parse_json_body(std::string_view body,
                                                     boost::json::storage_ptr storage = {});

/// Parses one value object; on failure returns the reason ("values[2].index must be a positive
/// integer"). `where` names the value in messages.
registry::Result<registry::HandleValue> value_from_json(const boost::json::value& json,
                                                        const std::string& where);

/// Parses a values array.
registry::Result<std::vector<registry::HandleValue>>
values_from_json(const boost::json::value& json);

/// The values of a whole-record write, shared by the Handle REST PUT and bulk lines: `body` is
/// an object with "values" and an optional "templateVersion" (non-empty string, stored as value
/// index 1001 TEMPLATE, replacing a client-sent one), or a bare values array. Errors are
/// invalid_value with a message for the client.
registry::Result<std::vector<registry::HandleValue>>
record_values_from_json(const boost::json::value& body);

void value_to_json(boost::json::object& out, const registry::ValueView& value);
boost::json::object value_to_json(const registry::HandleValue& value);

/// "2024-11-22T10:00:00Z"
std::string iso8601(std::uint32_t unix_seconds);
void append_iso8601(std::string& out, std::uint32_t unix_seconds);

/// Appends `s` as a JSON string exactly as boost::json::serialize writes it ('"', '\\' and
/// control characters escaped, lower-case \u00XX; everything else verbatim).
void append_json_string(std::string& out, std::string_view s);

/// Appends the value's JSON object, byte for byte what json::serialize(value_to_json(v)) gives,
/// without building a json::object.
void append_value_json(std::string& out, const registry::ValueView& value);

/// HS_ADMIN value bytes: permissions u16, handle (u32 length + bytes), index u32.
std::string encode_admin(std::string_view handle, std::int32_t index, std::uint16_t permissions);

} // namespace idnode::codec
