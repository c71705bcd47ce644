// The role x route authorisation matrix against the real idnode binary
// (docs/api.md#authorisation-matrix), and the body shape of server-level errors per API family
// (docs/api.md#error-bodies).
//
// The matrix is one table: a row is (role, method, target, body) and the expected HTTP status, the
// Handle responseCode / native error code / SNMS envelope status, and, for reads, exactly which
// value indices the caller sees (private values hidden or visible as docs/data-model.md#values
// says).
//
// Failed logins are throttled per client IP and per account (10 a minute), so every row with bad
// credentials comes from its own loopback address, and wrong passwords are spread over several
// accounts that exist only for that.
#include "harness.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

using namespace idnode::test;
namespace json = boost::json;
using V = http::verb;
using S = http::status;

namespace {

json::value parse(std::string_view text) {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec)
        throw HarnessError("not JSON: " + std::string(text));
    return v;
}

/// A record with a public value (index 1) and a private one (index 2001, permissions 1100).
const char* kRecord = R"({"values":[
  {"index":1,"type":"URL","data":"https://steel.example.cn/c/R1"},
  {"index":2001,"type":"price","data":"4120.50","permissions":"1100"}]})";

const char* kValue = R"([{"index":1,"type":"URL","data":"https://x.example.cn/1"}])";

std::string template_doc(const std::string& prefix, const std::string& version) {
    return R"({"prefix":")" + prefix + R"(","version":")" + version +
           R"(","industryCategory":"C","industrySpecific":"31","industryTrade":"313",
  "industrySubclass":"3130","type":1,"description":"钢卷","items":[
  {"name":"炉号","idType":"heat_no","idIndex":2000,"required":true,"state":1,
   "metadata":{"type":"string","minLength":1,"maxLength":20}}]})";
}

std::string snms_record(const std::string& handle) {
    return R"({"handle":")" + handle +
           R"(","value":[{"index":1,"type":"URL","data":{"format":"string","value":"https://x.example.cn/s"}}]})";
}

std::string bulk_line(const std::string& handle) {
    return R"({"handle":")" + handle + R"(","values":)" + kValue + "}\n";
}

const char* kEnterprise =
    R"("enterprise":{"name":"示例钢铁","credit_code":"91310000631696382C","industry":"C3130","contact":"ops@example.cn"})";

enum class Role {
    anonymous,
    bad_key,
    bad_password,
    reader,
    steel,
    steel_token,
    frozen,
    admin,
    nested,  // enterprise owning 88.118.8.5 and 88.118.10.5 (nested-prefix test only)
    reader10 // reader granted 88.118.10 (nested-prefix test only)
};

const char* role_name(Role r) {
    switch (r) {
    case Role::anonymous:
        return "anonymous";
    case Role::bad_key:
        return "bad key";
    case Role::bad_password:
        return "bad password";
    case Role::reader:
        return "reader of 88.118.8";
    case Role::steel:
        return "enterprise steel (88.118.8)";
    case Role::steel_token:
        return "enterprise steel, login token";
    case Role::frozen:
        return "enterprise frozen (88.118.10, suspended)";
    case Role::admin:
        return "admin";
    case Role::nested:
        return "enterprise nested (88.118.8.5, 88.118.10.5)";
    case Role::reader10:
        return "reader of 88.118.10";
    }
    return "?";
}

/// What a response must be.
enum class Shape { handle, native, snms, bulk, resolve, none };
struct Expect {
    S status = S::ok;
    Shape shape = Shape::none;
    int code = 0;     // Handle responseCode or SNMS envelope status
    std::string text; // native error code, bulk line status/error code, SNMS message part
    std::optional<std::vector<int>> visible; // value indices the caller sees
    std::function<void(const json::value&)> extra = {};
};

/// Handle REST shape: status, responseCode, and for reads the visible value indices.
Expect H(S status, int rc, std::optional<std::vector<int>> visible = std::nullopt) {
    return {status, Shape::handle, rc, {}, std::move(visible)};
}
/// Native shape: success (no code) or {"error":{"code":code}}.
Expect N(S status, std::string code = {}) {
    return {status, Shape::native, 0, std::move(code), std::nullopt};
}
/// SNMS envelope (HTTP 200): status, a fragment of the message (or of data[0].msg for batches),
/// and for detail the visible value indices.
Expect E(int status, std::string fragment = {},
         std::optional<std::vector<int>> visible = std::nullopt) {
    return {S::ok, Shape::snms, status, std::move(fragment), std::move(visible)};
}
/// Bulk NDJSON: the first line's status ("created") or error code ("forbidden").
Expect B(std::string line) {
    return {S::ok, Shape::bulk, 0, std::move(line), std::nullopt};
}
/// Batch resolve: one entry with this responseCode and visible indices.
Expect R(int rc, std::optional<std::vector<int>> visible) {
    return {S::ok, Shape::resolve, rc, {}, std::move(visible)};
}
Expect plain(S status) {
    return {status, Shape::none, 0, {}, std::nullopt};
}
Expect with(Expect e, std::function<void(const json::value&)> extra) {
    e.extra = std::move(extra);
    return e;
}

struct Row {
    Role role;
    V method;
    std::string target, body;
    Expect expect;
};

std::vector<int> indices(const json::array& values) {
    std::vector<int> out;
    for (const auto& v : values)
        out.push_back(static_cast<int>(v.at("index").as_int64()));
    return out;
}

/// The node of the matrix: node prefix 88.118; enterprise prefixes 88.118.8 (account steel, key
/// and password), 88.118.9 (pharma) and 88.118.10 (frozen, suspended after its data was
/// written); reader auditor granted 88.118.8; a record R1 (public index 1, private index 2001)
/// and a template 1.0 under each prefix; records and templates the delete rows remove.
struct MatrixNode {
    NodeProcess node{"authz"};
    std::string admin, steel, reader, frozen, steel_token, pharma_spare_key, steel_spare_key;
    std::string nested, reader10; // set by the nested-prefix test
    std::string nested_token;
    const std::string steel_password = "steel-secret-1";
    int bad_sources = 0, bad_passwords = 0;
    static constexpr int kVictims = 8;

