#include "bulk.hpp"

#include "codec.hpp"

#include <boost/json.hpp>

#include <algorithm>

namespace idnode::resolver::api {
namespace json = boost::json;
using registry::Errc;
using registry::Outcome;

// ---- IdempotencyStore ---------------------------------------------------------------------------

namespace {

std::int64_t unix_ms_now() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// What one kept outcome costs in memory, roughly (the key twice, the text, the nodes).
std::size_t memory_cost(const std::string& key, const std::string& replay) {
    return 2 * key.size() + replay.size() + 128;
}

} // namespace

void IdempotencyStore::expire(std::int64_t now_ms) {
    while (!done_order_.empty()) {
        auto it = entries_.find(done_order_.front());
        if (it == entries_.end()) { // cannot happen: done entries leave only through here
            done_order_.pop_front();
            continue;
        }
        const bool too_old = it->second.expires_ms <= now_ms;
        if (!too_old && memory_bytes_ <= max_memory_bytes_)
            break;
        memory_bytes_ -= memory_cost(it->first, it->second.replay);
        done_order_.pop_front();
        entries_.erase(it);
    }
}

// The deletes of the expired (or undecodable) outcomes among the next kSweepEntries of the
// registry's table, and where the page after them starts. Called with mutex_ held, which makes it
// safe against claims: a key held in memory is skipped, and a claim that starts after this is
// ordered after these deletes in the writer's queue.
registry::WriteBatch IdempotencyStore::find_expired(const registry::ReadSnapshot& snapshot,
                                                    std::int64_t now_ms, std::string& next) const {
    auto page = snapshot.list_entries(registry::Table::idempotency, sweep_cursor_, kSweepEntries);
    registry::WriteBatch batch;
    for (const auto& [key, value] : page.entries) {
        if (entries_.contains(key))
            continue;
        auto outcome = registry::decode_bulk_outcome(value);
        if (!outcome || outcome->expires_ms <= now_ms)
            batch.ops.emplace_back(registry::DeleteEntry{registry::Table::idempotency, key});
    }
    next = std::move(page.next_cursor); // empty: start over at the beginning
    return batch;
}

IdempotencyStore::Claim IdempotencyStore::claim(const std::string& key, std::string& replay) {
    const std::int64_t now = unix_ms_now();
    std::lock_guard lock(mutex_);
    expire(now);
    if (auto it = entries_.find(key); it != entries_.end()) {
        if (!it->second.done)
            return Claim::in_progress;
        replay = it->second.replay;
        return Claim::done;
    }
    if (registry_ != nullptr) {
        registry::WriteBatch expired;
        std::string next;
        {
            const registry::ReadSnapshot snapshot = registry_->snapshot();
            if (auto stored = snapshot.get_entry(registry::Table::idempotency, key)) {
                auto outcome = registry::decode_bulk_outcome(*stored);
                if (outcome && outcome->expires_ms > now) {
                    replay = render_replay(*outcome);
                    return Claim::done;
                }
            }
            expired = find_expired(snapshot, now, next);
        }
        registry::Completion ignore = [](registry::BatchResult) {}; // not_found: already gone
        // Never wait for the writer (this is an I/O thread): with its queue full, the same page is
        // looked at again by a later claim.
        if (expired.ops.empty() ||
            registry_->try_submit(expired, ignore) == registry::SubmitStatus::queued)
            sweep_cursor_ = std::move(next);
    }
    entries_.emplace(key, Entry{});
    return Claim::fresh;
}

registry::PutEntry IdempotencyStore::outcome_entry(const std::string& key,
                                                   registry::BulkOutcome outcome) const {
    outcome.expires_ms = unix_ms_now() + ttl_.count();
    return registry::PutEntry{registry::Table::idempotency, key,
                              registry::encode_bulk_outcome(outcome), registry::PutMode::upsert};
}

void IdempotencyStore::complete(const std::string& key, const registry::BulkOutcome& outcome,
                                bool durable) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key);
    if (it == entries_.end() || it->second.done)
        return;
    if (durable) {
        entries_.erase(it); // the registry answers from now on
        return;
    }
    it->second.done = true;
    it->second.replay = render_replay(outcome);
    it->second.expires_ms = unix_ms_now() + ttl_.count();
    done_order_.push_back(key);
    memory_bytes_ += memory_cost(key, it->second.replay);
    expire(unix_ms_now());
}

