#include "idnode/resolver/logging.hpp"

#include "idnode/resolver/http.hpp" // json_quote

#include <spdlog/async_logger.h>
#include <spdlog/details/thread_pool.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <fmt/format.h>

#include <stdexcept>

namespace idnode::resolver {

namespace {

constexpr std::size_t kQueueSize = 16384;
constexpr const char* kTime = "%Y-%m-%dT%H:%M:%S.%fZ";

/// %* in a pattern: the message as a JSON string literal (quotes included).
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&,
                spdlog::memory_buf_t& dest) override {
        const std::string quoted =
            json_quote(std::string_view(msg.payload.data(), msg.payload.size()));
        dest.append(quoted.data(), quoted.data() + quoted.size());
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<JsonMessageFlag>();
    }
};

std::unique_ptr<spdlog::formatter> app_formatter(LogFormat format) {
    if (format == LogFormat::text)
        return std::make_unique<spdlog::pattern_formatter>(std::string(kTime) + " %l %v",
                                                           spdlog::pattern_time_type::utc);
    auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    f->add_flag<JsonMessageFlag>('*').set_pattern(std::string("{\"time\":\"") + kTime +
                                                  "\",\"level\":\"%l\",\"message\":%*}");
    return f;
}

/// The access line is pre-formatted by `Logging::access`; the formatter only adds the time.
std::unique_ptr<spdlog::formatter> access_formatter(LogFormat format) {
    const std::string pattern = format == LogFormat::text
                                    ? std::string(kTime) + " %v"
                                    : std::string("{\"time\":\"") + kTime + "\",%v}";
    return std::make_unique<spdlog::pattern_formatter>(pattern, spdlog::pattern_time_type::utc);
}

} // namespace

Logging::Logging(const NodeConfig::Log& config) : config_(config) {
    pool_ = std::make_shared<spdlog::details::thread_pool>(kQueueSize, 1);

    auto app_sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    app_sink->set_formatter(app_formatter(config.format));
    app_ = std::make_shared<spdlog::async_logger>("idnode", app_sink, pool_,
                                                  spdlog::async_overflow_policy::block);
    app_->set_level(spdlog::level::from_str(config.level));
    app_->flush_on(spdlog::level::warn);

    if (config.access != "off") {
        spdlog::sink_ptr sink;
        if (config.access == "stderr") {
            sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
        } else {
            try {
                sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(config.access, false);
            } catch (const spdlog::spdlog_ex& e) {
                throw std::runtime_error("cannot open log.access '" + config.access +
                                         "': " + e.what());
            }
        }
        sink->set_formatter(access_formatter(config.format));
        access_ = std::make_shared<spdlog::async_logger>("access", sink, pool_,
                                                         spdlog::async_overflow_policy::block);
        access_->set_level(spdlog::level::info);
    }
}

Logging::~Logging() {
    // Flushes are queued behind pending lines; the pool's destructor drains the queue and joins
    // its worker. The pool goes first so that the loggers' last references are ours: queued
    // messages hold references too, and a logger released last on the (uninstrumented) worker
    // thread is freed there, which ThreadSanitizer cannot order after our own release.
    flush();
    pool_.reset();
    access_.reset();
    app_.reset();
}

void Logging::access(const AccessRecord& r) const {
    if (!access_)
        return;
    const std::string_view account = r.account.empty() ? std::string_view("-") : r.account;
    if (config_.format == LogFormat::text) {
        access_->info("{} {} {} route={} status={} bytes={} us={} account={} id={:x}", r.client_ip,
                      r.method, json_quote(r.path), r.route, r.status, r.bytes, r.micros, account,
                      r.request_id);
    } else {
        access_->info("\"client_ip\":{},\"method\":{},\"path\":{},\"route\":{},\"status\":{},"
                      "\"bytes\":{},\"us\":{},\"account\":{},\"request_id\":\"{:x}\"",
                      json_quote(r.client_ip), json_quote(r.method), json_quote(r.path),
                      json_quote(r.route), r.status, r.bytes, r.micros, json_quote(r.account),
                      r.request_id);
    }
}

void Logging::flush() const {
    if (app_)
        app_->flush();
    if (access_)
        access_->flush();
}

} // namespace idnode::resolver
