// Resolutions answered today (UTC), in memory since the process started: the node's total (every
// resolution asked for, found or not) and, per prefix, the resolutions that found a record under
// it, so that an enterprise's /api/v1/stats shows its own traffic and not the node's.
//
// Memory is bounded: only prefixes holding the resolved record are counted (a caller cannot
// invent them), and at most `max_prefixes` of them; beyond that only the total grows. Counts are
// per process and start again at 0 at midnight UTC and after a restart (docs/api.md#stats).
// Thread safety: every member may be called from many threads at once.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace idnode::node {

class ResolutionCounter {
public:
    explicit ResolutionCounter(std::size_t max_prefixes = 65536) : max_prefixes_(max_prefixes) {}

    /// `n` resolutions at `now` (unix seconds) that found no record (or were not homed): the total
    /// only.
    void count(std::int64_t now, std::uint64_t n = 1);
    /// One resolution at `now` that found a record whose prefix is `prefix_key` (folded).
    void count_found(std::int64_t now, std::string_view prefix_key);

    /// A batch at once, under one lock: `unresolved` resolutions that found nothing, and
    /// `found[i].second` that found records under the prefix `found[i].first`.
    void add(std::int64_t now, std::uint64_t unresolved,
             const std::vector<std::pair<std::string, std::uint64_t>>& found);

    /// The node's resolutions on the day of `now`.
    std::uint64_t total(std::int64_t now) const;
    /// The resolutions on the day of `now` that found records under the prefixes `select` accepts.
    std::uint64_t total_where(std::int64_t now,
                              const std::function<bool(const std::string&)>& select) const;

private:
    void roll(std::int64_t day); // caller holds mutex_

    std::size_t max_prefixes_;
    mutable std::mutex mutex_;
    std::int64_t day_ = 0;
    std::uint64_t total_ = 0;
    std::unordered_map<std::string, std::uint64_t> by_prefix_;
};

} // namespace idnode::node
