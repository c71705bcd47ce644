// The values of one steel coil as the in-process benchmarks store them (registry_bench,
// handle_load --self, html_page_bench): about 400 encoded bytes, a URL plus template-like fields.
#pragma once

#include "idnode/registry/value.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace idnode::bench {

inline registry::HandleValue value(std::int32_t index, std::string type, std::string data) {
    registry::HandleValue v;
    v.index = index;
    v.type = std::move(type);
    v.data = std::move(data);
    return v;
}

/// Record `i`: a URL plus six template-like fields.
inline std::vector<registry::HandleValue> coil_values(std::uint64_t i) {
    const std::string n = std::to_string(i);
    return {value(1, "URL", "https://steel.example.cn/coil/" + n),
            value(2000, "heat_no", "H2024-" + n),
            value(2001, "grade", "Q235B"),
            value(2002, "standard", "GB/T 700-2006"),
            value(2003, "dimensions", "2.75x1250 mm"),
            value(2004, "batch", "B" + n + "-07"),
            value(2005, "mill_cert", "MC-2024-" + n + "-HRC-QA-LINE2")};
}

} // namespace idnode::bench
