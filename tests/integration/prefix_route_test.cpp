// Routes (服务寻址) against the real idnode binary (docs/api.md#enterprise-node-routes): who may
// set, show and clear a prefix's route (admin, the owning enterprise; another enterprise, a
// reader, anonymous), every malformed body, and identifier writes under a routed prefix refused
// on every front end — Handle REST, bulk, SNMS, the Handle protocol's CREATE — with nothing
// written, until the route is cleared. `idctl prefix route set|show|clear` end to end.
#include "handle_wire_client.hpp"
#include "harness.hpp"
#include "json_helpers.hpp"
#include "test_keys.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <sstream>

using namespace idnode::test;
using namespace idnode::test::handle_wire;
namespace json = boost::json;
using V = http::verb;
using S = http::status;

#ifndef IDNODE_TEST_DATA_DIR
#error "IDNODE_TEST_DATA_DIR must name tests/data"
#endif

namespace {

const std::string kRoute = "/api/v1/prefixes/88.118.9/route";

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

/// The "request" lines of one section of the Handle admin capture (tests/data/handle-admin.md).
std::vector<std::string> captured_requests(const std::string& section) {
    std::istringstream in(read_text(fs::path(IDNODE_TEST_DATA_DIR) / "handle-admin.md"));
    std::vector<std::string> out;
    std::string line, name;
    while (std::getline(in, line)) {
        if (line.rfind("## ", 0) == 0) {
            name = line.substr(3, line.find(' ', 3) - 3);
            continue;
        }
        std::istringstream words(line);
        std::string key, hex;
        if (name == section && (words >> key >> hex) && (key == "client" || key == "request"))
            out.push_back(unhex(hex));
    }
    REQUIRE_MESSAGE(!out.empty(), section);
    return out;
}

/// Prefixes 88.118.8 (steel's) and 88.118.9 (iron's); an auditor granted 88.118.9; an admin
/// "testuser" with password "testpass" (the password LOGIN of the ID-SDK capture).
struct RouteNode {
    NodeProcess node{"prefix-route"};
    std::unique_ptr<HttpsClient> c;
    std::string admin_key, admin, iron, steel, auditor;

    explicit RouteNode(std::vector<std::pair<std::string, std::string>> settings = {}) {
        auto init = run_command({IDNODE_IDCTL_BINARY, "init", "--data-dir",
                                 (node.dir() / "db").string(), "--node-prefix", "88.118"});
        REQUIRE_MESSAGE(init.exit_code == 0, init.err);
        admin_key = std::string(parse_json(init.out).at("admin_key").as_string());
        admin = "Bearer " + admin_key;
        node.set("handle.allow_password_login", "true");
        for (const auto& [key, value] : settings)
            node.set(key, value);
        node.start();
        c = std::make_unique<HttpsClient>(node.https_port(), trust(node.pki().ca_cert));
        c->connect();
        for (const char* p : {"88.118.8", "88.118.9"})
            call(
                admin, V::post, "/api/v1/prefixes",
                std::string(R"({"prefix":")") + p +
                    R"(","enterprise":{"name":"示例钢铁","credit_code":"91310000631696382C","industry":"C3130","contact":"ops@example.cn"}})",
                S::created);
        call(
            admin, V::post, "/api/v1/accounts",
            R"({"username":"iron","role":"enterprise","prefixes":["88.118.9"],"password":"iron-secret-1"})",
            S::created);
        call(admin, V::post, "/api/v1/accounts",
             R"({"username":"steel","role":"enterprise","prefixes":["88.118.8"]})", S::created);
        call(admin, V::post, "/api/v1/accounts",
             R"({"username":"auditor","role":"reader","prefixes":["88.118.9"]})", S::created);
        call(admin, V::post, "/api/v1/accounts",
             R"({"username":"testuser","role":"admin","password":"testpass"})", S::created);
        iron = key_of("iron");
        steel = key_of("steel");
        auditor = key_of("auditor");
    }

    std::string key_of(const std::string& user) {
        auto r = call(admin, V::post, "/api/v1/accounts/" + user + "/keys", {}, S::created);
        return "Bearer " + std::string(body_of(r).at("key").as_string());
    }

    Response call(const std::string& authorization, V method, const std::string& target,
                  const std::string& body, S expected) {
        std::vector<std::pair<std::string, std::string>> headers;
        if (!authorization.empty())
            headers.emplace_back("Authorization", authorization);
        auto r = c->request(method, target, body, headers);
        REQUIRE_MESSAGE(r.result() == expected, method, " ", target, " ", r.body());
        return r;
    }

    std::vector<std::string> idctl(std::vector<std::string> args) const {
        std::vector<std::string> out{IDNODE_IDCTL_BINARY,
                                     "--url",
                                     "https://localhost:" + std::to_string(node.https_port()),
                                     "--ca-file",
                                     node.pki().ca_cert.string(),
                                     "--key",
                                     admin_key};
        out.insert(out.end(), args.begin(), args.end());
        return out;
    }
};

