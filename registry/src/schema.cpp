// Key building of the store's schema (schema.hpp).
#include "schema.hpp"

#include "idnode/registry/admin.hpp"

#include <openssl/sha.h>

#include <ctime>

namespace idnode::registry::store {

void IdentifierKey::make_long(std::string_view folded) {
    const std::size_t keep = kShortKeyLimit - 1 - SHA256_DIGEST_LENGTH;
    long_.assign(folded.substr(0, keep));
    long_.resize(keep + 1 + SHA256_DIGEST_LENGTH, '\0'); // the 0x00 marker, then the digest
    SHA256(reinterpret_cast<const unsigned char*>(folded.data()), folded.size(),
           reinterpret_cast<unsigned char*>(long_.data() + keep + 1));
    view_ = long_;
}

std::string counter_key(std::string_view prefix_key) {
    std::string k = "n/";
    k.append(prefix_key);
    return k;
}

std::string template_usage_key(std::string_view template_key) {
    std::string k = "t/";
    k.append(template_key);
    return k;
}

std::string template_usage_key(std::string_view prefix_key, std::string_view version) {
    if (version.empty() || version.size() > 64) {
        return {};
    }
    std::string k = "t/";
    k.append(prefix_key).append("/").append(version);
    return k;
}

std::string template_usage_key(std::string_view prefix_key,
                               const std::vector<HandleValue>& values) {
    for (const auto& v : values) {
        if (v.index == kIndexTemplate) {
            return template_usage_key(prefix_key, v.data);
        }
    }
    return {};
}

std::string day_counter_key(std::int64_t unix_seconds) {
    return "d/" + calendar_date(unix_seconds);
}

std::string day_prefix_counter_key(std::string_view day_key, std::string_view prefix_key) {
    std::string k(day_key);
    k += '/';
    k.append(prefix_key);
    return k;
}

} // namespace idnode::registry::store
