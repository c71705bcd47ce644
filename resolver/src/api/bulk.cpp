#include "bulk.hpp"

#include "record_scan.hpp"
#include "values_json.hpp"

#include <boost/json.hpp>

#include <algorithm>

namespace idnode::resolver::api {
namespace json = boost::json;
using registry::Errc;
using registry::Outcome;

// ---- IdempotencyStore ---------------------------------------------------------------------------

void IdempotencyStore::expire(std::chrono::steady_clock::time_point now) {
    while (!order_.empty()) {
        auto it = entries_.find(order_.front());
        if (it == entries_.end()) { // released earlier
            order_.pop_front();
            continue;
        }
        const bool too_old = now - it->second.created > ttl_;
        const bool too_many = entries_.size() > max_entries_ && it->second.done;
        if (!too_old && !too_many)
            break;
        if (!it->second.done && !too_old)
            break; // never evict an upload that is still running
        entries_.erase(it);
        order_.pop_front();
    }
}

IdempotencyStore::Claim IdempotencyStore::claim(const std::string& key, std::string& replay) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mutex_);
    expire(now);
    auto [it, inserted] = entries_.try_emplace(key);
    if (inserted) {
        it->second.created = now;
        order_.push_back(key);
        return Claim::fresh;
    }
    if (!it->second.done)
        return Claim::in_progress;
    replay = it->second.replay;
    return Claim::done;
}

void IdempotencyStore::complete(const std::string& key, std::string replay) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key);
    if (it == entries_.end())
        return;
    it->second.done = true;
    it->second.replay = std::move(replay);
}

void IdempotencyStore::release(const std::string& key) {
    std::lock_guard lock(mutex_);
    entries_.erase(key);
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
    // The per-record limit of every write path (record_write.hpp), with the same error code as
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
        if (store_ != nullptr && !idempotency_key_.empty() &&
            replay_error_count_ < kMaxReplayErrors) {
            replay_errors_ += line;
            ++replay_error_count_;
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

std::string BulkUpload::summary_line() const {
    std::string out = "{\"summary\":{\"lines\":";
    append_number(out, summary_.lines);
    out += ",\"created\":";
    append_number(out, summary_.created);
    out += ",\"replaced\":";
    append_number(out, summary_.replaced);
    out += ",\"unchanged\":";
    append_number(out, summary_.unchanged);
    out += ",\"errors\":";
    append_number(out, summary_.errors);
    if (stopped_)
        out += ",\"complete\":false";
    out += "}}\n";
    return out;
}

void BulkUpload::maybe_finish() {
    if (finished_ || !(ended_ || stopped_ || aborted_) || !in_flight_.empty() || open_)
        return;
    finished_ = true;
    if (aborted_ || stopped_) {
        if (store_ != nullptr && !idempotency_key_.empty())
            store_->release(idempotency_key_);
    }
    if (aborted_)
        return;
    std::string tail;
    if (stopped_) {
        tail = "{\"error\":{\"code\":\"shutting_down\",\"message\":" +
               json_quote("the server is stopping; lines after line " + std::to_string(line_no_) +
                          " were not read") +
               "}}\n";
    }
    tail += summary_line();
    if (store_ != nullptr && !idempotency_key_.empty() && !stopped_) {
        std::string replay = replay_errors_;
        if (replay_error_count_ < summary_.errors)
            replay += "{\"error\":{\"code\":\"replay_truncated\",\"message\":\"only the first " +
                      std::to_string(kMaxReplayErrors) + " error lines are kept\"}}\n";
        replay += tail;
        store_->complete(idempotency_key_, std::move(replay));
    }
    channel_->write(std::move(tail));
    channel_->finish();
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
