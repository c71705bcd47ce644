// Which prefixes this node serves ("homes"): the node prefixes named in the configuration
// (node.homed_prefixes) and those recorded in the registry's prefixes table as kind `node`. A
// prefix is homed when it equals one of them or lies below one segment-wise (88.118.8 under
// 88.118); everything else belongs to another node, and every front end says so in its own
// words (Handle REST RC 301, native `not_homed`, SNMS business error, Handle protocol RC 301).
// See docs/data-model.md#homed-prefixes.
//
// Built once at start-up and immutable afterwards: safe to share between threads; copies are
// cheap enough for a server to hold its own.
#pragma once

#include "idnode/registry/error.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace idnode::registry {
class Registry;
}

namespace idnode::node {

class Homing {
public:
    Homing() = default;
    /// Folded node prefixes (no validation: for tests and servers handed an already-built list).
    explicit Homing(std::vector<std::string> node_prefixes);

    /// `configured`: prefix spellings from the configuration (invalid_value naming the bad one),
    /// plus the node prefixes recorded in `registry`.
    static registry::Result<Homing> load(const registry::Registry& registry,
                                         const std::vector<std::string>& configured);

    /// Is the (folded) prefix served here?
    bool homes(std::string_view prefix_key) const noexcept;
    /// Is the folded prefix one of the node prefixes themselves (not a prefix below one)?
    bool is_node_prefix(std::string_view prefix_key) const noexcept;
    /// The folded node prefixes, configured ones first.
    const std::vector<std::string>& node_prefixes() const noexcept { return prefixes_; }

private:
    std::vector<std::string> prefixes_;
};

} // namespace idnode::node