const std::string kServers =
    R"({"servers":[{"address":"192.0.2.10","tcp":2641,"udp":2641,"https":8443},)"
    R"({"address":"2001:DB8:0::1","udp":2642}]})";

} // namespace

TEST_CASE("routes: set, show and clear by the admin and by the owning enterprise") {
    RouteNode n;
    // No route yet: 404 not_routed (the prefix exists), for the admin and for iron.
    for (const auto* who : {&n.admin, &n.iron})
        CHECK(error_code(n.call(*who, V::get, kRoute, {}, S::not_found)) == "not_routed");
    CHECK(error_code(n.call(n.admin, V::delete_, kRoute, {}, S::not_found)) == "not_routed");

    // The admin sets servers: 200 with the route as stored (the IPv6 address canonical).
    auto set = body_of(n.call(n.admin, V::put, kRoute, kServers, S::ok)).as_object();
    CHECK(set.at("prefix") == "88.118.9");
    const auto& servers = set.at("servers").as_array();
    REQUIRE(servers.size() == 2);
    CHECK(servers[0].at("address") == "192.0.2.10");
    CHECK(servers[0].at("https") == 8443);
    CHECK(servers[1].at("address") == "2001:db8::1");
    CHECK(servers[1].at("tcp") == 0);
    CHECK(servers[1].at("udp") == 2642);

    // iron reads it, with this node's own site: the Handle server it runs, on its bound ports.
    auto shown = body_of(n.call(n.iron, V::get, kRoute, {}, S::ok)).as_object();
    CHECK(shown.at("servers") == set.at("servers"));
    const auto& site = shown.at("site").as_object();
    REQUIRE(site.at("servers").as_array().size() == 1);
    const auto& self = site.at("servers").as_array()[0];
    CHECK(self.at("address") == "127.0.0.1");
    CHECK(self.at("tcp") == n.node.handle_port());
    CHECK(self.at("udp") == n.node.handle_port());
    CHECK(site.contains("serial"));
    CHECK(body_of(n.call(n.admin, V::get, "/api/v1/prefixes/88.118.9", {}, S::ok))
              .at("routed")
              .as_bool());
    CHECK_FALSE(body_of(n.call(n.admin, V::get, "/api/v1/prefixes/88.118.8", {}, S::ok))
                    .at("routed")
                    .as_bool());

    // iron replaces it with a service handle and a key of its own node.
    const auto key = make_key("RSA", 2048).public_pem;
    json::object with_key{
        {"servers",
         json::array{json::object{{"address", "192.0.2.20"}, {"tcp", 2641}, {"public_key", key}}}}};
    auto keyed = body_of(n.call(n.iron, V::put, kRoute, json::serialize(with_key), S::ok));
    CHECK(keyed.at("servers").as_array()[0].at("public_key").as_string() == key);
    n.call(n.iron, V::put, kRoute, R"({"service_handle":"0.NA/88.118.9.SERV"})", S::ok);
    auto service = body_of(n.call(n.iron, V::get, kRoute, {}, S::ok)).as_object();
    CHECK(service.at("service_handle") == "0.NA/88.118.9.SERV");
    CHECK_FALSE(service.contains("servers"));

    // iron clears it; a second clear finds none.
    n.call(n.iron, V::delete_, kRoute, {}, S::no_content);
    CHECK(error_code(n.call(n.iron, V::get, kRoute, {}, S::not_found)) == "not_routed");
    CHECK(error_code(n.call(n.iron, V::delete_, kRoute, {}, S::not_found)) == "not_routed");

    // Every change is in the change log of the prefix (the registry's write path).
    CHECK(n.node.stop() == 0);
    auto verify =
        run_command({IDNODE_IDCTL_BINARY, "verify", "--data-dir", (n.node.dir() / "db").string()});
    CHECK_MESSAGE(verify.exit_code == 0, verify.out, verify.err);
}

