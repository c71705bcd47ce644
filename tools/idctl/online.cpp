#include "online.hpp"

#include "idnode/sdk/version.hpp"

#include <iostream>

namespace idnode::idctl {

int open_client(const std::string& command, const GlobalOptions& global,
                std::optional<sdk::Client>& out, int max_connections) {
    const EnvLookup env = process_environment();
    const std::filesystem::path file = config_file_path(global.config_file, env);
    auto settings = resolve_connection(global.connection, env, file);
    if (!settings) {
        return fail(command, settings.error().message, kExitUsage);
    }
    if (auto st = require_url(*settings, file); !st) {
        return fail(command, st.error().message, kExitUsage);
    }
    sdk::ClientOptions options;
    options.url = settings->url;
    options.ca_file = settings->ca_file;
    options.api_key = settings->key;
    options.username = settings->user;
    options.password = settings->password;
    options.max_connections = max_connections;
    options.user_agent = std::string("idctl/") + sdk::version();
    auto client = sdk::Client::create(options);
    if (!client) {
        // Client::create only checks the options (URL form, CA file readable): a usage problem.
        return fail(command, client.error().message, kExitUsage);
    }
    out.emplace(std::move(client).value());
    return kExitOk;
}

int sdk_fail(const std::string& command, const sdk::Error& error) {
    std::string text = error.message.empty() ? sdk::to_string(error.kind) : error.message;
    std::string detail;
    if (error.http_status != 0) {
        detail += "http " + std::to_string(error.http_status);
    }
    if (error.response_code != 0) {
        detail +=
            (detail.empty() ? "" : ", ") + std::string("rc ") + std::to_string(error.response_code);
    }
    if (!error.code.empty()) {
        detail += (detail.empty() ? "" : ", ") + error.code;
    }
    if (detail.empty()) {
        detail = sdk::to_string(error.kind);
    }
    return fail(command, text + " (" + detail + ")", kExitFailed);
}

} // namespace idnode::idctl
