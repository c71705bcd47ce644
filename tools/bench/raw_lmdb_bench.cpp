// raw_lmdb_bench — the raw-LMDB reference points of tools/bench/run (rows 1 and 2 of its table,
// docs/performance.md#the-full-comparison-toolsbenchrun): the same keys and values idnode stores,
// written with nothing but mdb_put.
//
//   raw_lmdb_bench --source DATA_DIR --dir SCRATCH [--batch 5000] [--durable-batch 1000]
//                  [--clients 16] [--seconds 5]
//
// The pairs are read from the identifier table (ids_v1) of a node data directory that
// `idctl load --offline` filled, so the reference writes exactly the bytes idnode wrote for the
// identifiers (not its change log or counters, which are idnode's own overhead). Phases, each on a
// fresh environment in SCRATCH:
//   sorted      all pairs in key order, MDB_APPEND, one commit per --batch puts, MDB_NOSYNC and one
//               mdb_env_sync at the end: what `idctl load --offline` does with sorted input;
//   unsorted    the same pairs in a fixed random order, plain puts, same batches and sync policy:
//               the reference for an unsorted offline load;
//   durable     batches of --durable-batch puts, each commit synced (the reference for online bulk
//               registration), for --seconds;
//   single      --clients threads, each putting one new pair per synced transaction (LMDB
//               serialises them on its writer lock), for --seconds: latency p50/p99 including the
//               wait for the lock (the reference for durable single-record registration).
// Prints a table, then `bench: <name> <value> <unit>` lines (docs/performance.md). Exit 1 on any
// error.
#include <CLI/CLI.hpp>
#include <lmdb.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

void check(int rc, const char* what) {
    if (rc != MDB_SUCCESS) {
        throw std::runtime_error(std::string(what) + ": " + mdb_strerror(rc));
    }
}

/// All pairs of one table, in key order, in one arena.
struct Pairs {
    std::string arena;
    std::vector<std::size_t> key_at, key_len, value_at, value_len;
    std::size_t size() const { return key_at.size(); }
    MDB_val key(std::size_t i) const {
        return {key_len[i], const_cast<char*>(arena.data() + key_at[i])};
    }
    MDB_val value(std::size_t i) const {
        return {value_len[i], const_cast<char*>(arena.data() + value_at[i])};
    }
};

class Env {
public:
    Env(const fs::path& dir, unsigned flags) {
        fs::remove_all(dir);
        fs::create_directories(dir);
        check(mdb_env_create(&env_), "mdb_env_create");
        check(mdb_env_set_mapsize(env_, std::size_t{256} << 30), "mdb_env_set_mapsize");
        check(mdb_env_set_maxdbs(env_, 4), "mdb_env_set_maxdbs");
        check(mdb_env_open(env_, dir.c_str(), flags | MDB_NOTLS, 0640), "mdb_env_open");
        MDB_txn* txn = nullptr;
        check(mdb_txn_begin(env_, nullptr, 0, &txn), "mdb_txn_begin");
        check(mdb_dbi_open(txn, "ids_v1", MDB_CREATE, &dbi_), "mdb_dbi_open");
        check(mdb_txn_commit(txn), "mdb_txn_commit");
    }
    ~Env() { mdb_env_close(env_); }
    Env(const Env&) = delete;
    Env& operator=(const Env&) = delete;
    MDB_env* get() const { return env_; }
    MDB_dbi dbi() const { return dbi_; }

private:
    MDB_env* env_ = nullptr;
    MDB_dbi dbi_ = 0;
};

Pairs read_source(const fs::path& data_dir) {
    MDB_env* env = nullptr;
    check(mdb_env_create(&env), "mdb_env_create");
    check(mdb_env_set_maxdbs(env, 16), "mdb_env_set_maxdbs");
    check(mdb_env_open(env, data_dir.c_str(), MDB_RDONLY | MDB_NOTLS, 0640), "open --source");
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn), "mdb_txn_begin");
    MDB_dbi dbi = 0;
    check(mdb_dbi_open(txn, "ids_v1", 0, &dbi), "ids_v1 in --source");
    MDB_cursor* cur = nullptr;
    check(mdb_cursor_open(txn, dbi, &cur), "mdb_cursor_open");
    Pairs p;
    MDB_val k, v;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        p.key_at.push_back(p.arena.size());
        p.key_len.push_back(k.mv_size);
        p.arena.append(static_cast<const char*>(k.mv_data), k.mv_size);
        p.value_at.push_back(p.arena.size());
        p.value_len.push_back(v.mv_size);
        p.arena.append(static_cast<const char*>(v.mv_data), v.mv_size);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    if (p.size() == 0) {
        throw std::runtime_error("no identifiers in " + data_dir.string());
    }
    return p;
}

