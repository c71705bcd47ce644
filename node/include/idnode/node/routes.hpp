// Routes (服务寻址): an enterprise prefix allocated here whose identifiers live on the enterprise's
// own node (企业节点). The route is stored in the prefix record (registry admin.hpp PrefixRoute)
// and is either the enterprise node's servers (address, Handle TCP/UDP ports, HTTPS port, Handle
// server key) or a service handle whose HS_SITE values name them. See DESIGN §7 "Routes" and
// docs/data-model.md#enterprise-node-routes.
//
// What a route changes here:
// - Writes of identifiers under it are refused (policy.hpp access_refusal: Outcome::
//   routed_elsewhere, naming the node) on every front end. Templates stay manageable.
// - The prefix record 0.NA/<prefix> carries the node's HS_SITE (or HS_SERV), and resolutions
//   under it are referred there (the resolver; route_of and routed_owner are what it reads).
// - Identifiers stored before the route stay stored (and come back when it is cleared).
// Who may read and change a route is the write policy's (policy.hpp route_access_refusal).
//
// Thread safety: pure functions over the caller's snapshot; nothing here writes.
#pragma once

#include "idnode/node/outcome.hpp"
#include "idnode/registry/admin.hpp"
#include "idnode/registry/registry.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace idnode::node {

/// Why `route` may not be set on the prefix `prefix_key` (folded), or nullopt; on success the
/// addresses of `route` are rewritten in their canonical text form ("::0001" -> "::1"). Refusals:
/// - both or neither of servers and service_handle;
/// - more than registry::kMaxRouteServers servers;
/// - servers[i]: an address that is not an IPv4 or IPv6 literal (no host names: HS_SITE holds
///   addresses), or the unspecified address (0.0.0.0, ::); neither a TCP nor a UDP port (a
///   Handle server answers on at least one); a public key public_key_refusal (identities.hpp)
///   refuses (not a "BEGIN PUBLIC KEY" PEM, a private key, RSA below 2048 bits, DSA below 1024,
///   EC on another curve than SM2);
/// - a service handle that is not a handle (registry::parse_handle), or that could only be
///   resolved through the route itself: 0.NA/<prefix>, or a handle under the prefix.
/// The message names the field ("servers[1].address: ...").
std::optional<std::string> route_refusal(registry::PrefixRoute& route, std::string_view prefix_key);

/// The route of the prefix record under `prefix_key` (folded, e.g. "88.118.9"); nullopt when
/// there is no such record, it has no route, or it does not decode.
std::optional<registry::PrefixRoute> route_of(const registry::ReadSnapshot& snapshot,
                                              std::string_view prefix_key);

/// A routed prefix that owns some handle prefix.
struct RoutedPrefix {
    std::string prefix; // as allocated ("88.118.9")
    registry::PrefixRoute route;
};

/// The route that governs handles with prefix `prefix_key` (folded): the route of its owning
/// prefix (policy.hpp owning_prefix: the longest allocated prefix equal to or containing it),
/// nullopt when that prefix is not routed or there is none. A prefix allocated here below a
/// routed one is held here unless it is routed itself.
std::optional<RoutedPrefix> routed_owner(const registry::ReadSnapshot& snapshot,
                                         std::string_view prefix_key);

/// How a message names the enterprise node: "192.0.2.10:2641" (the first server, its TCP port,
/// else its UDP port; IPv6 as "[2001:db8::1]:2641") or "service handle 0.NA/88.118.9.SERV".
std::string route_target(const registry::PrefixRoute& route);

/// The refusal of a write of identifiers under the routed prefix `prefix` (as allocated):
/// Outcome::routed_elsewhere, the message in English and Chinese naming route_target.
Refusal routed_elsewhere(std::string_view prefix, const registry::PrefixRoute& route);

} // namespace idnode::node
