// The client SDK (client-sdk/) against the real idnode binary: every operation, error mapping,
// TLS verification, credentials, keep-alive pooling, retries over a connection that is dropped
// on purpose (a real TCP proxy in the test), and 16 threads sharing one client.
//
// Operations whose server endpoint is not on every node yet (batch resolve, bulk, stats,
// templates, the token endpoint) are probed first; when the node answers "unknown route" the
// test says so (MESSAGE) and checks the SDK's error mapping for that answer instead.
#include "harness.hpp"
#include "json_helpers.hpp"

#include "idnode/sdk/client.hpp"
#include "idnode/sdk/version.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <thread>

using namespace idnode::test;
namespace sdk = idnode::sdk;
namespace json = boost::json;

namespace {

fs::path idctl_binary() {
    return IDNODE_IDCTL_BINARY;
}

const char* kEnterprise =
    R"("enterprise":{"name":"宝钢","credit_code":"91310000631696382C","industry":"C3120","contact":"ops@example.cn"})";

sdk::ClientOptions options_for(const NodeProcess& node) {
    sdk::ClientOptions o;
    o.url = "https://127.0.0.1:" + std::to_string(node.https_port());
    o.ca_file = node.pki().ca_cert.string();
    o.connect_timeout = 3s;
    o.request_timeout = 5s;
    o.retry.initial_backoff = 20ms;
    o.retry.max_backoff = 200ms;
    return o;
}

sdk::Client make_client(const sdk::ClientOptions& o) {
    auto c = sdk::Client::create(o);
    REQUIRE_MESSAGE(c.ok(), c.error().to_string());
    return std::move(c).value();
}

json::value parse(const std::string& text) {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec)
        throw HarnessError("not JSON: " + text);
    return v;
}

std::vector<int> indices(const sdk::Record& r) {
    std::vector<int> out;
    for (const auto& v : r.values)
        out.push_back(v.index);
    return out;
}

/// A node initialised with idctl, set up through the SDK's admin calls: enterprise prefixes
/// 88.118.8 (account "steel", API key) and 88.118.9 (account "pharma", password only).
struct SdkNode {
    NodeProcess node{"sdk"};
    std::string admin_key, steel_key;
    std::string pharma_password = "pharma-secret-1";

    explicit SdkNode(bool start = true) {
        const auto init = run_command({idctl_binary().string(), "init", "--data-dir",
                                       (node.dir() / "db").string(), "--node-prefix", "88.118"});
        REQUIRE_MESSAGE(init.exit_code == 0, init.err);
        admin_key = std::string(parse(init.out).at("admin_key").as_string());
        if (start)
            setup();
    }

    void setup() {
        node.start();
        auto admin = client(admin_key);
        for (const char* p : {"88.118.8", "88.118.9"}) {
            auto r = admin.allocate_prefix(std::string(R"({"prefix":")") + p + "\"," + kEnterprise +
                                           "}");
            REQUIRE_MESSAGE(r.ok(), r.error().to_string());
        }
        REQUIRE(admin.create_account(
            R"({"username":"steel","role":"enterprise","prefixes":["88.118.8"]})"));
        REQUIRE(admin.create_account(
            R"({"username":"pharma","role":"enterprise","prefixes":["88.118.9"],"password":"pharma-secret-1"})"));
        auto key = admin.create_key("steel");
        REQUIRE_MESSAGE(key.ok(), key.error().to_string());
        steel_key = key->key;
    }

    sdk::ClientOptions options() const { return options_for(node); }
    sdk::Client client(const std::string& key = {}) const {
        auto o = options();
        o.api_key = key;
        return make_client(o);
    }
};

/// True when the node answered "unknown route" (404/405 RC 4): the endpoint is not built yet.
bool endpoint_missing(const sdk::Client& c, const char* method, const char* target,
                      const char* body = "") {
    auto r = c.request(method, target, body);
    REQUIRE_MESSAGE(r.ok(), r.error().to_string());
    const bool missing = (r->status == 404 || r->status == 405) &&
                         r->body.find("\"responseCode\":4") != std::string::npos;
    if (missing) {
        const std::string note =
            std::string("endpoint ") + method + " " + target + " is not on this node yet; skipped";
        MESSAGE(note);
    }
    return missing;
}

sdk::Record steel_record(const std::string& handle, const std::string& url = "https://e.cn/1") {
    sdk::Record r;
    r.handle = handle;
    r.values.push_back(sdk::Value::text(1, "URL", url));
    r.values.push_back(sdk::Value::text(2000, "heat_no", "炉号 H2024-001"));
    auto price = sdk::Value::text(2001, "price", "4120.50");
    price.permissions = "1100";
    r.values.push_back(price);
    return r;
}

