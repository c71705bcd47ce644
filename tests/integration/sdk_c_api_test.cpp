// Every function of the SDK's C ABI (idnode/sdk.h) against the real idnode binary: the status
// codes, the per-thread error details (message, HTTP status, Handle RC), NULL and malformed
// arguments, and the JSON text that comes back. This is the surface C#, Java (JNA) and Python
// (ctypes) MES code calls; the C example test covers resolve and put from a C program.
#include "harness.hpp"
#include "json_helpers.hpp"

#include "idnode/sdk.h"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

using namespace idnode::test;
namespace json = boost::json;

namespace {

/// A string the SDK returned (freed with idnode_free).
using SdkString = std::unique_ptr<char, decltype(&idnode_free)>;
SdkString adopt(char* p) {
    return SdkString(p, &idnode_free);
}

/// Opens a client on `options_json` and REQUIREs success.
std::unique_ptr<idnode_client, decltype(&idnode_client_close)> open_client(const std::string& o) {
    idnode_client* c = nullptr;
    const int st = idnode_client_open(o.c_str(), &c);
    REQUIRE_MESSAGE(st == IDNODE_OK, idnode_last_error());
    REQUIRE(c != nullptr);
    return {c, &idnode_client_close};
}

std::string options_json(const NodeProcess& node, const std::string& api_key) {
    json::object o{{"url", "https://127.0.0.1:" + std::to_string(node.https_port())},
                   {"ca_file", node.pki().ca_cert.string()},
                   {"request_timeout_ms", 5000}};
    if (!api_key.empty())
        o["api_key"] = api_key;
    return json::serialize(o);
}

json::value resolved(idnode_client* c, const char* handle, const char* filter = nullptr) {
    char* out = nullptr;
    const int st = idnode_resolve(c, handle, filter, &out);
    auto owned = adopt(out);
    REQUIRE_MESSAGE(st == IDNODE_OK, idnode_last_error());
    return json::parse(owned.get());
}

std::vector<std::int64_t> indices_of(const json::value& record) {
    std::vector<std::int64_t> out;
    for (const auto& v : record.at("values").as_array())
        out.push_back(v.at("index").as_int64());
    return out;
}

const char* kRecord = R"({"handle":"88.118/C-1","values":[)"
                      R"({"index":1,"type":"URL","data":"https://e.cn/c1"},)"
                      R"({"index":2000,"type":"batch","data":"B1"}]})";

} // namespace

