#include "idnode/node/routes.hpp"

#include "idnode/node/identities.hpp"
#include "idnode/node/policy.hpp"
#include "idnode/registry/identifier.hpp"

#include <arpa/inet.h>

#include <array>

namespace idnode::node {
namespace {

/// The canonical text of an IPv4 or IPv6 literal, or why it is not one.
struct Address {
    std::string text;
    std::string refusal;
};

Address canonical_address(const std::string& text) {
    // inet_pton reads a C string: a NUL inside would cut the text short unseen.
    if (text.size() > INET6_ADDRSTRLEN || text.find('\0') != std::string::npos)
        return {{}, "address is not an IPv4 or IPv6 address"};
    std::array<unsigned char, 16> bytes{};
    char out[INET6_ADDRSTRLEN] = {};
    int family = AF_INET;
    if (inet_pton(AF_INET, text.c_str(), bytes.data()) != 1) {
        family = AF_INET6;
        if (inet_pton(AF_INET6, text.c_str(), bytes.data()) != 1)
            return {{}, "address \"" + text + "\" is not an IPv4 or IPv6 address"};
    }
    // inet_ntop cannot fail for an address inet_pton produced into a buffer this large.
    inet_ntop(family, bytes.data(), out, sizeof out);
    const std::size_t size = family == AF_INET ? 4 : 16;
    bool unspecified = true;
    for (std::size_t i = 0; i < size; ++i)
        unspecified = unspecified && bytes[i] == 0;
    if (unspecified)
        return {{}, "address " + std::string(out) + " is the unspecified address"};
    return {out, {}};
}

std::optional<std::string> server_refusal(registry::PrefixRouteServer& server) {
    auto address = canonical_address(server.address);
    if (!address.refusal.empty())
        return address.refusal;
    server.address = std::move(address.text);
    if (server.tcp_port == 0 && server.udp_port == 0)
        return std::string("give a tcp or a udp port (the Handle protocol's)");
    if (!server.public_key_pem.empty())
        return public_key_refusal(server.public_key_pem);
    return std::nullopt;
}

std::optional<std::string> service_handle_refusal(std::string_view text,
                                                  std::string_view prefix_key) {
    auto handle = registry::parse_handle(text);
    if (!handle)
        return "service_handle: " + handle.error().message;
    if (handle->key() == "0.NA/" + std::string(prefix_key) ||
        registry::prefix_is_under(handle->prefix_key(), prefix_key))
        return "service_handle " + handle->spelling() + " would be found only through the route " +
               "itself; name a handle outside prefix " + std::string(prefix_key);
    return std::nullopt;
}

} // namespace

std::optional<std::string> route_refusal(registry::PrefixRoute& route,
                                         std::string_view prefix_key) {
    if (route.servers.empty() == route.service_handle.empty())
        return std::string("give either \"servers\" or \"service_handle\"");
    if (!route.service_handle.empty())
        return service_handle_refusal(route.service_handle, prefix_key);
    if (route.servers.size() > registry::kMaxRouteServers)
        return "at most " + std::to_string(registry::kMaxRouteServers) + " servers, got " +
               std::to_string(route.servers.size());
    for (std::size_t i = 0; i < route.servers.size(); ++i) {
        if (auto why = server_refusal(route.servers[i]))
            return "servers[" + std::to_string(i) + "]: " + *why;
    }
    return std::nullopt;
}

std::optional<registry::PrefixRoute> route_of(const registry::ReadSnapshot& snapshot,
                                              std::string_view prefix_key) {
    auto bytes = snapshot.get_entry(registry::Table::prefixes, prefix_key);
    if (!bytes)
        return std::nullopt;
    auto record = registry::decode_prefix(*bytes);
    if (!record)
        return std::nullopt;
    return std::move(record->route);
}

std::optional<RoutedPrefix> routed_owner(const registry::ReadSnapshot& snapshot,
                                         std::string_view prefix_key) {
    const auto owner = owning_prefix(snapshot, prefix_key);
    if (!owner)
        return std::nullopt;
    auto record = snapshot.prefix_record(*owner);
    if (!record || !record->route)
        return std::nullopt;
    return RoutedPrefix{std::move(record->prefix), std::move(*record->route)};
}

std::string route_target(const registry::PrefixRoute& route) {
    if (route.servers.empty())
        return "service handle " + route.service_handle;
    const auto& first = route.servers.front();
    const bool v6 = first.address.find(':') != std::string::npos;
    return (v6 ? "[" + first.address + "]" : first.address) + ":" +
           std::to_string(first.tcp_port != 0 ? first.tcp_port : first.udp_port);
}

Refusal routed_elsewhere(std::string_view prefix, const registry::PrefixRoute& route) {
    const std::string target = route_target(route);
    const std::string p(prefix);
    return Refusal{Outcome::routed_elsewhere,
                   {},
                   "prefix " + p + " is routed to its enterprise node (" + target +
                       "): its identifiers are written there, not here",
                   "前缀" + p + "已指向企业节点（" + target + "），请在该节点写入标识"};
}

} // namespace idnode::node