/// A TCP proxy on 127.0.0.1 in front of the node. The first `drop_first` connections are closed
/// as soon as the client has sent request bytes after the TLS handshake, i.e. a connection that
/// breaks while a request is in flight; later connections are forwarded untouched.
class DroppingProxy {
public:
    /// With `swallow`, the dropped connections are not closed: the request simply never arrives
    /// and no answer comes back (a hung server).
    DroppingProxy(std::uint16_t target, int drop_first, const char* listen_ip = "127.0.0.1",
                  bool swallow = false)
        : target_(target), drops_(drop_first), swallow_(swallow) {
        listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        REQUIRE(::inet_pton(AF_INET, listen_ip, &a.sin_addr) == 1);
        REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(::listen(listener_, 16) == 0);
        socklen_t len = sizeof a;
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        accept_thread_ = std::thread([this] { accept_loop(); });
    }
    ~DroppingProxy() {
        stop_ = true;
        ::shutdown(listener_, SHUT_RDWR);
        ::close(listener_);
        accept_thread_.join();
        for (auto& t : pipes_)
            t.join();
    }
    std::uint16_t port() const { return port_; }
    int dropped() const { return dropped_; }

private:
    void accept_loop() {
        while (!stop_) {
            const int client = ::accept(listener_, nullptr, nullptr);
            if (client < 0)
                return;
            const int server = ::socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            a.sin_port = htons(target_);
            if (::connect(server, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
                ::close(client);
                ::close(server);
                continue;
            }
            const bool drop = drops_ > 0;
            if (drop)
                --drops_;
            pipes_.emplace_back([this, client, server, drop] { pipe(client, server, drop); });
        }
    }

    /// Copies both ways. With `drop`, the connection is closed (both sides) when the client
    /// starts its second TLS application_data record: under TLS 1.3 the first one is the
    /// client's encrypted Finished, the second its first request. That chunk is not forwarded.
    void pipe(int client, int server, bool drop) {
        int app_records = 0;
        bool swallowing = false;
        std::size_t record_left = 0;
        std::string header;
        char buf[16384];
        pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
        while (!stop_) {
            if (::poll(fds, 2, 100) <= 0)
                continue;
            bool closed = false;
            for (int i = 0; i < 2 && !closed; ++i) {
                if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
                if (n <= 0) {
                    closed = true;
                    break;
                }
                if (i == 0 && swallowing)
                    continue;
                if (i == 0 && drop) {
                    for (ssize_t p = 0; p < n && !closed;) {
                        if (record_left > 0) {
                            const auto skip =
                                std::min<std::size_t>(record_left, static_cast<std::size_t>(n - p));
                            record_left -= skip;
                            p += static_cast<ssize_t>(skip);
                            continue;
                        }
                        header += buf[p++];
                        if (header.size() == 5) {
                            record_left = (static_cast<unsigned char>(header[3]) << 8) |
                                          static_cast<unsigned char>(header[4]);
                            if (header[0] == 23 && ++app_records == 2) {
                                ++dropped_;
                                closed = !swallow_;
                                swallowing = swallow_;
                            }
                            header.clear();
                        }
                    }
                    if (closed || swallowing)
                        break;
                }
                if (::write(fds[1 - i].fd, buf, static_cast<std::size_t>(n)) != n)
                    closed = true;
            }
            if (closed)
                break;
        }
        ::close(client);
        ::close(server);
    }

    std::uint16_t target_;
    std::atomic<int> drops_;
    bool swallow_ = false;
    std::atomic<int> dropped_{0};
    std::atomic<bool> stop_{false};
    int listener_ = -1;
    std::uint16_t port_ = 0;
    std::thread accept_thread_;
    std::vector<std::thread> pipes_;
};

} // namespace

TEST_CASE("options are validated before anything is sent") {
    sdk::ClientOptions o;
    o.url = "http://127.0.0.1:8443";
    CHECK(sdk::Client::create(o).error().kind == sdk::ErrorKind::invalid_argument);
    o.url = "https://127.0.0.1:99999";
    CHECK(sdk::Client::create(o).error().kind == sdk::ErrorKind::invalid_argument);
    o.url = "https://127.0.0.1:8443/api";
    CHECK(sdk::Client::create(o).error().kind == sdk::ErrorKind::invalid_argument);
    o.url = "https://127.0.0.1:8443";
    o.ca_file = "/nonexistent/ca.pem";
    auto bad_ca = sdk::Client::create(o);
    CHECK(bad_ca.error().kind == sdk::ErrorKind::invalid_argument);
    CHECK(bad_ca.error().message.find("/nonexistent/ca.pem") != std::string::npos);
    o.ca_file.clear();
    o.username = "u";
    CHECK(sdk::Client::create(o).error().kind == sdk::ErrorKind::invalid_argument);
    o.username.clear();
    o.max_connections = 0;
    CHECK(sdk::Client::create(o).error().kind == sdk::ErrorKind::invalid_argument);
    CHECK(std::string(sdk::version()) == IDNODE_VERSION_STRING);

    // a handle without '/' never reaches the wire
    o.max_connections = 1;
    auto c = sdk::Client::create(o);
    REQUIRE(c.ok());
    CHECK(c->resolve("no-slash").error().kind == sdk::ErrorKind::invalid_argument);
    CHECK_THROWS_AS((void)c->resolve("x").value(), std::logic_error);
}

