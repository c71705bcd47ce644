// Enterprise prefixes: the rules of a new allocation and the allocator that gives out the next
// free number under a node prefix. See docs/data-model.md#enterprise-prefixes.
//
// Allocation "next free number under 88.118" must not scan the prefixes table on the registry's
// writer thread (its completions must stay short: every write of the node waits behind them).
// The allocator scans once per parent on the caller's thread, then keeps the next number in
// memory; a create that finds the number taken (an explicit allocation of that very number got
// there first) moves on to the following number from the completion, which costs one map
// update and one submit. Numbers are never reused, even after a prefix is removed.
// Thread safety: `allocate` may be called from many threads at once; completions run on the
// registry's writer thread.
#pragma once

#include "idnode/node/homing.hpp"
#include "idnode/node/outcome.hpp"
#include "idnode/registry/admin.hpp"

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace idnode::registry {
class Registry;
}

namespace idnode::node {

/// Why an enterprise's details are not acceptable (name, unified social credit code, GB/T 4754
/// industry code, contact), or nullopt.
std::optional<std::string> enterprise_refusal(const registry::EnterpriseInfo& enterprise);

/// Where a new prefix goes: an explicit `prefix` (below a homed node prefix, not one itself), or
/// the next number under `parent` (a node prefix homed here). Exactly one is non-empty.
struct AllocationRequest {
    registry::EnterpriseInfo enterprise;
    std::string prefix; // as spelled
    std::string parent; // as spelled
    std::string account;
    std::int64_t now = 0; // unix seconds: the record's `created`
};

struct Allocation {
    Outcome outcome = Outcome::internal; // created, or the refusal's outcome
    registry::PrefixRecord record;       // when created
    std::string reason;                  // native error code when refused ("not_homed", ...)
    std::string message;
};

class PrefixAllocator {
public:
    PrefixAllocator(registry::Registry& registry, const Homing& homing)
        : registry_(registry), homing_(homing) {}

    /// Validates `request` and allocates; `done` runs exactly once, on the calling thread for a
    /// request refused before it was submitted, otherwise on the writer thread.
    void allocate(AllocationRequest request, std::function<void(Allocation)> done);

private:
    struct Attempt;
    void submit(std::shared_ptr<Attempt> attempt);
    /// The next number to try under `parent`, reserved (scanning the table the first time).
    std::uint64_t reserve(const std::string& parent);

    registry::Registry& registry_;
    const Homing& homing_;
    std::mutex mutex_;
    std::unordered_map<std::string, std::uint64_t> next_; // parent -> next number to try
};

} // namespace idnode::node
