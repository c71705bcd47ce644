// The NDJSON bulk logic (resolver/src/api/native/bulk.cpp) without a socket: a StreamChannel of the
// test collects the output and runs posted work on the test thread; the registry is real.
#include "../common/writer_gate.hpp"
#include "api/native/bulk.hpp"
#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <condition_variable>
#include <deque>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

using namespace idnode;
using resolver::api::BulkOptions;
using resolver::api::BulkUpload;
using test::WriterGate;

namespace {

/// Collects the response; `post` queues work that `run_until_finished` executes here.
class TestChannel : public resolver::StreamChannel {
public:
    void start(resolver::Response head) override { status = head.result_int(); }
    void write(std::string bytes) override { body += bytes; }
    void finish() override { finished = true; }
    void send(resolver::Response response) override { sent = response.body(); }
    void resume() override { ++resumes; }
    void post(std::function<void()> fn) override {
        std::lock_guard lock(mutex_);
        queue_.push_back(std::move(fn));
        cv_.notify_one();
    }
    resolver::RequestContext& context() override { return context_; }

    /// Runs what was posted so far (the server's executor would: a completion still queued at
    /// the end of a test would otherwise keep the upload and this channel alive, a cycle).
    void run_pending() {
        for (;;) {
            std::unique_lock lock(mutex_);
            if (queue_.empty())
                return;
            auto fn = std::move(queue_.front());
            queue_.pop_front();
            lock.unlock();
            fn();
        }
    }

    void run_until_finished() {
        while (!finished) {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [&] { return !queue_.empty(); });
            auto fn = std::move(queue_.front());
            queue_.pop_front();
            lock.unlock();
            fn();
        }
    }

    unsigned status = 0;
    std::string body, sent;
    bool finished = false;
    int resumes = 0;

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> queue_;
    resolver::RequestContext context_;
};

struct Fixture {
    test::TempDir dir{"bulk-unit"};
    std::unique_ptr<registry::Registry> store;
    explicit Fixture(std::size_t max_queued_ops = registry::RegistryOptions{}.max_queued_ops) {
        registry::RegistryOptions o;
        o.data_dir = dir.path();
        o.max_db_size = 64 << 20;
        o.max_queued_ops = max_queued_ops;
        store = registry::Registry::open(o);
    }
    std::unique_ptr<resolver::BodyConsumer> upload(std::shared_ptr<TestChannel> channel,
                                                   BulkOptions options = {},
                                                   resolver::api::IdempotencyStore* keys = nullptr,
                                                   std::string key = {}) {
        return BulkUpload::start(
            options, "tester", channel,
            [](const registry::Handle&, std::vector<registry::HandleValue>&) {
                return std::optional<resolver::api::LineError>{};
            },
            [this](registry::WriteBatch& b, registry::Completion& done,
                   std::function<void()> on_space) {
                return store->try_submit(b, done, std::move(on_space));
            },
            {}, keys, std::move(key));
    }
};

std::string record(int i) {
    return R"({"handle":"88.1/U-)" + std::to_string(i) +
           R"(","values":[{"index":1,"type":"URL","data":"https://e.cn/u"}]})" + "\n";
}

} // namespace

TEST_CASE("lines split at every byte boundary give the same results") {
    Fixture f;
    std::string body = record(1) + "{bad\n" + record(2) + "\n" + record(3);
    auto channel = std::make_shared<TestChannel>();
    auto consumer = f.upload(channel);
    for (char c : body) // one byte at a time
        consumer->on_body(std::string_view(&c, 1));
    consumer->on_end();
    channel->run_until_finished();
    CHECK(channel->status == 200);
    CHECK(channel->body == R"({"line":1,"handle":"88.1/U-1","status":"created"}
{"line":2,"handle":null,"status":"error","error":{"code":"invalid_json","message":"line is not valid JSON: syntax error"}}
{"line":3,"handle":"88.1/U-2","status":"created"}
{"line":5,"handle":"88.1/U-3","status":"created"}
{"summary":{"lines":4,"created":3,"replaced":0,"unchanged":0,"errors":1}}
)");
}

