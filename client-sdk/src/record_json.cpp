// The SDK's record model as JSON: Record::to_json / from_json and the bodies and answers of the
// record calls. A value's JSON form is the codec's (idnode/codec/client_value_json.hpp), the one
// idctl prints too.
#include "client_impl.hpp"

#include "idnode/codec/base64.hpp"
#include "idnode/codec/client_value_json.hpp"

#include <boost/json.hpp>

namespace idnode::sdk {

namespace json = boost::json;
using namespace detail;

namespace detail {

json::object record_json(const Record& r, bool with_handle) {
    json::object o;
    if (with_handle)
        o["handle"] = r.handle;
    if (!r.template_version.empty())
        o["templateVersion"] = r.template_version;
    json::array values;
    for (const auto& v : r.values) {
        if (!r.template_version.empty() && v.index == 1001)
            continue; // the server derives index 1001 from templateVersion
        values.push_back(
            codec::client_value_to_json(codec::ClientValue{v.index, v.type, v.data, v.format, v.ttl,
                                                           v.timestamp, v.permissions},
                                        false));
    }
    o["values"] = std::move(values);
    return o;
}

namespace {

Result<Value> value_from(const json::value& jv, const std::string& where) {
    auto bad = [&](const std::string& what) {
        return make_error(ErrorKind::invalid_argument, where + ": " + what);
    };
    const auto* o = jv.if_object();
    if (o == nullptr)
        return bad("must be an object");
    Value v;
    const auto* index = o->if_contains("index");
    if (index == nullptr || !(index->is_int64() || index->is_uint64()))
        return bad("index must be an integer");
    v.index = int_of(index);
    const auto* type = o->if_contains("type");
    if (type == nullptr || !type->is_string())
        return bad("type must be a string");
    v.type = std::string(type->get_string());
    const auto* data = o->if_contains("data");
    if (data == nullptr)
        return bad("data is missing");
    if (data->is_string()) {
        v.data = std::string(data->get_string());
    } else if (const auto* d = data->if_object()) {
        const auto* f = d->if_contains("format");
        v.format = f != nullptr && f->is_string() ? std::string(f->get_string()) : "string";
        const auto* value = d->if_contains("value");
        if (value == nullptr)
            return bad("data.value is missing");
        if (v.format == "admin") {
            v.data = json::serialize(*value);
        } else if (!value->is_string()) {
            return bad("data.value must be a string");
        } else if (v.format == "base64") {
            if (!codec::base64_decode(value->get_string(), v.data))
                return bad("data.value is not base64");
        } else {
            v.data = std::string(value->get_string());
        }
    } else {
        return bad("data must be a string or {format,value}");
    }
    if (const auto* ttl = o->if_contains("ttl");
        ttl != nullptr && (ttl->is_int64() || ttl->is_uint64()))
        v.ttl = int_of(ttl);
    if (const auto* ts = o->if_contains("timestamp"); ts != nullptr) {
        v.timestamp = ts->is_string() ? std::string(ts->get_string()) : json::serialize(*ts);
    }
    if (const auto* p = o->if_contains("permissions"); p != nullptr && p->is_string())
        v.permissions = std::string(p->get_string());
    return v;
}

} // namespace

Result<Record> record_from(const json::value& jv, std::string_view handle) {
    Record r;
    r.handle = std::string(handle);
    const json::array* values = jv.if_array();
    if (const auto* o = jv.if_object()) {
        if (const auto* h = o->if_contains("handle"); h != nullptr && h->is_string())
            r.handle = std::string(h->get_string());
        r.response_code = o->contains("responseCode") ? int_of(o->if_contains("responseCode")) : 1;
        if (const auto* t = o->if_contains("templateVersion"); t != nullptr && t->is_string())
            r.template_version = std::string(t->get_string());
        const auto* vs = o->if_contains("values");
        values = vs != nullptr ? vs->if_array() : nullptr;
        if (vs != nullptr && values == nullptr)
            return make_error(ErrorKind::invalid_argument, "\"values\" must be an array");
        if (vs == nullptr && r.response_code == 1)
            return make_error(ErrorKind::invalid_argument, "record needs \"values\"");
    } else if (values == nullptr) {
        return make_error(ErrorKind::invalid_argument, "a record is a JSON object or array");
    }
    if (values != nullptr) {
        for (std::size_t i = 0; i < values->size(); ++i) {
            auto v = value_from((*values)[i], "values[" + std::to_string(i) + "]");
            if (!v)
                return v.error();
            if (v->index == 1001 && r.template_version.empty())
                r.template_version = v->data;
            r.values.push_back(std::move(v).value());
        }
    }
    return r;
}

} // namespace detail

Value Value::text(std::int32_t index, std::string type, std::string data) {
    Value v;
    v.index = index;
    v.type = std::move(type);
    v.data = std::move(data);
    return v;
}

std::string Record::to_json() const {
    return json::serialize(record_json(*this, true));
}

Result<Record> Record::from_json(std::string_view text, std::string_view handle) {
    error_code ec;
    json::value v = json::parse(text, ec);
    if (ec)
        return make_error(ErrorKind::invalid_argument, "record is not JSON: " + ec.message());
    return record_from(v, handle);
}

} // namespace idnode::sdk
