// Public SDK headers compile as C++17 (factory vendors often have older toolchains).
#pragma once

namespace idnode::sdk {

/// The SDK's version, e.g. "0.1.0".
const char* version() noexcept;

} // namespace idnode::sdk
