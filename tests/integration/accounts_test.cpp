// Account credentials and administration against the real idnode binary
// (docs/api.md#accounts-and-credentials): a login token or an API key cannot mint a lasting
// credential without the current password; revoking an account's tokens can revoke its API keys;
// admins disable, enable and delete accounts and take prefixes away from them, and each takes
// effect at once on every API a credential is used on (Handle REST, native, SNMS), also on a
// kept-alive connection that authenticated before.
#include "harness.hpp"
#include "idnode/registry/admin.hpp"
#include "json_helpers.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <ctime>
#include <string>
#include <vector>

using namespace idnode::test;
namespace json = boost::json;
using V = http::verb;
using S = http::status;

namespace {

std::string local_date(std::time_t t) {
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return buf;
}

const char* kRecord = R"({"values":[
  {"index":1,"type":"URL","data":"https://steel.example.cn/c/R1"},
  {"index":2001,"type":"price","data":"4120.50","permissions":"1100"}]})";

std::string snms_record(const std::string& handle) {
    return R"({"handle":")" + handle +
           R"(","value":[{"index":1,"type":"URL","data":{"format":"string","value":"https://x.example.cn/s"}}]})";
}

/// A node with prefixes 88.118.8 and 88.118.9 and an enterprise account steel owning both, with
/// a password, an API key and a login token.
struct AccountsNode {
    NodeProcess node{"accounts"};
    std::unique_ptr<HttpsClient> c;
    std::string admin, steel_key, steel_token;
    const std::string password = "steel-secret-1";

    AccountsNode() {
        auto init = run_command({IDNODE_IDCTL_BINARY, "init", "--data-dir",
                                 (node.dir() / "db").string(), "--node-prefix", "88.118"});
        REQUIRE_MESSAGE(init.exit_code == 0, init.err);
        admin = "Bearer " +
                std::string(body_of(Response{S::ok, 11, init.out}).at("admin_key").as_string());
        node.start();
        c = client();
        for (const char* p : {"88.118.8", "88.118.9"})
            as_admin(
                V::post, "/api/v1/prefixes",
                std::string(R"({"prefix":")") + p +
                    R"(","enterprise":{"name":"示例钢铁","credit_code":"91310000631696382C","industry":"C3130","contact":"ops@example.cn"}})",
                S::created);
        as_admin(
            V::post, "/api/v1/accounts",
            R"({"username":"steel","role":"enterprise","prefixes":["88.118.8","88.118.9"],"password":")" +
                password + R"("})",
            S::created);
        steel_key = new_key("steel");
        steel_token = login("steel", password);
    }

    std::unique_ptr<HttpsClient> client(const std::string& source = {}) {
        TlsOptions tls = trust(node.pki().ca_cert);
        tls.source_address = source;
        auto out = std::make_unique<HttpsClient>(node.https_port(), tls);
        out->connect();
        return out;
    }

    Response as_admin(V method, const std::string& target, const std::string& body, S expected) {
        auto r = c->request(method, target, body, {{"Authorization", admin}});
        REQUIRE_MESSAGE(r.result() == expected, target, " ", r.body());
        return r;
    }

    std::string new_key(const std::string& user) {
        auto r = as_admin(V::post, "/api/v1/accounts/" + user + "/keys", {}, S::created);
        return "Bearer " + std::string(body_of(r).at("key").as_string());
    }

    /// The SNMS plain login: the token, or "" when refused (`message` gets the envelope's).
    std::string login(const std::string& user, const std::string& pw,
                      std::string* message = nullptr) {
        auto r = c->request(V::post, "/identity/token",
                            R"({"username":")" + user + R"(","password":")" + pw + R"("})");
        REQUIRE(r.result() == S::ok);
        const auto o = body_of(r).as_object();
        if (message)
            *message = std::string(o.at("message").as_string());
        return o.at("status").as_int64() == 1
                   ? "Bearer " + std::string(o.at("data").at("token").as_string())
                   : std::string();
    }
};

/// The SNMS envelope status of a call with `authorization`.
int snms_status(HttpsClient& c, V method, const std::string& target, const std::string& body,
                const std::string& authorization) {
    auto r = c.request(method, target, body,
                       {{"Content-Type", "application/json"}, {"Authorization", authorization}});
    REQUIRE_MESSAGE(r.result() == S::ok, r.body());
    return static_cast<int>(body_of(r).at("status").as_int64());
}

