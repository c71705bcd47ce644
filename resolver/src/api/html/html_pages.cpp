#include "html_pages.hpp"

#include "codec.hpp"
#include "idnode/node/resolution.hpp"
#include "idnode/registry/admin.hpp"
#include "idnode/registry/template.hpp"
#include "idnode/registry/value.hpp"
#include "idnode/resolver/qr.hpp"

#include <algorithm>

namespace idnode::resolver::html {
using namespace registry;

namespace {

// A page is for people: a very long value is cut (the JSON has it whole), and the values of a
// large record stop once the page reaches its budget, so that one anonymous GET cannot buy many
// megabytes of HTML and the CPU to escape them (escaping and links multiply a value's bytes by up
// to 12).
constexpr std::size_t kMaxShownValueBytes = 2048;
constexpr std::size_t kMaxPageBytes = 512 * 1024;

// ---- small text helpers -----------------------------------------------------------------------

bool is_digits(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool starts_with_folded(std::string_view text, std::string_view prefix) {
    return text.size() >= prefix.size() && equals_folded(text.substr(0, prefix.size()), prefix);
}

/// "YYYY-MM-DD" with a plausible month and day.
bool is_date(std::string_view s) {
    if (s.size() != 10 || s[4] != '-' || s[7] != '-' || !is_digits(s.substr(0, 4)) ||
        !is_digits(s.substr(5, 2)) || !is_digits(s.substr(8, 2))) {
        return false;
    }
    const int month = (s[5] - '0') * 10 + (s[6] - '0'), day = (s[8] - '0') * 10 + (s[9] - '0');
    return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

/// "2024年11月22日" from a valid "2024-11-22" (leading zeros dropped, as people write it).
std::string chinese_date(std::string_view d) {
    auto number = [](std::string_view two) {
        return two[0] == '0' ? std::string(two.substr(1)) : std::string(two);
    };
    return std::string(d.substr(0, 4)) + "年" + number(d.substr(5, 2)) + "月" +
           number(d.substr(8, 2)) + "日";
}

/// RFC 3339 date-time ("2024-11-22T10:00:00Z", "...T10:00:00.5+08:00") -> "2024年11月22日
/// 10:00:00 UTC+08:00"; nullopt when `s` is not one.
std::optional<std::string> chinese_datetime(std::string_view s) {
    if (s.size() < 20 || !is_date(s.substr(0, 10)) ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' '))
        return std::nullopt;
    const std::string_view time = s.substr(11, 8);
    if (time[2] != ':' || time[5] != ':' || !is_digits(time.substr(0, 2)) ||
        !is_digits(time.substr(3, 2)) || !is_digits(time.substr(6, 2))) {
        return std::nullopt;
    }
    std::string_view zone = s.substr(19);
    if (!zone.empty() && zone[0] == '.') { // fractional seconds are not shown
        std::size_t n = 1;
        while (n < zone.size() && zone[n] >= '0' && zone[n] <= '9')
            ++n;
        if (n == 1)
            return std::nullopt;
        zone.remove_prefix(n);
    }
    std::string zone_text;
    if (zone == "Z" || zone == "z") {
        zone_text = "UTC";
    } else if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':' &&
               is_digits(zone.substr(1, 2)) && is_digits(zone.substr(4, 2))) {
        zone_text = "UTC" + std::string(zone);
    } else {
        return std::nullopt;
    }
    return chinese_date(s.substr(0, 10)) + " " + std::string(time) + " " + zone_text;
}

/// Only absolute http(s) URLs with a host become links or proxy redirects; anything else
/// (javascript:, data:, relative or protocol-relative "//host" references, "https:///path",
/// text with spaces) is shown as text.
bool is_web_url(std::string_view s) {
    std::size_t rest = 0;
    if (starts_with_folded(s, "https://"))
        rest = 8;
    else if (starts_with_folded(s, "http://"))
        rest = 7;
    else
        return false;
    // Browsers read a backslash as '/' in http(s) URLs, so it cannot start the host either.
    if (rest == s.size() || std::string_view("/\\?#").find(s[rest]) != std::string_view::npos)
        return false;
    return s.size() <= 2048 &&
           std::none_of(s.begin(), s.end(),
                        [](char c) {
                            const auto u = static_cast<unsigned char>(c);
                            return u <= 0x20 || u == 0x7F;
                        }) &&
           find_invalid_utf8(s) == std::string_view::npos;
}

std::string handle_href(std::string_view handle) {
    return qr::resolution_url("", handle); // "/" + percent-encoded handle
}

/// Chinese names for the common Handle value types, used when no template labels a value.
std::string_view chinese_type_name(std::string_view type) {
    static constexpr std::pair<std::string_view, std::string_view> kNames[] = {
        {"URL", "网址"},      {"EMAIL", "电子邮箱"},  {"DESC", "描述"},
        {"HS_ALIAS", "别名"}, {"HS_SITE", "站点"},    {"HS_PUBKEY", "公钥"},
        {"HS_SERV", "服务"},  {"HS_VLIST", "值列表"}, {"HS_SECKEY", "密钥"},
    };
    for (const auto& [en, zh] : kNames) {
        if (equals_folded(type, en))
            return zh;
    }
    return {};
}

std::string iso_utc(std::uint32_t unix_seconds) {
    std::string s = api::iso8601(unix_seconds); // "2024-11-22T10:00:00Z"
    if (s.size() >= 19)
        s = s.substr(0, 10) + " " + s.substr(11, 5) + " UTC";
    return s;
}

// ---- page frame -------------------------------------------------------------------------------

// Small enough to inline on every page (~1.5 KB); system fonts with CJK fallbacks, one column
// on phones, a label column from 640 px up.
constexpr std::string_view kStyle =
    "*{box-sizing:border-box}"
    "body{margin:0;font:16px/1.5 system-ui,-apple-system,\"PingFang SC\",\"Noto Sans CJK SC\","
    "\"Microsoft YaHei\",sans-serif;color:#1b1f24;background:#f4f6f8}"
    "header{background:#0b3d91;color:#fff;padding:.75rem 1rem}"
    "header a{color:#fff;text-decoration:none;font-weight:600}"
    "form{display:flex;gap:.5rem;margin-top:.5rem;flex-wrap:wrap}"
    "input{flex:1 1 14rem;min-width:0;font:inherit;padding:.5rem;border:1px solid #9aa5b1;"
    "border-radius:4px}"
    "button{font:inherit;padding:.5rem 1rem;border:0;border-radius:4px;background:#ffb400;"
    "color:#1b1f24;font-weight:600}"
    "main{max-width:56rem;margin:0 auto;padding:1rem}"
    "h1{font-size:1.35rem;margin:.25rem 0 .75rem;word-break:break-all}"
    "h2{font-size:1.1rem;margin:1.25rem 0 .5rem}"
    ".card{background:#fff;border:1px solid #d5dbe1;border-radius:6px;padding:.25rem 1rem}"
    "dl{margin:0}"
    ".row{padding:.6rem 0;border-top:1px solid #e6eaee}.row:first-child{border-top:0}"
    "dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere;white-space:pre-wrap}"
    ".en{color:#5a6570;font-weight:400;font-size:.85em;margin-left:.35em}"
    ".idx{color:#8a949e;font-size:.8em;margin-left:.35em}"
    ".lock{display:inline-block;margin-left:.5em;padding:0 .4em;border-radius:3px;"
    "background:#fde8e8;color:#9b1c1c;font-size:.8em;font-weight:400}"
    ".muted{color:#5a6570}.msg{background:#fff4e5;border-left:4px solid #ffb400;"
    "padding:.75rem 1rem;margin:1rem 0}"
    "footer{max-width:56rem;margin:0 auto;padding:0 1rem 2rem;color:#5a6570;font-size:.9em}"
    "a{color:#0b57d0}code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace}"
    "@media(min-width:640px){.row{display:grid;grid-template-columns:14rem 1fr;gap:1rem}}";

std::string search_form(std::string_view prefill, bool autofocus) {
    return "<form action=\"/\" method=\"get\" role=\"search\">"
           "<input name=\"handle\" type=\"search\" value=\"" +
           escape(prefill) +
           "\" placeholder=\"88.118.8/SN-2024-000123\" aria-label=\"标识 Identifier\" "
           "autocomplete=\"off\" autocapitalize=\"off\" spellcheck=\"false\" required" +
           (autofocus ? " autofocus" : "") +
           ">"
           "<button type=\"submit\">查询<span class=\"en\">Resolve</span></button></form>";
}

std::string open_page(std::string_view title, std::string_view prefill, bool autofocus) {
    std::string s;
    s.reserve(8192);
    s += "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
         "<meta name=\"referrer\" content=\"no-referrer\"><title>";
    s += escape(title);
    s += "</title><style>";
    s += kStyle;
    s += "</style></head><body><header><a href=\"/\">标识解析<span class=\"en\" "
         "style=\"color:#dbe4f3\">Identifier resolution</span></a>";
    s += search_form(prefill, autofocus);
    s += "</header><main>";
    return s;
}

std::string label_html(const PageValue& v, const ItemLabel* label) {
    std::string s = "<dt>";
    if (label != nullptr && !label->name_zh.empty()) {
        s += "<bdi lang=\"zh\">" + escape(label->name_zh) + "</bdi>";
        s += "<span class=\"en\" lang=\"en\">" +
             escape(label->id_type.empty() ? v.type : label->id_type) + "</span>";
    } else {
        const auto zh = chinese_type_name(v.type);
        if (!zh.empty())
            s += std::string(zh) + "<span class=\"en\" lang=\"en\">" + escape(v.type) + "</span>";
        else
            s += "<bdi lang=\"en\">" + escape(v.type) + "</bdi>";
    }
    s += "<span class=\"idx\">#" + std::to_string(v.index) + "</span>";
    if (v.is_private)
        s += "<span class=\"lock\">非公开 private</span>";
    return s + "</dt>";
}

} // namespace

// ---- escaping and formatting ------------------------------------------------------------------

std::string escape(std::string_view text) {
    std::string out;
    out.reserve(text.size() + text.size() / 8);
    while (!text.empty()) {
        const std::size_t bad = find_invalid_utf8(text);
        const std::string_view valid = text.substr(0, bad);
        for (const char c : valid) {
            switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&#39;";
                break;
            case '\t':
            case '\n':
                out.push_back(c);
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F)
                    out += "\xEF\xBF\xBD"; // U+FFFD
                else
                    out.push_back(c);
            }
        }
        if (bad == std::string_view::npos)
            break;
        out += "\xEF\xBF\xBD";
        text.remove_prefix(bad + 1);
    }
    return out;
}

