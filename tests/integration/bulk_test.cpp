// The streaming bulk endpoint and batch resolution (docs/api.md#bulk, #batch-resolve) against the
// real idnode binary: per-line outcomes, idempotent re-sends, Idempotency-Key, disconnects
// mid-stream, concurrent uploads, flat server memory on a large body, batch resolve and stats.
#include "harness.hpp"
#include "json_helpers.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

using namespace idnode::test;
namespace json = boost::json;
using V = http::verb;

namespace {

fs::path idctl_binary() {
    return IDNODE_IDCTL_BINARY;
}

std::string record(const std::string& handle, const std::string& url) {
    return R"({"handle":")" + handle + R"(","values":[{"index":1,"type":"URL","data":")" + url +
           R"("}]})" + "\n";
}

std::uint64_t summary(const std::vector<json::value>& lines, const char* field) {
    REQUIRE(!lines.empty());
    return static_cast<std::uint64_t>(lines.back().at("summary").at(field).as_int64());
}

/// A field of /proc/PID/status in KiB ("VmRSS", "RssAnon").
long status_kib(pid_t pid, const std::string& field) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(field + ":", 0) == 0)
            return std::stol(line.substr(field.size() + 1));
    return -1;
}

/// Node prefix 88.118; enterprise prefixes 88.118.8 (account "steel") and 88.118.9 ("pharma");
/// a reader granted 88.118.8.
struct BulkNode {
    NodeProcess node{"bulk"};
    std::string admin, steel, pharma, reader;

    /// `config`: dotted keys and raw TOML values (NodeProcess::set).
    explicit BulkNode(std::vector<std::pair<std::string, std::string>> config = {}) {
        const auto init = run_command({idctl_binary().string(), "init", "--data-dir",
                                       (node.dir() / "db").string(), "--node-prefix", "88.118"});
        REQUIRE_MESSAGE(init.exit_code == 0, init.err);
        admin = "Bearer " + std::string(parse_json(init.out).at("admin_key").as_string());
        for (auto& [key, value] : config)
            node.set(key, std::move(value));
        node.start();
        auto c = client();
        for (const char* prefix : {"88.118.8", "88.118.9"}) {
            auto r = c->request(
                V::post, "/api/v1/prefixes",
                std::string(R"({"prefix":")") + prefix +
                    R"(","enterprise":{"name":"E","credit_code":"91310000631696382C","industry":"C3120","contact":"ops@example.cn"}})",
                {{"Authorization", admin}});
            REQUIRE_MESSAGE(r.result() == http::status::created, r.body());
        }
        auto account = [&](const std::string& body) {
            auto r = c->request(V::post, "/api/v1/accounts", body, {{"Authorization", admin}});
            REQUIRE_MESSAGE(r.result() == http::status::created, r.body());
        };
        account(R"({"username":"steel","role":"enterprise","prefixes":["88.118.8"]})");
        account(R"({"username":"pharma","role":"enterprise","prefixes":["88.118.9"]})");
        account(R"({"username":"auditor","role":"reader","prefixes":["88.118.8"]})");
        steel = "Bearer " + key_for(*c, "steel");
        pharma = "Bearer " + key_for(*c, "pharma");
        reader = "Bearer " + key_for(*c, "auditor");
    }

    std::string key_for(HttpsClient& c, const std::string& user) {
        auto r = c.request(V::post, "/api/v1/accounts/" + user + "/keys", {},
                           {{"Authorization", admin}});
        REQUIRE_MESSAGE(r.result() == http::status::created, r.body());
        return std::string(parse_json(r.body()).at("key").as_string());
    }

    std::unique_ptr<HttpsClient> client(Millis timeout = 10s) {
        auto c =
            std::make_unique<HttpsClient>(node.https_port(), trust(node.pki().ca_cert), timeout);
        c->connect();
        return c;
    }

    Response bulk(HttpsClient& c, const std::string& query, std::string body,
                  const std::string& auth,
                  std::vector<std::pair<std::string, std::string>> headers = {}) {
        if (!auth.empty())
            headers.emplace_back("Authorization", auth);
        return c.request(V::post, "/api/v1/bulk" + query, std::move(body), headers);
    }

    /// Batch-resolves `handles` and returns the responseCode of each.
    std::vector<int> codes(HttpsClient& c, const std::vector<std::string>& handles) {
        json::array a;
        for (const auto& h : handles)
            a.emplace_back(h);
        auto r = c.request(V::post, "/api/v1/resolve", json::serialize(a));
        REQUIRE_MESSAGE(r.result() == http::status::ok, r.body());
        std::vector<int> out;
        const json::value results = parse_json(r.body());
        for (const auto& e : results.as_array())
            out.push_back(static_cast<int>(e.at("responseCode").as_int64()));
        return out;
    }
};

} // namespace