TEST_CASE("records: create, resolve with filters, upsert, set/remove values, delete, list") {
    SdkNode n;
    auto steel = n.client(n.steel_key);
    auto anon = n.client();

    auto created = steel.create(steel_record("88.118.8/SN-1"));
    REQUIRE_MESSAGE(created.ok(), created.error().to_string());
    CHECK(*created == sdk::PutOutcome::created);

    // anonymous sees public values only; the spelling asked for is echoed
    auto pub = anon.resolve("88.118.8/sn-1");
    REQUIRE_MESSAGE(pub.ok(), pub.error().to_string());
    CHECK(pub->handle == "88.118.8/sn-1");
    CHECK(indices(*pub) == std::vector<int>{1, 2000});
    CHECK(pub->values[1].data == "炉号 H2024-001");
    CHECK(pub->values[1].format == "string");
    CHECK(pub->values[0].ttl == 86400);
    CHECK(pub->values[0].timestamp.size() == 20);
    auto owner = steel.resolve("88.118.8/SN-1");
    REQUIRE(owner.ok());
    CHECK(indices(*owner) == std::vector<int>{1, 2000, 2001});
    CHECK(owner->values[2].permissions == "1100");

    // filters: ANY type or ANY index
    auto filtered = anon.resolve("88.118.8/SN-1", {{"url"}, {2000, 7}});
    REQUIRE(filtered.ok());
    CHECK(indices(*filtered) == std::vector<int>{1, 2000});
    auto by_type = anon.resolve("88.118.8/SN-1", {{"heat_no"}, {}});
    REQUIRE(by_type.ok());
    CHECK(indices(*by_type) == std::vector<int>{2000});

    // binary data travels as base64 and comes back as the same bytes
    sdk::Record bin;
    bin.handle = "88.118.8/BIN-1";
    bin.values.push_back(sdk::Value::text(3, "BLOB", std::string("\x00\xff\x10 ok", 6)));
    REQUIRE(steel.upsert(bin).ok());
    auto bin_back = anon.resolve("88.118.8/BIN-1");
    REQUIRE(bin_back.ok());
    CHECK(bin_back->values.at(0).format == "base64");
    CHECK(bin_back->values.at(0).data == std::string("\x00\xff\x10 ok", 6));

    // create on an existing handle: conflict, RC 101, HTTP 409
    auto again = steel.create(steel_record("88.118.8/SN-1"));
    REQUIRE_FALSE(again.ok());
    CHECK(again.error().kind == sdk::ErrorKind::conflict);
    CHECK(again.error().http_status == 409);
    CHECK(again.error().response_code == 101);
    CHECK_FALSE(again.error().message.empty());

    // upsert and replace overwrite the whole record
    auto up = steel.upsert(steel_record("88.118.8/SN-1", "https://e.cn/2"));
    REQUIRE(up.ok());
    CHECK(*up == sdk::PutOutcome::replaced);
    sdk::Record only_url;
    only_url.handle = "88.118.8/SN-1";
    only_url.values.push_back(sdk::Value::text(1, "URL", "https://e.cn/3"));
    auto rep = steel.replace(only_url);
    REQUIRE(rep.ok());
    CHECK(*rep == sdk::PutOutcome::replaced);
    CHECK(indices(*anon.resolve("88.118.8/SN-1")) == std::vector<int>{1});
    auto rep_new = steel.replace(steel_record("88.118.8/SN-NEW"));
    REQUIRE(rep_new.ok());
    CHECK(*rep_new == sdk::PutOutcome::created);

    // add/replace values by index, then remove some
    REQUIRE(steel.set_values("88.118.8/SN-1", {sdk::Value::text(2000, "heat_no", "H2"),
                                               sdk::Value::text(1, "URL", "https://e.cn/4")}));
    auto after_set = anon.resolve("88.118.8/SN-1");
    REQUIRE(after_set.ok());
    CHECK(indices(*after_set) == std::vector<int>{1, 2000});
    CHECK(after_set->values[0].data == "https://e.cn/4");
    REQUIRE(steel.remove_values("88.118.8/SN-1", {1}));
    CHECK(indices(*anon.resolve("88.118.8/SN-1")) == std::vector<int>{2000});
    CHECK(steel.set_values("88.118.8/SN-1", {}).error().kind == sdk::ErrorKind::invalid_argument);
    CHECK(steel.remove_values("88.118.8/SN-1", {}).error().kind ==
          sdk::ErrorKind::invalid_argument);

    // list (authenticated)
    auto list = steel.list_handles("88.118.8");
    REQUIRE_MESSAGE(list.ok(), list.error().to_string());
    const auto page = parse(*list);
    CHECK(page.at("handles").as_array().size() == 3);
    // the same three by cursor, one per page: each page names the next until the last
    std::vector<std::string> walked;
    std::string cursor;
    for (int pages = 0; pages < 10; ++pages) {
        auto p = steel.list_handles_cursor("88.118.8", cursor, 1);
        REQUIRE_MESSAGE(p.ok(), p.error().to_string());
        cursor = take_handles_page(*p, walked);
        if (cursor.empty())
            break;
    }
    std::vector<std::string> listed;
    for (const auto& h : page.at("handles").as_array())
        listed.emplace_back(h.as_string());
    CHECK(walked == listed);
    CHECK(anon.list_handles_cursor("88.118.8", "", 10).error().response_code == 402);

    // delete; then resolve and delete are not_found (HTTP 404, RC 100)
    REQUIRE(steel.remove("88.118.8/SN-1"));
    auto gone = anon.resolve("88.118.8/SN-1");
    REQUIRE_FALSE(gone.ok());
    CHECK(gone.error().kind == sdk::ErrorKind::not_found);
    CHECK(gone.error().http_status == 404);
    CHECK(gone.error().response_code == 100);
    CHECK(steel.remove("88.118.8/SN-1").error().response_code == 100);

    // a suffix with characters that must be percent-encoded round-trips exactly
    sdk::Record odd = steel_record("88.118.8/lot 7/a%2Fb?x#y");
    REQUIRE(steel.create(odd).ok());
    auto odd_back = anon.resolve("88.118.8/lot 7/a%2Fb?x#y");
    REQUIRE_MESSAGE(odd_back.ok(), odd_back.error().to_string());
    CHECK(odd_back->handle == "88.118.8/lot 7/a%2Fb?x#y");
}

