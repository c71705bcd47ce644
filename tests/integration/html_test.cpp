// The resolution pages, proxy redirects and QR codes against the real idnode binary
// (docs/api.md#pages-and-qr-codes): content negotiation, statuses and headers over HTTPS; a QR PNG
// decoded with zbarimg; and a headless Chromium (driven through chromedriver's WebDriver HTTP API)
// that opens the search page, types an identifier, submits, and reads what a person would see.
#include "harness.hpp"
#include "json_helpers.hpp"

#include <boost/asio/connect.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <csignal>
#include <fstream>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace idnode::test;
namespace json = boost::json;
using V = http::verb;

extern char** environ;

namespace {

constexpr const char* kBaseUrl = "https://id.example.cn";
constexpr const char* kXss = "<script>window.__pwned=1;document.title='pwned'</script>"
                             "<img src=x onerror=\"window.__pwned=2\">\" onmouseover='x'";

bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

const std::vector<std::pair<std::string, std::string>> kBrowser = {
    {"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}};

/// A node with prefix 88.118.8 owned by 示例钢铁 and three records: a coil (public fields and
/// one private price), a record with a URL (proxy redirect), and a value holding markup.
struct PageNode {
    NodeProcess node{"html"};
    std::string admin, steel;

    PageNode() {
        node.set("node.public_base_url", std::string("\"") + kBaseUrl + "\"");
        const auto init = run_command({IDNODE_IDCTL_BINARY, "init", "--data-dir",
                                       (node.dir() / "db").string(), "--node-prefix", "88.118"});
        REQUIRE_MESSAGE(init.exit_code == 0, init.err);
        admin = "Bearer " +
                std::string(
                    body_of(Response{http::status::ok, 11, init.out}).at("admin_key").as_string());
        node.start();
        auto c = client();
        auto ok = [&](V verb, const std::string& target, const std::string& body,
                      const std::string& auth) {
            auto r = c->request(verb, target, body, {{"Authorization", auth}});
            REQUIRE_MESSAGE(r.result() == http::status::created, target << ": " << r.body());
            return r;
        };
        ok(V::post, "/api/v1/prefixes",
           R"({"prefix":"88.118.8","enterprise":{"name":"示例钢铁 Demo Steel","credit_code":"91310000631696382C","industry":"C3120","contact":""}})",
           admin);
        ok(V::post, "/api/v1/accounts",
           R"({"username":"steel","role":"enterprise","prefixes":["88.118.8"]})", admin);
        auto key =
            c->request(V::post, "/api/v1/accounts/steel/keys", {}, {{"Authorization", admin}});
        REQUIRE(key.result() == http::status::created);
        steel = "Bearer " + std::string(body_of(key).at("key").as_string());
        ok(V::put, "/api/handles/88.118.8/COIL-1", R"({"values":[
          {"index":1,"type":"DESC","data":"热轧钢卷 hot-rolled coil"},
          {"index":2000,"type":"heat_no","data":"H2024-0917"},
          {"index":2001,"type":"production_date","data":"2024-11-02"},
          {"index":2002,"type":"price","data":"PRICE-4120.50","permissions":"1100"},
          {"index":3,"type":"HS_ALIAS","data":"88.118.8/COIL-0"}]})",
           steel);
        ok(V::put, "/api/handles/88.118.8/CRLF-1",
           R"([{"index":1,"type":"URL","data":"https://x.example/\r\nSet-Cookie: a=b"}])", steel);
        ok(V::put, "/api/handles/88.118.8/WEB-1",
           R"([{"index":1,"type":"URL","data":"https://steel.example.cn/c/1"}])", steel);
        json::array xss{json::object{{"index", 2000}, {"type", "note"}, {"data", kXss}}};
        ok(V::put, "/api/handles/88.118.8/XSS-1", json::serialize(xss), steel);
    }

    std::unique_ptr<HttpsClient> client() {
        auto c = std::make_unique<HttpsClient>(node.https_port(), trust(node.pki().ca_cert));
        c->connect();
        return c;
    }
};

// ---- a minimal WebDriver client (chromedriver's HTTP API, W3C dialect) ------------------------

std::uint16_t free_port() {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    return a.local_endpoint().port();
}

std::string base64_decode(std::string_view in) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z')
            return c - 'A';
        if (c >= 'a' && c <= 'z')
            return c - 'a' + 26;
        if (c >= '0' && c <= '9')
            return c - '0' + 52;
        return c == '+' ? 62 : c == '/' ? 63 : -1;
    };
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        const int v = value(c);
        if (v < 0)
            continue;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xFF));
        }
    }
    return out;
}

