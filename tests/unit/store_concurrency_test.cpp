// The registry under concurrency and at its limits (registry.hpp, docs/storage.md): snapshot
// isolation, readers during writes, map growth up to max_db_size and storage_full, group commit
// with concurrent writers, submit() completions and shutdown with queued work.
#include "../common/writer_gate.hpp"
#include "store_helpers.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace idnode::registry;
using namespace idnode::test;

namespace {

std::vector<HandleValue> small_record(const std::string& tag) {
    return {val(1, "URL", "https://example.com/" + tag), val(2, "SERIAL", tag)};
}

// Waits until `done` reaches `want` (completions run on the writer thread).
bool wait_for(std::mutex& m, std::condition_variable& cv, const int& done, int want) {
    std::unique_lock lock(m);
    return cv.wait_for(lock, std::chrono::seconds(120), [&] { return done >= want; });
}

} // namespace

TEST_CASE("a snapshot does not see later writes; a new one does") {
    TempDir dir;
    auto reg = Registry::open(options_in(dir));
    REQUIRE(reg->write(put("88.1/before", small_record("b"))).ok());

    const auto seq_at_snapshot = reg->snapshot().last_sequence();
    auto old_snap = reg->snapshot();
    REQUIRE(reg->write(put("88.1/after", small_record("a"))).ok());
    REQUIRE(reg->write(put("88.1/before", small_record("changed"))).ok());
    REQUIRE(reg->write(PutEntry{Table::accounts, "u", "v", PutMode::create}).ok());

    CHECK_FALSE(old_snap.contains(handle("88.1/after")));
    CHECK(old_snap.get(handle("88.1/after")).code() == Errc::not_found);
    CHECK(old_snap.count_all() == 1);
    CHECK(old_snap.count("88.1") == 1);
    CHECK(old_snap.last_sequence() == seq_at_snapshot);
    CHECK(old_snap.changes(0, 10).size() == 1);
    CHECK(old_snap.changes(seq_at_snapshot + 1, 10).empty());
    CHECK_FALSE(old_snap.get_entry(Table::accounts, "u").has_value());
    auto before = old_snap.get(handle("88.1/before"));
    REQUIRE(before.ok());
    CHECK(same_values(before->record.values, small_record("b")));
    auto page = old_snap.list("88.1", "", 10);
    REQUIRE(page.ok());
    CHECK(page->handles == std::vector<std::string>{"88.1/before"});

    // Read-after-write: a snapshot taken after the acknowledgement sees everything.
    auto new_snap = reg->snapshot();
    CHECK(new_snap.contains(handle("88.1/after")));
    CHECK(new_snap.count_all() == 2);
    CHECK(new_snap.last_sequence() == seq_at_snapshot + 3);
    CHECK(new_snap.get_entry(Table::accounts, "u").has_value());
    auto changed = new_snap.get(handle("88.1/before"));
    REQUIRE(changed.ok());
    CHECK(same_values(changed->record.values, small_record("changed")));
}

