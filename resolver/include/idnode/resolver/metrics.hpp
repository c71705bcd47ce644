// A small Prometheus-style metrics registry: counters, gauges, histograms (optionally labelled)
// and callback gauges evaluated at scrape time. Rendered in the Prometheus text exposition
// format 0.0.4 by `MetricsRegistry::render`.
//
// Hot path: `Counter::inc`, `Gauge::set/add`, `Histogram::observe` are lock-free atomics.
// `Family::with(labels)` takes a shared lock for a map lookup (exclusive only the first time a
// label combination appears); callers on hot paths may keep the returned reference, which stays
// valid for the registry's lifetime.
//
// Registration (`counter`, `gauge_callback`, ...) is thread-safe but meant for startup; a second
// registration of the same name throws std::logic_error (a programming error), as do invalid
// names and label counts that do not match the family.
//
// Lifetime: every metric lives as long as its registry. Callbacks passed to `gauge_callback` are
// called from the scraping thread while the registry's registration lock is held, so they must
// not register metrics, and they must stay callable until the registry is destroyed.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace idnode::resolver {

class Counter {
public:
    void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
    std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> value_{0};
};

class Gauge {
public:
    void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
    void add(double d) noexcept { value_.fetch_add(d, std::memory_order_relaxed); }
    double value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<double> value_{0};
};

/// Fixed upper bounds (strictly increasing, +Inf implicit). Observations are in base units
/// (seconds for latencies).
class Histogram {
public:
    explicit Histogram(std::vector<double> upper_bounds);
    void observe(double value) noexcept;

    struct Snapshot {
        std::vector<double> upper_bounds;
        std::vector<std::uint64_t> cumulative_counts; // one per bound, then +Inf (= count)
        double sum = 0;
    };
    Snapshot snapshot() const;

private:
    std::vector<double> bounds_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_; // bounds_.size() + 1 (the +Inf one)
    std::atomic<double> sum_{0};
};

/// A histogram's state as another component keeps it: upper bounds (+Inf implicit), cumulative
/// counts per bound followed by the total, and the sum of observations.
struct HistogramData {
    std::vector<double> upper_bounds;
    std::vector<std::uint64_t> cumulative_counts; // upper_bounds.size() + 1
    double sum = 0;
};

/// Samples produced at scrape time by a collector (see MetricsRegistry::collector): for metrics
/// whose numbers live elsewhere (another component's own counters), so they are read once per
/// scrape instead of being mirrored on every event.
class Collection {
public:
    using Labels = std::vector<std::pair<std::string, std::string>>;
    /// A counter or gauge sample; `labels` may be empty.
    void add(Labels labels, double value) {
        samples_.push_back({std::move(labels), value, {}, {}});
    }
    /// A histogram sample (for collectors registered as histograms).
    void add_histogram(Labels labels, HistogramData data);

    struct Sample {
        Labels labels;
        double value = 0;                             // a histogram's sum
        std::vector<std::uint64_t> cumulative_counts; // histograms only
        std::vector<double> upper_bounds;             // histograms only
    };
    const std::vector<Sample>& samples() const noexcept { return samples_; }

private:
    std::vector<Sample> samples_;
};

inline void Collection::add_histogram(Labels labels, HistogramData data) {
    samples_.push_back({std::move(labels), data.sum, std::move(data.cumulative_counts),
                        std::move(data.upper_bounds)});
}

enum class MetricType { counter, gauge, histogram };

/// Default latency buckets in seconds: 50 µs .. 10 s.
std::vector<double> default_latency_buckets();

