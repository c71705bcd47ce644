// The NDJSON bulk upload (docs/api.md#bulk), independent of sockets: a BodyConsumer that turns
// the streamed body into registry write batches and writes NDJSON results to a StreamChannel.
// Internal to the resolver.
//
// Flow: bytes -> lines (NdjsonSplitter; a line longer than max_line_bytes is skipped to its end
// and reported as `too_large`) -> BulkLineParser (blank lines are skipped without a result;
// the common record shape is scanned (record_scan.hpp), any other line is one JSON object ->
// record_values_from_json, the same conversion as PUT /api/handles, with the same results)
// -> node checks and template validation (`check`) ->
// PutRecord in the current batch. A batch is submitted when it holds batch_records records or
// the body ends. Result lines of a batch (including its malformed lines, so output stays in
// input order) are written only after the batch's group commit is durable, then the summary.
//
// Backpressure and fairness: at most max_in_flight batches of one upload are submitted and not
// yet durable; beyond that on_body asks the server to stop reading. Every upload therefore has a
// bounded share of the writer's FIFO queue, whatever its size or speed.
//
// Never blocking the I/O thread (contract with `Submit`, Registry::try_submit): a batch is
// offered to the writer without waiting. When the writer's queue is full the upload keeps the
// batch (and every later one, in order: one upload's batches reach the writer in input order),
// asks the server to stop reading the body, and registers to be told when the writer next takes
// work off its queue; that notification (writer thread) hops to the connection's executor and
// offers the kept batches again, and reading resumes once none is kept and fewer than
// max_in_flight are in flight. So a full queue costs the other connections of this I/O thread
// nothing: their requests keep being served while this upload waits. A disconnect drops the
// kept batches (never submitted: their lines were not acknowledged); a graceful stop submits
// them (results follow as usual).
//
// Memory: one line buffer (<= max_line_bytes), the open batch and the in-flight batches (kept
// ones included: at most max_in_flight plus those completed by the last piece of body), and
// (for an Idempotency-Key) the error lines kept for replay, at most kMaxOutcomeErrorLines and
// kMaxOutcomeErrorBytes (admin.hpp).
//
// Idempotency-Key: the upload's outcome (summary and the first error lines, a BulkOutcome) is
// written to the registry (Table::idempotency) through the same non-blocking submit, and the
// summary line is sent only once that write is durable: a client that saw the summary can retry
// after any crash and get the replay; one that did not re-runs the upload (create/upsert report
// identical records as unchanged).
//
// Threading: on_body/on_end/on_stop/on_abort run on the connection's executor; registry
// completions (writer thread) hop back there through channel->post before touching state.
#pragma once

#include "idnode/registry/admin.hpp"
#include "idnode/registry/registry.hpp"
#include "idnode/resolver/streaming.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

namespace idnode::resolver::api {

struct BulkSummary {
    std::uint64_t lines = 0; // non-blank lines
    std::uint64_t created = 0;
    std::uint64_t replaced = 0;
    std::uint64_t unchanged = 0;
    std::uint64_t errors = 0;
};

/// A per-line refusal: snake_case code and a message.
struct LineError {
    std::string code;
    std::string message;
};

/// Splits a streamed body into lines, whatever the boundaries of the pieces it is fed: the
/// lines (and over-long lines) come out exactly as if the whole body had been split at once.
/// A line is the bytes before a '\n' (a '\r' before it is kept; parse_bulk_line ignores it);
/// the last line needs no '\n'. A line longer than `max_line_bytes` is reported once, as soon as
/// it is known to be too long, and its remaining bytes are skipped, so the splitter holds at most
/// max_line_bytes. Not thread-safe; the callbacks must not call back into the splitter.
class NdjsonSplitter {
public:
    explicit NdjsonSplitter(std::size_t max_line_bytes) : max_line_bytes_(max_line_bytes) {}

    /// Feeds the next piece of the body: `on_line(std::string_view)` for each complete line (the
    /// view is valid only during the call), `on_too_long()` for each over-long line.
    template <class OnLine, class OnTooLong>
    void feed(std::string_view bytes, OnLine&& on_line, OnTooLong&& on_too_long);

    /// The body ended: `on_line` for its last line when that had no newline.
    template <class OnLine> void finish(OnLine&& on_line);