void IdempotencyStore::release(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key);
    if (it == entries_.end() || it->second.done)
        return;
    entries_.erase(it);
}

std::size_t IdempotencyStore::memory_bytes() const {
    std::lock_guard lock(mutex_);
    return memory_bytes_;
}

// ---- BulkUpload ---------------------------------------------------------------------------------

namespace {

/// The BodyConsumer the server owns; the upload itself lives on while batches are in flight.
class Consumer : public BodyConsumer {
public:
    explicit Consumer(std::shared_ptr<BulkUpload> upload) : upload_(std::move(upload)) {}
    bool on_body(std::string_view bytes) override { return upload_->on_body(bytes); }
    void on_end() override { upload_->on_end(); }
    void on_stop() override { upload_->on_stop(); }
    void on_abort() override { upload_->on_abort(); }

private:
    std::shared_ptr<BulkUpload> upload_;
};

void append_number(std::string& out, std::uint64_t n) {
    char buffer[24];
    char* end = buffer + sizeof buffer;
    char* p = end;
    do {
        *--p = static_cast<char>('0' + n % 10);
        n /= 10;
    } while (n != 0);
    out.append(p, end);
}

void append_result(std::string& out, std::uint64_t line, std::string_view handle,
                   const char* status) {
    out += "{\"line\":";
    append_number(out, line);
    out += ",\"handle\":";
    out += json_quote(handle);
    out += ",\"status\":\"";
    out += status;
    out += "\"}\n";
}

void append_error(std::string& out, std::uint64_t line, const std::string* handle,
                  std::string_view code, std::string_view message) {
    out += "{\"line\":";
    append_number(out, line);
    out += ",\"handle\":";
    out += handle ? json_quote(*handle) : std::string("null");
    out += ",\"status\":\"error\",\"error\":{\"code\":";
    out += json_quote(code);
    out += ",\"message\":";
    out += json_quote(message);
    out += "}}\n";
}

} // namespace

std::unique_ptr<BodyConsumer> BulkUpload::start(BulkOptions options, std::string account,
                                                std::shared_ptr<StreamChannel> channel, Check check,
                                                Submit submit, BulkLineObserver observer,
                                                IdempotencyStore* store,
                                                std::string idempotency_key) {
    auto upload = std::make_shared<BulkUpload>(
        std::move(options), std::move(account), std::move(channel), std::move(check),
        std::move(submit), std::move(observer), store, std::move(idempotency_key));
    return std::make_unique<Consumer>(std::move(upload));
}

BulkUpload::BulkUpload(BulkOptions options, std::string account,
                       std::shared_ptr<StreamChannel> channel, Check check, Submit submit,
                       BulkLineObserver observer, IdempotencyStore* store,
                       std::string idempotency_key)
    : options_(std::move(options)), account_(std::move(account)), channel_(std::move(channel)),
      check_(std::move(check)), submit_(std::move(submit)), observer_(std::move(observer)),
      store_(store), idempotency_key_(std::move(idempotency_key)),
      splitter_(options_.max_line_bytes), parser_(options_.handle_limits) {
    Response head{http::status::ok, 11};
    head.set(http::field::content_type, "application/x-ndjson");
    channel_->start(std::move(head));
}

bool BulkUpload::on_body(std::string_view bytes) {
    splitter_.feed(
        bytes,
        [this](std::string_view line) {
            ++line_no_;
            process_line(line);
        },
        [this] { line_too_long(); });
    // Flush early while the writer has nothing of ours: small uploads and slow streams get
    // their results promptly; fast ones fill whole batches while earlier ones commit.
    if (open_ && in_flight_.empty())
        flush();
    paused_ = must_pause();
    return !paused_;
}

namespace {

/// The trailing '\r' removed; nullopt for a blank line (only spaces and tabs).
std::optional<std::string_view> trim_line(std::string_view line) {
    if (!line.empty() && line.back() == '\r')
        line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos)
        return std::nullopt;
    return line;
}

BulkLineError line_failure(std::string_view handle, const char* code, std::string message) {
    return BulkLineError{std::string(handle), LineError{code, std::move(message)}};
}

/// The general path's reusable parts: a JSON parser and the arena its documents live in.
struct GeneralParser {
    unsigned char scratch[8192];
    json::monotonic_resource memory{scratch, sizeof scratch};
    json::parser parser;
};