std::string format_value(const PageValue& value, const ItemLabel* label) {
    const std::string_view data = value.data;
    std::string s;
    if (find_invalid_utf8(data) != std::string_view::npos) {
        s = "<span class=\"muted\">二进制数据<span class=\"en\">binary data</span>, " +
            std::to_string(data.size()) + " 字节 bytes</span>";
    } else if (data.size() > kMaxShownValueBytes) { // text only: a cut link would be wrong
        std::size_t cut = kMaxShownValueBytes;
        while (cut > 0 && (static_cast<unsigned char>(data[cut]) & 0xC0) == 0x80)
            --cut;
        const std::string more = std::to_string(data.size() - cut);
        s = "<bdi>" + escape(data.substr(0, cut)) + "</bdi>… <span class=\"muted\">另有" + more +
            "字节<span class=\"en\">" + more + " more bytes</span></span>";
    } else {
        const std::string_view kind = label != nullptr ? std::string_view(label->data_type) : "";
        const bool url_kind =
            kind == "url" || (label == nullptr && (equals_folded(value.type, "URL") ||
                                                   starts_with_folded(value.type, "URL.")));
        const bool handle_kind =
            kind == "handle" || (label == nullptr && equals_folded(value.type, "HS_ALIAS"));
        // Without a template, text that is exactly a date or an RFC 3339 date-time is shown as
        // one; with a template only the items it types so.
        std::optional<std::string> when;
        if ((label == nullptr || kind == "date") && is_date(data)) {
            when = chinese_date(data);
        } else if (label == nullptr || kind == "datetime") {
            when = chinese_datetime(data);
        }
        if (url_kind && is_web_url(data)) {
            s = "<a href=\"" + escape(data) + "\" rel=\"nofollow noopener noreferrer\"><bdi>" +
                escape(data) + "</bdi></a>";
        } else if (handle_kind && parse_handle(data, {kHandleProtocolMaxLength})) {
            s = "<a class=\"mono\" href=\"" + escape(handle_href(data)) + "\"><bdi>" +
                escape(data) + "</bdi></a>";
        } else if (when) {
            s = "<time datetime=\"" + escape(data) + "\">" + *when + "</time>";
        } else {
            s = "<bdi>" + escape(data) + "</bdi>";
        }
    }
    for (const auto& ref : value.references) {
        s += "<br>→ ";
        if (parse_handle(ref, {kHandleProtocolMaxLength}))
            s += "<a class=\"mono\" href=\"" + escape(handle_href(ref)) + "\"><bdi>" + escape(ref) +
                 "</bdi></a>";
        else
            s += "<bdi>" + escape(ref) + "</bdi>";
    }
    return s;
}