/// chromedriver in its own process group; the group (chromedriver and the Chromium it starts)
/// is killed on destruction.
class ChromeDriver {
public:
    explicit ChromeDriver(const fs::path& profile_dir) : port_(free_port()) {
        const std::string port_arg = "--port=" + std::to_string(port_);
        const std::string log_arg = "--log-path=" + (profile_dir / "chromedriver.log").string();
        std::vector<std::string> args{"chromedriver", port_arg, log_arg};
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawnattr_t attr;
        posix_spawnattr_init(&attr);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
        posix_spawnattr_setpgroup(&attr, 0);
        const int rc = posix_spawnp(&pid_, "chromedriver", nullptr, &attr, argv.data(), environ);
        posix_spawnattr_destroy(&attr);
        if (rc != 0)
            throw HarnessError("cannot start chromedriver");
        const bool up = eventually(
            [&] {
                try {
                    return call(V::get, "/status").at("value").at("ready").as_bool();
                } catch (const std::exception&) {
                    return false;
                }
            },
            10s);
        if (!up)
            throw HarnessError("chromedriver did not become ready");
    }
    ~ChromeDriver() {
        if (pid_ > 0) {
            ::kill(-pid_, SIGKILL);
            int status = 0;
            ::waitpid(pid_, &status, 0);
        }
    }
    ChromeDriver(const ChromeDriver&) = delete;
    ChromeDriver& operator=(const ChromeDriver&) = delete;

    /// One WebDriver command; returns the response document. Throws on transport errors.
    json::value call(V method, const std::string& path, const json::value& body = nullptr) {
        boost::asio::io_context ioc;
        boost::beast::tcp_stream stream(ioc);
        stream.expires_after(15s);
        stream.connect({boost::asio::ip::make_address("127.0.0.1"), port_});
        Request req{method, path, 11};
        req.set(http::field::host, "127.0.0.1");
        if (method == V::post) {
            req.set(http::field::content_type, "application/json");
            req.body() = json::serialize(body.is_null() ? json::value(json::object{}) : body);
        }
        req.prepare_payload();
        http::write(stream, req);
        boost::beast::flat_buffer buffer;
        http::response<http::string_body> res;
        http::read(stream, buffer, res);
        boost::system::error_code ignored;
        stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
        return json::parse(res.body());
    }

private:
    std::uint16_t port_;
    pid_t pid_ = -1;
};

/// One browser session.
class Browser {
public:
    Browser(ChromeDriver& driver, const fs::path& profile) : driver_(driver) {
        json::array args{"--headless",
                         "--no-sandbox",
                         "--disable-gpu",
                         "--disable-quic",
                         "--no-first-run",
                         "--disable-background-networking",
                         "--disable-component-update",
                         "--disable-sync",
                         "--ignore-certificate-errors",
                         "--window-size=412,915", // a phone
                         "--user-data-dir=" + profile.string()};
        json::object caps{
            {"browserName", "chrome"},
            {"acceptInsecureCerts", true},
            {"goog:chromeOptions", json::object{{"binary", "/usr/bin/chromium"}, {"args", args}}}};
        auto r = driver_.call(V::post, "/session",
                              json::object{{"capabilities", json::object{{"alwaysMatch", caps}}}});
        const auto* id = r.at("value").as_object().if_contains("sessionId");
        if (id == nullptr)
            throw HarnessError("no WebDriver session: " + json::serialize(r));
        session_ = "/session/" + std::string(id->as_string());
    }
    ~Browser() {
        try {
            driver_.call(V::delete_, session_);
        } catch (const std::exception&) { // the driver's process group is killed anyway
        }
    }