TEST_CASE("readers see consistent snapshots while writers commit") {
    TempDir dir;
    auto reg = Registry::open(options_in(dir));
    const int batches = reduced() ? 30 : 120;
    const int per_prefix = 5; // each batch creates 5 under 88.1 and 5 under 88.2

    std::atomic<bool> writing{true};
    std::atomic<int> write_failures{0}, read_after_write_misses{0};
    std::thread writer([&] {
        for (int b = 0; b < batches; ++b) {
            WriteBatch batch;
            for (int i = 0; i < per_prefix; ++i) {
                const std::string tag = std::to_string(b) + "-" + std::to_string(i);
                batch.ops.push_back(put("88.1/r" + tag, small_record(tag)));
                batch.ops.push_back(put("88.2/r" + tag, small_record(tag)));
            }
            for (const auto& r : reg->write(std::move(batch))) {
                if (r.outcome != Outcome::created) {
                    ++write_failures;
                }
            }
            // Read-after-write.
            if (!reg->snapshot().contains(handle("88.2/r" + std::to_string(b) + "-4"))) {
                ++read_after_write_misses;
            }
        }
        writing = false;
    });

    struct ReaderReport {
        int snapshots = 0;
        int inconsistent = 0;
        int went_back = 0;
        std::string first_problem;
    };
    auto reader = [&](ReaderReport& report) {
        std::uint64_t last_total = 0;
        while (writing.load() || report.snapshots < 5) {
            auto snap = reg->snapshot();
            const auto a = snap.count("88.1");
            const auto b = snap.count("88.2");
            const auto total = snap.count_all();
            const auto seq = snap.last_sequence();
            auto listed = snap.list("88.2", "", 100000);
            const auto listed_n = listed.ok() ? listed->handles.size() : std::size_t(-1);
            // Every record of a listed handle is readable in the same snapshot.
            bool readable = true;
            if (listed.ok() && !listed->handles.empty()) {
                readable = snap.contains(handle(listed->handles.back())) &&
                           snap.get(handle(listed->handles.front())).ok();
            }
            const bool ok = a == b && total == a + b && total % (2 * per_prefix) == 0 &&
                            seq == total && listed_n == b && readable;
            if (!ok) {
                if (report.inconsistent++ == 0) {
                    report.first_problem =
                        "88.1=" + std::to_string(a) + " 88.2=" + std::to_string(b) +
                        " all=" + std::to_string(total) + " seq=" + std::to_string(seq) +
                        " listed=" + std::to_string(listed_n);
                }
            }
            if (total < last_total) {
                ++report.went_back;
            }
            last_total = total;
            ++report.snapshots;
        }
    };
    ReaderReport r1, r2;
    std::thread reader1([&] { reader(r1); });
    std::thread reader2([&] { reader(r2); });
    writer.join();
    reader1.join();
    reader2.join();

    CHECK(write_failures == 0);
    CHECK(read_after_write_misses == 0);
    for (const auto* r : {&r1, &r2}) {
        INFO(r->first_problem);
        CHECK(r->snapshots > 0);
        CHECK(r->inconsistent == 0);
        CHECK(r->went_back == 0);
    }
    auto snap = reg->snapshot();
    CHECK(snap.count_all() == static_cast<std::uint64_t>(batches * 2 * per_prefix));
}

TEST_CASE("many short-lived reader threads do not exhaust the reader table") {
    TempDir dir;
    auto options = options_in(dir);
    options.max_readers = 8;
    auto reg = Registry::open(options);
    REQUIRE(reg->write(put("88.1/x", small_record("x"))).ok());
    std::atomic<int> misses{0};
    for (int round = 0; round < 8; ++round) {
        std::vector<std::thread> threads;
        for (int t = 0; t < 6; ++t) {
            threads.emplace_back([&] {
                try {
                    auto snap = reg->snapshot();
                    if (!snap.contains(handle("88.1/x"))) {
                        ++misses;
                    }
                } catch (...) {
                    ++misses;
                }
            });
        }
        for (auto& t : threads) {
            t.join();
        }
    }
    CHECK(misses == 0);
    // Writes still work afterwards.
    CHECK(reg->write(put("88.1/y", small_record("y"))).ok());
}

