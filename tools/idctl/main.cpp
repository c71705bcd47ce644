// idctl — operator and client command line for idnode.
//
// Exit codes (idctl(1)): 0 ok, 1 operation failed, 2 usage, 3 partial success.
// Subcommands live in cmd_*.cpp and are listed in kCommands: `init`, `config`, the offline
// commands (`load --offline`, `export --offline`, `backup`, `verify`, `qr`) and the online ones on
// the client SDK (`resolve`, `get`, `put`, `delete`, `prefix`, `account`, `template`, `stats`,
// `load`, `export`), which read their connection from resolve_connection() (connection.hpp),
// configured by the global flags below.
#include "cli.hpp"

#include "idnode/sdk/version.hpp"

#include <iostream>

using namespace idnode::idctl;

namespace {

constexpr CommandFactory kCommands[] = {
    add_init_command,    add_config_command,   add_load_command,   add_export_command,
    add_backup_command,  add_verify_command,   add_qr_command,     add_resolve_command,
    add_get_command,     add_put_command,      add_delete_command, add_prefix_command,
    add_account_command, add_template_command, add_stats_command,
};

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"idctl — operate an idnode and register, resolve and load identifiers"};
    app.set_version_flag("--version", std::string("idctl ") + idnode::sdk::version());
    app.require_subcommand(1);
    app.fallthrough(); // global options may follow the subcommand

    GlobalOptions global;
    app.add_flag("--json", global.json, "machine-readable output");
    app.add_option("--url", global.connection.url, "node URL, e.g. https://127.0.0.1:8443");
    app.add_option("--ca-file", global.connection.ca_file, "CA certificate to verify the node");
    app.add_option("--key", global.connection.key, "API key");
    app.add_option("--user", global.connection.user, "user name (with --password)");
    app.add_option("--password", global.connection.password, "password (with --user)");
    app.add_option("--config", global.config_file,
                   "config file (default ~/.config/idctl/config.toml)");

    std::vector<Command> commands;
    for (CommandFactory add : kCommands) {
        commands.push_back(add(app, global));
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int rc = app.exit(e);
        return rc == 0 ? kExitOk : kExitUsage;
    }
    for (const Command& c : commands) {
        if (c.app->parsed()) {
            try {
                return c.run();
            } catch (const std::exception& e) {
                return fail(c.app->get_name(), e.what());
            }
        }
    }
    return kExitUsage;
}
