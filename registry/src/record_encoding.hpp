// Registry-internal record encoding helpers (not part of the public value.hpp API).
#pragma once

#include "idnode/registry/value.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace idnode::registry {

/// encode_record into `out` (replacing its contents, keeping its capacity) of the values pointed
/// to, in the order given, every value's timestamp written as `timestamp`: the registry writer's
/// encoding of a new record without copying its values. Same bytes as encode_record of copies of
/// those values stamped `timestamp`.
void encode_record_stamped(std::string& out, std::string_view spelling,
                           std::span<const HandleValue* const> values, std::uint32_t timestamp);

} // namespace idnode::registry