    json::value command(V method, const std::string& path, const json::value& body = nullptr) {
        auto r = driver_.call(method, session_ + path, body);
        const auto& v = r.at("value");
        if (v.is_object() && v.as_object().contains("error"))
            throw HarnessError(path + ": " + json::serialize(v));
        return v;
    }
    void go(const std::string& url) { command(V::post, "/url", json::object{{"url", url}}); }
    std::string element(const std::string& css) {
        auto v =
            command(V::post, "/element", json::object{{"using", "css selector"}, {"value", css}});
        return std::string(v.as_object().begin()->value().as_string());
    }
    json::value script(const std::string& body) {
        return command(V::post, "/execute/sync",
                       json::object{{"script", body}, {"args", json::array{}}});
    }
    std::string text() { return std::string(script("return document.body.innerText").as_string()); }
    std::string url() { return std::string(command(V::get, "/url").as_string()); }
    void screenshot(const fs::path& file) {
        std::ofstream(file, std::ios::binary)
            << base64_decode(command(V::get, "/screenshot").as_string());
    }

private:
    ChromeDriver& driver_;
    std::string session_;
};

bool have_executable(const char* name) {
    for (const char* dir : {"/usr/bin", "/usr/local/bin", "/bin"}) {
        if (::access((fs::path(dir) / name).c_str(), X_OK) == 0)
            return true;
    }
    return false;
}

} // namespace

