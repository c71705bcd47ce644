// The SNMS-compatible API and templates against the real idnode binary
// (docs/api.md#snms-compatible-api): the SNMS client flow (tokens, template, register, detail,
// update, batches, disabled items, delete in use), validation on the Handle REST write path,
// cross-API visibility, private template items hidden from anonymous callers on both APIs, and the
// native template routes.
#include "harness.hpp"
#include "idnode/registry/admin.hpp"
#include "json_helpers.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <ctime>
#include <thread>

using namespace idnode::test;
namespace json = boost::json;
using V = http::verb;

namespace {

std::string local_date(std::time_t t) {
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return buf;
}

const char* kTemplate = R"({"prefix":"88.118.8","version":"1.0","industryCategory":"C",
  "industrySpecific":"31","industryTrade":"313","industrySubclass":"3130","type":1,
  "description":"钢卷","items":[
  {"name":"炉号","idType":"heat_no","idIndex":2000,"required":true,"state":1,
   "metadata":{"type":"string","minLength":4,"maxLength":20}},
  {"name":"牌号","idType":"grade","idIndex":2001,"required":true,"state":1,
   "metadata":{"type":"enum","values":["Q235B","Q345B"]}},
  {"name":"生产日期","idType":"production_date","idIndex":2002,"required":false,"state":1,
   "metadata":{"type":"date"}},
  {"name":"单价","idType":"unit_price","idIndex":2003,"required":false,"state":1,"public":false,
   "metadata":{"type":"number"}}]})";

std::string record(const std::string& handle, const std::string& heat,
                   const std::string& extra = {}) {
    return R"({"handle":")" + handle + R"(","templateVersion":"1.0","value":[
      {"index":1,"type":"URL","data":{"format":"string","value":"https://steel.example.cn/)" +
           handle + R"("}},
      {"index":2000,"type":"heat_no","data":{"format":"string","value":")" +
           heat + R"("}},
      {"index":2001,"type":"grade","data":{"format":"string","value":"Q235B"}},
      {"index":2003,"type":"unit_price","data":{"format":"string","value":"4120.50"}})" +
           extra + "]}";
}

struct SnmsNode {
    NodeProcess node{"snms"};
    std::string admin;
    const std::string password = "steel-secret-1";

    /// `settings`: extra configuration keys; everything else has its default (no body limits
    /// raised: the batch routes must work as shipped).
    explicit SnmsNode(const char* token_ttl = nullptr,
                      std::vector<std::pair<std::string, std::string>> settings = {}) {
        auto init = run_command({IDNODE_IDCTL_BINARY, "init", "--data-dir",
                                 (node.dir() / "db").string(), "--node-prefix", "88.118"});
        REQUIRE_MESSAGE(init.exit_code == 0, init.err);
        admin = "Bearer " +
                std::string(
                    body_of(Response{http::status::ok, 11, init.out}).at("admin_key").as_string());
        if (token_ttl)
            node.set("snms.token_ttl_s", token_ttl);
        for (const auto& [key, value] : settings)
            node.set(key, value);
        node.start();
        auto c = client();
        for (const char* p : {"88.118.8", "88.118.9"}) {
            auto r = c->request(
                V::post, "/api/v1/prefixes",
                std::string(R"({"prefix":")") + p +
                    R"(","enterprise":{"name":"示例钢铁","credit_code":"91310000631696382C","industry":"C3130","contact":"ops@example.cn"}})",
                {{"Authorization", admin}});
            REQUIRE_MESSAGE(r.result() == http::status::created, r.body());
        }
        for (
            std::string body :
            {R"({"username":"steel","role":"enterprise","prefixes":["88.118.8"],"password":")" +
                 password + R"("})",
             std::string(
                 R"({"username":"other","role":"enterprise","prefixes":["88.118.9"],"password":"other-secret-1"})")}) {
            auto r = c->request(V::post, "/api/v1/accounts", body, {{"Authorization", admin}});
            REQUIRE_MESSAGE(r.result() == http::status::created, r.body());
        }
    }

    std::unique_ptr<HttpsClient> client() {
        auto c = std::make_unique<HttpsClient>(node.https_port(), trust(node.pki().ca_cert));
        c->connect();
        return c;
    }
};

/// An SNMS call: HTTP 200 and the envelope.
json::object snms(HttpsClient& c, V method, const std::string& target, const std::string& body,
                  const std::string& token) {
    std::vector<std::pair<std::string, std::string>> headers{{"Content-Type", "application/json"}};
    if (!token.empty())
        headers.emplace_back("Authorization", "Bearer " + token);
    auto r = c.request(method, target, body, headers);
    REQUIRE_MESSAGE(r.result() == http::status::ok, r.body());
    auto v = body_of(r);
    REQUIRE(v.is_object());
    REQUIRE(v.as_object().contains("status"));
    REQUIRE(v.as_object().contains("message"));
    REQUIRE(v.as_object().contains("data"));
    return v.as_object();
}