// ---- pages ------------------------------------------------------------------------------------

std::string render_handle_page(const HandlePage& page) {
    std::string s = open_page(page.handle + " · 标识解析", page.handle, false);
    s += "<h1 class=\"mono\"><bdi>" + escape(page.handle) + "</bdi></h1><div class=\"card\"><dl>";
    auto meta = [&s](std::string_view zh, std::string_view en, const std::string& html_value) {
        s += "<div class=\"row\"><dt>";
        s += zh;
        s += "<span class=\"en\">";
        s += en;
        s += "</span></dt><dd>" + html_value + "</dd></div>";
    };
    if (!page.enterprise_name.empty())
        meta("企业", "Enterprise", "<bdi>" + escape(page.enterprise_name) + "</bdi>");
    meta("前缀", "Prefix", "<span class=\"mono\">" + escape(page.prefix) + "</span>");
    if (page.template_info) {
        const auto& t = *page.template_info;
        meta("模板", "Template",
             "<bdi>" + escape(t.name.empty() ? t.version : t.name) +
                 "</bdi> <span class=\"muted\">(" + escape(t.version) + ")</span>");
        if (!t.industry.empty())
            meta("行业", "Industry", "<bdi>" + escape(t.industry) + "</bdi>");
    } else if (!page.template_version.empty()) {
        meta("模板", "Template", "<bdi>" + escape(page.template_version) + "</bdi>");
    }
    if ((!page.template_info || page.template_info->industry.empty()) &&
        !page.enterprise_code.empty()) {
        meta("行业", "Industry",
             "<span class=\"mono\">" + escape(page.enterprise_code) + "</span>");
    }
    std::uint32_t updated = 0;
    for (const auto& v : page.values)
        updated = std::max(updated, v.timestamp);
    if (updated != 0)
        meta("更新时间", "Updated", iso_utc(updated));
    s += "</dl></div><h2>标识数据<span class=\"en\">Values</span></h2><div class=\"card\"><dl>";
    if (page.values.empty()) {
        s += "<div class=\"row\"><dd class=\"muted\">没有公开的数据<span class=\"en\">No public "
             "values</span></dd></div>";
    }
    std::size_t shown = 0;
    for (const auto& v : page.values) {
        if (s.size() > kMaxPageBytes)
            break;
        const ItemLabel* label = nullptr;
        if (page.template_info) {
            auto it = page.template_info->items.find(v.index);
            if (it != page.template_info->items.end())
                label = &it->second;
        }
        s += "<div class=\"row\">" + label_html(v, label) + "<dd>" + format_value(v, label) +
             "</dd></div>";
        ++shown;
    }
    if (const std::size_t more = page.values.size() - shown; more > 0) {
        s += "<div class=\"row\"><dd class=\"muted\">另有" + std::to_string(more) +
             "项数据未显示，请查看 JSON<span class=\"en\">" + std::to_string(more) +
             " more values not shown; see the JSON</span></dd></div>";
    }
    const std::string href = escape(handle_href(page.handle));
    s += "</dl></div>";
    if (page.private_view) {
        s += "<p class=\"muted\">含非公开数据，请勿转发<span class=\"en\">Includes private values; "
             "do not share</span></p>";
    }
    s += "</main><footer><a href=\"/api/handles" + href + "\">JSON</a> · <a href=\"/api/v1/qr" +
         href + "?format=svg\">二维码<span class=\"en\">QR code</span></a>";
    if (!page.redirect_url.empty()) {
        s += " · <a href=\"" + href +
             "\">跳转到网址<span class=\"en\">Go to the identifier's URL</span></a>";
    }
    s += "</footer></body></html>\n";
    return s;
}

