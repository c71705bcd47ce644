#include "idnode/registry/identifier.hpp"

#include <doctest/doctest.h>

using namespace idnode::registry;

TEST_CASE("a plain IDIS handle parses and keeps its spelling") {
    auto h = parse_handle("88.118.8/sn-2024-000123");
    REQUIRE(h.ok());
    CHECK(h->spelling() == "88.118.8/sn-2024-000123");
    CHECK(h->key() == "88.118.8/SN-2024-000123");
    CHECK(h->prefix() == "88.118.8");
    CHECK(h->suffix() == "sn-2024-000123");
}

TEST_CASE("a handle without a slash is rejected with a reason") {
    auto h = parse_handle("88.118.8");
    REQUIRE_FALSE(h.ok());
    CHECK(h.code() == Errc::invalid_handle);
    CHECK(h.error().message.find("'/'") != std::string::npos);
}
