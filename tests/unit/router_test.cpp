#include "idnode/resolver/router.hpp"

#include <doctest/doctest.h>

#include <optional>
#include <stdexcept>
#include <thread>

using namespace idnode::resolver;

namespace {

struct Outcome {
    Response response;
    RequestContext context;
};

/// Runs one request through `router` and returns what the responder received.
Outcome run(const Router& router, http::verb method, std::string target) {
    Request request{method, target, 11};
    std::optional<Outcome> out;
    Responder responder(RequestContext{}, [&](Response&& r, RequestContext&& c) {
        out = Outcome{std::move(r), std::move(c)};
    });
    router.dispatch(std::move(request), responder);
    REQUIRE(out.has_value());
    return std::move(*out);
}

Handler echo(std::string name) {
    return [name](const Request& req, RequestContext& ctx) {
        std::string body = name;
        for (const auto& [k, v] : ctx.params)
            body += " " + k + "=" + v;
        return json_response(req, http::status::ok, body);
    };
}

} // namespace

TEST_CASE("routes match literals and parameters, most specific first") {
    Router router;
    router.add(http::verb::get, "/api/prefixes", echo("prefixes"));
    router.add(http::verb::get, "/api/handles/{handle...}", echo("handle"));
    router.add(http::verb::put, "/api/handles/{handle...}", echo("put"));
    router.add(http::verb::get, "/api/v1/templates/{prefix}/{version}", echo("template"));
    router.add(http::verb::get, "/{handle...}", echo("proxy"));
    router.add(http::verb::get, "/", echo("root"));

    auto out = run(router, http::verb::get, "/api/prefixes?page=1");
    CHECK(out.response.result() == http::status::ok);
    CHECK(out.response.body() == "prefixes");
    CHECK(out.context.route == "/api/prefixes");

    out = run(router, http::verb::get, "/api/handles/88.118.8/a%2Fb/c?type=URL");
    CHECK(out.response.body() == "handle handle=88.118.8/a%2Fb/c");
    CHECK(out.context.route == "/api/handles/{handle...}");
    CHECK(out.context.param("handle") == "88.118.8/a%2Fb/c");
    CHECK(out.context.param("nope").empty());

    out = run(router, http::verb::put, "/api/handles/88.1/x");
    CHECK(out.response.body() == "put handle=88.1/x");

    out = run(router, http::verb::get, "/api/v1/templates/88.118/1.0");
    CHECK(out.response.body() == "template prefix=88.118 version=1.0");

    out = run(router, http::verb::get, "/88.118.8/sn-1");
    CHECK(out.response.body() == "proxy handle=88.118.8/sn-1");

    out = run(router, http::verb::get, "/");
    CHECK(out.response.body() == "root");
}

TEST_CASE("a route's declared body bound is found for its method and path only") {
    Router router;
    router.add(http::verb::post, "/batch", echo("batch"), RouteOptions{8 << 20});
    router.add(http::verb::put, "/batch", echo("put"));
    router.add(http::verb::post, "/items/{id}", echo("item"), RouteOptions{1000});
    router.add(http::verb::post, "/{rest...}", echo("any"));

    const auto limit = [&](http::verb method, std::string target) {
        return router.body_limit(Request{method, target, 11});
    };
    CHECK(limit(http::verb::post, "/batch?x=1").max_bytes == 8u << 20);
    CHECK(limit(http::verb::post, "/batch").route == "/batch");
    CHECK(limit(http::verb::put, "/batch").max_bytes == 0); // same path, other method
    CHECK(limit(http::verb::post, "/items/7").max_bytes == 1000);
    CHECK(limit(http::verb::post, "/items/7/x").max_bytes == 0); // only the catch-all matches
    CHECK(limit(http::verb::delete_, "/nowhere").max_bytes == 0);
    CHECK(router.as_body_limit_lookup()(Request{http::verb::post, "/batch", 11}).max_bytes ==
          8u << 20);
    // Declaring a bound changes nothing about dispatch.
    CHECK(run(router, http::verb::post, "/batch").response.body() == "batch");
}