std::string render_search_page(std::string_view prefill, std::string_view message) {
    std::string s = open_page("标识解析 Identifier resolution", prefill, true);
    s += "<h1>标识解析<span class=\"en\">Identifier resolution</span></h1>";
    if (!message.empty())
        s += "<p class=\"msg\" role=\"alert\">" + escape(message) + "</p>";
    s += "<div class=\"card\"><p>输入标识（前缀/后缀），例如 <code>88.118.8/SN-2024-000123</code>，"
         "或扫描产品上的二维码。</p><p class=\"muted\">Enter an identifier (prefix/suffix) or scan "
         "the QR code printed on the product.</p></div></main></body></html>\n";
    return s;
}

http::status problem_status(Problem problem) noexcept {
    switch (problem) {
    case Problem::not_found:
    case Problem::no_page:
        return http::status::not_found;
    case Problem::invalid:
    case Problem::not_homed:
        return http::status::bad_request;
    }
    return http::status::bad_request;
}

std::string render_problem_page(Problem problem, std::string_view handle, std::string_view detail) {
    std::string_view zh, en, advice_zh, advice_en;
    switch (problem) {
    case Problem::not_found:
        zh = "未找到该标识", en = "Identifier not found";
        advice_zh = "该标识没有在本节点注册。请核对拼写，前缀与后缀之间用“/”分隔。";
        advice_en = "This identifier is not registered on this node. Check the spelling; the "
                    "prefix and the suffix are separated by \"/\".";
        break;
    case Problem::invalid:
        zh = "标识格式无效", en = "Not a valid identifier";
        advice_zh = "标识的格式为“前缀/后缀”，例如 88.118.8/SN-2024-000123。";
        advice_en = "An identifier looks like prefix/suffix, for example 88.118.8/SN-2024-000123.";
        break;
    case Problem::not_homed:
        zh = "该标识不由本节点解析", en = "Not served by this node";
        advice_zh = "该前缀由其他节点管理，请通过上级节点或该企业的节点解析。";
        advice_en = "Another node serves this prefix; resolve it through the top-level node or "
                    "the enterprise's own node.";
        break;
    case Problem::no_page:
        zh = "页面不存在", en = "Page not found";
        advice_zh = "请在上方输入要查询的标识。";
        advice_en = "Enter the identifier to resolve above.";
        break;
    }
    std::string s = open_page(std::string(zh) + " · " + std::string(en), handle, true);
    s += "<h1>";
    s += zh;
    s += "<span class=\"en\">";
    s += en;
    s += "</span></h1><div class=\"card\">";
    if (!handle.empty())
        s += "<p class=\"mono\"><bdi>" + escape(handle) + "</bdi></p>";
    if (!detail.empty())
        s += "<p class=\"msg\">" + escape(detail) + "</p>";
    s += "<p>";
    s += advice_zh;
    s += "</p><p class=\"muted\">";
    s += advice_en;
    s += "</p></div></main></body></html>\n";
    return s;
}

