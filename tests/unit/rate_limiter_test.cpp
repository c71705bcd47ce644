#include "idnode/node/rate_limiter.hpp"

#include <doctest/doctest.h>

using namespace idnode::node;
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

TEST_CASE("a batch takes its whole cost, possibly into debt, once the bucket holds it") {
    const auto t0 = Clock::time_point{} + 1h;
    RateLimiter limiter(/*rate=*/10); // burst 10
    // A batch of 5: the request's token, then 4 more.
    CHECK(limiter.acquire("a", t0).allowed);
    CHECK(limiter.charge("a", 4, t0).allowed);
    // 5 tokens left: a batch of 8 needs 7 besides its own token.
    CHECK(limiter.acquire("a", t0).allowed);
    const auto refused = limiter.charge("a", 7, t0);
    CHECK_FALSE(refused.allowed);
    // 4 left; a new batch of 8 needs 8 tokens: 400 ms at 10/s.
    CHECK(refused.retry_after == 400ms);
    CHECK(limiter.acquire("a", t0 + 400ms).allowed);
    CHECK(limiter.charge("a", 7, t0 + 400ms).allowed);
    CHECK_FALSE(limiter.acquire("a", t0 + 400ms).allowed);

    // Larger than the bucket: admitted on a full bucket, then the debt is waited out.
    CHECK(limiter.acquire("b", t0).allowed);
    CHECK(limiter.charge("b", 29, t0).allowed); // 9 - 29 = -20 tokens
    const auto in_debt = limiter.acquire("b", t0 + 1s);
    CHECK_FALSE(in_debt.allowed);
    CHECK(in_debt.retry_after == 1100ms); // from -10 to 1 token
    CHECK(limiter.acquire("b", t0 + 2100ms).allowed);
    CHECK(limiter.prune(t0 + 2100ms) == 1); // "a" has refilled, "b" not yet
    CHECK(limiter.prune(t0 + 10s) == 0);
}

TEST_CASE("spend counts after the fact; would_admit looks without taking") {
    const auto t0 = Clock::time_point{} + 1h;
    RateLimiter limiter(/*rate=*/2); // burst 2
    CHECK(limiter.would_admit("c", t0));
    CHECK(limiter.prune(t0) == 0); // looking created no bucket
    limiter.spend("c", 1, t0);
    CHECK(limiter.would_admit("c", t0));
    limiter.spend("c", 3, t0); // -2
    CHECK_FALSE(limiter.would_admit("c", t0 + 1s));
    CHECK(limiter.would_admit("c", t0 + 1500ms));
    RateLimiter off(0);
    off.spend("c", 100);
    CHECK(off.would_admit("c"));
    CHECK(off.charge("c", 100).allowed);
}