/// The general path of a trimmed, non-blank line (json::parse with a reused parser and arena:
/// the same options, so the same errors).
ParsedBulkLine parse_general(std::string_view line, const registry::HandleLimits& limits,
                             GeneralParser& general) {
    json::parser& parser = general.parser;
    parser.reset(&general.memory); // drops what a failed line left (arena: nothing to destroy)
    general.memory.release();
    boost::system::error_code ec;
    parser.write(line.data(), line.size(), ec);
    if (ec)
        return line_failure({}, "invalid_json", "line is not valid JSON: " + ec.message());
    const json::value doc = parser.release();
    const auto* obj = doc.if_object();
    if (obj == nullptr)
        return line_failure({}, "invalid_record", "line must be a JSON object");
    const auto* handle_json = obj->if_contains("handle");
    if (handle_json == nullptr || !handle_json->is_string())
        return line_failure({}, "invalid_record", "line needs \"handle\" (a string)");
    const std::string_view spelling = handle_json->get_string();
    auto handle = registry::parse_handle(spelling, limits);
    if (!handle)
        return line_failure(spelling, "invalid_handle", handle.error().message);
    if (!obj->contains("values"))
        return line_failure(spelling, "invalid_record", "line needs \"values\"");
    auto values = record_values_from_json(doc);
    if (!values)
        return line_failure(spelling, "invalid_value", values.error().message);
    return BulkRecord{std::move(handle).value(), std::move(values).value()};
}

} // namespace

ParsedBulkLine parse_bulk_line(std::string_view line, const registry::HandleLimits& limits) {
    const auto trimmed = trim_line(line);
    if (!trimmed)
        return BlankLine{};
    GeneralParser general;
    return parse_general(*trimmed, limits, general);
}

struct BulkLineParser::State {
    RecordLineScanner scanner;
    GeneralParser general;
};

BulkLineParser::BulkLineParser(registry::HandleLimits limits)
    : limits_(std::move(limits)), state_(std::make_unique<State>()) {}

BulkLineParser::~BulkLineParser() = default;

ParsedBulkLine BulkLineParser::parse(std::string_view line) {
    const auto trimmed = trim_line(line);
    if (!trimmed)
        return BlankLine{};
    RecordLineScanner& scanner = state_->scanner;
    if (!scanner.scan(*trimmed)) {
        ++general_lines_;
        return parse_general(*trimmed, limits_, state_->general);
    }
    // A scanned line is a valid JSON object with a string "handle" and "values" that
    // record_values_from_json accepts; the general path's only remaining refusal is the handle.
    ++fast_lines_;
    auto handle = registry::parse_handle(scanner.handle(), limits_);
    if (!handle)
        return line_failure(scanner.handle(), "invalid_handle", handle.error().message);
    BulkRecord record{std::move(handle).value(), {}};
    scanner.stored_values(record.values);
    return record;
}

void BulkUpload::process_line(std::string_view line) {
    // A blank line keeps its number, so that "line N" is always the Nth physical line.
    ParsedBulkLine parsed = parser_.parse(line);
    if (auto* bad = std::get_if<BulkLineError>(&parsed))
        return fail_line(bad->handle, std::move(bad->error.code), std::move(bad->error.message));
    auto* record = std::get_if<BulkRecord>(&parsed);
    if (record == nullptr)
        return; // blank
    const std::string& spelling = record->handle.spelling();
    if (auto refusal = check_(record->handle, record->values))
        return fail_line(spelling, std::move(refusal->code), std::move(refusal->message));

    if (!open_)
        open_ = std::make_unique<Batch>();
    open_->entries.push_back(Entry{line_no_, spelling, std::nullopt});
    open_->write.ops.emplace_back(
        registry::PutRecord{std::move(record->handle), std::move(record->values), options_.mode});
    if (open_->write.ops.size() >= options_.batch_records)
        flush();
}

void BulkUpload::line_too_long() {
    ++line_no_;
    // The per-record limit of every write path (node/records.hpp), with the same error code as
    // a record the store finds too large.
    fail_line({}, "too_large",
              "line exceeds " + std::to_string(options_.max_line_bytes) +
                  " bytes, the limit of one record (limits.max_body_bytes)");
}

void BulkUpload::fail_line(std::string_view handle, std::string code, std::string message) {
    if (!open_)
        open_ = std::make_unique<Batch>();
    open_->entries.push_back(
        Entry{line_no_, std::string(handle), LineError{std::move(code), std::move(message)}});
    // A batch of nothing but bad lines needs no commit; it still waits for earlier batches so
    // that results stay in input order (see flush()).
}