TEST_CASE("bulk: mixed valid, invalid and malformed lines fail alone; re-send is idempotent") {
    BulkNode n;
    auto c = n.client();
    std::string body;
    body += record("88.118.8/B-1", "https://e.cn/1"); // 1 created
    body += "{not json\n";                            // 2 malformed
    body += record("88.118.8/B-2", "https://e.cn/2"); // 3 created
    body += R"({"handle":"88.118.8/B-3","values":[{"index":0}]})"
            "\n";                                     // 4 invalid value
    body += "\n";                                     // 5 blank: no result
    body += record("88.118.9/P-1", "https://e.cn/p"); // 6 not steel's prefix
    body += record("77.1/X", "https://e.cn/x");       // 7 not homed
    body += R"({"values":[]})"
            "\n";                                     // 8 no handle
    body += record("88.118.8/B-4", "https://e.cn/4"); // 9 created (no newline)
    body.pop_back();

    auto r = n.bulk(*c, "?mode=create", body, n.steel);
    REQUIRE_MESSAGE(r.result() == http::status::ok, r.body());
    CHECK(r[http::field::content_type] == "application/x-ndjson");
    CHECK(r.chunked());
    auto lines = ndjson_values(r.body());
    REQUIRE(lines.size() == 9); // 8 records + summary
    std::vector<std::pair<std::int64_t, std::string>> got;
    for (std::size_t i = 0; i + 1 < lines.size(); ++i)
        got.emplace_back(lines[i].at("line").as_int64(),
                         std::string(lines[i].at("status").as_string()));
    CHECK(got == std::vector<std::pair<std::int64_t, std::string>>{{1, "created"},
                                                                   {2, "error"},
                                                                   {3, "created"},
                                                                   {4, "error"},
                                                                   {6, "error"},
                                                                   {7, "error"},
                                                                   {8, "error"},
                                                                   {9, "created"}});
    CHECK(lines[1].at("error").at("code") == "invalid_json");
    CHECK(lines[3].at("error").at("code") == "invalid_value");
    CHECK(lines[4].at("error").at("code") == "forbidden");
    CHECK(lines[5].at("error").at("code") == "not_homed");
    CHECK(lines[6].at("error").at("code") == "invalid_record");
    CHECK(lines[0].at("handle") == "88.118.8/B-1");
    CHECK(summary(lines, "lines") == 8);
    CHECK(summary(lines, "created") == 3);
    CHECK(summary(lines, "errors") == 5);
    CHECK(n.codes(*c, {"88.118.8/B-1", "88.118.8/B-2", "88.118.8/B-3", "88.118.8/B-4",
                       "88.118.9/P-1"}) == std::vector<int>{1, 1, 100, 1, 100});

    // The same file again: identical records are `unchanged`, nothing is created twice.
    auto again = ndjson_values(n.bulk(*c, "?mode=create&results=errors", body, n.steel).body());
    CHECK(summary(again, "unchanged") == 3);
    CHECK(summary(again, "created") == 0);
    CHECK(summary(again, "errors") == 5);
    CHECK(again.size() == 6); // only the error lines, then the summary

    // create with different content -> exists; upsert/replace replace it.
    auto changed = ndjson_values(
        n.bulk(*c, "?mode=create", record("88.118.8/B-1", "https://e.cn/new"), n.steel).body());
    CHECK(changed[0].at("status") == "error");
    CHECK(changed[0].at("error").at("code") == "exists");
    auto replaced = ndjson_values(n.bulk(*c, "?mode=replace",
                                         record("88.118.8/B-1", "https://e.cn/new") +
                                             record("88.118.8/B-5", "https://e.cn/5"),
                                         n.steel)
                                      .body());
    CHECK(replaced[0].at("status") == "replaced");
    CHECK(replaced[1].at("status") == "created");
    auto get = c->request(V::get, "/api/handles/88.118.8/B-1");
    CHECK(get.body().find("https://e.cn/new") != std::string::npos);
}