TEST_CASE("an over-long line spanning pieces fails alone") {
    Fixture f;
    BulkOptions options;
    options.max_line_bytes = 100;
    auto channel = std::make_shared<TestChannel>();
    auto consumer = f.upload(channel, options);
    consumer->on_body(record(1) + std::string(80, 'x'));
    consumer->on_body(std::string(80, 'y'));
    consumer->on_body("zz\n" + record(2));
    consumer->on_end();
    channel->run_until_finished();
    CHECK(channel->body.find(
              R"("line":2,"handle":null,"status":"error","error":{"code":"too_large")") !=
          std::string::npos);
    CHECK(channel->body.find(R"({"line":3,"handle":"88.1/U-2","status":"created"})") !=
          std::string::npos);
}

TEST_CASE("backpressure: reading pauses at max_in_flight and resumes when durable") {
    Fixture f;
    BulkOptions options;
    options.batch_records = 2;
    options.max_in_flight = 1;
    options.errors_only = true;
    auto channel = std::make_shared<TestChannel>();
    auto consumer = f.upload(channel, options);
    std::string body;
    for (int i = 0; i < 10; ++i)
        body += record(i);
    CHECK_FALSE(consumer->on_body(body)); // 5 batches submitted, window is 1: pause
    consumer->on_end();
    channel->run_until_finished();
    CHECK(channel->body ==
          R"({"summary":{"lines":10,"created":10,"replaced":0,"unchanged":0,"errors":0}})"
          "\n");
    CHECK(channel->resumes == 0); // the body had ended: nothing to resume
}

TEST_CASE("an aborted upload writes nothing more; submitted batches still commit") {
    Fixture f;
    auto channel = std::make_shared<TestChannel>();
    auto consumer = f.upload(channel);
    consumer->on_body(record(1) + record(2) + R"({"handle":"88.1/U-3")");
    consumer->on_abort();
    const auto snapshot_has = [&](const char* h) {
        return f.store->snapshot().contains(*registry::parse_handle(h, {}));
    };
    // The first two lines were flushed (nothing was in flight), so they become durable.
    for (int i = 0; i < 200 && !snapshot_has("88.1/U-2"); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    CHECK(snapshot_has("88.1/U-1"));
    CHECK_FALSE(snapshot_has("88.1/U-3"));
    channel->run_pending();
}

// ---- a full writer queue: keep the batch, pause, retry (never block the I/O thread) ----------

namespace {

std::string records(int from, int to) {
    std::string body;
    for (int i = from; i < to; ++i)
        body += record(i);
    return body;
}

/// Runs what the channels' executors were given until `done` (at most 20 s).
template <class Done> bool drive(std::initializer_list<TestChannel*> channels, Done&& done) {
    for (int i = 0; i < 2000; ++i) {
        for (auto* c : channels)
            c->run_pending();
        if (done())
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

bool stored(registry::Registry& store, int i) {
    return store.snapshot().contains(*registry::parse_handle("88.1/U-" + std::to_string(i), {}));
}

} // namespace

TEST_CASE("a full writer queue: uploads keep their batches and pause instead of blocking") {
    Fixture f(2); // room for one batch of two records
    BulkOptions options;
    options.batch_records = 2;
    auto a = std::make_shared<TestChannel>();
    auto b = std::make_shared<TestChannel>();
    auto upload_a = f.upload(a, options);
    auto upload_b = f.upload(b, options);
    {
        WriterGate gate(*f.store);
        // Both calls return (the old blocking submit would hang here: the writer is held).
        // A: its first batch fills the queue, the next four are kept. B: refused, kept.
        CHECK_FALSE(upload_a->on_body(records(0, 10)));
        CHECK_FALSE(upload_b->on_body(records(10, 14)));
        CHECK(f.store->stats().queued_ops == 2);
        CHECK(f.store->stats().submits_refused >= 2);
        a->run_pending();
        b->run_pending();
        CHECK(a->body.empty()); // nothing is acknowledged before it is durable
        CHECK(b->body.empty());
        CHECK(a->resumes == 0);
        CHECK(b->resumes == 0);
        gate.open();
        // The writer drains, wakes the uploads, they offer their kept batches again (maybe
        // refused again, then woken again) until everything is in; then both resume reading.
        REQUIRE(drive({a.get(), b.get()}, [&] { return a->resumes > 0 && b->resumes > 0; }));
    }
    upload_a->on_body(records(20, 22));
    upload_a->on_end();
    upload_b->on_body(records(22, 23));
    upload_b->on_end();
    REQUIRE(drive({a.get(), b.get()}, [&] { return a->finished && b->finished; }));
    // Every line acknowledged, in input order, and durable.
    std::string expect_a, expect_b;
    int line = 0;
    for (int i : {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 20, 21})
        expect_a += R"({"line":)" + std::to_string(++line) + R"(,"handle":"88.1/U-)" +
                    std::to_string(i) + R"(","status":"created"})" + "\n";
    expect_a += R"({"summary":{"lines":12,"created":12,"replaced":0,"unchanged":0,"errors":0}})"
                "\n";
    line = 0;
    for (int i : {10, 11, 12, 13, 22})
        expect_b += R"({"line":)" + std::to_string(++line) + R"(,"handle":"88.1/U-)" +
                    std::to_string(i) + R"(","status":"created"})" + "\n";
    expect_b += R"({"summary":{"lines":5,"created":5,"replaced":0,"unchanged":0,"errors":0}})"
                "\n";
    CHECK(a->body == expect_a);
    CHECK(b->body == expect_b);
    for (int i : {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 20, 21, 22})
        CHECK(stored(*f.store, i));
}