TEST_CASE(
    "map growth up to max_db_size, then storage_full; reads continue; reopen larger resumes") {
    TempDir dir;
    auto options = options_in(dir);
    options.initial_map_size = 1ull << 20;
    options.max_db_size = 8ull << 20;
    const std::string payload(3000, 'p');
    auto record = [&](int i) {
        return std::vector<HandleValue>{val(1, "BLOB", payload + std::to_string(i)),
                                        val(2, "N", std::to_string(i))};
    };
    auto name = [](int i) { return "88.1/big-" + std::to_string(i); };

    std::vector<int> acked;
    int storage_full_ops = 0;
    int other_failures = 0;
    std::string other_failure;
    {
        auto reg = Registry::open(options);
        const auto start = reg->stats();
        CHECK(start.max_db_size == options.max_db_size);
        CHECK(start.map_size <= options.max_db_size);

        int next = 0;
        int batches_after_full = 0;
        // 8 MiB holds fewer than 3000 records of 3 KB; the loop is bounded either way.
        for (int b = 0; b < 200 && batches_after_full < 2; ++b) {
            WriteBatch batch;
            std::vector<int> ids;
            for (int i = 0; i < 20; ++i, ++next) {
                ids.push_back(next);
                batch.ops.push_back(put(name(next), record(next), PutMode::create));
            }
            const auto results = reg->write(std::move(batch));
            REQUIRE(results.size() == ids.size());
            bool full = false;
            for (std::size_t i = 0; i < results.size(); ++i) {
                if (results[i].ok()) {
                    acked.push_back(ids[i]);
                } else if (results[i].error.code == Errc::storage_full) {
                    ++storage_full_ops;
                    full = true;
                    CHECK_FALSE(results[i].error.message.empty());
                } else {
                    ++other_failures;
                    other_failure = describe(results[i]);
                }
            }
            if (full || batches_after_full > 0) {
                ++batches_after_full;
            }
        }
        INFO(other_failure);
        CHECK(other_failures == 0);
        REQUIRE(storage_full_ops > 0);
        const auto stats = reg->stats();
        CHECK(stats.map_growths > 0);
        CHECK(stats.map_size > start.map_size);
        CHECK(stats.map_size <= options.max_db_size);
        CHECK(acked.size() > 200); // more than the initial 1 MiB holds

        // Reads keep working and every acknowledged record is intact. (Snapshots are scoped: a
        // writer that grows the map waits for open snapshots to end, see registry.hpp.)
        {
            auto snap = reg->snapshot();
            CHECK(snap.count_all() == acked.size());
            CHECK(snap.count("88.1") == acked.size());
            int bad = 0;
            for (int i : acked) {
                auto r = snap.get(handle(name(i)));
                if (!r.ok() || !same_values(r->record.values, record(i))) {
                    ++bad;
                }
            }
            CHECK(bad == 0);
        }
        // Small writes that need no new pages may or may not fit; a delete frees space and must
        // never corrupt anything either way.
        auto del = reg->write(DeleteRecord{handle(name(acked.front()))});
        if (del.ok()) {
            acked.erase(acked.begin());
        } else {
            CHECK(del.error.code == Errc::storage_full);
        }
    }
    // No file in the environment exceeds the hard limit.
    for (const auto& entry : std::filesystem::directory_iterator(options.data_dir)) {
        if (entry.is_regular_file()) {
            INFO(entry.path().string());
            CHECK(entry.file_size() <= options.max_db_size);
        }
    }
    // Reopen with a larger limit: everything is there and writes resume.
    options.max_db_size = 64ull << 20;
    auto reg = Registry::open(options);
    {
        auto snap = reg->snapshot();
        CHECK(snap.count_all() == acked.size());
        int bad = 0;
        for (int i : acked) {
            auto r = snap.get(handle(name(i)));
            if (!r.ok() || !same_values(r->record.values, record(i))) {
                ++bad;
            }
        }
        CHECK(bad == 0);
    }
    WriteBatch more;
    for (int i = 100000; i < 100000 + 200; ++i) {
        more.ops.push_back(put(name(i), record(i), PutMode::create));
    }
    int failed = 0;
    for (const auto& r : reg->write(std::move(more))) {
        failed += r.ok() ? 0 : 1;
    }
    CHECK(failed == 0);
    CHECK(reg->snapshot().count_all() == acked.size() + 200);
}

TEST_CASE(
    "group commit: 8 concurrent writers share commits; every acknowledged record survives reopen") {
    TempDir dir;
    auto options = options_in(dir);
    const int threads = 8;
    const int per_thread = reduced() ? 40 : 150;
    const int total = threads * per_thread;
    std::vector<std::vector<OpResult>> results(threads);
    std::uint64_t commits_before = 0, commits_after = 0, ops_after = 0;
    {
        auto reg = Registry::open(options);
        commits_before = reg->stats().commits;
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t) {
            pool.emplace_back([&, t] {
                for (int i = 0; i < per_thread; ++i) {
                    const std::string tag = std::to_string(t) + "-" + std::to_string(i);
                    results[static_cast<std::size_t>(t)].push_back(
                        reg->write(put("88.1/g" + tag, small_record(tag), PutMode::create),
                                   "w" + std::to_string(t)));
                }
            });
        }
        for (auto& th : pool) {
            th.join();
        }
        const auto stats = reg->stats();
        commits_after = stats.commits;
        ops_after = stats.committed_ops;
    }
    std::set<std::uint64_t> sequences;
    int not_created = 0;
    for (const auto& per : results) {
        for (const auto& r : per) {
            if (r.outcome != Outcome::created) {
                ++not_created;
            }
            sequences.insert(r.sequence);
        }
    }
    CHECK(not_created == 0);
    CHECK(sequences.size() == static_cast<std::size_t>(total)); // unique
    CHECK(*sequences.rbegin() - *sequences.begin() + 1 ==
          static_cast<std::uint64_t>(total)); // contiguous
    const auto commits = commits_after - commits_before;
    INFO("commits " << commits << " for " << total << " writes");
    CHECK(commits > 0);
    CHECK(commits < static_cast<std::uint64_t>(total));
    CHECK(ops_after >= static_cast<std::uint64_t>(total));

    auto reg = Registry::open(options);
    auto snap = reg->snapshot();
    CHECK(snap.count_all() == static_cast<std::uint64_t>(total));
    int missing = 0;
    for (int t = 0; t < threads; ++t) {
        for (int i = 0; i < per_thread; ++i) {
            const std::string tag = std::to_string(t) + "-" + std::to_string(i);
            auto r = snap.get(handle("88.1/g" + tag));
            if (!r.ok() || !same_values(r->record.values, small_record(tag))) {
                ++missing;
            }
        }
    }
    CHECK(missing == 0);
    // The change log holds each write once, attributed to its writer.
    const auto log = snap.changes(0, static_cast<std::size_t>(total) + 10);
    CHECK(log.size() == static_cast<std::size_t>(total));
    int misattributed = 0;
    for (const auto& e : log) {
        // key "88.1/g<t>-<i>", account "w<t>"
        const auto dash = e.key.find('-');
        if (dash == std::string::npos || "w" + e.key.substr(6, dash - 6) != e.account) {
            ++misattributed;
        }
    }
    CHECK(misattributed == 0);
}