TEST_CASE("routes: who may not, and unknown prefixes") {
    RouteNode n;
    n.call(n.admin, V::put, kRoute, kServers, S::ok);
    for (V method : {V::get, V::put, V::delete_}) {
        CAPTURE(method);
        const std::string body = method == V::put ? kServers : std::string();
        CHECK(error_code(n.call(n.steel, method, kRoute, body, S::forbidden)) == "forbidden");
        CHECK(error_code(n.call(n.auditor, method, kRoute, body, S::forbidden)) == "forbidden");
        auto anonymous = n.call({}, method, kRoute, body, S::unauthorized);
        CHECK(error_code(anonymous) == "unauthorized");
        CHECK(error_code(n.call(n.admin, method, "/api/v1/prefixes/88.118.77/route", body,
                                S::not_found)) == "not_found");
        CHECK(error_code(n.call(n.admin, method, "/api/v1/prefixes/88..118/route", body,
                                S::bad_request)) == "invalid_prefix");
        // iron owns 88.118.9, not 88.118.8.
        CHECK(error_code(n.call(n.iron, method, "/api/v1/prefixes/88.118.8/route", body,
                                S::forbidden)) == "forbidden");
    }
    // The route is still the admin's.
    CHECK(body_of(n.call(n.iron, V::get, kRoute, {}, S::ok)).at("servers").as_array().size() == 2);

    // A node prefix is held here by definition.
    CHECK(error_code(n.call(n.admin, V::put, "/api/v1/prefixes/88.118/route", kServers,
                            S::bad_request)) == "node_prefix");

    // A suspended prefix: iron still reads its route but cannot change it; the admin can.
    n.call(n.admin, V::post, "/api/v1/prefixes/88.118.9/suspend", {}, S::ok);
    n.call(n.iron, V::get, kRoute, {}, S::ok);
    CHECK(error_code(n.call(n.iron, V::delete_, kRoute, {}, S::forbidden)) == "prefix_suspended");
    CHECK(error_code(n.call(n.iron, V::put, kRoute, kServers, S::forbidden)) == "prefix_suspended");
    n.call(n.admin, V::delete_, kRoute, {}, S::no_content);
    // The suspension survived the route change (and the other way round).
    auto p = body_of(n.call(n.admin, V::get, "/api/v1/prefixes/88.118.9", {}, S::ok));
    CHECK(p.at("status") == "suspended");
    CHECK_FALSE(p.at("routed").as_bool());
    CHECK(n.node.stop() == 0);
}

