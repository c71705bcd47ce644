#pragma once

namespace idnode::resolver {

/// The product version, e.g. "0.1.0".
const char* version() noexcept;

} // namespace idnode::resolver