/// Writes through every API family with `authorization` and returns the HTTP status of the
/// Handle REST PUT, the native stats call and the SNMS envelope status of a record write.
struct Uses {
    S handle, native;
    int snms;
};
Uses use(HttpsClient& c, const std::string& authorization, const std::string& suffix) {
    Uses u{};
    u.handle = c.request(V::put, "/api/handles/88.118.8/H-" + suffix, kRecord,
                         {{"Authorization", authorization}})
                   .result();
    u.native = c.request(V::get, "/api/v1/stats", {}, {{"Authorization", authorization}}).result();
    u.snms = snms_status(c, V::post, "/identityv2/data", snms_record("88.118.8/S-" + suffix),
                         authorization);
    return u;
}

void check_works(HttpsClient& c, const std::string& authorization, const std::string& suffix) {
    const Uses u = use(c, authorization, suffix);
    CHECK(u.handle == S::created);
    CHECK(u.native == S::ok);
    CHECK(u.snms == 1);
}

void check_refused(HttpsClient& c, const std::string& authorization, const std::string& suffix) {
    const Uses u = use(c, authorization, suffix);
    CHECK(u.handle == S::unauthorized);
    CHECK(u.native == S::unauthorized);
    CHECK(u.snms == -1);
}

} // namespace

TEST_CASE("a login token or an API key mints a key or a password only with the current "
          "password") {
    AccountsNode n;
    auto& c = *n.c;
    const std::string keys = "/api/v1/accounts/steel/keys";
    const std::string pw = "/api/v1/accounts/steel/password";
    for (const std::string& auth : {n.steel_token, n.steel_key}) {
        CAPTURE(auth.substr(0, 11));
        // No or a wrong current password: refused (each a failed login: 6 in all here, under
        // the 10 a minute that throttle the account).
        const bool token = auth == n.steel_token;
        auto r = c.request(V::post, keys, token ? "" : "{}", {{"Authorization", auth}});
        CHECK(r.result() == S::forbidden);
        CHECK(error_code(r) == "current_password_required");
        r = c.request(V::post, keys, R"({"current_password":"not-the-password"})",
                      {{"Authorization", auth}});
        CHECK(r.result() == S::forbidden);
        CHECK(error_code(r) == "wrong_current_password");
        r = c.request(V::put, pw,
                      token ? R"({"password":"taken-over-1"})"
                            : R"({"password":"taken-over-1","current_password":"not-it"})",
                      {{"Authorization", auth}});
        CHECK(r.result() == S::forbidden);
        CHECK(error_code(r) == (token ? "current_password_required" : "wrong_current_password"));
        r = c.request(V::put, pw, R"({"password":"taken-over-1","current_password":7})",
                      {{"Authorization", auth}});
        CHECK(r.result() == S::bad_request);
    }
    // The password was not changed.
    CHECK(c.request(V::get, "/api/v1/stats", {},
                    {{"Authorization", basic_authorization("steel", n.password)}})
              .result() == S::ok);
    CHECK(c.request(V::get, "/api/v1/stats", {},
                    {{"Authorization", basic_authorization("steel", "taken-over-1")}})
              .result() == S::unauthorized);

    // With the current password a token mints a key; HTTP Basic (the password itself) needs
    // nothing more, and neither does an admin.
    auto made = c.request(V::post, keys, R"({"current_password":")" + n.password + R"("})",
                          {{"Authorization", n.steel_token}});
    REQUIRE_MESSAGE(made.result() == S::created, made.body());
    const std::string minted = "Bearer " + std::string(body_of(made).at("key").as_string());
    CHECK(c.request(V::get, "/api/v1/stats", {}, {{"Authorization", minted}}).result() == S::ok);
    CHECK(
        c.request(V::post, keys, {}, {{"Authorization", basic_authorization("steel", n.password)}})
            .result() == S::created);
    CHECK(c.request(V::post, keys, {}, {{"Authorization", n.admin}}).result() == S::created);

    // A key changes the password with the current one; the new password works.
    auto changed = c.request(
        V::put, pw, R"({"password":"steel-secret-2","current_password":")" + n.password + R"("})",
        {{"Authorization", n.steel_key}});
    CHECK_MESSAGE(changed.result() == S::ok, changed.body());
    CHECK(c.request(V::get, "/api/v1/stats", {},
                    {{"Authorization", basic_authorization("steel", "steel-secret-2")}})
              .result() == S::ok);

    // An account without a password cannot confirm anything: only an admin mints its keys.
    n.as_admin(V::post, "/api/v1/accounts",
               R"({"username":"mes","role":"enterprise","prefixes":["88.118.9"]})", S::created);
    const std::string mes = n.new_key("mes");
    auto r = c.request(V::post, "/api/v1/accounts/mes/keys", {}, {{"Authorization", mes}});
    CHECK(r.result() == S::forbidden);
    CHECK(error_code(r) == "current_password_required");
}

