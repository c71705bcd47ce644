// libFuzzer entry point for the configuration parser (resolver config.hpp): parse_config on TOML
// text, plus the two value parsers it is built on (parse_host_port, parse_size).
//
// Beyond "no crash": a rejected config is a ConfigError with a message (never another
// exception), an accepted one has values inside the documented ranges, and a host:port that
// parses prints back to something that parses to the same value.
#include "idnode/resolver/config.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

namespace res = idnode::resolver;

void require(bool condition) {
    if (!condition)
        std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        const res::NodeConfig config = res::parse_config(text, "fuzz.toml");
        require(config.limits.max_connections >= 1);
        require(config.limits.max_header_bytes > 0);
    } catch (const res::ConfigError& e) {
        require(e.what()[0] != '\0');
    }

    std::string why;
    if (auto host_port = res::parse_host_port(text, why)) {
        std::string again_why;
        auto again = res::parse_host_port(host_port->to_string(), again_why);
        require(again.has_value() && *again == *host_port);
    } else {
        require(!why.empty());
    }
    why.clear();
    if (!res::parse_size(text, why))
        require(!why.empty());
    return 0;
}
