#include "idnode/registry/error.hpp"

namespace idnode::registry {

const char* errc_name(Errc e) noexcept {
    switch (e) {
    case Errc::ok:
        return "ok";
    case Errc::not_found:
        return "not_found";
    case Errc::already_exists:
        return "already_exists";
    case Errc::invalid_handle:
        return "invalid_handle";
    case Errc::invalid_value:
        return "invalid_value";
    case Errc::too_large:
        return "too_large";
    case Errc::storage_full:
        return "storage_full";
    case Errc::corrupt:
        return "corrupt";
    case Errc::not_homed:
        return "not_homed";
    case Errc::unavailable:
        return "unavailable";
    case Errc::internal:
        return "internal";
    case Errc::in_use:
        return "in_use";
    }
    return "unknown";
}

namespace {
class Category final : public std::error_category {
public:
    const char* name() const noexcept override { return "idnode.registry"; }
    std::string message(int code) const override { return errc_name(static_cast<Errc>(code)); }
};
} // namespace

const std::error_category& registry_category() noexcept {
    static const Category category;
    return category;
}

} // namespace idnode::registry
