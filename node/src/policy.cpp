#include "idnode/node/policy.hpp"

#include "idnode/node/routes.hpp"

#include <algorithm>

namespace idnode::node {
using registry::PrefixKind;
using registry::PrefixStatus;
using registry::Role;

std::optional<std::string> owning_prefix(const registry::ReadSnapshot& snapshot,
                                         std::string_view prefix_key) {
    std::string_view candidate = prefix_key;
    while (!candidate.empty()) {
        if (snapshot.get_entry(registry::Table::prefixes, candidate))
            return std::string(candidate);
        const auto dot = candidate.rfind('.');
        if (dot == std::string_view::npos)
            break;
        candidate = candidate.substr(0, dot);
    }
    return std::nullopt;
}

namespace {

/// Does `who` hold the owning prefix of `prefix_key` among its prefixes?
bool holds_owner_of(const registry::ReadSnapshot& snapshot, const Principal& who,
                    std::string_view prefix_key) {
    // Cheap refusal first: an account none of whose prefixes contains `prefix_key` cannot hold
    // its owner, and most calls (other enterprises' handles) end here without a lookup.
    const bool related =
        std::any_of(who.prefixes.begin(), who.prefixes.end(),
                    [&](const std::string& p) { return registry::prefix_is_under(prefix_key, p); });
    if (!related)
        return false;
    const auto owner = owning_prefix(snapshot, prefix_key);
    return owner &&
           std::find(who.prefixes.begin(), who.prefixes.end(), *owner) != who.prefixes.end();
}

bool may_write(const registry::ReadSnapshot& snapshot, const Principal& who,
               std::string_view prefix_key) {
    if (who.is_admin())
        return true;
    return who.role == Role::enterprise && holds_owner_of(snapshot, who, prefix_key);
}

} // namespace

bool may_read_private(const registry::ReadSnapshot& snapshot, const Principal& who,
                      std::string_view prefix_key) {
    if (who.is_admin())
        return true;
    if (who.anonymous())
        return false;
    return holds_owner_of(snapshot, who, prefix_key); // enterprise: owned; reader: granted
}

std::optional<Refusal> access_refusal(const registry::ReadSnapshot& snapshot, const Principal& who,
                                      std::string_view prefix_key, std::string_view spelling,
                                      Subject subject, Access access) {
    const bool write = access == Access::write;
    const std::string prefix(spelling);
    if (who.anonymous()) {
        return Refusal{Outcome::unauthorized,
                       {},
                       subject == Subject::identifiers ? "authentication is needed to write"
                                                       : "authentication is needed",
                       "未登录或token无效"};
    }
    if (write ? !may_write(snapshot, who, prefix_key)
              : !may_read_private(snapshot, who, prefix_key)) {
        std::string message =
            subject == Subject::identifiers
                ? "account " + who.username + " may not write under prefix " + prefix
                : "account " + who.username + " may not " + (write ? "manage" : "read") +
                      " the templates of prefix " + prefix;
        std::string zh = subject == Subject::identifiers ? "没有权限：" + message : "没有权限";
        return Refusal{Outcome::forbidden, {}, std::move(message), std::move(zh)};
    }
    const bool identifiers = subject == Subject::identifiers;
    auto bytes = snapshot.get_entry(registry::Table::prefixes, prefix_key);
    if (!bytes) {
        // Not allocated itself: below a routed prefix, the enterprise node holds it.
        if (identifiers && write) {
            if (auto routed = routed_owner(snapshot, prefix_key))
                return routed_elsewhere(routed->prefix, routed->route);
        }
        return Refusal{Outcome::not_found, "prefix_not_allocated",
                       "prefix " + prefix + " is not allocated on this node",
                       "前缀" + prefix + "未在本节点分配"};
    }
    auto record = registry::decode_prefix(*bytes);
    if (!record)
        return Refusal{Outcome::internal, "corrupt", record.error().message, {}};
    if (!write)
        return std::nullopt; // suspended prefixes refuse writes only; reads go on
    if (record->status == PrefixStatus::suspended) {
        return Refusal{Outcome::forbidden, "prefix_suspended",
                       "prefix " + record->prefix + " is suspended",
                       "前缀" + record->prefix + "已停用"};
    }
    if (identifiers && record->route)
        return routed_elsewhere(record->prefix, *record->route);
    if (record->kind == PrefixKind::node && !who.is_admin()) {
        return Refusal{Outcome::forbidden,
                       {},
                       "only an admin writes under a node prefix",
                       "没有权限：只有管理员可写节点前缀"};
    }
    return std::nullopt;
}

std::optional<Refusal> route_access_refusal(const registry::ReadSnapshot& snapshot,
                                            const Principal& who, std::string_view prefix_key,
                                            std::string_view spelling, Access access) {
    const std::string prefix(spelling);
    if (who.anonymous())
        return Refusal{Outcome::unauthorized, {}, "authentication is needed", "未登录或token无效"};
    // Exactly this prefix among the account's: owning a parent prefix is not enough, since the
    // route is the business of the enterprise the prefix was allocated to.
    const bool owner =
        who.role == Role::enterprise &&
        std::find(who.prefixes.begin(), who.prefixes.end(), prefix_key) != who.prefixes.end();
    if (!who.is_admin() && !owner) {
        return Refusal{Outcome::forbidden,
                       {},
                       "account " + who.username + " may not manage the route of prefix " + prefix,
                       "没有权限"};
    }
    auto bytes = snapshot.get_entry(registry::Table::prefixes, prefix_key);
    if (!bytes) {
        return Refusal{Outcome::not_found,
                       {},
                       "prefix " + prefix + " is not allocated on this node",
                       "前缀" + prefix + "未在本节点分配"};
    }
    auto record = registry::decode_prefix(*bytes);
    if (!record)
        return Refusal{Outcome::internal, "corrupt", record.error().message, {}};
    if (access == Access::read)
        return std::nullopt;
    if (record->kind == PrefixKind::node) {
        return Refusal{Outcome::invalid, "node_prefix",
                       "prefix " + record->prefix +
                           " is a node prefix: this node holds it, it cannot be routed elsewhere",
                       "节点前缀不能指向其他节点"};
    }
    if (record->status == PrefixStatus::suspended && !who.is_admin()) {
        return Refusal{Outcome::forbidden, "prefix_suspended",
                       "prefix " + record->prefix + " is suspended",
                       "前缀" + record->prefix + "已停用"};
    }
    return std::nullopt;
}

} // namespace idnode::node
