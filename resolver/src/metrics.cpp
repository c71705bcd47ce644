#include "idnode/resolver/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace idnode::resolver {

// ---- Histogram ----------------------------------------------------------------------------------

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
    if (bounds_.empty() || !std::is_sorted(bounds_.begin(), bounds_.end()) ||
        std::adjacent_find(bounds_.begin(), bounds_.end()) != bounds_.end())
        throw std::logic_error("histogram bounds must be non-empty and strictly increasing");
    buckets_ = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
}

void Histogram::observe(double value) noexcept {
    // Non-cumulative per-bucket counts; snapshot() accumulates.
    const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
    const auto index = static_cast<std::size_t>(it - bounds_.begin());
    buckets_[index].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
    Snapshot s;
    s.upper_bounds = bounds_;
    std::uint64_t running = 0;
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
        running += buckets_[i].load(std::memory_order_relaxed);
        s.cumulative_counts.push_back(running);
    }
    s.sum = sum_.load(std::memory_order_relaxed);
    return s;
}

std::vector<double> default_latency_buckets() {
    return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
            0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};
}

// ---- formatting ---------------------------------------------------------------------------------

std::string format_metric_value(double v) {
    if (std::isnan(v))
        return "NaN";
    if (std::isinf(v))
        return v > 0 ? "+Inf" : "-Inf";
    char buffer[64];
    const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, v);
    return ec == std::errc() ? std::string(buffer, end) : "NaN";
}

std::string escape_label_value(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (const char c : v) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out.push_back(c);
    }
    return out;
}

namespace {

bool valid_name(std::string_view name, bool allow_colon) {
    if (name.empty())
        return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                           (allow_colon && c == ':');
        const bool digit = c >= '0' && c <= '9';
        if (!alpha && !(digit && i > 0))
            return false;
    }
    return true;
}

std::string escape_help(std::string_view help) {
    std::string out;
    for (const char c : help) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else
            out.push_back(c);
    }
    return out;
}

/// `{a="x",b="y"` without the closing brace (so `le` can be appended), or "" when no labels.
std::string label_text(const std::vector<std::string>& names,
                       const std::vector<std::string>& values) {
    std::string out;
    for (std::size_t i = 0; i < names.size(); ++i) {
        out += i == 0 ? "{" : ",";
        out += names[i];
        out += "=\"";
        out += escape_label_value(values[i]);
        out += '"';
    }
    return out;
}

std::string close_labels(const std::string& open) {
    return open.empty() ? "" : open + "}";
}

void render_histogram(std::string& out, const std::string& name, const std::string& labels_open,
                      const Histogram::Snapshot& s) {
    const std::string prefix = labels_open.empty() ? "{" : labels_open + ",";
    for (std::size_t i = 0; i < s.upper_bounds.size(); ++i)
        out += name + "_bucket" + prefix + "le=\"" + format_metric_value(s.upper_bounds[i]) +
               "\"} " + std::to_string(s.cumulative_counts[i]) + "\n";
    out += name + "_bucket" + prefix + "le=\"+Inf\"} " +
           std::to_string(s.cumulative_counts.back()) + "\n";
    out += name + "_sum" + close_labels(labels_open) + " " + format_metric_value(s.sum) + "\n";
    out += name + "_count" + close_labels(labels_open) + " " +
           std::to_string(s.cumulative_counts.back()) + "\n";
}

template <class Metric, class Fn>
void for_each_child(
    const Family<Metric>& family, const std::vector<std::string>& names,
    const std::map<std::string, std::pair<std::vector<std::string>, std::unique_ptr<Metric>>,
                   std::less<>>& children,
    Fn&& fn) {
    (void)family;
    for (const auto& [key, child] : children)
        fn(label_text(names, child.first), *child.second);
}

} // namespace

// ---- registry -----------------------------------------------------------------------------------

