#include "idnode/resolver/metrics.hpp"

#include <doctest/doctest.h>

#include <thread>
#include <vector>

using namespace idnode::resolver;

TEST_CASE("counters, gauges, families and callbacks render in the text format") {
    MetricsRegistry registry;
    auto& hits = registry.counter("app_hits_total", "Hits so far");
    auto& temperature = registry.gauge("app_temperature", "Degrees\nwith a newline");
    auto& requests = registry.counter_family("app_requests_total", "Requests", {"route", "status"});
    registry.gauge_callback("app_items", "Items stored", [] { return 42.0; });

    hits.inc();
    hits.inc(2);
    temperature.set(-1.5);
    requests.with({"/a", "200"}).inc();
    requests.with({"/a", "200"}).inc();
    requests.with({"/b\"x\\y\n", "404"}).inc();

    const std::string text = registry.render();
    CHECK(text == "# HELP app_hits_total Hits so far\n"
                  "# TYPE app_hits_total counter\n"
                  "app_hits_total 3\n"
                  "# HELP app_temperature Degrees\\nwith a newline\n"
                  "# TYPE app_temperature gauge\n"
                  "app_temperature -1.5\n"
                  "# HELP app_requests_total Requests\n"
                  "# TYPE app_requests_total counter\n"
                  "app_requests_total{route=\"/a\",status=\"200\"} 2\n"
                  "app_requests_total{route=\"/b\\\"x\\\\y\\n\",status=\"404\"} 1\n"
                  "# HELP app_items Items stored\n"
                  "# TYPE app_items gauge\n"
                  "app_items 42\n");
}

TEST_CASE("histograms are cumulative with +Inf, _sum and _count") {
    MetricsRegistry registry;
    auto& h = registry.histogram("lat_seconds", "Latency", {0.1, 1});
    h.observe(0.05);
    h.observe(0.1); // le is inclusive
    h.observe(0.5);
    h.observe(7);
    CHECK(registry.render() == "# HELP lat_seconds Latency\n"
                               "# TYPE lat_seconds histogram\n"
                               "lat_seconds_bucket{le=\"0.1\"} 2\n"
                               "lat_seconds_bucket{le=\"1\"} 3\n"
                               "lat_seconds_bucket{le=\"+Inf\"} 4\n"
                               "lat_seconds_sum 7.65\n"
                               "lat_seconds_count 4\n");

    auto& family = registry.histogram_family("route_seconds", "By route", {"route"}, {1});
    family.with({"/x"}).observe(2);
    const std::string text = registry.render();
    CHECK(text.find("route_seconds_bucket{route=\"/x\",le=\"1\"} 0\n") != std::string::npos);
    CHECK(text.find("route_seconds_bucket{route=\"/x\",le=\"+Inf\"} 1\n") != std::string::npos);
    CHECK(text.find("route_seconds_sum{route=\"/x\"} 2\n") != std::string::npos);
    CHECK(text.find("route_seconds_count{route=\"/x\"} 1\n") != std::string::npos);
}

TEST_CASE("registration mistakes are logic errors") {
    MetricsRegistry registry;
    registry.counter("a_total", "x");
    CHECK_THROWS_AS(registry.counter("a_total", "again"), std::logic_error);
    CHECK_THROWS_AS(registry.gauge("9bad", "x"), std::logic_error);
    CHECK_THROWS_AS(registry.counter_family("f_total", "x", {"le"}), std::logic_error);
    CHECK_THROWS_AS(registry.histogram("h", "x", {2, 1}), std::logic_error);
    auto& f = registry.counter_family("g_total", "x", {"a", "b"});
    CHECK_THROWS_AS(f.with({"only-one"}), std::logic_error);
}

TEST_CASE("a callback that throws renders NaN instead of breaking the scrape") {
    MetricsRegistry registry;
    registry.gauge_callback("broken", "x", []() -> double { throw std::runtime_error("no"); });
    CHECK(registry.render().find("broken NaN\n") != std::string::npos);
    CHECK(format_metric_value(1e-05) == "1e-05");
    CHECK(format_metric_value(0.25) == "0.25");
}

TEST_CASE("collectors render samples read at scrape time, with their declared type") {
    MetricsRegistry registry;
    std::uint64_t seen = 0;
    registry.collector("app_ops_total", "Ops by code", MetricType::counter, [&seen](Collection& c) {
        ++seen;
        c.add({{"code", "1"}}, 7);
        c.add({{"code", "100"}}, 2);
    });
    registry.collector("app_plain_total", "No labels", MetricType::counter,
                       [](Collection& c) { c.add({}, 5); });
    registry.collector("app_latency_seconds", "Latency", MetricType::histogram, [](Collection& c) {
        c.add_histogram({}, HistogramData{{0.001, 0.01}, {3, 4, 6}, 0.5});
        // inconsistent sizes: skipped, not rendered half-way
        c.add_histogram({{"x", "bad"}}, HistogramData{{0.001}, {1}, 0});
    });
    registry.collector("app_broken", "Throws", MetricType::gauge,
                       [](Collection&) { throw std::runtime_error("no"); });

    const std::string text = registry.render();
    CHECK(seen == 1);
    CHECK(text == "# HELP app_ops_total Ops by code\n"
                  "# TYPE app_ops_total counter\n"
                  "app_ops_total{code=\"1\"} 7\n"
                  "app_ops_total{code=\"100\"} 2\n"
                  "# HELP app_plain_total No labels\n"
                  "# TYPE app_plain_total counter\n"
                  "app_plain_total 5\n"
                  "# HELP app_latency_seconds Latency\n"
                  "# TYPE app_latency_seconds histogram\n"
                  "app_latency_seconds_bucket{le=\"0.001\"} 3\n"
                  "app_latency_seconds_bucket{le=\"0.01\"} 4\n"
                  "app_latency_seconds_bucket{le=\"+Inf\"} 6\n"
                  "app_latency_seconds_sum 0.5\n"
                  "app_latency_seconds_count 6\n"
                  "# HELP app_broken Throws\n"
                  "# TYPE app_broken gauge\n");
    CHECK_THROWS_AS(registry.collector("app_null", "x", MetricType::gauge, {}), std::logic_error);
}

TEST_CASE("concurrent updates are not lost") {
    MetricsRegistry registry;
    auto& family = registry.counter_family("c_total", "x", {"k"});
    auto& h = registry.histogram("h_seconds", "x", {1});
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 10000; ++i) {
                family.with({i % 2 ? "odd" : "even"}).inc();
                h.observe(t);
            }
        });
    for (auto& t : threads)
        t.join();
    CHECK(family.with({"odd"}).value() == 20000);
    CHECK(family.with({"even"}).value() == 20000);
    CHECK(h.snapshot().cumulative_counts.back() == 40000);
}
