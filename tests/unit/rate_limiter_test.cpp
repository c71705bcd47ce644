#include "idnode/resolver/rate_limiter.hpp"

#include <doctest/doctest.h>

using namespace idnode::resolver;
using namespace std::chrono_literals;

TEST_CASE("a token bucket allows a burst, then refills at the rate") {
    const auto t0 = Clock::time_point{} + 1h;
    TokenBucket bucket(/*rate=*/2, /*burst=*/3, t0);
    std::chrono::nanoseconds wait{};
    CHECK(bucket.try_take(t0, wait));
    CHECK(bucket.try_take(t0, wait));
    CHECK(bucket.try_take(t0, wait));
    CHECK_FALSE(bucket.try_take(t0, wait));
    CHECK(wait == 500ms); // one token at 2/s
    CHECK_FALSE(bucket.try_take(t0 + 499ms, wait));
    CHECK(wait > 0ns);
    CHECK(wait <= 1ms + 1us); // ceil of a double
    CHECK(bucket.try_take(t0 + 500ms, wait));
    CHECK_FALSE(bucket.full_at(t0 + 500ms));
    CHECK(bucket.full_at(t0 + 2s));
    // Refill never exceeds the burst.
    CHECK(bucket.try_take(t0 + 100s, wait));
    CHECK(bucket.try_take(t0 + 100s, wait));
    CHECK(bucket.try_take(t0 + 100s, wait));
    CHECK_FALSE(bucket.try_take(t0 + 100s, wait));
}

TEST_CASE("the limiter keeps one bucket per key and prunes full ones") {
    const auto t0 = Clock::time_point{} + 1h;
    RateLimiter limiter(/*rate=*/1); // burst = 1
    CHECK(limiter.enabled());
    CHECK(limiter.acquire("10.0.0.1", t0).allowed);
    const auto refused = limiter.acquire("10.0.0.1", t0);
    CHECK_FALSE(refused.allowed);
    CHECK(refused.retry_after == 1s);
    CHECK(limiter.acquire("10.0.0.2", t0).allowed); // another client is unaffected
    CHECK(limiter.prune(t0) == 2);
    CHECK(limiter.prune(t0 + 1s) == 0);
    CHECK(limiter.acquire("10.0.0.1", t0 + 1s).allowed);
}

TEST_CASE("rate 0 disables limiting") {
    RateLimiter off(0);
    CHECK_FALSE(off.enabled());
    for (int i = 0; i < 1000; ++i)
        CHECK(off.acquire("x").allowed);
}
