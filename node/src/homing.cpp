#include "idnode/node/homing.hpp"

#include "idnode/registry/admin.hpp"
#include "idnode/registry/identifier.hpp"
#include "idnode/registry/registry.hpp"

#include <algorithm>

namespace idnode::node {

Homing::Homing(std::vector<std::string> node_prefixes) : prefixes_(std::move(node_prefixes)) {}

registry::Result<Homing> Homing::load(const registry::Registry& registry,
                                      const std::vector<std::string>& configured) {
    std::vector<std::string> prefixes;
    for (const auto& spelling : configured) {
        auto folded = registry::parse_prefix(spelling);
        if (!folded) {
            return registry::Error{registry::Errc::invalid_value,
                                   "node.homed_prefixes: " + folded.error().message};
        }
        prefixes.push_back(std::move(folded).value());
    }
    auto snapshot = registry.snapshot();
    snapshot.for_each_entry(
        registry::Table::prefixes, [&](const std::string& key, const std::string& bytes) {
            auto record = registry::decode_prefix(bytes);
            if (record && record->kind == registry::PrefixKind::node &&
                std::find(prefixes.begin(), prefixes.end(), key) == prefixes.end())
                prefixes.push_back(key);
        });
    return Homing(std::move(prefixes));
}

bool Homing::homes(std::string_view prefix_key) const noexcept {
    return std::any_of(prefixes_.begin(), prefixes_.end(), [&](const std::string& node) {
        return registry::prefix_is_under(prefix_key, node);
    });
}

bool Homing::is_node_prefix(std::string_view prefix_key) const noexcept {
    return std::find(prefixes_.begin(), prefixes_.end(), prefix_key) != prefixes_.end();
}

} // namespace idnode::node