MetricsRegistry::Entry& MetricsRegistry::add(std::string name, std::string help, Kind kind,
                                             bool labelled) {
    if (!valid_name(name, true))
        throw std::logic_error("invalid metric name: " + name);
    for (const auto& e : entries_)
        if (e.name == name)
            throw std::logic_error("metric registered twice: " + name);
    entries_.push_back(Entry{
        std::move(name), std::move(help), kind, labelled, nullptr, {}, MetricType::gauge, {}});
    return entries_.back();
}

Counter& MetricsRegistry::counter(std::string name, std::string help) {
    std::lock_guard lock(mutex_);
    auto& e = add(std::move(name), std::move(help), Kind::counter, false);
    counters_.push_back(std::make_unique<Counter>());
    e.metric = counters_.back().get();
    return *counters_.back();
}

Gauge& MetricsRegistry::gauge(std::string name, std::string help) {
    std::lock_guard lock(mutex_);
    auto& e = add(std::move(name), std::move(help), Kind::gauge, false);
    gauges_.push_back(std::make_unique<Gauge>());
    e.metric = gauges_.back().get();
    return *gauges_.back();
}

Histogram& MetricsRegistry::histogram(std::string name, std::string help,
                                      std::vector<double> upper_bounds) {
    auto h = std::make_unique<Histogram>(std::move(upper_bounds));
    std::lock_guard lock(mutex_);
    auto& e = add(std::move(name), std::move(help), Kind::histogram, false);
    histograms_.push_back(std::move(h));
    e.metric = histograms_.back().get();
    return *histograms_.back();
}

namespace {
void check_labels(const std::vector<std::string>& names) {
    if (names.empty())
        throw std::logic_error("a metric family needs at least one label");
    for (const auto& n : names)
        if (!valid_name(n, false) || n == "le" || n.rfind("__", 0) == 0)
            throw std::logic_error("invalid label name: " + n);
}
} // namespace

Family<Counter>& MetricsRegistry::counter_family(std::string name, std::string help,
                                                 std::vector<std::string> label_names) {
    check_labels(label_names);
    std::lock_guard lock(mutex_);
    auto& e = add(std::move(name), std::move(help), Kind::counter, true);
    counter_families_.push_back(std::unique_ptr<Family<Counter>>(
        new Family<Counter>(std::move(label_names), [] { return std::make_unique<Counter>(); })));
    e.metric = counter_families_.back().get();
    return *counter_families_.back();
}

Family<Gauge>& MetricsRegistry::gauge_family(std::string name, std::string help,
                                             std::vector<std::string> label_names) {
    check_labels(label_names);
    std::lock_guard lock(mutex_);
    auto& e = add(std::move(name), std::move(help), Kind::gauge, true);
    gauge_families_.push_back(std::unique_ptr<Family<Gauge>>(
        new Family<Gauge>(std::move(label_names), [] { return std::make_unique<Gauge>(); })));
    e.metric = gauge_families_.back().get();
    return *gauge_families_.back();
}

Family<Histogram>& MetricsRegistry::histogram_family(std::string name, std::string help,
                                                     std::vector<std::string> label_names,
                                                     std::vector<double> upper_bounds) {
    check_labels(label_names);
    Histogram probe(upper_bounds); // validates the bounds now rather than on first use
    std::lock_guard lock(mutex_);
    auto& e = add(std::move(name), std::move(help), Kind::histogram, true);
    histogram_families_.push_back(std::unique_ptr<Family<Histogram>>(
        new Family<Histogram>(std::move(label_names), [bounds = std::move(upper_bounds)] {
            return std::make_unique<Histogram>(bounds);
        })));
    e.metric = histogram_families_.back().get();
    return *histogram_families_.back();
}

void MetricsRegistry::gauge_callback(std::string name, std::string help,
                                     std::function<double()> read) {
    if (!read)
        throw std::logic_error("gauge_callback needs a callable");
    std::lock_guard lock(mutex_);
    auto& e = add(std::move(name), std::move(help), Kind::callback, false);
    e.read = std::move(read);
}