TEST_CASE("a full writer queue: a disconnect drops the kept batches, submitted ones commit") {
    Fixture f(2);
    BulkOptions options;
    options.batch_records = 2;
    auto channel = std::make_shared<TestChannel>();
    auto consumer = f.upload(channel, options);
    {
        WriterGate gate(*f.store);
        CHECK_FALSE(consumer->on_body(records(0, 4) + "{bad\n" + records(4, 6)));
        consumer->on_abort();
    }
    // U-0 and U-1 were in the writer's queue: they commit. The kept batches were never
    // submitted, and a wake-up arriving after the abort must not submit them either.
    REQUIRE(drive({channel.get()}, [&] { return stored(*f.store, 1); }));
    channel->run_pending();
    f.store->write(registry::WriteBatch{}); // anything submitted before this has committed
    CHECK(stored(*f.store, 0));
    for (int i = 2; i < 6; ++i)
        CHECK_FALSE(stored(*f.store, i));
    CHECK(channel->body.empty());
    CHECK_FALSE(channel->finished);
}

TEST_CASE("a full writer queue: a graceful stop still submits the kept batches") {
    Fixture f(2);
    BulkOptions options;
    options.batch_records = 2;
    options.errors_only = true;
    auto channel = std::make_shared<TestChannel>();
    auto consumer = f.upload(channel, options);
    {
        WriterGate gate(*f.store);
        CHECK_FALSE(consumer->on_body(records(0, 6) + R"({"handle":"88.1/U-cut")"));
        consumer->on_stop();
    }
    REQUIRE(drive({channel.get()}, [&] { return channel->finished; }));
    CHECK(
        channel->body ==
        R"({"error":{"code":"shutting_down","message":"the server is stopping; lines after line 6 were not read"}})"
        "\n"
        R"({"summary":{"lines":6,"created":6,"replaced":0,"unchanged":0,"errors":0,"complete":false}})"
        "\n");
    for (int i = 0; i < 6; ++i)
        CHECK(stored(*f.store, i));
    CHECK(channel->resumes == 0); // stopped: reading never resumes
}

// ---- Idempotency-Key outcomes (the registry's idempotency table)
// ---------------------------------

namespace {

using resolver::api::IdempotencyStore;
using Claim = IdempotencyStore::Claim;

const std::string kKey = std::string("tester") + '\0' + "run-1";

std::optional<registry::BulkOutcome> stored_outcome(registry::Registry& store,
                                                    const std::string& key) {
    auto outcome = store.snapshot().bulk_outcome(key);
    if (outcome.code() == registry::Errc::not_found)
        return std::nullopt;
    REQUIRE(outcome.ok());
    return *outcome;
}

std::size_t stored_outcomes(registry::Registry& store) {
    std::size_t n = 0;
    store.snapshot().for_each_entry(registry::Table::idempotency,
                                    [&](const std::string&, const std::string&) { ++n; });
    return n;
}

} // namespace

