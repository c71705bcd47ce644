#include "idnode/codec/values_json.hpp"

#include "idnode/codec/base64.hpp"
#include "idnode/codec/utf8.hpp"
#include "idnode/registry/identifier.hpp"

#include <boost/json.hpp>

#include <ctime>
#include <optional>

namespace idnode::codec {
namespace json = boost::json;
using registry::Errc;
using registry::Error;

registry::Result<json::value> parse_json_body(std::string_view body, json::storage_ptr storage) {
    boost::system::error_code ec;
    json::value v = json::parse(body, ec, std::move(storage));
    if (ec)
        return Error{Errc::invalid_value, "request body is not valid JSON: " + ec.message()};
    return v;
}

namespace {

Error invalid(std::string message) {
    return Error{Errc::invalid_value, std::move(message)};
}

std::uint32_t load32(const char* p) {
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    return (std::uint32_t{u[0]} << 24) | (std::uint32_t{u[1]} << 16) | (std::uint32_t{u[2]} << 8) |
           u[3];
}

/// Decodes HS_ADMIN bytes; false when they are not an admin record that the "admin" data format
/// can carry exactly (12 permission bits, index 0..INT32_MAX, a text handle). Such bytes are
/// shown as base64 instead, so that a client that writes back what it read stores the same
/// bytes (the "admin" form would drop high permission bits or give a negative index).
bool decode_admin(std::string_view bytes, std::string& handle, std::int32_t& index,
                  std::uint16_t& perms) {
    if (bytes.size() < 10) {
        return false;
    }
    perms = static_cast<std::uint16_t>((static_cast<unsigned char>(bytes[0]) << 8) |
                                       static_cast<unsigned char>(bytes[1]));
    const std::uint32_t len = load32(bytes.data() + 2);
    if (len > bytes.size() - 10 || 6 + len + 4 != bytes.size()) {
        return false;
    }
    const std::uint32_t raw_index = load32(bytes.data() + 6 + len);
    if (perms > 0x0FFF || raw_index > static_cast<std::uint32_t>(INT32_MAX)) {
        return false;
    }
    handle.assign(bytes.substr(6, len));
    index = static_cast<std::int32_t>(raw_index);
    return is_text(handle);
}

// 12 admin permission bits, leftmost character = most significant of the 12 (HANDLE.NET order:
// add_handle, delete_handle, add_na, delete_na, modify_value, remove_value, add_value,
// read_value, modify_admin, remove_admin, add_admin, list_handles).
std::string admin_perms_string(std::uint16_t perms) {
    std::string s(12, '0');
    for (int i = 0; i < 12; ++i) {
        s[static_cast<std::size_t>(i)] = (perms & (1u << (11 - i))) ? '1' : '0';
    }
    return s;
}

bool parse_admin_perms(std::string_view text, std::uint16_t& perms) {
    if (text.size() != 12 || text.find_first_not_of("01") != std::string_view::npos) {
        return false;
    }
    perms = 0;
    for (int i = 0; i < 12; ++i) {
        if (text[static_cast<std::size_t>(i)] == '1') {
            perms = static_cast<std::uint16_t>(perms | (1u << (11 - i)));
        }
    }
    return true;
}

bool int32_of(const json::value& v, std::int64_t lo, std::int64_t hi, std::int32_t& out) {
    std::int64_t n;
    if (v.is_int64()) {
        n = v.get_int64();
    } else if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(hi)) {
        n = static_cast<std::int64_t>(v.get_uint64());
    } else if (v.is_string()) { // some clients send numbers as strings
        const auto& s = v.get_string();
        char* end = nullptr;
        errno = 0;
        n = std::strtoll(s.c_str(), &end, 10);
        if (s.empty() || errno != 0 || end != s.c_str() + s.size()) {
            return false;
        }
    } else {
        return false;
    }
    if (n < lo || n > hi) {
        return false;
    }
    out = static_cast<std::int32_t>(n);
    return true;
}

} // namespace

void append_iso8601(std::string& out, std::uint32_t unix_seconds) {
    // Proleptic Gregorian calendar from days since 1970-01-01 (H. Hinnant's civil_from_days):
    // no gmtime_r/strftime, whose time-zone lock the I/O threads would share.
    const std::int64_t z = static_cast<std::int64_t>(unix_seconds / 86400) + 719468;
    const std::int64_t era = z / 146097;
    const std::int64_t doe = z - era * 146097;
    const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const std::int64_t mp = (5 * doy + 2) / 153;
    const std::int64_t day = doy - (153 * mp + 2) / 5 + 1;
    const std::int64_t month = mp < 10 ? mp + 3 : mp - 9;
    const std::int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
    const std::uint32_t sod = unix_seconds % 86400;
    char buf[20];
    auto two = [&](int at, std::int64_t v) {
        buf[at] = static_cast<char>('0' + v / 10);
        buf[at + 1] = static_cast<char>('0' + v % 10);
    };
    two(0, year / 100);
    two(2, year % 100);
    buf[4] = '-';
    two(5, month);
    buf[7] = '-';
    two(8, day);
    buf[10] = 'T';
    two(11, sod / 3600);
    buf[13] = ':';
    two(14, sod / 60 % 60);
    buf[16] = ':';
    two(17, sod % 60);
    buf[19] = 'Z';
    out.append(buf, sizeof buf);
}

