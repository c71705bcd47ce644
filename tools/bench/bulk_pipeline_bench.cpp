// The bulk endpoint's server-side cost without sockets or TLS: NDJSON lines (the steel template's
// records, tools/bench/steel_record.hpp) fed in 64 KiB pieces to the same BulkUpload the route
// uses (resolver/src/api/native/bulk.cpp), template step (node/records.hpp) included, into a real
// durable registry. CPU time is reported per record for the parsing thread and for the whole
// process (parsing + writer), so the figure is comparable across runs on a busy machine where
// wall time is not.
//
//   bulk_pipeline_bench [--records N] [--order asc|random] [--dir DIR]
//
// Prints a table and `bench:` lines (docs/performance.md).
#include "api/native/bulk.hpp"
#include "idnode/codec/template_json.hpp"
#include "idnode/node/records.hpp"
#include "steel_record.hpp"

#include <idnode/registry/registry.hpp>
#include <idnode/registry/template.hpp>

#include <boost/json.hpp>

#include <CLI/CLI.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <numeric>
#include <random>
#include <sstream>

using namespace idnode;
namespace fs = std::filesystem;

namespace {

/// The server's executor in miniature: posted work runs on the bench thread.
class BenchChannel : public resolver::StreamChannel {
public:
    void start(resolver::Response) override {}
    void write(std::string bytes) override { out += bytes; }
    void finish() override { finished = true; }
    void send(resolver::Response response) override {
        out += response.body();
        finished = true;
    }
    void resume() override { resumed = true; }
    void post(std::function<void()> fn) override {
        std::lock_guard lock(mutex_);
        queue_.push_back(std::move(fn));
        cv_.notify_one();
    }
    resolver::RequestContext& context() override { return context_; }

    /// Runs posted work until `done()` holds.
    template <class Pred> void run_until(Pred done) {
        while (!done()) {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [&] { return !queue_.empty(); });
            auto fn = std::move(queue_.front());
            queue_.pop_front();
            lock.unlock();
            fn();
        }
    }

    std::string out;
    bool finished = false;
    bool resumed = false;

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> queue_;
    resolver::RequestContext context_;
};

double cpu_seconds(clockid_t clock) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"in-process bulk pipeline benchmark"};
    std::uint64_t records = 300000;
    std::string order = "asc";
    fs::path dir = "build/bench/bulk-pipeline";
    fs::path template_file = "conf/templates/steel.json";
    app.add_option("--records", records);
    app.add_option("--order", order)->check(CLI::IsMember({"asc", "random"}));
    app.add_option("--dir", dir, "scratch directory (removed first)");
    app.add_option("--template", template_file);
    CLI11_PARSE(app, argc, argv);

    fs::remove_all(dir);
    fs::create_directories(dir);
    registry::RegistryOptions ro;
    ro.data_dir = dir;
    ro.max_db_size = 16ull << 30;
    auto store = registry::Registry::open(ro);

    std::ifstream in(template_file);
    std::stringstream text;
    text << in.rdbuf();
    auto tpl = codec::template_from_json(boost::json::parse(text.str()));
    if (!tpl) {
        std::cerr << "template: " << tpl.error().message << "\n";
        return 1;
    }
    const std::string prefix = "88.118.8";
    auto key = registry::template_key(prefix, tpl->version);
    auto put = store->write(registry::PutEntry{registry::Table::templates, *key,
                                               registry::encode_template(*tpl),
                                               registry::PutMode::create});
    if (!put.ok()) {
        std::cerr << "template write failed: " << put.error.message << "\n";
        return 1;
    }

    std::vector<std::uint64_t> serials(records);
    std::iota(serials.begin(), serials.end(), 0);
    if (order == "random")
        std::shuffle(serials.begin(), serials.end(), std::mt19937_64(42));
    std::string body;
    body.reserve(records * 480);
    for (auto s : serials)
        bench::append_steel_record(body, prefix, "RUN1", s);

    auto channel = std::make_shared<BenchChannel>();
    auto templates = std::make_shared<node::TemplateCache>();
    auto check =
        [&store, templates](
            const registry::Handle& h,
            std::vector<registry::HandleValue>& values) -> std::optional<resolver::api::LineError> {
        auto prepared = node::prepare_record(store->snapshot(), h, std::nullopt, std::move(values),
                                             false, templates.get());
        if (!prepared.ok())
            return resolver::api::LineError{"invalid_value", prepared.message(false)};
        values = std::move(prepared.values);
        return std::nullopt;
    };
    resolver::api::BulkOptions options;
    options.errors_only = true;
    const double cpu0 = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
    const double thread0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
    const auto wall0 = std::chrono::steady_clock::now();
    auto consumer = resolver::api::BulkUpload::start(
        options, "bench", channel, check,
        [&store](registry::WriteBatch& b, registry::Completion& done,
                 std::function<void()> on_space) {
            return store->try_submit(b, done, std::move(on_space));
        });
    constexpr std::size_t kPiece = 64 * 1024;
    for (std::size_t at = 0; at < body.size(); at += kPiece) {
        const std::string_view piece =
            std::string_view(body).substr(at, std::min(kPiece, body.size() - at));
        if (!consumer->on_body(piece)) {
            channel->resumed = false;
            channel->run_until([&] { return channel->resumed; });
        }
    }
    consumer->on_end();
    channel->run_until([&] { return channel->finished; });
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    const double cpu = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    const double parse_cpu = cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - thread0;
    consumer.reset();

    const auto summary = channel->out.rfind("{\"summary\"");
    const bool clean = summary != std::string::npos &&
                       channel->out.find("\"errors\":0", summary) != std::string::npos;
    const double n = static_cast<double>(records);
    std::printf("| figure (%s order, %llu records) | value |\n|---|---|\n", order.c_str(),
                static_cast<unsigned long long>(records));
    std::printf("| records/s (wall, durable) | %.0f |\n", n / wall);
    std::printf("| CPU µs per record, whole process | %.2f |\n", cpu * 1e6 / n);
    std::printf("| CPU µs per record, parse + validate thread | %.2f |\n", parse_cpu * 1e6 / n);
    std::printf("| CPU µs per record, writer and the rest | %.2f |\n", (cpu - parse_cpu) * 1e6 / n);
    std::printf("bench: bulk_pipeline_%s_records_per_s %.0f records/s\n", order.c_str(), n / wall);
    std::printf("bench: bulk_pipeline_%s_cpu_us_per_record %.2f us\n", order.c_str(),
                cpu * 1e6 / n);
    std::printf("bench: bulk_pipeline_%s_parse_cpu_us_per_record %.2f us\n", order.c_str(),
                parse_cpu * 1e6 / n);
    if (!clean) {
        std::cerr << "upload had errors: " << channel->out.substr(0, 2000) << "\n";
        return 1;
    }
    store.reset();
    fs::remove_all(dir);
    return 0;
}
