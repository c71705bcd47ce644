// ndjson_read_bench — the CPU cost per record of the reading side of `idctl load --offline`
// (the thread that reads the file, scans each NDJSON line into the stored encoding and hands it to
// the OfflineLoader), measured in-process with the thread's own CPU clock, so that the machine's
// other load (and the registry's writer thread) do not blur it.
//
//   ndjson_read_bench FILE [--rounds R] [--data-dir DIR]
//
// Stages, each over the whole FILE, best of R rounds:
//   read    FileLines only (the file read and split into lines)
//   encode  + NdjsonReader::parse_encoded (scanner + RecordEncoder)
//   load    + OfflineLoader::add_encoded/finish into DIR (only with --data-dir: a node initialised
//           with `idctl init` whose prefix homes FILE's handles; loaded once, on round 1 —
//           later rounds would only find the records there; its writer thread is not counted)
// Prints a table, then `bench: <name> <value> <unit>` lines (docs/performance.md).
#include "file_lines.hpp"
#include "record_io.hpp"

#include "idnode/registry/offline_load.hpp"

#include <CLI/CLI.hpp>

#include <ctime>

#include <cstdio>
#include <string>

namespace {

using namespace idnode;

double thread_cpu_seconds() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Stage {
    std::uint64_t records = 0;
    std::uint64_t general = 0; // lines the fast scanner left to the general parser
    double cpu_seconds = 0;
};

/// One pass over `file`; `encode` parses every line, `loader` (if any) takes the records.
Stage pass(const std::string& file, bool encode, registry::OfflineLoader* loader) {
    idctl::FileLines lines(file);
    if (!lines.is_open()) {
        throw std::runtime_error("cannot open " + file);
    }
    idctl::NdjsonReader reader;
    std::string handle, record;
    idctl::LineError error;
    std::string_view line;
    Stage s;
    const double start = thread_cpu_seconds();
    while (lines.next(line)) {
        ++s.records;
        if (!encode || line.empty()) {
            continue;
        }
        if (reader.parse_encoded(line, handle, record, error)) {
            if (loader != nullptr) {
                loader->add_encoded(s.records, handle, record);
            }
        } else if (loader != nullptr) {
            loader->reject(s.records, error.handle, error.error);
        }
    }
    if (loader != nullptr) {
        auto summary = loader->finish();
        if (!summary) {
            throw std::runtime_error("the load failed: " + summary.error().message);
        }
    }
    s.cpu_seconds = thread_cpu_seconds() - start;
    s.general = reader.general_lines();
    return s;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"CPU per record of idctl load --offline's reading thread"};
    std::string file, data_dir;
    int rounds = 3;
    app.add_option("file", file, "NDJSON file (e.g. offline_load_bench --keep's sorted.ndjson)")
        ->required();
    app.add_option("--rounds", rounds, "best of this many passes per stage")
        ->check(CLI::Range(1, 100));
    app.add_option("--data-dir", data_dir, "an initialised node to load into (adds 'load')");
    CLI11_PARSE(app, argc, argv);

    struct Row {
        const char* name;
        Stage best;
    };
    std::vector<Row> rows;
    try {
        for (const bool encode : {false, true}) {
            Stage best;
            for (int r = 0; r < rounds; ++r) {
                const Stage s = pass(file, encode, nullptr);
                if (r == 0 || s.cpu_seconds < best.cpu_seconds) {
                    best = s;
                }
            }
            rows.push_back({encode ? "encode" : "read", best});
        }
        if (!data_dir.empty()) {
            registry::OfflineLoadOptions options;
            options.data_dir = data_dir;
            std::uint64_t rejected = 0;
            auto loader = registry::OfflineLoader::open(
                options, [&](const registry::LoadRejection&) { ++rejected; });
            rows.push_back({"load", pass(file, true, loader.get())});
            if (rejected != 0) {
                std::fprintf(stderr, "warning: %llu records rejected\n",
                             static_cast<unsigned long long>(rejected));
            }
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ndjson_read_bench: %s\n", e.what());
        return 1;
    }
    std::printf("%-8s %12s %14s %14s\n", "stage", "records", "general lines", "cpu us/record");
    for (const Row& row : rows) {
        std::printf("%-8s %12llu %14llu %14.3f\n", row.name,
                    static_cast<unsigned long long>(row.best.records),
                    static_cast<unsigned long long>(row.best.general),
                    row.best.cpu_seconds * 1e6 / static_cast<double>(row.best.records));
    }
    for (const Row& row : rows) {
        std::printf("bench: ndjson_read_%s_cpu %.3f us/record\n", row.name,
                    row.best.cpu_seconds * 1e6 / static_cast<double>(row.best.records));
    }
    return 0;
}
