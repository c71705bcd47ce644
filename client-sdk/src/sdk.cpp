#include "idnode/sdk/version.hpp"

namespace idnode::sdk {

const char* version() noexcept {
    return IDNODE_VERSION;
}

} // namespace idnode::sdk
