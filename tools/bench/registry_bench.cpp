// registry_bench — measures the registry against raw LMDB on the same data, in one run.
//
//   registry_bench [--records N] [--dir DIR] [--writers W] [--seconds S] [--gets-only]
//
// Phases (each on a fresh environment under DIR, removed afterwards):
//   1. batched durable puts, sorted keys      (Registry::write, 1,000 creates per batch)
//   2. batched durable puts, random key order
//   3. random point reads, one thread: the registry API (parse + snapshot + get, owned copy)
//      vs raw mdb_get on the same environment (reopened directly with LMDB)
//   4. group commit: W threads each writing single records durably for S seconds
// --gets-only runs phases 1 and 3 (tools/bench/run's scaling row needs only the reads; a durable
// random-order load of 10 M records alone would take most of an hour on this machine).
// Prints a table, then one `bench: <name> <value> <unit>` line per figure.
#include "coil_values.hpp"
#include "idnode/registry/registry.hpp"

#include <CLI/CLI.hpp>
#include <lmdb.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <random>
#include <thread>

using namespace idnode::registry;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string handle_text(std::uint64_t i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "88.118.8/SN-2024-%010llu", static_cast<unsigned long long>(i));
    return buf;
}

std::unique_ptr<Registry> open_fresh(const std::filesystem::path& dir) {
    std::filesystem::remove_all(dir);
    RegistryOptions o;
    o.data_dir = dir;
    o.initial_map_size = 1ull << 30;
    o.max_db_size = 64ull << 30;
    return Registry::open(o);
}

double load(Registry& registry, const std::vector<std::uint64_t>& order) {
    const auto start = Clock::now();
    constexpr std::size_t kBatch = 1000;
    for (std::size_t i = 0; i < order.size(); i += kBatch) {
        WriteBatch batch;
        for (std::size_t j = i; j < std::min(order.size(), i + kBatch); ++j) {
            batch.ops.push_back(PutRecord{parse_handle(handle_text(order[j])).value(),
                                          idnode::bench::coil_values(order[j]), PutMode::create});
        }
        for (const auto& r : registry.write(std::move(batch))) {
            if (r.outcome != Outcome::created) {
                std::fprintf(stderr, "load failed: %s\n", r.error.message.c_str());
                std::exit(1);
            }
        }
    }
    return static_cast<double>(order.size()) / seconds_since(start);
}

