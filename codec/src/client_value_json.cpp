#include "idnode/codec/client_value_json.hpp"

#include "idnode/codec/base64.hpp"
#include "idnode/codec/utf8.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace idnode::codec {
namespace json = boost::json;

json::object client_value_to_json(const ClientValue& v, bool with_timestamp) {
    json::object o{{"index", v.index}, {"type", v.type}};
    if (v.format == "admin") {
        boost::system::error_code ec;
        json::value admin = json::parse(v.data, ec);
        o["data"] = json::object{{"format", "admin"}, {"value", ec ? json::value(v.data) : admin}};
    } else if (is_text(v.data)) {
        o["data"] = json::object{{"format", "string"}, {"value", v.data}};
    } else {
        o["data"] = json::object{{"format", "base64"}, {"value", base64_encode(v.data)}};
    }
    o["ttl"] = v.ttl;
    if (with_timestamp && !v.timestamp.empty())
        o["timestamp"] = v.timestamp;
    if (!v.permissions.empty())
        o["permissions"] = v.permissions;
    return o;
}

} // namespace idnode::codec