/// CPU seconds (user + system) used so far by this process: on a shared machine the wall-clock
/// rate depends on what else runs, the CPU per record much less.
double cpu_seconds() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct LoadFigures {
    double rate = 0;              // records/s (wall clock)
    double cpu_us_per_record = 0; // user + system
};

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

/// Offline-style load: batches, MDB_NOSYNC, one forced sync at the end.
LoadFigures offline_load(const fs::path& dir, const Pairs& pairs,
                         const std::vector<std::size_t>& order, std::size_t batch, bool append) {
    Env env(dir, MDB_NOSYNC);
    const auto start = Clock::now();
    const double cpu_start = cpu_seconds();
    for (std::size_t i = 0; i < order.size(); i += batch) {
        MDB_txn* txn = nullptr;
        check(mdb_txn_begin(env.get(), nullptr, 0, &txn), "mdb_txn_begin");
        const std::size_t end = std::min(order.size(), i + batch);
        for (std::size_t n = i; n < end; ++n) {
            MDB_val k = pairs.key(order[n]), v = pairs.value(order[n]);
            check(mdb_put(txn, env.dbi(), &k, &v, append ? MDB_APPEND : 0), "mdb_put");
        }
        check(mdb_txn_commit(txn), "mdb_txn_commit");
    }
    check(mdb_env_sync(env.get(), 1), "mdb_env_sync");
    const auto n = static_cast<double>(order.size());
    return LoadFigures{n / seconds_since(start), (cpu_seconds() - cpu_start) * 1e6 / n};
}

/// Durable batches (every commit synced) for `seconds`. Returns records/s.
double durable_batches(const fs::path& dir, const Pairs& pairs,
                       const std::vector<std::size_t>& order, std::size_t batch, double seconds) {
    Env env(dir, 0);
    const auto start = Clock::now();
    std::size_t done = 0;
    while (done < order.size() && seconds_since(start) < seconds) {
        MDB_txn* txn = nullptr;
        check(mdb_txn_begin(env.get(), nullptr, 0, &txn), "mdb_txn_begin");
        const std::size_t end = std::min(order.size(), done + batch);
        for (; done < end; ++done) {
            MDB_val k = pairs.key(order[done]), v = pairs.value(order[done]);
            check(mdb_put(txn, env.dbi(), &k, &v, 0), "mdb_put");
        }
        check(mdb_txn_commit(txn), "mdb_txn_commit");
    }
    return static_cast<double>(done) / seconds_since(start);
}

struct Latency {
    double rate = 0, p50_ms = 0, p99_ms = 0;
    std::size_t count = 0;
};

