// `idctl load --offline --data-dir DIR FILE`: NDJSON or CSV straight into a stopped node's LMDB
// through registry::OfflineLoader. Rejected lines go to FILE.rejects.ndjson with reasons; exit 3
// when some were rejected, 1 when the load failed (nothing is reported as loaded then).
#include "cli.hpp"
#include "file_lines.hpp"
#include "load.hpp"
#include "parallel_ndjson.hpp"
#include "record_io.hpp"

#include "idnode/registry/offline_load.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <unistd.h>

namespace idnode::idctl {

using namespace idnode::registry;

namespace {

std::string rejection_line(const LoadRejection& r) {
    boost::json::object o{{"line", r.line},
                          {"handle", r.handle},
                          {"error", boost::json::object{{"code", errc_name(r.error.code)},
                                                        {"message", r.error.message}}}};
    return boost::json::serialize(o);
}

} // namespace

std::string load_format(const LoadArgs& a) {
    std::string format = a.format;
    if (format.empty()) {
        format = a.file.size() >= 4 && a.file.compare(a.file.size() - 4, 4, ".csv") == 0 ? "csv"
                                                                                         : "ndjson";
    }
    return format == "csv" || format == "ndjson" ? format : std::string();
}

namespace {

int load_offline(const LoadArgs& a, const GlobalOptions& global) {
    PutMode mode;
    if (a.mode == "create") {
        mode = PutMode::create;
    } else if (a.mode == "upsert") {
        mode = PutMode::upsert;
    } else if (a.mode == "replace") {
        mode = PutMode::replace;
    } else {
        return fail("load", "--mode must be create, upsert or replace", kExitUsage);
    }
    const auto sort_memory = parse_size(a.sort_memory);
    const auto max_db_size = parse_size(a.max_db_size);
    if (!sort_memory || *sort_memory < (1u << 20)) {
        return fail("load", "--sort-memory must be a size of at least 1MiB", kExitUsage);
    }
    if (!max_db_size) {
        return fail("load", "--max-db-size must be a size like 64GiB", kExitUsage);
    }
    const std::string format = load_format(a);
    if (format.empty()) {
        return fail("load", "--format must be ndjson or csv", kExitUsage);
    }
    if (format == "ndjson" && !a.template_version.empty()) {
        return fail("load", "--template applies to CSV (NDJSON lines carry templateVersion)",
                    kExitUsage);
    }
    FileLines reader(a.file);
    if (!reader.is_open()) {
        return fail("load", "cannot open " + a.file + ": " + std::strerror(errno));
    }
    // A migration file is read once: keep it from filling the page cache (DropBehind).
    reader.drop_consumed_pages();
    const std::string rejects_path =
        !a.rejects.empty() ? a.rejects
                           : (a.file == "-" ? std::string("stdin") : a.file) + ".rejects.ndjson";
    std::error_code ec;
    std::filesystem::remove(rejects_path, ec); // a stale file from an earlier run would mislead
    std::ofstream rejects;
    bool rejects_failed = false;
    auto sink = [&](const LoadRejection& r) {
        if (!rejects.is_open()) {
            rejects.open(rejects_path, std::ios::out | std::ios::trunc);
        }
        rejects << rejection_line(r) << '\n';
        rejects_failed = rejects_failed || !rejects;
    };

    OfflineLoadOptions options;
    options.data_dir = a.data_dir;
    options.mode = mode;
    options.sort_memory_bytes = *sort_memory;
    options.temp_dir = a.temp_dir;
    options.max_db_size = *max_db_size;
    std::unique_ptr<OfflineLoader> loader;
    try {
        loader = OfflineLoader::open(options, sink);
    } catch (const StartupError& e) {
        return fail("load", e.what());
    }

    const auto started = std::chrono::steady_clock::now();
    std::string_view line;
    std::uint64_t line_no = 0;
    InputRecord record;
    LineError error;
    NdjsonReader ndjson;
    std::optional<CsvReader> csv;
    if (format == "csv") {
        ++line_no;
        if (!reader.next(line)) {
            return fail("load", a.file + " is empty (a CSV needs a header)");
        }
        std::optional<std::string> version;
        if (!a.template_version.empty()) {
            version = a.template_version;
        }
        auto r = CsvReader::from_header(line, version);
        if (!r) {
            return fail("load", a.file + ": " + r.error().message);
        }
        csv.emplace(std::move(r).value());
    }
    if (!csv && a.parse_threads > 0) {
        // NDJSON on worker threads, handed to the loader in input order (parallel_ndjson.hpp).
        ParallelNdjsonOptions parallel;
        parallel.threads = static_cast<unsigned>(a.parse_threads);
        parallel.drop_consumed_pages = true;
        std::string read_error;
        const bool read_ok = parse_ndjson_parallel(
            reader.stream(), parallel,
            [&](std::uint64_t n, std::string_view handle, std::string_view record) {
                loader->add_encoded(n, handle, record);
            },
            [&](std::uint64_t n, const LineError& e) { loader->reject(n, e.handle, e.error); },
            read_error);
        if (!read_ok) {
            return fail("load", "reading " + a.file + " failed: " + read_error);
        }
    }
    std::string encoded;
    while ((csv || a.parse_threads == 0) && reader.next(line)) {
        ++line_no;
        if (is_blank_line(line)) {
            continue;
        }
        if (csv) {
            if (csv->parse(line, record, error)) {
                loader->add(line_no, record.handle, std::move(record.values));
            } else {
                loader->reject(line_no, error.handle, error.error);
            }
            continue;
        }
        // NDJSON: straight into the stored encoding (no JSON document, no value objects).
        if (ndjson.parse_encoded(line, record.handle, encoded, error)) {
            loader->add_encoded(line_no, record.handle, encoded); // copied: `encoded` is reused
        } else {
            loader->reject(line_no, error.handle, error.error);
        }
    }
    if (reader.error()) {
        return fail("load", "reading " + a.file + " failed");
    }
    auto summary = loader->finish();
    loader.reset();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (!summary) {
        return fail("load", "the load did not complete: " + summary.error().message +
                                " (records written so far stay; run the load again)");
    }
    if (rejects.is_open()) {
        rejects.close();
        if (rejects_failed || !rejects) {
            return fail("load", "writing " + rejects_path + " failed");
        }
    }
    const LoadSummary& s = *summary;
    const double rate = seconds > 0 ? static_cast<double>(s.records) / seconds : 0;
    if (global.json) {
        print_json(std::cout,
                   boost::json::object{{"records", s.records},
                                       {"created", s.created},
                                       {"replaced", s.replaced},
                                       {"unchanged", s.unchanged},
                                       {"rejected", s.rejected},
                                       {"sorted", s.sorted},
                                       {"runs", s.runs},
                                       {"seconds", seconds},
                                       {"records_per_second", rate},
                                       {"rejects_file", s.rejected ? rejects_path : ""}});
    } else {
        print_table(
            std::cout,
            {"records", "created", "replaced", "unchanged", "rejected", "sorted", "seconds",
             "records/s"},
            {{std::to_string(s.records), std::to_string(s.created), std::to_string(s.replaced),
              std::to_string(s.unchanged), std::to_string(s.rejected),
              s.sorted ? "yes" : "no (" + std::to_string(s.runs) + " runs)",
              std::to_string(seconds), std::to_string(static_cast<std::uint64_t>(rate))}});
        if (s.rejected != 0) {
            std::cout << "rejected records: " << rejects_path << '\n';
        }
    }
    return s.rejected != 0 ? kExitPartial : kExitOk;
}

} // namespace

Command add_load_command(CLI::App& root, const GlobalOptions& global) {
    auto a = std::make_shared<LoadArgs>();
    auto* cmd = root.add_subcommand("load", "load identifiers from NDJSON or CSV");
    cmd->add_flag("--offline", a->offline,
                  "write straight into a stopped node's database (needs --data-dir)");
    cmd->add_option("--data-dir", a->data_dir, "the node's data directory (offline)");
    cmd->add_option("file", a->file, "NDJSON or CSV file, - for stdin")->required();
    cmd->add_option("--format", a->format, "ndjson or csv (default: by the file's extension)");
    cmd->add_option("--mode", a->mode, "create (default), upsert or replace");
    cmd->add_option("--template", a->template_version,
                    "template version recorded on every CSV row (value 1001 TEMPLATE)");
    cmd->add_option("--rejects", a->rejects,
                    "where rejected lines go (default FILE.rejects.ndjson)");
    cmd->add_option("--sort-memory", a->sort_memory,
                    "memory for sorting unsorted input before spilling runs (default 256MiB)");
    cmd->add_option("--temp-dir", a->temp_dir, "where sort runs go (default: the data directory)");
    cmd->add_option("--max-db-size", a->max_db_size, "database size limit (default 64GiB)");
    cmd->add_option("--parse-threads", a->parse_threads,
                    "threads parsing NDJSON lines of an offline load (default 2; 0 = the reading "
                    "thread)")
        ->check(CLI::Range(0, 64));
    cmd->add_option("--streams", a->streams, "parallel HTTPS streams (online, default 2)")
        ->check(CLI::Range(1, 64));
    cmd->add_flag("--resume", a->resume,
                  "continue an interrupted online load from its checkpoint file");
    cmd->add_option("--checkpoint", a->checkpoint,
                    "checkpoint file of the online load (default FILE.checkpoint)");
    cmd->add_option("--progress-interval", a->progress_interval_ms,
                    "milliseconds between progress updates and checkpoints (default 200 on a "
                    "terminal, 5000 otherwise)")
        ->check(CLI::Range(10, 3600000));
    return {cmd, [a, &global] {
                if (!a->offline) {
                    if (!a->data_dir.empty()) {
                        return fail("load", "--data-dir needs --offline", kExitUsage);
                    }
                    return load_online(*a, global);
                }
                if (a->resume || !a->checkpoint.empty()) {
                    return fail("load",
                                "--resume is for online loads (an offline load is simply run "
                                "again)",
                                kExitUsage);
                }
                if (a->data_dir.empty()) {
                    return fail("load", "--offline needs --data-dir", kExitUsage);
                }
                return load_offline(*a, global);
            }};
}

} // namespace idnode::idctl