void MetricsRegistry::collector(std::string name, std::string help, MetricType type,
                                std::function<void(Collection&)> collect) {
    if (!collect)
        throw std::logic_error("collector needs a callable");
    std::lock_guard lock(mutex_);
    auto& e = add(std::move(name), std::move(help), Kind::collector, true);
    e.collected_type = type;
    e.collect = std::move(collect);
}

namespace {
void render_collected(std::string& out, const std::string& name, MetricType type,
                      const Collection::Sample& sample) {
    std::vector<std::string> names;
    std::vector<std::string> values;
    for (const auto& [n, v] : sample.labels) {
        names.push_back(n);
        values.push_back(v);
    }
    const std::string labels = label_text(names, values);
    if (type != MetricType::histogram) {
        out += name + close_labels(labels) + " " + format_metric_value(sample.value) + "\n";
        return;
    }
    if (sample.cumulative_counts.size() != sample.upper_bounds.size() + 1)
        return;
    render_histogram(
        out, name, labels,
        Histogram::Snapshot{sample.upper_bounds, sample.cumulative_counts, sample.value});
}
} // namespace

std::string MetricsRegistry::render() const {
    std::lock_guard lock(mutex_);
    std::string out;
    out.reserve(4096);
    for (const auto& e : entries_) {
        const MetricType shown = e.kind == Kind::collector   ? e.collected_type
                                 : e.kind == Kind::counter   ? MetricType::counter
                                 : e.kind == Kind::histogram ? MetricType::histogram
                                                             : MetricType::gauge;
        const char* type = shown == MetricType::counter     ? "counter"
                           : shown == MetricType::histogram ? "histogram"
                                                            : "gauge";
        out += "# HELP " + e.name + " " + escape_help(e.help) + "\n";
        out += "# TYPE " + e.name + " " + type + "\n";
        switch (e.kind) {
        case Kind::counter:
            if (!e.labelled) {
                out +=
                    e.name + " " + std::to_string(static_cast<Counter*>(e.metric)->value()) + "\n";
            } else {
                auto& f = *static_cast<Family<Counter>*>(e.metric);
                std::shared_lock family_lock(f.mutex_);
                for_each_child(f, f.label_names_, f.children_,
                               [&](const std::string& labels, const Counter& c) {
                                   out += e.name + close_labels(labels) + " " +
                                          std::to_string(c.value()) + "\n";
                               });
            }
            break;
        case Kind::gauge:
            if (!e.labelled) {
                out += e.name + " " + format_metric_value(static_cast<Gauge*>(e.metric)->value()) +
                       "\n";
            } else {
                auto& f = *static_cast<Family<Gauge>*>(e.metric);
                std::shared_lock family_lock(f.mutex_);
                for_each_child(f, f.label_names_, f.children_,
                               [&](const std::string& labels, const Gauge& g) {
                                   out += e.name + close_labels(labels) + " " +
                                          format_metric_value(g.value()) + "\n";
                               });
            }
            break;
        case Kind::histogram:
            if (!e.labelled) {
                render_histogram(out, e.name, "", static_cast<Histogram*>(e.metric)->snapshot());
            } else {
                auto& f = *static_cast<Family<Histogram>*>(e.metric);
                std::shared_lock family_lock(f.mutex_);
                for_each_child(f, f.label_names_, f.children_,
                               [&](const std::string& labels, const Histogram& h) {
                                   render_histogram(out, e.name, labels, h.snapshot());
                               });
            }
            break;
        case Kind::callback: {
            double v = 0;
            try {
                v = e.read();
            } catch (...) {
                v = std::nan("");
            }
            out += e.name + " " + format_metric_value(v) + "\n";
            break;
        }
        case Kind::collector: {
            Collection collection;
            try {
                e.collect(collection);
            } catch (...) {
                break; // a broken collector renders no samples; the rest of the scrape stands
            }
            for (const auto& sample : collection.samples())
                render_collected(out, e.name, e.collected_type, sample);
            break;
        }
        }
    }
    return out;
}

} // namespace idnode::resolver