TEST_CASE("Idempotency-Key: the summary follows the durable outcome; any store then replays it") {
    Fixture f(2);
    IdempotencyStore keys(f.store.get(), std::chrono::hours(1));
    std::string replay;
    REQUIRE(keys.claim(kKey, replay) == Claim::fresh);
    auto channel = std::make_shared<TestChannel>();
    auto consumer = f.upload(channel, {}, &keys, kKey);
    consumer->on_body(record(1) + "[1]\n" + record(2));
    REQUIRE(drive({channel.get()},
                  [&] { return channel->body.find("88.1/U-2") != std::string::npos; }));
    {
        // The outcome's write waits behind a held writer and a full queue: no summary yet, and
        // the key still reads as running.
        WriterGate gate(*f.store);
        registry::WriteBatch filler;
        filler.ops.emplace_back(registry::DeleteRecord{*registry::parse_handle("88.1/none-1", {})});
        filler.ops.emplace_back(registry::DeleteRecord{*registry::parse_handle("88.1/none-2", {})});
        f.store->submit(std::move(filler), [](registry::BatchResult) {});
        consumer->on_end(); // every line is durable: the outcome's write is offered, refused
        for (int i = 0; i < 20; ++i) {
            channel->run_pending();
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        CHECK(channel->body.find("summary") == std::string::npos);
        CHECK_FALSE(channel->finished);
        CHECK(keys.claim(kKey, replay) == Claim::in_progress);
        CHECK_FALSE(stored_outcome(*f.store, kKey).has_value());
    }
    REQUIRE(drive({channel.get()}, [&] { return channel->finished; }));
    // Finished means stored: no wait needed before looking.
    auto outcome = stored_outcome(*f.store, kKey);
    REQUIRE(outcome.has_value());
    CHECK(outcome->lines == 3);
    CHECK(outcome->created == 2);
    CHECK(outcome->errors == 1);
    const std::string expected =
        R"({"line":2,"handle":null,"status":"error","error":{"code":"invalid_record","message":"line must be a JSON object"}})"
        "\n"
        R"({"summary":{"lines":3,"created":2,"replaced":0,"unchanged":0,"errors":1}})"
        "\n";
    CHECK(resolver::api::render_replay(*outcome) == expected);
    CHECK(keys.claim(kKey, replay) == Claim::done);
    CHECK(replay == expected);
    // A new store over the same registry (the node after a restart) answers the same.
    IdempotencyStore after_restart(f.store.get(), std::chrono::hours(1));
    replay.clear();
    CHECK(after_restart.claim(kKey, replay) == Claim::done);
    CHECK(replay == expected);
    CHECK(keys.memory_bytes() == 0); // stored outcomes are not also kept in memory
    // Another account's same key is its own.
    CHECK(after_restart.claim(std::string("other") + '\0' + "run-1", replay) == Claim::fresh);
}

TEST_CASE("Idempotency-Key: error lines kept are the first ones, within the bounds") {
    Fixture f;
    IdempotencyStore keys(f.store.get(), std::chrono::hours(1));
    std::string replay;
    REQUIRE(keys.claim(kKey, replay) == Claim::fresh);
    auto channel = std::make_shared<TestChannel>();
    BulkOptions options;
    options.errors_only = true;
    auto consumer = f.upload(channel, options, &keys, kKey);
    std::string body;
    for (int i = 0; i < 1000; ++i)
        body += R"({"handle":")" + std::string(400, 'h') + R"("})" + "\n"; // invalid_handle
    consumer->on_body(body);
    consumer->on_end();
    channel->run_until_finished();
    auto outcome = stored_outcome(*f.store, kKey);
    REQUIRE(outcome.has_value());
    CHECK(outcome->errors == 1000);
    CHECK(outcome->error_lines.size() <= registry::kMaxOutcomeErrorBytes);
    const auto kept = outcome->kept_error_lines();
    CHECK(kept > 10);
    CHECK(kept < registry::kMaxOutcomeErrorLines); // the byte bound came first here
    CHECK(channel->body.substr(0, outcome->error_lines.size()) == outcome->error_lines);
    REQUIRE(keys.claim(kKey, replay) == Claim::done);
    CHECK(replay.find(R"("code":"replay_truncated","message":"only the first )" +
                      std::to_string(kept) + " of 1000 error lines are kept") != std::string::npos);
}