    /// The body was cut (stop, disconnect): an unterminated line is not a line; forget it.
    void discard() noexcept {
        partial_.clear();
        skipping_ = false;
    }

private:
    std::size_t max_line_bytes_;
    std::string partial_;   // bytes of a line not yet terminated
    bool skipping_ = false; // inside an over-long line, until its newline
};

template <class OnLine, class OnTooLong>
void NdjsonSplitter::feed(std::string_view bytes, OnLine&& on_line, OnTooLong&& on_too_long) {
    while (!bytes.empty()) {
        const auto newline = bytes.find('\n');
        const std::string_view piece = bytes.substr(0, newline);
        const bool complete = newline != std::string_view::npos;
        bytes = complete ? bytes.substr(newline + 1) : std::string_view{};
        if (skipping_) {
            if (complete)
                skipping_ = false;
            continue;
        }
        if (partial_.size() + piece.size() > max_line_bytes_) {
            partial_.clear();
            skipping_ = !complete;
            on_too_long();
            continue;
        }
        if (!complete) {
            partial_.append(piece);
            break;
        }
        if (partial_.empty()) {
            on_line(piece);
        } else {
            partial_.append(piece);
            on_line(std::string_view(partial_));
            partial_.clear();
        }
    }
}

template <class OnLine> void NdjsonSplitter::finish(OnLine&& on_line) {
    if (!partial_.empty() && !skipping_) {
        const std::string last = std::move(partial_);
        partial_.clear();
        on_line(std::string_view(last));
    }
    skipping_ = false;
}

/// A line that is a record: the handle and its values (record_values_from_json, the same
/// conversion as PUT /api/handles), not yet authorised or checked against a template.
struct BulkRecord {
    registry::Handle handle;
    std::vector<registry::HandleValue> values;
};

/// A line that failed on its own; `handle` is the line's "handle" as sent ("" when it has none).
struct BulkLineError {
    std::string handle;
    LineError error;
};

/// Only spaces and tabs (e.g. a trailing empty line): not a record, and no result line.
struct BlankLine {};

using ParsedBulkLine = std::variant<BlankLine, BulkRecord, BulkLineError>;

/// Parses one line of a bulk body (without its '\n'; a trailing '\r' is ignored) with the
/// general path: one boost::json document per line. Error codes: invalid_json, invalid_record (not
/// an object, no string "handle", no "values"), invalid_handle, invalid_value. Pure; thread-safe.
/// The reference for BulkLineParser.
ParsedBulkLine parse_bulk_line(std::string_view line, const registry::HandleLimits& limits);

/// What an upload parses its lines with: the same results as parse_bulk_line for every line, by
/// construction. Lines of the common shape (record_scan.hpp) are scanned into a record without a
/// JSON document; every other line (including every malformed one) takes parse_bulk_line's general
/// path, reusing one JSON parser, so acceptance, codes and messages are the general path's.
/// Checked line by line against parse_bulk_line (tests/unit/bulk_line_parser_test.cpp, the
/// bulk_ndjson fuzz target). Not thread-safe: one per upload.
class BulkLineParser {
public:
    explicit BulkLineParser(registry::HandleLimits limits);
    ~BulkLineParser();
    BulkLineParser(const BulkLineParser&) = delete;
    BulkLineParser& operator=(const BulkLineParser&) = delete;

    ParsedBulkLine parse(std::string_view line);

    /// Lines that took the scanner / the general path (blank lines are neither).
    std::uint64_t fast_lines() const noexcept { return fast_lines_; }
    std::uint64_t general_lines() const noexcept { return general_lines_; }

private:
    struct State; // the scanner and the general path's JSON parser
    registry::HandleLimits limits_;
    std::unique_ptr<State> state_;
    std::uint64_t fast_lines_ = 0;
    std::uint64_t general_lines_ = 0;
};

struct BulkOptions {
    registry::PutMode mode = registry::PutMode::create;
    bool errors_only = false;
    registry::HandleLimits handle_limits{};
    std::size_t max_line_bytes = 64 * 1024;
    std::size_t batch_records = 2000;
    std::size_t max_in_flight = 4;
    /// Called each time a batch is closed (handed on for its group commit): whatever the Check
    /// cached about prefixes must be decided again for the lines that follow, so that a prefix
    /// suspended (or taken from the account) while a stream is open is refused from the next
    /// group on.
    std::function<void()> on_group_closed;
};

/// The summary line of an upload's response ("complete":false when it was cut by a stop).
std::string bulk_summary_line(const BulkSummary& summary, bool complete = true);

/// What a repeated Idempotency-Key answers: the kept error lines, a `replay_truncated` line when
/// some were cut, and the summary line.
std::string render_replay(const registry::BulkOutcome& outcome);

/// Outcomes of finished uploads by (account, Idempotency-Key). Thread-safe.
///
/// A finished outcome lives in the registry (Table::idempotency, BulkOutcome with its expiry),
/// so it survives restarts; memory holds only the claims of running uploads (one per open
/// upload) and outcomes whose registry write failed (storage full), the latter capped at
/// `max_memory_bytes` (oldest evicted first). Expired outcomes read as absent; they are deleted
/// as later keys are claimed, kSweepEntries looked at per claim, so the table shrinks back at
/// the pace it grows and a claim never does more than that much work.
class IdempotencyStore {
public:
    static constexpr std::size_t kSweepEntries = 16;

    /// `registry` nullptr: memory only (outcomes then last until they expire or are evicted).
    IdempotencyStore(registry::Registry* registry, std::chrono::milliseconds ttl,
                     std::size_t max_memory_bytes = 8 << 20)
        : registry_(registry), ttl_(ttl), max_memory_bytes_(max_memory_bytes) {}

