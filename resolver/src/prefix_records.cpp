// Prefix handles served by this node (prefix_records.hpp).
#include "idnode/resolver/prefix_records.hpp"

#include "idnode/node/resolution.hpp"
#include "idnode/resolver/handle_protocol.hpp"

#include <algorithm>

namespace idnode::resolver {

namespace {

constexpr std::int32_t kAdminIdentityIndex = 300;

registry::HandleValue text_value(std::int32_t index, std::string_view type, std::string_view data,
                                 std::uint32_t timestamp) {
    registry::HandleValue value;
    value.index = index;
    value.type.assign(type);
    value.data.assign(data);
    value.timestamp = timestamp;
    return value; // default permissions 1110: public read
}

} // namespace

std::optional<std::string> prefix_of_prefix_handle(const registry::Handle& handle) {
    if (handle.prefix_key() != kGlobalPrefixKey) {
        return std::nullopt;
    }
    auto prefix = registry::parse_prefix(handle.suffix());
    if (!prefix) {
        return std::nullopt;
    }
    return std::move(prefix).value();
}

std::string with_prefix_handle(std::string_view text) {
    if (text.find('/') != std::string_view::npos || !registry::parse_prefix(text)) {
        return std::string(text);
    }
    return std::string(kGlobalPrefixKey) + "/" + std::string(text);
}

bool serves(const node::Homing& homing, const registry::Handle& handle) {
    if (homing.homes(handle.prefix_key())) {
        return true;
    }
    const auto prefix = prefix_of_prefix_handle(handle);
    return prefix && homing.homes(*prefix);
}

registry::Status visit_served(const registry::ReadSnapshot& snapshot, const node::Homing& homing,
                              const handle::SiteInfo& site, const registry::Handle& handle,
                              std::uint32_t now,
                              const std::function<void(const registry::RecordView&)>& visit) {
    const auto prefix =
        homing.homes(handle.prefix_key()) ? std::nullopt : prefix_of_prefix_handle(handle);
    if (!prefix) {
        return node::visit_resolvable(snapshot, handle, visit);
    }
    auto allocation = snapshot.prefix_record(*prefix);
    const bool node_prefix = homing.is_node_prefix(*prefix);
    if (!allocation && (allocation.error().code != registry::Errc::not_found || !node_prefix)) {
        return allocation.error();
    }
    const std::uint32_t stamp =
        allocation ? static_cast<std::uint32_t>(std::max<std::int64_t>(allocation->created, 0))
                   : now;

    std::vector<registry::HandleValue> values;
    values.push_back(handle::site_info_value(site, now));
    if (allocation && allocation->kind == registry::PrefixKind::enterprise) {
        const registry::EnterpriseInfo& e = allocation->enterprise;
        if (!e.name.empty()) {
            values.push_back(text_value(2, "ORG_NAME", e.name, stamp));
        }
        if (!e.credit_code.empty()) {
            values.push_back(text_value(3, "ORG_CODE", e.credit_code, stamp));
        }
        if (!e.industry.empty()) {
            values.push_back(text_value(4, "ORG_INDUSTRY", e.industry, stamp));
        }
    }
    registry::HandleValue admin;
    admin.index = handle::kAdminValueIndex;
    admin.type = "HS_ADMIN";
    admin.data =
        handle::encode_admin_value(std::string(kGlobalPrefixKey) + "/" +
                                       std::string(allocation ? allocation->prefix : *prefix),
                                   kAdminIdentityIndex);
    admin.timestamp = stamp;
    values.push_back(std::move(admin));

    // The prefix handle's identities (an admin's HS_PUBKEY at 300), where the composed values
    // leave room.
    (void)node::visit_resolvable(snapshot, handle, [&](const registry::RecordView& stored) {
        for (const registry::ValueView& v : stored) {
            const bool taken = std::any_of(values.begin(), values.end(),
                                           [&](const auto& c) { return c.index == v.index; });
            if (!taken) {
                values.push_back(v.to_value());
            }
        }
    });
    return node::visit_composed(handle.spelling(), std::move(values), visit);
}

} // namespace idnode::resolver
