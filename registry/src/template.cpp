#include "idnode/registry/template.hpp"
#include "enum_names.hpp"

#include "idnode/registry/identifier.hpp"
#include "wire.hpp"

#include <algorithm>
#include <charconv>
#include <set>

namespace idnode::registry {
namespace {

constexpr std::uint8_t kTemplateFormat = 1;

Error invalid(std::string message) {
    return Error{Errc::invalid_value, std::move(message)};
}

bool is_digits(std::string_view s) noexcept {
    return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

bool has_control(std::string_view s) noexcept {
    return std::any_of(s.begin(), s.end(),
                       [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

std::string item_label(const TemplateItem& item) {
    return "item " + std::to_string(item.id_index) + " (" + item.id_type + ")";
}

bool leap(int y) noexcept {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

bool parse_fixed(std::string_view s, std::size_t pos, std::size_t n, int& out) {
    if (pos + n > s.size() || !is_digits(s.substr(pos, n)))
        return false;
    std::from_chars(s.data() + pos, s.data() + pos + n, out);
    return true;
}

bool valid_date(std::string_view s) {
    int y, m, d;
    if (s.size() != 10 || s[4] != '-' || s[7] != '-' || !parse_fixed(s, 0, 4, y) ||
        !parse_fixed(s, 5, 2, m) || !parse_fixed(s, 8, 2, d))
        return false;
    static constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1)
        return false;
    return d <= days[m - 1] + (m == 2 && leap(y) ? 1 : 0);
}

bool valid_datetime(std::string_view s) {
    // RFC 3339: full-date "T" HH:MM:SS [.frac] ("Z" | ("+"|"-") HH:MM); T and Z case-insensitive.
    if (s.size() < 20 || !valid_date(s.substr(0, 10)) || (s[10] != 'T' && s[10] != 't'))
        return false;
    int hh, mm, ss;
    if (!parse_fixed(s, 11, 2, hh) || s[13] != ':' || !parse_fixed(s, 14, 2, mm) || s[16] != ':' ||
        !parse_fixed(s, 17, 2, ss) || hh > 23 || mm > 59 || ss > 60)
        return false;
    std::size_t pos = 19;
    if (s[pos] == '.') {
        const std::size_t start = ++pos;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9')
            ++pos;
        if (pos == start)
            return false;
    }
    if (pos >= s.size())
        return false;
    if ((s[pos] == 'Z' || s[pos] == 'z') && pos + 1 == s.size())
        return true;
    int oh, om;
    return (s[pos] == '+' || s[pos] == '-') && pos + 6 == s.size() &&
           parse_fixed(s, pos + 1, 2, oh) && s[pos + 3] == ':' && parse_fixed(s, pos + 4, 2, om) &&
           oh <= 23 && om <= 59;
}

bool valid_integer(std::string_view s) {
    std::int64_t v;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return !s.empty() && ec == std::errc{} && p == s.data() + s.size();
}

bool valid_number(std::string_view s) {
    // JSON number grammar: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?
    std::size_t i = 0;
    auto digits = [&] {
        const std::size_t start = i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9')
            ++i;
        return i > start;
    };
    if (i < s.size() && s[i] == '-')
        ++i;
    if (i < s.size() && s[i] == '0')
        ++i;
    else if (!digits())
        return false;
    if (i < s.size() && s[i] == '.') {
        ++i;
        if (!digits())
            return false;
    }
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        if (i < s.size() && (s[i] == '+' || s[i] == '-'))
            ++i;
        if (!digits())
            return false;
    }
    return i == s.size();
}

bool valid_url(std::string_view s) {
    const auto colon = s.find("://");
    if (colon == std::string_view::npos || colon == 0 || colon + 3 >= s.size())
        return false;
    const auto scheme = s.substr(0, colon);
    if (!((scheme[0] >= 'a' && scheme[0] <= 'z') || (scheme[0] >= 'A' && scheme[0] <= 'Z')) ||
        scheme.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-") !=
            std::string_view::npos)
        return false;
    return std::none_of(s.begin(), s.end(),
                        [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; });
}

} // namespace

const char* field_type_name(FieldType t) noexcept {
    static constexpr const char* kNames[] = {"string",   "integer", "number", "date",
                                             "datetime", "url",     "enum",   "handle"};
    static_assert(std::size(kNames) == static_cast<std::size_t>(FieldType::handle));
    return detail::enum_name(t, kNames, 1, "string");
}

std::optional<FieldType> parse_field_type(std::string_view text) noexcept {
    for (auto t :
         {FieldType::string, FieldType::integer, FieldType::number, FieldType::date,
          FieldType::datetime, FieldType::url, FieldType::enumeration, FieldType::handle}) {
        if (text == field_type_name(t))
            return t;
    }
    return std::nullopt;
}

const TemplateItem* Template::item(std::int32_t index) const noexcept {
    for (const auto& i : items) {
        if (i.id_index == index)
            return &i;
    }
    return nullptr;
}

Result<std::string> template_key(std::string_view prefix, std::string_view version) {
    auto folded = parse_prefix(prefix);
    if (!folded)
        return Error{folded.error().code, "prefix: " + folded.error().message};
    if (version.empty() || version.size() > 64 ||
        version.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
            std::string_view::npos) {
        return invalid("version must be 1 to 64 characters of letters, digits, '.', '-', '_'");
    }
    return *folded + "/" + std::string(version);
}

Status validate_template(const Template& t) {
    if (auto key = template_key(t.prefix, t.version); !key)
        return key.error();
    if (t.type != 1 && t.type != 2)
        return invalid("type must be 1 (active identifier carrier) or 2 (other)");
    // GB/T 4754: section letter, then 2-, 3- and 4-digit codes each refining the previous one.
    const auto& c = t.industry_category;
    if (c.size() != 1 || c[0] < 'A' || c[0] > 'T')
        return invalid("industryCategory must be a GB/T 4754 section letter A to T");
    if (!t.industry_specific.empty() &&
        (t.industry_specific.size() != 2 || !is_digits(t.industry_specific)))
        return invalid("industrySpecific must be a two-digit GB/T 4754 division code");
    if (!t.industry_trade.empty() &&
        (t.industry_trade.size() != 3 || !is_digits(t.industry_trade) ||
         t.industry_trade.compare(0, 2, t.industry_specific) != 0))
        return invalid("industryTrade must be three digits starting with industrySpecific");
    if (!t.industry_subclass.empty() &&
        (t.industry_subclass.size() != 4 || !is_digits(t.industry_subclass) ||
         t.industry_subclass.compare(0, 3, t.industry_trade) != 0))
        return invalid("industrySubclass must be four digits starting with industryTrade");
    if (t.description.size() > 4096 || find_invalid_utf8(t.description) != std::string::npos)
        return invalid("description must be UTF-8, at most 4096 bytes");
    if (t.items.empty() || t.items.size() > 2000)
        return invalid("a template needs 1 to 2000 items");
    std::set<std::int32_t> indices;
    std::set<std::string> types;
    for (const auto& item : t.items) {
        const std::string label = "item " + std::to_string(item.id_index);
        if (item.id_index < kFirstTemplateIndex)
            return invalid(label + ": idIndex must be >= 2000");
        if (!indices.insert(item.id_index).second)
            return invalid(label + ": idIndex is used twice");
        if (item.name.empty() || item.name.size() > 256 ||
            find_invalid_utf8(item.name) != std::string::npos || has_control(item.name))
            return invalid(label + ": name must be 1 to 256 bytes of UTF-8 text");
        if (item.id_type.empty() || item.id_type.size() > kMaxTypeBytes ||
            find_invalid_utf8(item.id_type) != std::string::npos || has_control(item.id_type))
            return invalid(label + ": idType must be 1 to 128 bytes of UTF-8 text");
        if (!types.insert(fold_case(item.id_type)).second)
            return invalid(label + ": idType " + item.id_type + " is used twice");
        if (item.min_length > item.max_length || item.max_length > kMaxFieldLength)
            return invalid(label + ": metadata needs minLength <= maxLength <= 65536");
        if (item.type == FieldType::enumeration) {
            if (item.values.empty() || item.values.size() > 256)
                return invalid(label + ": an enum needs 1 to 256 values");
            std::set<std::string> seen;
            for (const auto& v : item.values) {
                if (v.empty() || find_invalid_utf8(v) != std::string::npos ||
                    !seen.insert(v).second)
                    return invalid(label + ": enum values must be distinct non-empty UTF-8");
            }
        } else if (!item.values.empty()) {
            return invalid(label + ": metadata.values is only for type enum");
        }
    }
    return {};
}

Status check_template_update(const Template& stored, const Template& updated) {
    if (!equals_folded(stored.prefix, updated.prefix) || stored.version != updated.version)
        return invalid("prefix and version of a template cannot change");
    for (const auto& old : stored.items) {
        const TemplateItem* now = updated.item(old.id_index);
        if (now == nullptr)
            return invalid(item_label(old) +
                           " is missing: items are never deleted, disable them with state 0");
        if (now->id_type != old.id_type)
            return invalid(item_label(old) + ": idType cannot change (items are never renumbered)");
        if (now->type != old.type)
            return invalid(item_label(old) + ": metadata.type cannot change");
    }
    return {};
}

// ---- encoding ---------------------------------------------------------------------------------

std::string encode_template(const Template& t) {
    std::string out;
    wire::put_u8(out, kTemplateFormat);
    wire::put_bytes(out, t.prefix);
    wire::put_bytes(out, t.version);
    wire::put_bytes(out, t.industry_category);
    wire::put_bytes(out, t.industry_specific);
    wire::put_bytes(out, t.industry_trade);
    wire::put_bytes(out, t.industry_subclass);
    wire::put_u8(out, t.type);
    wire::put_bytes(out, t.description);
    wire::put_u64(out, static_cast<std::uint64_t>(t.created));
    wire::put_u64(out, static_cast<std::uint64_t>(t.updated));
    wire::put_u32(out, static_cast<std::uint32_t>(t.items.size()));
    for (const auto& i : t.items) {
        wire::put_bytes(out, i.name);
        wire::put_bytes(out, i.id_type);
        wire::put_u32(out, static_cast<std::uint32_t>(i.id_index));
        wire::put_u8(out, static_cast<std::uint8_t>((i.required ? 1 : 0) | (i.enabled ? 2 : 0) |
                                                    (i.is_public ? 4 : 0)));
        wire::put_u8(out, static_cast<std::uint8_t>(i.type));
        wire::put_u32(out, i.min_length);
        wire::put_u32(out, i.max_length);
        wire::put_u32(out, static_cast<std::uint32_t>(i.values.size()));
        for (const auto& v : i.values)
            wire::put_bytes(out, v);
    }
    return out;
}

Result<Template> decode_template(std::string_view bytes) {
    const Error corrupt{Errc::corrupt, "stored template is corrupt"};
    wire::Reader r(bytes);
    Template t;
    std::uint8_t format = 0;
    std::string_view s[8];
    std::uint64_t created = 0, updated = 0;
    std::uint32_t count = 0;
    if (!r.u8(format) || format != kTemplateFormat || !r.bytes(s[0]) || !r.bytes(s[1]) ||
        !r.bytes(s[2]) || !r.bytes(s[3]) || !r.bytes(s[4]) || !r.bytes(s[5]) || !r.u8(t.type) ||
        !r.bytes(s[6]) || !r.u64(created) || !r.u64(updated) || !r.u32(count) ||
        count > r.remaining() / 22) {
        return corrupt;
    }
    t.prefix = s[0];
    t.version = s[1];
    t.industry_category = s[2];
    t.industry_specific = s[3];
    t.industry_trade = s[4];
    t.industry_subclass = s[5];
    t.description = s[6];
    t.created = static_cast<std::int64_t>(created);
    t.updated = static_cast<std::int64_t>(updated);
    t.items.reserve(count);
    for (std::uint32_t n = 0; n < count; ++n) {
        TemplateItem i;
        std::string_view name, type;
        std::uint8_t flags = 0, ftype = 0;
        std::uint32_t nvalues = 0;
        if (!r.bytes(name) || !r.bytes(type) || !r.i32(i.id_index) || !r.u8(flags) ||
            !r.u8(ftype) || ftype < 1 || ftype > 8 || !r.u32(i.min_length) ||
            !r.u32(i.max_length) || !r.u32(nvalues) || nvalues > r.remaining() / 4) {
            return corrupt;
        }
        i.name = name;
        i.id_type = type;
        i.required = (flags & 1) != 0;
        i.enabled = (flags & 2) != 0;
        i.is_public = (flags & 4) != 0;
        i.type = static_cast<FieldType>(ftype);
        for (std::uint32_t k = 0; k < nvalues; ++k) {
            std::string_view v;
            if (!r.bytes(v))
                return corrupt;
            i.values.emplace_back(v);
        }
        t.items.push_back(std::move(i));
    }
    if (r.remaining() != 0)
        return corrupt;
    return t;
}

// ---- validation of records ----------------------------------------------------------------------

std::size_t utf8_length(std::string_view text) noexcept {
    return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }));
}

std::string check_field_type(FieldType type, std::string_view data,
                             std::span<const std::string> enum_values) {
    switch (type) {
    case FieldType::string:
        return {};
    case FieldType::integer:
        return valid_integer(data) ? std::string{} : "an integer";
    case FieldType::number:
        return valid_number(data) ? std::string{} : "a number";
    case FieldType::date:
        return valid_date(data) ? std::string{} : "a date YYYY-MM-DD";
    case FieldType::datetime:
        return valid_datetime(data) ? std::string{} : "an RFC 3339 date-time";
    case FieldType::url:
        return valid_url(data) ? std::string{} : "a URL (scheme://...)";
    case FieldType::handle:
        return parse_handle(data) && data.find('/') != std::string_view::npos
                   ? std::string{}
                   : "an identifier prefix/suffix";
    case FieldType::enumeration: {
        if (std::find(enum_values.begin(), enum_values.end(), data) != enum_values.end())
            return {};
        std::string list;
        for (const auto& v : enum_values)
            list += (list.empty() ? "" : ", ") + v;
        return list;
    }
    }
    return {};
}

std::vector<Violation> validate_record(const Template& t, std::span<const HandleValue> values) {
    std::vector<Violation> out;
    for (const auto& v : values) {
        if (v.index < kFirstTemplateIndex)
            continue;
        const TemplateItem* item = t.item(v.index);
        Violation base{ViolationKind::unknown_index, v.index, {}, {}, v.type, 0, {}};
        if (item == nullptr) {
            out.push_back(std::move(base));
            continue;
        }
        base.id_type = item->id_type;
        base.name = item->name;
        if (!equals_folded(v.type, item->id_type)) {
            base.kind = ViolationKind::type_mismatch;
            out.push_back(std::move(base));
            continue;
        }
        if (!item->enabled) {
            base.kind = ViolationKind::disabled_item;
            out.push_back(std::move(base));
            continue;
        }
        if (find_invalid_utf8(v.data) != std::string::npos) {
            base.kind = ViolationKind::not_utf8;
            out.push_back(std::move(base));
            continue;
        }
        const std::size_t length = utf8_length(v.data);
        if (length < item->min_length || length > item->max_length) {
            base.kind = ViolationKind::length;
            base.length = length;
            base.expectation =
                std::to_string(item->min_length) + "-" + std::to_string(item->max_length);
            out.push_back(std::move(base));
            continue;
        }
        if (auto expected = check_field_type(item->type, v.data, item->values); !expected.empty()) {
            base.kind = item->type == FieldType::enumeration ? ViolationKind::enum_miss
                                                             : ViolationKind::wrong_type;
            base.expectation = std::move(expected);
            out.push_back(std::move(base));
        }
    }
    for (const auto& item : t.items) {
        if (!item.required || !item.enabled)
            continue;
        const bool present = std::any_of(values.begin(), values.end(), [&](const HandleValue& v) {
            return v.index == item.id_index;
        });
        if (!present) {
            out.push_back(Violation{ViolationKind::missing_required,
                                    item.id_index,
                                    item.id_type,
                                    item.name,
                                    {},
                                    0,
                                    {}});
        }
    }
    std::stable_sort(out.begin(), out.end(),
                     [](const Violation& a, const Violation& b) { return a.index < b.index; });
    return out;
}

std::string Violation::english() const {
    const std::string idx = "index " + std::to_string(index);
    const std::string field = idx + " (" + id_type + " " + name + ")";
    switch (kind) {
    case ViolationKind::unknown_index:
        return idx + " (type " + value_type + ") is not defined in the template";
    case ViolationKind::type_mismatch:
        return idx + " has type " + value_type + " but the template defines " + id_type;
    case ViolationKind::disabled_item:
        return field + " is disabled in the template";
    case ViolationKind::missing_required:
        return "required " + field + " is missing";
    case ViolationKind::wrong_type:
        return field + " must be " + expectation;
    case ViolationKind::length: {
        const auto dash = expectation.find('-');
        return field + " must be " + expectation.substr(0, dash) + " to " +
               expectation.substr(dash + 1) + " characters long, got " + std::to_string(length);
    }
    case ViolationKind::enum_miss:
        return field + " must be one of: " + expectation;
    case ViolationKind::not_utf8:
        return field + " must be UTF-8 text";
    }
    return idx + " is invalid";
}

std::string Violation::chinese() const {
    const std::string idx = "索引" + std::to_string(index);
    const std::string field = idx + "(" + name + "/" + id_type + ")";
    switch (kind) {
    case ViolationKind::unknown_index:
        return idx + "在模板中不存在";
    case ViolationKind::type_mismatch:
        return idx + "的类型" + value_type + "与模板定义的" + id_type + "不一致";
    case ViolationKind::disabled_item:
        return field + "在模板中已停用";
    case ViolationKind::missing_required:
        return "必填项" + field + "缺失";
    case ViolationKind::wrong_type: {
        std::string what = expectation;
        if (what == "an integer")
            what = "整数";
        else if (what == "a number")
            what = "数字";
        else if (what == "a date YYYY-MM-DD")
            what = "日期(YYYY-MM-DD)";
        else if (what == "an RFC 3339 date-time")
            what = "日期时间(RFC 3339)";
        else if (what == "a URL (scheme://...)")
            what = "URL";
        else if (what == "an identifier prefix/suffix")
            what = "标识(前缀/后缀)";
        return field + "的值必须是" + what;
    }
    case ViolationKind::length: {
        const auto dash = expectation.find('-');
        return field + "的长度必须在" + expectation.substr(0, dash) + "到" +
               expectation.substr(dash + 1) + "之间，实际为" + std::to_string(length);
    }
    case ViolationKind::enum_miss:
        return field + "的值必须是以下之一：" + expectation;
    case ViolationKind::not_utf8:
        return field + "的值必须是UTF-8文本";
    }
    return idx + "无效";
}

} // namespace idnode::registry