TEST_CASE("Idempotency-Key: expired or undecodable outcomes are fresh, and claims sweep them") {
    Fixture f;
    auto key = [](const std::string& name) { return "tester" + std::string(1, '\0') + name; };
    registry::BulkOutcome old;
    old.expires_ms = 1000; // long past
    registry::WriteBatch batch;
    for (int i = 0; i < 40; ++i)
        batch.ops.emplace_back(registry::PutEntry{registry::Table::idempotency,
                                                  key("old-" + std::to_string(100 + i)),
                                                  registry::encode_bulk_outcome(old)});
    batch.ops.emplace_back(
        registry::PutEntry{registry::Table::idempotency, key("junk"), "\x01garbage"});
    const auto last = f.store->snapshot().last_sequence();
    for (const auto& r : f.store->write(std::move(batch)))
        REQUIRE(r.ok());
    CHECK(f.store->snapshot().last_sequence() == last); // bookkeeping: not in the change log
    REQUIRE(stored_outcomes(*f.store) == 41);

    // 41 entries in key order (junk, old-100 .. old-139) are 3 pages of kSweepEntries (16).
    static_assert(IdempotencyStore::kSweepEntries == 16);
    IdempotencyStore keys(f.store.get(), std::chrono::hours(1));
    std::string replay;
    CHECK(keys.claim(key("junk"), replay) == Claim::fresh);    // sweeps page 1
    CHECK(keys.claim(key("old-139"), replay) == Claim::fresh); // expired; sweeps page 2
    CHECK(keys.claim(key("new-0"), replay) == Claim::fresh);   // page 3 but old-139: it is held
    f.store->write(registry::WriteBatch{});                    // the sweeps' deletes have committed
    std::vector<std::string> left;
    f.store->snapshot().for_each_entry(
        registry::Table::idempotency,
        [&](const std::string& k, const std::string&) { left.push_back(k); });
    CHECK(left == std::vector<std::string>{key("old-139")});
    // Released (its upload was cut), the next lap of the sweep removes it too.
    CHECK(keys.claim(key("new-1"), replay) == Claim::fresh);
    f.store->write(registry::WriteBatch{});
    CHECK(stored_outcomes(*f.store) == 1);
    keys.release(key("old-139"));
    CHECK(keys.claim(key("new-2"), replay) == Claim::fresh);
    f.store->write(registry::WriteBatch{});
    CHECK(stored_outcomes(*f.store) == 0);
}

TEST_CASE("Idempotency-Key: outcomes kept in memory (no registry) are bounded in bytes") {
    IdempotencyStore keys(nullptr, std::chrono::hours(1), 64 * 1024);
    registry::BulkOutcome outcome;
    outcome.lines = outcome.errors = 20;
    for (int i = 0; i < 20; ++i)
        outcome.error_lines += std::string(100, 'e') + "\n";
    std::string replay;
    for (int i = 0; i < 200; ++i) {
        const std::string key = "tester" + std::string(1, '\0') + std::to_string(i);
        REQUIRE(keys.claim(key, replay) == Claim::fresh);
        keys.complete(key, outcome, false);
        CHECK(keys.memory_bytes() <= 64 * 1024);
    }
    CHECK(keys.memory_bytes() > 32 * 1024);
    // The newest are replayed; the oldest were evicted and run again.
    CHECK(keys.claim("tester" + std::string(1, '\0') + "199", replay) == Claim::done);
    CHECK(replay == resolver::api::render_replay(outcome));
    CHECK(keys.claim("tester" + std::string(1, '\0') + "0", replay) == Claim::fresh);
}

// ---- the pieces the upload is made of (also fuzzed: tests/fuzz/bulk_ndjson_fuzz.cpp) ----------

namespace {

/// The splitter's output for `pieces`: lines as text, over-long lines as "<too long>".
std::vector<std::string> split_pieces(std::size_t max_line_bytes,
                                      std::initializer_list<std::string_view> pieces) {
    std::vector<std::string> out;
    resolver::api::NdjsonSplitter splitter(max_line_bytes);
    auto on_line = [&](std::string_view line) { out.emplace_back(line); };
    for (auto piece : pieces)
        splitter.feed(piece, on_line, [&] { out.emplace_back("<too long>"); });
    splitter.finish(on_line);
    return out;
}

} // namespace