    enum class Claim { fresh, in_progress, done };
    /// Claims the key for a new upload (fresh), or reports that one runs (in_progress) or has
    /// finished; then `replay` receives its stored answer (render_replay). An outcome that does
    /// not decode (damaged storage) is treated as absent: the upload runs again and replaces it.
    Claim claim(const std::string& key, std::string& replay);
    /// The write that stores `outcome` under the claimed key, its expiry set to now + ttl.
    registry::PutEntry outcome_entry(const std::string& key, registry::BulkOutcome outcome) const;
    /// The upload finished and its outcome's write completed: `durable` = the registry now
    /// answers for the key; otherwise the outcome is kept in memory (bounded, see above).
    void complete(const std::string& key, const registry::BulkOutcome& outcome, bool durable);
    /// The upload did not finish (disconnect, stop): forget the key so that a retry runs.
    void release(const std::string& key);

    /// Bytes of outcomes held in memory (their registry write failed).
    std::size_t memory_bytes() const;

private:
    struct Entry {
        bool done = false; // false: an upload holds the claim
        std::string replay;
        std::int64_t expires_ms = 0;
    };
    void expire(std::int64_t now_ms);
    registry::WriteBatch find_expired(const registry::ReadSnapshot& snapshot, std::int64_t now_ms,
                                      std::string& next) const;

    registry::Registry* registry_;
    std::chrono::milliseconds ttl_;
    std::size_t max_memory_bytes_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, Entry> entries_;
    std::list<std::string> done_order_; // done entries, oldest first (same ttl: expiry order)
    std::size_t memory_bytes_ = 0;
    std::string sweep_cursor_; // where the next sweep of the registry's table continues
};

/// Counts of processed lines for metrics (called on the connection's executor).
using BulkLineObserver = std::function<void(const char* status, std::uint64_t count)>;

class BulkUpload : public std::enable_shared_from_this<BulkUpload> {
public:
    /// Authorises one record and prepares its values for storage (template validation, the
    /// TEMPLATE value, non-public template items: node/records.hpp); a refusal fails the line.
    using Check = std::function<std::optional<LineError>(const registry::Handle&,
                                                         std::vector<registry::HandleValue>&)>;
    /// Offers a batch to the writer without blocking (Registry::try_submit's contract): queued
    /// = taken (`done` runs later on any thread); full = batch and done untouched, and
    /// `on_space` is called once later, on any thread, when offering again may succeed.
    using Submit = std::function<registry::SubmitStatus(
        registry::WriteBatch& batch, registry::Completion& done, std::function<void()> on_space)>;

    /// Starts the NDJSON response on `channel`. `check` authorises and prepares one record (called
    /// on the connection's executor); `submit` offers a batch (usually Registry::try_submit).
    /// `idempotency_key` (may be empty) is completed or released in `store` at the end.
    static std::unique_ptr<BodyConsumer> start(BulkOptions options, std::string account,
                                               std::shared_ptr<StreamChannel> channel, Check check,
                                               Submit submit, BulkLineObserver observer = {},
                                               IdempotencyStore* store = nullptr,
                                               std::string idempotency_key = {});

    BulkUpload(BulkOptions options, std::string account, std::shared_ptr<StreamChannel> channel,
               Check check, Submit submit, BulkLineObserver observer, IdempotencyStore* store,
               std::string idempotency_key);

    bool on_body(std::string_view bytes);
    void on_end();
    void on_stop();
    void on_abort();

private:
    struct Entry {
        std::uint64_t line = 0;
        std::string handle;
        std::optional<LineError> error; // failed before reaching the registry
    };
    struct Batch {
        std::vector<Entry> entries;
        registry::WriteBatch write;
        registry::BatchResult results;
        bool submitted = false; // handed to the writer (false: kept while its queue is full)
        bool durable = false;
    };

    void process_line(std::string_view line);
    void line_too_long();
    void fail_line(std::string_view handle, std::string code, std::string message);
    void flush();
    void submit_kept();
    bool must_pause() const;
    void maybe_resume();
    void on_durable();
    void emit(Batch& batch);
    void maybe_finish();
    void store_outcome();
    void outcome_stored(bool durable);

    BulkOptions options_;
    std::string account_;
    std::shared_ptr<StreamChannel> channel_;
    Check check_;
    Submit submit_;
    BulkLineObserver observer_;
    IdempotencyStore* store_;
    std::string idempotency_key_;

    NdjsonSplitter splitter_;
    BulkLineParser parser_;
    std::uint64_t line_no_ = 0;
    std::unique_ptr<Batch> open_;
    std::deque<std::shared_ptr<Batch>> in_flight_;
    BulkSummary summary_;
    std::string replay_errors_; // the first error lines, kept for an Idempotency-Key
    std::size_t replay_error_lines_ = 0;
    bool replay_full_ = false; // an error line did not fit: later ones are not kept either
    std::string tail_;         // the response's last lines, sent once the outcome is stored
    registry::BulkOutcome outcome_;
    registry::WriteBatch outcome_write_; // not yet taken by the writer (its queue was full)
    bool ended_ = false;
    bool stopped_ = false;
    bool aborted_ = false;
    bool finished_ = false;
    bool paused_ = false;
    bool waiting_for_space_ = false; // a batch is kept; the writer will tell us about room
};

} // namespace idnode::resolver::api
