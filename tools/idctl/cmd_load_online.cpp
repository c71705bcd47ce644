// `idctl load FILE` over HTTPS: NDJSON lines are sent as they are; CSV rows (header `handle` plus
// value columns; with --template VERSION a plain column named after one of the template's idTypes
// takes that item's idIndex) are turned into bulk lines here. The SDK's bulk call spreads them
// over --streams parallel connections.
//
// Rejects: rows that cannot be read here (CSV cell count, quoting) and records the node refused
// go to FILE.rejects.ndjson as {"line","handle","error":{"code","message"}}; exit 3 then.
//
// Checkpoint and --resume: every acknowledged record marks its input line done; the checkpoint is
// the highest line up to which every record is acknowledged (and the byte offset after it). It is
// written atomically (temporary file, fsync, rename) before anything is sent (a fresh load: at
// line 0), at every progress tick, on Ctrl-C and on failure, and removed when the load completes,
// so that a load interrupted at any point, even before its first acknowledged batch, can be
// resumed. Ctrl-C before the records are being sent (e.g. while a template is looked up) ends
// idctl at once; from then on it stops the load at the next tick. `--resume` checks that the file
// is the same (path, size, modification time, format, mode, template), seeks to the offset, drops
// the rejects of lines after the checkpoint (they are about to be read again) and continues. Lines
// after the checkpoint that the node had already committed come back `unchanged` in create mode, so
// the final state has no duplicates; in upsert/replace mode they are simply written again.
//
// Progress: on a terminal a bar redrawn in place on stderr (records, % of the file, rate, ETA);
// otherwise a plain line on stderr every 5 s. The summary goes to stdout (a table, or --json).
//
// Test hook: IDCTL_TEST_RAISE_AFTER="SIGNAL:N" raises SIGNAL (a number) in this process once N
// results have arrived — how the integration test kills a load half way (SIGKILL: a crash, the
// checkpoint is what the last tick wrote) or interrupts it (SIGINT: like Ctrl-C).
#include "file_lines.hpp"
#include "load.hpp"
#include "online.hpp"
#include "record_io.hpp"

#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace idnode::idctl {

namespace json = boost::json;

namespace {

std::atomic<bool> g_interrupted{false}; // set by SIGINT/SIGTERM; the load stops at the next tick

extern "C" void on_interrupt(int) {
    g_interrupted = true;
}

// Ctrl-C before the records are being sent: nothing to drain, and the checkpoint is already on
// disk, so idctl ends at once with this message (prepared beforehand: a signal handler may only
// write and exit).
std::string g_setup_interrupt_message;

extern "C" void on_setup_interrupt(int) {
    [[maybe_unused]] const auto written =
        ::write(STDERR_FILENO, g_setup_interrupt_message.data(), g_setup_interrupt_message.size());
    ::_exit(kExitFailed);
}

struct FileIdentity {
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0;
};

std::optional<FileIdentity> identify(const std::string& path) {
    struct stat st {};
    if (path == "-" || ::stat(path.c_str(), &st) != 0) {
        return std::nullopt;
    }
    return FileIdentity{static_cast<std::uint64_t>(st.st_size),
                        static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 +
                            st.st_mtim.tv_nsec};
}

struct Checkpoint {
    std::uint64_t line = 0;   // every record up to and including this line is acknowledged
    std::uint64_t offset = 0; // byte offset just after that line
};

/// The fields that must match for --resume to continue a checkpoint.
json::object checkpoint_json(const LoadArgs& a, const std::string& format, const FileIdentity& id,
                             const Checkpoint& c) {
    return json::object{{"file", a.file},   {"size", id.size},   {"mtime_ns", id.mtime_ns},
                        {"format", format}, {"mode", a.mode},    {"template", a.template_version},
                        {"line", c.line},   {"offset", c.offset}};
}

/// Writes `text` to `path` atomically: a temporary file beside it, fsync, rename.
bool write_atomically(const std::string& path, const std::string& text) {
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return false;
    }
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ok = ::fsync(fd) == 0 && ok;
    ok = ::close(fd) == 0 && ok;
    return ok && std::rename(tmp.c_str(), path.c_str()) == 0;
}

std::string reject_line(std::uint64_t line, const std::string& handle, const std::string& code,
                        const std::string& message) {
    return json::serialize(
        json::object{{"line", line},
                     {"handle", handle},
                     {"error", json::object{{"code", code}, {"message", message}}}});
}