    MatrixNode() {
        auto init = run_command({IDNODE_IDCTL_BINARY, "init", "--data-dir",
                                 (node.dir() / "db").string(), "--node-prefix", "88.118"});
        REQUIRE_MESSAGE(init.exit_code == 0, init.err);
        admin = "Bearer " + std::string(parse(init.out).at("admin_key").as_string());
        node.start();
        auto c = client();
        auto ok = [&](V method, const std::string& target, const std::string& body, S expected) {
            auto r = c->request(method, target, body, {{"Authorization", admin}});
            REQUIRE_MESSAGE(r.result() == expected, target, " ", r.body());
            return r;
        };
        for (const char* p : {"88.118.8", "88.118.9", "88.118.10"})
            ok(V::post, "/api/v1/prefixes",
               std::string(R"({"prefix":")") + p + R"(",)" + kEnterprise + "}", S::created);
        ok(V::post, "/api/v1/accounts",
           R"({"username":"steel","role":"enterprise","prefixes":["88.118.8"],"password":")" +
               steel_password + R"("})",
           S::created);
        ok(V::post, "/api/v1/accounts",
           R"({"username":"pharma","role":"enterprise","prefixes":["88.118.9"]})", S::created);
        ok(V::post, "/api/v1/accounts",
           R"({"username":"frozen","role":"enterprise","prefixes":["88.118.10"]})", S::created);
        ok(V::post, "/api/v1/accounts",
           R"({"username":"auditor","role":"reader","prefixes":["88.118.8"]})", S::created);
        for (int i = 0; i < kVictims; ++i)
            ok(V::post, "/api/v1/accounts",
               R"({"username":"victim)" + std::to_string(i) +
                   R"(","role":"reader","prefixes":["88.118.8"],"password":"victim-secret-1"})",
               S::created);
        auto key = [&](const std::string& user) {
            auto r = ok(V::post, "/api/v1/accounts/" + user + "/keys", {}, S::created);
            const auto v = parse(r.body());
            return std::pair{std::string(v.at("key").as_string()),
                             std::string(v.at("key_id").as_string())};
        };
        steel = "Bearer " + key("steel").first;
        reader = "Bearer " + key("auditor").first;
        frozen = "Bearer " + key("frozen").first;
        pharma_spare_key = key("pharma").second;
        steel_spare_key = key("steel").second;
        for (const char* p : {"88.118.8", "88.118.9", "88.118.10"}) {
            for (const char* s : {"R1", "D1", "D2", "D3"})
                ok(V::put, std::string("/api/handles/") + p + "/" + s, kRecord, S::created);
            ok(V::post, "/api/v1/templates", template_doc(p, "1.0"), S::created);
            ok(V::post, "/api/v1/templates", template_doc(p, "del-1"), S::created);
            ok(V::post, "/api/v1/templates", template_doc(p, "del-2"), S::created);
        }
        ok(V::post, "/api/v1/prefixes/88.118.10/suspend", {}, S::ok);
        auto login = c->request(V::post, "/identity/token",
                                R"({"username":"steel","password":")" + steel_password + R"("})");
        REQUIRE(login.result() == S::ok);
        steel_token =
            "Bearer " + std::string(parse(login.body()).at("data").at("token").as_string());
    }

    std::unique_ptr<HttpsClient> client(const std::string& source = {}) {
        TlsOptions tls = trust(node.pki().ca_cert);
        tls.source_address = source;
        auto c = std::make_unique<HttpsClient>(node.https_port(), tls);
        c->connect();
        return c;
    }

    /// The Authorization header of `role` ("" = none).
    std::string credentials(Role role) {
        switch (role) {
        case Role::anonymous:
            return {};
        case Role::bad_key: // well-formed, unknown key
            return "Bearer idn_0000000000000000_" + std::string(64, 'a');
        case Role::bad_password: { // an existing account, a wrong password
            const int victim = bad_passwords++ / 8;
            REQUIRE(victim < kVictims);
            return basic_authorization("victim" + std::to_string(victim), "wrong-password");
        }
        case Role::reader:
            return reader;
        case Role::steel:
            return steel;
        case Role::steel_token:
            return steel_token;
        case Role::frozen:
            return frozen;
        case Role::admin:
            return admin;
        case Role::nested:
            return nested;
        case Role::reader10:
            return reader10;
        }
        return {};
    }

    /// A loopback address of its own for each request with bad credentials.
    std::string next_bad_source() {
        ++bad_sources;
        REQUIRE(bad_sources < 250);
        return "127.0.5." + std::to_string(bad_sources);
    }
};

void check_row(const Row& row, const Response& r) {
    const Expect& e = row.expect;
    CHECK_MESSAGE(r.result() == e.status, r.body());
    if (e.shape == Shape::none || e.shape == Shape::bulk) {
        if (e.shape == Shape::bulk && r.result() == S::ok) {
            const auto first = parse(r.body().substr(0, r.body().find('\n')));
            const auto& o = first.as_object();
            const std::string got = o.contains("error")
                                        ? std::string(o.at("error").at("code").as_string())
                                        : std::string(o.at("status").as_string());
            CHECK_MESSAGE(got == e.text, r.body());
        }
        return;
    }
    CHECK(r[http::field::content_type] == "application/json");
    boost::system::error_code ec;
    const json::value body = json::parse(r.body(), ec);
    if (ec) { // report and go on with the other rows
        FAIL_CHECK("the body is not JSON: " << r.body());
        return;
    }
    switch (e.shape) {
    case Shape::handle: {
        REQUIRE_MESSAGE(body.is_object(), r.body());
        CHECK_MESSAGE(body.at("responseCode").as_int64() == e.code, r.body());
        CHECK_FALSE(body.as_object().contains("error"));
        if (e.code != 1 && e.code != 100) // docs/api.md#resolve: not found is RC 100 and the handle
            CHECK_MESSAGE(body.as_object().contains("message"), r.body());
        if (e.visible)
            CHECK(indices(body.at("values").as_array()) == *e.visible);
        break;
    }
    case Shape::native: {
        if (e.text.empty()) {
            const bool is_error = body.is_object() && body.as_object().contains("error");
            CHECK_FALSE(is_error);
        } else {
            REQUIRE_MESSAGE(body.is_object(), r.body());
            CHECK_MESSAGE(body.at("error").at("code").as_string() == e.text, r.body());
            CHECK_FALSE(body.at("error").at("message").as_string().empty());
            CHECK_FALSE(body.as_object().contains("responseCode"));
        }
        break;
    }
    case Shape::snms: {
        REQUIRE_MESSAGE(body.is_object(), r.body());
        const auto& o = body.as_object();
        CHECK(o.contains("data"));
        CHECK_MESSAGE(o.at("status").as_int64() == e.code, r.body());
        if (!e.text.empty()) {
            const auto& data = o.at("data");
            const std::string where = data.is_array() && !data.as_array().empty()
                                          ? std::string(data.as_array()[0].at("msg").as_string())
                                          : std::string(o.at("message").as_string());
            CHECK_MESSAGE(where.find(e.text) != std::string::npos, r.body());
        }
        if (e.visible)
            CHECK(indices(o.at("data").at("value").as_array()) == *e.visible);
        break;
    }
    case Shape::resolve: {
        const auto& entry = body.at(0);
        CHECK(entry.at("responseCode").as_int64() == e.code);
        if (e.visible)
            CHECK(indices(entry.at("values").as_array()) == *e.visible);
        break;
    }
    default:
        break;
    }
    if (e.extra)
        e.extra(body);
}

/// Sends each row with its role's credentials (bad credentials from an address of their own) and
/// checks the answer.
void run_rows(MatrixNode& n, HttpsClient& c, const std::vector<Row>& rows,
              const std::vector<std::pair<std::string, std::string>>& extra_headers = {}) {
    for (const Row& row : rows) {
        const std::string who = role_name(row.role);
        const std::string request = std::string(http::to_string(row.method)) + " " + row.target;
        CAPTURE(who);
        CAPTURE(request);
        std::vector<std::pair<std::string, std::string>> headers = extra_headers;
        if (const std::string creds = n.credentials(row.role); !creds.empty())
            headers.emplace_back("Authorization", creds);
        if (row.role == Role::bad_key || row.role == Role::bad_password) {
            auto own = n.client(n.next_bad_source());
            check_row(row, own->request(row.method, row.target, row.body, headers));
        } else {
            check_row(row, c.request(row.method, row.target, row.body, headers));
        }
    }
}

std::vector<std::string> prefixes_in(const json::value& stats) {
    std::vector<std::string> out;
    for (const auto& p : stats.at("prefixes").as_array())
        out.emplace_back(p.at("prefix").as_string());
    return out;
}

std::vector<std::string> template_prefixes(const json::value& list) {
    std::vector<std::string> out;
    for (const auto& t : list.at("templates").as_array()) {
        std::string p(t.at("prefix").as_string());
        if (std::find(out.begin(), out.end(), p) == out.end())
            out.push_back(p);
    }
    return out;
}

} // namespace

