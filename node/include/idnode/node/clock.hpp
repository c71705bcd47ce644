// The wall clock as the domain layer reads it: unix seconds (UTC). Login token expiry, the day of
// the resolution counters, the `created` time of prefixes and accounts.
#pragma once

#include <chrono>
#include <cstdint>

namespace idnode::node {

inline std::int64_t unix_now() noexcept {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

} // namespace idnode::node