TEST_CASE("bulk: refusals before the body, oversize lines, wrong auth") {
    BulkNode n;
    auto c = n.client();
    const std::string one = record("88.118.8/A-1", "https://e.cn/a");

    auto anonymous = n.bulk(*c, "", one, "");
    CHECK(anonymous.result() == http::status::unauthorized);
    CHECK(parse_json(anonymous.body()).at("error").at("code") == "unauthorized");
    c = n.client(); // the refusal closed the connection (its body was not read)

    auto bad_key = n.bulk(*c, "", one, "Bearer idn_nope");
    CHECK(bad_key.result() == http::status::unauthorized);
    c = n.client();

    auto reader = n.bulk(*c, "", one, n.reader);
    CHECK(reader.result() == http::status::forbidden);
    c = n.client();

    auto bad_mode = n.bulk(*c, "?mode=merge", one, n.steel);
    CHECK(bad_mode.result() == http::status::bad_request);
    CHECK(parse_json(bad_mode.body()).at("error").at("code") == "invalid_query");
    c = n.client();
    auto bad_results = n.bulk(*c, "?results=some", one, n.steel);
    CHECK(bad_results.result() == http::status::bad_request);
    c = n.client();

    // A line longer than limits.max_body_bytes (64 KiB) fails alone; its neighbours pass.
    std::string big = R"({"handle":"88.118.8/BIG","values":[{"index":1,"type":"X","data":")" +
                      std::string(70 * 1024, 'x') + "\"}]}\n";
    auto r = n.bulk(*c, "", one + big + record("88.118.8/A-2", "https://e.cn/b"), n.steel);
    REQUIRE(r.result() == http::status::ok);
    auto lines = ndjson_values(r.body());
    REQUIRE(lines.size() == 4);
    CHECK(lines[0].at("status") == "created");
    CHECK(lines[1].at("line") == 2);
    CHECK(lines[1].at("error").at("code") == "too_large");
    CHECK(lines[2].at("status") == "created");
    CHECK(lines[2].at("line") == 3);

    // The connection stays usable after a completed bulk request (keep-alive).
    auto after = c->request(V::get, "/api/handles/88.118.8/A-2");
    CHECK(after.result() == http::status::ok);
}

TEST_CASE("bulk: Idempotency-Key returns the first outcome") {
    BulkNode n;
    auto c = n.client();
    const std::string body = record("88.118.8/K-1", "https://e.cn/1") + "[1]\n";
    auto first = n.bulk(*c, "", body, n.steel, {{"Idempotency-Key", "run-42"}});
    auto first_lines = ndjson_values(first.body());
    CHECK(summary(first_lines, "created") == 1);
    CHECK(summary(first_lines, "errors") == 1);
    c = n.client();
    // A different body under the same key: the first outcome (error lines + summary) returns.
    auto second = n.bulk(*c, "", record("88.118.8/K-2", "https://e.cn/2"), n.steel,
                         {{"Idempotency-Key", "run-42"}});
    CHECK(second.result() == http::status::ok);
    CHECK(second["Idempotent-Replayed"] == "true");
    auto second_lines = ndjson_values(second.body());
    REQUIRE(second_lines.size() == 2);
    CHECK(second_lines[0].at("line") == 2);
    CHECK(summary(second_lines, "created") == 1);
    c = n.client();
    CHECK(n.codes(*c, {"88.118.8/K-2"}) == std::vector<int>{100});
    // Keys are per account: another account's identical key is a fresh upload.
    auto other = n.bulk(*c, "", record("88.118.9/K-3", "https://e.cn/3"), n.pharma,
                        {{"Idempotency-Key", "run-42"}});
    CHECK(summary(ndjson_values(other.body()), "created") == 1);
    auto too_long = n.bulk(*c, "", body, n.steel, {{"Idempotency-Key", std::string(300, 'k')}});
    CHECK(too_long.result() == http::status::bad_request);
}

namespace {

/// The lines of a bulk response that a replay repeats: its error lines and the summary.
std::string error_lines_and_summary(const std::string& body) {
    std::string out;
    std::istringstream in(body);
    for (std::string line; std::getline(in, line);)
        if (line.find("\"status\":\"error\"") != std::string::npos ||
            line.rfind("{\"summary\"", 0) == 0)
            out += line + "\n";
    return out;
}

std::uint64_t identifiers(BulkNode& n) {
    auto c = n.client();
    auto stats = c->request(V::get, "/api/v1/stats", {}, {{"Authorization", n.admin}});
    REQUIRE_MESSAGE(stats.result() == http::status::ok, stats.body());
    return parse_json(stats.body()).at("identifiers").to_number<std::uint64_t>();
}

} // namespace