TEST_CASE("pages, proxy redirects and negotiation over HTTPS") {
    PageNode n; // one node for every block below (starting one costs ~1 s)
    auto c = n.client();

    { // the search page
        auto r = c->request(V::get, "/", {}, kBrowser);
        CHECK(r.result() == http::status::ok);
        CHECK(r[http::field::content_type] == "text/html; charset=utf-8");
        CHECK(contains(r["Content-Security-Policy"], "default-src 'none'"));
        CHECK(contains(r["Content-Security-Policy"], "form-action 'self'"));
        CHECK(r["X-Content-Type-Options"] == "nosniff");
        CHECK(contains(r.body(), "<form action=\"/\" method=\"get\""));
        // A search shows the page directly; an empty one explains itself.
        auto found = c->request(V::get, "/?handle=+88.118.8%2Fcoil-1+", {}, kBrowser);
        CHECK(found.result() == http::status::ok);
        CHECK(contains(found.body(), "H2024-0917"));
        auto empty = c->request(V::get, "/?handle=", {}, kBrowser);
        CHECK(empty.result() == http::status::bad_request);
        CHECK(contains(empty.body(), "Enter an identifier"));
        CHECK(c->request(V::get, "/?handle=%zz", {}, kBrowser).result() ==
              http::status::bad_request);
        CHECK(c->request(V::get, "/?handle=nonsense", {}, kBrowser).result() ==
              http::status::bad_request);
        CHECK(c->request(V::get, "/?handle=88.118.8/NOPE", {}, kBrowser).result() ==
              http::status::not_found);
    }

    { // the identifier page: public values, labels, enterprise; never the private value
        for (const char* target : {"/88.118.8/COIL-1", "/api/handles/88.118.8/COIL-1"}) {
            CAPTURE(target);
            auto r = c->request(V::get, target, {}, kBrowser);
            REQUIRE(r.result() == http::status::ok);
            CHECK(r[http::field::vary] == "Accept, Authorization");
            CHECK(contains(r.body(), "示例钢铁 Demo Steel"));
            CHECK(contains(r.body(), "热轧钢卷 hot-rolled coil"));
            CHECK(contains(r.body(), "H2024-0917"));
            CHECK(contains(r.body(), "2024年11月2日"));
            CHECK(contains(r.body(), "href=\"/88.118.8/COIL-0\"")); // the alias is a link
            CHECK_FALSE(contains(r.body(), "PRICE-4120.50"));
            CHECK(r.body().size() < 20 * 1024);
        }
        // The owner, on the API route, sees the private value, marked, and the page is not cached.
        auto owner = c->request(V::get, "/api/handles/88.118.8/COIL-1", {},
                                {kBrowser[0], {"Authorization", n.steel}});
        REQUIRE(owner.result() == http::status::ok);
        CHECK(contains(owner.body(), "PRICE-4120.50"));
        CHECK(contains(owner.body(), "非公开 private"));
        CHECK(owner[http::field::cache_control] == "private, no-store");
        // ...but the proxy route is anonymous whatever the caller sends.
        auto proxy =
            c->request(V::get, "/88.118.8/COIL-1", {}, {kBrowser[0], {"Authorization", n.steel}});
        CHECK_FALSE(contains(proxy.body(), "PRICE-4120.50"));
        // Bad credentials on the API route are refused as in JSON.
        CHECK(c->request(V::get, "/api/handles/88.118.8/COIL-1", {},
                         {kBrowser[0], {"Authorization", "Bearer idn_0000_bad"}})
                  .result() == http::status::unauthorized);
    }

    { // markup in a value is shown as text
        auto r = c->request(V::get, "/88.118.8/XSS-1", {}, kBrowser);
        REQUIRE(r.result() == http::status::ok);
        CHECK_FALSE(contains(r.body(), "<script"));
        CHECK_FALSE(contains(r.body(), "<img"));
        CHECK(contains(r.body(), "&lt;script&gt;window.__pwned=1"));
    }

    { // the proxy keeps redirecting to the URL value unless ?noredirect
        auto r = c->request(V::get, "/88.118.8/WEB-1", {}, kBrowser);
        CHECK(r.result() == http::status::found);
        CHECK(r[http::field::location] == "https://steel.example.cn/c/1");
        auto page = c->request(V::get, "/88.118.8/WEB-1?noredirect", {}, kBrowser);
        CHECK(page.result() == http::status::ok);
        CHECK(contains(page.body(), "<a href=\"https://steel.example.cn/c/1\""));
        // A URL value with CR/LF is never put into a Location header: no redirect, no split.
        for (const auto& headers : {kBrowser, std::vector<std::pair<std::string, std::string>>{}}) {
            auto crlf = c->request(V::get, "/88.118.8/CRLF-1", {}, headers);
            CHECK(crlf.result() == http::status::ok);
            CHECK(crlf.find(http::field::location) == crlf.end());
            CHECK(crlf.find(http::field::set_cookie) == crlf.end());
        }
        // API clients keep JSON.
        auto json_page = c->request(V::get, "/88.118.8/WEB-1?noredirect");
        CHECK(json_page[http::field::content_type] == "application/json");
        auto api = c->request(V::get, "/api/handles/88.118.8/COIL-1", {},
                              {{"Accept", "application/json"}});
        CHECK(api[http::field::content_type] == "application/json");
    }

    { // not found, invalid, not homed and non-identifier paths get helpful pages
        auto nf = c->request(V::get, "/88.118.8/NOPE", {}, kBrowser);
        CHECK(nf.result() == http::status::not_found);
        CHECK(contains(nf.body(), "Identifier not found"));
        CHECK(contains(nf["Content-Security-Policy"], "default-src 'none'"));
        auto invalid = c->request(V::get, "/88.118.8/", {}, kBrowser);
        CHECK(invalid.result() == http::status::bad_request);
        CHECK(contains(invalid.body(), "Not a valid identifier"));
        auto bad_escape = c->request(V::get, "/api/handles/88.118.8/%zz", {}, kBrowser);
        CHECK(bad_escape.result() == http::status::bad_request);
        CHECK(contains(bad_escape.body(), "malformed percent-encoding"));
        auto foreign = c->request(V::get, "/99.1/x", {}, kBrowser);
        CHECK(foreign.result() == http::status::bad_request);
        CHECK(contains(foreign.body(), "Not served by this node"));
        auto api_foreign = c->request(V::get, "/api/handles/99.1/x", {}, kBrowser);
        CHECK(api_foreign.result() == http::status::bad_request);
        auto no_page = c->request(V::get, "/favicon.ico", {}, kBrowser);
        CHECK(no_page.result() == http::status::not_found);
        CHECK(contains(no_page.body(), "Page not found"));
        // JSON clients see the API's shapes, unchanged.
        auto json_nf = c->request(V::get, "/favicon.ico");
        CHECK(json_nf.result() == http::status::not_found);
        CHECK(body_of(json_nf).at("responseCode").as_int64() == 4);
    }
}

