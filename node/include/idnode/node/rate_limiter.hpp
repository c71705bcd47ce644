// Token-bucket rate limiting, keyed by client IP (and, later, by account).
//
// Each key owns a bucket of capacity `burst` tokens refilled at `rate` tokens per second; a
// request takes one token. When the bucket is empty the request is refused and the caller learns
// how long until a token is available (for Retry-After, rounded up to whole seconds by the server).
// A request that costs more than one token (a batch of handles) is admitted when the bucket holds
// its cost or is full, and then takes its whole cost: the bucket may go into debt, which later
// requests wait out, so the long-run rate stays `rate` whatever the batch size.
//
// Time is passed in explicitly so the arithmetic is testable without sleeping.
// Thread safety: `TokenBucket` is a plain value (not synchronised). `RateLimiter` is safe to call
// from any number of threads; it shards keys over independently locked maps so concurrent
// requests from different clients rarely contend.
// Memory: a bucket is dropped by `prune` once it has refilled completely (an idle client costs
// nothing); the server calls `prune` about once a second.
#pragma once

#include <array>
#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace idnode::node {

using Clock = std::chrono::steady_clock;

class TokenBucket {
public:
    TokenBucket(double rate_per_s, double burst, Clock::time_point now) noexcept
        : rate_(rate_per_s), burst_(burst), tokens_(burst), updated_(now) {}

    /// Takes one token if available. Otherwise returns false and sets `wait` to the time until
    /// one token will be available.
    bool try_take(Clock::time_point now, std::chrono::nanoseconds& wait) noexcept {
        return try_take(now, 1.0, 1.0, wait);
    }

    /// Takes `cost` tokens if the bucket holds at least `need` (<= cost; the bucket may go into
    /// debt). Otherwise returns false, takes nothing and sets `wait` to the time until it holds
    /// `need`.
    bool try_take(Clock::time_point now, double cost, double need,
                  std::chrono::nanoseconds& wait) noexcept;

    /// Whether a request costing one token would be admitted at `now` (nothing is taken).
    bool would_admit(Clock::time_point now) const noexcept;

    /// True if the bucket would be full at `now` (it can be forgotten).
    bool full_at(Clock::time_point now) const noexcept;

private:
    void refill(Clock::time_point now) noexcept;

    double rate_;
    double burst_;
    double tokens_;
    Clock::time_point updated_;
};

class RateLimiter {
public:
    /// `rate_per_s` = 0 disables limiting (every call is allowed). `burst` <= 0 means
    /// max(1, rate_per_s): one second's worth of requests.
    explicit RateLimiter(double rate_per_s, double burst = 0);

    bool enabled() const noexcept { return rate_ > 0; }

    struct Decision {
        bool allowed = true;
        std::chrono::nanoseconds retry_after{0}; // meaningful when !allowed
    };
    Decision acquire(std::string_view key, Clock::time_point now = Clock::now());

    /// The rest of the cost of a request that `acquire` already admitted: `extra` more tokens
    /// (one per handle of a batch beyond the first). Admitted when the bucket holds them, or as
    /// many as it can hold besides the request's own token (`burst` - 1: a batch larger than the
    /// bucket needs a full bucket), then takes all `extra`, possibly into debt. When refused,
    /// nothing is taken and `retry_after` is the time until a new request of the same size would
    /// be admitted (its own token included).
    Decision charge(std::string_view key, double extra, Clock::time_point now = Clock::now());

    /// Takes `cost` tokens whatever the bucket holds (possibly into debt): for requests counted
    /// after they were answered.
    void spend(std::string_view key, double cost, Clock::time_point now = Clock::now());

    /// Whether `acquire(key)` would admit a request now; takes nothing, creates no bucket.
    bool would_admit(std::string_view key, Clock::time_point now = Clock::now());

    /// Forgets buckets that are full at `now`. Returns how many keys remain.
    std::size_t prune(Clock::time_point now = Clock::now());

private:
    using Buckets = std::unordered_map<std::string, TokenBucket>;
    struct Shard {
        std::mutex mutex;
        Buckets buckets;
    };
    Shard& shard_for(std::string_view key) noexcept;
    /// `key`'s bucket in `shard` (whose mutex the caller holds), made full at `now` if new.
    Buckets::iterator bucket_in(Shard& shard, std::string_view key, Clock::time_point now);

    double rate_;
    double burst_;
    std::array<Shard, 16> shards_;
};

} // namespace idnode::node