TEST_CASE("authorisation matrix: every role on every route family") {
    MatrixNode n;
    using enum Role;
    const std::vector<int> pub{1}, all{1, 2001}, none{};
    const auto bad401h = H(S::unauthorized, 402);
    const auto bad401n = N(S::unauthorized, "unauthorized");
    const auto forbidden = N(S::forbidden, "forbidden");
    const std::string h8 = "/api/handles/88.118.8/R1", h9 = "/api/handles/88.118.9/R1",
                      h10 = "/api/handles/88.118.10/R1";
    const std::string suspend_path = "/api/v1/prefixes/88.118.9/suspend",
                      resume_path = "/api/v1/prefixes/88.118.9/resume";
    const std::string new_prefix = R"({"parent":"88.118",)" + std::string(kEnterprise) + "}";
    const auto only = [](std::vector<std::string> expected) {
        return [expected](const json::value& stats) { CHECK(prefixes_in(stats) == expected); };
    };
    const auto templates_of = [](std::vector<std::string> expected) {
        return [expected](const json::value& list) { CHECK(template_prefixes(list) == expected); };
    };

    const std::vector<Row> rows = {
        // ---- GET /api/handles/{h}: public for all, private per docs/data-model.md#values ----
        {anonymous, V::get, h8, {}, H(S::ok, 1, pub)},
        {bad_key, V::get, h8, {}, bad401h},
        {bad_password, V::get, h8, {}, bad401h},
        {reader, V::get, h8, {}, H(S::ok, 1, all)},      // granted prefix
        {reader, V::get, h9, {}, H(S::ok, 1, pub)},      // not granted
        {steel, V::get, h8, {}, H(S::ok, 1, all)},       // own prefix
        {steel_token, V::get, h8, {}, H(S::ok, 1, all)}, // the same with a login token
        {steel, V::get, h9, {}, H(S::ok, 1, pub)},       // another enterprise's prefix
        {frozen, V::get, h10, {}, H(S::ok, 1, all)},     // own suspended prefix: reads go on
        {frozen, V::get, h8, {}, H(S::ok, 1, pub)},
        {admin, V::get, h9, {}, H(S::ok, 1, all)},
        {admin, V::get, h10, {}, H(S::ok, 1, all)},
        // type/index filters never reveal a private value
        {anonymous, V::get, h8 + "?type=price", {}, H(S::ok, 1, none)},
        {anonymous, V::get, h8 + "?index=2001&index=1", {}, H(S::ok, 1, pub)},
        {steel, V::get, h9 + "?type=price&type=URL", {}, H(S::ok, 1, pub)},
        {reader, V::get, h8 + "?type=price", {}, H(S::ok, 1, std::vector<int>{2001})},
        {admin, V::get, h9 + "?index=2001", {}, H(S::ok, 1, std::vector<int>{2001})},
        {anonymous, V::get, "/api/handles/88.118.8/nope", {}, H(S::not_found, 100)},
        {bad_key, V::get, "/api/handles/88.118.8/nope", {}, bad401h},

        // ---- PUT /api/handles/{h} ----
        {anonymous, V::put, "/api/handles/88.118.8/P1", kValue, H(S::unauthorized, 402)},
        {bad_key, V::put, "/api/handles/88.118.8/P1", kValue, bad401h},
        {bad_password, V::put, "/api/handles/88.118.8/P1", kValue, bad401h},
        {reader, V::put, "/api/handles/88.118.8/P1", kValue, H(S::forbidden, 401)},
        {steel, V::put, "/api/handles/88.118.9/P1", kValue, H(S::forbidden, 401)},
        {steel, V::put, "/api/handles/88.118/P1", kValue, H(S::forbidden, 401)}, // node prefix
        {frozen, V::put, "/api/handles/88.118.10/P1", kValue, H(S::forbidden, 400)},
        {frozen, V::put, "/api/handles/88.118.10/R1?index=1", kValue, H(S::forbidden, 400)},
        {steel, V::put, "/api/handles/88.118.8/P1", kValue, H(S::created, 1)},
        {steel_token, V::put, "/api/handles/88.118.8/P2", kValue, H(S::created, 1)},
        {steel, V::put, "/api/handles/88.118.8/P1?index=1", kValue, H(S::ok, 1)},
        {steel, V::put, "/api/handles/88.118.8/P1?overwrite=false", kValue, H(S::conflict, 101)},
        {reader, V::put, "/api/handles/88.118.8/P1?index=1", kValue, H(S::forbidden, 401)},
        {admin, V::put, "/api/handles/88.118.9/P1", kValue, H(S::created, 1)},
        {admin, V::put, "/api/handles/88.118/P1", kValue, H(S::created, 1)},
        {admin, V::put, "/api/handles/88.118.10/P1", kValue, H(S::forbidden, 400)}, // suspended

        // ---- DELETE /api/handles/{h} (whole record, or ?index=) ----
        {anonymous, V::delete_, "/api/handles/88.118.8/D1", {}, H(S::unauthorized, 402)},
        {bad_key, V::delete_, "/api/handles/88.118.8/D1", {}, bad401h},
        {bad_password, V::delete_, "/api/handles/88.118.8/D1", {}, bad401h},
        {reader, V::delete_, "/api/handles/88.118.8/D1", {}, H(S::forbidden, 401)},
        {steel, V::delete_, "/api/handles/88.118.9/D1", {}, H(S::forbidden, 401)},
        {frozen, V::delete_, "/api/handles/88.118.10/D1", {}, H(S::forbidden, 400)},
        {frozen, V::delete_, "/api/handles/88.118.10/D2?index=2001", {}, H(S::forbidden, 400)},
        {steel, V::delete_, "/api/handles/88.118.8/D1", {}, H(S::ok, 1)},
        {steel, V::delete_, "/api/handles/88.118.8/D2?index=2001", {}, H(S::ok, 1)},
        {steel, V::get, "/api/handles/88.118.8/D2", {}, H(S::ok, 1, pub)}, // only 2001 went
        {admin, V::delete_, "/api/handles/88.118.9/D1", {}, H(S::ok, 1)},
        {admin, V::delete_, "/api/handles/88.118.9/D1", {}, H(S::not_found, 100)},

        // ---- listing (authenticated; readable prefixes only) ----
        {anonymous, V::get, "/api/handles?prefix=88.118.8", {}, H(S::unauthorized, 402)},
        {bad_key, V::get, "/api/handles?prefix=88.118.8", {}, bad401h},
        {bad_password, V::get, "/api/handles?prefix=88.118.8", {}, bad401h},
        {reader, V::get, "/api/handles?prefix=88.118.8", {}, H(S::ok, 1)},
        {reader, V::get, "/api/handles?prefix=88.118.9", {}, H(S::forbidden, 400)},
        {steel, V::get, "/api/handles?prefix=88.118.8", {}, H(S::ok, 1)},
        {steel, V::get, "/api/handles?prefix=88.118.9", {}, H(S::forbidden, 400)},
        {frozen, V::get, "/api/handles?prefix=88.118.10", {}, H(S::ok, 1)},
        {admin, V::get, "/api/handles?prefix=88.118.9", {}, H(S::ok, 1)},

        // ---- GET /api/prefixes (public; bad credentials are still refused) ----
        {anonymous, V::get, "/api/prefixes", {}, H(S::ok, 1)},
        {bad_key, V::get, "/api/prefixes", {}, bad401h},
        {bad_password, V::get, "/api/prefixes", {}, bad401h},
        {reader, V::get, "/api/prefixes", {}, H(S::ok, 1)},
        {steel, V::get, "/api/prefixes", {}, H(S::ok, 1)},
        {admin, V::get, "/api/prefixes", {}, H(S::ok, 1)},

        // ---- admin routes (docs/api.md#prefixes): prefixes ----
        {anonymous, V::post, "/api/v1/prefixes", new_prefix, bad401n},
        {bad_key, V::post, "/api/v1/prefixes", new_prefix, bad401n},
        {bad_password, V::post, "/api/v1/prefixes", new_prefix, bad401n},
        {reader, V::post, "/api/v1/prefixes", new_prefix, forbidden},
        {steel, V::post, "/api/v1/prefixes", new_prefix, forbidden},
        {frozen, V::post, "/api/v1/prefixes", new_prefix, forbidden},
        {admin, V::post, "/api/v1/prefixes", new_prefix, N(S::created)},
        {anonymous, V::get, "/api/v1/prefixes", {}, bad401n},
        {bad_key, V::get, "/api/v1/prefixes", {}, bad401n},
        {reader, V::get, "/api/v1/prefixes", {}, forbidden},
        {steel, V::get, "/api/v1/prefixes", {}, forbidden},
        {admin, V::get, "/api/v1/prefixes", {}, N(S::ok)},
        {anonymous, V::get, "/api/v1/prefixes/88.118.8", {}, bad401n},
        {bad_password, V::get, "/api/v1/prefixes/88.118.8", {}, bad401n},
        {reader, V::get, "/api/v1/prefixes/88.118.8", {}, forbidden},
        {steel, V::get, "/api/v1/prefixes/88.118.8", {}, forbidden}, // even its own
        {admin, V::get, "/api/v1/prefixes/88.118.8", {}, N(S::ok)},
        {anonymous, V::post, suspend_path, {}, bad401n},
        {bad_key, V::post, suspend_path, {}, bad401n},
        {reader, V::post, suspend_path, {}, forbidden},
        {steel, V::post, suspend_path, {}, forbidden},
        {frozen, V::post, "/api/v1/prefixes/88.118.10/resume", {}, forbidden}, // not its own
        {admin, V::post, suspend_path, {}, N(S::ok)},
        {admin, V::put, "/api/handles/88.118.9/S1", kValue, H(S::forbidden, 400)},
        {anonymous, V::post, resume_path, {}, bad401n},
        {bad_password, V::post, resume_path, {}, bad401n},
        {reader, V::post, resume_path, {}, forbidden},
        {steel, V::post, resume_path, {}, forbidden},
        {admin, V::post, resume_path, {}, N(S::ok)},
        {admin, V::put, "/api/handles/88.118.9/S1", kValue, H(S::created, 1)},

        // ---- admin routes: accounts, passwords, keys ----
        {anonymous, V::post, "/api/v1/accounts", R"({"username":"new1","role":"reader"})", bad401n},
        {bad_key, V::post, "/api/v1/accounts", R"({"username":"new1","role":"reader"})", bad401n},
        {reader, V::post, "/api/v1/accounts", R"({"username":"new1","role":"reader"})", forbidden},
        {steel, V::post, "/api/v1/accounts", R"({"username":"new1","role":"admin"})", forbidden},
        {admin, V::post, "/api/v1/accounts", R"({"username":"new1","role":"reader"})",
         N(S::created)},
        {anonymous, V::get, "/api/v1/accounts", {}, bad401n},
        {bad_password, V::get, "/api/v1/accounts", {}, bad401n},
        {reader, V::get, "/api/v1/accounts", {}, forbidden},
        {steel, V::get, "/api/v1/accounts", {}, forbidden},
        {admin, V::get, "/api/v1/accounts", {}, N(S::ok)},
        // Passwords and keys: an admin for any account, an account for itself
        // (docs/api.md#authorisation-matrix).
        {anonymous, V::put, "/api/v1/accounts/pharma/password", R"({"password":"pharma-new-1"})",
         bad401n},
        {bad_key, V::put, "/api/v1/accounts/pharma/password", R"({"password":"pharma-new-1"})",
         bad401n},
        {reader, V::put, "/api/v1/accounts/pharma/password", R"({"password":"pharma-new-1"})",
         forbidden},
        {steel, V::put, "/api/v1/accounts/pharma/password", R"({"password":"pharma-new-1"})",
         forbidden},
        {steel, V::put, "/api/v1/accounts/admin/password", R"({"password":"admin-new-123"})",
         forbidden},
        {admin, V::put, "/api/v1/accounts/pharma/password", R"({"password":"pharma-new-1"})",
         N(S::ok)},
        // By API key or token a non-admin needs its current password (frozen has none).
        {frozen, V::put, "/api/v1/accounts/frozen/password", R"({"password":"frozen-new-1"})",
         N(S::forbidden, "current_password_required")},
        {admin, V::put, "/api/v1/accounts/frozen/password", R"({"password":"frozen-new-1"})",
         N(S::ok)},
        {anonymous, V::post, "/api/v1/accounts/pharma/keys", {}, bad401n},
        {bad_password, V::post, "/api/v1/accounts/pharma/keys", {}, bad401n},
        {reader, V::post, "/api/v1/accounts/pharma/keys", {}, forbidden},
        {steel, V::post, "/api/v1/accounts/pharma/keys", {}, forbidden},
        {steel, V::post, "/api/v1/accounts/admin/keys", {}, forbidden},
        {reader,
         V::post,
         "/api/v1/accounts/auditor/keys",
         {},
         N(S::forbidden, "current_password_required")},
        {steel_token,
         V::post,
         "/api/v1/accounts/steel/keys",
         {},
         N(S::forbidden, "current_password_required")},
        {steel_token, V::post, "/api/v1/accounts/steel/keys",
         R"({"current_password":")" + n.steel_password + R"("})", N(S::created)},
        {admin, V::post, "/api/v1/accounts/pharma/keys", {}, N(S::created)},
        {anonymous, V::delete_, "/api/v1/accounts/pharma/keys/" + n.pharma_spare_key, {}, bad401n},
        {bad_key, V::delete_, "/api/v1/accounts/pharma/keys/" + n.pharma_spare_key, {}, bad401n},
        {reader, V::delete_, "/api/v1/accounts/pharma/keys/" + n.pharma_spare_key, {}, forbidden},
        {steel, V::delete_, "/api/v1/accounts/pharma/keys/" + n.pharma_spare_key, {}, forbidden},
        {steel,
         V::delete_,
         "/api/v1/accounts/steel/keys/" + n.pharma_spare_key,
         {},
         N(S::not_found, "not_found")}, // not steel's key
        {steel,
         V::delete_,
         "/api/v1/accounts/steel/keys/" + n.steel_spare_key,
         {},
         plain(S::no_content)},
        {admin,
         V::delete_,
         "/api/v1/accounts/pharma/keys/" + n.pharma_spare_key,
         {},
         plain(S::no_content)},
        {anonymous, V::delete_, "/api/v1/accounts/pharma/tokens", {}, bad401n},
        {reader, V::delete_, "/api/v1/accounts/pharma/tokens", {}, forbidden},
        {frozen, V::delete_, "/api/v1/accounts/frozen/tokens", {}, plain(S::no_content)},
        {admin, V::delete_, "/api/v1/accounts/pharma/tokens", {}, plain(S::no_content)},
        // Disable, enable, delete an account and take a prefix from it: admins only (the effects
        // are in integration_accounts_test).
        {anonymous, V::post, "/api/v1/accounts/pharma/disable", {}, bad401n},
        {bad_key, V::post, "/api/v1/accounts/pharma/disable", {}, bad401n},
        {reader, V::post, "/api/v1/accounts/pharma/disable", {}, forbidden},
        {steel, V::post, "/api/v1/accounts/pharma/disable", {}, forbidden},
        {steel_token, V::post, "/api/v1/accounts/steel/disable", {}, forbidden},
        {steel, V::post, "/api/v1/accounts/steel/enable", {}, forbidden},
        {anonymous, V::delete_, "/api/v1/accounts/pharma", {}, bad401n},
        {reader, V::delete_, "/api/v1/accounts/pharma", {}, forbidden},
        {steel, V::delete_, "/api/v1/accounts/steel", {}, forbidden},
        {anonymous, V::delete_, "/api/v1/accounts/steel/prefixes/88.118.8", {}, bad401n},
        {frozen, V::delete_, "/api/v1/accounts/frozen/prefixes/88.118.10", {}, forbidden},
        {steel, V::delete_, "/api/v1/accounts/steel/prefixes/88.118.8", {}, forbidden},
        {admin, V::post, "/api/v1/accounts/admin/disable", {}, N(S::conflict, "own_account")},
        {admin, V::delete_, "/api/v1/accounts/admin", {}, N(S::conflict, "own_account")},

        // ---- POST /api/v1/bulk ----
        {anonymous, V::post, "/api/v1/bulk", bulk_line("88.118.8/B1"), bad401n},
        {bad_key, V::post, "/api/v1/bulk", bulk_line("88.118.8/B1"), bad401n},
        {bad_password, V::post, "/api/v1/bulk", bulk_line("88.118.8/B1"), bad401n},
        {reader, V::post, "/api/v1/bulk", bulk_line("88.118.8/B1"), forbidden},
        {steel, V::post, "/api/v1/bulk", bulk_line("88.118.9/B1"), B("forbidden")},
        {frozen, V::post, "/api/v1/bulk", bulk_line("88.118.10/B1"), B("prefix_suspended")},
        {steel, V::post, "/api/v1/bulk", bulk_line("88.118.8/B1"), B("created")},
        {admin, V::post, "/api/v1/bulk", bulk_line("88.118.9/B1"), B("created")},

        // ---- POST /api/v1/resolve: same visibility as GET ----
        {anonymous, V::post, "/api/v1/resolve", R"(["88.118.8/R1"])", R(1, pub)},
        {bad_key, V::post, "/api/v1/resolve", R"(["88.118.8/R1"])", bad401n},
        {bad_password, V::post, "/api/v1/resolve", R"(["88.118.8/R1"])", bad401n},
        {reader, V::post, "/api/v1/resolve", R"(["88.118.8/R1"])", R(1, all)},
        {reader, V::post, "/api/v1/resolve", R"(["88.118.9/R1"])", R(1, pub)},
        {steel, V::post, "/api/v1/resolve", R"(["88.118.8/R1"])", R(1, all)},
        {steel, V::post, "/api/v1/resolve", R"(["88.118.9/R1"])", R(1, pub)},
        {frozen, V::post, "/api/v1/resolve", R"(["88.118.10/R1"])", R(1, all)},
        {admin, V::post, "/api/v1/resolve", R"(["88.118.9/R1"])", R(1, all)},

        // ---- GET /api/v1/stats: authenticated; non-admins see their own prefixes only ----
        {anonymous, V::get, "/api/v1/stats", {}, bad401n},
        {bad_key, V::get, "/api/v1/stats", {}, bad401n},
        {reader, V::get, "/api/v1/stats", {}, with(N(S::ok), only({"88.118.8"}))},
        {steel, V::get, "/api/v1/stats", {}, with(N(S::ok), only({"88.118.8"}))},
        {frozen, V::get, "/api/v1/stats", {}, with(N(S::ok), only({"88.118.10"}))},
        {admin, V::get, "/api/v1/stats", {}, N(S::ok)},

        // ---- templates (native) ----
        {anonymous, V::get, "/api/v1/templates", {}, bad401n},
        {bad_key, V::get, "/api/v1/templates", {}, bad401n},
        {reader, V::get, "/api/v1/templates", {}, with(N(S::ok), templates_of({"88.118.8"}))},
        {steel, V::get, "/api/v1/templates", {}, with(N(S::ok), templates_of({"88.118.8"}))},
        {admin,
         V::get,
         "/api/v1/templates",
         {},
         with(N(S::ok), templates_of({"88.118.10", "88.118.8", "88.118.9"}))},
        {anonymous, V::get, "/api/v1/templates/88.118.8/1.0", {}, bad401n},
        {bad_password, V::get, "/api/v1/templates/88.118.8/1.0", {}, bad401n},
        {reader, V::get, "/api/v1/templates/88.118.8/1.0", {}, N(S::ok)},
        {reader, V::get, "/api/v1/templates/88.118.9/1.0", {}, forbidden},
        {steel, V::get, "/api/v1/templates/88.118.8/1.0", {}, N(S::ok)},
        {steel, V::get, "/api/v1/templates/88.118.9/1.0", {}, forbidden},
        {frozen, V::get, "/api/v1/templates/88.118.10/1.0", {}, N(S::ok)},
        {admin, V::get, "/api/v1/templates/88.118.9/1.0", {}, N(S::ok)},
        {anonymous, V::post, "/api/v1/templates", template_doc("88.118.8", "2.0"), bad401n},
        {bad_key, V::post, "/api/v1/templates", template_doc("88.118.8", "2.0"), bad401n},
        {reader, V::post, "/api/v1/templates", template_doc("88.118.8", "2.0"), forbidden},
        {steel, V::post, "/api/v1/templates", template_doc("88.118.9", "2.0"), forbidden},
        {frozen, V::post, "/api/v1/templates", template_doc("88.118.10", "2.0"), forbidden},
        {steel, V::post, "/api/v1/templates", template_doc("88.118.8", "2.0"), N(S::created)},
        {admin, V::post, "/api/v1/templates", template_doc("88.118.9", "2.0"), N(S::created)},
        {anonymous, V::put, "/api/v1/templates/88.118.8/1.0", template_doc("88.118.8", "1.0"),
         bad401n},
        {reader, V::put, "/api/v1/templates/88.118.8/1.0", template_doc("88.118.8", "1.0"),
         forbidden},
        {steel, V::put, "/api/v1/templates/88.118.9/1.0", template_doc("88.118.9", "1.0"),
         forbidden},
        {frozen, V::put, "/api/v1/templates/88.118.10/1.0", template_doc("88.118.10", "1.0"),
         forbidden},
        {steel, V::put, "/api/v1/templates/88.118.8/1.0", template_doc("88.118.8", "1.0"),
         N(S::ok)},
        {admin, V::put, "/api/v1/templates/88.118.9/1.0", template_doc("88.118.9", "1.0"),
         N(S::ok)},
        {anonymous, V::delete_, "/api/v1/templates/88.118.8/del-1", {}, bad401n},
        {bad_key, V::delete_, "/api/v1/templates/88.118.8/del-1", {}, bad401n},
        {reader, V::delete_, "/api/v1/templates/88.118.8/del-1", {}, forbidden},
        {steel, V::delete_, "/api/v1/templates/88.118.9/del-1", {}, forbidden},
        {frozen, V::delete_, "/api/v1/templates/88.118.10/del-1", {}, forbidden},
        {steel, V::delete_, "/api/v1/templates/88.118.8/del-1", {}, plain(S::no_content)},
        {admin, V::delete_, "/api/v1/templates/88.118.9/del-1", {}, plain(S::no_content)},

        // ---- SNMS: HTTP 200, status 1 / -1 not logged in / -3 no permission ----
        // (docs/api.md#snms-compatible-api)
        {anonymous, V::post, "/identity/token",
         R"({"username":"steel","password":")" + n.steel_password + R"("})", E(1)},
        {anonymous, V::post, "/identity/token",
         R"({"username":"victim7","password":"wrong-password"})", E(-2, "用户名或密码错误")},
        {anonymous, V::get, "/identityv2/data/detail?handle=88.118.8/R1", {}, E(1, {}, pub)},
        {bad_key, V::get, "/identityv2/data/detail?handle=88.118.8/R1", {}, E(-1)},
        {bad_password, V::get, "/identityv2/data/detail?handle=88.118.8/R1", {}, E(-1)},
        {reader, V::get, "/identityv2/data/detail?handle=88.118.8/R1", {}, E(1, {}, all)},
        {reader, V::get, "/identityv2/data/detail?handle=88.118.9/R1", {}, E(1, {}, pub)},
        {steel_token, V::get, "/identityv2/data/detail?handle=88.118.8/R1", {}, E(1, {}, all)},
        {steel_token, V::get, "/identityv2/data/detail?handle=88.118.9/R1", {}, E(1, {}, pub)},
        {frozen, V::get, "/identityv2/data/detail?handle=88.118.10/R1", {}, E(1, {}, all)},
        {admin, V::get, "/identityv2/data/detail?handle=88.118.9/R1", {}, E(1, {}, all)},
        {anonymous, V::post, "/identityv2/data", snms_record("88.118.8/N1"), E(-1)},
        {bad_key, V::post, "/identityv2/data", snms_record("88.118.8/N1"), E(-1)},
        {bad_password, V::post, "/identityv2/data", snms_record("88.118.8/N1"), E(-1)},
        {reader, V::post, "/identityv2/data", snms_record("88.118.8/N1"), E(-3)},
        {steel_token, V::post, "/identityv2/data", snms_record("88.118.9/N1"), E(-3)},
        {frozen, V::post, "/identityv2/data", snms_record("88.118.10/N1"), E(-3)},
        {steel_token, V::post, "/identityv2/data", snms_record("88.118.8/N1"), E(1)},
        {admin, V::post, "/identityv2/data", snms_record("88.118.9/N1"), E(1)},
        {anonymous, V::post, "/identityv2/data/batchCreate", "[" + snms_record("88.118.8/N2") + "]",
         E(-1)},
        {bad_key, V::post, "/identityv2/data/batchCreate", "[" + snms_record("88.118.8/N2") + "]",
         E(-1)},
        // A batch answers per record: status 1 overall, the refusal in data[0].msg.
        {reader, V::post, "/identityv2/data/batchCreate", "[" + snms_record("88.118.8/N2") + "]",
         E(1, "没有权限")},
        {steel_token, V::post, "/identityv2/data/batchCreate",
         "[" + snms_record("88.118.9/N2") + "]", E(1, "没有权限")},
        {frozen, V::post, "/identityv2/data/batchCreate", "[" + snms_record("88.118.10/N2") + "]",
         E(1, "已停用")},
        {steel_token, V::post, "/identityv2/data/batchCreate",
         "[" + snms_record("88.118.8/N2") + "]", E(1, "成功")},
        {admin, V::post, "/identityv2/data/batchCreate", "[" + snms_record("88.118.9/N2") + "]",
         E(1, "成功")},
        {anonymous, V::get, "/snms/api/v5/template?prefix=88.118.8&version=1.0", {}, E(-1)},
        {bad_key, V::get, "/snms/api/v5/template?prefix=88.118.8&version=1.0", {}, E(-1)},
        {reader, V::get, "/snms/api/v5/template?prefix=88.118.8&version=1.0", {}, E(1)},
        {reader, V::get, "/snms/api/v5/template?prefix=88.118.9&version=1.0", {}, E(-3)},
        {steel_token, V::get, "/snms/api/v5/template?prefix=88.118.9&version=1.0", {}, E(-3)},
        {admin, V::get, "/snms/api/v5/template?prefix=88.118.9&version=1.0", {}, E(1)},
        {reader, V::post, "/snms/api/v5/template", template_doc("88.118.8", "3.0"), E(-3)},
        {frozen, V::post, "/snms/api/v5/template", template_doc("88.118.10", "3.0"), E(-3)},
        {steel_token, V::post, "/snms/api/v5/template", template_doc("88.118.8", "3.0"), E(1)},

        // ---- metrics live on the ops listener only, never on the public HTTPS port ----
        {anonymous, V::get, "/metrics", {}, H(S::not_found, 4)},
        {admin, V::get, "/metrics", {}, H(S::not_found, 4)},
    };

    auto c = n.client();
    run_rows(n, *c, rows);

    // Nothing the refused rows tried to write exists (the allowed ones do).
    CHECK(c->request(V::get, "/api/handles/88.118.10/P1").result() == S::not_found);
    CHECK(c->request(V::get, "/api/handles/88.118.9/B1").result() == S::ok);
    CHECK(c->request(V::get, "/api/handles/88.118.10/B1").result() == S::not_found);
    CHECK(c->request(V::get, "/api/handles/88.118.8/N1").result() == S::ok);
    CHECK(c->request(V::get, "/api/handles/88.118.10/N1").result() == S::not_found);
    CHECK(c->request(V::get, "/api/handles/88.118.10/D1").result() == S::ok);
    CHECK(c->request(V::get, "/api/handles/88.118.9/D2").result() == S::ok);
    CHECK(c->request(V::get, "/api/v1/templates/88.118.10/2.0", {}, {{"Authorization", n.admin}})
              .result() == S::not_found);
    CHECK(c->request(V::get, "/api/v1/templates/88.118.10/del-1", {}, {{"Authorization", n.admin}})
              .result() == S::ok);
    // The password the admin gave frozen works.
    CHECK(c->request(V::get, "/api/prefixes", {},
                     {{"Authorization", basic_authorization("frozen", "frozen-new-1")}})
              .result() == S::ok);

    // The ops listener: /metrics for whoever can reach it (loopback by default), no credentials.
    const Response metrics = http_get(n.node.ops_port(), "/metrics");
    CHECK(metrics.result() == S::ok);
    CHECK(metrics.body().find("idnode_http_requests_total") != std::string::npos);
    CHECK(n.node.stop() == 0);
}