int status_of(const json::object& o) {
    return static_cast<int>(o.at("status").as_int64());
}
std::string message_of(const json::object& o) {
    return std::string(o.at("message").as_string());
}

std::string login(HttpsClient& c, const std::string& user, const std::string& password) {
    auto o = snms(c, V::post, "/identity/token",
                  R"({"username":")" + user + R"(","password":")" + password + R"("})", {});
    REQUIRE_MESSAGE(status_of(o) == 1, message_of(o));
    return std::string(o.at("data").at("token").as_string());
}

} // namespace

TEST_CASE("SNMS client flow: tokens, template, register, detail, update, batches, delete") {
    SnmsNode n;
    auto c = n.client();

    // ---- tokens: plain, date-salted v1, wrong password, no token, revoked
    const std::string token = login(*c, "steel", n.password);
    CHECK(token.rfind("idt_", 0) == 0);
    const std::string inner = idnode::registry::sha256_hex(n.password);
    const std::string v1 = idnode::registry::sha256_hex(inner + local_date(std::time(nullptr)));
    auto t1 = snms(*c, V::post, "/identity/token/v1",
                   R"({"username":"steel","password":")" + v1 + R"("})", {});
    CHECK(status_of(t1) == 1);
    const std::string stale =
        idnode::registry::sha256_hex(inner + local_date(std::time(nullptr) - 3 * 86400));
    auto t_stale = snms(*c, V::post, "/identity/token/v1",
                        R"({"username":"steel","password":")" + stale + R"("})", {});
    CHECK(status_of(t_stale) == -2);
    auto wrong = snms(*c, V::post, "/identity/token",
                      R"({"username":"steel","password":"not-the-password"})", {});
    CHECK(status_of(wrong) == -2);
    CHECK(message_of(wrong) == "用户名或密码错误");
    auto missing = snms(*c, V::post, "/identity/token", R"({"username":"steel"})", {});
    CHECK(status_of(missing) == -2);
    auto anon = snms(*c, V::post, "/identityv2/data", record("88.118.8/C1", "H2024001"), {});
    CHECK(status_of(anon) == -1);
    auto forged = snms(*c, V::post, "/identityv2/data", record("88.118.8/C1", "H2024001"),
                       token.substr(0, token.size() - 4) + "0000");
    CHECK(status_of(forged) == -1);

    // ---- template
    auto tpl = snms(*c, V::post, "/snms/api/v5/template", kTemplate, token);
    REQUIRE_MESSAGE(status_of(tpl) == 1, message_of(tpl));
    auto again = snms(*c, V::post, "/snms/api/v5/template", kTemplate, token);
    CHECK(status_of(again) == -2);
    CHECK(message_of(again) == "模板已存在");
    auto got = snms(*c, V::get, "/snms/api/v3/template?prefix=88.118.8&version=1.0", {}, token);
    REQUIRE(status_of(got) == 1);
    CHECK(got.at("data").at("items").as_array().size() == 4);
    const std::string other = login(*c, "other", "other-secret-1");
    auto foreign = snms(*c, V::get, "/snms/api/v5/template?prefix=88.118.8&version=1.0", {}, other);
    CHECK(status_of(foreign) == -3);

    // ---- register, detail, update
    auto created = snms(*c, V::post, "/identityv2/data", record("88.118.8/C1", "H2024001"), token);
    REQUIRE_MESSAGE(status_of(created) == 1, message_of(created));
    auto exists = snms(*c, V::post, "/identityv2/data", record("88.118.8/C1", "H2024001"), token);
    CHECK(status_of(exists) == -2);
    CHECK(message_of(exists) == "标识已存在");
    auto detail = snms(*c, V::get, "/identityv2/data/detail?handle=88.118.8/C1", {}, token);
    REQUIRE(status_of(detail) == 1);
    CHECK(detail.at("data").at("templateVersion").as_string() == "1.0");
    CHECK(detail.at("data").at("prefix").as_string() == "88.118.8");
    bool saw_template = false, saw_price = false;
    for (const auto& v : detail.at("data").at("value").as_array()) {
        saw_template |= v.at("index").as_int64() == 1001 && v.at("type").as_string() == "TEMPLATE";
        saw_price |= v.at("index").as_int64() == 2003;
    }
    CHECK(saw_template);
    CHECK(saw_price); // the owner sees the private item
    auto updated = snms(*c, V::put, "/identityv2/data", record("88.118.8/C1", "H2024999"), token);
    CHECK(status_of(updated) == 1);
    auto after = c->request(V::get, "/api/handles/88.118.8/C1?index=2000");
    CHECK(after.body().find("H2024999") != std::string::npos);
    auto not_found = snms(*c, V::get, "/identityv2/data/detail?handle=88.118.8/NOPE", {}, token);
    CHECK(status_of(not_found) == -2);
    CHECK(message_of(not_found) == "没有找到标识");
    auto upd_missing =
        snms(*c, V::put, "/identityv2/data", record("88.118.8/NOPE", "H2024001"), token);
    CHECK(message_of(upd_missing) == "没有找到标识");
    auto foreign_write =
        snms(*c, V::post, "/identityv2/data", record("88.118.8/C9", "H2024001"), other);
    CHECK(status_of(foreign_write) == -3);

    // ---- batchCreate with a duplicate and an invalid record inside
    const std::string batch =
        "[" + record("88.118.8/B1", "H2024101") + "," + record("88.118.8/C1", "H2024999") + "," +
        record("88.118.8/B2", "H2024102",
               R"(,{"index":2005,"type":"color","data":{"format":"string","value":"red"}})") +
        "," + record("88.118.8/B3", "H2024103") + "]";
    auto bc = snms(*c, V::post, "/identityv2/data/batchCreate", batch, token);
    REQUIRE(status_of(bc) == 1);
    const auto& results = bc.at("data").as_array();
    REQUIRE(results.size() == 4);
    CHECK(results[0].at("handle").as_string() == "88.118.8/B1");
    CHECK(results[0].at("msg").as_string() == "成功");
    CHECK(results[1].at("msg").as_string() == "标识已存在");
    CHECK(results[2].at("msg").as_string() == "索引2005在模板中不存在");
    CHECK(results[3].at("msg").as_string() == "成功");
    CHECK(message_of(bc) == "成功2条，失败2条");
    auto invalid_detail = snms(*c, V::get, "/identityv2/data/detail?handle=88.118.8/B2", {}, token);
    CHECK(message_of(invalid_detail) == "没有找到标识");

    // ---- batchUpdate (one missing), batchDelete with a missing handle
    auto bu = snms(*c, V::put, "/identityv2/data/batchUpdate",
                   "[" + record("88.118.8/B1", "H2024201") + "," +
                       record("88.118.8/B9", "H2024209") + "]",
                   token);
    REQUIRE(status_of(bu) == 1);
    CHECK(bu.at("data").as_array()[0].at("msg").as_string() == "成功");
    CHECK(bu.at("data").as_array()[1].at("msg").as_string() == "没有找到标识");
    auto bd = snms(*c, V::delete_, "/identityv2/data/batchDelete",
                   R"(["88.118.8/B3","88.118.8/B404"])", token);
    REQUIRE(status_of(bd) == 1);
    CHECK(bd.at("data").as_array()[0].at("code").as_int64() == 1);
    CHECK(bd.at("data").as_array()[1].at("code").as_int64() == -2);
    CHECK(bd.at("data").as_array()[1].at("msg").as_string() == "没有找到标识");
    auto too_many = snms(
        *c, V::post, "/identityv2/data/batchCreate",
        "[" +
            [&] {
                std::string s;
                for (int i = 0; i < 2001; ++i)
                    s += std::string(i ? "," : "") + "{}";
                return s;
            }() +
            "]",
        token);
    CHECK(status_of(too_many) == -2);
    CHECK(message_of(too_many) == "每批最多2000条");

    // ---- disable an item, register again with it
    std::string disabled = kTemplate;
    disabled.replace(disabled.find(R"("state":1,
   "metadata":{"type":"date"})"),
                     10, R"("state":0,)");
    auto put = snms(*c, V::put, "/snms/api/v5/template", disabled, token);
    REQUIRE_MESSAGE(status_of(put) == 1, message_of(put));
    auto with_disabled = snms(
        *c, V::post, "/identityv2/data",
        record(
            "88.118.8/D1", "H2024301",
            R"(,{"index":2002,"type":"production_date","data":{"format":"string","value":"2024-11-22"}})"),
        token);
    CHECK(status_of(with_disabled) == -2);
    CHECK(message_of(with_disabled) == "索引2002(生产日期/production_date)在模板中已停用");
    std::string removed = kTemplate;
    const auto price_item = removed.find(R"(,
  {"name":"单价")");
    removed.erase(price_item, removed.rfind("]}") - price_item);
    auto deleting_item = snms(*c, V::put, "/snms/api/v5/template", removed, token);
    CHECK(status_of(deleting_item) == -2);

    // ---- delete in use (refused), then delete the records and the template
    auto refused =
        snms(*c, V::delete_, "/snms/api/v5/template?prefix=88.118.8&version=1.0", {}, token);
    CHECK(status_of(refused) == -2);
    CHECK(message_of(refused).find("模板正在被标识使用") == 0);
    auto native = c->request(V::delete_, "/api/v1/templates/88.118.8/1.0", {},
                             {{"Authorization", "Bearer " + token}});
    CHECK(native.result() == http::status::conflict);
    CHECK(body_of(native).at("error").at("code").as_string() == "in_use");
    auto cleanup = snms(*c, V::delete_, "/identityv2/data/batchDelete",
                        R"(["88.118.8/C1","88.118.8/B1"])", token);
    CHECK(message_of(cleanup) == "成功2条，失败0条");
    auto gone = snms(*c, V::delete_, "/snms/api/v3/template",
                     R"({"prefix":"88.118.8","version":"1.0"})", token);
    CHECK(status_of(gone) == 1);

    // ---- revocation: every token of the account dies
    auto revoke =
        c->request(V::delete_, "/api/v1/accounts/steel/tokens", {}, {{"Authorization", n.admin}});
    CHECK(revoke.result() == http::status::no_content);
    auto revoked = snms(*c, V::get, "/identityv2/data/detail?handle=88.118.8/C1", {}, token);
    CHECK(status_of(revoked) == -1);
    CHECK(message_of(revoked) == "token已失效，请重新获取token");
}

TEST_CASE("expired tokens are refused; token_v1 = false removes the v1 endpoint") {
    SnmsNode n("1");
    auto c = n.client();
    const std::string token = login(*c, "steel", n.password);
    std::this_thread::sleep_for(std::chrono::milliseconds(2100));
    auto expired = snms(*c, V::post, "/identityv2/data", record("88.118.8/E1", "H2024001"), token);
    CHECK(status_of(expired) == -1);
    CHECK(message_of(expired) == "登录已过期，请重新获取token");
    auto handle_api =
        c->request(V::get, "/api/handles/88.118.8/E1", {}, {{"Authorization", "Bearer " + token}});
    CHECK(handle_api.result() == http::status::unauthorized);

    SnmsNode off;
    off.node.stop();
    off.node.set("snms.token_v1", "false");
    off.node.start();
    auto c2 = off.client();
    auto r = c2->request(V::post, "/identity/token/v1", R"({"username":"steel","password":"x"})");
    CHECK(r.result() == http::status::not_found);
    CHECK(body_of(r).at("status").as_int64() == -2);
    auto plain = c2->request(V::post, "/identity/token",
                             R"({"username":"steel","password":"steel-secret-1"})");
    CHECK(body_of(plain).at("status").as_int64() == 1);
}

TEST_CASE("both APIs see the same data; private items hidden from anonymous on both") {
    SnmsNode n;
    auto c = n.client();
    const std::string token = login(*c, "steel", n.password);
    const std::string bearer = "Bearer " + token;
    auto t = c->request(V::post, "/api/v1/templates", kTemplate, {{"Authorization", bearer}});
    REQUIRE_MESSAGE(t.result() == http::status::created, t.body());

    // SNMS -> Handle REST
    REQUIRE(status_of(snms(*c, V::post, "/identityv2/data", record("88.118.8/X1", "H2024001"),
                           token)) == 1);
    auto owner =
        body_of(c->request(V::get, "/api/handles/88.118.8/X1", {}, {{"Authorization", bearer}}));
    auto detail = snms(*c, V::get, "/identityv2/data/detail?handle=88.118.8/X1", {}, token);
    const auto& rest_values = owner.at("values").as_array();
    const auto& snms_values = detail.at("data").at("value").as_array();
    REQUIRE(rest_values.size() == snms_values.size());
    for (std::size_t i = 0; i < rest_values.size(); ++i) {
        CHECK(rest_values[i].at("index") == snms_values[i].at("index"));
        CHECK(rest_values[i].at("type") == snms_values[i].at("type"));
        CHECK(rest_values[i].at("data").at("value") == snms_values[i].at("data").at("value"));
    }

    // Handle REST -> SNMS, validated the same way
    const std::string rest_record = R"({"templateVersion":"1.0","values":[
      {"index":2000,"type":"heat_no","data":"H2024002"},
      {"index":2001,"type":"grade","data":"Q345B"},
      {"index":2003,"type":"unit_price","data":"3999"}]})";
    auto put =
        c->request(V::put, "/api/handles/88.118.8/X2", rest_record, {{"Authorization", bearer}});
    REQUIRE_MESSAGE(put.result() == http::status::created, put.body());
    auto d2 = snms(*c, V::get, "/identityv2/data/detail?handle=88.118.8/X2", {}, token);
    REQUIRE(status_of(d2) == 1);
    CHECK(d2.at("data").at("templateVersion").as_string() == "1.0");
    auto bad = c->request(V::put, "/api/handles/88.118.8/X3",
                          R"({"templateVersion":"1.0","values":[
      {"index":2000,"type":"heat_no","data":"H1"},{"index":2001,"type":"grade","data":"S355"}]})",
                          {{"Authorization", bearer}});
    CHECK(bad.result() == http::status::bad_request);
    CHECK(body_of(bad).at("message").as_string() ==
          "index 2000 (heat_no 炉号) must be 4 to 20 characters long, got 2; index 2001 (grade "
          "牌号) must be one of: Q235B, Q345B");
    auto via_1001 = c->request(V::put, "/api/handles/88.118.8/X4",
                               R"({"values":[{"index":1001,"type":"TEMPLATE","data":"1.0"},
      {"index":2000,"type":"heat_no","data":"H2024004"}]})",
                               {{"Authorization", bearer}});
    CHECK(via_1001.result() == http::status::bad_request);
    CHECK(body_of(via_1001).at("message").as_string() ==
          "required index 2001 (grade 牌号) is missing");
    auto no_template = c->request(V::put, "/api/handles/88.118.8/X5",
                                  R"({"templateVersion":"9.9","values":[
      {"index":2000,"type":"heat_no","data":"H2024005"}]})",
                                  {{"Authorization", bearer}});
    CHECK(no_template.result() == http::status::bad_request);
    CHECK(c->request(V::get, "/api/handles/88.118.8/X3").result() == http::status::not_found);

    // PUT ?index= on a templated record: checked against the stored record's template
    auto partial_bad = c->request(V::put, "/api/handles/88.118.8/X2?index=2001",
                                  R"({"values":[{"index":2001,"type":"grade","data":"S355"}]})",
                                  {{"Authorization", bearer}});
    CHECK(partial_bad.result() == http::status::bad_request);
    CHECK(body_of(partial_bad).at("message").as_string() ==
          "index 2001 (grade 牌号) must be one of: Q235B, Q345B");
    auto partial_ok = c->request(V::put, "/api/handles/88.118.8/X2?index=2003",
                                 R"({"values":[{"index":2003,"type":"unit_price","data":"4000"}]})",
                                 {{"Authorization", bearer}});
    CHECK(partial_ok.result() == http::status::ok);

    // SNMS input errors: not JSON, no handle, bad handle, prefix not homed
    auto not_json = snms(*c, V::post, "/identityv2/data", "{", token);
    CHECK(message_of(not_json) == "参数错误：请求体必须是JSON对象");
    auto no_handle = snms(*c, V::post, "/identityv2/data", R"({"value":[]})", token);
    CHECK(message_of(no_handle) == "参数错误：缺少handle");
    auto bad_handle = snms(*c, V::get, "/identityv2/data/detail?handle=88.118.8", {}, token);
    CHECK(status_of(bad_handle) == -2);
    CHECK(message_of(bad_handle).rfind("标识格式错误：", 0) == 0);
    auto not_homed = snms(*c, V::get, "/identityv2/data/detail?handle=20.500.1/x", {}, token);
    CHECK(message_of(not_homed) == "标识前缀20.500.1不在本节点管理范围内");
    auto batch_not_array = snms(*c, V::post, "/identityv2/data/batchCreate", "{}", token);
    CHECK(message_of(batch_not_array) == "参数错误：请求体必须是JSON数组");

    // private item (public:false) hidden from anonymous callers on both APIs
    for (const char* h : {"88.118.8/X1", "88.118.8/X2"}) {
        CAPTURE(h);
        auto anon_rest = c->request(V::get, std::string("/api/handles/") + h);
        CHECK(anon_rest.result() == http::status::ok);
        CHECK(anon_rest.body().find("unit_price") == std::string::npos);
        CHECK(anon_rest.body().find("heat_no") != std::string::npos);
        auto anon_snms =
            snms(*c, V::get, std::string("/identityv2/data/detail?handle=") + h, {}, {});
        REQUIRE(status_of(anon_snms) == 1);
        for (const auto& v : anon_snms.at("data").at("value").as_array())
            CHECK(v.at("index").as_int64() != 2003);
        auto own_rest =
            c->request(V::get, std::string("/api/handles/") + h, {}, {{"Authorization", bearer}});
        CHECK(own_rest.body().find("unit_price") != std::string::npos);
    }

    // native template routes
    auto get =
        c->request(V::get, "/api/v1/templates/88.118.8/1.0", {}, {{"Authorization", bearer}});
    REQUIRE(get.result() == http::status::ok);
    CHECK(body_of(get).at("usage").as_int64() == 2);
    auto list =
        c->request(V::get, "/api/v1/templates?prefix=88.118.8", {}, {{"Authorization", n.admin}});
    CHECK(body_of(list).at("templates").as_array().size() == 1);
    CHECK(c->request(V::get, "/api/v1/templates/88.118.8/1.0").result() ==
          http::status::unauthorized);
    CHECK(c->request(V::get, "/api/v1/templates/88.118.8/2.0", {}, {{"Authorization", bearer}})
              .result() == http::status::not_found);
    auto bad_tpl = c->request(V::post, "/api/v1/templates?prefix=88.118.8",
                              R"({"version":"2.0","industryCategory":"C","items":[
      {"name":"x","idType":"x","idIndex":100}]})",
                              {{"Authorization", bearer}});
    CHECK(bad_tpl.result() == http::status::bad_request);
    CHECK(body_of(bad_tpl).at("error").at("message").as_string() ==
          "item 100: idIndex must be >= 2000");
    // template error paths
    std::string v2 = kTemplate;
    v2.replace(v2.find(R"("version":"1.0")"), 15, R"("version":"2.0")");
    auto put_missing = snms(*c, V::put, "/snms/api/v5/template", v2, token);
    CHECK(message_of(put_missing) == "模板不存在");
    const std::string other = login(*c, "other", "other-secret-1");
    auto foreign_post = snms(*c, V::post, "/snms/api/v5/template", v2, other);
    CHECK(status_of(foreign_post) == -3);
    auto not_a_template = snms(*c, V::post, "/snms/api/v5/template", R"({"version":"3"})", token);
    CHECK(message_of(not_a_template) == "模板不合法：items must be an array");
    auto no_key = snms(*c, V::delete_, "/snms/api/v5/template", {}, token);
    CHECK(message_of(no_key) == "参数错误：需要prefix和version");
    auto mismatch = c->request(V::put, "/api/v1/templates/88.118.8/9.9", kTemplate,
                               {{"Authorization", bearer}});
    CHECK(mismatch.result() == http::status::bad_request);
    CHECK(c->request(V::delete_, "/api/v1/templates/88.118.8/9.9", {}, {{"Authorization", bearer}})
              .result() == http::status::not_found);
    CHECK(c->request(V::delete_, "/api/v1/accounts/steel/tokens", {},
                     {{"Authorization", "Bearer " + other}})
              .result() == http::status::forbidden);
    CHECK(c->request(V::post, "/api/v1/templates", "{", {{"Authorization", bearer}}).result() ==
          http::status::bad_request);
    auto unallocated = c->request(V::post, "/api/v1/templates?prefix=88.118.77",
                                  R"({"version":"2.0","industryCategory":"C","items":[
      {"name":"x","idType":"x","idIndex":2000}]})",
                                  {{"Authorization", n.admin}});
    CHECK(unallocated.result() == http::status::not_found);
}

