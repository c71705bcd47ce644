// Bulk uploads against a full writer queue, end to end over HTTPS: the real Server, Router,
// NodeApi and a real registry opened in this process with a small queue (max_queued_ops is not
// a configuration key of the binary), so that the test can also hold the writer and see the
// queue itself. Several concurrent uploads fill the queue; each keeps its batch and pauses
// instead of blocking its I/O thread, so a resolution on the same node is answered meanwhile;
// once the writer drains, every line is acknowledged and every acknowledged line is durable.
#include "harness.hpp"
#include "json_helpers.hpp"

#include "../common/writer_gate.hpp"
#include "idnode/registry/registry.hpp"
#include "idnode/resolver/config.hpp"
#include "idnode/resolver/logging.hpp"
#include "idnode/resolver/metrics.hpp"
#include "idnode/resolver/node_api.hpp"
#include "idnode/resolver/router.hpp"
#include "idnode/resolver/server.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

using namespace idnode::test;
namespace json = boost::json;
namespace registry = idnode::registry;
namespace resolver = idnode::resolver;
using V = http::verb;

namespace {

constexpr std::size_t kMaxQueuedOps = 2000; // one full bulk batch

/// idctl init'ed data dir, a registry with a small queue, and the node's API served in process.
class Node {
public:
    Node() : dir_("bulk-backpressure"), pki_(TestPki::create(dir_.path())) {
        const auto init = run_command({IDNODE_IDCTL_BINARY, "init", "--data-dir",
                                       (dir_.path() / "db").string(), "--node-prefix", "88.118"});
        REQUIRE_MESSAGE(init.exit_code == 0, init.err);
        admin = "Bearer " + std::string(parse_json(init.out).at("admin_key").as_string());
        registry::RegistryOptions store;
        store.data_dir = dir_.path() / "db";
        store.max_db_size = 256 << 20;
        store.max_queued_ops = kMaxQueuedOps;
        registry_ = registry::Registry::open(store);
        api_ = std::make_unique<resolver::NodeApi>(*registry_, resolver::NodeApiOptions{});
        api_->register_routes(router_);
        config_.https.listen = {"127.0.0.1", 0};
        config_.ops.listen = {"127.0.0.1", 0};
        config_.handle.listen = {"127.0.0.1", 0};
        config_.https.cert = pki_.server_cert;
        config_.https.key = pki_.server_key;
        config_.https.threads = 2; // as few as a small machine has: every one hosts an upload
        config_.limits.rate_per_ip = 0;
        config_.log.level = "warn";
        logging_ = std::make_unique<resolver::Logging>(config_.log);
        server_ =
            std::make_unique<resolver::Server>(config_, router_.as_dispatch(), metrics_, *logging_);
        server_->set_stream_dispatch(router_.as_stream_dispatch());
        server_->set_body_limit_lookup(router_.as_body_limit_lookup());
        thread_ = std::thread([this] { server_->run(); });
    }
    ~Node() {
        server_->request_stop();
        thread_.join();
        server_.reset();
    }

    std::unique_ptr<HttpsClient> client(Millis timeout) {
        auto c = std::make_unique<HttpsClient>(server_->https_endpoint().port, trust(pki_.ca_cert),
                                               timeout);
        c->connect();
        return c;
    }
    registry::Registry& store() { return *registry_; }

    std::string admin;

private:
    TempDir dir_;
    TestPki pki_;
    std::unique_ptr<registry::Registry> registry_; // outlives the server (declared before it)
    std::unique_ptr<resolver::NodeApi> api_;
    resolver::Router router_;
    resolver::NodeConfig config_;
    resolver::MetricsRegistry metrics_;
    std::unique_ptr<resolver::Logging> logging_;
    std::unique_ptr<resolver::Server> server_;
    std::thread thread_;
};

std::string handle_of(int upload, int i) {
    return "88.118/BP-" + std::to_string(upload) + "-" + std::to_string(i);
}

} // namespace

