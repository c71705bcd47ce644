// The route families of the HTTPS API in process: the real NodeApi over a real registry in a
// temporary directory, requests dispatched through the router into a response sink — no TLS, no
// sockets. The real-binary integration tests cover the server around it.
#include "idnode/node/records.hpp"
#include "idnode/resolver/node_api.hpp"
#include "idnode/resolver/router.hpp"
#include "store_helpers.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <future>

using namespace idnode;
using namespace idnode::test;
using namespace idnode::resolver;
namespace json = boost::json;

namespace {

struct Answer {
    Response response;
    RequestContext context;
    json::value body() const { return json::parse(response.body()); }
};

void write(Registry& reg, WriteOp op) {
    std::promise<void> done;
    node::submit_one(reg, std::move(op), "test", [&](const OpResult& r) {
        CHECK_MESSAGE(r.ok(), describe(r));
        done.set_value();
    });
    done.get_future().get();
}

/// A node with 88.118 homed, 88.118.10 allocated to account "steel" (password "steel-password")
/// and 88.118.11 suspended, one record, and an admin "root".
struct Node {
    TempDir dir;
    std::unique_ptr<Registry> reg = Registry::open(options_in(dir));
    std::unique_ptr<NodeApi> api;
    Router router;

    Node() {
        for (auto [prefix, status] : {std::pair{"88.118.10", PrefixStatus::active},
                                      std::pair{"88.118.11", PrefixStatus::suspended}}) {
            PrefixRecord p{prefix, PrefixKind::enterprise, status,
                           EnterpriseInfo{"Steel Co", "91110000100000000A", "C3120", ""}, kT0};
            write(*reg, PutEntry{Table::prefixes, prefix, encode_prefix(p), PutMode::create});
        }
        for (auto [name, role] : {std::pair{"steel", Role::enterprise}, {"root", Role::admin}}) {
            Account a;
            a.username = name;
            a.role = role;
            if (role == Role::enterprise)
                a.prefixes = {"88.118.10", "88.118.11"};
            a.password_hash = hash_password(std::string(name) + "-password", 1000);
            write(*reg, PutEntry{Table::accounts, a.username, encode_account(a), PutMode::create});
        }
        write(*reg, put("88.118.10/C1",
                        {val(1, "URL", "https://example.cn/c1"), val(2, "COST", "42", "1100")}));
        NodeApiOptions options;
        options.homed_prefixes = {"88.118"};
        api = std::make_unique<NodeApi>(*reg, options);
        api->register_routes(router);
    }

