// The idctl command framework: global options, exit codes and output helpers shared by every
// subcommand. Each subcommand lives in its own cmd_*.cpp and registers itself through a
// `add_*_command` function listed in main.cpp's table.
#pragma once

#include "connection.hpp"

#include <boost/json/value.hpp>

#include <CLI/CLI.hpp>

#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace idnode::idctl {

/// idctl's exit status (docs/man/idctl.1, EXIT STATUS).
enum ExitCode : int { kExitOk = 0, kExitFailed = 1, kExitUsage = 2, kExitPartial = 3 };

struct GlobalOptions {
    bool json = false;
    ConnectionFlags connection;
    std::string config_file; // empty = default_config_path()
};

/// A registered subcommand: CLI11 parses its options into variables the `run` closure owns.
struct Command {
    CLI::App* app = nullptr;
    std::function<int()> run;
};

using CommandFactory = Command (*)(CLI::App& root, const GlobalOptions& global);

Command add_init_command(CLI::App& root, const GlobalOptions& global);
Command add_config_command(CLI::App& root, const GlobalOptions& global);
Command add_load_command(CLI::App& root, const GlobalOptions& global);
Command add_export_command(CLI::App& root, const GlobalOptions& global);
Command add_backup_command(CLI::App& root, const GlobalOptions& global);
Command add_verify_command(CLI::App& root, const GlobalOptions& global);
Command add_qr_command(CLI::App& root, const GlobalOptions& global);
// online (cmd_online.cpp, on the client SDK)
Command add_resolve_command(CLI::App& root, const GlobalOptions& global);
Command add_get_command(CLI::App& root, const GlobalOptions& global);
Command add_put_command(CLI::App& root, const GlobalOptions& global);
Command add_delete_command(CLI::App& root, const GlobalOptions& global);
Command add_prefix_command(CLI::App& root, const GlobalOptions& global);
Command add_account_command(CLI::App& root, const GlobalOptions& global);
Command add_template_command(CLI::App& root, const GlobalOptions& global);
Command add_stats_command(CLI::App& root, const GlobalOptions& global);

/// Prints a left-aligned text table with a header row.
void print_table(std::ostream& out, const std::vector<std::string>& headers,
                 const std::vector<std::vector<std::string>>& rows);

/// Prints `value` as one line of JSON.
void print_json(std::ostream& out, const boost::json::value& value);

/// "idctl <command>: <message>" on stderr; returns `code` for `return fail(...)`.
int fail(const std::string& command, const std::string& message, int code = kExitFailed);

/// The end of an export (online or offline) written to `out`: flushes it, reports a write
/// failure, and, for an export to the file `output` (not stdout), says how many identifiers went
/// there. Returns the exit code.
int finish_export(std::ostream& out, const std::string& output, std::uint64_t exported,
                  const GlobalOptions& global);

/// Parses a size: bytes, or with a suffix KiB/MiB/GiB (also K/M/G). nullopt when invalid.
std::optional<std::uint64_t> parse_size(std::string_view text);

} // namespace idnode::idctl