void BulkUpload::flush() {
    if (!open_)
        return;
    auto batch = std::shared_ptr<Batch>(std::move(open_));
    in_flight_.push_back(batch);
    if (options_.on_group_closed)
        options_.on_group_closed();
    if (batch->write.ops.empty()) {
        batch->submitted = true;
        batch->durable = true;
        on_durable();
        return;
    }
    batch->write.account = account_;
    submit_kept();
}

// Offers the batches not yet handed to the writer, oldest first, until the writer refuses one;
// the rest stay kept, in order, until it has room (see the header).
void BulkUpload::submit_kept() {
    if (waiting_for_space_ || aborted_)
        return; // a retry is already arranged; or the lines are no longer wanted
    auto self = shared_from_this();
    for (const auto& batch : in_flight_) {
        if (batch->submitted)
            continue;
        registry::Completion done = [self, batch](registry::BatchResult results) {
            // Writer thread: hop back to the connection's executor.
            self->channel_->post([self, batch, results = std::move(results)]() mutable {
                batch->results = std::move(results);
                batch->durable = true;
                self->on_durable();
            });
        };
        auto on_space = [self] {
            self->channel_->post([self] {
                self->waiting_for_space_ = false;
                if (self->aborted_)
                    return;
                self->submit_kept();
                self->maybe_resume();
            });
        };
        if (submit_(batch->write, done, std::move(on_space)) == registry::SubmitStatus::full) {
            waiting_for_space_ = true;
            return;
        }
        batch->submitted = true;
        batch->write = {};
    }
}

bool BulkUpload::must_pause() const {
    return waiting_for_space_ || in_flight_.size() >= options_.max_in_flight;
}

void BulkUpload::maybe_resume() {
    if (paused_ && !must_pause() && !ended_ && !stopped_ && !aborted_) {
        paused_ = false;
        channel_->resume();
    }
}

void BulkUpload::on_durable() {
    while (!in_flight_.empty() && in_flight_.front()->durable) {
        auto batch = std::move(in_flight_.front());
        in_flight_.pop_front();
        emit(*batch);
    }
    // Lines that arrived while the writer was busy with our batches: send them now rather than
    // waiting for more body (a slow or stalled sender still gets its acknowledgements).
    if (in_flight_.empty() && open_ && !aborted_)
        flush();
    maybe_resume();
    maybe_finish();
}

void BulkUpload::emit(Batch& batch) {
    std::string out;
    std::uint64_t created = 0, replaced = 0, unchanged = 0, errors = 0;
    std::size_t op = 0;
    for (const Entry& e : batch.entries) {
        ++summary_.lines;
        const std::string* handle = e.handle.empty() ? nullptr : &e.handle;
        std::string_view code, message;
        std::string code_storage;
        if (e.error) {
            code = e.error->code;
            message = e.error->message;
        } else {
            const registry::OpResult& r = batch.results.at(op++);
            switch (r.outcome) {
            case Outcome::created:
                ++created;
                if (!options_.errors_only)
                    append_result(out, e.line, e.handle, "created");
                continue;
            case Outcome::replaced:
            case Outcome::updated:
                ++replaced;
                if (!options_.errors_only)
                    append_result(out, e.line, e.handle, "replaced");
                continue;
            case Outcome::unchanged:
                ++unchanged;
                if (!options_.errors_only)
                    append_result(out, e.line, e.handle, "unchanged");
                continue;
            default:
                code = r.error.code == Errc::already_exists ? "exists"
                                                            : registry::errc_name(r.error.code);
                message = r.error.message;
                break;
            }
        }
        ++errors;
        std::string line;
        append_error(line, e.line, handle, code, message);
        if (store_ != nullptr && !idempotency_key_.empty() && !replay_full_) {
            // Kept lines are always the first ones: once one does not fit, none after it is kept.
            if (replay_error_lines_ < registry::kMaxOutcomeErrorLines &&
                replay_errors_.size() + line.size() <= registry::kMaxOutcomeErrorBytes) {
                replay_errors_ += line;
                ++replay_error_lines_;
            } else {
                replay_full_ = true;
            }
        }
        out += line;
    }
    summary_.created += created;
    summary_.replaced += replaced;
    summary_.unchanged += unchanged;
    summary_.errors += errors;
    if (observer_) {
        if (created)
            observer_("created", created);
        if (replaced)
            observer_("replaced", replaced);
        if (unchanged)
            observer_("unchanged", unchanged);
        if (errors)
            observer_("error", errors);
    }
    if (!aborted_ && !out.empty())
        channel_->write(std::move(out));
}