namespace {

/// A JSON array of `n` valid records of kTemplate (about 450 bytes each).
std::string batch_of(int n, const std::string& tag) {
    std::string s = "[";
    for (int i = 0; i < n; ++i)
        s += (i ? "," : "") +
             record("88.118.8/" + tag + std::to_string(i), "H" + std::to_string(2024000 + i));
    return s + "]";
}

/// A request header announcing a body of `length` bytes, without sending the body.
std::string header_only(const std::string& target, std::size_t length, const std::string& token) {
    return "POST " + target + " HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " + token +
           "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(length) +
           "\r\n\r\n";
}

/// The message of a server-level refusal: the SNMS envelope's on SNMS paths, the native error's
/// on /api/v1 (docs/api.md#error-bodies).
std::string error_message(const Response& r) {
    const auto body = body_of(r);
    if (const auto* error = body.as_object().if_contains("error"))
        return std::string(error->at("message").as_string());
    return std::string(body.at("message").as_string());
}

} // namespace

TEST_CASE("body limits per route: a 2000-record batch fits the defaults, larger bodies get 413") {
    SnmsNode n; // no limits raised
    auto c = n.client();
    const std::string token = login(*c, "steel", n.password);
    REQUIRE(status_of(snms(*c, V::post, "/snms/api/v5/template", kTemplate, token)) == 1);

    // The documented maximum, 2000 records (~0.9 MB, far above limits.max_body_bytes = 64 KiB).
    const std::string full = batch_of(2000, "F");
    REQUIRE(full.size() > 12 * 65536);
    auto created = snms(*c, V::post, "/identityv2/data/batchCreate", full, token);
    REQUIRE_MESSAGE(status_of(created) == 1, message_of(created));
    CHECK(message_of(created) == "成功2000条，失败0条");
    CHECK(created.at("data").as_array().size() == 2000);
    auto updated = snms(*c, V::put, "/identityv2/data/batchUpdate", full, token);
    CHECK(message_of(updated) == "成功2000条，失败0条");

    // 2001 records: the SNMS envelope, nothing written.
    auto too_many = snms(*c, V::post, "/identityv2/data/batchCreate", batch_of(2001, "G"), token);
    CHECK(status_of(too_many) == -2);
    CHECK(message_of(too_many) == "每批最多2000条");
    CHECK(status_of(snms(*c, V::get, "/identityv2/data/detail?handle=88.118.8/G0", {}, token)) ==
          -2);

    // Over the batch bound (limits.max_batch_body_bytes, 8 MiB): 413 from the announced length,
    // before any of the body is read.
    c->write_raw(header_only("/identityv2/data/batchCreate", 8 * 1024 * 1024 + 1, token));
    const Response over = c->read_response();
    CHECK(over.result() == http::status::payload_too_large);
    CHECK(error_message(over) == "请求体过大：the request body exceeds 8388608 bytes, the limit of "
                                 "POST /identityv2/data/batchCreate");
    CHECK(c->wait_closed(3s));

    // A single-record route keeps limits.max_body_bytes.
    c->connect();
    const Response single = c->request(V::post, "/identityv2/data", std::string(65537, ' '),
                                       {{"Authorization", "Bearer " + token}});
    CHECK(single.result() == http::status::payload_too_large);
    CHECK(error_message(single) ==
          "请求体过大：the request body exceeds 65536 bytes (limits.max_body_bytes)");

    // POST /api/v1/resolve takes its documented 1000 handles even when they exceed 64 KiB ...
    c->connect();
    std::string handles = "[";
    for (int i = 0; i < 1000; ++i)
        handles += std::string(i ? "," : "") + "\"88.118.8/" + std::string(80, 'r') +
                   std::to_string(i) + "\"";
    handles += "]";
    REQUIRE(handles.size() > 65536);
    const Response resolved = c->request(V::post, "/api/v1/resolve", handles);
    REQUIRE_MESSAGE(resolved.result() == http::status::ok, resolved.body().substr(0, 300));
    CHECK(body_of(resolved).as_array().size() == 1000);
    // ... and no more than 1000 of the longest (255 bytes) escaped handles.
    c->write_raw(header_only("/api/v1/resolve", 1000 * (3 * 255 + 3) + 3, token));
    const Response too_big = c->read_response();
    CHECK(too_big.result() == http::status::payload_too_large);
    CHECK(error_message(too_big).find("the limit of POST /api/v1/resolve") != std::string::npos);
}