TEST_CASE("unknown route is 404 with the Handle-style body; wrong method is 405 with Allow") {
    Router router;
    router.add(http::verb::get, "/api/prefixes", echo("prefixes"));
    router.add(http::verb::post, "/api/prefixes", echo("create"));

    auto out = run(router, http::verb::get, "/nope");
    CHECK(out.response.result() == http::status::not_found);
    CHECK(out.response.body() == R"({"responseCode":4,"message":"unknown route"})");
    CHECK(out.response[http::field::content_type] == "application/json");
    CHECK(out.context.route == "unmatched");

    out = run(router, http::verb::get, "/api/prefixes/");
    CHECK(out.response.result() == http::status::not_found);

    out = run(router, http::verb::delete_, "/api/prefixes");
    CHECK(out.response.result() == http::status::method_not_allowed);
    CHECK(out.response[http::field::allow] == "GET, POST, HEAD");
    CHECK(out.response.body().find("DELETE") != std::string::npos);

    out = run(router, http::verb::head, "/api/prefixes");
    CHECK(out.response.result() == http::status::ok);
    CHECK(out.response.body() == "prefixes"); // the server, not the router, drops HEAD bodies
}

TEST_CASE("unknown routes and wrong methods answer in the shape of the path's API family") {
    Router router;
    router.add(http::verb::post, "/api/v1/resolve", echo("resolve"));
    router.add(http::verb::post, "/identityv2/data", echo("snms"));

    auto out = run(router, http::verb::get, "/api/v1/nope");
    CHECK(out.response.result() == http::status::not_found);
    CHECK(out.response.body() == R"({"error":{"code":"unknown_route","message":"unknown route"}})");
    out = run(router, http::verb::get, "/identityv2/nope");
    CHECK(out.response.body() ==
          R"({"status":-2,"message":"接口不存在：unknown route","data":null})");
    CHECK(out.context.family == ApiFamily::snms);

    out = run(router, http::verb::get, "/api/v1/resolve");
    CHECK(out.response.result() == http::status::method_not_allowed);
    CHECK(out.response.body().find(R"({"error":{"code":"method_not_allowed")") == 0);
    out = run(router, http::verb::put, "/identityv2/data");
    CHECK(out.response.result() == http::status::method_not_allowed);
    CHECK(out.response.body().find(R"({"status":-2,"message":"请求方法不允许：)") == 0);
    // A target without a leading '/' ("*", absolute form) has no family: the native shape.
    out = run(router, http::verb::options, "*");
    CHECK(out.response.result() == http::status::not_found);
    CHECK(out.response.body().find(R"({"error":{"code":"unknown_route")") == 0);
}

TEST_CASE("api_family: which paths are Handle, SNMS or native") {
    CHECK(api_family("/api/handles/88.1/x?type=URL") == ApiFamily::handle);
    CHECK(api_family("/api/prefixes") == ApiFamily::handle);
    CHECK(api_family("/88.118.8/x") == ApiFamily::handle);
    CHECK(api_family("/") == ApiFamily::handle);
    CHECK(api_family("/api/v1x") == ApiFamily::handle); // a segment boundary, not a prefix
    CHECK(api_family("/identityx") == ApiFamily::handle);
    CHECK(api_family("/api/v1") == ApiFamily::native);
    CHECK(api_family("/api/v1/bulk?mode=create") == ApiFamily::native);
    CHECK(api_family("") == ApiFamily::native);
    CHECK(api_family("*") == ApiFamily::native);
    CHECK(api_family("/identity/token") == ApiFamily::snms);
    CHECK(api_family("/identityv2/data/detail?handle=x") == ApiFamily::snms);
    CHECK(api_family("/snms/api/v5/template") == ApiFamily::snms);
}

TEST_CASE("the refusal table: every refusal in every family, statuses and codes") {
    struct Row {
        Refusal refusal;
        http::status status;
        const char* code;
        int rc, snms;
    } rows[] = {
        {Refusal::bad_request, http::status::bad_request, "bad_request", 4, -2},
        {Refusal::unknown_route, http::status::not_found, "unknown_route", 4, -2},
        {Refusal::method_not_allowed, http::status::method_not_allowed, "method_not_allowed", 4,
         -2},
        {Refusal::body_too_large, http::status::payload_too_large, "body_too_large", 4, -2},
        {Refusal::header_too_large, http::status::request_header_fields_too_large,
         "header_too_large", 4, -2},
        {Refusal::rate_limited, http::status::too_many_requests, "rate_limited", 3, -2},
        {Refusal::unavailable, http::status::service_unavailable, "unavailable", 3, -4},
        {Refusal::internal, http::status::internal_server_error, "internal", 2, -4},
    };
    for (const auto& row : rows) {
        CAPTURE(row.code);
        const RefusalRow& r = refusal_row(row.refusal);
        CHECK(r.status == row.status);
        CHECK(std::string_view(r.code) == row.code);
        CHECK(r.handle_rc == row.rc);
        CHECK(r.snms_status == row.snms);
        CHECK(refusal_body(ApiFamily::handle, row.refusal, "m \"q\"") ==
              "{\"responseCode\":" + std::to_string(row.rc) + R"(,"message":"m \"q\""})");
        CHECK(refusal_body(ApiFamily::native, row.refusal, "m") ==
              std::string(R"({"error":{"code":")") + row.code + R"(","message":"m"}})");
        CHECK(refusal_body(ApiFamily::snms, row.refusal, "m") ==
              "{\"status\":" + std::to_string(row.snms) + ",\"message\":\"" + r.zh +
                  "：m\",\"data\":null}");
        Request req{http::verb::post, "/identity/token", 11};
        req.keep_alive(false);
        const Response res = refusal_response(req, row.refusal, "m");
        CHECK(res.result() == row.status);
        CHECK(res[http::field::content_type] == "application/json");
        CHECK_FALSE(res.keep_alive());
        CHECK(res.body().find("\"status\":" + std::to_string(row.snms)) == 1);
    }
}

TEST_CASE("async handlers answer through the responder, possibly from another thread") {
    Router router;
    router.add_async(http::verb::post, "/write", [](Request&& req, Responder responder) {
        std::thread([req = std::move(req), responder] {
            responder.context().account = "alice";
            responder.send(json_response(req, http::status::created, "{}"));
        }).join();
    });
    auto out = run(router, http::verb::post, "/write");
    CHECK(out.response.result() == http::status::created);
    CHECK(out.context.account == "alice");
    CHECK(out.context.route == "/write");
}

TEST_CASE("a responder that is dropped without an answer yields 500; a second send is ignored") {
    std::optional<Response> got;
    int calls = 0;
    {
        Responder r(RequestContext{}, [&](Response&& res, RequestContext&&) {
            ++calls;
            got = std::move(res);
        });
        Responder copy = r;
    }
    REQUIRE(got);
    CHECK(calls == 1);
    CHECK(got->result() == http::status::internal_server_error);

    calls = 0;
    Responder r(RequestContext{}, [&](Response&&, RequestContext&&) { ++calls; });
    r.send(Response{http::status::ok, 11});
    r.send(Response{http::status::ok, 11});
    CHECK(calls == 1);
}

TEST_CASE("malformed patterns and duplicates are programming errors") {
    Router router;
    CHECK_THROWS_AS(router.add(http::verb::get, "nope", echo("x")), std::invalid_argument);
    CHECK_THROWS_AS(router.add(http::verb::get, "/a//b", echo("x")), std::invalid_argument);
    CHECK_THROWS_AS(router.add(http::verb::get, "/{rest...}/b", echo("x")), std::invalid_argument);
    CHECK_THROWS_AS(router.add(http::verb::get, "/{}", echo("x")), std::invalid_argument);
    CHECK_THROWS_AS(router.add(http::verb::get, "/a{b}", echo("x")), std::invalid_argument);
    router.add(http::verb::get, "/a", echo("x"));
    CHECK_THROWS_AS(router.add(http::verb::get, "/a", echo("y")), std::invalid_argument);
}

TEST_CASE("URL helpers decode exactly once") {
    CHECK(percent_decode("88.118%2Fa%252F") == "88.118/a%2F");
    CHECK(percent_decode("a+b") == "a+b");
    CHECK_FALSE(percent_decode("%4"));
    CHECK_FALSE(percent_decode("%zz"));
    CHECK(target_path("/a/b?x=1") == "/a/b");
    CHECK(target_path("/a/b") == "/a/b");
    const auto q = parse_query("/x?type=URL&type=EMAIL&index=1&flag&q=a+b%21");
    REQUIRE(q);
    REQUIRE(q->size() == 5);
    CHECK((*q)[0] == std::pair<std::string, std::string>{"type", "URL"});
    CHECK((*q)[1] == std::pair<std::string, std::string>{"type", "EMAIL"});
    CHECK((*q)[3] == std::pair<std::string, std::string>{"flag", ""});
    CHECK((*q)[4] == std::pair<std::string, std::string>{"q", "a b!"});
    CHECK_FALSE(parse_query("/x?a=%G0"));
    CHECK(json_quote("a\"b\\c\n\x01") == "\"a\\\"b\\\\c\\n\\u0001\"");
    CHECK(error_body("too_large", "x") == R"({"error":{"code":"too_large","message":"x"}})");
}
