#include "idnode/resolver/version.hpp"

namespace idnode::resolver {

const char* version() noexcept {
    return IDNODE_VERSION;
}

} // namespace idnode::resolver