/// Keeps the rejects of lines up to `line` (those after it are about to be read again); returns
/// how many were kept, or nullopt when the file cannot be rewritten.
std::optional<std::uint64_t> truncate_rejects(const std::string& path, std::uint64_t line) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return 0;
    }
    std::string kept;
    std::uint64_t count = 0;
    for (std::string text; std::getline(in, text);) {
        boost::system::error_code ec;
        const json::value v = json::parse(text, ec);
        const json::object* o = ec ? nullptr : v.if_object();
        const json::value* n = o ? o->if_contains("line") : nullptr;
        if (n != nullptr && n->is_number() && n->to_number<std::uint64_t>() <= line) {
            kept += text + '\n';
            ++count;
        }
    }
    in.close();
    if (!write_atomically(path, kept)) {
        return std::nullopt;
    }
    return count;
}

std::string with_commas(std::uint64_t n) {
    std::string s = std::to_string(n);
    for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) {
        s.insert(static_cast<std::size_t>(i), ",");
    }
    return s;
}

std::string duration_text(double seconds) {
    if (!(seconds >= 0) || seconds > 359999) {
        return "--:--";
    }
    const auto s = static_cast<std::uint64_t>(seconds);
    char buf[32];
    if (s >= 3600) {
        std::snprintf(buf, sizeof buf, "%" PRIu64 ":%02" PRIu64 ":%02" PRIu64, s / 3600,
                      s / 60 % 60, s % 60);
    } else {
        std::snprintf(buf, sizeof buf, "%" PRIu64 ":%02" PRIu64, s / 60, s % 60);
    }
    return buf;
}

/// Tracks which records are acknowledged, the contiguous checkpoint, and the rejects file. The
/// reader adds records in input order; results arrive in any order from the stream threads.
class Tracker {
public:
    Tracker(std::FILE* rejects, std::uint64_t rejects_kept)
        : rejects_(rejects), rejected_(rejects_kept) {}

    void set_start(Checkpoint c) { checkpoint_ = c; }

    /// A record handed to the SDK (its index is the number of records added before it).
    void sent(std::uint64_t line, std::uint64_t end_offset) {
        std::lock_guard lock(mutex_);
        pending_.push_back(Slot{line, end_offset, false});
    }

    /// A row rejected before sending (e.g. a CSV row with the wrong number of cells).
    void rejected_here(std::uint64_t line, const std::string& handle, const std::string& code,
                       const std::string& message) {
        std::lock_guard lock(mutex_);
        write_reject(reject_line(line, handle, code, message));
    }

    void result(const sdk::BulkItemResult& r) {
        std::lock_guard lock(mutex_);
        const std::uint64_t pos = r.index - base_;
        if (r.index < base_ || pos >= pending_.size()) {
            return; // not ours (cannot happen: every index was added by sent())
        }
        if (r.status == sdk::BulkStatus::error) {
            write_reject(reject_line(pending_[pos].line, r.handle, r.error_code, r.error_message));
        }
        pending_[pos].done = true;
        while (!pending_.empty() && pending_.front().done) {
            checkpoint_ = Checkpoint{pending_.front().line, pending_.front().end_offset};
            pending_.pop_front();
            ++base_;
        }
    }

    Checkpoint checkpoint() const {
        std::lock_guard lock(mutex_);
        return checkpoint_;
    }
    std::uint64_t rejected() const {
        std::lock_guard lock(mutex_);
        return rejected_;
    }
    bool rejects_failed() const {
        std::lock_guard lock(mutex_);
        return rejects_failed_;
    }
    /// Makes the rejects written so far durable. Called before every checkpoint: a checkpoint
    /// must never cover a line whose reject could still be lost in a buffer (a crash would then
    /// drop it, and --resume would not read that line again).
    void flush() {
        std::lock_guard lock(mutex_);
        const bool ok = std::fflush(rejects_) == 0 && ::fdatasync(fileno(rejects_)) == 0;
        rejects_failed_ = rejects_failed_ || !ok;
    }

private:
    struct Slot {
        std::uint64_t line, end_offset;
        bool done;
    };
    void write_reject(const std::string& text) {
        const bool ok =
            std::fputs(text.c_str(), rejects_) >= 0 && std::fputc('\n', rejects_) != EOF;
        rejects_failed_ = rejects_failed_ || !ok;
        ++rejected_;
    }

