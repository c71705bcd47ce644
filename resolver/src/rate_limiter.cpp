#include "idnode/resolver/rate_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

namespace idnode::resolver {

void TokenBucket::refill(Clock::time_point now) noexcept {
    if (now <= updated_)
        return;
    const double elapsed = std::chrono::duration<double>(now - updated_).count();
    tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
    updated_ = now;
}

bool TokenBucket::try_take(Clock::time_point now, std::chrono::nanoseconds& wait) noexcept {
    refill(now);
    if (tokens_ >= 1.0) {
        tokens_ -= 1.0;
        return true;
    }
    const double missing = 1.0 - tokens_;
    wait = std::chrono::nanoseconds(static_cast<std::int64_t>(std::ceil(missing / rate_ * 1e9)));
    return false;
}

bool TokenBucket::full_at(Clock::time_point now) const noexcept {
    const double elapsed =
        now > updated_ ? std::chrono::duration<double>(now - updated_).count() : 0.0;
    return tokens_ + elapsed * rate_ >= burst_;
}

RateLimiter::RateLimiter(double rate_per_s, double burst)
    : rate_(rate_per_s), burst_(burst > 0 ? burst : std::max(1.0, rate_per_s)) {}

RateLimiter::Shard& RateLimiter::shard_for(std::string_view key) noexcept {
    return shards_[std::hash<std::string_view>{}(key) % shards_.size()];
}

RateLimiter::Decision RateLimiter::acquire(std::string_view key, Clock::time_point now) {
    if (!enabled())
        return {};
    Shard& shard = shard_for(key);
    std::lock_guard lock(shard.mutex);
    auto it = shard.buckets.find(std::string(key));
    if (it == shard.buckets.end())
        it = shard.buckets.emplace(std::string(key), TokenBucket(rate_, burst_, now)).first;
    Decision decision;
    decision.allowed = it->second.try_take(now, decision.retry_after);
    return decision;
}

std::size_t RateLimiter::prune(Clock::time_point now) {
    std::size_t remaining = 0;
    for (auto& shard : shards_) {
        std::lock_guard lock(shard.mutex);
        std::erase_if(shard.buckets, [now](const auto& kv) { return kv.second.full_at(now); });
        remaining += shard.buckets.size();
    }
    return remaining;
}

} // namespace idnode::resolver
