// Prefix handles (docs/hierarchy.md#prefix-records): the records `0.NA/<prefix>` through which
// resolvers - the national recursive nodes, HANDLE.NET's HandleResolver, the IDIS SDKs - find
// the servers of a prefix. This node answers for its node prefixes and for every enterprise
// prefix it allocated; each front end (the Handle protocol's lookup, the HTTPS resolution routes)
// resolves through visit_served(), so that they all serve the same record.
//
// The record of 0.NA/<p>, composed at read time from the prefixes table and the node's site
// info (so it follows both without a write):
//   1   HS_SITE   this node's site info (as GET_SITE_INFO answers it)
//   2   ORG_NAME  the enterprise's name          } enterprise prefixes only: the public part of
//   3   ORG_CODE  its unified social credit code } the allocation (the contact stays private to
//   4   ORG_INDUSTRY its GB/T 4754 industry code } the HTTPS API)
//   100 HS_ADMIN  300:0.NA/<p>, every right: the prefix's administrator identity, which the
//                 owner registers with POST /api/v1/accounts/{u}/identities
//   and the HS_PUBKEY of every public-key identity registered under 0.NA/<p> (node/resolution.hpp).
// A prefix below a homed node prefix that was never allocated (or was removed) has no record.
//
// Thread safety: pure functions of their arguments.
#pragma once

#include "idnode/node/homing.hpp"
#include "idnode/registry/registry.hpp"
#include "idnode/resolver/handle_responder.hpp"

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace idnode::resolver {

/// The global prefix: handles "0.NA/<prefix>" name prefixes.
inline constexpr std::string_view kGlobalPrefixKey = "0.NA";

/// For a prefix handle "0.NA/<p>" whose p is a valid prefix: p, case-folded; otherwise nullopt.
std::optional<std::string> prefix_of_prefix_handle(const registry::Handle& handle);

/// The handle a client means by `text`: itself, or for a bare prefix ("88.118.8", no '/') its
/// prefix handle "0.NA/88.118.8", as HANDLE.NET's and the IDIS clients resolve prefixes.
std::string with_prefix_handle(std::string_view text);

/// Is `handle` served here: under a homed prefix, or a prefix handle 0.NA/<p> with p homed here
/// (0.NA itself is homed only by a top-level node)?
bool serves(const node::Homing& homing, const registry::Handle& handle);

/// What a resolution of `handle` sees: for a prefix handle of a prefix homed here, the record
/// above (not_found when p is neither a node prefix nor allocated); for any other handle,
/// node::visit_resolvable. The caller has checked serves().
registry::Status visit_served(const registry::ReadSnapshot& snapshot, const node::Homing& homing,
                              const handle::SiteInfo& site, const registry::Handle& handle,
                              std::uint32_t now,
                              const std::function<void(const registry::RecordView&)>& visit);

} // namespace idnode::resolver