TEST_CASE("errors carry HTTP status, Handle RC and the server's message (both shapes)") {
    SdkNode n;
    auto steel = n.client(n.steel_key);
    auto anon = n.client();
    auto admin = n.client(n.admin_key);

    // Handle REST shape {"responseCode","message"}
    auto not_homed = anon.resolve("20.500.1/x");
    CHECK(not_homed.error().kind == sdk::ErrorKind::http);
    CHECK(not_homed.error().http_status == 400);
    CHECK(not_homed.error().response_code == 301);
    CHECK(not_homed.error().message.find("not homed") != std::string::npos);

    auto anonymous_write = anon.create(steel_record("88.118.8/A"));
    CHECK(anonymous_write.error().kind == sdk::ErrorKind::auth);
    CHECK(anonymous_write.error().http_status == 401);
    CHECK(anonymous_write.error().response_code == 402);

    auto foreign = steel.create(steel_record("88.118.9/A"));
    CHECK(foreign.error().kind == sdk::ErrorKind::http);
    CHECK(foreign.error().http_status == 403);
    CHECK(foreign.error().response_code == 401);
    CHECK(foreign.error().message.find("steel") != std::string::npos);

    sdk::Record bad = steel_record("88.118.8/BAD");
    bad.values[0].index = 0; // the server rejects index 0
    auto invalid = steel.create(bad);
    CHECK(invalid.error().http_status == 400);
    CHECK(invalid.error().response_code == 202);
    CHECK(invalid.error().message.find("index") != std::string::npos);

    // native shape {"error":{"code","message"}}
    auto bad_json = admin.allocate_prefix("{not json");
    CHECK(bad_json.error().kind == sdk::ErrorKind::http);
    CHECK(bad_json.error().http_status == 400);
    CHECK(bad_json.error().code == "invalid_json");
    CHECK_FALSE(bad_json.error().message.empty());
    auto not_admin = steel.list_accounts();
    CHECK(not_admin.error().http_status == 403);
    CHECK_FALSE(not_admin.error().code.empty());
    auto no_prefix = admin.get_prefix("88.118.77");
    CHECK(no_prefix.error().kind == sdk::ErrorKind::not_found);
    CHECK(no_prefix.error().http_status == 404);
    CHECK(no_prefix.error().code == "not_found");

    // a bad key: 401 with the server's message
    auto wrong = n.client("idn_0000_nope");
    auto denied = wrong.list_handles("88.118.8");
    CHECK(denied.error().kind == sdk::ErrorKind::auth);
    CHECK(denied.error().http_status == 401);
    CHECK_FALSE(denied.error().message.empty());
    CHECK(denied.error().to_string().find("http 401") != std::string::npos);

    // request() returns any status as a value
    auto raw = anon.request("GET", "/api/handles/88.118.8/none");
    REQUIRE(raw.ok());
    CHECK(raw->status == 404);
    CHECK(raw->content_type == "application/json");
    CHECK(anon.request("BREW", "/").error().kind == sdk::ErrorKind::invalid_argument);
}