TEST_CASE("a record registered against a template shows the template's names and industry") {
    PageNode n;
    auto c = n.client();
    auto t = c->request(
        V::post, "/api/v1/templates?prefix=88.118.8",
        R"({"version":"coil-1","industryCategory":"C","industrySpecific":"31","industryTrade":"313",
            "industrySubclass":"3130","type":1,"description":"钢卷 Steel coil","items":[
            {"name":"炉号","idType":"heat_no","idIndex":2000,"required":true,"state":1,
             "metadata":{"type":"string"}},
            {"name":"生产日期","idType":"production_date","idIndex":2001,"required":false,
             "state":1,"metadata":{"type":"date"}},
            {"name":"质保书","idType":"mill_cert_url","idIndex":2002,"required":false,"state":1,
             "metadata":{"type":"url"}}]})",
        {{"Authorization", n.admin}});
    REQUIRE_MESSAGE(t.result() == http::status::created, t.body());
    auto put = c->request(V::put, "/api/handles/88.118.8/COIL-T",
                          R"({"templateVersion":"coil-1","values":[
                             {"index":2000,"type":"heat_no","data":"H-77"},
                             {"index":2001,"type":"production_date","data":"2024-11-02"},
                             {"index":2002,"type":"mill_cert_url","data":"https://c.example/77"}]})",
                          {{"Authorization", n.steel}});
    REQUIRE_MESSAGE(put.result() == http::status::created, put.body());
    auto r = c->request(V::get, "/88.118.8/COIL-T", {}, kBrowser);
    REQUIRE(r.result() == http::status::ok);
    CHECK(contains(r.body(), "<bdi lang=\"zh\">炉号</bdi><span class=\"en\" lang=\"en\">heat_no"));
    CHECK(contains(r.body(), "<bdi lang=\"zh\">生产日期</bdi>"));
    CHECK(contains(r.body(), "钢卷 Steel coil"));
    CHECK(contains(r.body(), "coil-1"));
    CHECK(contains(r.body(), "C3130"));
    CHECK(contains(r.body(), "2024年11月2日"));
    CHECK(contains(r.body(), "<a href=\"https://c.example/77\""));
}

TEST_CASE("QR codes encode the identifier's URL on this node") {
    PageNode n;
    auto c = n.client();
    auto png = c->request(V::get, "/api/v1/qr/88.118.8/COIL-1?format=png&size=300");
    REQUIRE(png.result() == http::status::ok);
    CHECK(png[http::field::content_type] == "image/png");
    const fs::path file = n.node.dir() / "coil.png";
    std::ofstream(file, std::ios::binary) << png.body();
    const auto scan = run_command({"zbarimg", "--quiet", "--raw", file.string()});
    REQUIRE_MESSAGE(scan.exit_code == 0, scan.err);
    CHECK(scan.out == std::string(kBaseUrl) + "/88.118.8/COIL-1\n");

    auto svg = c->request(V::get, "/api/v1/qr/88.118.8/COIL-1");
    CHECK(svg.result() == http::status::ok);
    CHECK(svg[http::field::content_type] == "image/svg+xml");
    CHECK(contains(svg.body(), "width=\"256\""));
    CHECK(contains(svg["Content-Security-Policy"], "default-src 'none'"));

    auto error_code = [&](const std::string& target) {
        auto r = c->request(V::get, target);
        return std::pair{r.result(), std::string(body_of(r).at("error").at("code").as_string())};
    };
    using P = std::pair<http::status, std::string>;
    CHECK(error_code("/api/v1/qr/88.118.8/COIL-1?format=gif") ==
          P{http::status::bad_request, "invalid_value"});
    CHECK(error_code("/api/v1/qr/88.118.8/COIL-1?size=63") ==
          P{http::status::bad_request, "invalid_value"});
    CHECK(error_code("/api/v1/qr/88.118.8/COIL-1?size=4097") ==
          P{http::status::bad_request, "invalid_value"});
    CHECK(error_code("/api/v1/qr/88.118.8/COIL-1?size=big") ==
          P{http::status::bad_request, "invalid_value"});
    CHECK(error_code("/api/v1/qr/88.118.8/COIL-1?size=%zz") ==
          P{http::status::bad_request, "invalid_value"});
    CHECK(error_code("/api/v1/qr/88.118.8/NOPE") == P{http::status::not_found, "not_found"});
    CHECK(error_code("/api/v1/qr/99.1/x") == P{http::status::bad_request, "not_homed"});
    CHECK(error_code("/api/v1/qr/88.118.8/") == P{http::status::bad_request, "invalid_handle"});
    CHECK(error_code("/api/v1/qr/88.118.8/%zz") == P{http::status::bad_request, "invalid_handle"});
}