TEST_CASE("concurrent bulk uploads fill the writer queue; resolutions are answered meanwhile; "
          "every acknowledged line is durable") {
    Node node;
    auto admin = node.client(10s);
    auto put = admin->request(V::put, "/api/handles/88.118/probe",
                              R"({"values":[{"index":1,"type":"URL","data":"https://e.cn/p"}]})",
                              {{"Authorization", node.admin}});
    REQUIRE_MESSAGE(put.result() == http::status::created, put.body());

    // Each upload is larger than what fits in the queue beside the others' first batches, so
    // every one of them is refused at least once while the writer is held.
    const int uploads = 3;
    const int per_upload = reduced_mode() ? 4500 : 9000;
    std::vector<std::string> bodies(uploads);
    for (int u = 0; u < uploads; ++u)
        for (int i = 0; i < per_upload; ++i)
            bodies[u] += R"({"handle":")" + handle_of(u, i) +
                         R"(","values":[{"index":1,"type":"URL","data":"https://e.cn/x"}]})" + "\n";

    std::vector<Response> responses(uploads);
    std::vector<std::string> failures(uploads);
    std::atomic<int> answered{0};
    std::vector<std::thread> senders;
    struct JoinAll { // also when a check below fails: the gate opens first, then the uploads end
        std::vector<std::thread>& threads;
        ~JoinAll() {
            for (auto& t : threads)
                if (t.joinable())
                    t.join();
        }
    } join_all{senders};
    const auto refused_before = node.store().stats().submits_refused;
    {
        WriterGate gate(node.store(), "88.118/gate-absent");
        for (int u = 0; u < uploads; ++u) {
            senders.emplace_back([&, u] {
                try {
                    auto c = node.client(60s);
                    responses[u] = c->request(V::post, "/api/v1/bulk?mode=create", bodies[u],
                                              {{"Authorization", node.admin}});
                } catch (const std::exception& e) {
                    failures[u] = e.what();
                }
                answered.fetch_add(1);
            });
        }
        // Every upload has been refused by the full queue and is now waiting for room...
        REQUIRE(eventually(
            [&] {
                return node.store().stats().submits_refused - refused_before >=
                       static_cast<std::uint64_t>(uploads);
            },
            20s));
        CHECK(node.store().stats().queued_ops <= kMaxQueuedOps);
        // ...and the node still answers resolutions: no I/O thread is blocked in the registry
        // (with a blocking submit, both I/O threads would wait for the held writer here).
        for (int i = 0; i < 3; ++i) {
            auto reader = node.client(5s);
            auto r = reader->request(V::get, "/api/handles/88.118/probe");
            CHECK(r.result() == http::status::ok);
            CHECK(r.body().find("https://e.cn/p") != std::string::npos);
        }
        // Nothing can be durable while the writer is held: no upload has finished yet.
        CHECK(answered.load() == 0);
    }
    for (auto& t : senders)
        t.join();

    auto snapshot = node.store().snapshot();
    for (int u = 0; u < uploads; ++u) {
        CAPTURE(u);
        REQUIRE_MESSAGE(failures[u].empty(), failures[u]);
        REQUIRE(responses[u].result() == http::status::ok);
        const auto lines = ndjson_values(responses[u].body());
        REQUIRE(lines.size() == static_cast<std::size_t>(per_upload) + 1);
        int acknowledged = 0;
        for (int i = 0; i < per_upload; ++i) {
            const auto& line = lines[static_cast<std::size_t>(i)].as_object();
            CHECK(line.at("line").as_int64() == i + 1);
            CHECK(line.at("handle").as_string() == handle_of(u, i));
            if (line.at("status").as_string() != "created")
                continue;
            ++acknowledged;
            // Acknowledged means durable and resolvable.
            if (!snapshot.contains(*registry::parse_handle(handle_of(u, i), {})))
                FAIL_CHECK("acknowledged but missing: " << handle_of(u, i));
        }
        CHECK(acknowledged == per_upload);
        const auto& summary = lines.back().at("summary");
        CHECK(summary.at("created").as_int64() == per_upload);
        CHECK(summary.at("errors").as_int64() == 0);
    }
    CHECK(snapshot.count("88.118") == static_cast<std::uint64_t>(uploads * per_upload + 1));
}