    mutable std::mutex mutex_;
    std::FILE* rejects_;
    std::deque<Slot> pending_;
    std::uint64_t base_ = 0; // SDK index of pending_.front()
    Checkpoint checkpoint_;
    std::uint64_t rejected_;
    bool rejects_failed_ = false;
};

/// Reads a template's items (idType → idIndex) for a CSV header of plain type names.
std::optional<std::map<std::string, std::int32_t>> template_indices(const sdk::Client& client,
                                                                    const std::string& prefix,
                                                                    const std::string& version,
                                                                    std::string& error) {
    auto r = client.get_template(prefix, version);
    if (!r) {
        error = "template " + prefix + " " + version + ": " + r.error().to_string();
        return std::nullopt;
    }
    boost::system::error_code ec;
    const json::value v = json::parse(*r, ec);
    const json::object* o = ec ? nullptr : v.if_object();
    const json::value* items = o ? o->if_contains("items") : nullptr;
    if (items == nullptr || !items->is_array()) {
        error = "template " + prefix + " " + version + " has no items array";
        return std::nullopt;
    }
    std::map<std::string, std::int32_t> out;
    for (const auto& item : items->get_array()) {
        const auto* io = item.if_object();
        const auto* type = io ? io->if_contains("idType") : nullptr;
        const auto* index = io ? io->if_contains("idIndex") : nullptr;
        if (type && type->is_string() && index && index->is_number()) {
            out[std::string(type->get_string())] = index->to_number<std::int32_t>();
        }
    }
    return out;
}

} // namespace