TEST_CASE("routes: every malformed body is 400 and changes nothing") {
    RouteNode n;
    const std::string rsa1024 = make_key("RSA", 1024).public_pem;
    std::string seventeen = R"({"servers":[)";
    for (int i = 0; i < 17; ++i)
        seventeen += std::string(i ? "," : "") + R"({"address":"192.0.2.1","tcp":2641})";
    seventeen += "]}";
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"not json", "not valid JSON"},
        {R"(["192.0.2.1"])", "must be a JSON object"},
        {R"({})", "exactly one"},
        {kServers.substr(0, kServers.size() - 1) + R"(,"service_handle":"0.NA/X.1"})",
         "exactly one"},
        {R"({"servers":[{"address":"192.0.2.1","tcp":2641}],"mirror":true})",
         "unknown field \"mirror\""},
        {R"({"servers":{"address":"192.0.2.1"}})", "1 to 16 servers"},
        {R"({"servers":[]})", "1 to 16 servers"},
        {seventeen, "1 to 16 servers"},
        {R"({"servers":["192.0.2.1"]})", "servers[0]: must be an object"},
        {R"({"servers":[{"tcp":2641}]})", "servers[0]: address (a string) is required"},
        {R"({"servers":[{"address":3232235521,"tcp":2641}]})", "address (a string)"},
        {R"({"servers":[{"address":"192.0.2.1","tcp":"2641"}]})", "tcp must be a port"},
        {R"({"servers":[{"address":"192.0.2.1","udp":-1}]})", "udp must be a port"},
        {R"({"servers":[{"address":"192.0.2.1","tcp":2641,"https":70000}]})",
         "https must be a port"},
        {R"({"servers":[{"address":"192.0.2.1","tcp":2641,"weight":1}]})",
         "unknown field \"weight\""},
        {R"({"servers":[{"address":"192.0.2.1","tcp":2641,"public_key":42}]})",
         "public_key must be a string"},
        {R"({"servers":[{"address":"id.example.cn","tcp":2641}]})", "not an IPv4 or IPv6"},
        {R"({"servers":[{"address":"0.0.0.0","tcp":2641}]})", "unspecified"},
        {R"({"servers":[{"address":"192.0.2.1","https":8443}]})", "tcp or a udp port"},
        {json::serialize(json::object{
             {"servers", json::array{json::object{
                             {"address", "192.0.2.1"}, {"tcp", 2641}, {"public_key", rsa1024}}}}}),
         "at least 2048"},
        {R"({"service_handle":5})", "service_handle must be a non-empty string"},
        {R"({"service_handle":""})", "service_handle must be a non-empty string"},
        {R"({"service_handle":"no-slash"})", "service_handle:"},
        {R"({"service_handle":"0.NA/88.118.9"})", "only through the route itself"},
        {R"({"service_handle":"88.118.9/SERV"})", "only through the route itself"},
    };
    for (const auto& [body, expected] : cases) {
        CAPTURE(body);
        auto r = n.call(n.admin, V::put, kRoute, body, S::bad_request);
        const auto code = error_code(r);
        CHECK((code == "invalid_value" || code == "invalid_json"));
        const std::string message(body_of(r).at("error").at("message").as_string());
        CHECK_MESSAGE(message.find(expected) != std::string::npos, r.body());
    }
    // Over limits.max_body_bytes (64 KiB by default): the server's 413, which closes the
    // connection.
    const std::string huge =
        R"({"service_handle":"0.NA/88.118.9.SERV","pad":")" + std::string(70 * 1024, 'x') + "\"}";
    CHECK(error_code(n.call(n.admin, V::put, kRoute, huge, S::payload_too_large)) ==
          "body_too_large");
    n.c->connect();
    CHECK(error_code(n.call(n.admin, V::get, kRoute, {}, S::not_found)) == "not_routed");
    CHECK(n.node.stop() == 0);
}

TEST_CASE("routes: a route body is at most 64 KiB whatever limits.max_body_bytes allows") {
    RouteNode n({std::pair<std::string, std::string>{"limits.max_body_bytes", "1048576"}});
    const std::string huge =
        R"({"service_handle":"0.NA/88.118.9.SERV","pad":")" + std::string(70 * 1024, 'x') + "\"}";
    auto r = n.call(n.admin, V::put, kRoute, huge, S::payload_too_large);
    CHECK(error_code(r) == "body_too_large");
    CHECK(r.body().find("at most 65536 bytes") != std::string::npos);
    n.c->connect();
    CHECK(error_code(n.call(n.admin, V::get, kRoute, {}, S::not_found)) == "not_routed");
    CHECK(n.node.stop() == 0);
}

