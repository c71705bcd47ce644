// The error model (registry/include/idnode/registry/error.hpp): stable snake_case names, the
// error category, Result and Status.
#include "idnode/registry/error.hpp"
#include "idnode/registry/registry.hpp"

#include <doctest/doctest.h>

#include <set>
#include <string>

using namespace idnode::registry;

TEST_CASE("errc_name gives the stable snake_case name of every code") {
    const std::pair<Errc, const char*> names[] = {
        {Errc::ok, "ok"},
        {Errc::not_found, "not_found"},
        {Errc::already_exists, "already_exists"},
        {Errc::invalid_handle, "invalid_handle"},
        {Errc::invalid_value, "invalid_value"},
        {Errc::too_large, "too_large"},
        {Errc::storage_full, "storage_full"},
        {Errc::corrupt, "corrupt"},
        {Errc::not_homed, "not_homed"},
        {Errc::unavailable, "unavailable"},
        {Errc::internal, "internal"},
        {Errc::in_use, "in_use"},
    };
    for (const auto& [code, name] : names) {
        CHECK(std::string(errc_name(code)) == name);
        const std::error_code ec = make_error_code(code);
        CHECK(ec.value() == static_cast<int>(code));
        CHECK(&ec.category() == &registry_category());
        CHECK_FALSE(ec.message().empty());
    }
    // std::error_code interoperates through is_error_code_enum.
    std::error_code ec = Errc::storage_full;
    CHECK(ec == make_error_code(Errc::storage_full));
    CHECK(ec != make_error_code(Errc::not_found));
    CHECK(std::string(registry_category().name()).size() > 0);
    Error e{Errc::too_large, "x"};
    CHECK(e.error_code() == make_error_code(Errc::too_large));
}

TEST_CASE("outcome_name gives a distinct name for every outcome") {
    std::set<std::string> seen;
    for (Outcome o : {Outcome::created, Outcome::replaced, Outcome::updated, Outcome::unchanged,
                      Outcome::deleted, Outcome::failed}) {
        const std::string name = outcome_name(o);
        CHECK_FALSE(name.empty());
        seen.insert(name);
    }
    CHECK(seen.size() == 6);
    CHECK(std::string(outcome_name(Outcome::created)) == "created");
    CHECK(std::string(outcome_name(Outcome::unchanged)) == "unchanged");
}

TEST_CASE("Result and Status carry a value or an error") {
    Result<int> good = 42;
    CHECK(good.ok());
    CHECK(static_cast<bool>(good));
    CHECK(*good == 42);
    CHECK(good.code() == Errc::ok);

    Result<int> bad = Error{Errc::not_found, "no such identifier"};
    CHECK_FALSE(bad.ok());
    CHECK(bad.code() == Errc::not_found);
    CHECK(bad.error().message == "no such identifier");

    Result<std::string> moved = std::string("abc");
    std::string taken = std::move(moved).value();
    CHECK(taken == "abc");

    Status fine;
    CHECK(fine.ok());
    CHECK(fine.code() == Errc::ok);
    Status failed = Error{Errc::storage_full, "full"};
    CHECK_FALSE(failed.ok());
    CHECK(failed.code() == Errc::storage_full);
    CHECK(failed.error().message == "full");

    StartupError se(Errc::corrupt, "schema");
    CHECK(se.code() == Errc::corrupt);
    CHECK(std::string(se.what()) == "schema");
}