TEST_CASE("a wrong or missing current password counts as a failed login") {
    AccountsNode n;
    // From an address of its own, so that only this account and this address are throttled.
    auto attacker = n.client("127.0.7.1");
    int refused = 0;
    for (int i = 0; i < 10; ++i) {
        const std::string body =
            i % 2 == 0 ? std::string("{}")
                       : R"({"current_password":"guess-)" + std::to_string(i) + R"("})";
        const auto r = attacker->request(V::post, "/api/v1/accounts/steel/keys", body,
                                         {{"Authorization", n.steel_token}});
        refused += r.result() == S::forbidden;
    }
    CHECK(refused == 10);
    // The 11th try is refused before the password is looked at, even the right one.
    const auto r = attacker->request(V::post, "/api/v1/accounts/steel/keys",
                                     R"({"current_password":")" + n.password + R"("})",
                                     {{"Authorization", n.steel_token}});
    CHECK(r.result() == S::too_many_requests);
    CHECK_FALSE(r[http::field::retry_after].empty());
    // The account is throttled as for failed logins: its password logs in nowhere for now.
    std::string message;
    CHECK(n.login("steel", n.password, &message).empty());
    CHECK(message == "登录失败次数过多，请稍后再试");
}

TEST_CASE("revoking an account's tokens with keys=true revokes its API keys too") {
    AccountsNode n;
    auto& c = *n.c;
    const std::string second_key = n.new_key("steel");
    n.as_admin(V::post, "/api/v1/accounts",
               R"({"username":"other","role":"enterprise","prefixes":["88.118.9"]})", S::created);
    const std::string other_key = n.new_key("other");

    // Without keys=true only the tokens die (as before).
    CHECK(
        c.request(V::delete_, "/api/v1/accounts/steel/tokens", {}, {{"Authorization", n.steel_key}})
            .result() == S::no_content);
    CHECK(c.request(V::get, "/api/v1/stats", {}, {{"Authorization", n.steel_token}}).result() ==
          S::unauthorized);
    check_works(c, n.steel_key, "a");
    CHECK(c.request(V::delete_, "/api/v1/accounts/steel/tokens?keys=maybe", {},
                    {{"Authorization", n.steel_key}})
              .result() == S::bad_request);

    // A fresh token revokes everything, its own kind and the keys.
    const std::string token = n.login("steel", n.password);
    REQUIRE_FALSE(token.empty());
    CHECK(c.request(V::delete_, "/api/v1/accounts/steel/tokens?keys=true", {},
                    {{"Authorization", token}})
              .result() == S::no_content);
    // (Revoked credentials are failed logins: tried from an address of their own, so that this
    // one is not throttled.)
    auto bad = n.client("127.0.8.1");
    check_refused(*bad, token, "b");
    check_refused(*bad, n.steel_key, "c");
    check_refused(*bad, second_key, "d");
    // The password still works (a new login gets a working token); other accounts keep theirs.
    const std::string again = n.login("steel", n.password);
    REQUIRE_FALSE(again.empty());
    check_works(c, again, "e");
    CHECK(c.request(V::get, "/api/v1/stats", {}, {{"Authorization", other_key}}).result() == S::ok);
}