TEST_CASE("routes: identifiers under a routed prefix are refused on every front end") {
    RouteNode n;
    const std::string record = R"({"values":[{"index":1,"type":"URL","data":"https://e.cn/1"}]})";
    // A record stored before the route: it stays, but cannot be written meanwhile.
    n.call(n.admin, V::put, "/api/handles/88.118.9/OLD", record, S::created);
    n.call(n.admin, V::put, kRoute, kServers, S::ok);

    // Handle REST: 409 RC 301 naming the node, for the admin and for the owner.
    for (const auto* who : {&n.admin, &n.iron}) {
        auto put = n.call(*who, V::put, "/api/handles/88.118.9/SN-1", record, S::conflict);
        CHECK(body_of(put).at("responseCode") == 301);
        CHECK(put.body().find("192.0.2.10:2641") != std::string::npos);
        auto del = n.call(*who, V::delete_, "/api/handles/88.118.9/OLD", {}, S::conflict);
        CHECK(body_of(del).at("responseCode") == 301);
        // Below the routed prefix, not allocated here: the enterprise node holds it too.
        auto below = n.call(*who, V::put, "/api/handles/88.118.9.4/SN-1", record, S::conflict);
        CHECK(below.body().find("prefix 88.118.9 ") != std::string::npos);
    }
    // Other prefixes are untouched; the owner of another prefix still hears 403.
    n.call(n.steel, V::put, "/api/handles/88.118.8/SN-1", record, S::created);
    n.call(n.steel, V::put, "/api/handles/88.118.9/SN-1", record, S::forbidden);

    // Bulk: each line refused with the reason.
    auto bulk = n.call(n.iron, V::post, "/api/v1/bulk?mode=create",
                       R"({"handle":"88.118.9/B-1","values":[{"index":1,"type":"URL","data":"x"}]})"
                       "\n"
                       R"({"handle":"88.118.9/B-2","values":[{"index":1,"type":"URL","data":"x"}]})"
                       "\n",
                       S::ok);
    auto lines = ndjson_values(bulk.body());
    REQUIRE(lines.size() == 3);
    for (int i = 0; i < 2; ++i) {
        CHECK(lines[i].at("status") == "error");
        CHECK(lines[i].at("error").at("code") == "routed_elsewhere");
    }
    CHECK(lines[2].at("summary").at("errors") == 2);

    // SNMS: a business error (-2) naming the node, in Chinese.
    auto login = body_of(n.call({}, V::post, "/identity/token",
                                R"({"username":"iron","password":"iron-secret-1"})", S::ok));
    const std::string token = std::string(login.at("data").at("token").as_string());
    auto snms = body_of(n.call(
        "Bearer " + token, V::post, "/identityv2/data",
        R"({"handle":"88.118.9/C1","templateVersion":"1.0","value":[{"index":1,"type":"URL","data":{"format":"string","value":"https://e.cn"}}]})",
        S::ok));
    CHECK(snms.at("status") == -2);
    CHECK(std::string(snms.at("message").as_string()).find("企业节点") != std::string::npos);

    // The Handle protocol: ID-SDK's password LOGIN as the admin "testuser", then its captured
    // CREATE_HANDLE moved to 88.118.9 (a handle of the same length, so no length field changes).
    const auto login_lines = captured_requests("idsdk-login-password");
    std::string create = captured_requests("idsdk-createIdentifier")[0];
    const std::string captured = "88.118/IDSDK-001", moved = "88.118.9/IDSDK01";
    REQUIRE(captured.size() == moved.size());
    const auto at = create.find(captured);
    REQUIRE(at != std::string::npos);
    create.replace(at, moved.size(), moved);
    {
        HandleConnection wire(n.node.handle_port());
        REQUIRE(rc_of(wire.exchange(login_lines[0])) == hp::rc::kSuccess);
        const std::string refused = wire.exchange(create);
        CHECK(rc_of(refused) == hp::rc::kServerNotResponsible);
        CHECK(refused.find("192.0.2.10:2641") != std::string::npos);
    }

    // Clear the route: nothing above was written, the old record is still there, and every
    // front end writes again.
    n.call(n.iron, V::delete_, kRoute, {}, S::no_content);
    for (const char* h : {"88.118.9/SN-1", "88.118.9/B-1", "88.118.9/B-2", "88.118.9/C1",
                          "88.118.9/IDSDK01", "88.118.9.4/SN-1"})
        n.call(n.admin, V::get, std::string("/api/handles/") + h, {}, S::not_found);
    n.call(n.admin, V::get, "/api/handles/88.118.9/OLD", {}, S::ok);
    n.call(n.iron, V::put, "/api/handles/88.118.9/SN-1", record, S::created);
    n.call(n.iron, V::delete_, "/api/handles/88.118.9/OLD", {}, S::ok);
    {
        HandleConnection wire(n.node.handle_port());
        REQUIRE(rc_of(wire.exchange(login_lines[0])) == hp::rc::kSuccess);
        CHECK(rc_of(wire.exchange(create)) == hp::rc::kSuccess);
    }
    n.call(n.admin, V::get, "/api/handles/88.118.9/IDSDK01", {}, S::ok);
    CHECK(n.node.stop() == 0);
}

