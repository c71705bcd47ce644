#include "record_write.hpp"

#include "codec.hpp"
#include "idnode/registry/admin.hpp"

#include <boost/json.hpp>

#include <algorithm>

namespace idnode::resolver::api {
namespace json = boost::json;
using namespace registry;

std::vector<std::size_t> record_json_sizes(std::string_view text) {
    std::vector<std::size_t> sizes;
    const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    std::size_t i = text.find('[');
    if (i == std::string_view::npos)
        return sizes;
    ++i;
    int depth = 0;                              // nesting inside the current element
    std::size_t start = std::string_view::npos; // first byte of the current element
    std::size_t last = 0;                       // last non-blank byte of the current element
    for (; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '"') { // skip the string, escapes included
            if (start == std::string_view::npos)
                start = i;
            for (++i; i < text.size() && text[i] != '"'; ++i)
                if (text[i] == '\\')
                    ++i;
            last = i;
            continue;
        }
        if (blank(c))
            continue;
        if (depth == 0 && (c == ',' || c == ']')) {
            if (start != std::string_view::npos)
                sizes.push_back(last - start + 1);
            start = std::string_view::npos;
            if (c == ']')
                break;
            continue;
        }
        if (start == std::string_view::npos)
            start = i;
        last = i;
        if (c == '{' || c == '[')
            ++depth;
        else if (c == '}' || c == ']')
            --depth;
    }
    return sizes;
}

Error record_too_large(std::size_t bytes, std::size_t limit) {
    return Error{Errc::too_large, "the record is " + std::to_string(bytes) +
                                      " bytes of JSON; one record may have " +
                                      std::to_string(limit) + " (limits.max_body_bytes)"};
}

Result<RecordInput> record_from_json(const json::value& value, std::string_view values_key) {
    RecordInput in;
    const json::value* values = &value;
    if (const auto* o = value.if_object()) {
        if (const auto* h = o->if_contains("handle"); h && !h->is_null()) {
            if (!h->is_string())
                return Error{Errc::invalid_handle, "handle must be a string"};
            in.handle = h->get_string();
        }
        if (const auto* t = o->if_contains("templateVersion"); t && !t->is_null()) {
            if (!t->is_string() || t->get_string().empty())
                return Error{Errc::invalid_value, "templateVersion must be a non-empty string"};
            in.template_version = std::string(t->get_string());
        }
        values = o->if_contains(values_key);
        if (values == nullptr)
            return Error{Errc::invalid_value, "body needs \"" + std::string(values_key) + "\""};
    } else if (values_key != "values" || !value.is_array()) {
        return Error{Errc::invalid_value, "a record must be a JSON object"};
    }
    auto parsed = values_from_json(*values);
    if (!parsed)
        return parsed.error();
    in.values = std::move(parsed).value();
    return in;
}

WriteCheck check_writable(const ReadSnapshot& snapshot, const Principal& who,
                          const Handle& handle) {
    if (who.anonymous())
        return {WriteRefusal::auth_needed, "authentication is needed to write"};
    if (!who.may_write(snapshot, handle.prefix_key()))
        return {WriteRefusal::forbidden, "account " + who.username +
                                             " may not write under prefix " +
                                             std::string(handle.prefix())};
    auto bytes = snapshot.get_entry(Table::prefixes, handle.prefix_key());
    if (!bytes)
        return {WriteRefusal::not_allocated,
                "prefix " + std::string(handle.prefix()) + " is not allocated on this node"};
    auto rec = decode_prefix(*bytes);
    if (!rec)
        return {WriteRefusal::forbidden, rec.error().message};
    if (rec->status == PrefixStatus::suspended)
        return {WriteRefusal::suspended, "prefix " + rec->prefix + " is suspended"};
    if (rec->kind == PrefixKind::node && !who.is_admin())
        return {WriteRefusal::forbidden, "only an admin writes under a node prefix"};
    return {};
}

