// What every online idctl command shares: the SDK client built from the connection settings
// (connection.hpp: flags, environment, config file), and the mapping of SDK errors to messages
// and exit codes (idctl(1)). idctl has no HTTP code of its own; everything goes through
// idnode::sdk::Client.
#pragma once

#include "cli.hpp"

#include "idnode/sdk/client.hpp"

#include <optional>
#include <string>

namespace idnode::idctl {

/// Resolves the connection settings and builds a client. On failure prints
/// "idctl <command>: …" and returns the exit code (2: bad or missing settings — no URL, a
/// malformed config file, an unreadable CA file); on success `out` is set and 0 is returned.
/// `max_connections` sizes the pool (the bulk streams of `load` are extra).
int open_client(const std::string& command, const GlobalOptions& global,
                std::optional<sdk::Client>& out, int max_connections = 4);

/// Prints the SDK error ("idctl <command>: <what> (http 404, rc 100)") and returns 1.
int sdk_fail(const std::string& command, const sdk::Error& error);

/// Online export: NDJSON of every identifier under exactly `prefix`, read page by page
/// (GET /api/handles with a cursor) and record by record (POST /api/v1/resolve).
int export_online(const std::string& prefix, const std::string& output,
                  const GlobalOptions& global);

} // namespace idnode::idctl