TEST_CASE("limits.max_batch_body_bytes bounds the batch routes, chunked bodies too") {
    SnmsNode n(nullptr, {{"limits.max_batch_body_bytes", "\"100KiB\""}});
    auto c = n.client();
    const std::string token = login(*c, "steel", n.password);
    REQUIRE(status_of(snms(*c, V::post, "/snms/api/v5/template", kTemplate, token)) == 1);
    // 200 records (~90 KB) fit 100 KiB.
    auto fits = snms(*c, V::post, "/identityv2/data/batchCreate", batch_of(200, "K"), token);
    CHECK(message_of(fits) == "成功200条，失败0条");
    // A chunked body has no length up front: refused once 100 KiB have been read.
    const std::string chunk(60 * 1024, ' ');
    c->write_raw("DELETE /identityv2/data/batchDelete HTTP/1.1\r\nHost: localhost\r\n"
                 "Authorization: Bearer " +
                 token + "\r\nTransfer-Encoding: chunked\r\n\r\nf000\r\n" + chunk + "\r\nf000\r\n" +
                 chunk + "\r\n0\r\n\r\n");
    const Response chunked = c->read_response();
    CHECK(chunked.result() == http::status::payload_too_large);
    CHECK(error_message(chunked) == "请求体过大：the request body exceeds 102400 bytes, the limit "
                                    "of DELETE /identityv2/data/batchDelete");
}