TEST_CASE("admin calls: prefixes, accounts, passwords, keys") {
    SdkNode n;
    auto admin = n.client(n.admin_key);

    auto next = admin.allocate_prefix(std::string(R"({"parent":"88.118",)") + kEnterprise + "}");
    REQUIRE_MESSAGE(next.ok(), next.error().to_string());
    const std::string allocated(parse(*next).at("prefix").as_string());
    CHECK(allocated.rfind("88.118.", 0) == 0);

    auto prefixes = admin.list_prefixes();
    REQUIRE(prefixes.ok());
    CHECK(prefixes->find(allocated) != std::string::npos);
    auto one = admin.get_prefix("88.118.8");
    REQUIRE(one.ok());
    CHECK(parse(*one).at("status").as_string() == "active");

    // suspend blocks writes (403 RC 400); resume allows them again
    auto steel = n.client(n.steel_key);
    REQUIRE(admin.suspend_prefix("88.118.8"));
    CHECK(parse(*admin.get_prefix("88.118.8")).at("status").as_string() == "suspended");
    auto blocked = steel.create(steel_record("88.118.8/S1"));
    CHECK(blocked.error().http_status == 403);
    CHECK(blocked.error().response_code == 400);
    REQUIRE(admin.resume_prefix("88.118.8"));
    CHECK(steel.create(steel_record("88.118.8/S1")).ok());

    auto accounts = admin.list_accounts();
    REQUIRE(accounts.ok());
    CHECK(accounts->find("\"pharma\"") != std::string::npos);

    // a second key works until it is revoked
    auto key = admin.create_key("steel");
    REQUIRE(key.ok());
    CHECK_FALSE(key->key_id.empty());
    CHECK(key->key.find(key->key_id) != std::string::npos);
    auto with_key = n.client(key->key);
    CHECK(with_key.list_handles("88.118.8").ok());
    REQUIRE(admin.revoke_key("steel", key->key_id));
    auto revoked = with_key.list_handles("88.118.8");
    CHECK(revoked.error().kind == sdk::ErrorKind::auth);
    CHECK(admin.revoke_key("steel", key->key_id).error().http_status == 404);

    // passwords: the new one works, the old one no longer does
    REQUIRE(admin.set_password("pharma", "pharma-secret-2"));
    auto o = n.options();
    o.username = "pharma";
    o.password = "pharma-secret-2";
    auto pharma = make_client(o);
    CHECK(pharma.create(steel_record("88.118.9/P1")).ok());
    o.password = n.pharma_password;
    auto old = make_client(o);
    auto refused = old.create(steel_record("88.118.9/P2"));
    CHECK(refused.error().kind == sdk::ErrorKind::auth);
    CHECK_FALSE(refused.error().message.empty());
    // over HTTP Basic the node answers 401; the token endpoint answers HTTP 200 with an SNMS
    // envelope (status -2), and the error carries that status as it came
    CHECK((refused.error().http_status == 401 || refused.error().http_status == 200));
    o.password_auth = sdk::PasswordAuth::basic;
    CHECK(make_client(o).create(steel_record("88.118.9/P3")).error().http_status == 401);
}

TEST_CASE("username/password: token when the node has the endpoint, else HTTP Basic") {
    SdkNode n;
    auto o = n.options();
    o.username = "pharma";
    o.password = n.pharma_password;
    auto pharma = make_client(o);
    CHECK(pharma.auth_method() == "token"); // before the first request
    auto created = pharma.create(steel_record("88.118.9/T1"));
    REQUIRE_MESSAGE(created.ok(), created.error().to_string());
    auto probe = n.client();
    if (endpoint_missing(probe, "POST", "/identity/token", R"({"username":"x","password":"y"})")) {
        CHECK(pharma.auth_method() == "basic");
        // PasswordAuth::token insists on the endpoint
        auto strict = o;
        strict.password_auth = sdk::PasswordAuth::token;
        auto c = make_client(strict);
        auto r = c.create(steel_record("88.118.9/T2"));
        CHECK(r.error().kind == sdk::ErrorKind::not_found);
        CHECK(r.error().message.find("/identity/token") != std::string::npos);
    } else {
        CHECK(pharma.auth_method() == "token");
        // token refresh on 401: a password change (even to the same password: new salt) makes
        // the node reject the old token; the client gets a new one and the call succeeds
        auto admin = n.client(n.admin_key);
        REQUIRE(admin.set_password("pharma", n.pharma_password));
        auto after_change = pharma.upsert(steel_record("88.118.9/T1"));
        CHECK_MESSAGE(after_change.ok(), after_change.error().to_string());
        CHECK(pharma.auth_method() == "token");
        // token refresh: with a zero refresh age every call obtains a fresh token first
        auto refreshing = o;
        refreshing.token_refresh = std::chrono::seconds(0);
        auto c = make_client(refreshing);
        for (int i = 0; i < 3; ++i)
            CHECK(c.upsert(steel_record("88.118.9/T3")).ok());
        auto wrong = o;
        wrong.password = "wrong";
        auto w = make_client(wrong);
        CHECK(w.create(steel_record("88.118.9/T4")).error().kind == sdk::ErrorKind::auth);
    }
    // The client's own key and password: the node wants the current password from a token
    // caller, and the client sends it.
    auto own_key = pharma.create_key("pharma");
    REQUIRE_MESSAGE(own_key.ok(), own_key.error().to_string());
    CHECK(n.client(own_key->key).list_handles("88.118.9").ok());
    REQUIRE(pharma.set_password("pharma", n.pharma_password));
    // Disable / enable / delete (admin): a disabled account's credentials fail with an auth error.
    auto admin_client = n.client(n.admin_key);
    REQUIRE(admin_client.disable_account("pharma"));
    CHECK(n.client(own_key->key).list_handles("88.118.9").error().kind == sdk::ErrorKind::auth);
    REQUIRE(admin_client.enable_account("pharma"));
    CHECK(n.client(own_key->key).list_handles("88.118.9").ok());
    CHECK(pharma.delete_account("pharma").error().http_status == 403);
    // Basic works explicitly, and a wrong password is an auth error with the server's message
    auto basic = o;
    basic.password_auth = sdk::PasswordAuth::basic;
    auto b = make_client(basic);
    CHECK(b.auth_method() == "basic");
    CHECK(b.upsert(steel_record("88.118.9/T5")).ok());
    basic.password = "wrong";
    auto bad = make_client(basic).upsert(steel_record("88.118.9/T6"));
    CHECK(bad.error().kind == sdk::ErrorKind::auth);
    CHECK_FALSE(bad.error().message.empty());
}