TEST_CASE("the proxy redirects only to absolute http(s) URLs; other URL values show the page") {
    PageNode n;
    auto c = n.client();
    const std::vector<std::string> others = {"javascript:alert(document.domain)",
                                             "JavaScript:alert(1)",
                                             "data:text/html,<script>alert(1)</script>",
                                             "//evil.example/login",
                                             "/\\evil.example",
                                             "https:///evil.example",
                                             "https:evil.example",
                                             "ftp://files.example/x"};
    for (std::size_t i = 0; i < others.size(); ++i) {
        const std::string target = "/88.118.8/URL-" + std::to_string(i);
        CAPTURE(others[i]);
        json::array values{json::object{{"index", 1}, {"type", "URL"}, {"data", others[i]}}};
        REQUIRE(c->request(V::put, "/api/handles" + target, json::serialize(values),
                           {{"Authorization", n.steel}})
                    .result() == http::status::created);
        auto page = c->request(V::get, target, {}, kBrowser);
        CHECK(page.result() == http::status::ok);
        CHECK(page.find(http::field::location) == page.end());
        CHECK(contains(page.body(), "URL"));
        CHECK_FALSE(contains(page.body(), "<a href=\"" + others[i]));
        auto api = c->request(V::get, target);
        CHECK(api.result() == http::status::ok);
        CHECK(api.find(http::field::location) == api.end());
        CHECK(body_of(api).at("values").as_array().size() == 1);
    }
    // http and https URLs still redirect, whatever the case of the scheme.
    REQUIRE(c->request(V::put, "/api/handles/88.118.8/URL-HTTP",
                       R"([{"index":1,"type":"URL","data":"HTTP://steel.example.cn/c/2"}])",
                       {{"Authorization", n.steel}})
                .result() == http::status::created);
    for (const auto& [target, location] : std::vector<std::pair<std::string, std::string>>{
             {"/88.118.8/URL-HTTP", "HTTP://steel.example.cn/c/2"},
             {"/88.118.8/WEB-1", "https://steel.example.cn/c/1"}}) {
        for (const auto& headers : {kBrowser, std::vector<std::pair<std::string, std::string>>{}}) {
            auto r = c->request(V::get, target, {}, headers);
            CHECK(r.result() == http::status::found);
            CHECK(r[http::field::location] == location);
        }
    }
}

