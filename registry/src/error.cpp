#include "idnode/registry/error.hpp"

#include "enum_names.hpp"

namespace idnode::registry {

const char* errc_name(Errc e) noexcept {
    static constexpr const char* kNames[] = {
        "ok",        "not_found",    "already_exists", "invalid_handle", "invalid_value",
        "too_large", "storage_full", "corrupt",        "not_homed",      "unavailable",
        "internal",  "in_use"};
    static_assert(std::size(kNames) == static_cast<std::size_t>(Errc::in_use) + 1);
    return detail::enum_name(e, kNames, 0, "unknown");
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
