// The one place that decides what a principal may do with identifiers and templates: every front
// end (Handle REST, native, SNMS, bulk, pages, the Handle protocol) asks here and renders the
// answer in its own codes. See docs/api.md#authorisation-matrix.
//
// Ownership follows the *owning* prefix of a handle: the longest allocated prefix (a record in
// the prefixes table) equal to or containing the handle's prefix segment-wise. Never string
// nesting alone: the owner of 88.118.10 has no rights under 88.118.10.5 when that is allocated
// to another account.
// - Writes (identifiers and templates): an admin anywhere; an enterprise under prefixes it owns.
//   The owning prefix must be allocated here and active, and only an admin writes under a node
//   prefix.
// - Private values and template reads: an admin; the enterprise owning the prefix; a reader
//   granted it.
// - Identifiers under a prefix routed to an enterprise node (routes.hpp) are written there, not
//   here: every identifier write under it is refused with Outcome::routed_elsewhere.
// Reads use the caller's snapshot; nothing here writes. Thread safety: pure functions.
#pragma once

#include "idnode/node/outcome.hpp"
#include "idnode/node/principal.hpp"
#include "idnode/registry/identifier.hpp"
#include "idnode/registry/registry.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace idnode::node {

/// The allocated prefix that handles with prefix `prefix_key` (folded) belong to, or nullopt.
std::optional<std::string> owning_prefix(const registry::ReadSnapshot& snapshot,
                                         std::string_view prefix_key);

/// May `who` see the non-public values of records (and the templates) under `prefix_key`?
bool may_read_private(const registry::ReadSnapshot& snapshot, const Principal& who,
                      std::string_view prefix_key);

/// What a refusal is about: identifiers, or the templates of a prefix (the messages differ).
enum class Subject : std::uint8_t { identifiers, templates };
enum class Access : std::uint8_t { read, write };

/// Why `who` may not read (templates only: identifiers are read through `may_read_private`) or
/// write under the prefix `prefix_key` (folded; `spelling` as the client wrote it, for messages);
/// nullopt when it may. Refusals, in this order:
///   unauthorized                       anonymous caller
///   forbidden                          not an owner (or reader, for reads); a node prefix and
///                                      not an admin (writes)
///   routed_elsewhere                   identifiers, no prefix record for the prefix itself, and
///                                      its owning prefix is routed (routes.hpp)
///   not_found  "prefix_not_allocated"  no prefix record for the prefix itself
///   internal   "corrupt"               the prefix record does not decode
///   forbidden  "prefix_suspended"      writes under a suspended prefix (before a route: the
///                                      prefix is closed for writes wherever they go)
///   routed_elsewhere                   writes of identifiers under a routed prefix; the message
///                                      names the enterprise node (templates stay writable)
std::optional<Refusal> access_refusal(const registry::ReadSnapshot& snapshot, const Principal& who,
                                      std::string_view prefix_key, std::string_view spelling,
                                      Subject subject, Access access);

/// Why `who` may not read (GET) or change (set, clear) the route of the prefix `prefix_key`
/// (folded; `spelling` for messages); nullopt when it may. Only an admin or an enterprise account
/// owning exactly that prefix may do either (a reader granted it may not: a route names servers
/// and keys that are the enterprise's business). Refusals, in this order:
///   unauthorized                       anonymous caller
///   forbidden                          neither an admin nor the enterprise owning the prefix
///   not_found                          no prefix record for `prefix_key`
///   internal   "corrupt"               the prefix record does not decode
///   invalid    "node_prefix"           changing the route of a node prefix (this node homes it)
///   forbidden  "prefix_suspended"      the owning enterprise changing the route of its suspended
///                                      prefix (an admin may: suspension stops the enterprise,
///                                      not the operator)
std::optional<Refusal> route_access_refusal(const registry::ReadSnapshot& snapshot,
                                            const Principal& who, std::string_view prefix_key,
                                            std::string_view spelling, Access access);

/// access_refusal for writing the identifier `handle`.
inline std::optional<Refusal> write_refusal(const registry::ReadSnapshot& snapshot,
                                            const Principal& who, const registry::Handle& handle) {
    return access_refusal(snapshot, who, handle.prefix_key(), handle.prefix(), Subject::identifiers,
                          Access::write);
}

} // namespace idnode::node
