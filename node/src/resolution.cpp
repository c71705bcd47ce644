// The record a resolution sees (resolution.hpp, visit_resolvable): the stored record with the
// handle's identities added.
#include "idnode/node/resolution.hpp"

#include "idnode/node/handle_public_key.hpp"

#include <algorithm>

namespace idnode::node {

namespace {

/// The value an identity shows: its public key as HANDLE.NET resolves one (HS_PUBKEY, readable by
/// anyone, written by admins). Secret keys show nothing: HS_SECKEY is never readable.
std::optional<registry::HandleValue> identity_value(const registry::Identity& identity) {
    if (identity.kind != registry::IdentityKeyKind::public_key) {
        return std::nullopt;
    }
    auto key = hs_public_key_from_pem(identity.public_key_pem);
    if (!key) {
        return std::nullopt; // validated when registered; a key OpenSSL no longer reads shows
                             // nothing
    }
    registry::HandleValue value;
    value.index = identity.index;
    value.type = "HS_PUBKEY";
    value.data = std::move(*key);
    value.timestamp = static_cast<std::uint32_t>(std::max<std::int64_t>(identity.created, 0));
    value.permissions.bits = registry::Permissions::kAdminRead |
                             registry::Permissions::kAdminWrite |
                             registry::Permissions::kPublicRead;
    return value;
}

} // namespace

registry::Status visit_resolvable(const registry::ReadSnapshot& snapshot,
                                  const registry::Handle& handle,
                                  const std::function<void(const registry::RecordView&)>& visit) {
    const std::vector<registry::Identity> identities = snapshot.identities_of(handle.key());
    std::vector<registry::HandleValue> added;
    for (const auto& identity : identities) {
        if (auto value = identity_value(identity)) {
            added.push_back(std::move(*value));
        }
    }
    if (added.empty()) {
        return snapshot.visit(handle, visit);
    }

    std::string spelling = identities.front().handle;
    std::vector<registry::HandleValue> values;
    const registry::Status stored = snapshot.visit(handle, [&](const registry::RecordView& view) {
        spelling = std::string(view.spelling());
        for (const registry::ValueView& v : view) {
            // The identity's key wins its index: it is what authenticates as (index, handle).
            const bool shadowed = std::any_of(added.begin(), added.end(),
                                              [&](const auto& a) { return a.index == v.index; });
            if (!shadowed) {
                values.push_back(v.to_value());
            }
        }
    });
    if (!stored && stored.error().code != registry::Errc::not_found) {
        return stored;
    }
    for (auto& value : added) {
        values.push_back(std::move(value));
    }
    return visit_composed(spelling, std::move(values), visit);
}

registry::Status visit_composed(std::string_view spelling,
                                std::vector<registry::HandleValue> values,
                                const std::function<void(const registry::RecordView&)>& visit) {
    std::sort(values.begin(), values.end(),
              [](const auto& a, const auto& b) { return a.index < b.index; });
    const std::string bytes = registry::encode_record(spelling, values);
    auto view = registry::RecordView::parse(bytes);
    if (!view) {
        return view.error();
    }
    visit(*view);
    return {};
}

} // namespace idnode::node
