// Shared pieces of the online idctl commands (cmd_online.cpp, cmd_identity.cpp): parent command
// groups, reading the node's JSON answers, the call-and-show patterns, secrets from stdin.
#pragma once

#include "online.hpp"

#include <boost/json.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace idnode::idctl {

/// A parent command (`prefix`, `account`, …) whose run dispatches to the child that was parsed.
struct Group {
    CLI::App* app;
    std::vector<Command> children;
    Command command() {
        auto kids = std::make_shared<std::vector<Command>>(std::move(children));
        return {app, [kids] {
                    for (const Command& c : *kids) {
                        if (c.app->parsed()) {
                            return c.run();
                        }
                    }
                    return static_cast<int>(kExitUsage);
                }};
    }
};

std::optional<boost::json::value> parse_json_text(const std::string& text);
/// A JSON value as text: strings as they are, null as "", anything else serialized.
std::string str(const boost::json::value* v);
std::string field(const boost::json::object& o, std::string_view key);

/// Prints the node's JSON answer as is (--json) or lets `human` render it. A body that is not
/// JSON is a protocol failure of the node.
int show(const std::string& command, const GlobalOptions& global, const std::string& body,
         const std::function<void(const boost::json::value&)>& human);

/// Most admin subcommands: open a client, make one call that answers JSON, show the answer.
int call_and_show(const std::string& command, const GlobalOptions& global,
                  const std::function<sdk::Result<std::string>(sdk::Client&)>& call,
                  const std::function<void(const boost::json::value&)>& human);

/// The subcommands whose call answers only "done": open a client, call, then print `done`
/// (--json) or the line `text`.
int call_and_report(const std::string& command, const GlobalOptions& global,
                    const std::function<sdk::Status(sdk::Client&)>& call,
                    const boost::json::object& done, const std::string& text);

const boost::json::array& array_at(const boost::json::value& v, std::string_view key);

/// A table of the objects of the array `v[key]`, one row each.
void print_rows(const boost::json::value& v, std::string_view key,
                const std::vector<std::string>& headers,
                std::vector<std::string> (*row)(const boost::json::value&));

/// Reads a secret from stdin: without echo on a terminal (after a prompt on stderr), else one
/// line of the pipe. The trailing newline is removed.
std::optional<std::string> read_secret(const char* prompt);

/// `account identity add|list|remove` (cmd_identity.cpp), a child of `account`.
Command add_identity_commands(CLI::App* account, const GlobalOptions& global);

/// `prefix route set|show|clear` (cmd_prefix_route.cpp), a child of `prefix`.
Command add_route_commands(CLI::App* prefix, const GlobalOptions& global);

} // namespace idnode::idctl