TEST_CASE("TLS: wrong CA rejected, insecure_skip_verify works, connection refused") {
    SdkNode n;
    auto o = n.options();
    o.ca_file = n.node.pki().other_ca_cert.string();
    auto wrong_ca = make_client(o);
    auto r = wrong_ca.resolve("88.118.8/x");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == sdk::ErrorKind::tls);
    CHECK(r.error().message.find("certificate verify failed") != std::string::npos);
    CHECK(r.error().http_status == 0);

    // the system trust store does not know the test CA either
    o.ca_file.clear();
    CHECK(make_client(o).resolve("88.118.8/x").error().kind == sdk::ErrorKind::tls);

    o.insecure_skip_verify = true;
    auto insecure = make_client(o);
    CHECK(insecure.resolve("88.118.8/x").error().kind == sdk::ErrorKind::not_found);

    // by host name: the certificate names localhost, so verification passes
    auto by_name = n.options();
    by_name.url = "https://localhost:" + std::to_string(n.node.https_port());
    CHECK(make_client(by_name).resolve("88.118.8/x").error().kind == sdk::ErrorKind::not_found);

    // the right CA but another name: 127.0.0.2 reaches the node through a proxy, and the
    // certificate names only localhost and 127.0.0.1
    DroppingProxy other_ip(n.node.https_port(), 0, "127.0.0.2");
    auto mismatch = n.options();
    mismatch.url = "https://127.0.0.2:" + std::to_string(other_ip.port());
    auto wrong_name = make_client(mismatch).resolve("88.118.8/x");
    CHECK(wrong_name.error().kind == sdk::ErrorKind::tls);
    CHECK(wrong_name.error().message.find("certificate verify failed") != std::string::npos);
    mismatch.insecure_skip_verify = true;
    CHECK(make_client(mismatch).resolve("88.118.8/x").error().kind == sdk::ErrorKind::not_found);

    // nothing listening: a connect error after the configured attempts
    auto closed = n.options();
    closed.url = "https://127.0.0.1:1";
    auto refused = make_client(closed).resolve("88.118.8/x");
    CHECK(refused.error().kind == sdk::ErrorKind::connect);
}

TEST_CASE("keep-alive pool: sequential calls reuse one connection") {
    SdkNode n;
    auto anon = n.client();
    const auto before = metric_value(http_get(n.node.ops_port(), "/metrics").body(),
                                     R"(idnode_tls_handshakes_total{result="ok"})")
                            .value_or(0);
    for (int i = 0; i < 20; ++i)
        CHECK(anon.resolve("88.118.8/none").error().kind == sdk::ErrorKind::not_found);
    const auto after = metric_value(http_get(n.node.ops_port(), "/metrics").body(),
                                    R"(idnode_tls_handshakes_total{result="ok"})")
                           .value_or(0);
    CHECK(after - before == 1);
}

TEST_CASE("retries: a dropped connection is retried for reads, never for a create") {
    SdkNode n;
    auto steel = n.client(n.steel_key);
    REQUIRE(steel.create(steel_record("88.118.8/R1")).ok());

    DroppingProxy proxy(n.node.https_port(), 1);
    auto o = n.options();
    o.url = "https://127.0.0.1:" + std::to_string(proxy.port());
    o.api_key = n.steel_key;
    auto via_proxy = make_client(o);
    auto r = via_proxy.resolve("88.118.8/R1");
    CHECK_MESSAGE(r.ok(), r.error().to_string());
    CHECK(proxy.dropped() == 1);

    DroppingProxy proxy2(n.node.https_port(), 1);
    o.url = "https://127.0.0.1:" + std::to_string(proxy2.port());
    auto c2 = make_client(o);
    auto created = c2.create(steel_record("88.118.8/R2"));
    REQUIRE_FALSE(created.ok());
    CHECK(created.error().kind == sdk::ErrorKind::connection);
    CHECK(proxy2.dropped() == 1);
    // the request never reached the node, and the SDK did not retry it behind our back
    CHECK(steel.resolve("88.118.8/R2").error().kind == sdk::ErrorKind::not_found);
    // an idempotent write is retried
    auto up = c2.upsert(steel_record("88.118.8/R2"));
    CHECK_MESSAGE(up.ok(), up.error().to_string());

    // with retries off, the read fails with the connection error
    DroppingProxy proxy3(n.node.https_port(), 1);
    o.url = "https://127.0.0.1:" + std::to_string(proxy3.port());
    o.retry.max_attempts = 1;
    CHECK(make_client(o).resolve("88.118.8/R1").error().kind == sdk::ErrorKind::connection);
}