/// A metric with labels. `with({"GET", "200"})` returns the child for those label values.
template <class Metric> class Family {
public:
    Metric& with(std::initializer_list<std::string_view> label_values);

private:
    friend class MetricsRegistry;
    Family(std::vector<std::string> label_names, std::function<std::unique_ptr<Metric>()> make)
        : label_names_(std::move(label_names)), make_(std::move(make)) {}

    std::vector<std::string> label_names_;
    std::function<std::unique_ptr<Metric>()> make_;
    mutable std::shared_mutex mutex_;
    // key: label values joined with '\x1f'; value: the child (stable address)
    std::map<std::string, std::pair<std::vector<std::string>, std::unique_ptr<Metric>>, std::less<>>
        children_;
};

class MetricsRegistry {
public:
    MetricsRegistry() = default;
    MetricsRegistry(const MetricsRegistry&) = delete;
    MetricsRegistry& operator=(const MetricsRegistry&) = delete;

    Counter& counter(std::string name, std::string help);
    Gauge& gauge(std::string name, std::string help);
    Histogram& histogram(std::string name, std::string help, std::vector<double> upper_bounds);

    Family<Counter>& counter_family(std::string name, std::string help,
                                    std::vector<std::string> label_names);
    Family<Gauge>& gauge_family(std::string name, std::string help,
                                std::vector<std::string> label_names);
    Family<Histogram>& histogram_family(std::string name, std::string help,
                                        std::vector<std::string> label_names,
                                        std::vector<double> upper_bounds);

    /// A gauge whose value is computed at scrape time (e.g. "identifiers total", "db bytes").
    void gauge_callback(std::string name, std::string help, std::function<double()> read);

    /// A metric of `type` whose samples `collect` produces at scrape time (called on the scraping
    /// thread with the registration lock held: same rules as gauge_callback). A collector that
    /// throws renders no samples. Histogram samples with inconsistent sizes are skipped.
    void collector(std::string name, std::string help, MetricType type,
                   std::function<void(Collection&)> collect);

    /// Everything in the text exposition format, metrics in registration order.
    std::string render() const;

private:
    enum class Kind { counter, gauge, histogram, callback, collector };
    struct Entry {
        std::string name;
        std::string help;
        Kind kind;
        bool labelled = false;
        void* metric = nullptr; // Counter/Gauge/Histogram or the matching Family
        std::function<double()> read;
        MetricType collected_type = MetricType::gauge;
        std::function<void(Collection&)> collect;
    };

    Entry& add(std::string name, std::string help, Kind kind, bool labelled);

    mutable std::mutex mutex_;
    std::vector<Entry> entries_;
    // owners (type-erased entries point into these)
    std::vector<std::unique_ptr<Counter>> counters_;
    std::vector<std::unique_ptr<Gauge>> gauges_;
    std::vector<std::unique_ptr<Histogram>> histograms_;
    std::vector<std::unique_ptr<Family<Counter>>> counter_families_;
    std::vector<std::unique_ptr<Family<Gauge>>> gauge_families_;
    std::vector<std::unique_ptr<Family<Histogram>>> histogram_families_;
};

/// Formats a sample value the way Prometheus expects ("+Inf", "NaN", shortest round-trip form).
std::string format_metric_value(double v);

/// Escapes a label value (backslash, double quote, newline).
std::string escape_label_value(std::string_view v);

// ---- template implementation ----------------------------------------------------------------

template <class Metric>
Metric& Family<Metric>::with(std::initializer_list<std::string_view> label_values) {
    if (label_values.size() != label_names_.size())
        throw std::logic_error("metric family: wrong number of label values");
    std::string key;
    for (const auto v : label_values) {
        key.append(v);
        key.push_back('\x1f');
    }
    {
        std::shared_lock lock(mutex_);
        const auto it = children_.find(key);
        if (it != children_.end())
            return *it->second.second;
    }
    std::unique_lock lock(mutex_);
    auto it = children_.find(key);
    if (it == children_.end()) {
        std::vector<std::string> values(label_values.begin(), label_values.end());
        it = children_.emplace(std::move(key), std::make_pair(std::move(values), make_())).first;
    }
    return *it->second.second;
}

} // namespace idnode::resolver
