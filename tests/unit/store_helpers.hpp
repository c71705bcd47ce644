// Helpers shared by the store tests: handles, values, a controllable clock, registry options
// pointing into a fresh temporary directory.
#pragma once

#include "idnode/registry/registry.hpp"
#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace idnode::test {

using namespace idnode::registry;

inline constexpr std::int64_t kT0 = 1700000000; // 2023-11-14, the clock's starting time

/// Parses a handle that the test knows to be valid (up to the Handle protocol's 2048 bytes).
inline Handle handle(std::string_view text) {
    auto h = parse_handle(text, HandleLimits{kHandleProtocolMaxLength});
    REQUIRE_MESSAGE(h.ok(), "test handle is invalid: " << std::string(text));
    return std::move(*h);
}

inline HandleValue val(std::int32_t index, std::string type, std::string data,
                       std::string_view perms = "1110") {
    HandleValue v;
    v.index = index;
    v.type = std::move(type);
    v.data = std::move(data);
    auto p = Permissions::parse(perms);
    REQUIRE(p.ok());
    v.permissions = *p;
    return v;
}

/// A clock the test moves by hand; copies share the time.
class ManualClock {
public:
    std::int64_t now() const { return now_->load(); }
    void set(std::int64_t t) { now_->store(t); }
    void advance(std::int64_t seconds) { now_->fetch_add(seconds); }
    std::function<std::int64_t()> fn() const {
        auto shared = now_;
        return [shared] { return shared->load(); };
    }

private:
    std::shared_ptr<std::atomic<std::int64_t>> now_ =
        std::make_shared<std::atomic<std::int64_t>>(kT0);
};

inline RegistryOptions options_in(const TempDir& dir, const ManualClock& clock = ManualClock{}) {
    RegistryOptions o;
    o.data_dir = dir.path() / "db";
    o.initial_map_size = 8ull << 20;
    o.max_db_size = 1ull << 30;
    o.clock = clock.fn();
    return o;
}

inline PutRecord put(std::string_view h, std::vector<HandleValue> values,
                     PutMode mode = PutMode::upsert) {
    return PutRecord{handle(h), std::move(values), mode};
}

/// The record as stored (all values, private included); REQUIREs that it exists.
inline Record stored(const Registry& reg, std::string_view h) {
    auto snap = reg.snapshot();
    GetOptions all;
    all.include_private = true;
    auto r = snap.get(handle(h), all);
    REQUIRE_MESSAGE(r.ok(), std::string(h) << ": " << r.error().message);
    return r->record;
}

inline bool exists(const Registry& reg, std::string_view h) {
    return reg.snapshot().contains(handle(h));
}

/// Values keyed by index (the contract does not fix the order of values after partial updates).
inline std::map<std::int32_t, HandleValue> by_index(const std::vector<HandleValue>& values) {
    std::map<std::int32_t, HandleValue> out;
    for (const auto& v : values) {
        out.emplace(v.index, v);
    }
    return out;
}

/// True if `got` holds the same client-controlled content as `want` (any order, timestamps
/// ignored).
inline bool same_values(const std::vector<HandleValue>& got, const std::vector<HandleValue>& want) {
    if (got.size() != want.size()) {
        return false;
    }
    auto a = by_index(got);
    auto b = by_index(want);
    if (a.size() != got.size() || b.size() != want.size()) {
        return false;
    }
    for (const auto& [index, v] : b) {
        auto it = a.find(index);
        if (it == a.end() || !it->second.same_content(v)) {
            return false;
        }
    }
    return true;
}

inline std::string describe(const OpResult& r) {
    std::string s = outcome_name(r.outcome);
    if (!r.ok()) {
        s += std::string(" ") + errc_name(r.error.code) + ": " + r.error.message;
    }
    return s;
}

} // namespace idnode::test