TEST_CASE("authorisation matrix: a prefix nested under another enterprise's belongs to its own "
          "owner") {
    // Rights follow the allocated prefix a handle belongs to (the longest one containing it),
    // never string nesting: 88.118.8.5 and 88.118.10.5 are allocated to the account `nested`, so
    // the owners of 88.118.8 (steel) and of the suspended 88.118.10 (frozen), and the readers
    // granted those, have no more rights there than on any other enterprise's prefix.
    MatrixNode n;
    using enum Role;
    auto c = n.client();
    const std::vector<std::pair<std::string, std::string>> as_admin{{"Authorization", n.admin}};
    auto ok = [&](V method, const std::string& target, const std::string& body, S expected,
                  const std::string& auth) {
        auto r = c->request(method, target, body, {{"Authorization", auth}});
        REQUIRE_MESSAGE(r.result() == expected, target, " ", r.body());
        return r;
    };
    for (const char* p : {"88.118.8.5", "88.118.10.5"})
        ok(V::post, "/api/v1/prefixes",
           std::string(R"({"prefix":")") + p + R"(",)" + kEnterprise + "}", S::created, n.admin);
    ok(V::post, "/api/v1/accounts",
       R"({"username":"nested","role":"enterprise","prefixes":["88.118.8.5","88.118.10.5"],)"
       R"("password":"nested-secret-1"})",
       S::created, n.admin);
    ok(V::post, "/api/v1/accounts",
       R"({"username":"auditor10","role":"reader","prefixes":["88.118.10"]})", S::created, n.admin);
    auto key = [&](const std::string& user) {
        auto r = ok(V::post, "/api/v1/accounts/" + user + "/keys", {}, S::created, n.admin);
        return "Bearer " + std::string(parse(r.body()).at("key").as_string());
    };
    n.nested = key("nested");
    n.reader10 = key("auditor10");
    for (const char* p : {"88.118.8.5", "88.118.10.5"}) {
        for (const char* s : {"R1", "D1"})
            ok(V::put, std::string("/api/handles/") + p + "/" + s, kRecord, S::created, n.nested);
        ok(V::post, "/api/v1/templates", template_doc(p, "1.0"), S::created, n.nested);
    }
    // An identifier under an unallocated prefix below 88.118.8 (as an offline load may leave)
    // still belongs to 88.118.8, whose owner reads it whole.
    ok(V::put, "/api/handles/88.118.8/R1?index=1", kValue, S::ok, n.steel);

    const std::vector<int> pub{1}, all{1, 2001};
    const std::string h85 = "/api/handles/88.118.8.5/R1", h105 = "/api/handles/88.118.10.5/R1";
    const auto forbidden = N(S::forbidden, "forbidden");
    const auto only = [](std::vector<std::string> expected) {
        return [expected](const json::value& stats) { CHECK(prefixes_in(stats) == expected); };
    };
    const auto templates_of = [](std::vector<std::string> expected) {
        return [expected](const json::value& list) { CHECK(template_prefixes(list) == expected); };
    };

    const std::vector<Row> rows = {
        // Handle REST reads: private values only for the owner, its readers and admins.
        {steel, V::get, h85, {}, H(S::ok, 1, pub)},
        {reader, V::get, h85, {}, H(S::ok, 1, pub)},
        {frozen, V::get, h105, {}, H(S::ok, 1, pub)},
        {reader10, V::get, h105, {}, H(S::ok, 1, pub)},
        {reader10, V::get, "/api/handles/88.118.10/R1", {}, H(S::ok, 1, all)},
        {nested, V::get, h85, {}, H(S::ok, 1, all)},
        {nested, V::get, h105, {}, H(S::ok, 1, all)},
        {nested, V::get, "/api/handles/88.118.8/R1", {}, H(S::ok, 1, pub)},
        {admin, V::get, h105, {}, H(S::ok, 1, all)},
        // Writes: the enclosing prefix's owner is refused, suspended or not.
        {steel, V::put, "/api/handles/88.118.8.5/P1", kValue, H(S::forbidden, 401)},
        {frozen, V::put, "/api/handles/88.118.10.5/P1", kValue, H(S::forbidden, 401)},
        {steel, V::put, "/api/handles/88.118.8.5/R1?index=1", kValue, H(S::forbidden, 401)},
        {steel, V::delete_, "/api/handles/88.118.8.5/D1", {}, H(S::forbidden, 401)},
        {frozen, V::delete_, "/api/handles/88.118.10.5/D1", {}, H(S::forbidden, 401)},
        {steel, V::delete_, "/api/handles/88.118.8.5/R1?index=2001", {}, H(S::forbidden, 401)},
        {nested, V::put, "/api/handles/88.118.8/P1", kValue, H(S::forbidden, 401)},
        {nested, V::put, "/api/handles/88.118.10.5/P1", kValue, H(S::created, 1)},
        {admin, V::put, "/api/handles/88.118.8.5/P2", kValue, H(S::created, 1)},
        // Listing.
        {steel, V::get, "/api/handles?prefix=88.118.8.5", {}, H(S::forbidden, 400)},
        {reader, V::get, "/api/handles?prefix=88.118.8.5", {}, H(S::forbidden, 400)},
        {frozen, V::get, "/api/handles?prefix=88.118.10.5", {}, H(S::forbidden, 400)},
        {nested, V::get, "/api/handles?prefix=88.118.8.5", {}, H(S::ok, 1)},
        // Bulk.
        {steel, V::post, "/api/v1/bulk", bulk_line("88.118.8.5/B1"), B("forbidden")},
        {frozen, V::post, "/api/v1/bulk", bulk_line("88.118.10.5/B1"), B("forbidden")},
        {nested, V::post, "/api/v1/bulk", bulk_line("88.118.8.5/B1"), B("created")},
        // Batch resolve.
        {steel, V::post, "/api/v1/resolve", R"(["88.118.8.5/R1"])", R(1, pub)},
        {reader10, V::post, "/api/v1/resolve", R"(["88.118.10.5/R1"])", R(1, pub)},
        {nested, V::post, "/api/v1/resolve", R"(["88.118.10.5/R1"])", R(1, all)},
        // Stats: own prefixes only.
        {steel, V::get, "/api/v1/stats", {}, with(N(S::ok), only({"88.118.8"}))},
        {nested, V::get, "/api/v1/stats", {}, with(N(S::ok), only({"88.118.10.5", "88.118.8.5"}))},
        // Templates (native and SNMS).
        {steel, V::get, "/api/v1/templates", {}, with(N(S::ok), templates_of({"88.118.8"}))},
        {reader10, V::get, "/api/v1/templates", {}, with(N(S::ok), templates_of({"88.118.10"}))},
        {nested,
         V::get,
         "/api/v1/templates",
         {},
         with(N(S::ok), templates_of({"88.118.10.5", "88.118.8.5"}))},
        {steel, V::get, "/api/v1/templates/88.118.8.5/1.0", {}, forbidden},
        {steel, V::post, "/api/v1/templates", template_doc("88.118.8.5", "2.0"), forbidden},
        {frozen, V::post, "/api/v1/templates", template_doc("88.118.10.5", "2.0"), forbidden},
        {steel, V::put, "/api/v1/templates/88.118.8.5/1.0", template_doc("88.118.8.5", "1.0"),
         forbidden},
        {steel, V::delete_, "/api/v1/templates/88.118.8.5/1.0", {}, forbidden},
        {steel_token, V::get, "/snms/api/v5/template?prefix=88.118.8.5&version=1.0", {}, E(-3)},
        {steel_token, V::post, "/snms/api/v5/template", template_doc("88.118.8.5", "3.0"), E(-3)},
        // SNMS identifiers.
        {steel_token, V::get, "/identityv2/data/detail?handle=88.118.8.5/R1", {}, E(1, {}, pub)},
        {reader10, V::get, "/identityv2/data/detail?handle=88.118.10.5/R1", {}, E(1, {}, pub)},
        {nested, V::get, "/identityv2/data/detail?handle=88.118.8.5/R1", {}, E(1, {}, all)},
        {steel_token, V::post, "/identityv2/data", snms_record("88.118.8.5/N1"), E(-3)},
        {frozen, V::post, "/identityv2/data", snms_record("88.118.10.5/N1"), E(-3)},
        {steel_token, V::post, "/identityv2/data/batchCreate",
         "[" + snms_record("88.118.8.5/N2") + "]", E(1, "没有权限")},
        {frozen, V::delete_, "/identityv2/data", R"({"handle":"88.118.10.5/D1"})", E(-3)},
    };
    run_rows(n, *c, rows);

    // Nothing the refused rows tried exists; the owner's and the admin's writes do.
    for (const char* h : {"88.118.8.5/P1", "88.118.8.5/B1", "88.118.8.5/N1", "88.118.8.5/N2",
                          "88.118.10.5/N1", "88.118.10.5/B1"}) {
        CAPTURE(h);
        const bool expected = std::string_view(h) == "88.118.8.5/B1";
        CHECK((c->request(V::get, std::string("/api/handles/") + h).result() == S::ok) == expected);
    }
    CHECK(c->request(V::get, "/api/handles/88.118.8.5/D1").result() == S::ok);
    CHECK(c->request(V::get, "/api/handles/88.118.10.5/D1").result() == S::ok);
    CHECK(c->request(V::get, "/api/handles/88.118.10.5/P1").result() == S::ok);
    CHECK(c->request(V::get, "/api/v1/templates/88.118.8.5/2.0", {}, as_admin).result() ==
          S::not_found);
    auto r1 = parse(c->request(V::get, h85, {}, as_admin).body());
    CHECK(r1.at("values").as_array().size() == 2); // index 2001 was not deleted

    // The HTML page for browsers shows private values only to those who may read them.
    const auto page = [&](const std::string& auth) {
        return c->request(V::get, h85, {}, {{"Authorization", auth}, {"Accept", "text/html"}});
    };
    CHECK(page(n.steel).body().find("4120.50") == std::string::npos);
    CHECK(page(n.reader).body().find("4120.50") == std::string::npos);
    CHECK(page(n.nested).body().find("4120.50") != std::string::npos);
    CHECK(n.node.stop() == 0);
}

// ---- server-level errors: one body shape per API family ---------------------------------------

namespace {

enum class Family { handle, snms, native };

const char* family_name(Family f) {
    return f == Family::handle ? "handle" : f == Family::snms ? "snms" : "native";
}

/// The body of a server-level refusal in the family's shape: Handle {"responseCode","message"},
/// SNMS {"status","message","data"}, native {"error":{"code","message"}}.
void check_shape(const Response& r, Family family, int handle_rc, int snms_status,
                 const std::string& native_code) {
    CAPTURE(r.body());
    CHECK(r[http::field::content_type] == "application/json");
    const json::value body = parse(r.body());
    REQUIRE(body.is_object());
    const auto& o = body.as_object();
    switch (family) {
    case Family::handle:
        CHECK(o.size() == 2);
        CHECK(o.at("responseCode").as_int64() == handle_rc);
        CHECK_FALSE(o.at("message").as_string().empty());
        break;
    case Family::snms:
        CHECK(o.size() == 3);
        CHECK(o.at("status").as_int64() == snms_status);
        CHECK_FALSE(o.at("message").as_string().empty());
        CHECK(o.at("data").is_null());
        break;
    case Family::native:
        CHECK(o.size() == 1);
        CHECK(o.at("error").at("code").as_string() == native_code);
        CHECK_FALSE(o.at("error").at("message").as_string().empty());
        break;
    }
}

struct FamilyPaths {
    Family family;
    V write_method;
    std::string write_target; // a route that takes a body
    std::string unknown;      // no such route
    V wrong_method;
    std::string wrong_target; // the path exists, not for this method
};

const FamilyPaths kFamilies[] = {
    {Family::handle, V::put, "/api/handles/88.118.8/x", "/no/such/route", V::delete_,
     "/api/prefixes"},
    {Family::snms, V::post, "/identityv2/data", "/identityv2/no-such-route", V::patch,
     "/identityv2/data"},
    // (not /api/v1/resolve: that route declares a larger body bound of its own)
    {Family::native, V::post, "/api/v1/prefixes", "/api/v1/no-such-route", V::put,
     "/api/v1/resolve"},
};

} // namespace

TEST_CASE("server-level errors: 400, 404, 405, 413, 431 in the shape of each API family") {
    NodeProcess node("error-shapes");
    node.set("limits.max_header_bytes", "2048");
    node.set("limits.max_body_bytes", "1024");
    node.start();
    HttpsClient c(node.https_port(), trust(node.pki().ca_cert));
    for (const auto& f : kFamilies) {
        CAPTURE(family_name(f.family));
        c.connect();
        // 404 unknown route (RC 4 / SNMS -2 / unknown_route); the connection stays usable.
        const Response unknown = c.request(V::get, f.unknown);
        CHECK(unknown.result() == S::not_found);
        check_shape(unknown, f.family, 4, -2, "unknown_route");
        CHECK(unknown.keep_alive());
        // 405 with Allow.
        const Response wrong = c.request(f.wrong_method, f.wrong_target);
        CHECK(wrong.result() == S::method_not_allowed);
        CHECK_FALSE(wrong[http::field::allow].empty());
        check_shape(wrong, f.family, 4, -2, "method_not_allowed");
        // 413: the body is over limits.max_body_bytes; the connection is closed.
        const Response big_body = c.request(f.write_method, f.write_target, std::string(1025, 'b'));
        CHECK(big_body.result() == S::payload_too_large);
        check_shape(big_body, f.family, 4, -2, "body_too_large");
        CHECK_FALSE(big_body.keep_alive());
        CHECK(c.wait_closed(3s));
        // 431: the header is over limits.max_header_bytes.
        c.connect();
        const Response big_header =
            c.request(V::get, f.write_target, {}, {{"X-Pad", std::string(3000, 'a')}});
        CHECK(big_header.result() == S::request_header_fields_too_large);
        check_shape(big_header, f.family, 4, -2, "header_too_large");
        CHECK(c.wait_closed(3s));
        // 400: ambiguous framing (Content-Length with Transfer-Encoding).
        c.connect();
        c.write_raw(std::string(http::to_string(f.write_method)) + " " + f.write_target +
                    " HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
        const Response framing = c.read_response();
        CHECK(framing.result() == S::bad_request);
        check_shape(framing, f.family, 4, -2, "bad_request");
        CHECK(c.wait_closed(3s));
    }
    // A request line that cannot be parsed has no path, hence no family: the native shape.
    c.connect();
    c.write_raw("GET /api/handles/88.118.8/x HTTP/9.9\r\nHost: localhost\r\n\r\n");
    const Response garbage = c.read_response();
    CHECK(garbage.result() == S::bad_request);
    check_shape(garbage, Family::native, 0, 0, "bad_request");
    CHECK(node.stop() == 0);
}

TEST_CASE("429 in the shape of each API family: per-IP limit and failed-login throttling") {
    NodeProcess node("error-429");
    node.set("limits.rate_per_ip", "2"); // burst 2, one token every 500 ms
    node.start();
    HttpsClient c(node.https_port(), trust(node.pki().ca_cert));
    c.connect();
    for (const auto& f : kFamilies) {
        CAPTURE(family_name(f.family));
        std::optional<Response> refused;
        for (int i = 0; i < 10 && !refused; ++i) {
            Response r = c.request(V::get, f.unknown);
            if (r.result() == S::too_many_requests)
                refused = std::move(r);
        }
        REQUIRE(refused);
        CHECK_FALSE((*refused)[http::field::retry_after].empty());
        check_shape(*refused, f.family, 3, -2, "rate_limited");
        CHECK(refused->keep_alive());
    }
    CHECK(node.stop() == 0);

    // Failed logins: after 10 from one address the 11th is refused before it is evaluated.
    NodeProcess open_node("error-429-login");
    open_node.start();
    const std::string bad = "Bearer idn_0000000000000000_" + std::string(64, 'a');
    struct Target {
        Family family;
        std::string path;
        int source;
    } targets[] = {{Family::handle, "/api/handles?prefix=88.118.8", 2},
                   {Family::native, "/api/v1/stats", 3},
                   {Family::snms, "/identityv2/data/detail?handle=88.118.8/x", 4}};
    for (const auto& t : targets) {
        CAPTURE(family_name(t.family));
        TlsOptions tls = trust(open_node.pki().ca_cert);
        tls.source_address = "127.0.6." + std::to_string(t.source);
        HttpsClient attacker(open_node.https_port(), tls);
        attacker.connect();
        for (int i = 0; i < 10; ++i)
            attacker.request(V::get, t.path, {}, {{"Authorization", bad}});
        const Response r = attacker.request(V::get, t.path, {}, {{"Authorization", bad}});
        if (t.family == Family::snms) {
            // SNMS handlers answer HTTP 200 with the envelope
            // (docs/api.md#snms-compatible-api); -2 with the reason.
            CHECK(r.result() == S::ok);
            const auto body = parse(r.body());
            CHECK(body.at("status").as_int64() == -2);
            CHECK(std::string(body.at("message").as_string()).find("登录失败次数过多") !=
                  std::string::npos);
        } else {
            CHECK(r.result() == S::too_many_requests);
            CHECK_FALSE(r[http::field::retry_after].empty());
            check_shape(r, t.family, 3, -2, "rate_limited");
        }
    }
    CHECK(open_node.stop() == 0);
}