int load_online(const LoadArgs& a, const GlobalOptions& global) {
    const char* cmd = "load";
    sdk::BulkMode mode;
    if (a.mode == "create") {
        mode = sdk::BulkMode::create;
    } else if (a.mode == "upsert") {
        mode = sdk::BulkMode::upsert;
    } else if (a.mode == "replace") {
        mode = sdk::BulkMode::replace;
    } else {
        return fail(cmd, "--mode must be create, upsert or replace", kExitUsage);
    }
    const std::string format = load_format(a);
    if (format.empty()) {
        return fail(cmd, "--format must be ndjson or csv", kExitUsage);
    }
    if (format == "ndjson" && !a.template_version.empty()) {
        return fail(cmd, "--template applies to CSV (NDJSON lines carry templateVersion)",
                    kExitUsage);
    }
    if (a.resume && a.file == "-") {
        return fail(cmd, "--resume needs a file (stdin cannot be read again)", kExitUsage);
    }
    const std::string checkpoint_path =
        !a.checkpoint.empty() ? a.checkpoint
                              : (a.file == "-" ? std::string("stdin") : a.file) + ".checkpoint";
    const std::string rejects_path =
        !a.rejects.empty() ? a.rejects
                           : (a.file == "-" ? std::string("stdin") : a.file) + ".rejects.ndjson";

    const auto identity =
        a.file == "-" ? std::optional<FileIdentity>(FileIdentity{}) : identify(a.file);
    if (!identity) {
        return fail(cmd, "cannot open " + a.file + ": " + std::strerror(errno));
    }

    // Where to start: a checkpoint that matches this very file, or the beginning.
    Checkpoint start;
    std::error_code fs_ec;
    if (a.resume) {
        std::ifstream in(checkpoint_path, std::ios::binary);
        if (!in) {
            return fail(cmd, "--resume: no checkpoint " + checkpoint_path +
                                 " (the load completed, or never ran; run it without --resume)");
        }
        std::stringstream text;
        text << in.rdbuf();
        boost::system::error_code ec;
        const json::value v = json::parse(text.str(), ec);
        const json::object* o = ec ? nullptr : v.if_object();
        if (o == nullptr || !o->contains("line") || !o->contains("offset")) {
            return fail(cmd, "--resume: " + checkpoint_path + " is not a checkpoint");
        }
        const json::object expected = checkpoint_json(a, format, *identity, {});
        for (const char* key : {"file", "size", "mtime_ns", "format", "mode", "template"}) {
            if (!o->contains(key) || o->at(key) != expected.at(key)) {
                return fail(
                    cmd,
                    std::string("--resume: the checkpoint was made for another ") +
                        (std::strcmp(key, "size") == 0 || std::strcmp(key, "mtime_ns") == 0
                             ? "version of the file (it changed since)"
                             : std::string(key) + " (" +
                                   json::serialize(o->contains(key) ? o->at(key) : json::value()) +
                                   ")"));
            }
        }
        start.line = o->at("line").to_number<std::uint64_t>();
        start.offset = o->at("offset").to_number<std::uint64_t>();
        if (start.offset > identity->size) {
            return fail(cmd, "--resume: the checkpoint lies beyond the end of the file");
        }
    }
    bool checkpoint_failed = false;
    if (!a.resume && a.file != "-") {
        // Replaces a checkpoint of a run the user chose to restart. Written before anything is
        // sent: whenever this load is interrupted from now on, --resume finds where to go on.
        if (!write_atomically(checkpoint_path,
                              json::serialize(checkpoint_json(a, format, *identity, start)) +
                                  "\n")) {
            checkpoint_failed = true;
            // Not the old run's either: this one started over.
            std::filesystem::remove(checkpoint_path, fs_ec);
            std::cerr << "idctl load: cannot write the checkpoint " << checkpoint_path
                      << " (the load goes on; --resume would not find it)\n";
        }
    }
    struct sigaction setup_sa {};
    setup_sa.sa_handler = on_setup_interrupt;
    sigemptyset(&setup_sa.sa_mask);
    struct sigaction old_int {
    }, old_term{};
    if (a.file != "-") {
        g_setup_interrupt_message = "idctl load: interrupted before any record was sent; the "
                                    "checkpoint is " +
                                    checkpoint_path +
                                    ": run the same command with --resume to continue\n";
        sigaction(SIGINT, &setup_sa, &old_int);
        sigaction(SIGTERM, &setup_sa, &old_term);
    } else {
        sigaction(SIGINT, nullptr, &old_int);
        sigaction(SIGTERM, nullptr, &old_term);
    }
    // Whatever happens next, the caller's handlers come back.
    struct RestoreSignals {
        struct sigaction int_sa, term_sa;
        ~RestoreSignals() {
            sigaction(SIGINT, &int_sa, nullptr);
            sigaction(SIGTERM, &term_sa, nullptr);
        }
    } restore_signals{old_int, old_term};

    std::optional<sdk::Client> client;
    if (int rc = open_client(cmd, global, client, 2); rc != kExitOk) {
        return rc;
    }

    // The rejects file: a fresh load starts it empty; a resumed one keeps what the checkpoint
    // covers. It is removed at the end when nothing was rejected.
    std::uint64_t rejects_kept = 0;
    if (a.resume) {
        auto kept = truncate_rejects(rejects_path, start.line);
        if (!kept) {
            return fail(cmd, "cannot rewrite " + rejects_path);
        }
        rejects_kept = *kept;
    } else {
        std::filesystem::remove(rejects_path, fs_ec);
    }
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> rejects(std::fopen(rejects_path.c_str(), "ab"),
                                                            &std::fclose);
    if (!rejects) {
        return fail(cmd, "cannot write " + rejects_path);
    }

    FileLines reader(a.file, 0);
    if (!reader.is_open()) {
        return fail(cmd, "cannot open " + a.file + ": " + std::strerror(errno));
    }
    std::uint64_t line_no = 0;
    std::string_view line;
    std::optional<CsvReader> csv;
    std::string csv_header;
    if (format == "csv") {
        if (!reader.next(line)) {
            return fail(cmd, a.file + " is empty (a CSV needs a header)");
        }
        line_no = 1;
        csv_header.assign(line);
    }
    // Continue after the checkpoint: a second reader positioned at its offset (the header above
    // was read from the start).
    std::optional<FileLines> resumed;
    if (start.offset > 0) {
        resumed.emplace(a.file, start.offset);
        if (!resumed->is_open()) {
            return fail(cmd, "cannot seek in " + a.file);
        }
        line_no = start.line;
    }
    FileLines& input = resumed ? *resumed : reader;

    // A CSV with --template: the template's idTypes name plain columns. The template is looked
    // up under the prefix of the first data row.
    std::optional<std::string> first_row;
    if (format == "csv") {
        std::optional<std::string> version;
        std::map<std::string, std::int32_t> indices;
        if (!a.template_version.empty()) {
            version = a.template_version;
            std::string_view peek;
            while (input.next(peek)) {
                if (!peek.empty() && peek != "\r") {
                    first_row.emplace(peek);
                    break;
                }
                ++line_no; // blank lines keep their number
            }
            if (first_row) {
                const auto comma = first_row->find(',');
                const std::string handle = first_row->substr(0, comma);
                const auto slash = handle.find('/');
                if (slash != std::string::npos && slash > 0) {
                    std::string error;
                    auto found = template_indices(*client, handle.substr(0, slash),
                                                  a.template_version, error);
                    if (!found) {
                        return fail(cmd, error);
                    }
                    indices = std::move(*found);
                }
            }
        }
        auto r = CsvReader::from_header(csv_header, version, indices);
        if (!r) {
            return fail(cmd, a.file + ": " + r.error().message);
        }
        csv.emplace(std::move(r).value());
    }

    Tracker tracker(rejects.get(), rejects_kept);
    tracker.set_start(start);
    const std::uint64_t first_line = start.line;
    std::uint64_t first_row_offset = first_row ? input.offset() : 0;

    // The reader the SDK pulls from (one call at a time, from the stream threads).
    InputRecord record;
    LineError error;
    bool read_failed = false;
    auto next_line = [&](std::string& out) -> bool {
        for (;;) {
            std::string_view text;
            std::uint64_t end_offset = 0;
            if (first_row) {
                text = *first_row;
                end_offset = first_row_offset;
            } else if (!input.next(text)) {
                read_failed = input.error();
                return false;
            } else {
                end_offset = input.offset();
            }
            ++line_no;
            if (text.empty() || text == "\r") {
                first_row.reset();
                continue;
            }
            if (!csv) {
                out.assign(text);
                first_row.reset();
                tracker.sent(line_no, end_offset);
                return true;
            }
            const bool ok = csv->parse(text, record, error);
            first_row.reset();
            if (!ok) {
                tracker.rejected_here(line_no, error.handle, registry::errc_name(error.error.code),
                                      error.error.message);
                continue;
            }
            out = input_record_to_ndjson(record);
            tracker.sent(line_no, end_offset);
            return true;
        }
    };

    // Progress, checkpoints and interruption.
    const bool tty = isatty(STDERR_FILENO) != 0;
    const auto tick = std::chrono::milliseconds(a.progress_interval_ms > 0 ? a.progress_interval_ms
                                                                           : (tty ? 200 : 5000));
    const std::uint64_t file_bytes = identity->size;
    Checkpoint last_written{~0ull, 0};
    auto save_checkpoint = [&] {
        const Checkpoint c = tracker.checkpoint();
        if (a.file == "-" || c.line == last_written.line) {
            return;
        }
        tracker.flush(); // the rejects up to c.line first
        if (write_atomically(checkpoint_path,
                             json::serialize(checkpoint_json(a, format, *identity, c)) + "\n")) {
            last_written = c;
        } else if (!checkpoint_failed) {
            checkpoint_failed = true;
            std::cerr << "idctl load: cannot write the checkpoint " << checkpoint_path
                      << " (the load goes on; --resume would start from an older point)\n";
        }
    };
    std::uint64_t raise_signal = 0, raise_after = 0;
    if (const char* hook = std::getenv("IDCTL_TEST_RAISE_AFTER")) {
        std::sscanf(hook, "%" SCNu64 ":%" SCNu64, &raise_signal, &raise_after);
    }
    std::atomic<std::uint64_t> results{0};
    auto last_line_at = std::chrono::steady_clock::now();
    auto draw = [&](const sdk::BulkProgress& p) {
        const Checkpoint c = tracker.checkpoint();
        const double fraction = file_bytes > start.offset && c.offset >= start.offset
                                    ? static_cast<double>(c.offset - start.offset) /
                                          static_cast<double>(file_bytes - start.offset)
                                    : 0.0;
        const double eta = fraction > 0.001 ? p.elapsed_s * (1 - fraction) / fraction : -1;
        const std::uint64_t rejected = tracker.rejected();
        char pct[16];
        std::snprintf(pct, sizeof pct, "%5.1f%%", 100.0 * fraction);
        std::string text = with_commas(p.done) + " records  " +
                           with_commas(static_cast<std::uint64_t>(p.rate)) + "/s";
        if (a.file != "-") {
            text = std::string(pct) + "  " + text + "  ETA " + duration_text(eta);
        }
        if (rejected != 0) {
            text += "  " + with_commas(rejected) + " rejected";
        }
        if (tty) {
            std::string bar;
            if (a.file != "-") {
                const int width = 24;
                const int full = static_cast<int>(fraction * width + 0.5);
                bar = "[" + std::string(static_cast<std::size_t>(full), '#') +
                      std::string(static_cast<std::size_t>(width - full), ' ') + "] ";
            }
            std::cerr << "\r\033[K" << bar << text << std::flush;
        } else {
            const auto now = std::chrono::steady_clock::now();
            if (now - last_line_at >= std::chrono::seconds(5) || a.progress_interval_ms > 0) {
                std::cerr << "idctl load: " << text << '\n';
                last_line_at = now;
            }
        }
    };

    sdk::BulkOptions options;
    options.mode = mode;
    options.streams = a.streams;
    options.progress_interval = tick;
    options.on_result = [&](const sdk::BulkItemResult& r) {
        tracker.result(r);
        if (raise_signal != 0 && ++results == raise_after) {
            std::raise(static_cast<int>(raise_signal));
        }
    };
    options.on_progress = [&](const sdk::BulkProgress& p) {
        save_checkpoint();
        draw(p);
        return !g_interrupted.load();
    };

    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    if (a.resume && start.line > 0) {
        std::cerr << "idctl load: resuming after line " << start.line << '\n';
    }
    auto summary = client->bulk_lines(next_line, options);
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
    tracker.flush();
    save_checkpoint();
    if (tty) {
        std::cerr << '\n'; // keep the last state of the bar
    }

    if (!summary || read_failed) {
        const Checkpoint c = tracker.checkpoint();
        const std::string why = read_failed ? "reading " + a.file + " failed"
                                : summary.error().kind == sdk::ErrorKind::cancelled
                                    ? std::string("interrupted")
                                    : summary.error().to_string();
        if (a.file == "-") {
            return fail(cmd,
                        why + "; records up to line " + std::to_string(c.line) + " are loaded");
        }
        return fail(cmd, why + "; every record up to line " + std::to_string(c.line) +
                             " is loaded, the checkpoint is " + checkpoint_path +
                             ": run the same command with --resume to continue");
    }
    if (tracker.rejects_failed() || std::fclose(rejects.release()) != 0) {
        return fail(cmd, "writing " + rejects_path + " failed");
    }
    const std::uint64_t rejected = tracker.rejected();
    if (rejected == 0) {
        std::filesystem::remove(rejects_path, fs_ec);
    }
    std::filesystem::remove(checkpoint_path, fs_ec); // done: nothing to resume
    std::filesystem::remove(checkpoint_path + ".tmp", fs_ec);

    const sdk::BulkSummary& s = *summary;
    const std::uint64_t rejected_here = rejected - rejects_kept - s.errors;
    const std::uint64_t lines = s.records + rejected_here;
    const double rate = s.elapsed_s > 0 ? static_cast<double>(s.records) / s.elapsed_s : 0;
    if (global.json) {
        print_json(std::cout, json::object{{"records", lines},
                                           {"created", s.created},
                                           {"replaced", s.replaced},
                                           {"unchanged", s.unchanged},
                                           {"rejected", rejected - rejects_kept},
                                           {"rejected_total", rejected},
                                           {"resent", s.resent},
                                           {"resumed_after_line", first_line},
                                           {"streams", a.streams},
                                           {"seconds", s.elapsed_s},
                                           {"records_per_second", rate},
                                           {"rejects_file", rejected ? rejects_path : ""}});
    } else {
        print_table(
            std::cout,
            {"records", "created", "replaced", "unchanged", "rejected", "seconds", "records/s"},
            {{std::to_string(lines), std::to_string(s.created), std::to_string(s.replaced),
              std::to_string(s.unchanged), std::to_string(rejected - rejects_kept),
              std::to_string(s.elapsed_s), std::to_string(static_cast<std::uint64_t>(rate))}});
        if (first_line > 0) {
            std::cout << "resumed after line " << first_line << " (" << rejects_kept
                      << " earlier rejects kept)\n";
        }
        if (rejected != 0) {
            std::cout << "rejected records: " << rejects_path << '\n';
        }
    }
    return rejected != 0 ? kExitPartial : kExitOk;
}

} // namespace idnode::idctl