TEST_CASE("bulk: an Idempotency-Key outcome survives a restart and kill -9; a cut upload re-runs") {
    std::signal(SIGPIPE, SIG_IGN); // writes to the killed node must fail, not kill the test
    BulkNode n;
    auto c = n.client();
    std::string body;
    for (int i = 0; i < 50; ++i)
        body += record("88.118.8/P-" + std::to_string(i), "https://e.cn/p");
    body += "[1]\n";
    auto first = n.bulk(*c, "", body, n.steel, {{"Idempotency-Key", "restart-1"}});
    REQUIRE(first.result() == http::status::ok);
    CHECK(summary(ndjson_values(first.body()), "created") == 50);
    CHECK(summary(ndjson_values(first.body()), "errors") == 1);
    const std::string expected = error_lines_and_summary(first.body());

    // A clean restart: the same key answers the first outcome; a different body under it
    // writes nothing.
    REQUIRE(n.node.stop() == 0);
    n.node.start();
    c = n.client();
    auto replay = n.bulk(*c, "", record("88.118.8/P-new", "https://e.cn/new"), n.steel,
                         {{"Idempotency-Key", "restart-1"}});
    CHECK(replay.result() == http::status::ok);
    CHECK(replay["Idempotent-Replayed"] == "true");
    CHECK(replay.body() == expected);
    CHECK(n.codes(*c, {"88.118.8/P-new"}) == std::vector<int>{100});
    CHECK(identifiers(n) == 50);

    // kill -9 right after the summary arrived: the outcome was durable before it was sent.
    std::string second_body;
    for (int i = 0; i < 20; ++i)
        second_body += record("88.118.8/Q-" + std::to_string(i), "https://e.cn/q");
    auto second = n.bulk(*c, "", second_body, n.steel, {{"Idempotency-Key", "kill-1"}});
    CHECK(summary(ndjson_values(second.body()), "created") == 20);
    n.node.signal(SIGKILL);
    REQUIRE(n.node.wait() == 128 + SIGKILL);
    n.node.start();
    c = n.client();
    auto again = n.bulk(*c, "", second_body, n.steel, {{"Idempotency-Key", "kill-1"}});
    CHECK(again["Idempotent-Replayed"] == "true");
    CHECK(again.body() == error_lines_and_summary(second.body()));
    CHECK(identifiers(n) == 70);

    // kill -9 in the middle of an upload: its claim was never stored, so the retry runs; the
    // lines acknowledged before the kill were applied once and now report unchanged.
    c->write_raw("POST /api/v1/bulk?mode=create HTTP/1.1\r\nHost: localhost\r\n"
                 "Authorization: " +
                 n.steel + "\r\nIdempotency-Key: cut-1\r\nContent-Length: 100000000\r\n\r\n");
    std::string cut_body;
    for (int i = 0; i < 30; ++i)
        cut_body += record("88.118.8/R-" + std::to_string(i), "https://e.cn/r");
    c->write_raw(cut_body);
    std::string received;
    REQUIRE(eventually(
        [&] {
            received += c->read_some(100ms);
            return received.find("88.118.8/R-29") != std::string::npos;
        },
        20s));
    n.node.signal(SIGKILL);
    REQUIRE(n.node.wait() == 128 + SIGKILL);
    n.node.start();
    c = n.client();
    const std::string retry_body = cut_body + record("88.118.8/R-30", "https://e.cn/r");
    auto retry = n.bulk(*c, "", retry_body, n.steel, {{"Idempotency-Key", "cut-1"}});
    REQUIRE(retry.result() == http::status::ok);
    CHECK(retry["Idempotent-Replayed"] == "");
    CHECK(summary(ndjson_values(retry.body()), "unchanged") == 30);
    CHECK(summary(ndjson_values(retry.body()), "created") == 1);
    CHECK(identifiers(n) == 101);

    // The stored outcomes leave the database consistent for idctl.
    REQUIRE(n.node.stop() == 0);
    auto verify = run_command({idctl_binary().string(), "--json", "verify", "--data-dir",
                               (n.node.dir() / "db").string()});
    CHECK_MESSAGE(verify.exit_code == 0, verify.out);
}

TEST_CASE("bulk: an expired Idempotency-Key runs the upload again") {
    BulkNode n{{{"limits.idempotency_ttl_s", "2"}}};
    auto c = n.client();
    const std::string body = record("88.118.8/T-1", "https://e.cn/t");
    auto first = n.bulk(*c, "", body, n.steel, {{"Idempotency-Key", "ttl-1"}});
    const auto stored_at = std::chrono::steady_clock::now();
    CHECK(summary(ndjson_values(first.body()), "created") == 1);
    auto replay = n.bulk(*c, "", body, n.steel, {{"Idempotency-Key", "ttl-1"}});
    CHECK(replay["Idempotent-Replayed"] == "true");
    CHECK(summary(ndjson_values(replay.body()), "created") == 1);
    std::this_thread::sleep_until(stored_at + 2100ms);
    auto fresh = n.bulk(*c, "", body, n.steel, {{"Idempotency-Key", "ttl-1"}});
    CHECK(fresh["Idempotent-Replayed"] == "");
    CHECK(summary(ndjson_values(fresh.body()), "unchanged") == 1);
    // The new run's outcome is what the key answers now.
    auto replay2 = n.bulk(*c, "", body, n.steel, {{"Idempotency-Key", "ttl-1"}});
    CHECK(replay2["Idempotent-Replayed"] == "true");
    CHECK(summary(ndjson_values(replay2.body()), "unchanged") == 1);
}

