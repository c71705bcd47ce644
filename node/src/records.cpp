#include "idnode/node/records.hpp"

#include "idnode/registry/admin.hpp"

#include <algorithm>

namespace idnode::node {
using namespace registry;

Error record_too_large(std::size_t bytes, std::size_t limit) {
    return Error{Errc::too_large, "the record is " + std::to_string(bytes) +
                                      " bytes of JSON; one record may have " +
                                      std::to_string(limit) + " (limits.max_body_bytes)"};
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

void submit_one(registry::Registry& registry, registry::WriteOp op, std::string account,
                std::function<void(const registry::OpResult&)> done) {
    WriteBatch batch;
    batch.account = std::move(account);
    batch.ops.push_back(std::move(op));
    registry.submit(std::move(batch),
                    [done = std::move(done)](BatchResult results) { done(results.front()); });
}

} // namespace idnode::node
