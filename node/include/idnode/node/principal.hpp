// Who is calling, as every service sees it once a front end authenticated the request
// (authenticator.hpp). What the principal may do is decided in one place, policy.hpp.
// Thread safety: a plain value.
#pragma once

#include "idnode/registry/admin.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace idnode::node {

/// How a caller proved who it is. Only a password proves the password: a login token or an API
/// key may be a stolen copy, so the changes that turn a credential into a lasting one (new API
/// keys, a new password) ask such callers for the current password.
enum class Credential : std::uint8_t { none, password, token, api_key };

struct Principal {
    std::string username;               // empty = anonymous
    std::optional<registry::Role> role; // nullopt = anonymous
    std::vector<std::string> prefixes;  // folded
    Credential credential = Credential::none;

    bool anonymous() const noexcept { return !role.has_value(); }
    bool is_admin() const noexcept { return role == registry::Role::admin; }
};

} // namespace idnode::node