TEST_CASE("bulk: Idempotency-Key outcomes of error-heavy uploads keep server memory bounded") {
    BulkNode n;
    const int errors_per_upload = 3000;
    // Lines for a prefix this node does not home: each fails alone with a long error line.
    std::string body;
    const std::string tail(180, 'x');
    for (int i = 0; i < errors_per_upload; ++i)
        body += record("77.7/" + tail + "-" + std::to_string(i), "https://e.cn/x");
    auto upload = [&](const std::string& key) {
        auto c = n.client(30s);
        auto r = n.bulk(*c, "?results=errors", body, n.steel, {{"Idempotency-Key", key}});
        REQUIRE(r.result() == http::status::ok);
        REQUIRE(summary(ndjson_values(r.body()), "errors") ==
                static_cast<std::uint64_t>(errors_per_upload));
    };
    for (int i = 0; i < 3; ++i) // warm up the allocator's arenas and the caches
        upload("warm-" + std::to_string(i));
    const long before = status_kib(n.node.pid(), "RssAnon");
    const int keys = 30;
    for (int i = 0; i < keys; ++i)
        upload("key-" + std::to_string(i));
    const long after = status_kib(n.node.pid(), "RssAnon");
    MESSAGE("server RssAnon " << before << " -> " << after << " KiB after " << keys
                              << " keyed uploads of " << errors_per_upload << " error lines");
    REQUIRE(before > 0);
    // Each outcome's error lines are ~1 MB; keeping them (today's 10,000-line replay) would add
    // ~30 MB. The reduced (sanitizer) run keeps freed memory resident by design: not asserted.
    if (reduced_mode())
        MESSAGE("RssAnon bound not asserted under the sanitizer run");
    else
        CHECK(after - before < 6 * 1024);

    // A replay: the first error lines, a note of how many were cut, the whole summary.
    auto c = n.client();
    auto replay = n.bulk(*c, "", "", n.steel, {{"Idempotency-Key", "key-7"}});
    CHECK(replay["Idempotent-Replayed"] == "true");
    auto lines = ndjson_values(replay.body());
    CHECK(replay.body().size() <= 33 * 1024);
    REQUIRE(lines.size() >= 3);
    CHECK(lines.size() <= 102);
    CHECK(lines[0].at("line") == 1);
    CHECK(lines[0].at("error").at("code") == "not_homed");
    const auto& note = lines[lines.size() - 2];
    CHECK(note.at("error").at("code") == "replay_truncated");
    CHECK(std::string(note.at("error").at("message").as_string()) ==
          "only the first " + std::to_string(lines.size() - 2) + " of " +
              std::to_string(errors_per_upload) + " error lines are kept");
    CHECK(summary(lines, "errors") == static_cast<std::uint64_t>(errors_per_upload));
    CHECK(summary(lines, "lines") == static_cast<std::uint64_t>(errors_per_upload));
}

TEST_CASE("bulk: a client that disconnects mid-stream loses only unacknowledged lines") {
    BulkNode n;
    auto c = n.client();
    const int sent = 300;
    std::string header = "POST /api/v1/bulk?mode=create HTTP/1.1\r\nHost: localhost\r\n"
                         "Authorization: " +
                         n.steel + "\r\nContent-Length: 100000000\r\n\r\n";
    c->write_raw(header);
    std::vector<std::string> handles;
    std::string lines;
    for (int i = 0; i < sent; ++i) {
        handles.push_back("88.118.8/D-" + std::to_string(i));
        lines += record(handles.back(), "https://e.cn/d");
    }
    c->write_raw(lines);
    // Collect acknowledgements until every complete line is acknowledged.
    std::string received;
    std::set<std::string> acknowledged;
    REQUIRE(eventually(
        [&] {
            received += c->read_some(100ms);
            acknowledged.clear();
            std::size_t at = 0;
            while ((at = received.find("\"handle\":\"", at)) != std::string::npos) {
                at += 10;
                acknowledged.insert(received.substr(at, received.find('"', at) - at));
            }
            return acknowledged.size() == static_cast<std::size_t>(sent);
        },
        30s));
    // Half a line, then the client vanishes.
    c->write_raw(R"({"handle":"88.118.8/D-partial","values":[{"index":1,"type":"URL","da)");
    c->close();
    auto check = n.client();
    std::vector<std::string> all = handles;
    all.push_back("88.118.8/D-partial");
    const auto codes = n.codes(*check, all);
    for (int i = 0; i < sent; ++i)
        CHECK(codes[static_cast<std::size_t>(i)] == 1);
    CHECK(codes.back() == 100);
    CHECK(n.node.running());
}

