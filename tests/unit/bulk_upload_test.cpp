// The NDJSON bulk logic (resolver/src/api/bulk.cpp) without a socket: a StreamChannel of the test
// collects the output and runs posted work on the test thread; the registry is real.
#include "api/bulk.hpp"
#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <condition_variable>
#include <deque>
#include <mutex>

using namespace idnode;
using resolver::api::BulkOptions;
using resolver::api::BulkUpload;

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
    Fixture() {
        registry::RegistryOptions o;
        o.data_dir = dir.path();
        o.max_db_size = 64 << 20;
        store = registry::Registry::open(o);
    }
    std::unique_ptr<resolver::BodyConsumer> upload(std::shared_ptr<TestChannel> channel,
                                                   BulkOptions options = {}) {
        return BulkUpload::start(
            options, "tester", channel,
            [](const registry::Handle&, std::vector<registry::HandleValue>&) {
                return std::optional<resolver::api::LineError>{};
            },
            [this](registry::WriteBatch b, registry::Completion done) {
                store->submit(std::move(b), std::move(done));
            });
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
              R"("line":2,"handle":null,"status":"error","error":{"code":"line_too_long")") !=
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
