// Public SDK headers compile as C++17 (factory vendors often have older toolchains).
#pragma once

#include "idnode/sdk/export.hpp"

namespace idnode::sdk {

/// The SDK's version, e.g. "0.1.0".
IDNODE_SDK_API const char* version() noexcept;

} // namespace idnode::sdk