TEST_CASE("a disabled account's key, token and password stop working at once on every API") {
    AccountsNode n;
    // A connection that has already used every credential (the Basic check is cached) and is
    // kept alive across the disable.
    auto kept = n.client();
    const std::string basic = basic_authorization("steel", n.password);
    check_works(*kept, basic, "1");
    check_works(*kept, n.steel_key, "2");
    check_works(*kept, n.steel_token, "3");

    auto r = n.as_admin(V::post, "/api/v1/accounts/steel/disable", {}, S::ok);
    CHECK(body_of(r).at("disabled").as_bool());

    check_refused(*kept, basic, "4");
    check_refused(*kept, n.steel_key, "5");
    check_refused(*kept, n.steel_token, "6");
    // Bulk and the Handle REST delete too.
    CHECK(
        kept->request(
                V::post, "/api/v1/bulk",
                R"({"handle":"88.118.8/B1","values":[{"index":1,"type":"URL","data":"https://x.example.cn/b"}]})"
                "\n",
                {{"Authorization", n.steel_key}})
            .result() == S::unauthorized);
    CHECK(kept->request(V::delete_, "/api/handles/88.118.8/H-1", {}, {{"Authorization", basic}})
              .result() == S::unauthorized);
    const auto refused = kept->request(V::get, "/api/v1/stats", {}, {{"Authorization", basic}});
    CHECK(body_of(refused).at("error").at("message").as_string() == "account steel is disabled");
    // Neither SNMS login issues a token.
    std::string message;
    CHECK(n.login("steel", n.password, &message).empty());
    CHECK(message == "账号已停用");
    const std::string v1 = idnode::registry::sha256_hex(idnode::registry::sha256_hex(n.password) +
                                                        local_date(std::time(nullptr)));
    CHECK(snms_status(*kept, V::post, "/identity/token/v1",
                      R"({"username":"steel","password":")" + v1 + R"("})", {}) == -2);
    // The account list says so; disabling again changes nothing.
    auto list = body_of(n.as_admin(V::get, "/api/v1/accounts", {}, S::ok));
    for (const auto& a : list.at("accounts").as_array())
        CHECK(a.at("disabled").as_bool() == (a.at("username").as_string() == "steel"));
    n.as_admin(V::post, "/api/v1/accounts/steel/disable", {}, S::ok);
    // Refusing a disabled account's valid credentials is not a failed login: this address is
    // not throttled after many of them.
    for (int i = 0; i < 12; ++i)
        kept->request(V::get, "/api/v1/stats", {}, {{"Authorization", n.steel_key}});
    CHECK(kept->request(V::get, "/api/v1/stats", {}, {{"Authorization", n.admin}}).result() ==
          S::ok);

    // Enabled again: the key and the password work; tokens issued before the disable stay dead.
    r = n.as_admin(V::post, "/api/v1/accounts/steel/enable", {}, S::ok);
    CHECK_FALSE(body_of(r).at("disabled").as_bool());
    check_works(*kept, basic, "7");
    check_works(*kept, n.steel_key, "8");
    check_refused(*kept, n.steel_token, "9");
    const std::string fresh = n.login("steel", n.password);
    REQUIRE_FALSE(fresh.empty());
    check_works(*kept, fresh, "10");
}

TEST_CASE("disable, enable and delete are admin-only; an admin cannot disable or delete itself") {
    AccountsNode n;
    auto& c = *n.c;
    n.as_admin(V::post, "/api/v1/accounts",
               R"({"username":"admin2","role":"admin","password":"admin2-secret"})", S::created);
    const std::string admin2 = basic_authorization("admin2", "admin2-secret");
    for (const std::string target :
         {"/api/v1/accounts/admin2/disable", "/api/v1/accounts/admin2/enable",
          "/api/v1/accounts/admin2", "/api/v1/accounts/steel/prefixes/88.118.8"}) {
        CAPTURE(target);
        const V method = target.find("able") != std::string::npos ? V::post : V::delete_;
        CHECK(c.request(method, target).result() == S::unauthorized);
        for (const std::string& auth :
             {n.steel_key, n.steel_token, basic_authorization("steel", n.password)}) {
            const auto r = c.request(method, target, {}, {{"Authorization", auth}});
            CHECK(r.result() == S::forbidden);
            CHECK(error_code(r) == "forbidden");
        }
    }
    // Not itself: 409, and it keeps working.
    auto r = c.request(V::post, "/api/v1/accounts/admin2/disable", {}, {{"Authorization", admin2}});
    CHECK(r.result() == S::conflict);
    CHECK(error_code(r) == "own_account");
    r = c.request(V::delete_, "/api/v1/accounts/admin2", {}, {{"Authorization", admin2}});
    CHECK(r.result() == S::conflict);
    CHECK(error_code(r) == "own_account");
    // Another admin may; then admin2 can do nothing any more.
    n.as_admin(V::post, "/api/v1/accounts/admin2/disable", {}, S::ok);
    CHECK(c.request(V::post, "/api/v1/accounts/admin/disable", {}, {{"Authorization", admin2}})
              .result() == S::unauthorized);
    CHECK(c.request(V::post, "/api/v1/accounts/nobody/disable", {}, {{"Authorization", n.admin}})
              .result() == S::not_found);
    CHECK(c.request(V::delete_, "/api/v1/accounts/nobody", {}, {{"Authorization", n.admin}})
              .result() == S::not_found);
}