std::string bulk_summary_line(const BulkSummary& summary, bool complete) {
    std::string out = "{\"summary\":{\"lines\":";
    append_number(out, summary.lines);
    out += ",\"created\":";
    append_number(out, summary.created);
    out += ",\"replaced\":";
    append_number(out, summary.replaced);
    out += ",\"unchanged\":";
    append_number(out, summary.unchanged);
    out += ",\"errors\":";
    append_number(out, summary.errors);
    if (!complete)
        out += ",\"complete\":false";
    out += "}}\n";
    return out;
}

std::string render_replay(const registry::BulkOutcome& outcome) {
    std::string out = outcome.error_lines;
    const std::uint64_t kept = outcome.kept_error_lines();
    if (kept < outcome.errors) {
        out += "{\"error\":{\"code\":\"replay_truncated\",\"message\":\"only the first ";
        append_number(out, kept);
        out += " of ";
        append_number(out, outcome.errors);
        out += " error lines are kept\"}}\n";
    }
    out += bulk_summary_line(BulkSummary{outcome.lines, outcome.created, outcome.replaced,
                                         outcome.unchanged, outcome.errors});
    return out;
}

void BulkUpload::maybe_finish() {
    if (finished_ || !(ended_ || stopped_ || aborted_) || !in_flight_.empty() || open_)
        return;
    finished_ = true;
    const bool keyed = store_ != nullptr && !idempotency_key_.empty();
    if (aborted_ || stopped_) {
        if (keyed)
            store_->release(idempotency_key_);
    }
    if (aborted_)
        return;
    if (stopped_) {
        tail_ = "{\"error\":{\"code\":\"shutting_down\",\"message\":" +
                json_quote("the server is stopping; lines after line " + std::to_string(line_no_) +
                           " were not read") +
                "}}\n";
    }
    tail_ += bulk_summary_line(summary_, !stopped_);
    if (keyed && !stopped_) {
        outcome_ = registry::BulkOutcome{0,
                                         summary_.lines,
                                         summary_.created,
                                         summary_.replaced,
                                         summary_.unchanged,
                                         summary_.errors,
                                         std::move(replay_errors_)};
        outcome_write_.account = account_;
        outcome_write_.ops.emplace_back(store_->outcome_entry(idempotency_key_, outcome_));
        return store_outcome(); // the summary follows once the outcome is durable
    }
    channel_->write(std::move(tail_));
    channel_->finish();
}

// Offers the outcome's write like a batch (never blocking this executor; a full queue is
// retried when the writer has room, even after a disconnect: every line was applied, so the
// outcome is still what a retry must get).
void BulkUpload::store_outcome() {
    auto self = shared_from_this();
    registry::Completion done = [self](registry::BatchResult results) {
        const bool durable = !results.empty() && results.front().ok();
        self->channel_->post([self, durable] { self->outcome_stored(durable); });
    };
    auto on_space = [self] { self->channel_->post([self] { self->store_outcome(); }); };
    if (submit_(outcome_write_, done, std::move(on_space)) == registry::SubmitStatus::queued)
        outcome_write_ = {};
}

void BulkUpload::outcome_stored(bool durable) {
    store_->complete(idempotency_key_, outcome_, durable);
    outcome_ = {};
    if (!aborted_) {
        channel_->write(std::move(tail_));
        channel_->finish();
    }
}

void BulkUpload::on_end() {
    ended_ = true;
    splitter_.finish([this](std::string_view last) { // the last line had no newline
        ++line_no_;
        process_line(last);
    });
    flush();
    maybe_finish();
}

void BulkUpload::on_stop() {
    stopped_ = true;
    splitter_.discard(); // an unterminated line may be cut: not a record
    flush();
    maybe_finish();
}

void BulkUpload::on_abort() {
    aborted_ = true;
    splitter_.discard();
    open_.reset(); // never submitted: those lines were not acknowledged
    // Kept batches were never submitted either: drop them too. What remains are batches the
    // writer has (they still commit) and batches of bad lines only, emitted (counted, not
    // written) in order as before.
    std::erase_if(in_flight_, [](const std::shared_ptr<Batch>& b) { return !b->submitted; });
    on_durable();
}

} // namespace idnode::resolver::api
