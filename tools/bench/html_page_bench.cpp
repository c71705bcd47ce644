// html_page_bench — server-side cost of the resolution page for people (the page target: a record
// with 10 values served in under 2 ms and under 20 KB; docs/performance.md#pages-html_page_bench).
//
// Opens a scratch registry, stores an enterprise prefix and one identifier with 10 public values
// (plus a private one that must not appear), builds the real NodeApi routes and dispatches
// `GET /{handle}?noredirect` with a browser's Accept header through the Router, exactly as the
// HTTPS session does after reading a request: snapshot, record, prefix record, rendering,
// headers. TLS and socket time are excluded on purpose (they are the same for every route; see
// https_vs_nginx.sh for those). Also times the pure renderer alone and the QR PNG endpoint.
//
//   html_page_bench [--requests N] [--dir PATH]
//
// Prints a table, then `bench:` lines (docs/performance.md).
#include "coil_values.hpp"
#include "idnode/registry/admin.hpp"
#include "idnode/registry/registry.hpp"
#include "idnode/resolver/node_api.hpp"
#include "idnode/resolver/router.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <vector>

namespace reg = idnode::registry;
using namespace idnode::resolver;
using Clock = std::chrono::steady_clock;

namespace {

struct Timing {
    std::string what;
    double p50_us = 0, p99_us = 0, max_us = 0;
    std::size_t bytes = 0;
    int status = 0;
};

Timing measure(const Router& router, const std::string& what, const std::string& target,
               const std::string& accept, int requests) {
    std::vector<double> us;
    us.reserve(static_cast<std::size_t>(requests));
    Timing t{what};
    for (int i = 0; i < requests; ++i) {
        Request req{http::verb::get, target, 11};
        req.set(http::field::host, "id.example.cn");
        if (!accept.empty())
            req.set(http::field::accept, accept);
        std::optional<Response> out;
        const auto start = Clock::now();
        router.dispatch(std::move(req),
                        Responder(RequestContext{},
                                  [&](Response&& r, RequestContext&&) { out = std::move(r); }));
        us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
        t.bytes = out ? out->body().size() : 0;
        t.status = out ? out->result_int() : 0;
    }
    std::sort(us.begin(), us.end());
    t.p50_us = us[us.size() / 2];
    t.p99_us = us[us.size() * 99 / 100];
    t.max_us = us.back();
    return t;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"server-side cost of the HTML resolution page and the QR endpoint"};
    int requests = 2000;
    std::string dir = (std::filesystem::temp_directory_path() / "idnode-html-bench").string();
    app.add_option("--requests", requests, "requests per measurement")
        ->check(CLI::Range(10, 10000000));
    app.add_option("--dir", dir, "scratch directory (emptied)");
    CLI11_PARSE(app, argc, argv);

    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::vector<Timing> rows;
    {
        reg::RegistryOptions o;
        o.data_dir = std::filesystem::path(dir) / "db";
        o.durable = false;
        auto registry = reg::Registry::open(o);

        reg::PrefixRecord prefix;
        prefix.prefix = "88.118.8";
        prefix.enterprise = {"宝山钢铁股份有限公司 Baoshan Iron & Steel", "91310000631696382C",
                             "C3120", "ops@example.cn"};
        if (!registry
                 ->write(
                     reg::PutEntry{reg::Table::prefixes, "88.118.8", reg::encode_prefix(prefix)})
                 .ok()) {
            std::fprintf(stderr, "cannot store the prefix\n");
            return 1;
        }
        using idnode::bench::value;
        // Ten public values typical of a steel coil, one private.
        std::vector<reg::HandleValue> values{value(1, "DESC", "热轧卷板 Q235B 4.75×1500×C"),
                                             value(2, "EMAIL", "quality@baosteel.example.cn"),
                                             value(3, "HS_ALIAS", "88.118.8/COIL-2024-000122"),
                                             value(2000, "heat_no", "H24-091733"),
                                             value(2001, "grade", "Q235B"),
                                             value(2002, "standard", "GB/T 3274-2017"),
                                             value(2003, "dimensions", "4.75 × 1500 × C mm"),
                                             value(2004, "batch", "B2024-11-0217"),
                                             value(2005, "mill_cert_no", "MC-2024-558812"),
                                             value(2006, "production_date", "2024-11-02"),
                                             value(2007, "price", "4120.50")};
        values.back().permissions.bits =
            reg::Permissions::kAdminRead | reg::Permissions::kAdminWrite;
        auto handle = reg::parse_handle("88.118.8/COIL-2024-000123");
        if (!registry->write(reg::PutRecord{*handle, values, reg::PutMode::upsert}).ok()) {
            std::fprintf(stderr, "cannot store the record\n");
            return 1;
        }

        NodeApiOptions options;
        options.homed_prefixes = {"88.118"};
        options.public_base_url = "https://id.example.cn";
        NodeApi api(*registry, options);
        Router router;
        api.register_routes(router);

        const std::string browser = "text/html,application/xhtml+xml,*/*;q=0.8";
        measure(router, "warm-up", "/88.118.8/COIL-2024-000123", browser, 100);
        rows.push_back(measure(router, "HTML page, 10 values",
                               "/88.118.8/COIL-2024-000123?noredirect", browser, requests));
        rows.push_back(measure(router, "JSON, same record",
                               "/api/handles/88.118.8/COIL-2024-000123", "", requests));
        rows.push_back(measure(router, "HTML not-found page", "/88.118.8/NOPE", browser, requests));
        rows.push_back(measure(router, "search page", "/", browser, requests));
        rows.push_back(measure(router, "QR PNG 256 px",
                               "/api/v1/qr/88.118.8/COIL-2024-000123?format=png", "",
                               std::max(10, requests / 10)));
        rows.push_back(measure(router, "QR SVG", "/api/v1/qr/88.118.8/COIL-2024-000123?format=svg",
                               "", std::max(10, requests / 10)));
    }
    std::filesystem::remove_all(dir);

    std::printf("%-24s %6s %10s %10s %10s %9s\n", "request (in-process)", "status", "p50 us",
                "p99 us", "max us", "bytes");
    for (const auto& r : rows) {
        std::printf("%-24s %6d %10.1f %10.1f %10.1f %9zu\n", r.what.c_str(), r.status, r.p50_us,
                    r.p99_us, r.max_us, r.bytes);
    }
    std::printf("bench: html_page_p50 %.1f us\n", rows[0].p50_us);
    std::printf("bench: html_page_p99 %.1f us\n", rows[0].p99_us);
    std::printf("bench: html_page_bytes %zu bytes\n", rows[0].bytes);
    std::printf("bench: qr_png_p50 %.1f us\n", rows[4].p50_us);
    return rows[0].status == 200 ? 0 : 1;
}