TEST_CASE("submit: every completion runs with one result per operation") {
    TempDir dir;
    auto reg = Registry::open(options_in(dir));
    const int per_thread = reduced() ? 50 : 200;
    std::mutex m;
    std::condition_variable cv;
    int done = 0;
    int wrong = 0;
    auto submitter = [&](int t) {
        for (int i = 0; i < per_thread; ++i) {
            WriteBatch batch;
            const std::size_t n = 1 + static_cast<std::size_t>(i % 3);
            for (std::size_t k = 0; k < n; ++k) {
                const std::string tag =
                    std::to_string(t) + "-" + std::to_string(i) + "-" + std::to_string(k);
                batch.ops.push_back(put("88.1/s" + tag, small_record(tag)));
            }
            reg->submit(std::move(batch), [&, n](BatchResult r) {
                std::lock_guard lock(m);
                if (r.size() != n) {
                    ++wrong;
                }
                for (const auto& op : r) {
                    if (op.outcome != Outcome::created) {
                        ++wrong;
                    }
                }
                ++done;
                cv.notify_all();
            });
        }
    };
    std::thread a(submitter, 0), b(submitter, 1);
    a.join();
    b.join();
    REQUIRE(wait_for(m, cv, done, 2 * per_thread));
    std::lock_guard lock(m);
    CHECK(done == 2 * per_thread);
    CHECK(wrong == 0);
    // 1 + 2 + 3 operations per three batches.
    int expected = 0;
    for (int i = 0; i < per_thread; ++i) {
        expected += 1 + i % 3;
    }
    CHECK(reg->snapshot().count_all() == static_cast<std::uint64_t>(2 * expected));
}

TEST_CASE("backpressure and max_group_ops: small queues still complete everything") {
    TempDir dir;
    auto options = options_in(dir);
    options.max_queued_ops = 4;
    options.max_group_ops = 3;
    auto reg = Registry::open(options);
    const auto commits_before = reg->stats().commits;
    const int per_thread = reduced() ? 40 : 120;
    std::mutex m;
    std::condition_variable cv;
    int done = 0;
    int wrong = 0;
    int total_ops = 0;
    auto submitter = [&](int t) {
        for (int i = 0; i < per_thread; ++i) {
            // 1..3 operations per batch, so that a group never needs to exceed max_group_ops.
            const std::size_t n = 1 + static_cast<std::size_t>((i + t) % 3);
            WriteBatch batch;
            for (std::size_t k = 0; k < n; ++k) {
                const std::string tag =
                    std::to_string(t) + "-" + std::to_string(i) + "-" + std::to_string(k);
                batch.ops.push_back(put("88.1/bp" + tag, small_record(tag)));
            }
            {
                std::lock_guard lock(m);
                total_ops += static_cast<int>(n);
            }
            reg->submit(std::move(batch), [&, n](BatchResult r) {
                std::lock_guard lock(m);
                if (r.size() != n) {
                    ++wrong;
                }
                for (const auto& op : r) {
                    wrong += op.outcome == Outcome::created ? 0 : 1;
                }
                ++done;
                cv.notify_all();
            });
        }
    };
    std::thread a(submitter, 0), b(submitter, 1);
    a.join();
    b.join();
    REQUIRE(wait_for(m, cv, done, 2 * per_thread));
    std::lock_guard lock(m);
    CHECK(wrong == 0);
    // A batch larger than the whole queue limit is still admitted (into an empty queue).
    WriteBatch large;
    for (int k = 0; k < 10; ++k) {
        large.ops.push_back(put("88.1/large-" + std::to_string(k), small_record("l")));
    }
    const auto results = reg->write(std::move(large));
    CHECK(results.size() == 10);
    const auto stats = reg->stats();
    // No group folded more than 3 operations of these batches.
    CHECK(stats.commits - commits_before >= static_cast<std::uint64_t>((total_ops + 2) / 3));
    CHECK(reg->snapshot().count_all() == static_cast<std::uint64_t>(total_ops + 10));
}

