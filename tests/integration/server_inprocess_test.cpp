// The Server library in-process, with routes registered from outside the way the API code will
// do it: async handlers that finish out of order must still be answered in request order, and
// broken handlers must not stall a connection.
#include "harness.hpp"

#include "idnode/resolver/config.hpp"
#include "idnode/resolver/logging.hpp"
#include "idnode/resolver/metrics.hpp"
#include "idnode/resolver/router.hpp"
#include "idnode/resolver/server.hpp"

#include <doctest/doctest.h>

#include <mutex>
#include <thread>

using namespace idnode::test;
namespace resolver = idnode::resolver;

namespace {

/// Runs a Server with `router` on a background thread for the duration of a test.
class InProcessServer {
public:
    explicit InProcessServer(resolver::Router& router)
        : dir_("inprocess"), pki_(TestPki::create(dir_.path())) {
        config_.https.listen = {"127.0.0.1", 0};
        config_.ops.listen = {"127.0.0.1", 0};
        config_.handle.listen = {"127.0.0.1", 0};
        config_.https.cert = pki_.server_cert;
        config_.https.key = pki_.server_key;
        config_.https.threads = 3;
        config_.log.level = "warn";
        logging_ = std::make_unique<resolver::Logging>(config_.log);
        server_ =
            std::make_unique<resolver::Server>(config_, router.as_dispatch(), metrics_, *logging_);
        thread_ = std::thread([this] { server_->run(); });
    }
    ~InProcessServer() {
        server_->request_stop();
        thread_.join();
    }
    std::uint16_t port() const { return server_->https_endpoint().port; }
    TlsOptions tls() const { return trust(pki_.ca_cert); }

private:
    TempDir dir_;
    TestPki pki_;
    resolver::NodeConfig config_;
    resolver::MetricsRegistry metrics_;
    std::unique_ptr<resolver::Logging> logging_;
    std::unique_ptr<resolver::Server> server_;
    std::thread thread_;
};

/// Background completions for async handlers; joins them all on destruction.
class Workers {
public:
    template <class Fn> void run(Fn fn) {
        std::lock_guard lock(mutex_);
        threads_.emplace_back(std::move(fn));
    }
    ~Workers() {
        std::lock_guard lock(mutex_);
        for (auto& t : threads_)
            t.join();
    }

private:
    std::mutex mutex_;
    std::vector<std::thread> threads_;
};

} // namespace

TEST_CASE("async responses that complete out of order are written in request order") {
    Workers workers;
    resolver::Router router;
    router.add(http::verb::get, "/echo/{n}",
               [](const resolver::Request& req, resolver::RequestContext& ctx) {
                   return resolver::json_response(req, http::status::ok,
                                                  std::string(ctx.param("n")));
               });
    router.add_async(http::verb::get, "/slow/{ms}/{n}",
                     [&workers](resolver::Request&& req, resolver::Responder responder) {
                         const int ms = std::stoi(std::string(responder.context().param("ms")));
                         const std::string n(responder.context().param("n"));
                         workers.run([req = std::move(req), responder, ms, n] {
                             std::this_thread::sleep_for(std::chrono::milliseconds(ms));
                             responder.send(resolver::json_response(req, http::status::ok, n));
                         });
                     });
    InProcessServer server(router);
    HttpsClient client(server.port(), server.tls());
    client.connect();

    const int count = 40;
    std::string batch;
    for (int i = 0; i < count; ++i) {
        // Earlier requests take longer, so completions arrive roughly in reverse order.
        const std::string target =
            i % 2 == 0 ? "/slow/" + std::to_string((count - i) * 3) + "/" + std::to_string(i)
                       : "/echo/" + std::to_string(i);
        batch += "GET " + target + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
    }
    client.write_raw(batch);
    for (int i = 0; i < count; ++i) {
        const Response r = client.read_response();
        REQUIRE(r.result() == http::status::ok);
        REQUIRE(r.body() == std::to_string(i));
    }
}

TEST_CASE("a throwing handler yields 500, a silent one too, and the connection goes on") {
    resolver::Router router;
    router.add(http::verb::get, "/throw",
               [](const resolver::Request&, resolver::RequestContext&) -> resolver::Response {
                   throw std::runtime_error("boom");
               });
    router.add_async(http::verb::get, "/forget", [](resolver::Request&&, resolver::Responder) {});
    router.add_async(http::verb::get, "/api/v1/forget",
                     [](resolver::Request&&, resolver::Responder) {});
    for (const char* path : {"/api/v1/throw", "/identityv2/throw"})
        router.add(http::verb::get, path,
                   [](const resolver::Request&, resolver::RequestContext&) -> resolver::Response {
                       throw std::runtime_error("boom");
                   });
    router.add(http::verb::get, "/ok", [](const resolver::Request& req, resolver::RequestContext&) {
        return resolver::json_response(req, http::status::ok, "{}");
    });
    InProcessServer server(router);
    HttpsClient client(server.port(), server.tls());
    client.connect();
    // The 500 body takes the shape of the path's API family (http.hpp, docs/api.md#error-bodies).
    const Response thrown = client.request(http::verb::get, "/throw");
    CHECK(thrown.result() == http::status::internal_server_error);
    CHECK(thrown.body() == R"({"responseCode":2,"message":"internal error"})");
    const Response thrown_native = client.request(http::verb::get, "/api/v1/throw");
    CHECK(thrown_native.result() == http::status::internal_server_error);
    CHECK(thrown_native.body() == R"({"error":{"code":"internal","message":"internal error"}})");
    const Response thrown_snms = client.request(http::verb::get, "/identityv2/throw");
    CHECK(thrown_snms.result() == http::status::internal_server_error);
    CHECK(thrown_snms.body() ==
          R"({"status":-4,"message":"内部错误：internal error","data":null})");
    const Response forgot_native = client.request(http::verb::get, "/api/v1/forget");
    CHECK(forgot_native.result() == http::status::internal_server_error);
    CHECK(forgot_native.body().find(R"({"error":{"code":"internal")") == 0);
    CHECK(client.request(http::verb::get, "/forget").result() ==
          http::status::internal_server_error);
    CHECK(client.request(http::verb::get, "/ok").result() == http::status::ok);
    CHECK(client.request(http::verb::post, "/ok").result() == http::status::method_not_allowed);
}