struct Row {
    std::string name, figure, reference, ratio;
};

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"registry_bench — registry vs raw LMDB"};
    std::uint64_t records = 1'000'000;
    std::string dir = "build/bench/registry";
    unsigned writers = 64;
    double group_seconds = 5;
    app.add_option("--records", records, "records to load (default 1,000,000)");
    app.add_option("--dir", dir, "scratch directory (removed afterwards)");
    app.add_option("--writers", writers, "concurrent single-record writers (default 64)");
    app.add_option("--seconds", group_seconds, "duration of the group-commit phase (default 5)");
    bool gets_only = false;
    app.add_flag(
        "--gets-only", gets_only,
        "only the sorted load and the random gets (no random-order load, no group commit)");
    CLI11_PARSE(app, argc, argv);

    std::vector<Row> rows;
    std::vector<std::string> lines;
    auto bench = [&](const std::string& name, double v, const char* unit) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "bench: %s %.0f %s", name.c_str(), v, unit);
        lines.emplace_back(buf);
    };
    auto fmt = [](double v) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.0f", v);
        return std::string(buf);
    };
    auto ratio = [](double v) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.2f", v);
        return std::string(buf);
    };

    std::vector<std::uint64_t> order(records);
    std::iota(order.begin(), order.end(), 0);
    const std::filesystem::path base(dir);

    // 1 + 2: batched puts
    double sorted_rate = 0, random_rate = 0;
    {
        auto registry = open_fresh(base / "sorted");
        sorted_rate = load(*registry, order);
        const auto st = registry->stats();
        std::printf("loaded %llu records sorted: %.1f MiB used, %.0f bytes/record, %llu commits\n",
                    static_cast<unsigned long long>(records), st.used_bytes / 1048576.0,
                    static_cast<double>(st.used_bytes) / static_cast<double>(records),
                    static_cast<unsigned long long>(st.commits));
    }
    rows.push_back({"batched durable puts, sorted keys (records/s)", fmt(sorted_rate), "", ""});
    bench("registry_put_sorted", sorted_rate, "records/s");
    if (!gets_only) {
        {
            std::vector<std::uint64_t> shuffled = order;
            std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937_64(42));
            auto registry = open_fresh(base / "random");
            random_rate = load(*registry, shuffled);
        }
        std::filesystem::remove_all(base / "random");
        rows.push_back({"batched durable puts, random keys (records/s)", fmt(random_rate), "", ""});
        bench("registry_put_random", random_rate, "records/s");
    }

    // 3: random point reads, registry API vs raw mdb_get, same keys in the same order. The
    // methods alternate in rounds so that noise from the rest of the machine hits all of them.
    const std::size_t lookups = std::min<std::uint64_t>(records, 1'000'000);
    std::vector<std::string> texts(lookups), keys(lookups);
    {
        std::mt19937_64 rng(7);
        for (std::size_t i = 0; i < lookups; ++i) {
            texts[i] = handle_text(rng() % records);
            keys[i] = fold_case(texts[i]);
        }
    }
    enum Method {
        api_get,
        api_visit,
        api_one_snapshot,
        raw_get,
        raw_renew,
        raw_pointer_only,
        kMethods
    };
    double elapsed[kMethods] = {};
    std::size_t found = 0;
    {
        RegistryOptions o;
        o.data_dir = base / "sorted";
        auto registry = Registry::open(o);
        // The reference opens the same files directly. MDB_NOLOCK: LMDB must not take the lock
        // file a second time in one process; nothing writes during this phase.
        MDB_env* env;
        mdb_env_create(&env);
        mdb_env_set_maxdbs(env, 16);
        mdb_env_set_mapsize(env, registry->stats().map_size);
        if (mdb_env_open(env, (base / "sorted").c_str(),
                         MDB_NOTLS | MDB_NORDAHEAD | MDB_RDONLY | MDB_NOLOCK, 0640) != 0) {
            std::fprintf(stderr, "cannot open the environment for the raw reference\n");
            return 1;
        }
        MDB_txn* txn;
        MDB_dbi dbi;
        // A handle opened in a read-only txn is private to it until that txn commits.
        mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn);
        mdb_dbi_open(txn, "ids_v1", 0, &dbi);
        mdb_txn_commit(txn);
        mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn);

        std::string copy;
        auto run = [&](Method m, std::size_t from, std::size_t to) {
            const auto start = Clock::now();
            switch (m) {
            case api_get:
                for (std::size_t i = from; i < to; ++i) {
                    auto r = registry->snapshot().get(*parse_handle(texts[i]));
                    found += r.ok() ? r->record.values.size() : 0;
                }
                break;
            case api_visit: // zero-copy: what the protocol server and JSON rendering use
                for (std::size_t i = from; i < to; ++i) {
                    (void)registry->snapshot().visit(
                        *parse_handle(texts[i]), [&](const RecordView& view) {
                            for (const ValueView& v : view) {
                                found += v.permissions.public_read() ? 1 : 0;
                            }
                        });
                }
                break;
            case api_one_snapshot: {
                auto snap = registry->snapshot();
                for (std::size_t i = from; i < to; ++i) {
                    auto r = snap.get(*parse_handle(texts[i]));
                    found += r.ok() ? r->record.values.size() : 0;
                }
                break;
            }
            case raw_get:
            case raw_renew:
            case raw_pointer_only:
                for (std::size_t i = from; i < to; ++i) {
                    if (m == raw_renew) {
                        mdb_txn_reset(txn);
                        mdb_txn_renew(txn);
                    }
                    MDB_val k{keys[i].size(), keys[i].data()}, v;
                    if (mdb_get(txn, dbi, &k, &v) != 0) {
                        std::fprintf(stderr, "raw lookup of %s failed\n", keys[i].c_str());
                        std::exit(1);
                    }
                    // The reference reads the value's bytes, as any consumer of a lookup must
                    // (raw_pointer_only shows the cost of mdb_get alone, the bytes untouched).
                    if (m != raw_pointer_only) {
                        copy.assign(static_cast<const char*>(v.mv_data), v.mv_size);
                    }
                    found += v.mv_size + copy.size();
                }
                break;
            default:
                break;
            }
            return seconds_since(start);
        };
        run(raw_get, 0, lookups); // warm both mappings over the same pages
        run(api_visit, 0, lookups);
        constexpr std::size_t kRounds = 10;
        for (std::size_t round = 0; round < kRounds; ++round) {
            const std::size_t from = lookups * round / kRounds,
                              to = lookups * (round + 1) / kRounds;
            for (int m = 0; m < kMethods; ++m) {
                elapsed[m] += run(static_cast<Method>(m), from, to);
            }
        }
        mdb_txn_abort(txn);
        mdb_env_close(env);
        if (found == 0) {
            std::fprintf(stderr, "lookups found nothing\n");
            return 1;
        }
    }
    const double n = static_cast<double>(lookups);
    const double api_rate = n / elapsed[api_get], visit_rate = n / elapsed[api_visit],
                 api_one_snapshot_rate = n / elapsed[api_one_snapshot],
                 raw_rate = n / elapsed[raw_get], raw_renew_rate = n / elapsed[raw_renew],
                 raw_pointer_rate = n / elapsed[raw_pointer_only];
    std::filesystem::remove_all(base / "sorted");
    rows.push_back({"random gets, registry API, snapshot per get (gets/s)", fmt(api_rate),
                    fmt(raw_rate), ratio(api_rate / raw_rate)});
    rows.push_back({"random gets, registry API zero-copy visit, snapshot per get (gets/s)",
                    fmt(visit_rate), fmt(raw_rate), ratio(visit_rate / raw_rate)});
    rows.push_back({"random gets, registry API, one snapshot (gets/s)", fmt(api_one_snapshot_rate),
                    fmt(raw_rate), ratio(api_one_snapshot_rate / raw_rate)});
    rows.push_back({"random gets, raw mdb_get with txn renew per get (gets/s)", fmt(raw_renew_rate),
                    fmt(raw_rate), ratio(raw_renew_rate / raw_rate)});
    rows.push_back({"random gets, raw mdb_get, value bytes not read (gets/s)",
                    fmt(raw_pointer_rate), fmt(raw_rate), ratio(raw_pointer_rate / raw_rate)});
    bench("registry_get_random", api_rate, "gets/s");
    bench("registry_get_random_one_snapshot", api_one_snapshot_rate, "gets/s");
    bench("registry_visit_random", visit_rate, "gets/s");
    bench("raw_mdb_get_random", raw_rate, "gets/s");
    bench("raw_mdb_get_renew_random", raw_renew_rate, "gets/s");
    bench("raw_mdb_get_pointer_only_random", raw_pointer_rate, "gets/s");
    lines.push_back("bench: registry_get_vs_raw ratio " + ratio(api_rate / raw_rate));
    lines.push_back("bench: registry_visit_vs_raw ratio " + ratio(visit_rate / raw_rate));

    // 4: group commit with W concurrent single-record durable writers.
    if (!gets_only) {
        auto registry = open_fresh(base / "group");
        std::atomic<bool> stop{false};
        std::atomic<std::uint64_t> next{0};
        std::vector<std::vector<double>> latencies(writers);
        std::vector<std::thread> threads;
        const auto start = Clock::now();
        for (unsigned t = 0; t < writers; ++t) {
            threads.emplace_back([&, t] {
                while (!stop.load(std::memory_order_relaxed)) {
                    const auto i = next.fetch_add(1);
                    const auto t0 = Clock::now();
                    auto r =
                        registry->write(PutRecord{parse_handle(handle_text(i)).value(),
                                                  idnode::bench::coil_values(i), PutMode::create});
                    if (r.outcome != Outcome::created) {
                        std::fprintf(stderr, "group write failed: %s\n", r.error.message.c_str());
                        std::exit(1);
                    }
                    latencies[t].push_back(seconds_since(t0) * 1e6);
                }
            });
        }
        std::this_thread::sleep_for(std::chrono::duration<double>(group_seconds));
        stop = true;
        for (auto& th : threads) {
            th.join();
        }
        const double elapsed = seconds_since(start);
        std::vector<double> all;
        for (auto& l : latencies) {
            all.insert(all.end(), l.begin(), l.end());
        }
        std::sort(all.begin(), all.end());
        const auto st = registry->stats();
        const double rate = static_cast<double>(all.size()) / elapsed;
        const double per_commit = static_cast<double>(st.committed_ops) /
                                  static_cast<double>(std::max<std::uint64_t>(st.commits, 1));
        const double p50 = all.empty() ? 0 : all[all.size() / 2];
        const double p99 = all.empty() ? 0 : all[all.size() * 99 / 100];
        rows.push_back(
            {"group commit, " + std::to_string(writers) + " single-record writers (records/s)",
             fmt(rate), "", ""});
        rows.push_back({"  records per commit (mean)", ratio(per_commit), "", ""});
        rows.push_back({"  write latency p50 / p99 (us)", fmt(p50) + " / " + fmt(p99), "", ""});
        bench("registry_group_commit_" + std::to_string(writers) + "w", rate, "records/s");
        bench("registry_group_commit_p50", p50, "us");
        bench("registry_group_commit_p99", p99, "us");
        bench("registry_group_commit_records_per_commit", per_commit, "records");
    }
    std::filesystem::remove_all(base / "group");

    std::printf("\n| measure (%llu records) | idnode registry | raw LMDB reference | ratio "
                "|\n|---|---:|---:|---:|\n",
                static_cast<unsigned long long>(records));
    for (const auto& r : rows) {
        std::printf("| %s | %s | %s | %s |\n", r.name.c_str(), r.figure.c_str(),
                    r.reference.c_str(), r.ratio.c_str());
    }
    std::printf("\n");
    for (const auto& l : lines) {
        std::printf("%s\n", l.c_str());
    }
    return 0;
}