TEST_CASE("timeouts: a silent listener and a server that never answers") {
    SdkNode n;
    // TCP accepted by the kernel (listen backlog) but no TLS handshake ever comes back
    const int silent = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(silent, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(silent, 4) == 0);
    socklen_t len = sizeof a;
    ::getsockname(silent, reinterpret_cast<sockaddr*>(&a), &len);
    auto o = n.options();
    o.url = "https://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    o.connect_timeout = 300ms;
    o.retry.max_attempts = 1;
    const auto start = std::chrono::steady_clock::now();
    auto r = make_client(o).resolve("88.118.8/x");
    CHECK(r.error().kind == sdk::ErrorKind::timeout);
    CHECK(std::chrono::steady_clock::now() - start < 3s);
    ::close(silent);

    // the TLS session is up but the request is swallowed: the request timeout fires
    DroppingProxy hung(n.node.https_port(), 1, "127.0.0.1", true);
    auto h = n.options();
    h.url = "https://127.0.0.1:" + std::to_string(hung.port());
    h.request_timeout = 300ms;
    h.retry.max_attempts = 1;
    auto slow = make_client(h).resolve("88.118.8/x");
    CHECK(slow.error().kind == sdk::ErrorKind::timeout);
    CHECK(hung.dropped() == 1);
    // with retries, the next connection goes through
    h.retry.max_attempts = 2;
    DroppingProxy hung2(n.node.https_port(), 1, "127.0.0.1", true);
    h.url = "https://127.0.0.1:" + std::to_string(hung2.port());
    CHECK(make_client(h).resolve("88.118.8/x").error().kind == sdk::ErrorKind::not_found);
}

TEST_CASE("retries: the node restarting between calls is invisible to reads") {
    SdkNode n;
    auto o = n.options();
    o.retry.max_attempts = 30;
    o.retry.initial_backoff = 50ms;
    o.retry.max_backoff = 100ms;
    auto anon = make_client(o);
    CHECK(anon.resolve("88.118.8/none").error().kind == sdk::ErrorKind::not_found);
    // the pooled connection dies with the node; the next node listens on the same port
    const auto port = n.node.https_port();
    REQUIRE(n.node.stop() == 0);
    n.node.set("https.listen", "\"127.0.0.1:" + std::to_string(port) + "\"");
    std::thread restart([&] {
        std::this_thread::sleep_for(300ms);
        n.node.start();
    });
    auto r = anon.resolve("88.118.8/none");
    restart.join();
    CHECK_MESSAGE(r.error().kind == sdk::ErrorKind::not_found, r.error().to_string());
}

TEST_CASE("16 threads share one client") {
    SdkNode n;
    auto o = n.options();
    o.api_key = n.steel_key;
    o.max_connections = 4;
    auto c = make_client(o);
    const int per_thread = reduced_mode() ? 10 : 40;
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 16; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                const std::string h = "88.118.8/T" + std::to_string(t) + "-" + std::to_string(i);
                auto put = c.create(steel_record(h, "https://e.cn/" + h));
                auto get = c.resolve(h);
                if (!put.ok() || !get.ok() || get->values.at(0).data != "https://e.cn/" + h)
                    ++failures;
            }
        });
    }
    for (auto& t : threads)
        t.join();
    CHECK(failures == 0);
    auto list = c.list_handles("88.118.8", 0, 10000);
    REQUIRE(list.ok());
    CHECK(parse(*list).at("handles").as_array().size() ==
          static_cast<std::size_t>(16 * per_thread));
    // never more than max_connections TLS connections
    const auto handshakes = metric_value(http_get(n.node.ops_port(), "/metrics").body(),
                                         R"(idnode_tls_handshakes_total{result="ok"})");
    CHECK(handshakes.value_or(0) <= 4 + 1); // + the setup client's one connection
}

TEST_CASE("resolve_many (POST /api/v1/resolve)") {
    SdkNode n;
    auto steel = n.client(n.steel_key);
    REQUIRE(steel.create(steel_record("88.118.8/M1")).ok());
    REQUIRE(steel.create(steel_record("88.118.8/M2")).ok());
    auto anon = n.client();
    if (endpoint_missing(anon, "POST", "/api/v1/resolve", "[]")) {
        auto r = anon.resolve_many({"88.118.8/M1"});
        CHECK(r.error().http_status >= 404);
        CHECK(r.error().response_code == 4);
        return;
    }
    auto many = anon.resolve_many({"88.118.8/M2", "88.118.8/none", "88.118.8/M1"});
    REQUIRE_MESSAGE(many.ok(), many.error().to_string());
    REQUIRE(many->size() == 3);
    CHECK((*many)[0].handle == "88.118.8/M2");
    CHECK((*many)[0].response_code == 1);
    CHECK(indices((*many)[0]) == std::vector<int>{1, 2000});
    CHECK((*many)[1].response_code == 100);
    CHECK((*many)[2].handle == "88.118.8/M1");
    // more than 1000 handles are split into several requests (by an account: anonymous callers
    // get 200 handles/s from one address by default)
    std::vector<std::string> lots(1500, "88.118.8/M1");
    auto split = steel.resolve_many(lots);
    REQUIRE_MESSAGE(split.ok(), split.error().to_string());
    CHECK(split->size() == 1500);
    CHECK(split->back().response_code == 1);
}