TEST_CASE("deleting an account removes it, its keys and its tokens; its prefixes stay") {
    AccountsNode n;
    auto& c = *n.c;
    const std::string basic = basic_authorization("steel", n.password);
    check_works(c, n.steel_key, "1");
    check_works(c, basic, "2");

    CHECK(c.request(V::delete_, "/api/v1/accounts/steel", {}, {{"Authorization", n.admin}})
              .result() == S::no_content);
    // (Credentials of a deleted account are failed logins: tried from addresses of their own,
    // so that this one is not throttled.)
    auto bad = n.client("127.0.8.2");
    check_refused(*bad, n.steel_key, "3");
    check_refused(*bad, n.steel_token, "4");
    check_refused(*bad, basic, "5");
    CHECK(n.login("steel", n.password).empty());
    auto list = body_of(n.as_admin(V::get, "/api/v1/accounts", {}, S::ok));
    for (const auto& a : list.at("accounts").as_array())
        CHECK(a.at("username").as_string() != "steel");
    CHECK(c.request(V::delete_, "/api/v1/accounts/steel", {}, {{"Authorization", n.admin}})
              .result() == S::not_found);

    // The prefix and its records stay (public values resolve anonymously).
    n.as_admin(V::get, "/api/v1/prefixes/88.118.8", {}, S::ok);
    CHECK(c.request(V::get, "/api/handles/88.118.8/H-1").result() == S::ok);

    // A new account of the same name and password inherits none of the old credentials.
    n.as_admin(V::post, "/api/v1/accounts",
               R"({"username":"steel","role":"enterprise","prefixes":["88.118.8"],"password":")" +
                   n.password + R"("})",
               S::created);
    auto bad2 = n.client("127.0.8.3");
    check_refused(*bad2, n.steel_key, "6");
    check_refused(*bad2, n.steel_token, "7");
    check_works(c, basic, "8");
}

TEST_CASE("removing a prefix from an account takes its rights there at once") {
    AccountsNode n;
    auto& c = *n.c;
    n.as_admin(V::post, "/api/v1/accounts",
               R"({"username":"auditor","role":"reader","prefixes":["88.118.8","88.118.9"]})",
               S::created);
    const std::string reader = n.new_key("auditor");
    n.as_admin(V::put, "/api/handles/88.118.8/R1", kRecord, S::created);
    n.as_admin(V::put, "/api/handles/88.118.9/R1", kRecord, S::created);
    auto visible = [&](const std::string& handle, const std::string& auth) {
        auto r = c.request(V::get, "/api/handles/" + handle, {}, {{"Authorization", auth}});
        REQUIRE_MESSAGE(r.result() == S::ok, r.body());
        return body_of(r).at("values").as_array().size();
    };
    CHECK(visible("88.118.8/R1", n.steel_key) == 2);
    CHECK(visible("88.118.8/R1", reader) == 2);
    check_works(c, n.steel_token, "1");

    auto r = n.as_admin(V::delete_, "/api/v1/accounts/steel/prefixes/88.118.8", {}, S::ok);
    CHECK(json::serialize(body_of(r).at("prefixes")) == R"(["88.118.9"])");
    n.as_admin(V::delete_, "/api/v1/accounts/auditor/prefixes/88.118.8", {}, S::ok);

    // Writes under 88.118.8 are refused on every API, private values hidden; 88.118.9 unchanged.
    for (const std::string& auth :
         {n.steel_key, n.steel_token, basic_authorization("steel", n.password)}) {
        CHECK(c.request(V::put, "/api/handles/88.118.8/after", kRecord, {{"Authorization", auth}})
                  .result() == S::forbidden);
        CHECK(snms_status(c, V::post, "/identityv2/data", snms_record("88.118.8/after"), auth) ==
              -3);
        CHECK(visible("88.118.8/R1", auth) == 1);
        CHECK(visible("88.118.9/R1", auth) == 2);
    }
    CHECK(
        c.request(V::put, "/api/handles/88.118.9/after", kRecord, {{"Authorization", n.steel_key}})
            .result() == S::created);
    CHECK(visible("88.118.8/R1", reader) == 1);
    CHECK(visible("88.118.9/R1", reader) == 2);

    // Not the account's prefix (any more) → 404; not a prefix → 400; no such account → 404.
    r = c.request(V::delete_, "/api/v1/accounts/steel/prefixes/88.118.8", {},
                  {{"Authorization", n.admin}});
    CHECK(r.result() == S::not_found);
    CHECK(c.request(V::delete_, "/api/v1/accounts/steel/prefixes/88..118", {},
                    {{"Authorization", n.admin}})
              .result() == S::bad_request);
    CHECK(c.request(V::delete_, "/api/v1/accounts/nobody/prefixes/88.118.9", {},
                    {{"Authorization", n.admin}})
              .result() == S::not_found);
}