TEST_CASE("routes: idctl prefix route set, show and clear") {
    RouteNode n;
    const auto key = make_key("SM2");
    const fs::path key_file = n.node.dir() / "iron-node.pem";
    {
        std::ofstream out(key_file, std::ios::binary);
        out << key.public_pem;
    }
    auto set =
        run_command(n.idctl({"--json", "prefix", "route", "set", "88.118.9", "--server",
                             "192.0.2.10,tcp=2641,udp=2641,https=8443,key=" + key_file.string(),
                             "--server", "2001:db8::7"}));
    REQUIRE_MESSAGE(set.exit_code == 0, set.err);
    auto stored = parse_json(set.out).as_object();
    const auto& servers = stored.at("servers").as_array();
    REQUIRE(servers.size() == 2);
    CHECK(servers[0].at("https") == 8443);
    CHECK(servers[0].at("public_key").as_string() == key.public_pem);
    // No tcp= nor udp=: the Handle protocol's port for both.
    CHECK(servers[1].at("tcp") == 2641);
    CHECK(servers[1].at("udp") == 2641);

    auto shown = run_command(n.idctl({"prefix", "route", "show", "88.118.9"}));
    REQUIRE_MESSAGE(shown.exit_code == 0, shown.err);
    CHECK(shown.out.find("192.0.2.10") != std::string::npos);
    CHECK(shown.out.find("2001:db8::7") != std::string::npos);
    CHECK(shown.out.find("this node's site") != std::string::npos);
    auto shown_json = run_command(n.idctl({"--json", "prefix", "route", "show", "88.118.9"}));
    REQUIRE(shown_json.exit_code == 0);
    CHECK(parse_json(shown_json.out).at("site").at("servers").as_array()[0].at("tcp") ==
          n.node.handle_port());

    auto service = run_command(
        n.idctl({"prefix", "route", "set", "88.118.9", "--service-handle", "0.NA/88.118.9.SERV"}));
    REQUIRE_MESSAGE(service.exit_code == 0, service.err);
    CHECK(service.out.find("service handle 0.NA/88.118.9.SERV") != std::string::npos);

    auto cleared = run_command(n.idctl({"prefix", "route", "clear", "88.118.9"}));
    REQUIRE_MESSAGE(cleared.exit_code == 0, cleared.err);
    auto gone = run_command(n.idctl({"prefix", "route", "show", "88.118.9"}));
    CHECK(gone.exit_code == 1);
    CHECK(gone.err.find("not routed") != std::string::npos);

    // Usage errors (exit 2) and the node's refusals (exit 1).
    CHECK(run_command(n.idctl({"prefix", "route", "set", "88.118.9"})).exit_code == 2);
    CHECK(
        run_command(n.idctl({"prefix", "route", "set", "88.118.9", "--server", "192.0.2.1,tcp=x"}))
            .exit_code == 2);
    CHECK(
        run_command(n.idctl({"prefix", "route", "set", "88.118.9", "--server", "192.0.2.1,port=1"}))
            .exit_code == 2);
    CHECK(run_command(n.idctl({"prefix", "route", "set", "88.118.9", "--server",
                               "192.0.2.1,key=/nonexistent.pem"}))
              .exit_code == 2);
    CHECK(run_command(n.idctl({"prefix", "route", "set", "88.118.9", "--server", "192.0.2.1",
                               "--service-handle", "0.NA/X.1"}))
              .exit_code == 2);
    auto refused =
        run_command(n.idctl({"prefix", "route", "set", "88.118.9", "--server", "example.cn"}));
    CHECK(refused.exit_code == 1);
    CHECK(refused.err.find("not an IPv4 or IPv6") != std::string::npos);
    CHECK(n.node.stop() == 0);
}