TEST_CASE("destroying the registry completes every queued batch; later submits are unavailable") {
    TempDir dir;
    auto options = options_in(dir);
    const int n = reduced() ? 100 : 300;
    std::mutex m;
    int done = 0;
    int not_created = 0;
    int nested_done = 0;
    int nested_unavailable = 0;
    int nested_other = 0;
    std::vector<std::string> nested_committed;
    std::atomic<bool> shutting_down{false};
    std::condition_variable shutdown_cv;
    Registry* raw = nullptr;
    {
        auto reg = Registry::open(options);
        raw = reg.get();
        for (int i = 0; i < n; ++i) {
            WriteBatch batch;
            // (emplace into reserved space: GCC 12 reports a false maybe-uninitialized on the
            // variant's relocation path otherwise.)
            batch.ops.reserve(1);
            batch.ops.emplace_back(
                put("88.1/q" + std::to_string(i), small_record(std::to_string(i))));
            reg->submit(std::move(batch), [&, i](BatchResult r) {
                {
                    std::lock_guard lock(m);
                    ++done;
                    if (r.size() != 1 || r[0].outcome != Outcome::created) {
                        ++not_created;
                    }
                }
                if (i == 0) {
                    // Hold the writer until the destructor has begun, so that the other batches
                    // are still queued at shutdown and the late submits below really come after
                    // it began (the destructor marks shutdown before it waits for the writer).
                    std::unique_lock lock(m);
                    shutdown_cv.wait_for(lock, std::chrono::seconds(30),
                                         [&] { return shutting_down.load(); });
                    lock.unlock();
                    std::this_thread::sleep_for(std::chrono::milliseconds(200));
                }
                if (shutting_down.load() && i % 10 == 0) {
                    // The registry is being destroyed: a new batch must complete at once with
                    // unavailable (or, if it slipped in before shutdown began, commit normally).
                    WriteBatch late;
                    const std::string h = "88.1/late" + std::to_string(i);
                    late.ops.push_back(put(h, small_record("late")));
                    late.ops.push_back(put(h + "b", small_record("late")));
                    raw->submit(std::move(late), [&, h](BatchResult lr) {
                        std::lock_guard lock(m);
                        ++nested_done;
                        bool all_unavailable = lr.size() == 2;
                        bool all_created = lr.size() == 2;
                        for (const auto& op : lr) {
                            all_unavailable = all_unavailable &&
                                              op.error.code == Errc::unavailable &&
                                              op.outcome == Outcome::failed;
                            all_created = all_created && op.outcome == Outcome::created;
                        }
                        if (all_unavailable) {
                            ++nested_unavailable;
                        } else if (all_created) {
                            nested_committed.push_back(h);
                        } else {
                            ++nested_other;
                        }
                    });
                }
            });
        }
        {
            std::lock_guard lock(m);
            shutting_down = true;
        }
        shutdown_cv.notify_all();
        // reg is destroyed here with the batches after the first still queued.
    }
    std::lock_guard lock(m);
    CHECK(done == n);
    CHECK(not_created == 0);
    CHECK(nested_other == 0);
    CHECK(nested_done == nested_unavailable + static_cast<int>(nested_committed.size()));
    CHECK(nested_unavailable > 0);

    auto reg = Registry::open(options);
    auto snap = reg->snapshot();
    int missing = 0;
    for (int i = 0; i < n; ++i) {
        if (!snap.contains(handle("88.1/q" + std::to_string(i)))) {
            ++missing;
        }
    }
    CHECK(missing == 0);
    CHECK(snap.count_all() == static_cast<std::uint64_t>(n) + 2 * nested_committed.size());
}