// ---- model ------------------------------------------------------------------------------------

// Templates (registry/template.hpp) are stored under template_key(prefix, version).
std::optional<TemplateSummary>
find_template(const ReadSnapshot& snapshot, std::string_view prefix_key, std::string_view version) {
    auto key = template_key(prefix_key, version);
    if (!key)
        return std::nullopt;
    auto bytes = snapshot.get_entry(Table::templates, *key);
    if (!bytes)
        return std::nullopt;
    auto t = decode_template(*bytes);
    if (!t)
        return std::nullopt; // a corrupt template must not hide the record: plain labels
    TemplateSummary s;
    s.name = t->description;
    s.version = t->version;
    // The most specific GB/T 4754 code the template gives ("C3120", else "C312", ...).
    for (const std::string* code :
         {&t->industry_subclass, &t->industry_trade, &t->industry_specific}) {
        if (!code->empty()) {
            s.industry = t->industry_category + *code;
            break;
        }
    }
    if (s.industry.empty())
        s.industry = t->industry_category;
    for (const auto& item : t->items)
        s.items[item.id_index] = ItemLabel{item.name, item.id_type, field_type_name(item.type)};
    return s;
}

Result<HandlePage> build_handle_page(const ReadSnapshot& snapshot, const Handle& handle,
                                     bool include_private) {
    HandlePage page;
    page.private_view = include_private;
    page.prefix = std::string(handle.prefix());
    Status st = node::visit_resolvable(snapshot, handle, [&](const RecordView& view) {
        page.handle = std::string(view.spelling());
        page.values.reserve(view.size());
        for (const ValueView& v : view) {
            const bool is_public = v.permissions.public_read();
            if (!is_public && !include_private)
                continue;
            if (v.index == kIndexTemplate) {
                page.template_version.assign(v.data);
                continue;
            }
            if (equals_folded(v.type, "HS_ADMIN"))
                continue;
            if (is_public && page.redirect_url.empty() && equals_folded(v.type, "URL") &&
                redirect_target_ok(v.data))
                page.redirect_url.assign(v.data);
            PageValue pv;
            pv.index = v.index;
            pv.type.assign(v.type);
            pv.data.assign(v.data);
            pv.timestamp = v.timestamp;
            pv.is_private = !is_public;
            if (v.reference_count > 0) {
                for (auto& r : v.to_value().references)
                    pv.references.push_back(std::move(r.handle));
            }
            page.values.push_back(std::move(pv));
        }
    });
    if (!st)
        return st.error();
    if (auto bytes = snapshot.get_entry(Table::prefixes, handle.prefix_key())) {
        if (auto rec = decode_prefix(*bytes); rec && rec->kind == PrefixKind::enterprise) {
            page.enterprise_name = rec->enterprise.name;
            page.enterprise_code = rec->enterprise.industry;
            page.prefix = rec->prefix;
        }
    }
    if (!page.template_version.empty())
        page.template_info = find_template(snapshot, handle.prefix_key(), page.template_version);
    return page;
}

