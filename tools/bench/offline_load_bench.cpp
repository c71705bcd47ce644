// offline_load_bench — `idctl load --offline` end to end: generates an NDJSON file of steel
// records (~420 encoded bytes each, the shape registry_bench uses), initialises a fresh node with
// `idctl init`, runs the real `idctl --json load --offline` on it and reads its summary.
//
//   offline_load_bench [--sorted N] [--unsorted M] [--dir DIR] [--sort-memory SIZE] [--keep]
//
// Phases: N records in key order (the MDB_APPEND path), then M records in random order (sorted
// through spilled runs first). Time includes reading and parsing the file, the writes, and the
// final sync. Prints a table, then `bench: <name> <value> <unit>` lines (docs/performance.md).
#include <CLI/CLI.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::string run(const std::string& command) {
    std::string out;
    std::FILE* p = ::popen(command.c_str(), "r");
    if (p == nullptr) {
        throw std::runtime_error("cannot run " + command);
    }
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) {
        out.append(buf, n);
    }
    const int status = ::pclose(p);
    if (status != 0 && WEXITSTATUS(status) != 0) {
        throw std::runtime_error(command + " failed (exit " + std::to_string(WEXITSTATUS(status)) +
                                 "): " + out);
    }
    return out;
}

/// The NDJSON line of record i (same fields as registry_bench's record_values).
void append_line(std::string& out, std::uint64_t i) {
    char buf[1024];
    const auto n = static_cast<unsigned long long>(i);
    const int len = std::snprintf(
        buf, sizeof buf,
        R"({"handle":"88.118.8/SN-2024-%010llu","values":[)"
        R"({"index":1,"type":"URL","data":{"format":"string","value":"https://steel.example.cn/coil/%llu"}},)"
        R"({"index":2000,"type":"heat_no","data":{"format":"string","value":"H2024-%llu"}},)"
        R"({"index":2001,"type":"grade","data":{"format":"string","value":"Q235B"}},)"
        R"({"index":2002,"type":"standard","data":{"format":"string","value":"GB/T 700-2006"}},)"
        R"({"index":2003,"type":"dimensions","data":{"format":"string","value":"2.75x1250 mm"}},)"
        R"({"index":2004,"type":"batch","data":{"format":"string","value":"B%llu-07"}},)"
        R"({"index":2005,"type":"mill_cert","data":{"format":"string","value":"MC-2024-%llu-HRC-QA-LINE2"}}]})"
        "\n",
        n, n, n, n, n);
    out.append(buf, static_cast<std::size_t>(len));
}

void generate(const fs::path& file, std::uint64_t count, bool shuffled) {
    std::vector<std::uint64_t> order(count);
    std::iota(order.begin(), order.end(), 0);
    if (shuffled) {
        std::shuffle(order.begin(), order.end(), std::mt19937_64(42));
    }
    std::FILE* f = std::fopen(file.c_str(), "wb");
    if (f == nullptr) {
        throw std::runtime_error("cannot write " + file.string());
    }
    std::string chunk;
    for (std::uint64_t i = 0; i < count; ++i) {
        append_line(chunk, order[i]);
        if (chunk.size() > (8 << 20)) {
            std::fwrite(chunk.data(), 1, chunk.size(), f);
            chunk.clear();
        }
    }
    std::fwrite(chunk.data(), 1, chunk.size(), f);
    // On disk before the load starts: otherwise the load shares the disk and the page cache with
    // the write-back of gigabytes the generator just wrote (a migration reads a file at rest).
    if (std::fflush(f) != 0 || ::fsync(::fileno(f)) != 0) {
        throw std::runtime_error("syncing " + file.string() + " failed");
    }
    if (std::fclose(f) != 0) {
        throw std::runtime_error("writing " + file.string() + " failed");
    }
}