std::string iso8601(std::uint32_t unix_seconds) {
    std::string out;
    append_iso8601(out, unix_seconds);
    return out;
}

void append_json_string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    std::size_t run = 0; // start of the pending unescaped run
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        out.append(s.data() + run, i - run);
        run = i + 1;
        switch (c) {
        case '"':
            out.append("\\\"", 2);
            break;
        case '\\':
            out.append("\\\\", 2);
            break;
        case '\b':
            out.append("\\b", 2);
            break;
        case '\f':
            out.append("\\f", 2);
            break;
        case '\n':
            out.append("\\n", 2);
            break;
        case '\r':
            out.append("\\r", 2);
            break;
        case '\t':
            out.append("\\t", 2);
            break;
        default: {
            const char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            out.append(u, 6);
        }
        }
    }
    out.append(s.data() + run, s.size() - run);
    out.push_back('"');
}

std::string encode_admin(std::string_view handle, std::int32_t index, std::uint16_t permissions) {
    std::string out;
    out.push_back(static_cast<char>(permissions >> 8));
    out.push_back(static_cast<char>(permissions & 0xFF));
    const auto len = static_cast<std::uint32_t>(handle.size());
    for (int s = 24; s >= 0; s -= 8)
        out.push_back(static_cast<char>(len >> s));
    out.append(handle);
    const auto idx = static_cast<std::uint32_t>(index);
    for (int s = 24; s >= 0; s -= 8)
        out.push_back(static_cast<char>(idx >> s));
    return out;
}