TEST_CASE("the C ABI: every call against a real node, with its errors") {
    NodeProcess node{"sdk-c-api"};
    const auto init = run_command({IDNODE_IDCTL_BINARY, "init", "--data-dir",
                                   (node.dir() / "db").string(), "--node-prefix", "88.118"});
    REQUIRE_MESSAGE(init.exit_code == 0, init.err);
    const std::string admin_key(json::parse(init.out).at("admin_key").as_string());
    node.start();
    auto admin = open_client(options_json(node, admin_key));
    auto anon = open_client(options_json(node, ""));

    SUBCASE("open refuses bad options before connecting") {
        idnode_client* c = reinterpret_cast<idnode_client*>(&node); // must be overwritten
        CHECK(idnode_client_open(R"({"url":5})", &c) == IDNODE_E_INVALID_ARGUMENT);
        CHECK(c == nullptr);
        CHECK(std::string(idnode_last_error()).find("\"url\"") != std::string::npos);
        CHECK(idnode_client_open(R"({"colour":"blue"})", &c) == IDNODE_E_INVALID_ARGUMENT);
        CHECK(std::string(idnode_last_error()).find("unknown key \"colour\"") != std::string::npos);
        CHECK(idnode_client_open("{oops", &c) == IDNODE_E_INVALID_ARGUMENT);
        CHECK(idnode_client_open(R"({"max_connections":-1})", &c) == IDNODE_E_INVALID_ARGUMENT);
        CHECK(idnode_client_open("{}", nullptr) == IDNODE_E_INVALID_ARGUMENT);
        CHECK(std::string(idnode_strerror(IDNODE_E_CONFLICT)) == "already exists");
        CHECK(std::string(idnode_strerror(999)) == "unknown status");
        CHECK(std::string(idnode_strerror(-1)) == "unknown status");
    }

    SUBCASE("put, resolve, values, listing, batch resolve, delete") {
        int created = -1;
        REQUIRE_MESSAGE(idnode_put(admin.get(), "create", kRecord, &created) == IDNODE_OK,
                        idnode_last_error());
        CHECK(created == 1);
        CHECK(std::string(idnode_last_error()).empty()); // a successful call clears the details

        // create over a different record: conflict, with the server's answer attached
        const char* other = R"({"handle":"88.118/C-1","values":[{"index":1,"type":"URL",)"
                            R"("data":"https://e.cn/other"}]})";
        CHECK(idnode_put(admin.get(), "create", other, &created) == IDNODE_E_CONFLICT);
        CHECK(idnode_last_http_status() == 409);
        CHECK(idnode_last_response_code() == 101);
        CHECK(idnode_put(admin.get(), "upsert", kRecord, &created) == IDNODE_OK);
        CHECK(created == 0);
        CHECK(idnode_put(admin.get(), "merge", kRecord, nullptr) == IDNODE_E_INVALID_ARGUMENT);
        CHECK(idnode_put(admin.get(), "create", "{oops", nullptr) == IDNODE_E_INVALID_ARGUMENT);
        // an anonymous writer is refused by the server
        const int anon_put = idnode_put(anon.get(), "upsert", kRecord, nullptr);
        CHECK((anon_put == IDNODE_E_AUTH || anon_put == IDNODE_E_HTTP));
        CHECK(idnode_last_http_status() >= 400);

        // resolve, whole and filtered
        auto rec = resolved(anon.get(), "88.118/c-1");       // handles resolve case-insensitively
        CHECK(rec.at("handle").as_string() == "88.118/c-1"); // as asked (the SDK's contract)
        CHECK(rec.at("responseCode").as_int64() == 1);
        CHECK(indices_of(rec) == std::vector<std::int64_t>{1, 2000});
        CHECK(indices_of(resolved(anon.get(), "88.118/C-1", R"({"indices":[2000]})")) ==
              std::vector<std::int64_t>{2000});
        CHECK(indices_of(resolved(anon.get(), "88.118/C-1", R"({"types":["URL"]})")) ==
              std::vector<std::int64_t>{1});
        char* out = reinterpret_cast<char*>(&node);
        CHECK(idnode_resolve(anon.get(), "88.118/C-1", R"({"indices":[0]})", &out) ==
              IDNODE_E_INVALID_ARGUMENT);
        CHECK(out == nullptr);
        CHECK(idnode_resolve(anon.get(), "88.118/C-1", "[1]", &out) == IDNODE_E_INVALID_ARGUMENT);

        // set_values adds and replaces by index, keeping the rest
        REQUIRE_MESSAGE(idnode_set_values(admin.get(), "88.118/C-1",
                                          R"([{"index":2001,"type":"heat_no","data":"H-9"},)"
                                          R"({"index":2000,"type":"batch","data":"B2"}])") ==
                            IDNODE_OK,
                        idnode_last_error());
        rec = resolved(anon.get(), "88.118/C-1");
        CHECK(indices_of(rec) == std::vector<std::int64_t>{1, 2000, 2001});
        CHECK(rec.at("values").as_array()[1].at("data").at("value").as_string() == "B2");
        // on a missing handle the node creates the record with those values (Handle REST PUT)
        REQUIRE(idnode_set_values(admin.get(), "88.118/D-1",
                                  R"([{"index":2,"type":"EMAIL","data":"qa@e.cn"}])") == IDNODE_OK);
        CHECK(indices_of(resolved(anon.get(), "88.118/D-1")) == std::vector<std::int64_t>{2});
        REQUIRE(idnode_delete(admin.get(), "88.118/D-1") == IDNODE_OK);
        CHECK(idnode_set_values(anon.get(), "88.118/C-1",
                                R"([{"index":2,"type":"x","data":"y"}])") != IDNODE_OK);
        CHECK(idnode_last_http_status() >= 400);
        CHECK(idnode_set_values(admin.get(), "88.118/C-1", "[]") == IDNODE_E_INVALID_ARGUMENT);
        CHECK(idnode_set_values(admin.get(), "88.118/C-1", R"([{"index":"x"}])") ==
              IDNODE_E_INVALID_ARGUMENT);
        CHECK(idnode_last_http_status() == 0); // refused before anything was sent

        // remove_values
        REQUIRE_MESSAGE(idnode_remove_values(admin.get(), "88.118/C-1", "[2001, 7]") == IDNODE_OK,
                        idnode_last_error());
        CHECK(indices_of(resolved(anon.get(), "88.118/C-1")) == std::vector<std::int64_t>{1, 2000});
        CHECK(idnode_remove_values(admin.get(), "88.118/C-1", "[0]") == IDNODE_E_INVALID_ARGUMENT);
        CHECK(idnode_remove_values(admin.get(), "88.118/C-1", "[]") == IDNODE_E_INVALID_ARGUMENT);
        CHECK(idnode_remove_values(admin.get(), "88.118/none", "[1]") == IDNODE_E_NOT_FOUND);

        // listing: five records walked two at a time with the cursor, each once, in key order
        for (const char* h : {"88.118/C-2", "88.118/C-3", "88.118/C-4", "88.118/C-5"}) {
            const std::string r = std::string(R"({"handle":")") + h +
                                  R"(","values":[{"index":1,"type":"URL","data":"https://e.cn"}]})";
            REQUIRE(idnode_put(admin.get(), "create", r.c_str(), nullptr) == IDNODE_OK);
        }
        std::vector<std::string> walked;
        std::string cursor;
        int pages = 0;
        for (; pages < 10; ++pages) {
            char* page = nullptr;
            const int st = idnode_list_handles(admin.get(), "88.118",
                                               cursor.empty() ? nullptr : cursor.c_str(), 2, &page);
            auto owned = adopt(page);
            REQUIRE_MESSAGE(st == IDNODE_OK, idnode_last_error());
            const std::size_t before = walked.size();
            cursor = take_handles_page(owned.get(), walked);
            CHECK(walked.size() - before <= 2);
            if (cursor.empty())
                break;
        }
        CHECK(walked == std::vector<std::string>{"88.118/C-1", "88.118/C-2", "88.118/C-3",
                                                 "88.118/C-4", "88.118/C-5"});
        CHECK(pages == 2); // 2 + 2 + 1
        char* page = nullptr;
        CHECK(idnode_list_handles(admin.get(), "88.118", "", 1001, &page) ==
              IDNODE_E_INVALID_ARGUMENT);
        CHECK(page == nullptr);
        CHECK(idnode_list_handles(admin.get(), "88.118", nullptr, 0, &page) == IDNODE_OK);
        CHECK(json::parse(adopt(page).get()).at("handles").as_array().size() == 5);
        page = nullptr;
        CHECK(idnode_list_handles(anon.get(), "88.118", nullptr, 10, &page) != IDNODE_OK);
        CHECK(page == nullptr);
        CHECK(idnode_last_http_status() >= 400);

        // batch resolve: found and missing, in the order asked
        char* many = nullptr;
        REQUIRE_MESSAGE(idnode_resolve_many(anon.get(), R"(["88.118/C-2","88.118/none"])", &many) ==
                            IDNODE_OK,
                        idnode_last_error());
        const auto records = json::parse(adopt(many).get());
        REQUIRE(records.as_array().size() == 2);
        CHECK(records.at(0).at("handle").as_string() == "88.118/C-2");
        CHECK(records.at(0).at("responseCode").as_int64() == 1);
        CHECK(records.at(1).at("responseCode").as_int64() == 100);
        many = nullptr;
        CHECK(idnode_resolve_many(anon.get(), R"(["88.118/C-2", 5])", &many) ==
              IDNODE_E_INVALID_ARGUMENT);
        CHECK(idnode_resolve_many(anon.get(), R"({"h":1})", &many) == IDNODE_E_INVALID_ARGUMENT);
        CHECK(many == nullptr);

        // delete; then resolve and delete report not found with HTTP 404 and RC 100
        REQUIRE(idnode_delete(admin.get(), "88.118/C-1") == IDNODE_OK);
        out = nullptr;
        CHECK(idnode_resolve(anon.get(), "88.118/C-1", nullptr, &out) == IDNODE_E_NOT_FOUND);
        CHECK(out == nullptr);
        CHECK(idnode_last_http_status() == 404);
        CHECK(idnode_last_response_code() == 100);
        CHECK(std::string(idnode_last_error()).size() > 0);
        CHECK(idnode_delete(admin.get(), "88.118/C-1") == IDNODE_E_NOT_FOUND);
    }

    SUBCASE("bulk: per-record rejections in the summary") {
        const std::string ndjson =
            R"({"handle":"88.118/B-1","values":[{"index":1,"type":"URL","data":"https://e.cn/1"}]})"
            "\n"
            R"({"handle":"88.118/B-2","values":[{"index":"one"}]})"
            "\n"
            R"({"handle":"88.118/B-3","values":[{"index":1,"type":"URL","data":"https://e.cn/3"}]})"
            "\n";
        char* summary = nullptr;
        REQUIRE_MESSAGE(idnode_bulk(admin.get(), R"({"mode":"create","streams":2})", ndjson.c_str(),
                                    &summary) == IDNODE_OK,
                        idnode_last_error());
        const auto s = json::parse(adopt(summary).get());
        CHECK(s.at("records").as_int64() == 3);
        CHECK(s.at("created").as_int64() == 2);
        CHECK(s.at("errors").as_int64() == 1);
        const auto& rejected = s.at("rejected").as_array();
        REQUIRE(rejected.size() == 1);
        CHECK(rejected[0].at("index").as_int64() == 1);
        CHECK(rejected[0].at("message").as_string().size() > 0);
        CHECK(indices_of(resolved(anon.get(), "88.118/B-3")) == std::vector<std::int64_t>{1});
        summary = nullptr;
        CHECK(idnode_bulk(admin.get(), R"({"mode":"merge"})", ndjson.c_str(), &summary) ==
              IDNODE_E_INVALID_ARGUMENT);
        CHECK(idnode_bulk(admin.get(), R"({"streams":"two"})", ndjson.c_str(), &summary) ==
              IDNODE_E_INVALID_ARGUMENT);
        CHECK(summary == nullptr);
    }

    SUBCASE("request: any route with the client's credentials") {
        int status = 0;
        char* body = nullptr;
        REQUIRE_MESSAGE(idnode_request(admin.get(), "GET", "/api/v1/stats", nullptr, &status,
                                       &body) == IDNODE_OK,
                        idnode_last_error());
        CHECK(status == 200);
        CHECK(json::parse(adopt(body).get()).is_object());
        body = nullptr;
        // an error status is an answer at this level, not a failure
        REQUIRE(idnode_request(anon.get(), "GET", "/api/handles/88.118/none", nullptr, &status,
                               &body) == IDNODE_OK);
        CHECK(status == 404);
        CHECK(json::parse(adopt(body).get()).at("responseCode").as_int64() == 100);
    }

    SUBCASE("NULL arguments are refused, never dereferenced") {
        char* out = nullptr;
        int status = 0;
        CHECK(idnode_resolve(nullptr, "88.118/x", nullptr, &out) == IDNODE_E_INVALID_ARGUMENT);
        CHECK(idnode_resolve(admin.get(), nullptr, nullptr, &out) == IDNODE_E_INVALID_ARGUMENT);
        CHECK(idnode_resolve(admin.get(), "88.118/x", nullptr, nullptr) ==
              IDNODE_E_INVALID_ARGUMENT);
        CHECK(idnode_resolve_many(admin.get(), nullptr, &out) == IDNODE_E_INVALID_ARGUMENT);
        CHECK(idnode_put(admin.get(), nullptr, kRecord, nullptr) == IDNODE_E_INVALID_ARGUMENT);
        CHECK(idnode_put(admin.get(), "create", nullptr, nullptr) == IDNODE_E_INVALID_ARGUMENT);
        CHECK(idnode_delete(admin.get(), nullptr) == IDNODE_E_INVALID_ARGUMENT);
        CHECK(idnode_set_values(admin.get(), "88.118/x", nullptr) == IDNODE_E_INVALID_ARGUMENT);
        CHECK(idnode_remove_values(nullptr, "88.118/x", "[1]") == IDNODE_E_INVALID_ARGUMENT);
        CHECK(idnode_list_handles(admin.get(), nullptr, nullptr, 1, &out) ==
              IDNODE_E_INVALID_ARGUMENT);
        CHECK(idnode_list_handles(admin.get(), "88.118", nullptr, 1, nullptr) ==
              IDNODE_E_INVALID_ARGUMENT);
        CHECK(idnode_request(admin.get(), "GET", nullptr, nullptr, &status, &out) ==
              IDNODE_E_INVALID_ARGUMENT);
        CHECK(idnode_bulk(admin.get(), nullptr, nullptr, &out) == IDNODE_E_INVALID_ARGUMENT);
        CHECK(std::string(idnode_last_error()) == "invalid argument: NULL argument");
        idnode_client_close(nullptr); // allowed, like free(NULL)
        idnode_free(nullptr);
    }
    CHECK(node.stop() == 0);
}