TEST_CASE("a password change invalidates the account's login tokens, and only that account's") {
    SnmsNode n;
    auto c = n.client();
    const std::string token = login(*c, "steel", n.password);
    const std::string other = login(*c, "other", "other-secret-1");
    const std::string list = "/snms/api/v5/template?prefix=88.118.8";
    REQUIRE(status_of(snms(*c, V::get, list, {}, token)) == 1);

    auto changed = c->request(V::put, "/api/v1/accounts/steel/password",
                              R"({"password":"steel-secret-2"})", {{"Authorization", n.admin}});
    REQUIRE_MESSAGE(changed.result() == http::status::ok, changed.body());

    // The old token is signed with a key derived from the old password hash: refused.
    auto stale = snms(*c, V::get, list, {}, token);
    CHECK(status_of(stale) == -1);
    CHECK(message_of(stale) == "未登录或token无效");
    CHECK(c->request(V::get, "/api/handles/88.118.8/x", {}, {{"Authorization", "Bearer " + token}})
              .result() == http::status::unauthorized);
    // The old password no longer logs in (plain and v1); the new one does, and its token works.
    auto old_login = snms(*c, V::post, "/identity/token",
                          R"({"username":"steel","password":")" + n.password + R"("})", {});
    CHECK(message_of(old_login) == "用户名或密码错误");
    const std::string old_v1 = idnode::registry::sha256_hex(
        idnode::registry::sha256_hex(n.password) + local_date(std::time(nullptr)));
    CHECK(status_of(snms(*c, V::post, "/identity/token/v1",
                         R"({"username":"steel","password":")" + old_v1 + R"("})", {})) == -2);
    const std::string fresh = login(*c, "steel", "steel-secret-2");
    CHECK(status_of(snms(*c, V::get, list, {}, fresh)) == 1);
    // Other accounts' tokens are untouched.
    CHECK(status_of(snms(*c, V::get, "/snms/api/v5/template?prefix=88.118.9", {}, other)) == 1);
}

