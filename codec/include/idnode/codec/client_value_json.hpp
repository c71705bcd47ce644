// The JSON form of a value as a client holds it: the SDK's Value (bytes plus the format the node
// showed them in; an "admin" value's data is the JSON text of {"handle","index","permissions"}).
// One writer for the SDK (what it sends: record bodies and bulk lines) and idctl (what it prints
// with --json). No registry types: the SDK links this without the registry.
#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <string_view>

namespace idnode::codec {

/// A client-side value, as views (the SDK's sdk::Value and idctl hold one).
struct ClientValue {
    std::int32_t index = 0;
    std::string_view type;
    std::string_view data;
    std::string_view format; ///< "admin" sends `data` as the admin object; anything else is data
    std::int32_t ttl = 86400;
    std::string_view timestamp;   ///< written only when non-empty and asked for
    std::string_view permissions; ///< written only when non-empty
};

/// {"index","type","data":{"format","value"},"ttl"[,"timestamp"][,"permissions"]} in that order.
/// data: format "admin" gives the admin object (the text as a string if it is not JSON); other
/// bytes are "string" when they are text (valid UTF-8 without NUL) and "base64" otherwise — the
/// node's own rule, so a value read from the node is written back as it was shown.
boost::json::object client_value_to_json(const ClientValue& v, bool with_timestamp);

} // namespace idnode::codec
