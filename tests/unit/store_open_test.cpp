// Opening the environment: the double-open guard, the default map, growth that meets an open
// snapshot, and the map that never has to grow by default.
#include "store_helpers.hpp"

#include <chrono>

using namespace idnode::test;

TEST_CASE("opening the same data directory twice in one process is refused") {
    TempDir dir;
    auto first = Registry::open(options_in(dir));
    try {
        auto second = Registry::open(options_in(dir));
        FAIL("the second open succeeded");
    } catch (const StartupError& e) {
        CHECK(e.code() == Errc::unavailable);
        CHECK(std::string(e.what()).find("already open") != std::string::npos);
    }
    first.reset();
    // Closing releases the claim.
    auto again = Registry::open(options_in(dir));
    CHECK(again->snapshot().count_all() == 0);
}

TEST_CASE("by default the whole max_db_size is mapped and never grows") {
    TempDir dir;
    auto options = options_in(dir);
    options.initial_map_size = 0;
    options.max_db_size = 256ull << 20;
    auto reg = Registry::open(options);
    CHECK(reg->stats().map_size == options.max_db_size);
    // The file holds only what was written, not the map.
    CHECK(std::filesystem::file_size(options.data_dir / "data.mdb") < (8ull << 20));
}

TEST_CASE("map growth does not deadlock a thread that holds a snapshot while it writes") {
    TempDir dir;
    auto options = options_in(dir);
    options.initial_map_size = 1ull << 20;
    options.max_db_size = 64ull << 20;
    auto reg = Registry::open(options);
    auto big_batch = [](int from) {
        WriteBatch batch;
        for (int i = from; i < from + 100; ++i) {
            batch.ops.push_back(PutRecord{handle("88.1/g-" + std::to_string(i)),
                                          {val(1, "BLOB", std::string(20000, 'x'))},
                                          PutMode::create});
        }
        return batch;
    };
    {
        auto held = reg->snapshot(); // this thread now waits for its own write below
        const auto start = std::chrono::steady_clock::now();
        const auto results = reg->write(big_batch(0)); // 2 MB: needs growth
        const auto waited = std::chrono::steady_clock::now() - start;
        REQUIRE(results.size() == 100);
        CHECK(results[0].error.code == Errc::unavailable);
        CHECK(waited < std::chrono::seconds(10));
        CHECK(held.count_all() == 0);
    }
    // With the snapshot gone, the same batch grows the map and commits.
    const auto results = reg->write(big_batch(0));
    CHECK(results[0].outcome == Outcome::created);
    CHECK(reg->stats().map_growths >= 1);
    CHECK(reg->snapshot().count_all() == 100);
}