TEST_CASE("limits.rate_per_account applies to SNMS routes, one budget with the other APIs") {
    SnmsNode n; // set up with defaults, then restarted with the limit
    CHECK(n.node.stop() == 0);
    n.node.set("limits.rate_per_account", "0.1"); // one request, then one per 10 s
    n.node.start();
    auto c = n.client();
    const std::string token = login(*c, "steel", n.password); // logins are not counted
    const std::string other = login(*c, "other", "other-secret-1");
    const std::string list = "/snms/api/v5/template?prefix=88.118.8";
    CHECK(status_of(snms(*c, V::get, list, {}, token)) == 1);

    const Response limited = c->request(V::get, list, {}, {{"Authorization", "Bearer " + token}});
    CHECK(limited.result() == http::status::ok); // SNMS answers stay HTTP 200
    CHECK(body_of(limited).at("status").as_int64() == -2);
    CHECK(body_of(limited).at("message").as_string() == "请求过于频繁，请稍后再试");
    CHECK_FALSE(limited[http::field::retry_after].empty());
    auto write = snms(*c, V::post, "/identityv2/data", record("88.118.8/R1", "H2024001"), token);
    CHECK(message_of(write) == "请求过于频繁，请稍后再试");
    // The same budget on the Handle REST and native routes.
    const Response rest =
        c->request(V::get, "/api/handles/88.118.8/R1", {}, {{"Authorization", "Bearer " + token}});
    CHECK(rest.result() == http::status::too_many_requests);
    const Response native = c->request(V::get, "/api/v1/templates?prefix=88.118.8", {},
                                       {{"Authorization", "Bearer " + token}});
    CHECK(native.result() == http::status::too_many_requests);
    CHECK(body_of(native).at("error").at("code").as_string() == "rate_limited");
    CHECK_FALSE(native[http::field::retry_after].empty());
    // Another account has its own budget; anonymous SNMS reads are limited per IP, not here.
    CHECK(status_of(snms(*c, V::get, "/snms/api/v5/template?prefix=88.118.9", {}, other)) == 1);
    CHECK(message_of(snms(*c, V::get, "/identityv2/data/detail?handle=88.118.8/R1", {}, {})) ==
          "没有找到标识");
}