/// CPU seconds (user + system) of the waited-for children so far: on a shared machine the
/// wall-clock rate depends on what else runs, the CPU per record much less.
double children_cpu_seconds() {
    rusage u{};
    ::getrusage(RUSAGE_CHILDREN, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct Phase {
    std::string name;
    std::uint64_t records = 0;
    double file_mb = 0;
    double seconds = 0;
    double db_mb = 0;
    double cpu_seconds = 0; // idctl's user + system time (both of its threads)
    std::string summary;
};

Phase measure(const std::string& idctl, const fs::path& dir, const std::string& name,
              std::uint64_t count, bool shuffled, const std::string& sort_memory, bool keep) {
    Phase p;
    p.name = name;
    p.records = count;
    const fs::path file = dir / (name + ".ndjson");
    const fs::path db = dir / (name + "-db");
    fs::remove_all(db);
    std::fprintf(stderr, "generating %llu %s records...\n", static_cast<unsigned long long>(count),
                 shuffled ? "shuffled" : "sorted");
    generate(file, count, shuffled);
    p.file_mb = static_cast<double>(fs::file_size(file)) / 1e6;
    run("'" + idctl + "' init --data-dir '" + db.string() + "' --node-prefix 88.118");
    std::fprintf(stderr, "loading...\n");
    const double cpu_start = children_cpu_seconds();
    const auto start = Clock::now();
    p.summary = run("'" + idctl + "' --json load --offline --sort-memory " + sort_memory +
                    " --data-dir '" + db.string() + "' '" + file.string() + "'");
    p.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    p.cpu_seconds = children_cpu_seconds() - cpu_start;
    p.db_mb = static_cast<double>(fs::file_size(db / "data.mdb")) / 1e6;
    if (p.summary.find("\"created\":" + std::to_string(count)) == std::string::npos) {
        throw std::runtime_error("unexpected load summary: " + p.summary);
    }
    if (!keep) {
        fs::remove(file);
        fs::remove_all(db);
    }
    return p;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"offline_load_bench — idctl load --offline, sorted and unsorted"};
    std::uint64_t sorted = 1000000, unsorted = 500000;
    std::string dir = "var/bench-offline", sort_memory = "256MiB";
    std::string idctl = IDNODE_IDCTL_BINARY;
    bool keep = false;
    app.add_option("--sorted", sorted, "records in key order (default 1,000,000; 0 = skip)");
    app.add_option("--unsorted", unsorted, "records in random order (default 500,000; 0 = skip)");
    app.add_option("--dir", dir, "scratch directory (default var/bench-offline)");
    app.add_option("--sort-memory", sort_memory, "idctl --sort-memory (default 256MiB)");
    app.add_option("--idctl", idctl, "idctl binary");
    app.add_flag("--keep", keep, "keep the generated files and databases");
    CLI11_PARSE(app, argc, argv);

    fs::create_directories(dir);
    std::vector<Phase> phases;
    try {
        if (sorted > 0) {
            phases.push_back(measure(idctl, dir, "sorted", sorted, false, sort_memory, keep));
        }
        if (unsorted > 0) {
            phases.push_back(measure(idctl, dir, "unsorted", unsorted, true, sort_memory, keep));
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "offline_load_bench: %s\n", e.what());
        return 1;
    }
    std::printf("%-10s %12s %10s %10s %12s %10s %14s\n", "input", "records", "file MB", "seconds",
                "records/s", "db MB", "CPU us/record");
    for (const auto& p : phases) {
        std::printf("%-10s %12llu %10.0f %10.2f %12.0f %10.0f %14.2f\n", p.name.c_str(),
                    static_cast<unsigned long long>(p.records), p.file_mb, p.seconds,
                    static_cast<double>(p.records) / p.seconds, p.db_mb,
                    p.cpu_seconds * 1e6 / static_cast<double>(p.records));
    }
    for (const auto& p : phases) {
        std::printf("bench: offline_load_%s %.0f records/s\n", p.name.c_str(),
                    static_cast<double>(p.records) / p.seconds);
        std::printf("bench: offline_load_%s_cpu %.2f us/record\n", p.name.c_str(),
                    p.cpu_seconds * 1e6 / static_cast<double>(p.records));
    }
    return 0;
}