Result<Template> load_template(const ReadSnapshot& snapshot, std::string_view prefix,
                               std::string_view version) {
    auto key = template_key(prefix, version);
    if (!key)
        return key.error();
    auto bytes = snapshot.get_entry(Table::templates, *key);
    if (!bytes)
        return Error{Errc::not_found, "template " + std::string(prefix) + " version " +
                                          std::string(version) + " does not exist"};
    return decode_template(*bytes);
}

std::string PreparedRecord::message(bool chinese) const {
    if (violations.empty())
        return error ? error->message : std::string();
    // Bounded: a record may violate its template once per value (2048) and an enum item's
    // message lists its choices, so the full text could be far larger than the record, and a
    // batch answers one message per record. The first problems are what a person fixes first.
    constexpr std::size_t kMaxBytes = 1024;
    std::string out;
    std::size_t listed = 0;
    for (const auto& v : violations) {
        std::string text = chinese ? v.chinese() : v.english();
        if (listed > 0 && out.size() + 2 + text.size() > kMaxBytes)
            break;
        if (text.size() > kMaxBytes) { // cut on a UTF-8 boundary
            std::size_t cut = kMaxBytes;
            while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80)
                --cut;
            text.resize(cut);
            text += "…";
        }
        out += (out.empty() ? "" : "; ") + text;
        ++listed;
    }
    if (const std::size_t more = violations.size() - listed; more > 0) {
        out += chinese ? "；另有" + std::to_string(more) + "处错误"
                       : "; and " + std::to_string(more) + " more";
    }
    return out;
}

PreparedRecord prepare_record(const ReadSnapshot& snapshot, const Handle& handle,
                              std::optional<std::string> template_version,
                              std::vector<HandleValue> values, bool partial, TemplateCache* cache) {
    PreparedRecord out;
    auto sent_template = std::find_if(values.begin(), values.end(), [](const HandleValue& v) {
        return v.index == kIndexTemplate;
    });
    if (!template_version && sent_template != values.end())
        template_version = sent_template->data; // a client-sent TEMPLATE value means the same
    // A partial edit of a templated record is checked against the stored record's template; the
    // stored TEMPLATE value then stays as it is.
    bool keep_stored_template = false;
    if (!template_version && partial) {
        (void)snapshot.visit(handle, [&](const RecordView& view) {
            for (const ValueView& v : view) {
                if (v.index == kIndexTemplate)
                    template_version = std::string(v.data);
            }
        });
        keep_stored_template = template_version.has_value();
    }
    if (!template_version) {
        out.values = std::move(values); // free-form (Handle style)
        return out;
    }
    const Template* t = nullptr;
    std::optional<Template> loaded;
    const std::string key = std::string(handle.prefix_key()) + "/" + *template_version;
    if (auto it = cache ? cache->find(key) : TemplateCache::iterator{};
        cache && it != cache->end()) {
        t = &it->second;
    } else {
        auto fresh = load_template(snapshot, handle.prefix(), *template_version);
        if (!fresh) {
            out.error = fresh.error();
            return out;
        }
        if (cache)
            t = &cache->emplace(key, std::move(fresh).value()).first->second;
        else
            t = &loaded.emplace(std::move(fresh).value());
    }
    out.violations = validate_record(*t, values);
    if (partial) {
        std::erase_if(out.violations,
                      [](const Violation& v) { return v.kind == ViolationKind::missing_required; });
    }
    if (!out.violations.empty()) {
        out.error = Error{Errc::invalid_value, out.message(false)};
        return out;
    }
    for (auto& v : values) {
        if (const auto* item = t->item(v.index); item && !item->is_public)
            v.permissions.bits &=
                static_cast<std::uint8_t>(~(Permissions::kPublicRead | Permissions::kPublicWrite));
    }
    if (!keep_stored_template) {
        std::erase_if(values, [](const HandleValue& v) { return v.index == kIndexTemplate; });
        HandleValue tv;
        tv.index = kIndexTemplate;
        tv.type = "TEMPLATE";
        tv.data = *template_version;
        values.push_back(std::move(tv));
    }
    out.values = std::move(values);
    return out;
}

} // namespace idnode::resolver::api
