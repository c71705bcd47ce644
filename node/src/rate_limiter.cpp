#include "idnode/node/rate_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

namespace idnode::node {

void TokenBucket::refill(Clock::time_point now) noexcept {
    if (now <= updated_)
        return;
    const double elapsed = std::chrono::duration<double>(now - updated_).count();
    tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
    updated_ = now;
}

bool TokenBucket::try_take(Clock::time_point now, double cost, double need,
                           std::chrono::nanoseconds& wait) noexcept {
    refill(now);
    if (tokens_ >= need) {
        tokens_ -= cost;
        return true;
    }
    const double missing = need - tokens_;
    wait = std::chrono::nanoseconds(static_cast<std::int64_t>(std::ceil(missing / rate_ * 1e9)));
    return false;
}

bool TokenBucket::would_admit(Clock::time_point now) const noexcept {
    const double elapsed =
        now > updated_ ? std::chrono::duration<double>(now - updated_).count() : 0.0;
    return std::min(burst_, tokens_ + elapsed * rate_) >= 1.0;
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

RateLimiter::Buckets::iterator RateLimiter::bucket_in(Shard& shard, std::string_view key,
                                                      Clock::time_point now) {
    auto it = shard.buckets.find(std::string(key));
    if (it == shard.buckets.end())
        it = shard.buckets.emplace(std::string(key), TokenBucket(rate_, burst_, now)).first;
    return it;
}

RateLimiter::Decision RateLimiter::acquire(std::string_view key, Clock::time_point now) {
    if (!enabled())
        return {};
    Shard& shard = shard_for(key);
    std::lock_guard lock(shard.mutex);
    auto it = bucket_in(shard, key, now);
    Decision decision;
    decision.allowed = it->second.try_take(now, decision.retry_after);
    return decision;
}

RateLimiter::Decision RateLimiter::charge(std::string_view key, double extra,
                                          Clock::time_point now) {
    if (!enabled() || extra <= 0)
        return {};
    Shard& shard = shard_for(key);
    std::lock_guard lock(shard.mutex);
    auto it = bucket_in(shard, key, now);
    // The request's own token is already taken, so a full bucket holds burst - 1 more.
    const double need = std::min(extra, std::max(0.0, burst_ - 1.0));
    Decision decision;
    decision.allowed = it->second.try_take(now, extra, need, decision.retry_after);
    if (!decision.allowed) // a new request must also find its own token
        decision.retry_after +=
            std::chrono::nanoseconds(static_cast<std::int64_t>(std::ceil(1e9 / rate_)));
    return decision;
}

void RateLimiter::spend(std::string_view key, double cost, Clock::time_point now) {
    if (!enabled() || cost <= 0)
        return;
    Shard& shard = shard_for(key);
    std::lock_guard lock(shard.mutex);
    auto it = bucket_in(shard, key, now);
    std::chrono::nanoseconds unused{};
    it->second.try_take(now, cost, -std::numeric_limits<double>::infinity(), unused);
}

bool RateLimiter::would_admit(std::string_view key, Clock::time_point now) {
    if (!enabled())
        return true;
    Shard& shard = shard_for(key);
    std::lock_guard lock(shard.mutex);
    auto it = shard.buckets.find(std::string(key));
    return it == shard.buckets.end() || it->second.would_admit(now);
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

} // namespace idnode::node
