// Process logging: an asynchronous application log (stderr) and an asynchronous access log
// (one line per request; a file, stderr, or off), both formatted as text or JSON per `log.format`.
//
// Secrets: nothing here ever sees request headers or bodies; the access line carries the path
// WITHOUT its query string, so tokens or keys passed as query parameters are never written.
// Timestamps are UTC (ISO 8601, microseconds).
//
// Lifetime: create one `Logging` in main before the server and destroy it after; the destructor
// drains the queue and flushes both logs. spdlog's global registry is not used (no global state).
// Thread safety: every member function is safe from any thread.
#pragma once

#include "idnode/resolver/config.hpp"

#include <cstdint>
#include <memory>
#include <string_view>

namespace spdlog {
class logger;
namespace details {
class thread_pool;
} // namespace details
} // namespace spdlog

namespace idnode::resolver {

/// One access-log line. Views must stay valid for the duration of `Logging::access`.
struct AccessRecord {
    std::string_view method;
    std::string_view route; // matched pattern, "unmatched", or a server-level reason
    std::string_view path;  // request path without the query string
    std::string_view client_ip;
    std::string_view account; // empty = anonymous
    unsigned status = 0;
    std::uint64_t bytes = 0;  // response body bytes
    std::uint64_t micros = 0; // header received -> response written
    std::uint64_t request_id = 0;
};

class Logging {
public:
    /// Throws std::runtime_error naming the file if the access log cannot be opened.
    explicit Logging(const NodeConfig::Log& config);
    ~Logging();
    Logging(const Logging&) = delete;
    Logging& operator=(const Logging&) = delete;

    /// The application log. Use spdlog's API on it (include <spdlog/logger.h>).
    spdlog::logger& app() const noexcept { return *app_; }

    bool access_enabled() const noexcept { return access_ != nullptr; }
    void access(const AccessRecord& record) const;

    /// Asks both loggers to flush soon (asynchronously).
    void flush() const;

private:
    NodeConfig::Log config_;
    std::shared_ptr<spdlog::details::thread_pool> pool_;
    std::shared_ptr<spdlog::logger> app_;
    std::shared_ptr<spdlog::logger> access_;
};

} // namespace idnode::resolver
