#include "idnode/node/resolution_counter.hpp"

namespace idnode::node {

void ResolutionCounter::roll(std::int64_t day) {
    if (day != day_) {
        day_ = day;
        total_ = 0;
        by_prefix_.clear();
    }
}

void ResolutionCounter::count(std::int64_t now, std::uint64_t n) {
    std::lock_guard lock(mutex_);
    roll(now / 86400);
    total_ += n;
}

void ResolutionCounter::count_found(std::int64_t now, std::string_view prefix_key) {
    std::lock_guard lock(mutex_);
    roll(now / 86400);
    ++total_;
    // Prefix keys are short: the copy stays in the small-string buffer, no allocation.
    auto it = by_prefix_.find(std::string(prefix_key));
    if (it != by_prefix_.end())
        ++it->second;
    else if (by_prefix_.size() < max_prefixes_)
        by_prefix_.emplace(std::string(prefix_key), 1);
}

void ResolutionCounter::add(std::int64_t now, std::uint64_t unresolved,
                            const std::vector<std::pair<std::string, std::uint64_t>>& found) {
    std::lock_guard lock(mutex_);
    roll(now / 86400);
    total_ += unresolved;
    for (const auto& [prefix_key, n] : found) {
        total_ += n;
        auto it = by_prefix_.find(prefix_key);
        if (it != by_prefix_.end())
            it->second += n;
        else if (by_prefix_.size() < max_prefixes_)
            by_prefix_.emplace(prefix_key, n);
    }
}

std::uint64_t ResolutionCounter::total(std::int64_t now) const {
    std::lock_guard lock(mutex_);
    return day_ == now / 86400 ? total_ : 0;
}

std::uint64_t
ResolutionCounter::total_where(std::int64_t now,
                               const std::function<bool(const std::string&)>& select) const {
    std::lock_guard lock(mutex_);
    if (day_ != now / 86400)
        return 0;
    std::uint64_t sum = 0;
    for (const auto& [prefix, n] : by_prefix_)
        if (select(prefix))
            sum += n;
    return sum;
}

} // namespace idnode::node