// ---- HTTP glue --------------------------------------------------------------------------------

bool redirect_target_ok(std::string_view url) noexcept {
    return is_web_url(url);
}

bool wants_html(std::string_view accept) noexcept {
    while (!accept.empty()) {
        const auto comma = accept.find(',');
        std::string_view item = accept.substr(0, comma);
        accept = comma == std::string_view::npos ? std::string_view{} : accept.substr(comma + 1);
        const auto semi = item.find(';');
        std::string_view media = item.substr(0, semi);
        while (!media.empty() && (media.front() == ' ' || media.front() == '\t'))
            media.remove_prefix(1);
        while (!media.empty() && (media.back() == ' ' || media.back() == '\t'))
            media.remove_suffix(1);
        if (!equals_folded(media, "text/html"))
            continue;
        // q=0 means "not acceptable"; any other q (or none) accepts.
        std::string_view params = semi == std::string_view::npos ? "" : item.substr(semi + 1);
        const auto q = params.find("q=");
        if (q == std::string_view::npos)
            return true;
        std::string_view value = params.substr(q + 2);
        value = value.substr(0, value.find(';'));
        while (!value.empty() && value.back() == ' ')
            value.remove_suffix(1);
        const bool zero = !value.empty() && value[0] == '0' &&
                          std::all_of(value.begin() + 1, value.end(),
                                      [](char c) { return c == '.' || c == '0'; });
        return !zero;
    }
    return false;
}

Response page_response(const Request& request, http::status status, std::string body,
                       bool private_view) {
    Response r{status, request.version()};
    r.set(http::field::content_type, "text/html; charset=utf-8");
    r.set("Content-Security-Policy", kContentSecurityPolicy);
    r.set("X-Content-Type-Options", "nosniff");
    r.set("X-Frame-Options", "DENY");
    r.set("Referrer-Policy", "no-referrer");
    r.set(http::field::vary, "Accept");
    r.set(http::field::cache_control, private_view ? "private, no-store" : "no-cache");
    r.keep_alive(request.keep_alive());
    r.body() = std::move(body);
    r.prepare_payload();
    return r;
}

} // namespace idnode::resolver::html