TEST_CASE("bulk: two concurrent uploads to different prefixes both complete") {
    BulkNode n;
    const int count = reduced_mode() ? 2000 : 20000;
    std::uint64_t created[2] = {0, 0};
    auto upload = [&](int which) {
        auto c = n.client(30s);
        std::string body;
        const std::string prefix = which == 0 ? "88.118.8/C-" : "88.118.9/C-";
        for (int i = 0; i < count; ++i)
            body += record(prefix + std::to_string(100000 + i), "https://e.cn/c");
        auto r = n.bulk(*c, "?results=errors", body, which == 0 ? n.steel : n.pharma);
        created[which] = summary(ndjson_values(r.body()), "created");
    };
    std::thread a(upload, 0), b(upload, 1);
    a.join();
    b.join();
    CHECK(created[0] == static_cast<std::uint64_t>(count));
    CHECK(created[1] == static_cast<std::uint64_t>(count));
    auto c = n.client();
    auto stats = c->request(V::get, "/api/v1/stats", {}, {{"Authorization", n.admin}});
    REQUIRE_MESSAGE(stats.result() == http::status::ok, stats.body());
    auto s = parse_json(stats.body());
    CHECK(s.at("identifiers") == 2 * count);
    CHECK(s.at("registrations_today") == 2 * count);
    CHECK(s.at("prefixes").as_array().size() == 2);
    auto mine =
        parse_json(c->request(V::get, "/api/v1/stats", {}, {{"Authorization", n.steel}}).body());
    CHECK(mine.at("identifiers") == count);
    REQUIRE(mine.at("prefixes").as_array().size() == 1);
    CHECK(mine.at("prefixes").as_array()[0].at("prefix") == "88.118.8");
    CHECK(c->request(V::get, "/api/v1/stats").result() == http::status::unauthorized);
}

TEST_CASE("bulk: a large streamed body keeps server memory flat") {
    BulkNode n;
    const long total = reduced_mode() ? 200000 : 1000000;
    auto c = n.client(60s);
    c->write_raw("POST /api/v1/bulk?mode=create&results=errors HTTP/1.1\r\nHost: localhost\r\n"
                 "Authorization: " +
                 n.steel + "\r\nTransfer-Encoding: chunked\r\n\r\n");
    // Resident memory is VmRSS = RssAnon (heap: where buffered body or results would live) +
    // RssFile (LMDB's memory map: every page the writer touches stays resident, so it grows with
    // the database, not with buffering). Flatness is asserted on RssAnon; VmRSS is reported.
    long rss_early = 0, rss_peak = 0, vm_early = 0, vm_peak = 0;
    const long step = 20000;
    std::string chunk;
    for (long i = 0; i < total; i += step) {
        chunk.clear();
        for (long j = i; j < i + step; ++j) {
            chunk += R"({"handle":"88.118.8/M-)";
            chunk += std::to_string(1000000 + j);
            chunk += R"(","values":[{"index":1,"type":"URL","data":"https://e.cn/m"}]})"
                     "\n";
        }
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
        c->write_raw(std::string(size) + chunk + "\r\n");
        const long rss = status_kib(n.node.pid(), "RssAnon");
        const long vm = status_kib(n.node.pid(), "VmRSS");
        if (i == total / 5) {
            rss_early = rss;
            vm_early = vm;
        }
        if (i > total / 5) {
            rss_peak = std::max(rss_peak, rss);
            vm_peak = std::max(vm_peak, vm);
        }
    }
    c->write_raw("0\r\n\r\n");
    auto r = c->read_response();
    REQUIRE(r.result() == http::status::ok);
    auto lines = ndjson_values(r.body());
    CHECK(lines.size() == 1);
    CHECK(summary(lines, "created") == static_cast<std::uint64_t>(total));
    MESSAGE("server RssAnon after 20%: " << rss_early << " KiB, peak after: " << rss_peak
                                         << " KiB; VmRSS " << vm_early << " -> " << vm_peak
                                         << " KiB; body ~" << total * 80 / 1024 << " KiB");
    REQUIRE(rss_early > 0);
    // The body is ~80 MB; buffering any sizeable part of it would show. The reduced run is the
    // sanitizer run, where ASan's quarantine keeps freed memory resident by design: there the
    // bound proves nothing and is not asserted (the normal run asserts it).
    if (reduced_mode())
        MESSAGE("RssAnon bound not asserted under the sanitizer run");
    else
        CHECK(rss_peak - rss_early < 16 * 1024);
}

