#include "idnode/codec/template_json.hpp"

#include "idnode/codec/values_json.hpp"

#include <boost/json.hpp>

#include <charconv>

namespace idnode::codec {
namespace json = boost::json;
using namespace registry;

namespace {

Error invalid(std::string message) {
    return Error{Errc::invalid_value, std::move(message)};
}

/// An integer member given as a number or a decimal string; nullopt when absent.
bool integer_of(const json::value& v, std::int64_t lo, std::int64_t hi, std::int64_t& out) {
    if (v.is_int64()) {
        out = v.get_int64();
    } else if (v.is_uint64()) {
        if (v.get_uint64() > static_cast<std::uint64_t>(hi))
            return false;
        out = static_cast<std::int64_t>(v.get_uint64());
    } else if (v.is_string()) {
        const auto& s = v.get_string();
        const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
        if (s.empty() || ec != std::errc{} || p != s.data() + s.size())
            return false;
    } else {
        return false;
    }
    return out >= lo && out <= hi;
}

bool bool_of(const json::value& v, bool& out) {
    if (v.is_bool()) {
        out = v.get_bool();
        return true;
    }
    std::int64_t n;
    if (integer_of(v, 0, 1, n)) {
        out = n == 1;
        return true;
    }
    return false;
}

bool string_of(const json::object& o, const char* name, std::string& out, std::string& error) {
    const auto* v = o.if_contains(name);
    if (v == nullptr || v->is_null())
        return true;
    if (!v->is_string()) {
        error = std::string(name) + " must be a string";
        return false;
    }
    out = v->get_string();
    return true;
}

} // namespace

Result<Template> template_from_json(const json::value& value) {
    const auto* o = value.if_object();
    if (o == nullptr)
        return invalid("a template must be a JSON object");
    Template t;
    std::string error;
    if (!string_of(*o, "prefix", t.prefix, error) || !string_of(*o, "version", t.version, error) ||
        !string_of(*o, "industryCategory", t.industry_category, error) ||
        !string_of(*o, "industrySpecific", t.industry_specific, error) ||
        !string_of(*o, "industryTrade", t.industry_trade, error) ||
        !string_of(*o, "industrySubclass", t.industry_subclass, error) ||
        !string_of(*o, "description", t.description, error)) {
        return invalid(error);
    }
    if (const auto* v = o->if_contains("type"); v && !v->is_null()) {
        std::int64_t n;
        if (!integer_of(*v, 1, 2, n))
            return invalid("type must be 1 (active identifier carrier) or 2 (other)");
        t.type = static_cast<std::uint8_t>(n);
    }
    const auto* items = o->if_contains("items");
    if (items == nullptr || !items->is_array())
        return invalid("items must be an array");
    std::size_t n = 0;
    for (const auto& iv : items->get_array()) {
        const std::string where = "items[" + std::to_string(n++) + "]";
        const auto* io = iv.if_object();
        if (io == nullptr)
            return invalid(where + " must be an object");
        TemplateItem item;
        if (!string_of(*io, "name", item.name, error) ||
            !string_of(*io, "idType", item.id_type, error))
            return invalid(where + "." + error);
        std::int64_t num;
        const auto* idx = io->if_contains("idIndex");
        if (idx == nullptr || !integer_of(*idx, 1, INT32_MAX, num))
            return invalid(where + ".idIndex must be an integer >= 2000");
        item.id_index = static_cast<std::int32_t>(num);
        if (const auto* v = io->if_contains("required");
            v && !v->is_null() && !bool_of(*v, item.required))
            return invalid(where + ".required must be true/false or 1/0");
        if (const auto* v = io->if_contains("state"); v && !v->is_null()) {
            if (!integer_of(*v, 0, 1, num))
                return invalid(where + ".state must be 1 (enabled) or 0 (disabled)");
            item.enabled = num == 1;
        }
        if (const auto* v = io->if_contains("public");
            v && !v->is_null() && !bool_of(*v, item.is_public))
            return invalid(where + ".public must be true or false");
        if (const auto* md = io->if_contains("metadata"); md && !md->is_null()) {
            const auto* mo = md->if_object();
            if (mo == nullptr)
                return invalid(where + ".metadata must be an object");
            if (const auto* ty = mo->if_contains("type"); ty && !ty->is_null()) {
                auto parsed = ty->is_string() ? parse_field_type(ty->get_string()) : std::nullopt;
                if (!parsed)
                    return invalid(where +
                                   ".metadata.type must be one of string, integer, number, date, "
                                   "datetime, url, enum, handle");
                item.type = *parsed;
            }
            if (const auto* v = mo->if_contains("minLength"); v && !v->is_null()) {
                if (!integer_of(*v, 0, kMaxFieldLength, num))
                    return invalid(where + ".metadata.minLength must be 0 to 65536");
                item.min_length = static_cast<std::uint32_t>(num);
            }
            if (const auto* v = mo->if_contains("maxLength"); v && !v->is_null()) {
                if (!integer_of(*v, 0, kMaxFieldLength, num))
                    return invalid(where + ".metadata.maxLength must be 0 to 65536");
                item.max_length = static_cast<std::uint32_t>(num);
            }
            if (const auto* v = mo->if_contains("values"); v && !v->is_null()) {
                if (!v->is_array())
                    return invalid(where + ".metadata.values must be an array of strings");
                for (const auto& e : v->get_array()) {
                    if (!e.is_string())
                        return invalid(where + ".metadata.values must be an array of strings");
                    item.values.emplace_back(e.get_string());
                }
            }
        }
        t.items.push_back(std::move(item));
    }
    return t;
}

json::object template_to_json(const Template& t) {
    json::array items;
    for (const auto& i : t.items) {
        json::object md{{"type", field_type_name(i.type)},
                        {"minLength", i.min_length},
                        {"maxLength", i.max_length}};
        if (!i.values.empty()) {
            json::array values;
            for (const auto& v : i.values)
                values.emplace_back(v);
            md["values"] = std::move(values);
        }
        items.push_back(json::object{{"name", i.name},
                                     {"idType", i.id_type},
                                     {"idIndex", i.id_index},
                                     {"required", i.required},
                                     {"state", i.enabled ? 1 : 0},
                                     {"public", i.is_public},
                                     {"metadata", std::move(md)}});
    }
    return json::object{{"prefix", t.prefix},
                        {"version", t.version},
                        {"industryCategory", t.industry_category},
                        {"industrySpecific", t.industry_specific},
                        {"industryTrade", t.industry_trade},
                        {"industrySubclass", t.industry_subclass},
                        {"type", t.type},
                        {"description", t.description},
                        {"items", std::move(items)},
                        {"created", iso8601(static_cast<std::uint32_t>(t.created))},
                        {"updated", iso8601(static_cast<std::uint32_t>(t.updated))}};
}

} // namespace idnode::codec