TEST_CASE("SNMS single delete (handle in the query or the body) and malformed bodies") {
    SnmsNode n;
    auto c = n.client();
    const std::string token = login(*c, "steel", n.password);
    REQUIRE(status_of(snms(*c, V::post, "/snms/api/v5/template", kTemplate, token)) == 1);
    for (const char* h : {"88.118.8/S1", "88.118.8/S2"})
        REQUIRE(status_of(snms(*c, V::post, "/identityv2/data", record(h, "H2024001"), token)) ==
                1);

    auto by_query = snms(*c, V::delete_, "/identityv2/data?handle=88.118.8/S1", {}, token);
    CHECK(status_of(by_query) == 1);
    auto by_body = snms(*c, V::delete_, "/identityv2/data", R"({"handle":"88.118.8/S2"})", token);
    CHECK(status_of(by_body) == 1);
    CHECK(by_body.at("data").at("handle").as_string() == "88.118.8/S2");
    auto again = snms(*c, V::delete_, "/identityv2/data", R"({"handle":"88.118.8/S2"})", token);
    CHECK(message_of(again) == "没有找到标识");
    for (const char* body : {"", "{", R"({"handle":7})", "[]"}) {
        CAPTURE(body);
        auto missing = snms(*c, V::delete_, "/identityv2/data", body, token);
        CHECK(status_of(missing) == -2);
        CHECK(message_of(missing) == "参数错误：缺少handle");
    }
    auto anonymous = snms(*c, V::delete_, "/identityv2/data?handle=88.118.8/S1", {}, {});
    CHECK(status_of(anonymous) == -1);

    // Bodies that are not JSON, per route shape.
    CHECK(message_of(snms(*c, V::post, "/snms/api/v5/template", "{", token)) ==
          "参数错误：请求体不是合法的JSON");
    CHECK(message_of(snms(*c, V::put, "/identityv2/data", "[]", token)) ==
          "参数错误：请求体必须是JSON对象");
    CHECK(message_of(snms(*c, V::put, "/identityv2/data/batchUpdate", "[", token)) ==
          "参数错误：请求体必须是JSON数组");
    const Response native = c->request(V::put, "/api/v1/templates/88.118.8/1.0", "{",
                                       {{"Authorization", "Bearer " + token}});
    CHECK(native.result() == http::status::bad_request);
    CHECK(body_of(native).at("error").at("code").as_string() == "invalid_json");
    CHECK(std::string(body_of(native).at("error").at("message").as_string())
              .rfind("request body is not valid JSON: ", 0) == 0);
}