TEST_CASE("batch resolve: found, missing, invalid, not homed and private entries in order") {
    BulkNode n;
    auto c = n.client();
    const std::string rec =
        R"({"handle":"88.118.8/R-1","values":[{"index":1,"type":"URL","data":"https://e.cn/r"},)"
        R"({"index":2001,"type":"price","data":"10","permissions":"1100"}]})"
        "\n";
    REQUIRE(summary(ndjson_values(n.bulk(*c, "", rec, n.steel).body()), "created") == 1);
    const std::string body =
        R"(["88.118.8/R-1","88.118.8/none","no-slash","77.7/x","88.118.8/r-1"])";
    auto anon = c->request(V::post, "/api/v1/resolve", body);
    REQUIRE_MESSAGE(anon.result() == http::status::ok, anon.body());
    auto a = parse_json(anon.body()).as_array();
    REQUIRE(a.size() == 5);
    CHECK(a[0].at("handle") == "88.118.8/R-1");
    CHECK(a[0].at("responseCode") == 1);
    CHECK(a[0].at("values").as_array().size() == 1); // the private price is left out
    CHECK(a[1].at("responseCode") == 100);
    CHECK(a[2].at("responseCode") == 102);
    CHECK(a[3].at("responseCode") == 301);
    CHECK(a[4].at("handle") == "88.118.8/r-1"); // echoed as asked, matched case-insensitively
    CHECK(a[4].at("responseCode") == 1);
    // The owner and a granted reader see the private value.
    for (const auto& who : {n.steel, n.reader}) {
        auto r =
            c->request(V::post, "/api/v1/resolve", R"(["88.118.8/R-1"])", {{"Authorization", who}});
        CHECK(parse_json(r.body()).as_array()[0].at("values").as_array().size() == 2);
    }
    auto pharma = c->request(V::post, "/api/v1/resolve", R"(["88.118.8/R-1"])",
                             {{"Authorization", n.pharma}});
    CHECK(parse_json(pharma.body()).as_array()[0].at("values").as_array().size() == 1);

    // Bad requests.
    CHECK(c->request(V::post, "/api/v1/resolve", "{}").result() == http::status::bad_request);
    CHECK(c->request(V::post, "/api/v1/resolve", "[1]").result() == http::status::bad_request);
    CHECK(c->request(V::post, "/api/v1/resolve", "[").result() == http::status::bad_request);
    json::array many;
    for (int i = 0; i < 1001; ++i)
        many.emplace_back("88.118.8/x");
    auto too_many = c->request(V::post, "/api/v1/resolve", json::serialize(many));
    CHECK(too_many.result() == http::status::bad_request);
    CHECK(parse_json(too_many.body()).at("error").at("code") == "too_many_handles");
    CHECK(c->request(V::post, "/api/v1/resolve", "[]", {{"Authorization", "Bearer idn_bad"}})
              .result() == http::status::unauthorized);
}

TEST_CASE("bulk: a graceful stop finishes the batches in flight and says the upload is cut") {
    BulkNode n;
    auto c = n.client();
    c->write_raw("POST /api/v1/bulk HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + n.steel +
                 "\r\nContent-Length: 100000000\r\n\r\n" +
                 record("88.118.8/S-1", "https://e.cn/s"));
    std::string received;
    REQUIRE(eventually(
        [&] {
            received += c->read_some(100ms);
            return received.find("\"created\"") != std::string::npos;
        },
        30s));
    n.node.signal(SIGTERM);
    REQUIRE(eventually(
        [&] {
            received += c->read_some(100ms);
            return received.find("\"summary\"") != std::string::npos;
        },
        30s));
    CHECK(received.find("shutting_down") != std::string::npos);
    CHECK(received.find("\"complete\":false") != std::string::npos);
    CHECK(n.node.wait(15s) == 0);
}

TEST_CASE("bulk: a prefix suspended while a stream is open is refused from the next group on") {
    BulkNode n;
    auto c = n.client();
    c->write_raw("POST /api/v1/bulk?mode=create HTTP/1.1\r\nHost: localhost\r\nAuthorization: " +
                 n.steel + "\r\nContent-Length: 100000000\r\n\r\n");
    // Reads result lines until `count` more have arrived; returns them.
    std::string received;
    std::size_t consumed = 0;
    auto next_results = [&](std::size_t count) {
        std::vector<json::value> out;
        REQUIRE(eventually(
            [&] {
                received += c->read_some(100ms);
                std::size_t end;
                while (out.size() < count &&
                       (end = received.find('\n', consumed)) != std::string::npos) {
                    const std::string line = received.substr(consumed, end - consumed);
                    consumed = end + 1;
                    if (line.find("\"line\"") != std::string::npos)
                        out.push_back(parse_json(line));
                }
                return out.size() == count;
            },
            20s));
        return out;
    };
    std::string lines;
    for (int i = 0; i < 20; ++i)
        lines += record("88.118.8/S-" + std::to_string(i), "https://e.cn/s");
    c->write_raw(lines);
    for (const auto& r : next_results(20))
        CHECK(r.at("status").as_string() == "created");

    auto admin = n.client();
    REQUIRE(admin
                ->request(V::post, "/api/v1/prefixes/88.118.8/suspend", {},
                          {{"Authorization", n.admin}})
                .result() == http::status::ok);
    lines.clear();
    for (int i = 20; i < 40; ++i)
        lines += record("88.118.8/S-" + std::to_string(i), "https://e.cn/s");
    c->write_raw(lines);
    for (const auto& r : next_results(20)) {
        CAPTURE(json::serialize(r));
        CHECK(r.at("status").as_string() == "error");
        CHECK(r.at("error").at("code").as_string() == "prefix_suspended");
    }
    c->close();
    const auto codes = n.codes(*admin, {"88.118.8/S-19", "88.118.8/S-20", "88.118.8/S-39"});
    CHECK(codes == std::vector<int>{1, 100, 100});
}