TEST_CASE("stats and templates") {
    SdkNode n;
    auto admin = n.client(n.admin_key);
    if (!endpoint_missing(admin, "GET", "/api/v1/stats")) {
        auto s = admin.stats();
        REQUIRE_MESSAGE(s.ok(), s.error().to_string());
        CHECK(parse(*s).as_object().contains("identifiers"));
    } else {
        CHECK(admin.stats().error().kind == sdk::ErrorKind::not_found);
    }
    if (!endpoint_missing(admin, "GET", "/api/v1/templates")) {
        const std::string doc =
            R"({"prefix":"88.118.8","version":"sdk-1.0","industryCategory":"C","type":2,"description":"sdk test","items":[{"name":"炉号","idType":"heat_no","idIndex":2000,"required":true,"state":1,"metadata":{"type":"string","minLength":1,"maxLength":32}}]})";
        auto created = admin.create_template(doc);
        REQUIRE_MESSAGE(created.ok(), created.error().to_string());
        auto shown = admin.get_template("88.118.8", "sdk-1.0");
        REQUIRE_MESSAGE(shown.ok(), shown.error().to_string());
        CHECK(shown->find("heat_no") != std::string::npos);
        auto all = admin.list_templates();
        REQUIRE(all.ok());
        CHECK(all->find("sdk-1.0") != std::string::npos);
        CHECK(admin.get_template("88.118.8", "none").error().http_status == 404);
    } else {
        CHECK(admin.list_templates().error().kind == sdk::ErrorKind::not_found);
    }
}

TEST_CASE("bulk (POST /api/v1/bulk)") {
    SdkNode n;
    auto steel = n.client(n.steel_key);
    const int count = reduced_mode() ? 300 : 3000;
    std::vector<sdk::Record> records;
    for (int i = 0; i < count; ++i)
        records.push_back(steel_record("88.118.8/B" + std::to_string(i)));
    records[7].handle = "88.118.9/not-mine"; // rejected alone
    if (endpoint_missing(steel, "POST", "/api/v1/bulk?mode=create", "")) {
        auto r = steel.bulk_range(records);
        REQUIRE_FALSE(r.ok());
        // today's node refuses the streamed body before routing (413) or does not know the route
        CHECK_MESSAGE(r.error().http_status >= 400, r.error().to_string());
        CHECK_FALSE(r.error().message.empty());
        return;
    }
    std::mutex m;
    std::vector<sdk::BulkItemResult> results;
    std::atomic<int> progress_calls{0};
    sdk::BulkOptions opt;
    opt.streams = 3;
    opt.chunk_records = 100;
    opt.window_records = 400;
    opt.progress_interval = 10ms;
    opt.on_result = [&](const sdk::BulkItemResult& r) {
        std::lock_guard lock(m);
        results.push_back(r);
    };
    opt.on_progress = [&](const sdk::BulkProgress& p) {
        ++progress_calls;
        CHECK(p.done <= p.sent);
        return true;
    };
    auto summary = steel.bulk_range(records, opt);
    REQUIRE_MESSAGE(summary.ok(), summary.error().to_string());
    CHECK(summary->records == static_cast<std::uint64_t>(count));
    CHECK(summary->created == static_cast<std::uint64_t>(count - 1));
    CHECK(summary->errors == 1);
    CHECK(results.size() == static_cast<std::size_t>(count));
    CHECK(progress_calls >= 1);
    std::set<std::uint64_t> seen;
    for (const auto& r : results) {
        seen.insert(r.index);
        if (r.index == 7) {
            CHECK(r.status == sdk::BulkStatus::error);
            CHECK_FALSE(r.error_message.empty());
        } else {
            CHECK(r.status == sdk::BulkStatus::created);
            CHECK(r.handle == records[r.index].handle);
        }
    }
    CHECK(seen.size() == static_cast<std::size_t>(count));
    CHECK(steel.resolve("88.118.8/B42").ok());

    // create again: identical records are unchanged; through a dropping proxy the stream is
    // resent (create mode) and every record still has exactly one result
    DroppingProxy proxy(n.node.https_port(), 1);
    auto o = n.options();
    o.url = "https://127.0.0.1:" + std::to_string(proxy.port());
    o.api_key = n.steel_key;
    auto via_proxy = make_client(o);
    sdk::BulkOptions again;
    again.errors_only = true;
    std::atomic<int> errors{0};
    again.on_result = [&](const sdk::BulkItemResult&) { ++errors; };
    auto second = via_proxy.bulk_range(records, again);
    REQUIRE_MESSAGE(second.ok(), second.error().to_string());
    CHECK(second->unchanged == static_cast<std::uint64_t>(count - 1));
    CHECK(second->errors == 1);
    CHECK(errors == 1);

    // an endless reader stops when the progress callback says so
    sdk::BulkOptions cancel;
    cancel.streams = 2;
    cancel.progress_interval = 20ms;
    cancel.on_progress = [](const sdk::BulkProgress& p) {
        return p.done == 0 && p.elapsed_s < 0.2;
    };
    std::atomic<std::uint64_t> produced{0};
    auto stopped = steel.bulk_lines(
        [&](std::string& line) {
            line = steel_record("88.118.8/E" + std::to_string(produced++)).to_json();
            return true;
        },
        cancel);
    REQUIRE_FALSE(stopped.ok());
    CHECK(stopped.error().kind == sdk::ErrorKind::cancelled);

    // bad credentials fail the whole load with the server's answer. The node must have survived
    // the cancelled multi-stream upload above (it once aborted here: the session destroyed the
    // body parser while a read still parsed into it).
    REQUIRE_MESSAGE(n.node.running(), n.node.stderr_text().substr(0, 1500));
    auto anon = n.client();
    auto refused = anon.bulk_range(records);
    REQUIRE_FALSE(refused.ok());
    INFO("sdk error: " << refused.error().message << " kind "
                       << static_cast<int>(refused.error().kind));
    CHECK(refused.error().http_status == 401);
}
