// Connection settings of the online idctl commands (idctl(1)), resolved field by field:
// command-line flags, else the environment (IDNODE_URL, IDNODE_CA_FILE, IDNODE_KEY), else the
// config file (~/.config/idctl/config.toml, or $XDG_CONFIG_HOME/idctl/config.toml: keys `url`,
// `ca_file`, `key`; any other key is an error, like idnode's own config).
//
// Credentials are taken as a unit from the first source that has any: `--key`, or `--user` with
// `--password`, on the command line; else IDNODE_KEY; else the config file's `key`.
//
// Pure apart from reading the config file; the environment is passed in, so tests need no
// process state. Thread-safe.
#pragma once

#include "idnode/registry/error.hpp"

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace idnode::idctl {

/// What the command line said (unset = not given).
struct ConnectionFlags {
    std::optional<std::string> url;
    std::optional<std::string> ca_file;
    std::optional<std::string> key;
    std::optional<std::string> user;
    std::optional<std::string> password;
};

enum class Source { none, flag, environment, config_file };
const char* source_name(Source s) noexcept;

struct ConnectionSettings {
    std::string url;     // e.g. https://127.0.0.1:8443 (no trailing slash)
    std::string ca_file; // empty = the system trust store
    std::string key;     // API key (idn_…), empty when user/password are used
    std::string user;
    std::string password;
    Source url_source = Source::none;
    Source credential_source = Source::none;

    bool has_credentials() const noexcept { return !key.empty() || !user.empty(); }
};

/// Looks up an environment variable (std::getenv in main, a map in tests).
using EnvLookup = std::function<std::optional<std::string>(const char* name)>;
EnvLookup process_environment();

/// $XDG_CONFIG_HOME/idctl/config.toml, else $HOME/.config/idctl/config.toml; empty path when
/// neither variable is set.
std::filesystem::path default_config_path(const EnvLookup& env);
/// The config file to read: `flag` (--config) when given, else default_config_path(env).
std::filesystem::path config_file_path(const std::string& flag, const EnvLookup& env);

/// Resolves the settings. A missing config file is fine; an unreadable or malformed one, an
/// unknown key, a non-string value, `--password` without `--user` (or the reverse), both
/// `--key` and `--user`, or a URL that is not http(s):// are errors (Errc::invalid_value, the
/// message names the source and key). The URL itself may stay empty: online commands check
/// `url` when they need it (require_url).
registry::Result<ConnectionSettings> resolve_connection(const ConnectionFlags& flags,
                                                        const EnvLookup& env,
                                                        const std::filesystem::path& config_file);

/// invalid_value "no node URL: pass --url, set IDNODE_URL or put url in <config>" when empty.
registry::Status require_url(const ConnectionSettings& settings,
                             const std::filesystem::path& config_file);

} // namespace idnode::idctl
