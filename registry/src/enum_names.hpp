// Names of enumerators from a table: one row per enumerator, in the order of their values, so
// that a new enumerator without a name fails the table's static_assert instead of falling
// through a switch. Internal to the registry.
#pragma once

#include <cstddef>
#include <iterator>

namespace idnode::registry::detail {

/// names[value - first], or `fallback` for a value outside the table.
template <class Enum, std::size_t N>
constexpr const char* enum_name(Enum value, const char* const (&names)[N], std::size_t first,
                                const char* fallback) noexcept {
    const auto i = static_cast<std::size_t>(value) - first;
    return i < N ? names[i] : fallback;
}

} // namespace idnode::registry::detail
