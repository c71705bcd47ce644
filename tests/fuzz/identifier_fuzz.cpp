// libFuzzer entry point for the identifier grammar (registry identifier.hpp): parse_handle with
// the default and the protocol's largest length limit, parse_prefix, UTF-8 validation and case
// folding. Built as a replay binary for ctest and, with clang, as a real fuzzer (tests/CMakeLists).
//
// Beyond "no crash": an accepted handle splits at its first '/', its key is its folded spelling,
// re-parsing the spelling or the key gives the same key, it is valid UTF-8 and within the limit;
// folding is idempotent and case-insensitive comparison agrees with it.
#include "idnode/registry/identifier.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

namespace reg = idnode::registry;

void require(bool condition) {
    if (!condition)
        std::abort();
}

void check_handle(std::string_view text, const reg::HandleLimits& limits) {
    auto handle = reg::parse_handle(text, limits);
    if (!handle) {
        require(!handle.error().message.empty());
        return;
    }
    require(handle->spelling() == text);
    require(text.size() <= std::min(limits.max_length, reg::kHandleProtocolMaxLength));
    require(reg::find_invalid_utf8(text) == std::string_view::npos);
    require(text.find('/') == handle->prefix().size());
    require(handle->key() == reg::fold_case(text));
    require(reg::equals_folded(handle->key(), text));
    auto again = reg::parse_handle(handle->key(), limits);
    require(again.ok() && again->key() == handle->key());
    auto prefix = reg::parse_prefix(handle->prefix());
    require(prefix.ok() && *prefix == handle->prefix_key());
    require(reg::prefix_is_under(handle->prefix_key(), handle->prefix_key()));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    check_handle(text, {});
    check_handle(text, {reg::kHandleProtocolMaxLength});

    if (auto prefix = reg::parse_prefix(text)) {
        require(*prefix == reg::fold_case(text));
        require(reg::prefix_is_under(*prefix, *prefix));
    }
    const std::string folded = reg::fold_case(text);
    require(folded.size() == text.size());
    require(reg::fold_case(folded) == folded);
    require(reg::equals_folded(folded, text));
    const std::size_t bad = reg::find_invalid_utf8(text);
    require(bad == std::string_view::npos || bad < text.size());
    require(reg::find_invalid_utf8(folded) == bad); // folding touches ASCII only
    // Split the input in two at its first byte and ask whether one prefix lies under the other.
    if (size > 1) {
        const std::size_t cut = data[0] % size;
        (void)reg::prefix_is_under(text.substr(0, cut), text.substr(cut));
    }
    return 0;
}