/// `clients` threads, one synced transaction per put, for `seconds`.
Latency durable_singles(const fs::path& dir, const Pairs& pairs,
                        const std::vector<std::size_t>& order, unsigned clients, double seconds) {
    Env env(dir, 0);
    std::atomic<std::size_t> next{0};
    std::mutex mu;
    std::vector<double> all;
    std::string error;
    const auto start = Clock::now();
    std::vector<std::thread> threads;
    for (unsigned c = 0; c < clients; ++c) {
        threads.emplace_back([&] {
            std::vector<double> mine;
            try {
                while (seconds_since(start) < seconds) {
                    const std::size_t n = next.fetch_add(1);
                    if (n >= order.size()) {
                        break;
                    }
                    const auto t0 = Clock::now();
                    MDB_txn* txn = nullptr;
                    check(mdb_txn_begin(env.get(), nullptr, 0, &txn), "mdb_txn_begin");
                    MDB_val k = pairs.key(order[n]), v = pairs.value(order[n]);
                    const int rc = mdb_put(txn, env.dbi(), &k, &v, 0);
                    if (rc != MDB_SUCCESS) {
                        mdb_txn_abort(txn);
                        check(rc, "mdb_put");
                    }
                    check(mdb_txn_commit(txn), "mdb_txn_commit");
                    mine.push_back(seconds_since(t0) * 1e3);
                }
            } catch (const std::exception& e) {
                std::lock_guard lock(mu);
                error = e.what();
            }
            std::lock_guard lock(mu);
            all.insert(all.end(), mine.begin(), mine.end());
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    const double elapsed = seconds_since(start);
    if (!error.empty()) {
        throw std::runtime_error(error);
    }
    Latency l;
    l.count = all.size();
    if (all.empty()) {
        return l;
    }
    std::sort(all.begin(), all.end());
    l.rate = static_cast<double>(all.size()) / elapsed;
    l.p50_ms = all[all.size() / 2];
    l.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
    return l;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"raw_lmdb_bench — raw LMDB puts of the identifiers a node stores"};
    std::string source, dir;
    std::size_t batch = 5000, durable_batch = 1000;
    unsigned clients = 16;
    double seconds = 5;
    app.add_option("--source", source, "node data directory filled by idctl load")->required();
    app.add_option("--dir", dir, "scratch directory (removed afterwards)")->required();
    app.add_option("--batch", batch, "puts per transaction, offline phases (idctl's default)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--durable-batch", durable_batch, "puts per synced transaction")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--clients", clients, "threads of the single-put phase")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--seconds", seconds, "length of each durable phase")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    CLI11_PARSE(app, argc, argv);

    try {
        const Pairs pairs = read_source(source);
        std::vector<std::size_t> sorted(pairs.size());
        std::iota(sorted.begin(), sorted.end(), std::size_t{0});
        std::vector<std::size_t> shuffled = sorted;
        std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937_64(42));
        const fs::path scratch(dir);

        const LoadFigures sorted_load =
            offline_load(scratch / "sorted", pairs, sorted, batch, true);
        const double sorted_rate = sorted_load.rate;
        fs::remove_all(scratch / "sorted");
        const LoadFigures unsorted_load =
            offline_load(scratch / "unsorted", pairs, shuffled, batch, false);
        const double unsorted_rate = unsorted_load.rate;
        fs::remove_all(scratch / "unsorted");
        const double durable_rate =
            durable_batches(scratch / "durable", pairs, shuffled, durable_batch, seconds);
        fs::remove_all(scratch / "durable");
        const Latency single =
            durable_singles(scratch / "single", pairs, shuffled, clients, seconds);
        fs::remove_all(scratch);
        if (single.count == 0) {
            throw std::runtime_error("the single-put phase completed nothing");
        }

        const double avg_value =
            static_cast<double>(pairs.arena.size()) / static_cast<double>(pairs.size());
        std::printf("\n| raw LMDB (%zu pairs, %.0f B key+value avg) | figure |\n| --- | ---: |\n",
                    pairs.size(), avg_value);
        std::printf("| sorted, MDB_APPEND, %zu/txn, NOSYNC + 1 sync | %.0f records/s |\n", batch,
                    sorted_rate);
        std::printf("| unsorted, %zu/txn, NOSYNC + 1 sync | %.0f records/s |\n", batch,
                    unsorted_rate);
        std::printf("| durable batches of %zu | %.0f records/s |\n", durable_batch, durable_rate);
        std::printf("| durable single puts, %u threads | %.0f/s, p50 %.3f ms, p99 %.3f ms |\n\n",
                    clients, single.rate, single.p50_ms, single.p99_ms);
        std::printf("bench: raw_lmdb_load_sorted %.0f records/s\n", sorted_rate);
        std::printf("bench: raw_lmdb_load_unsorted %.0f records/s\n", unsorted_rate);
        std::printf("bench: raw_lmdb_load_sorted_cpu %.2f us/record\n",
                    sorted_load.cpu_us_per_record);
        std::printf("bench: raw_lmdb_load_unsorted_cpu %.2f us/record\n",
                    unsorted_load.cpu_us_per_record);
        std::printf("bench: raw_lmdb_durable_batch_put %.0f records/s\n", durable_rate);
        std::printf("bench: raw_lmdb_durable_single_put %.0f records/s\n", single.rate);
        std::printf("bench: raw_lmdb_durable_single_put_p50 %.3f ms\n", single.p50_ms);
        std::printf("bench: raw_lmdb_durable_single_put_p99 %.3f ms\n", single.p99_ms);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "raw_lmdb_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
