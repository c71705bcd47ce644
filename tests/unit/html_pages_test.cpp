// The resolution pages for people (resolver/src/api/html_pages): escaping, formatting by type,
// rendering, content negotiation, and the view model built from a real registry.
#include "api/html/html_pages.hpp"
#include "idnode/registry/admin.hpp"
#include "store_helpers.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>

using namespace idnode::resolver;
using namespace idnode::resolver::html;
using idnode::test::TempDir;

namespace {

bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

PageValue value(std::int32_t index, std::string type, std::string data) {
    PageValue v;
    v.index = index;
    v.type = std::move(type);
    v.data = std::move(data);
    v.timestamp = 1732269600; // 2024-11-22T10:00:00Z
    return v;
}

HandlePage sample_page() {
    HandlePage p;
    p.handle = "88.118.8/SN-2024-000123";
    p.prefix = "88.118.8";
    p.enterprise_name = "宝钢股份 Baosteel";
    p.enterprise_code = "C3120";
    p.values = {value(1, "URL", "https://example.cn/coil?id=1&x=2"),
                value(2001, "heat_no", "H24-0917"), value(2002, "production_date", "2024-11-02")};
    return p;
}

} // namespace

TEST_CASE("escape turns markup, quotes and bad bytes into inert text") {
    CHECK(escape("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;");
    CHECK(escape(R"(" onmouseover='x' a=&b)") == "&quot; onmouseover=&#39;x&#39; a=&amp;b");
    CHECK(escape("&amp;") == "&amp;amp;"); // escaped exactly once, never "unescaped"
    // RTL text, an RTL override and emoji pass through unchanged (they are content); the page
    // isolates them with <bdi>.
    const std::string rtl = "\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D \xE2\x80\xAE"
                            "cod.exe";
    CHECK(escape(rtl) == rtl);
    CHECK(escape("钢卷 🚀👩‍🏭") == "钢卷 🚀👩‍🏭");
    // Invalid UTF-8 and control characters become U+FFFD; tab and newline stay.
    CHECK(escape(std::string("a\xFF"
                             "b")) == "a\xEF\xBF\xBD"
                                      "b");
    CHECK(escape(std::string("a\0b\x1b\x7f", 5)) == "a\xEF\xBF\xBD"
                                                    "b\xEF\xBF\xBD\xEF\xBF\xBD");
    CHECK(escape("a\tb\nc") == "a\tb\nc");
    CHECK(escape(std::string("\xE2\x82")) == "\xEF\xBF\xBD\xEF\xBF\xBD"); // truncated sequence
}

TEST_CASE("values are formatted by kind: links only for http(s) and handles") {
    SUBCASE("URL values become links, quotes in them cannot break out of href") {
        const auto html = format_value(value(1, "URL", "https://a.example/?q=\"><x&y"), nullptr);
        CHECK(contains(html, "<a href=\"https://a.example/?q=&quot;&gt;&lt;x&amp;y\""));
        CHECK(contains(html, "rel=\"nofollow noopener noreferrer\""));
        CHECK(contains(format_value(value(1, "URL.mobile", "http://m.example"), nullptr), "<a "));
    }
    SUBCASE("other schemes and malformed URLs stay text") {
        for (const char* bad :
             {"javascript:alert(1)", "data:text/html,<script>x</script>", "JaVaScRiPt:alert(1)",
              "/relative", "https://a b.example", "https://x\n.example", "ftp://files.example"}) {
            const auto html = format_value(value(1, "URL", bad), nullptr);
            CAPTURE(bad);
            CHECK_FALSE(contains(html, "<a "));
            CHECK_FALSE(contains(html, "<script"));
        }
    }
    SUBCASE("a template item of type url is a link whatever the value type") {
        const ItemLabel label{"质保书", "certificate_url", "url"};
        CHECK(contains(format_value(value(2003, "certificate_url", "https://c.example/1"), &label),
                       "<a href=\"https://c.example/1\""));
        // ...and a URL-typed value that the template calls a string stays text.
        const ItemLabel text{"说明", "URL", "string"};
        CHECK_FALSE(contains(format_value(value(2004, "URL", "https://c.example"), &text), "<a "));
    }
    SUBCASE("references to identifiers link to their page on this node, percent-encoded") {
        const ItemLabel label{"上游批次", "parent_batch", "handle"};
        const auto html = format_value(value(2005, "parent_batch", "88.118.8/B 7?x#y"), &label);
        CHECK(contains(html, "<a class=\"mono\" href=\"/88.118.8/B%207%3Fx%23y\">"));
        CHECK(contains(html, "88.118.8/B 7?x#y"));
        CHECK(contains(format_value(value(3, "HS_ALIAS", "88.118.9/X"), nullptr),
                       "href=\"/88.118.9/X\""));
        // Not a handle: text, no link.
        CHECK_FALSE(contains(format_value(value(2005, "parent_batch", "no-slash"), &label), "<a "));
        // Handle value references are listed as links too.
        auto v = value(4, "DESC", "see below");
        v.references = {"88.118.8/REF-1", "not a handle"};
        const auto refs = format_value(v, nullptr);
        CHECK(contains(refs, "href=\"/88.118.8/REF-1\""));
        CHECK(contains(refs, "not a handle"));
    }
    SUBCASE("dates and datetimes") {
        const ItemLabel date{"生产日期", "production_date", "date"};
        CHECK(format_value(value(2002, "production_date", "2024-11-02"), &date) ==
              "<time datetime=\"2024-11-02\">2024年11月2日</time>");
        const ItemLabel dt{"出厂时间", "shipped_at", "datetime"};
        CHECK(format_value(value(2006, "shipped_at", "2024-11-22T10:05:09.123+08:00"), &dt) ==
              "<time datetime=\"2024-11-22T10:05:09.123+08:00\">2024年11月22日 10:05:09 "
              "UTC+08:00</time>");
        // Without a template a value that is exactly a date is shown as one.
        CHECK(contains(format_value(value(5, "DATE", "2024-01-31"), nullptr), "2024年1月31日"));
        CHECK(contains(format_value(value(5, "NOTE", "2024-01-31Z"), nullptr), "<bdi>"));
        // A template string item is never reformatted, and impossible dates stay text.
        const ItemLabel text{"批号", "batch", "string"};
        CHECK(format_value(value(2007, "batch", "2024-11-02"), &text) == "<bdi>2024-11-02</bdi>");
        CHECK(format_value(value(2002, "production_date", "2024-13-02"), &date) ==
              "<bdi>2024-13-02</bdi>");
    }
    SUBCASE("binary data is described, not dumped") {
        CHECK(contains(format_value(value(6, "HS_PUBKEY", std::string("\x00\xff\x10", 3)), nullptr),
                       "3 字节 bytes"));
    }
}

TEST_CASE("the identifier page shows header, labels and values, all escaped") {
    auto page = sample_page();
    page.values.push_back(value(2010, "note", "<script>alert('x')</script>"));
    page.values.push_back(value(2011, "origin", "مصنع 🚀"));
    SUBCASE("without a template the value types are the labels") {
        const auto html = render_handle_page(page);
        CHECK(contains(html, "<!DOCTYPE html>"));
        CHECK(contains(html, "<meta name=\"viewport\""));
        CHECK(contains(html, "<html lang=\"zh-CN\">"));
        CHECK(contains(html, "88.118.8/SN-2024-000123"));
        CHECK(contains(html, "宝钢股份 Baosteel"));
        CHECK(contains(html, "C3120"));
        CHECK(contains(html, "网址<span class=\"en\" lang=\"en\">URL</span>"));
        CHECK(contains(html, "<bdi lang=\"en\">heat_no</bdi>"));
        CHECK(contains(html, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        CHECK(contains(html, "<bdi>مصنع 🚀</bdi>"));
        CHECK_FALSE(contains(html, "<script"));
        CHECK_FALSE(contains(html, "src=\"http")); // no external assets
        CHECK(contains(html, "href=\"/api/v1/qr/88.118.8/SN-2024-000123?format=svg\""));
    }
    SUBCASE("with a template the item names label the values in Chinese and English") {
        TemplateSummary t;
        t.name = "钢卷 Steel coil";
        t.version = "steel-1.0";
        t.industry = "C3120 钢压延加工";
        t.items[2001] = {"炉号", "heat_no", "string"};
        t.items[2002] = {"生产日期", "production_date", "date"};
        page.template_info = t;
        page.template_version = "steel-1.0";
        const auto html = render_handle_page(page);
        CHECK(contains(html, "<bdi lang=\"zh\">炉号</bdi><span class=\"en\" lang=\"en\">heat_no"));
        CHECK(contains(html, "2024年11月2日"));
        CHECK(contains(html, "钢卷 Steel coil"));
        CHECK(contains(html, "C3120 钢压延加工"));
    }
    SUBCASE("template and enterprise texts are escaped too") {
        page.enterprise_name = "<img src=x onerror=alert(1)>";
        TemplateSummary t;
        t.name = "\"><script>";
        t.version = "v1";
        t.items[2001] = {"<b>炉号</b>", "heat_no", ""};
        page.template_info = t;
        const auto html = render_handle_page(page);
        CHECK_FALSE(contains(html, "<img"));
        CHECK_FALSE(contains(html, "<script"));
        CHECK_FALSE(contains(html, "<b>"));
        CHECK(contains(html, "&lt;b&gt;炉号&lt;/b&gt;"));
    }
    SUBCASE("private values are marked, and the page says so") {
        page.private_view = true;
        page.values.back().is_private = true;
        const auto html = render_handle_page(page);
        CHECK(contains(html, "非公开 private"));
        CHECK(contains(html, "do not share"));
    }
}

TEST_CASE(
    "a page stays small whatever the record: long values cut, values past the budget counted") {
    // One long URL of quotes: escaped twice (href and text) it would be 12 times its size.
    const std::string quotes = "https://e.example/" + std::string(100000, '"');
    const auto cut = format_value(value(1, "URL", quotes), nullptr);
    CHECK_FALSE(contains(cut, "<a ")); // a cut link would point elsewhere
    CHECK(cut.size() < 2048 * 6 + 200);
    CHECK(contains(cut, std::to_string(quotes.size() - 2048) + " more bytes"));
    // Cut on a UTF-8 boundary: 3-byte characters, 2048 is not a multiple of 3.
    std::string chinese;
    for (int i = 0; i < 1000; ++i)
        chinese += "钢";
    const auto zh = format_value(value(2, "NOTE", chinese), nullptr);
    CHECK(contains(zh, "<bdi>" + chinese.substr(0, 2046) + "</bdi>…"));

    auto page = sample_page();
    page.values.clear();
    for (int i = 0; i < 2048; ++i)
        page.values.push_back(value(2000 + i, "URL", "https://e.example/" + std::string(400, '"')));
    const auto html = render_handle_page(page);
    CHECK(html.size() < 512 * 1024 + 16 * 1024);
    CHECK(contains(html, " more values not shown; see the JSON"));
    CHECK(contains(html, "</body></html>"));
}

TEST_CASE("search and problem pages") {
    const auto search = render_search_page("\"><script>x", "");
    CHECK(contains(search, "<form action=\"/\" method=\"get\""));
    CHECK(contains(search, "name=\"handle\""));
    CHECK(contains(search, "value=\"&quot;&gt;&lt;script&gt;x\""));
    CHECK_FALSE(contains(search, "<script"));
    CHECK_FALSE(contains(search, "class=\"msg\""));
    CHECK(contains(render_search_page("", "请输入标识"), "class=\"msg\""));

    CHECK(problem_status(Problem::not_found) == http::status::not_found);
    CHECK(problem_status(Problem::no_page) == http::status::not_found);
    CHECK(problem_status(Problem::invalid) == http::status::bad_request);
    CHECK(problem_status(Problem::not_homed) == http::status::bad_request);
    const auto nf = render_problem_page(Problem::not_found, "88.118.8/<i>", "");
    CHECK(contains(nf, "未找到该标识"));
    CHECK(contains(nf, "Identifier not found"));
    CHECK(contains(nf, "88.118.8/&lt;i&gt;"));
    CHECK(
        contains(render_problem_page(Problem::invalid, "x", "suffix is empty"), "suffix is empty"));
    CHECK(
        contains(render_problem_page(Problem::not_homed, "99.1/x", ""), "Not served by this node"));
}

TEST_CASE("wants_html follows the Accept header") {
    CHECK(wants_html("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
    CHECK(wants_html("TEXT/HTML"));
    CHECK(wants_html("application/json;q=0.5, text/html ;q=0.4"));
    CHECK_FALSE(wants_html(""));
    CHECK_FALSE(wants_html("*/*"));
    CHECK_FALSE(wants_html("application/json"));
    CHECK_FALSE(wants_html("text/html;q=0"));
    CHECK_FALSE(wants_html("text/html; q=0.000"));
    CHECK_FALSE(wants_html("text/htmlx"));
}

TEST_CASE("redirect targets are absolute http(s) URLs without header-splitting bytes") {
    CHECK(redirect_target_ok("https://example.cn/c?id=1"));
    CHECK(redirect_target_ok("HTTP://example.cn"));
    for (const char* other :
         {"ftp://files.example/x", "javascript:alert(1)", "data:text/html,<script>x</script>",
          "//evil.example/x", "/relative", "https:///evil.example", "https:\\evil.example",
          "https://\\evil.example", "http://", "https:evil.example"}) {
        CAPTURE(other);
        CHECK_FALSE(redirect_target_ok(other));
    }
    CHECK_FALSE(redirect_target_ok(""));
    CHECK_FALSE(redirect_target_ok("https://x.example/\r\nSet-Cookie: a=b"));
    CHECK_FALSE(redirect_target_ok("https://x.example/a b"));
    CHECK_FALSE(redirect_target_ok(std::string("https://x.example/\xff")));
    CHECK_FALSE(redirect_target_ok(std::string(2049, 'a')));
}

TEST_CASE("page responses carry the security headers") {
    Request req{http::verb::get, "/", 11};
    const auto r = page_response(req, http::status::not_found, "<p>x</p>");
    CHECK(r.result() == http::status::not_found);
    CHECK(r[http::field::content_type] == "text/html; charset=utf-8");
    CHECK(r["Content-Security-Policy"] == kContentSecurityPolicy);
    CHECK(contains(r["Content-Security-Policy"], "default-src 'none'"));
    CHECK(r["X-Content-Type-Options"] == "nosniff");
    CHECK(r[http::field::vary] == "Accept");
    CHECK(r[http::field::cache_control] == "no-cache");
    CHECK(page_response(req, http::status::ok, "", true)[http::field::cache_control] ==
          "private, no-store");
}

TEST_CASE("build_handle_page reads the record, the enterprise and drops what is not shown") {
    using namespace idnode::registry;
    TempDir dir("html-pages");
    auto reg = Registry::open(idnode::test::options_in(dir));
    PrefixRecord pr;
    pr.prefix = "88.118.8";
    pr.enterprise = {"示例钢铁 Demo Steel", "91310000MA1K000000", "C3120", ""};
    REQUIRE(reg->write(PutEntry{Table::prefixes, "88.118.8", encode_prefix(pr)}).ok());
    auto admin = idnode::test::val(100, "HS_ADMIN", "admin-bytes");
    auto tmpl = idnode::test::val(kIndexTemplate, "TEMPLATE", "steel-1.0");
    auto ref = idnode::test::val(4, "DESC", "batch");
    ref.references = {{"88.118.8/BATCH-1", 1}};
    REQUIRE(
        reg->write(idnode::test::put("88.118.8/Coil-1",
                                     {idnode::test::val(1, "URL", "https://example.cn/c1"), admin,
                                      tmpl, ref, idnode::test::val(2001, "heat_no", "H1"),
                                      idnode::test::val(2002, "price", "secret", "1100")}))
            .ok());
    const auto h = idnode::test::handle("88.118.8/COIL-1");

    auto anonymous = build_handle_page(reg->snapshot(), h, false);
    REQUIRE(anonymous.ok());
    CHECK(anonymous->handle == "88.118.8/Coil-1"); // the registered spelling
    CHECK(anonymous->enterprise_name == "示例钢铁 Demo Steel");
    CHECK(anonymous->enterprise_code == "C3120");
    CHECK(anonymous->template_version == "steel-1.0");
    CHECK_FALSE(anonymous->template_info.has_value()); // no template stored under steel-1.0
    CHECK(anonymous->redirect_url == "https://example.cn/c1");
    std::vector<std::int32_t> indices;
    for (const auto& v : anonymous->values)
        indices.push_back(v.index);
    CHECK(indices == std::vector<std::int32_t>{1, 4, 2001}); // no HS_ADMIN, TEMPLATE, private
    CHECK(anonymous->values[1].references == std::vector<std::string>{"88.118.8/BATCH-1"});
    CHECK_FALSE(contains(render_handle_page(*anonymous), "secret"));

    auto owner = build_handle_page(reg->snapshot(), h, true);
    REQUIRE(owner.ok());
    REQUIRE(owner->values.size() == 4);
    CHECK(owner->values.back().data == "secret");
    CHECK(owner->values.back().is_private);

    auto missing = build_handle_page(reg->snapshot(), idnode::test::handle("88.118.8/none"), false);
    CHECK(missing.code() == Errc::not_found);
    // A handle under a prefix without an enterprise record: no enterprise line, still a page.
    REQUIRE(
        reg->write(idnode::test::put("88.118/node-doc", {idnode::test::val(1, "DESC", "x")})).ok());
    auto node_level =
        build_handle_page(reg->snapshot(), idnode::test::handle("88.118/node-doc"), false);
    REQUIRE(node_level.ok());
    CHECK(node_level->enterprise_name.empty());
    CHECK_FALSE(contains(render_handle_page(*node_level), "Enterprise"));
}