    /// One request through the router; waits for answers sent from the writer thread.
    Answer call(http::verb method, std::string target, std::string body = {},
                std::string user = {}) {
        Request req{method, target, 11};
        if (!user.empty()) {
            // Basic base64(user:user-password), computed by a tiny local encoder: the test must
            // not share the code it checks.
            const std::string plain = user + ":" + user + "-password";
            static constexpr char digits[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            std::string out;
            for (std::size_t i = 0; i < plain.size(); i += 3) {
                std::uint32_t n = static_cast<unsigned char>(plain[i]) << 16;
                if (i + 1 < plain.size())
                    n |= static_cast<unsigned char>(plain[i + 1]) << 8;
                if (i + 2 < plain.size())
                    n |= static_cast<unsigned char>(plain[i + 2]);
                out += digits[(n >> 18) & 63];
                out += digits[(n >> 12) & 63];
                out += i + 1 < plain.size() ? digits[(n >> 6) & 63] : '=';
                out += i + 2 < plain.size() ? digits[n & 63] : '=';
            }
            req.set(http::field::authorization, "Basic " + out);
        }
        req.body() = std::move(body);
        req.prepare_payload();
        std::promise<Answer> done;
        RequestContext ctx;
        ctx.client_ip = "127.0.0.1";
        ctx.family = api_family(target);
        Responder responder(std::move(ctx), [&](Response&& r, RequestContext&& c) {
            done.set_value(Answer{std::move(r), std::move(c)});
        });
        router.dispatch(std::move(req), responder);
        return done.get_future().get();
    }
};

} // namespace

TEST_CASE("Handle REST family: resolve, write, refuse — each answer in its own codes") {
    Node n;
    auto got = n.call(http::verb::get, "/api/handles/88.118.10/C1");
    CHECK(got.response.result() == http::status::ok);
    CHECK(got.body().at("responseCode") == 1);
    CHECK(got.body().at("values").as_array().size() == 1); // the private COST is not shown
    CHECK(got.context.route == "/api/handles/{handle...}");

    got = n.call(http::verb::get, "/api/handles/88.118.10/C1", {}, "steel");
    CHECK(got.body().at("values").as_array().size() == 2);

    const std::string record = R"({"values":[{"index":1,"type":"URL","data":"https://x.cn"}]})";
    got = n.call(http::verb::put, "/api/handles/88.118.10/NEW", record);
    CHECK(got.response.result() == http::status::unauthorized);
    CHECK(got.body().at("responseCode") == 402);

    got = n.call(http::verb::put, "/api/handles/88.118.10/NEW", record, "steel");
    CHECK(got.response.result() == http::status::created);
    CHECK(got.body().at("responseCode") == 1);

    got = n.call(http::verb::put, "/api/handles/88.118.11/NEW", record, "steel");
    CHECK(got.response.result() == http::status::forbidden);
    CHECK(got.body().at("responseCode") == 400); // suspended

    got = n.call(http::verb::put, "/api/handles/88.118.12/NEW", record, "steel");
    CHECK(got.response.result() == http::status::forbidden);
    CHECK(got.body().at("responseCode") == 401); // not the caller's prefix

    got = n.call(http::verb::put, "/api/handles/88.118.12/NEW", record, "root");
    CHECK(got.response.result() == http::status::not_found);
    CHECK(got.body().at("responseCode") == 100); // homed, not allocated

    got = n.call(http::verb::get, "/api/handles/20.500/X");
    CHECK(got.response.result() == http::status::bad_request);
    CHECK(got.body().at("responseCode") == 301);

    got = n.call(http::verb::get, "/api/handles/88.118.10/NOPE");
    CHECK(got.response.result() == http::status::not_found);
    CHECK(got.body().at("responseCode") == 100);
}

TEST_CASE("native family: prefix allocation, errors in the native shape, stats counting") {
    Node n;
    const std::string enterprise =
        R"({"parent":"88.118","enterprise":{"name":"Pharma","credit_code":"91110000100000000B","industry":"C27"}})";
    auto got = n.call(http::verb::post, "/api/v1/prefixes", enterprise, "steel");
    CHECK(got.response.result() == http::status::forbidden);
    CHECK(got.body().at("error").at("code") == "forbidden");

    got = n.call(http::verb::post, "/api/v1/prefixes", enterprise, "root");
    CHECK(got.response.result() == http::status::created);
    CHECK(got.body().at("prefix") == "88.118.12");

    got = n.call(
        http::verb::post, "/api/v1/prefixes",
        R"({"parent":"88.118.10","enterprise":{"name":"P","credit_code":"91110000100000000B","industry":"C27"}})",
        "root");
    CHECK(got.response.result() == http::status::bad_request);
    CHECK(got.body().at("error").at("code") == "not_homed");

    // Every resolution counts, whichever family answered it: REST (found and not), batch,
    // SNMS detail, the page.
    (void)n.call(http::verb::get, "/api/handles/88.118.10/C1");
    (void)n.call(http::verb::get, "/api/handles/88.118.10/C1?pretty");
    (void)n.call(http::verb::get, "/api/handles/88.118.10/NOPE");
    (void)n.call(http::verb::post, "/api/v1/resolve", R"(["88.118.10/C1","88.118.10/X"])");
    (void)n.call(http::verb::get, "/identityv2/data/detail?handle=88.118.10/C1");
    got = n.call(http::verb::get, "/api/v1/stats", {}, "root");
    CHECK(got.response.result() == http::status::ok);
    CHECK(got.body().at("resolutions_today") == 6);
    got = n.call(http::verb::get, "/api/v1/stats", {}, "steel");
    CHECK(got.body().at("resolutions_today") == 4); // the ones that found steel's record
}

TEST_CASE("SNMS and page families answer in their own shapes") {
    Node n;
    auto got = n.call(http::verb::get, "/identityv2/data/detail?handle=88.118.10/C1");
    CHECK(got.response.result() == http::status::ok);
    CHECK(got.body().at("status") == 1);
    got = n.call(http::verb::post, "/identityv2/data",
                 R"({"handle":"88.118.10/S1","value":[{"index":1,"type":"URL","data":"x"}]})");
    CHECK(got.response.result() == http::status::ok);
    CHECK(got.body().at("status") == -1); // not logged in
    got = n.call(http::verb::post, "/identityv2/data",
                 R"({"handle":"88.118.11/S1","value":[{"index":1,"type":"URL","data":"x"}]})",
                 "steel");
    CHECK(got.body().at("status") == -3); // suspended: no permission

    got = n.call(http::verb::get, "/");
    CHECK(got.response.result() == http::status::ok);
    CHECK(got.response[http::field::content_type].starts_with("text/html"));

    got = n.call(http::verb::get, "/api/v1/nothing-here");
    CHECK(got.response.result() == http::status::not_found);
}