TEST_CASE("NdjsonSplitter: lines are the same whatever the pieces") {
    using V = std::vector<std::string>;
    const V expected{"ab", "", "c\r", "def"};
    CHECK(split_pieces(10, {"ab\n\nc\r\ndef"}) == expected);
    CHECK(split_pieces(10, {"a", "b\n", "\n", "c", "\r\n", "de", "f"}) == expected);
    CHECK(split_pieces(10, {"ab\n\nc\r\ndef", ""}) == expected);
    CHECK(split_pieces(10, {"ab\n", "\nc\r\ndef\n"}) == expected); // a final '\n' ends the last
    CHECK(split_pieces(10, {}).empty());
}

TEST_CASE("NdjsonSplitter: an over-long line is reported once and skipped to its end") {
    using V = std::vector<std::string>;
    // Exactly max bytes fit; one more does not, whether it arrives whole or in pieces.
    CHECK(split_pieces(3, {"abc\nabcd\nxy"}) == V{"abc", "<too long>", "xy"});
    CHECK(split_pieces(3, {"ab", "cd", "efgh", "\nxy\n"}) == V{"<too long>", "xy"});
    CHECK(split_pieces(3, {"ab", "cd"}) == V{"<too long>"}); // the last line, unterminated
    CHECK(split_pieces(0, {"\n", "a\n"}) == V{"", "<too long>"});
}

TEST_CASE("NdjsonSplitter: discard forgets an unterminated line") {
    std::vector<std::string> out;
    resolver::api::NdjsonSplitter splitter(100);
    auto on_line = [&](std::string_view line) { out.emplace_back(line); };
    splitter.feed("a\nbc", on_line, [] { FAIL("nothing is too long"); });
    splitter.discard();
    splitter.finish(on_line);
    CHECK(out == std::vector<std::string>{"a"});
}

TEST_CASE("parse_bulk_line: records, blank lines and each kind of refusal") {
    using resolver::api::BlankLine;
    using resolver::api::BulkLineError;
    using resolver::api::BulkRecord;
    using resolver::api::parse_bulk_line;
    const registry::HandleLimits limits{};

    const auto ok = parse_bulk_line(
        R"({"handle":"88.1/A","templateVersion":"1.0","values":[{"index":1,"type":"URL","data":"x"}]})"
        "\r",
        limits);
    const auto* record = std::get_if<BulkRecord>(&ok);
    REQUIRE(record != nullptr);
    CHECK(record->handle.spelling() == "88.1/A");
    REQUIRE(record->values.size() == 2); // the URL and the TEMPLATE value
    CHECK(record->values[1].index == registry::kIndexTemplate);
    CHECK(record->values[1].data == "1.0");

    for (std::string_view blank : {"", "\r", " \t ", " \r"})
        CHECK(std::holds_alternative<BlankLine>(parse_bulk_line(blank, limits)));

    struct Case {
        std::string_view line, handle, code, message;
    };
    const Case cases[] = {
        {"{bad", "", "invalid_json", "line is not valid JSON: syntax error"},
        {"[1]", "", "invalid_record", "line must be a JSON object"},
        {R"({"values":[]})", "", "invalid_record", R"(line needs "handle" (a string))"},
        {R"({"handle":7,"values":[]})", "", "invalid_record", R"(line needs "handle" (a string))"},
        {R"({"handle":"nope","values":[]})", "nope", "invalid_handle", ""},
        {R"({"handle":"88.1/B"})", "88.1/B", "invalid_record", R"(line needs "values")"},
        {R"({"handle":"88.1/C","values":[{"index":0,"type":"URL","data":"x"}]})", "88.1/C",
         "invalid_value", "values[0].index must be an integer from 1 to 2147483647"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.line);
        const auto parsed = parse_bulk_line(c.line, limits);
        const auto* bad = std::get_if<BulkLineError>(&parsed);
        REQUIRE(bad != nullptr);
        CHECK(bad->handle == c.handle);
        CHECK(bad->error.code == c.code);
        if (c.message.empty())
            CHECK_FALSE(bad->error.message.empty()); // parse_handle's own wording
        else
            CHECK(bad->error.message == c.message);
    }
}