namespace {

template <class Predicate> bool eventually_true(Predicate&& predicate) {
    for (int i = 0; i < 1000; ++i) {
        if (predicate())
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return predicate();
}

WriteBatch puts(const std::string& tag, int n) {
    WriteBatch batch;
    batch.ops.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i)
        batch.ops.emplace_back(
            put("88.1/" + tag + "-" + std::to_string(i), small_record(std::to_string(i))));
    return batch;
}

} // namespace

TEST_CASE("try_submit: a full queue is refused as a value, untouched, and the caller is woken") {
    TempDir dir;
    auto options = options_in(dir);
    options.max_queued_ops = 3;
    auto reg = Registry::open(options);
    std::mutex m;
    std::condition_variable cv;
    int completed = 0;
    auto count = [&](BatchResult r) {
        std::lock_guard lock(m);
        completed += static_cast<int>(r.size());
        cv.notify_all();
    };
    std::atomic<int> woken{0};
    {
        WriterGate gate(*reg);
        // Room for 3 operations: the first batch fits; the second (2 more) does not.
        WriteBatch first = puts("a", 2), second = puts("b", 2);
        Completion done_first = count, done_second = count;
        CHECK(reg->try_submit(first, done_first) == SubmitStatus::queued);
        CHECK(reg->try_submit(second, done_second, [&] { woken.fetch_add(1); }) ==
              SubmitStatus::full);
        CHECK(second.ops.size() == 2); // left as it was, to be offered again
        CHECK(done_second);
        CHECK(reg->stats().queued_ops == 2);
        CHECK(reg->stats().submits_refused == 1);
        // Refused again while nothing moved: one more waiter; a one-op batch still fits.
        CHECK(reg->try_submit(second, done_second, [&] { woken.fetch_add(1); }) ==
              SubmitStatus::full);
        WriteBatch single = puts("c", 1);
        Completion done_single = count;
        CHECK(reg->try_submit(single, done_single) == SubmitStatus::queued);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        CHECK(woken.load() == 0); // the writer is held: nobody is woken early
        gate.open();
        // The writer takes the queue and wakes both waiters (once each); the retry now fits.
        std::unique_lock lock(m);
        REQUIRE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return completed == 3; }));
        lock.unlock();
        REQUIRE(eventually_true([&] { return woken.load() == 2; }));
        CHECK(reg->try_submit(second, done_second) == SubmitStatus::queued);
        lock.lock();
        REQUIRE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return completed == 5; }));
    }
    CHECK(woken.load() == 2);
    for (const char* h : {"88.1/a-0", "88.1/a-1", "88.1/b-0", "88.1/b-1", "88.1/c-0"})
        CHECK(exists(*reg, h));
    CHECK(reg->snapshot().count_all() == 5);
}

TEST_CASE("try_submit: waiters are woken at shutdown, and a retry then is unavailable") {
    TempDir dir;
    auto options = options_in(dir);
    options.max_queued_ops = 1;
    std::atomic<int> woken{0};
    std::atomic<int> unavailable{0};
    Registry* raw = nullptr;
    {
        auto reg = Registry::open(options);
        raw = reg.get();
        auto gate = std::make_unique<WriterGate>(*reg);
        WriteBatch first = puts("s", 1);
        Completion ignore = [](BatchResult) {};
        REQUIRE(reg->try_submit(first, ignore) == SubmitStatus::queued);
        WriteBatch kept = puts("k", 1);
        Completion done = [&](BatchResult r) {
            if (r.size() == 1 && r[0].error.code == Errc::unavailable)
                unavailable.fetch_add(1);
        };
        // The waiter retries from inside the wake-up, as a caller that is already shutting down
        // might: that retry must complete at once (unavailable) instead of waiting.
        auto retry = [&] {
            woken.fetch_add(1);
            if (raw->try_submit(kept, done) != SubmitStatus::queued)
                woken.fetch_add(100); // must not happen
        };
        REQUIRE(reg->try_submit(kept, done, retry) == SubmitStatus::full);
        // Destroy while the writer is held: the destructor marks shutdown and wakes the waiter
        // (on this thread) before it waits for the writer; the gate opens from another thread.
        std::thread opener([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            gate->open();
        });
        reg.reset();
        opener.join();
    }
    CHECK(woken.load() == 1);
    CHECK(unavailable.load() == 1);
}