registry::Result<registry::HandleValue> value_from_json(const json::value& json,
                                                        const std::string& where) {
    const json::object* obj = json.if_object();
    if (obj == nullptr) {
        return invalid(where + " must be an object");
    }
    registry::HandleValue v;
    const json::value* index = obj->if_contains("index");
    if (index == nullptr || !int32_of(*index, 1, INT32_MAX, v.index)) {
        return invalid(where + ".index must be an integer from 1 to 2147483647");
    }
    const json::value* type = obj->if_contains("type");
    if (type == nullptr || !type->is_string()) {
        return invalid(where + ".type must be a string");
    }
    v.type = std::string(type->get_string());
    const json::value* data = obj->if_contains("data");
    if (data == nullptr) {
        return invalid(where + ".data is missing");
    }
    if (data->is_string()) {
        v.data = std::string(data->get_string());
    } else if (const json::object* d = data->if_object()) {
        std::string format = "string";
        if (const json::value* f = d->if_contains("format")) {
            if (!f->is_string()) {
                return invalid(where + ".data.format must be a string");
            }
            format = std::string(f->get_string());
        }
        const json::value* value = d->if_contains("value");
        if (value == nullptr) {
            return invalid(where + ".data.value is missing");
        }
        if (format == "string") {
            if (!value->is_string()) {
                return invalid(where + ".data.value must be a string for format \"string\"");
            }
            v.data = std::string(value->get_string());
        } else if (format == "base64") {
            if (!value->is_string() || !base64_decode(value->get_string(), v.data)) {
                return invalid(where + ".data.value is not valid base64");
            }
        } else if (format == "hex") {
            const std::string_view hex =
                value->is_string() ? std::string_view(value->get_string()) : "x";
            if (hex.size() % 2 != 0 ||
                hex.find_first_not_of("0123456789abcdefABCDEF") != std::string_view::npos) {
                return invalid(where + ".data.value is not valid hex");
            }
            for (std::size_t i = 0; i < hex.size(); i += 2) {
                v.data.push_back(
                    static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
            }
        } else if (format == "admin") {
            const json::object* a = value->if_object();
            const json::value* h = a ? a->if_contains("handle") : nullptr;
            const json::value* i = a ? a->if_contains("index") : nullptr;
            const json::value* p = a ? a->if_contains("permissions") : nullptr;
            std::int32_t admin_index = 0;
            std::uint16_t perms = 0;
            if (h == nullptr || !h->is_string() || i == nullptr ||
                !int32_of(*i, 0, INT32_MAX, admin_index) || p == nullptr || !p->is_string() ||
                !parse_admin_perms(p->get_string(), perms)) {
                return invalid(
                    where +
                    ".data.value must be {\"handle\":…,\"index\":…,\"permissions\":\"<12 bits>\"}");
            }
            v.data = encode_admin(h->get_string(), admin_index, perms);
        } else {
            return invalid(where + ".data.format \"" +
                           std::string(registry::utf8_prefix(format, 32)) +
                           "\" is not one of string, base64, hex, admin");
        }
    } else {
        return invalid(where + ".data must be a string or {\"format\",\"value\"}");
    }
    if (const json::value* ttl = obj->if_contains("ttl")) {
        if (!int32_of(*ttl, 0, INT32_MAX, v.ttl)) {
            return invalid(where + ".ttl must be a non-negative integer");
        }
    }
    if (const json::value* perms = obj->if_contains("permissions")) {
        if (!perms->is_string()) {
            return invalid(where + ".permissions must be a string like \"1110\"");
        }
        auto p = registry::Permissions::parse(perms->get_string());
        if (!p) {
            return invalid(where + "." + p.error().message);
        }
        v.permissions = *p;
    }
    return v;
}

registry::Result<std::vector<registry::HandleValue>> values_from_json(const json::value& json) {
    const json::array* arr = json.if_array();
    if (arr == nullptr) {
        return invalid("values must be an array");
    }
    std::vector<registry::HandleValue> out;
    out.reserve(arr->size());
    for (std::size_t i = 0; i < arr->size(); ++i) {
        auto v = value_from_json((*arr)[i], "values[" + std::to_string(i) + "]");
        if (!v) {
            return v.error();
        }
        out.push_back(std::move(v).value());
    }
    return out;
}

registry::Result<std::vector<registry::HandleValue>>
record_values_from_json(const json::value& body) {
    const json::value* values_json = &body;
    std::optional<std::string> template_version;
    if (const auto* obj = body.if_object()) {
        values_json = obj->if_contains("values");
        if (values_json == nullptr) {
            return invalid("body needs \"values\"");
        }
        if (const auto* t = obj->if_contains("templateVersion")) {
            if (!t->is_string() || t->get_string().empty()) {
                return invalid("templateVersion must be a non-empty string");
            }
            template_version = std::string(t->get_string());
        }
    }
    auto values = values_from_json(*values_json);
    if (!values) {
        return values;
    }
    if (template_version) {
        std::erase_if(*values, [](const registry::HandleValue& v) {
            return v.index == registry::kIndexTemplate;
        });
        registry::HandleValue t;
        t.index = registry::kIndexTemplate;
        t.type = "TEMPLATE";
        t.data = *template_version;
        values->push_back(std::move(t));
    }
    return values;
}

namespace {

template <class V>
void fill(json::object& out, const V& v, std::string_view type, std::string_view data) {
    out["index"] = v.index;
    out["type"] = type;
    json::object d;
    std::string admin_handle;
    std::int32_t admin_index = 0;
    std::uint16_t admin_perms = 0;
    if (registry::equals_folded(type, "HS_ADMIN") &&
        decode_admin(data, admin_handle, admin_index, admin_perms)) {
        d["format"] = "admin";
        d["value"] = json::object{{"handle", admin_handle},
                                  {"index", admin_index},
                                  {"permissions", admin_perms_string(admin_perms)}};
    } else if (is_text(data)) {
        d["format"] = "string";
        d["value"] = data;
    } else {
        d["format"] = "base64";
        d["value"] = base64_encode(data);
    }
    out["data"] = std::move(d);
    out["ttl"] = v.ttl;
    out["timestamp"] = iso8601(v.timestamp);
    if (v.permissions != registry::Permissions{}) {
        out["permissions"] = v.permissions.to_string();
    }
}
} // namespace

void value_to_json(json::object& out, const registry::ValueView& value) {
    fill(out, value, value.type, value.data);
}

void append_value_json(std::string& out, const registry::ValueView& v) {
    std::string admin_handle;
    std::int32_t admin_index = 0;
    std::uint16_t admin_perms = 0;
    if (registry::equals_folded(v.type, "HS_ADMIN") &&
        decode_admin(v.data, admin_handle, admin_index, admin_perms)) {
        json::object o; // rare: the general path
        fill(o, v, v.type, v.data);
        out += json::serialize(o);
        return;
    }
    out += "{\"index\":";
    out += std::to_string(v.index);
    out += ",\"type\":";
    append_json_string(out, v.type);
    if (is_text(v.data)) {
        out += ",\"data\":{\"format\":\"string\",\"value\":";
        append_json_string(out, v.data);
    } else {
        out += ",\"data\":{\"format\":\"base64\",\"value\":\"";
        out += base64_encode(v.data);
        out += '"';
    }
    out += "},\"ttl\":";
    out += std::to_string(v.ttl);
    out += ",\"timestamp\":\"";
    append_iso8601(out, v.timestamp);
    out += '"';
    if (v.permissions != registry::Permissions{}) {
        out += ",\"permissions\":\"";
        out += v.permissions.to_string();
        out += '"';
    }
    out += '}';
}

json::object value_to_json(const registry::HandleValue& value) {
    json::object out;
    fill(out, value, value.type, value.data);
    return out;
}

} // namespace idnode::codec