TEST_CASE("stats: resolutions_today counts every HTTPS resolution; an enterprise sees its own") {
    BulkNode n;
    auto c = n.client();
    REQUIRE(n.bulk(*c, "",
                   record("88.118.8/R", "https://e.cn/r") + record("88.118.9/R", "https://e.cn/p"),
                   n.admin)
                .result() == http::status::ok);
    const auto resolutions = [&](const std::string& auth) {
        auto r = c->request(V::get, "/api/v1/stats", {}, {{"Authorization", auth}});
        REQUIRE_MESSAGE(r.result() == http::status::ok, r.body());
        return parse_json(r.body()).at("resolutions_today").as_int64();
    };
    const auto before = resolutions(n.admin);
    for (int i = 0; i < 3; ++i) // the plain Handle REST GET (the common, compact path)
        REQUIRE(c->request(V::get, "/api/handles/88.118.8/R").result() == http::status::ok);
    REQUIRE(c->request(V::get, "/api/handles/88.118.8/R?pretty").result() == http::status::ok);
    REQUIRE(c->request(V::get, "/api/handles/88.118.8/R", {}, {{"Accept", "text/html"}}).result() ==
            http::status::ok);
    REQUIRE(c->request(V::get, "/identityv2/data/detail?handle=88.118.8/R").result() ==
            http::status::ok);
    REQUIRE(c->request(V::get, "/88.118.8/R?noredirect").result() == http::status::ok);
    CHECK(n.codes(*c, {"88.118.8/R", "88.118.9/R", "88.118.9/R", "88.118.8/missing"}) ==
          std::vector<int>{1, 1, 1, 100});
    REQUIRE(c->request(V::get, "/api/handles/88.118.9/missing").result() ==
            http::status::not_found);
    // steel: 3 + pretty + page + SNMS + proxy + 1 batched = 8; pharma: 2 batched.
    CHECK(resolutions(n.steel) == 8);
    CHECK(resolutions(n.reader) == 8); // granted 88.118.8
    CHECK(resolutions(n.pharma) == 2);
    CHECK(resolutions(n.admin) - before == 12); // the misses count for the node
}

TEST_CASE("bulk: an account disabled or deprived of its prefix mid-stream is refused from the "
          "next group on") {
    BulkNode n;
    auto admin = n.client();
    // Opens a stream as `auth`, sends 20 lines that must be created, applies `change` as the
    // admin, then sends 20 more: each must be refused with `code`.
    auto stream = [&](const std::string& auth, const std::string& prefix, const std::string& change,
                      const char* code) {
        auto c = n.client();
        c->write_raw(
            "POST /api/v1/bulk?mode=create HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + auth +
            "\r\nContent-Length: 100000000\r\n\r\n");
        std::string received;
        std::size_t consumed = 0;
        auto next_results = [&](std::size_t count) {
            std::vector<json::value> out;
            REQUIRE(eventually(
                [&] {
                    received += c->read_some(100ms);
                    std::size_t end;
                    while (out.size() < count &&
                           (end = received.find('\n', consumed)) != std::string::npos) {
                        const std::string line = received.substr(consumed, end - consumed);
                        consumed = end + 1;
                        if (line.find("\"line\"") != std::string::npos)
                            out.push_back(parse_json(line));
                    }
                    return out.size() == count;
                },
                20s));
            return out;
        };
        auto send = [&](int from) {
            std::string lines;
            for (int i = from; i < from + 20; ++i)
                lines += record(prefix + "/A-" + std::to_string(i), "https://e.cn/a");
            c->write_raw(lines);
        };
        send(0);
        for (const auto& r : next_results(20))
            CHECK(r.at("status").as_string() == "created");
        const auto changed =
            admin->request(change.find("/prefixes/") != std::string::npos ? V::delete_ : V::post,
                           change, {}, {{"Authorization", n.admin}});
        REQUIRE_MESSAGE(changed.result() == http::status::ok, changed.body());
        send(20);
        for (const auto& r : next_results(20)) {
            CAPTURE(json::serialize(r));
            CHECK(r.at("status").as_string() == "error");
            CHECK(r.at("error").at("code").as_string() == code);
        }
        c->close();
        CHECK(n.codes(*admin, {prefix + "/A-19", prefix + "/A-20", prefix + "/A-39"}) ==
              std::vector<int>{1, 100, 100});
    };
    stream(n.steel, "88.118.8", "/api/v1/accounts/steel/disable", "unauthorized");
    stream(n.pharma, "88.118.9", "/api/v1/accounts/pharma/prefixes/88.118.9", "forbidden");
}