TEST_CASE("without node.public_base_url the QR code points at https.listen, never at Host") {
    NodeProcess node{"html-qr-host"};
    const auto init = run_command({IDNODE_IDCTL_BINARY, "init", "--data-dir",
                                   (node.dir() / "db").string(), "--node-prefix", "88.118"});
    REQUIRE_MESSAGE(init.exit_code == 0, init.err);
    const std::string admin =
        "Bearer " +
        std::string(body_of(Response{http::status::ok, 11, init.out}).at("admin_key").as_string());
    node.start();
    HttpsClient c(node.https_port(), trust(node.pki().ca_cert));
    c.connect();
    REQUIRE(c.request(V::put, "/api/handles/88.118/doc",
                      R"([{"index":1,"type":"DESC","data":"x"}])", {{"Authorization", admin}})
                .result() == http::status::created);
    // A forged Host changes nothing: the code (served cacheable) carries the listen address.
    auto png =
        c.request(V::get, "/api/v1/qr/88.118/doc?format=png", {}, {{"Host", "evil.example:8443"}});
    REQUIRE(png.result() == http::status::ok);
    const fs::path file = node.dir() / "doc.png";
    std::ofstream(file, std::ios::binary) << png.body();
    const auto scan = run_command({"zbarimg", "--quiet", "--raw", file.string()});
    CHECK(scan.out == "https://127.0.0.1:" + std::to_string(node.https_port()) + "/88.118/doc\n");
    const std::string svg = c.request(V::get, "/api/v1/qr/88.118/doc").body();
    for (const char* host : {"evil.example", "127.0.0.1", "node.example:8443"}) {
        CAPTURE(host);
        CHECK(c.request(V::get, "/api/v1/qr/88.118/doc", {}, {{"Host", host}}).body() == svg);
    }
    CHECK(node.stop() == 0);

    // A wildcard listen address names no host a client could use: the node refuses to start.
    NodeProcess wildcard{"html-qr-wildcard"};
    wildcard.set("https.listen", "\"0.0.0.0:0\"");
    CHECK_THROWS_AS(wildcard.start(), HarnessError);
    CHECK(contains(wildcard.stderr_text(),
                   "node.public_base_url must be set when https.listen is a wildcard address"));
}

TEST_CASE("headless Chromium: search, read the page, not found, markup never runs") {
    if (!have_executable("chromium") || !have_executable("chromedriver")) {
        MESSAGE(
            "SKIPPED: chromium and chromium-driver are not installed (tools/dev installs them)");
        return;
    }
    PageNode n;
    TempDir profile("html-chromium");
    ChromeDriver driver(profile.path());
    Browser browser(driver, profile.path());
    const std::string origin = "https://127.0.0.1:" + std::to_string(n.node.https_port());

    browser.go(origin + "/");
    const std::string input = browser.element("input[name=handle]");
    browser.command(V::post, "/element/" + input + "/value",
                    json::object{{"text", "88.118.8/COIL-1"}});
    browser.command(V::post, "/element/" + browser.element("button[type=submit]") + "/click",
                    json::object{});
    REQUIRE(eventually([&] { return contains(browser.url(), "handle="); }, 10s));
    REQUIRE(eventually([&] { return contains(browser.text(), "H2024-0917"); }, 10s));
    const std::string page = browser.text();
    CHECK(contains(page, "示例钢铁 Demo Steel"));
    CHECK(contains(page, "热轧钢卷 hot-rolled coil"));
    CHECK(contains(page, "2024年11月2日"));
    CHECK_FALSE(contains(page, "PRICE-4120.50"));
    CHECK_FALSE(contains(page, "price"));
    const fs::path shot = fs::path(IDNODE_TEST_OUTPUT_DIR) / "html_page_coil.png";
    browser.screenshot(shot);
    CHECK(fs::file_size(shot) > 1000);
    MESSAGE("screenshot: " << shot.string());

    browser.go(origin + "/88.118.8/NOPE");
    CHECK(contains(browser.text(), "未找到该标识"));
    CHECK(contains(browser.text(), "Identifier not found"));

    browser.go(origin + "/88.118.8/XSS-1");
    REQUIRE(eventually([&] { return contains(browser.text(), "window.__pwned=1"); }, 10s));
    CHECK(contains(browser.text(), "<script>window.__pwned=1;document.title='pwned'</script>"));
    const auto probe = browser.script("return [document.title, typeof window.__pwned, "
                                      "document.getElementsByTagName('script').length, "
                                      "document.getElementsByTagName('img').length]");
    CHECK(probe.as_array()[0].as_string() != "pwned");
    CHECK(probe.as_array()[1].as_string() == "undefined");
    CHECK(probe.as_array()[2].as_int64() == 0);
    CHECK(probe.as_array()[3].as_int64() == 0);
    browser.screenshot(fs::path(IDNODE_TEST_OUTPUT_DIR) / "html_page_markup.png");
}
